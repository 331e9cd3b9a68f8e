"""RFC 7983 / RFC 5761 demultiplexing: every boundary of every range."""

from __future__ import annotations

import pytest

from webrtc_secure.demux import PacketKind, classify


def _expected_first(byte: int) -> PacketKind:
    """The RFC 7983 section 7 table, written out independently of the code."""
    if 0 <= byte <= 3:
        return PacketKind.STUN
    if 20 <= byte <= 63:
        return PacketKind.DTLS
    if 64 <= byte <= 79:
        return PacketKind.TURN_CHANNEL
    if 128 <= byte <= 191:
        return PacketKind.RTP
    return PacketKind.UNKNOWN


def test_empty_is_unknown() -> None:
    assert classify(b"") is PacketKind.UNKNOWN


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (0, PacketKind.STUN),
        (3, PacketKind.STUN),
        (4, PacketKind.UNKNOWN),
        (16, PacketKind.UNKNOWN),  # ZRTP range: not used by WebRTC
        (19, PacketKind.UNKNOWN),
        (20, PacketKind.DTLS),
        (22, PacketKind.DTLS),  # handshake record
        (23, PacketKind.DTLS),  # application data record
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
def test_first_byte_boundaries(first: int, kind: PacketKind) -> None:
    # second byte 0: an RTP payload type 0 (PCMU), never RTCP
    assert classify(bytes([first, 0]) + bytes(10)) is kind


def test_every_first_byte_matches_the_rfc_table() -> None:
    for byte in range(256):
        assert classify(bytes([byte, 0])) is _expected_first(byte), byte


@pytest.mark.parametrize(
    ("second", "kind"),
    [
        (0, PacketKind.RTP),
        (63, PacketKind.RTP),  # payload type 63, no marker
        (64, PacketKind.RTCP),  # payload type 64 (forbidden with rtcp-mux) reads as RTCP
        (95, PacketKind.RTCP),
        (96, PacketKind.RTP),  # first dynamic payload type
        (111, PacketKind.RTP),  # opus as usually negotiated
        (127, PacketKind.RTP),
        (128, PacketKind.RTP),  # marker bit + payload type 0
        (191, PacketKind.RTP),  # marker bit + payload type 63
        (192, PacketKind.RTCP),  # RTCP packet type 192 (FIR, historic)
        (200, PacketKind.RTCP),  # sender report
        (201, PacketKind.RTCP),  # receiver report
        (206, PacketKind.RTCP),  # payload-specific feedback
        (223, PacketKind.RTCP),
        (224, PacketKind.RTP),  # marker bit + payload type 96
        (255, PacketKind.RTP),
    ],
)
def test_rtp_versus_rtcp_by_second_byte(second: int, kind: PacketKind) -> None:
    for first in (0x80, 0x90, 0xA0, 0xBF):
        assert classify(bytes([first, second]) + bytes(10)) is kind


def test_every_second_byte_in_the_rtp_range() -> None:
    for second in range(256):
        expected = PacketKind.RTCP if 64 <= (second & 0x7F) <= 95 else PacketKind.RTP
        assert classify(bytes([0x80, second])) is expected, second


def test_one_byte_datagrams() -> None:
    for byte in range(256):
        expected = _expected_first(byte)
        if expected is PacketKind.RTP:
            # too short to be RTP or RTCP
            expected = PacketKind.UNKNOWN
        assert classify(bytes([byte])) is expected, byte


def test_second_byte_only_matters_in_the_rtp_range() -> None:
    for first in (0, 22, 64, 100, 200):
        assert classify(bytes([first, 200])) is _expected_first(first)


def test_accepts_bytes_like() -> None:
    packet = bytes([0x80, 0xC8]) + bytes(26)
    assert classify(bytearray(packet)) is PacketKind.RTCP
    assert classify(memoryview(b"\x16\xfe\xfd")) is PacketKind.DTLS


def test_kind_is_an_int_enum() -> None:
    assert int(PacketKind.UNKNOWN) == 0
    assert {kind.name for kind in PacketKind} == {
        "UNKNOWN",
        "STUN",
        "DTLS",
        "TURN_CHANNEL",
        "RTP",
        "RTCP",
    }
