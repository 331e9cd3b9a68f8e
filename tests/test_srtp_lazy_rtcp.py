"""SRTCP's primitives are keyed on first use (memory per peer, issue 14): the first
SRTCP packet, either way and for every profile, gives the bytes and the checks that an
eagerly keyed transform gives, and a context that never sees RTCP holds no SRTCP keys."""

from __future__ import annotations

import os
import struct

import pylibsrtp
import pytest

from tests.interop.libsrtp import libsrtp_session
from webrtc_secure.errors import AuthenticationFailed, ReplayDetected
from webrtc_secure.srtp import Profile, SrtpContext
from webrtc_secure.srtp.kdf import derive_session_keys
from webrtc_secure.srtp.transforms import AesCmHmac, AesGcm

PROFILES = list(Profile)


def _rtcp(ssrc: int = 0x1234, size: int = 20) -> bytes:
    return struct.pack("!BBHI", 0x80, 200, 1 + size // 4, ssrc) + os.urandom(size)


def _rtp(seq: int, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 160, ssrc) + os.urandom(60)


def _keyed(ctx: SrtpContext) -> bool:
    attribute = "_rtcp_aead" if ctx.profile.is_aead else "_rtcp_mac"
    return getattr(ctx, attribute) is not None


@pytest.mark.parametrize("profile", PROFILES)
def test_rtp_alone_never_keys_srtcp(profile: Profile) -> None:
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    tx, rx = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    for seq in range(5):
        assert rx.unprotect(tx.protect(_rtp(seq)))[:2] == b"\x80\x60"
    assert not _keyed(tx) and not _keyed(rx)


@pytest.mark.interop
@pytest.mark.parametrize("profile", PROFILES)
def test_first_srtcp_matches_libsrtp_both_ways(profile: Profile) -> None:
    """Fresh contexts on each side of libsrtp: our first SRTCP packet is byte-identical
    to libsrtp's, and the first one we receive is libsrtp's."""
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    ours_tx = SrtpContext(profile, key, salt)
    theirs_tx = libsrtp_session(profile, key, salt, outbound=True)
    packets = [_rtcp(0x5678, 8 + 4 * i) for i in range(3)]
    for packet in packets:
        assert ours_tx.protect_rtcp(packet) == theirs_tx.protect_rtcp(packet)
    ours_rx = SrtpContext(profile, key, salt)
    theirs_tx2 = libsrtp_session(profile, key, salt, outbound=True)
    assert not _keyed(ours_rx)
    for packet in packets:
        assert ours_rx.unprotect_rtcp(theirs_tx2.protect_rtcp(packet)) == packet
    assert _keyed(ours_rx)


@pytest.mark.parametrize("profile", PROFILES)
def test_forged_first_srtcp_fails_then_real_one_passes(profile: Profile) -> None:
    """Keying on a forged first packet changes nothing: it fails authentication, leaves
    no stream state, and the genuine packets that follow are accepted, replays not."""
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    tx, rx = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    genuine = [tx.protect_rtcp(_rtcp()) for _ in range(2)]
    forged = bytearray(genuine[0])
    forged[10] ^= 1
    with pytest.raises(AuthenticationFailed):
        rx.unprotect_rtcp(bytes(forged))
    assert rx.remote_stream_count == 0
    for packet in genuine:
        rx.unprotect_rtcp(packet)
    with pytest.raises(ReplayDetected):
        rx.unprotect_rtcp(genuine[0])


@pytest.mark.parametrize("profile", PROFILES)
def test_lazy_transform_equals_eager(profile: Profile) -> None:
    keys = derive_session_keys(
        profile, os.urandom(profile.key_length), os.urandom(profile.salt_length)
    )
    iv = os.urandom(12 if profile.is_aead else 16)
    data = os.urandom(50)
    if profile.is_aead:
        eager = AesGcm(keys.rtcp_key, keys.rtcp_salt)
        lazy = AesGcm(keys.rtcp_key, keys.rtcp_salt, lazy=True)
        assert lazy.iv_base(7) == eager.iv_base(7)
        sealed = lazy.seal(iv, data, b"aad")
        assert sealed == eager.seal(iv, data, b"aad")
        assert AesGcm(keys.rtcp_key, keys.rtcp_salt, lazy=True).open(iv, sealed, b"aad") == data
        with pytest.raises(AuthenticationFailed):
            lazy.open(iv, sealed, b"other aad")
    else:
        tag = profile.srtcp_tag_length
        eager_cm = AesCmHmac(keys.rtcp_key, keys.rtcp_salt, keys.rtcp_auth_key, tag)
        lazy_cm = AesCmHmac(keys.rtcp_key, keys.rtcp_salt, keys.rtcp_auth_key, tag, lazy=True)
        assert lazy_cm.iv_base(7) == eager_cm.iv_base(7)
        assert lazy_cm.xor_keystream(iv, data) == eager_cm.xor_keystream(iv, data)
        lazy_cm2 = AesCmHmac(keys.rtcp_key, keys.rtcp_salt, keys.rtcp_auth_key, tag, lazy=True)
        assert lazy_cm2.tag(data) == eager_cm.tag(data)
        lazy_cm2.verify(eager_cm.tag(data), data)


@pytest.mark.interop
def test_libsrtp_rejects_what_we_tamper_after_lazy_keying() -> None:
    """The lazily keyed SRTCP tag is a real one: libsrtp refuses a flipped bit."""
    profile = Profile.AEAD_AES_128_GCM
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    sealed = bytearray(SrtpContext(profile, key, salt).protect_rtcp(_rtcp()))
    sealed[12] ^= 0x80
    with pytest.raises(pylibsrtp.Error):
        libsrtp_session(profile, key, salt, outbound=False).unprotect_rtcp(bytes(sealed))
