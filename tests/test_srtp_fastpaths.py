"""The per-packet fast paths against the general ones: same bytes, same state, and the
per-key packet budget leased to streams stays exact."""

from __future__ import annotations

import hmac
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.errors import AuthenticationFailed, KeyLifetimeExceeded, ReplayDetected
from webrtc_secure.srtp import Profile, SrtpContext, SrtpSession
from webrtc_secure.srtp import context as srtp_context
from webrtc_secure.srtp.kdf import derive_session_keys
from webrtc_secure.srtp.transforms import AesCmHmac, AesGcm

PROFILES = list(Profile)


def _rtp(seq: int, ssrc: int = 0x1234, size: int = 100) -> bytes:
    payload = bytes((seq + i) & 0xFF for i in range(size))
    return struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 160, ssrc) + payload


def _rtcp(ssrc: int = 0x1234, size: int = 20) -> bytes:
    return struct.pack("!BBHI", 0x80, 200, 1 + size // 4, ssrc) + os.urandom(size)


def _counting_slow_paths(ctx: SrtpContext) -> list[int]:
    """Count the calls of the outbound general path (contexts have slots and no
    __dict__: the context becomes an instance of a subclass that counts)."""
    calls: list[int] = []
    base = type(ctx)

    def counted(self: SrtpContext, ssrc: int, seq: int) -> tuple[int, int]:
        calls.append(seq)
        return base._outbound_index(self, ssrc, seq)

    ctx.__class__ = type("Counting", (base,), {"__slots__": (), "_outbound_index": counted})
    return calls


def _check_hot_streams(ctx: SrtpContext) -> None:
    """The streams the fast paths look at first are the dicts' own: the outbound one
    is in ``_open`` (paid for), the inbound one in ``_inbound``."""
    if ctx._hot_out_ssrc == -1:
        assert ctx._hot_out is None
    else:
        assert ctx._open.get(ctx._hot_out_ssrc) is ctx._hot_out is not None
    if ctx._hot_in_ssrc == -1:
        assert ctx._hot_in is None
    else:
        assert ctx._inbound.get(ctx._hot_in_ssrc) is ctx._hot_in is not None


def _swapped(n: int) -> list[int]:
    """0..n-1 with neighbours swapped: 1 0 3 2 ... (no packet is simply the next)."""
    order = []
    for i in range(0, n - 1, 2):
        order += [i + 1, i]
    return order + ([n - 1] if n % 2 else [])


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("start", [0, 1000, 65500])
def test_fast_and_general_paths_give_identical_bytes(profile: Profile, start: int) -> None:
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    fast, general = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    general_calls = _counting_slow_paths(general)
    fast_calls = _counting_slow_paths(fast)
    seqs = [(start + i) & 0xFFFF for i in range(80)]  # crosses the wrap from 65500
    in_order = {seq: fast.protect(_rtp(seq)) for seq in seqs}
    swapped = {seqs[i]: general.protect(_rtp(seqs[i])) for i in _swapped(len(seqs))}
    assert in_order == swapped
    assert len(general_calls) == len(seqs)  # every packet took the general path
    assert len(fast_calls) == (2 if 0 in seqs[1:] else 1)  # first packet (and the wrap)
    assert fast.packets_protected == general.packets_protected == len(seqs)
    # receiving: in order (fast), swapped (general), both give the packets back
    rx_fast, rx_general = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    for seq in seqs:
        assert rx_fast.unprotect(in_order[seq]) == _rtp(seq)
    for i in _swapped(len(seqs)):
        assert rx_general.unprotect(in_order[seqs[i]]) == _rtp(seqs[i])
    a, b = rx_fast._inbound[0x1234], rx_general._inbound[0x1234]
    assert (a.highest, a.roc_bytes) == (b.highest, b.roc_bytes)
    for seq in seqs[-5:]:  # whichever way the state was built, replays are refused
        for rx in (rx_fast, rx_general):
            with pytest.raises(ReplayDetected):
                rx.unprotect(in_order[seq])


@pytest.mark.parametrize("profile", PROFILES)
def test_rtcp_fast_and_general_paths(profile: Profile) -> None:
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    tx = SrtpContext(profile, key, salt)
    reports = [_rtcp() for _ in range(40)]
    protected = [tx.protect_rtcp(r) for r in reports]
    assert tx.rtcp_packets_protected == 40
    rx_fast, rx_general = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    for report, packet in zip(reports, protected, strict=True):
        assert rx_fast.unprotect_rtcp(packet) == report
    for i in _swapped(len(reports)):
        assert rx_general.unprotect_rtcp(protected[i]) == reports[i]
    for rx in (rx_fast, rx_general):
        assert rx._inbound[0x1234].rtcp_highest == 40
        for packet in protected[-3:]:
            with pytest.raises(ReplayDetected):
                rx.unprotect_rtcp(packet)


def test_context_is_one_subclass_per_transform() -> None:
    for profile in PROFILES:
        ctx = SrtpContext(profile, bytes(profile.key_length), bytes(profile.salt_length))
        keys = derive_session_keys(profile, bytes(profile.key_length), bytes(profile.salt_length))
        other = SrtpContext.from_session_keys(profile, keys)
        assert isinstance(ctx, SrtpContext) and type(ctx) is type(other)
        assert ctx.protect(_rtp(5)) == other.protect(_rtp(5))
    cm = SrtpContext(Profile.AES128_CM_HMAC_SHA1_80, bytes(16), bytes(14))
    gcm = SrtpContext(Profile.AEAD_AES_128_GCM, bytes(16), bytes(12))
    assert type(cm) is not type(gcm)


def test_session_methods_are_the_contexts_own() -> None:
    profile = Profile.AES128_CM_HMAC_SHA1_32
    material = os.urandom(profile.keying_material_length)
    client = SrtpSession.from_keying_material(material, profile, is_client=True)
    assert client.protect == client.local.protect
    assert client.unprotect_rtcp == client.remote.unprotect_rtcp


@given(st.binary(max_size=300), st.binary(min_size=0, max_size=40), st.sampled_from([4, 10]))
def test_hmac_route_matches_the_standard_library(
    message: bytes, auth_key: bytes, tag_length: int
) -> None:
    cm = AesCmHmac(bytes(16), bytes(14), auth_key, tag_length)
    expected = hmac.digest(auth_key, message, "sha1")[:tag_length]
    assert cm.tag(message) == expected
    assert cm.tag(message[:7], message[7:]) == expected  # copies never share state
    cm.verify(expected, message)


# --- the per-key packet budget, leased to streams -----------------------------------


@pytest.fixture
def small_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    """SRTCP paid for a few indices at a time, so renewals and reclaims happen all the
    time (SRTP pays for the rest of the ROC: the tests start near its end)."""
    monkeypatch.setattr(srtp_context, "RTCP_LEASE", 2)


def _left(ctx: SrtpContext, rtp: int, rtcp: int) -> None:
    ctx._reclaim_leases()
    ctx._rtp_left, ctx._rtcp_left = rtp, rtcp


@pytest.mark.usefixtures("small_leases")
@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(PROFILES),
    st.integers(1, 12),
    st.lists(st.integers(65522, 65535), min_size=4, max_size=4),
    st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 6), st.booleans()), max_size=60),
)
def test_budget_is_exact_whatever_the_streams_do(
    profile: Profile, budget: int, starts: list[int], steps: list[tuple[int, int, bool]]
) -> None:
    """Streams send in order, jump ahead, send late, repeat themselves, wrap, in any
    mix: exactly ``budget`` packets go out, whichever stream paid for what."""
    tx = SrtpContext(profile, bytes(profile.key_length), bytes(profile.salt_length))
    _left(tx, budget, budget)
    next_seq = list(starts)  # near the end of the ROC: what is paid in advance is small
    sent = sent_rtcp = 0
    for stream, step, rtcp in steps:
        ssrc = 0x1000 + stream
        try:
            if rtcp:
                tx.protect_rtcp(_rtcp(ssrc))
                sent_rtcp += 1
            else:
                seq = max(0, next_seq[stream] + step - 1)  # step 1: in order
                tx.protect(_rtp(seq & 0xFFFF, ssrc, 8))
                next_seq[stream] = max(next_seq[stream], seq + 1)
                sent += 1
        except ReplayDetected:
            pass  # a repeat of an index already sent
        except KeyLifetimeExceeded:
            assert (sent if not rtcp else sent_rtcp) == budget
        assert sent <= budget and sent_rtcp <= budget
        _check_hot_streams(tx)
        assert tx.packets_protected == (1 << 48) - budget + sent
        assert tx.rtcp_packets_protected == (1 << 31) - budget + sent_rtcp


