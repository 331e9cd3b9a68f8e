"""SRTP behaviour: round trips, tamper and truncation, replay, ROC, limits, no trace."""

from __future__ import annotations

import contextlib
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.errors import (
    AuthenticationFailed,
    KeyLifetimeExceeded,
    MalformedPacket,
    ReplayDetected,
    StreamLimitExceeded,
    WebrtcSecureError,
)
from webrtc_secure.replay import ReplayWindow
from webrtc_secure.srtp import Profile, SrtpContext, SrtpSession
from webrtc_secure.srtp.context import MAX_SRTCP_INDEX, estimate_index

PROFILES = list(Profile)


def _pair(profile: Profile, **kw: int) -> tuple[SrtpContext, SrtpContext]:
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    return SrtpContext(profile, key, salt, **kw), SrtpContext(profile, key, salt, **kw)


def _rtp(seq: int, ssrc: int = 0x1234, payload: bytes = b"x" * 40) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, ssrc) + payload


def _rtcp(ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHI", 0x80, 200, 6, ssrc) + b"r" * 20


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(PROFILES),
    st.binary(max_size=1400),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
)
def test_round_trip(profile: Profile, payload: bytes, seq: int, ssrc: int) -> None:
    tx, rx = _pair(profile)
    packet = _rtp(seq, ssrc, payload)
    assert rx.unprotect(tx.protect(packet)) == packet
    report = _rtcp(ssrc) + payload
    assert rx.unprotect_rtcp(tx.protect_rtcp(report)) == report


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(PROFILES), st.data())
def test_any_flipped_bit_or_truncation_is_refused(profile: Profile, data: st.DataObject) -> None:
    tx, rx = _pair(profile)
    for protected in (tx.protect(_rtp(7)), tx.protect_rtcp(_rtcp())):
        unprotect = rx.unprotect if protected[1] != 200 else rx.unprotect_rtcp
        bit = data.draw(st.integers(0, len(protected) * 8 - 1))
        flipped = bytearray(protected)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((AuthenticationFailed, MalformedPacket, ReplayDetected)):
            unprotect(bytes(flipped))
        cut = data.draw(st.integers(0, len(protected) - 1))
        with pytest.raises((AuthenticationFailed, MalformedPacket)):
            unprotect(protected[:cut])
        assert rx.remote_stream_count == 0  # nothing failed left a stream behind


def _snapshot(ctx: SrtpContext) -> list[tuple[object, ...]]:
    """Every piece of inbound state, bitmaps included."""
    return [
        (
            ssrc,
            s.highest,
            s.roc_bytes,
            s.window.highest,
            s.window._bitmap,
            s.rtcp_highest,
            s.rtcp_window.highest,
            s.rtcp_window._bitmap,
        )
        for ssrc, s in sorted(ctx._inbound.items())
    ]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(PROFILES), st.integers(0, 65535), st.data())
def test_failed_packets_leave_no_trace(profile: Profile, start: int, data: st.DataObject) -> None:
    tx, rx = _pair(profile, replay_window=16)
    packets = [tx.protect(_rtp(start + i)) for i in range(8)]
    reports = [tx.protect_rtcp(_rtcp()) for _ in range(8)]
    for i in (0, 1, 3, 2, 5):  # some state, one packet out of order, 4 and 6 not yet seen
        rx.unprotect(packets[i])
        rx.unprotect_rtcp(reports[i])
    before = _snapshot(rx)
    for genuine, unprotect in ((packets[6], rx.unprotect), (reports[6], rx.unprotect_rtcp)):
        bit = data.draw(st.integers(0, len(genuine) * 8 - 1))
        forged = bytearray(genuine)
        forged[bit // 8] ^= 1 << (bit % 8)
        cut = data.draw(st.integers(0, len(genuine) - 1))
        for bad in (bytes(forged), genuine[:cut], packets[3], reports[3]):
            with pytest.raises((AuthenticationFailed, MalformedPacket, ReplayDetected)):
                unprotect(bad)
            assert _snapshot(rx) == before
    # nothing was consumed: the genuine packets, skipped and next, still go through
    for i in (4, 6, 7):
        assert rx.unprotect(packets[i]) == _rtp(start + i)
        assert rx.unprotect_rtcp(reports[i]) == _rtcp()


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(PROFILES),
    st.integers(0, 65535),
    st.integers(1, 40),
    st.lists(st.integers(0, 79), min_size=1, max_size=160),
)
def test_arrival_order_matches_reference_model(
    profile: Profile, start: int, window: int, arrivals: list[int]
) -> None:
    """Any arrival order, duplicates included, gives exactly what RFC 3711 Appendix A
    estimation plus an eagerly kept replay window predict (our windows are lazy)."""
    tx, rx = _pair(profile, replay_window=window)
    packets = [tx.protect(_rtp(start + i)) for i in range(80)]
    reports = [tx.protect_rtcp(_rtcp()) for _ in range(80)]
    model, model_rtcp, highest = ReplayWindow(window), ReplayWindow(window), -1
    for i in arrivals:
        true_index = start + i
        estimated = estimate_index(highest, (start + i) & 0xFFFF)
        expected: type[Exception] | None = None
        if estimated < 0 or not model.is_fresh(estimated):
            expected = ReplayDetected
        elif estimated != true_index:
            expected = AuthenticationFailed  # wrong ROC guess: the tag cannot verify
        if expected is None:
            assert rx.unprotect(packets[i]) == _rtp(start + i)
            model.commit(estimated)
            highest = max(highest, estimated)
        else:
            with pytest.raises(expected):
                rx.unprotect(packets[i])
        srtcp_index = i + 1
        if model_rtcp.is_fresh(srtcp_index):
            assert rx.unprotect_rtcp(reports[i]) == _rtcp()
            model_rtcp.commit(srtcp_index)
        else:
            with pytest.raises(ReplayDetected):
                rx.unprotect_rtcp(reports[i])


