"""Outgoing flights: what to (re)send and how it is cut to the path MTU.

A flight is kept as whole messages, not as records: each transmission assigns fresh
record sequence numbers (RFC 6347 4.2.4 requires new ones on retransmission) and
re-fragments so that every datagram, record headers and AEAD overhead included, fits
the MTU. Records are packed several to a datagram.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from webrtc_secure.dtls.messages import (
    HANDSHAKE_HEADER_LENGTH,
    encode_handshake_header,
    framed_message,
)
from webrtc_secure.dtls.records import RECORD_HEADER_LENGTH, ContentType

#: smallest handshake fragment body worth starting in a partly-filled datagram
_MIN_FRAGMENT = 16
_HANDSHAKE = int(ContentType.HANDSHAKE)  # an int compares faster than an enum member


class FlightItem(NamedTuple):
    """One message of a flight: a handshake message or the ChangeCipherSpec.

    ``framed`` is the message with its unfragmented header (the transcript form) when
    the sender has it: a message that fits its datagram goes out as exactly that.
    """

    content_type: ContentType
    epoch: int
    msg_type: int = 0
    message_seq: int = 0
    body: bytes = b""
    framed: bytes | None = None


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
    for item in items:
        epoch = item.epoch
        record_overhead = RECORD_HEADER_LENGTH + overhead_of(epoch)
        body = item.body
        if item.content_type != _HANDSHAKE:
            if len(current) + record_overhead + len(body) > mtu and current:
                datagrams.append(current)
                current = b""
            current += seal(item.content_type, epoch, body)
            continue
        total = len(body)
        if mtu - len(current) - record_overhead - HANDSHAKE_HEADER_LENGTH >= total:
            # the whole message fits what is left of this datagram: one record
            framed = item.framed
            if framed is None:
                framed = framed_message(item.msg_type, item.message_seq, body)
            current += seal(_HANDSHAKE, epoch, framed)
            continue
        offset = 0
        while True:
            room = mtu - len(current) - record_overhead - HANDSHAKE_HEADER_LENGTH
            remaining = total - offset
            if room < min(remaining, _MIN_FRAGMENT):
                if current:
                    datagrams.append(current)
                    current = b""
                room = mtu - record_overhead - HANDSHAKE_HEADER_LENGTH
                if room <= 0:
                    raise ValueError(f"MTU {mtu} too small for a handshake record")
            size = min(remaining, room)
            header = encode_handshake_header(item.msg_type, total, item.message_seq, offset, size)
            current += seal(_HANDSHAKE, epoch, header + body[offset : offset + size])
            offset += size
            if offset >= total:
                break
    if current:
        datagrams.append(current)
    return datagrams