@pytest.mark.usefixtures("small_leases")
def test_what_an_idle_stream_paid_for_is_reclaimed() -> None:
    tx = SrtpContext(Profile.AEAD_AES_128_GCM, bytes(16), bytes(12))
    _left(tx, rtp=4, rtcp=3)
    tx.protect(_rtp(65532, 0xA))  # stream A: charged, then pays for 65533..65535
    tx.protect_rtcp(_rtcp(0xA))  # pays for 2 of 3 SRTCP indices
    assert tx._rtp_left == 0 and tx._rtcp_left == 1
    for seq in (65533, 65534, 65535):  # stream B gets what A paid for back
        tx.protect(_rtp(seq, 0xB))
    tx.protect_rtcp(_rtcp(0xB))
    tx.protect_rtcp(_rtcp(0xB))
    for ssrc in (0xA, 0xB, 0xC):
        with pytest.raises(KeyLifetimeExceeded):
            tx.protect(_rtp(9, ssrc))
        with pytest.raises(KeyLifetimeExceeded):
            tx.protect_rtcp(_rtcp(ssrc))
    assert tx.packets_protected == 1 << 48 and tx.rtcp_packets_protected == 1 << 31


def _unencrypted_srtcp(profile: Profile, key: bytes, salt: bytes, rtcp: bytes, index: int) -> bytes:
    """An E = 0 SRTCP packet (authenticated only), built from the transforms directly:
    our senders always encrypt, so this is the only way to get one."""
    keys = derive_session_keys(profile, key, salt)
    ssrc = int.from_bytes(rtcp[4:8], "big")
    e_index = index.to_bytes(4, "big")
    if profile.is_aead:
        gcm = AesGcm(keys.rtcp_key, keys.rtcp_salt)
        return rtcp + gcm.seal(gcm.iv(ssrc, index), b"", rtcp + e_index) + e_index
    cm = AesCmHmac(keys.rtcp_key, keys.rtcp_salt, keys.rtcp_auth_key, profile.srtcp_tag_length)
    return rtcp + e_index + cm.tag(rtcp, e_index)


