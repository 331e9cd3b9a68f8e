"""Outgoing flights: what to (re)send and how it is cut to the path MTU.

A flight is kept as whole messages, not as records: each transmission assigns fresh
record sequence numbers (RFC 6347 4.2.4 requires new ones on retransmission) and
re-fragments so that every datagram, record headers and AEAD overhead included, fits
the MTU. Records are packed several to a datagram.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from webrtc_secure.dtls.messages import HANDSHAKE_HEADER_LENGTH, HandshakeFragment
from webrtc_secure.dtls.records import RECORD_HEADER_LENGTH, ContentType

#: smallest handshake fragment body worth starting in a partly-filled datagram
_MIN_FRAGMENT = 16


@dataclass(frozen=True)
class FlightItem:
    """One message of a flight: a handshake message or the ChangeCipherSpec."""

    content_type: ContentType
    epoch: int
    msg_type: int = 0
    message_seq: int = 0
    body: bytes = b""


#: (content_type, epoch, plaintext) -> the serialized record, assigning its sequence number
RecordSealer = Callable[[int, int, bytes], bytes]
#: epoch -> octets the record protection adds for that epoch
OverheadOf = Callable[[int], int]


def pack_flight(
    items: list[FlightItem], mtu: int, seal: RecordSealer, overhead_of: OverheadOf
) -> list[bytes]:
    """Serialize a flight into datagrams no larger than ``mtu``."""
    datagrams: list[bytes] = []
    current = b""

    def flush() -> None:
        nonlocal current
        if current:
            datagrams.append(current)
            current = b""

    for item in items:
        record_overhead = RECORD_HEADER_LENGTH + overhead_of(item.epoch)
        if item.content_type != ContentType.HANDSHAKE:
            if len(current) + record_overhead + len(item.body) > mtu:
                flush()
            current += seal(item.content_type, item.epoch, item.body)
            continue
        total = len(item.body)
        offset = 0
        while True:
            room = mtu - len(current) - record_overhead - HANDSHAKE_HEADER_LENGTH
            remaining = total - offset
            if room < min(remaining, _MIN_FRAGMENT):
                flush()
                room = mtu - record_overhead - HANDSHAKE_HEADER_LENGTH
                if room <= 0:
                    raise ValueError(f"MTU {mtu} too small for a handshake record")
            size = min(remaining, room)
            fragment = HandshakeFragment(
                item.msg_type, total, item.message_seq, offset, item.body[offset : offset + size]
            )
            current += seal(ContentType.HANDSHAKE, item.epoch, fragment.serialize())
            offset += size
            if offset >= total:
                break
    flush()
    return datagrams
