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

    content_type: int  # a ContentType value
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
    used = 0  # len(current)
    last_epoch = -1
    record_overhead = 0
    for content_type, epoch, msg_type, message_seq, body, framed in items:
        if epoch != last_epoch:
            last_epoch = epoch
            record_overhead = RECORD_HEADER_LENGTH + overhead_of(epoch)
        total = len(body)
        if content_type != _HANDSHAKE:
            if used + record_overhead + total > mtu and current:
                datagrams.append(current)
                current = b""
            current += seal(content_type, epoch, body)
            used = len(current)
            continue
        if mtu - used - record_overhead - HANDSHAKE_HEADER_LENGTH >= total:
            # the whole message fits what is left of this datagram: one record
            if framed is None:
                framed = framed_message(msg_type, message_seq, body)
            current += seal(_HANDSHAKE, epoch, framed)
            used = len(current)
            continue
        offset = 0
        while True:
            room = mtu - used - record_overhead - HANDSHAKE_HEADER_LENGTH
            remaining = total - offset
            if room < min(remaining, _MIN_FRAGMENT):
                if current:
                    datagrams.append(current)
                    current = b""
                    used = 0
                room = mtu - record_overhead - HANDSHAKE_HEADER_LENGTH
                if room <= 0:
                    raise ValueError(f"MTU {mtu} too small for a handshake record")
            size = min(remaining, room)
            header = encode_handshake_header(msg_type, total, message_seq, offset, size)
            current += seal(_HANDSHAKE, epoch, header + body[offset : offset + size])
            used = len(current)
            offset += size
            if offset >= total:
                break
    if current:
        datagrams.append(current)
    return datagrams
