"""What arrived on the one ICE component: RFC 7983 first-byte demultiplexing.

WebRTC multiplexes STUN, DTLS, TURN channel data and SRTP/SRTCP on one 5-tuple.
RFC 7983 section 7 tells them apart by the first byte; RTCP is told apart from
RTP by the second byte (RFC 5761 section 4). Pure code, no I/O: the asyncio
shell calls :func:`classify` for every inbound datagram.
"""

from __future__ import annotations

import enum

__all__ = ["PacketKind", "classify"]


class PacketKind(enum.IntEnum):
    """The RFC 7983 class of one datagram."""

    UNKNOWN = 0
    STUN = 1
    DTLS = 2
    TURN_CHANNEL = 3
    RTP = 4
    RTCP = 5


def _first_byte_table() -> tuple[PacketKind, ...]:
    table = [PacketKind.UNKNOWN] * 256
    for byte in range(256):
        if byte <= 3:
            table[byte] = PacketKind.STUN
        elif 20 <= byte <= 63:
            table[byte] = PacketKind.DTLS
        elif 64 <= byte <= 79:
            table[byte] = PacketKind.TURN_CHANNEL
        elif 128 <= byte <= 191:
            # Refined to RTCP by the second byte in classify().
            table[byte] = PacketKind.RTP
        # 4..19 (16..19 is ZRTP, unused by WebRTC), 80..127 and 192..255 stay UNKNOWN.
    return tuple(table)


# One index per packet instead of a chain of comparisons: this runs for every datagram.
_BY_FIRST_BYTE = _first_byte_table()


def classify(data: bytes) -> PacketKind:
    """The :class:`PacketKind` of ``data``.

    First byte 0..3 is STUN, 20..63 DTLS, 64..79 TURN channel data, 128..191 RTP
    or RTCP; anything else, and an empty datagram, is UNKNOWN. In the RTP range
    the packet is RTCP when its second byte without the marker bit lies in 64..95
    (RTCP packet types 192..223, the RTP payload types rtcp-mux forbids). A single
    byte in the RTP range is neither RTP nor RTCP, so it is UNKNOWN.
    """
    if not data:
        return PacketKind.UNKNOWN
    kind = _BY_FIRST_BYTE[data[0]]
    if kind is PacketKind.RTP:
        if len(data) < 2:
            return PacketKind.UNKNOWN
        if 64 <= (data[1] & 0x7F) <= 95:
            return PacketKind.RTCP
    return kind
