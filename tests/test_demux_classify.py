"""RFC 7983 first-byte demultiplexing and RFC 5761 RTP/RTCP separation."""

from __future__ import annotations

import pytest

from webrtc_secure.peer import PacketKind, classify


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (0, PacketKind.STUN),
        (3, PacketKind.STUN),
        (4, PacketKind.UNKNOWN),
        (19, PacketKind.UNKNOWN),
        (20, PacketKind.DTLS),
        (63, PacketKind.DTLS),
        (64, PacketKind.TURN_CHANNEL),
        (79, PacketKind.TURN_CHANNEL),
        (80, PacketKind.UNKNOWN),
        (127, PacketKind.UNKNOWN),
        (128, PacketKind.RTP),
        (191, PacketKind.RTP),
        (192, PacketKind.UNKNOWN),
        (255, PacketKind.UNKNOWN),
    ],
)
def test_first_byte_ranges(first: int, kind: PacketKind) -> None:
    assert classify(bytes([first, 0]) + bytes(10)) == kind


@pytest.mark.parametrize(
    ("second", "kind"),
    [
        (0, PacketKind.RTP),
        (111, PacketKind.RTP),
        (127 | 0x80, PacketKind.RTP),
        (191, PacketKind.RTP),
        (192, PacketKind.RTCP),
        (200, PacketKind.RTCP),
        (206, PacketKind.RTCP),
        (223, PacketKind.RTCP),
        (224, PacketKind.RTP),
    ],
)
def test_rtcp_told_apart_by_payload_type(second: int, kind: PacketKind) -> None:
    assert classify(bytes([0x80, second]) + bytes(10)) == kind


def test_empty_and_one_byte_datagrams() -> None:
    assert classify(b"") == PacketKind.UNKNOWN
    assert classify(b"\x80") == PacketKind.RTP
    assert classify(b"\x16") == PacketKind.DTLS