@pytest.mark.parametrize("profile", PROFILES)
def test_unencrypted_srtcp_on_a_known_stream(profile: Profile) -> None:
    """E = 0 packets never take the encrypted fast path; mixed with E = 1 packets, in
    order and late, every one is accepted once and the state ends the same."""
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    tx, rx = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    reports = [_rtcp() for _ in range(12)]
    packets = [tx.protect_rtcp(r) for r in reports]  # indices 1..12
    for i in (2, 5, 6, 9):  # the same indices sent unencrypted instead
        packets[i] = _unencrypted_srtcp(profile, key, salt, reports[i], i + 1)
    for i in (0, 1, 2, 3, 4, 6, 5, 7, 8, 10, 9, 11):
        assert rx.unprotect_rtcp(packets[i]) == reports[i]
    assert rx._inbound[0x1234].rtcp_highest == 12
    for packet in packets:
        with pytest.raises(ReplayDetected):
            rx.unprotect_rtcp(packet)


def _rtp_with(seq: int, first: int, ssrc: int = 0x1234, padding: int = 0) -> bytes:
    """An RTP packet with the first octet ``first`` (CSRC count, extension, padding
    bits), its CSRCs, a 2-word extension when X is set, and ``padding`` octets."""
    csrcs = b"".join(struct.pack("!I", 0x100 + i) for i in range(first & 0x0F))
    extension = struct.pack("!HH", 0xBEDE, 2) + bytes(8) if first & 0x10 else b""
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    header = struct.pack("!BBHII", first, 96, seq & 0xFFFF, seq * 160, ssrc)
    return header + csrcs + extension + bytes(40) + tail


