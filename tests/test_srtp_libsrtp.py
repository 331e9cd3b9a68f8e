"""Same-run cross-check against libsrtp (pylibsrtp): every profile, both directions,
byte-identical output across a sequence rollover, with CSRCs, header extensions and
padding, and SRTCP both ways."""

from __future__ import annotations

import os
import struct

import pylibsrtp
import pytest

from tests.interop.libsrtp import libsrtp_session
from webrtc_secure.errors import ReplayDetected
from webrtc_secure.srtp import Profile, SrtpContext

pytestmark = pytest.mark.interop


def _rtp(
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    *,
    csrcs: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    first = 0x80 | csrcs | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    header = struct.pack("!BBHII", first, 111, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    header += b"".join(struct.pack("!I", 0x1000 + i) for i in range(csrcs))
    if extension is not None:
        header += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    pad = (bytes(padding - 1) + bytes([padding])) if padding else b""
    return header + payload + pad


def _packets(ssrc: int) -> list[bytes]:
    out = []
    sequence = list(range(65500, 65536)) + list(range(0, 100))
    for i, seq in enumerate(sequence):
        shape = i % 4
        out.append(
            _rtp(
                seq,
                i * 960,
                ssrc,
                os.urandom(20 + (i * 37) % 1100),
                csrcs=3 if shape == 1 else 0,
                extension=os.urandom(8) if shape == 2 else None,
                padding=4 if shape == 3 else 0,
            )
        )
    return out


@pytest.mark.parametrize("profile", list(Profile))
def test_rtp_byte_identical_both_directions_across_rollover(profile: Profile) -> None:
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    lib_tx, lib_rx = (
        libsrtp_session(profile, key, salt, True),
        libsrtp_session(profile, key, salt, False),
    )
    ours_tx, ours_rx = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    for packet in _packets(0xCAFE0001):
        ours = ours_tx.protect(packet)
        assert ours == lib_tx.protect(packet)
        assert lib_rx.unprotect(ours) == packet
        assert ours_rx.unprotect(ours) == packet
    # libsrtp-protected, ours unprotects (a second SSRC, reordered around the wrap)
    lib_tx2 = libsrtp_session(profile, key, salt, True)
    packets = _packets(0xCAFE0002)
    protected = [lib_tx2.protect(p) for p in packets]
    order = list(range(30)) + list(range(32, 40)) + [30, 31] + list(range(40, len(packets)))
    for i in order:  # packets 30/31 (seq 65530/65531) arrive after the wrap
        assert ours_rx.unprotect(protected[i]) == packets[i]


@pytest.mark.parametrize("profile", list(Profile))
def test_rtcp_byte_identical_both_directions(profile: Profile) -> None:
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    lib_tx, lib_rx = (
        libsrtp_session(profile, key, salt, True),
        libsrtp_session(profile, key, salt, False),
    )
    ours_tx, ours_rx = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    for i in range(20):
        report = struct.pack("!BBHI", 0x80, 200, 6, 0xCAFE0003) + os.urandom(20 + 4 * i)
        ours = ours_tx.protect_rtcp(report)
        assert ours == lib_tx.protect_rtcp(report)
        assert lib_rx.unprotect_rtcp(ours) == report
    lib_tx3 = libsrtp_session(profile, key, salt, True)
    for _ in range(20):
        report = struct.pack("!BBHI", 0x81, 201, 7, 0xCAFE0004) + os.urandom(24)
        assert ours_rx.unprotect_rtcp(lib_tx3.protect_rtcp(report)) == report


@pytest.mark.parametrize("profile", list(Profile))
def test_sender_reordering_and_index_reuse_like_libsrtp(profile: Profile) -> None:
    """A sender may send late packets inside the window (same bytes as libsrtp) and,
    like libsrtp, refuses an index it already protected (keystream reuse)."""
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    lib_tx, ours_tx = libsrtp_session(profile, key, salt, True), SrtpContext(profile, key, salt)
    for seq in (65534, 1, 65535, 0, 3, 2):
        packet = _rtp(seq, seq, 0xCAFE0005, os.urandom(50))
        assert ours_tx.protect(packet) == lib_tx.protect(packet)
    again = _rtp(0, 0, 0xCAFE0005, b"different payload")
    with pytest.raises(ReplayDetected):
        ours_tx.protect(again)
    with pytest.raises(pylibsrtp.Error):
        lib_tx.protect(again)
