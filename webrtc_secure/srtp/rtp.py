"""RTP and RTCP header views (RFC 3550 5.1, 6.4): just what SRTP needs to know.

SRTP encrypts the payload after the header, CSRC list and header extension, so the
only question a parser answers is where the header ends; padding stays inside the
encrypted payload, as RFC 3711 3.1 says.
"""

from __future__ import annotations

from webrtc_secure.errors import MalformedPacket

RTP_FIXED_HEADER = 12
RTCP_HEADER = 8


def rtp_header_length(packet: bytes) -> int:
    """Octets of header (fixed part, CSRCs, extension); raises MalformedPacket."""
    n = len(packet)
    if n < RTP_FIXED_HEADER:
        raise MalformedPacket(f"RTP packet of {n} octets is shorter than its fixed header")
    first = packet[0]
    if first >> 6 != 2:
        raise MalformedPacket(f"RTP version {first >> 6}, expected 2")
    length = RTP_FIXED_HEADER + 4 * (first & 0x0F)
    if first & 0x10:
        if n < length + 4:
            raise MalformedPacket("RTP header extension truncated")
        length += 4 + 4 * int.from_bytes(packet[length + 2 : length + 4], "big")
    if length > n:
        raise MalformedPacket("RTP header (CSRCs or extension) longer than the packet")
    return length


def check_rtcp(packet: bytes) -> None:
    """Refuse what cannot be an RTCP compound packet's first header."""
    if len(packet) < RTCP_HEADER:
        raise MalformedPacket(f"RTCP packet of {len(packet)} octets is shorter than 8")
    if packet[0] >> 6 != 2:
        raise MalformedPacket(f"RTCP version {packet[0] >> 6}, expected 2")