@pytest.mark.parametrize("profile", PROFILES)
def test_stream_counts_are_the_same_on_every_path(profile: Profile) -> None:
    """The per-SSRC packet and octet counts (get_stats) come from the streams: in order,
    reordered (the general path), with CSRCs, extensions and padding, and a forged or
    replayed packet counts nowhere."""
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    sender, receiver = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    shapes = [(0x80, 0), (0x81, 0), (0x90, 0), (0xA0, 7), (0xB2, 3), (0xA0, 255)]
    packets = []
    for seq in range(30):
        first, padding = shapes[seq % len(shapes)]
        packets.append(_rtp_with(seq, first, ssrc=0x1234 + seq % 2, padding=padding))
    # RFC 3550 sizes worked out here independently of the SRTP code
    expected: dict[int, list[int]] = {}
    for packet in packets:
        (ssrc,) = struct.unpack_from("!I", packet, 8)
        first = packet[0]
        header = 12 + 4 * (first & 0x0F) + (12 if first & 0x10 else 0)
        padding = min(packet[-1], len(packet) - header) if first & 0x20 else 0
        counts = expected.setdefault(ssrc, [0, 0, 0])
        counts[0] += 1
        counts[1] += len(packet)
        counts[2] += header - 12 + padding
    protected = [sender.protect(p) for p in packets]
    assert sender.outbound_rtp_counts() == {s: tuple(c) for s, c in expected.items()}
    with pytest.raises(ReplayDetected):  # an index protected twice counts once
        sender.protect(packets[4])
    assert sender.outbound_rtp_counts() == {s: tuple(c) for s, c in expected.items()}
    # reordered: the first of each stream arrives after a later one (general path)
    order = [2, 3, 0, 1, *range(4, 30)]
    for i in order:
        assert receiver.unprotect(protected[i]) == packets[i]
    forged = bytearray(sender.protect(_rtp_with(30, 0x80)))  # sender counts it, not us
    forged[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        receiver.unprotect(bytes(forged))
    with pytest.raises(ReplayDetected):
        receiver.unprotect(protected[7])
    firsts = {0x1234: 2, 0x1235: 3}  # the SRTP index of the first packet to arrive
    assert receiver.inbound_rtp_counts() == {s: (*c, firsts[s]) for s, c in expected.items()}
    # an SRTCP packet makes a stream without RTP: no RTP counts for it
    receiver.unprotect_rtcp(sender.protect_rtcp(_rtcp(0x9999)))
    assert 0x9999 not in receiver.inbound_rtp_counts()


@pytest.mark.parametrize("profile", PROFILES)
def test_interleaved_streams_match_one_context_per_stream(profile: Profile) -> None:
    """Several SSRCs taking turns (the hot stream slot moves between them, or misses):
    the same bytes as a context that only ever sees one SSRC, and on receive the same
    packets back and the same drops for replays and forgeries."""
    key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
    shared = SrtpContext(profile, key, salt)
    ssrcs = [0x10, 0x20, 0x30]
    alone = {ssrc: SrtpContext(profile, key, salt) for ssrc in ssrcs}
    order = [(ssrcs[i % 3] if i % 7 else ssrcs[0], i) for i in range(200)]
    seqs = dict.fromkeys(ssrcs, 65500)  # each stream wraps its ROC on the way
    wire = []
    for ssrc, _ in order:
        seq = seqs[ssrc] = (seqs[ssrc] + 1) & 0xFFFF
        packet = _rtp(seq, ssrc)
        protected = shared.protect(packet)
        assert protected == alone[ssrc].protect(packet)
        _check_hot_streams(shared)
        wire.append((packet, protected))
    rx = SrtpContext(profile, key, salt)
    rx_alone = {ssrc: SrtpContext(profile, key, salt) for ssrc in ssrcs}
    for n, (packet, protected) in enumerate(wire):
        ssrc = int.from_bytes(packet[8:12], "big")
        assert rx.unprotect(protected) == packet == rx_alone[ssrc].unprotect(protected)
        _check_hot_streams(rx)
        if n % 5 == 0 and n + 1 < len(wire):
            # a replay of what just arrived and a forgery of what comes next: refused
            # by both, and the genuine next packet still goes through (no trace)
            upcoming = wire[n + 1][1]
            forged = upcoming[:-1] + bytes([upcoming[-1] ^ 1])
            next_ssrc = int.from_bytes(wire[n + 1][0][8:12], "big")
            with pytest.raises(ReplayDetected):
                rx.unprotect(protected)
            with pytest.raises(ReplayDetected):
                rx_alone[ssrc].unprotect(protected)
            with pytest.raises(AuthenticationFailed):
                rx.unprotect(forged)
            with pytest.raises(AuthenticationFailed):
                rx_alone[next_ssrc].unprotect(forged)
    for ssrc in ssrcs:
        assert rx.highest_index(ssrc) == rx_alone[ssrc].highest_index(ssrc)
        assert rx.inbound_rtp_counts()[ssrc] == rx_alone[ssrc].inbound_rtp_counts()[ssrc]