@pytest.mark.parametrize("profile", PROFILES)
def test_sender_refuses_to_reuse_an_index(profile: Profile) -> None:
    tx, rx = _pair(profile, replay_window=32)
    sent = {seq: tx.protect(_rtp(seq)) for seq in (10, 12, 11, 50)}  # 11 late: allowed
    with pytest.raises(ReplayDetected):
        tx.protect(_rtp(11))  # same index again would reuse the keystream
    with pytest.raises(ReplayDetected):
        tx.protect(_rtp(12, payload=b"other"))
    with pytest.raises(ReplayDetected):
        tx.protect(_rtp(15))  # behind the window of the highest index sent (50)
    for seq, packet in sent.items():
        assert rx.unprotect(packet) == _rtp(seq)
    assert tx.packets_protected == 4 and tx.local_stream_count == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_replays_refused_and_window_honoured(profile: Profile) -> None:
    tx, rx = _pair(profile, replay_window=64)
    packets = [tx.protect(_rtp(seq)) for seq in range(200)]
    for p in packets[100:]:
        rx.unprotect(p)
    with pytest.raises(ReplayDetected):
        rx.unprotect(packets[150])  # duplicate
    with pytest.raises(ReplayDetected):
        rx.unprotect(packets[100])  # older than the window
    rtcp = tx.protect_rtcp(_rtcp())
    rx.unprotect_rtcp(rtcp)
    with pytest.raises(ReplayDetected):
        rx.unprotect_rtcp(rtcp)


@pytest.mark.parametrize("profile", PROFILES)
def test_failed_packet_leaves_no_trace(profile: Profile) -> None:
    tx, rx = _pair(profile)
    good = tx.protect(_rtp(65535))
    forged = bytearray(tx.protect(_rtp(0)))  # would advance the ROC if accepted
    forged[-1] ^= 1
    rx.unprotect(good)
    state = (rx._inbound[0x1234].highest, rx._inbound[0x1234].window.highest)
    with pytest.raises(AuthenticationFailed):
        rx.unprotect(bytes(forged))
    assert (rx._inbound[0x1234].highest, rx._inbound[0x1234].window.highest) == state
    forged[-1] ^= 1
    assert rx.unprotect(bytes(forged)) == _rtp(0)  # the real one still decrypts: no slot used


@pytest.mark.parametrize("profile", PROFILES)
def test_rollover_and_reordering_around_the_wrap(profile: Profile) -> None:
    tx, rx = _pair(profile)
    seqs = [65530, 65531, 65533, 65532, 1, 65534, 0, 65535, 2, 3]
    protected = {s: tx.protect(_rtp(s)) for s in sorted(seqs, key=lambda s: (s < 100, s))}
    for s in seqs:
        assert rx.unprotect(protected[s]) == _rtp(s)
    assert rx._inbound[0x1234].highest == (1 << 16) | 3


def test_first_packet_gets_roc_zero_and_estimation() -> None:
    assert estimate_index(-1, 65530) == 65530
    assert estimate_index(65530, 5) == (1 << 16) | 5
    assert estimate_index((1 << 16) | 5, 65530) == 65530
    assert estimate_index(100, 65000) < 0  # before the stream started: refused as too old


def test_remote_stream_limit_bounds_memory() -> None:
    tx, rx = _pair(Profile.AEAD_AES_128_GCM, max_remote_streams=16)
    for ssrc in range(16):
        rx.unprotect(tx.protect(_rtp(1, ssrc)))
    with pytest.raises(StreamLimitExceeded):
        rx.unprotect(tx.protect(_rtp(1, 999)))
    # a flood of forged packets with random SSRCs creates nothing
    _tx2, rx2 = _pair(Profile.AES128_CM_HMAC_SHA1_80)
    for _ in range(2000):
        junk = _rtp(1, int.from_bytes(os.urandom(4), "big")) + os.urandom(10)
        with pytest.raises(WebrtcSecureError):
            rx2.unprotect(junk)
    assert rx2.remote_stream_count == 0


def _budget_left(ctx: SrtpContext, rtp: int | None = None, rtcp: int | None = None) -> None:
    """Pretend the key already protected all but ``rtp``/``rtcp`` packets: what is left
    of its budget, nothing leased to the streams."""
    ctx._reclaim_leases()
    if rtp is not None:
        ctx._rtp_left = rtp
    if rtcp is not None:
        ctx._rtcp_left = rtcp


def test_key_lifetime_limits_raise_before_reuse() -> None:
    tx, _ = _pair(Profile.AES128_CM_HMAC_SHA1_80)
    _budget_left(tx, rtp=1)
    tx.protect(_rtp(1))
    assert tx.packets_protected == 1 << 48
    with pytest.raises(KeyLifetimeExceeded):
        tx.protect(_rtp(2))
    tx.protect_rtcp(_rtcp(77))
    tx._outbound[77].rtcp_index = MAX_SRTCP_INDEX - 1
    assert tx.protect_rtcp(_rtcp(77))[-14:-10] == b"\xff\xff\xff\xff"  # E | 2^31 - 1
    with pytest.raises(KeyLifetimeExceeded):
        tx.protect_rtcp(_rtcp(77))  # the index would wrap: refused, nothing sent
    # and 2^31 SRTCP packets per master key, whatever the SSRCs
    _budget_left(tx, rtcp=1)
    tx.protect_rtcp(_rtcp(78))
    assert tx.rtcp_packets_protected == 1 << 31
    with pytest.raises(KeyLifetimeExceeded):
        tx.protect_rtcp(_rtcp(79))
    with pytest.raises(KeyLifetimeExceeded):
        tx.protect(_rtp(3))  # RTP stays exhausted too


@pytest.mark.parametrize(
    "bad", [b"", b"\x80" * 11, b"\x40" + bytes(20), b"\x8f" + bytes(20), b"\x90" + bytes(13)]
)
def test_malformed_rtp_refused(bad: bytes) -> None:
    tx, rx = _pair(Profile.AES128_CM_HMAC_SHA1_80)
    with pytest.raises(MalformedPacket):
        tx.protect(bad)
    with pytest.raises(MalformedPacket):
        rx.unprotect(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(PROFILES))
def test_garbage_only_raises_typed_errors(data: bytes, profile: Profile) -> None:
    _, rx = _pair(profile)
    for fn in (rx.unprotect, rx.unprotect_rtcp):
        with contextlib.suppress(WebrtcSecureError):
            fn(data)


@pytest.mark.parametrize("profile", PROFILES)
def test_session_splits_rfc5764_keying_material(profile: Profile) -> None:
    material = os.urandom(profile.keying_material_length)
    client = SrtpSession.from_keying_material(material, profile, is_client=True)
    server = SrtpSession.from_keying_material(material, profile, is_client=False)
    packet = _rtp(9)
    assert server.unprotect(client.protect(packet)) == packet
    assert client.unprotect(server.protect(packet)) == packet
    assert client.unprotect_rtcp(server.protect_rtcp(_rtcp())) == _rtcp()
    k = profile.key_length
    assert client.local is not server.local
    fresh_client = SrtpSession.from_keying_material(material, profile, is_client=True)
    client_key, client_salt = material[:k], material[2 * k : 2 * k + profile.salt_length]
    assert SrtpContext(profile, client_key, client_salt).protect(packet) == fresh_client.protect(
        packet
    )
    with pytest.raises(ReplayDetected):  # the same index twice would reuse keystream
        fresh_client.protect(packet)
