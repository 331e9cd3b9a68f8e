"""Unit tests of the association's pure pieces: TSN tracking and SACK fields,
reassembly and ordered delivery (DATA and I-DATA), FORWARD-TSN skipping, the send
side (fragmentation, SACK processing, fast retransmit, T3, PR-SCTP), RTO and cwnd."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.sctp.congestion import CongestionControl, initial_cwnd
from webrtc_secure.sctp.receive_queue import (
    InboundFragment,
    ReceiveQueue,
    TsnTracker,
    Verdict,
)
from webrtc_secure.sctp.rto import RtoEstimator
from webrtc_secure.sctp.send_queue import (
    Fragment,
    Outbox,
    OutgoingMessage,
    RetransmitQueue,
    SentChunk,
)
from webrtc_secure.sctp.serial import add32, diff16, diff32, lt32

# --- serial arithmetic ---------------------------------------------------------------


def test_serial_comparisons_wrap() -> None:
    assert lt32(0xFFFFFFFF, 0)
    assert not lt32(0, 0xFFFFFFFF)
    assert diff32(2, 0xFFFFFFFE) == 4
    assert diff16(1, 0xFFFF) == 2
    assert add32(0xFFFFFFFF, 2) == 1


# --- TSN tracker ---------------------------------------------------------------------


def test_tracker_cumulative_gaps_and_duplicates() -> None:
    t = TsnTracker(100)
    for tsn in (100, 101, 103, 104, 107):
        assert t.classify(tsn) is Verdict.ACCEPTED
        t.add(tsn)
    assert t.cumulative == 101
    assert t.gap_blocks() == ((2, 3), (6, 6))
    assert t.classify(101) is Verdict.DUPLICATE
    assert t.classify(104) is Verdict.DUPLICATE
    t.note_duplicate(101)
    assert t.take_duplicates() == (101,)
    assert t.take_duplicates() == ()
    t.add(102)
    assert t.cumulative == 104
    assert t.gap_blocks() == ((3, 3),)


def test_tracker_wraps_and_refuses_far_tsns() -> None:
    t = TsnTracker(0xFFFFFFFE, max_window=1000)
    for tsn in (0xFFFFFFFE, 0xFFFFFFFF, 0, 1):
        t.add(tsn)
    assert t.cumulative == 1
    assert t.classify(1 + 1001) is Verdict.OUT_OF_WINDOW
    assert t.classify(0x80000000) is Verdict.OUT_OF_WINDOW
    assert t.classify(0xFFFFFFF0) is Verdict.DUPLICATE  # behind: already acknowledged


def test_tracker_forward() -> None:
    t = TsnTracker(10)
    t.add(10)
    t.add(13)
    t.add(15)
    assert t.forward(12)
    assert t.cumulative == 13
    assert t.gap_blocks() == ((2, 2),)
    assert not t.forward(11)  # stale
    assert not t.forward(13 + 70000)  # outside the window


def test_duplicate_list_is_bounded() -> None:
    t = TsnTracker(1)
    t.add(1)
    for _ in range(1000):
        t.note_duplicate(1)
    assert len(t.take_duplicates()) == 32


# --- reassembly and delivery -----------------------------------------------------------


def _frag(
    tsn: int,
    data: bytes,
    *,
    sid: int = 0,
    seq: int = 0,
    b: bool = True,
    e: bool = True,
    u: bool = False,
    ppid: int = 51,
    fsn: int = 0,
) -> InboundFragment:
    return InboundFragment(tsn, sid, seq, ppid, data, u, b, e, fsn)


def test_data_fragments_reassemble_in_any_order() -> None:
    q = ReceiveQueue(1)
    parts = [
        _frag(1, b"aa", b=True, e=False),
        _frag(2, b"bb", b=False, e=False),
        _frag(3, b"cc", b=False, e=True),
    ]
    for order in ([2, 0, 1], [1, 2, 0]):
        q = ReceiveQueue(1)
        for i in order:
            assert q.receive(parts[i]) is Verdict.ACCEPTED
        assert [m.data for m in q.pop_messages()] == [b"aabbcc"]
        assert q.buffered == 0 and q.stored == 0


def test_ordered_messages_wait_for_their_turn_unordered_do_not() -> None:
    q = ReceiveQueue(1)
    q.receive(_frag(2, b"second", seq=1))
    q.receive(_frag(3, b"fast", u=True, sid=1))
    assert [m.data for m in q.pop_messages()] == [b"fast"]
    assert q.buffered == len(b"second")
    q.receive(_frag(1, b"first", seq=0))
    assert [m.data for m in q.pop_messages()] == [b"first", b"second"]
    assert q.buffered == 0


@pytest.mark.parametrize("interleaving", [False, True], ids=["data", "idata"])
@pytest.mark.parametrize("order", ["in_order", "reversed"])
def test_refused_ordered_message_does_not_stall_its_stream(
    interleaving: bool, order: str
) -> None:
    """A message over max_message_size is refused (counted), but its sequence number
    is used up: the messages after it on the same ordered stream are delivered, and
    every fragment of it is still acknowledged (no retransmission storm)."""
    q = ReceiveQueue(1, interleaving=interleaving, max_message_size=10)
    big = [
        _frag(1 + i, b"x" * 4, seq=0, b=i == 0, e=i == 3, fsn=i) for i in range(4)
    ]  # 16 octets in 4 fragments, SSN / MID 0
    after = _frag(5, b"after", seq=1)
    frags = [*big, after] if order == "in_order" else [after, *reversed(big)]
    for frag in frags:
        assert q.receive(frag) is Verdict.ACCEPTED
    assert [m.data for m in q.pop_messages()] == [b"after"]
    assert q.dropped_messages == 1
    assert q.cumulative_tsn == 5 and not q.tracker.has_gaps
    assert q.buffered == 0 and q.stored == 0
    q.receive(_frag(6, b"next", seq=2))
    assert [m.data for m in q.pop_messages()] == [b"next"]


def test_refused_unordered_idata_message_leaves_nothing_behind() -> None:
    q = ReceiveQueue(1, interleaving=True, max_message_size=10)
    for i in (0, 1, 3, 2):  # out of order: the refusal comes before the end
        frag = _frag(1 + i, b"x" * 4, seq=7, b=i == 0, e=i == 3, fsn=i, u=True)
        assert q.receive(frag) is Verdict.ACCEPTED
    assert q.pop_messages() == [] and q.dropped_messages == 1
    assert q.buffered == 0 and q.stored == 0
    assert q.cumulative_tsn == 4


def test_interleaved_fragments_of_two_streams() -> None:
    q = ReceiveQueue(1, interleaving=True)
    q.receive(_frag(1, b"A1", sid=1, seq=0, b=True, e=False, ppid=53))
    q.receive(_frag(2, b"B", sid=2, seq=0, ppid=51))
    assert [m.data for m in q.pop_messages()] == [b"B"]
    q.receive(_frag(4, b"A3", sid=1, seq=0, b=False, e=True, fsn=2))
    q.receive(_frag(3, b"A2", sid=1, seq=0, b=False, e=False, fsn=1))
    [m] = q.pop_messages()
    assert (m.stream_id, m.ppid, m.data) == (1, 53, b"A1A2A3")


def test_interleaved_rejects_repeated_and_impossible_fragments() -> None:
    q = ReceiveQueue(1, interleaving=True)
    assert q.receive(_frag(1, b"x", b=False, e=False, fsn=5)) is Verdict.ACCEPTED
    assert q.receive(_frag(2, b"y", b=False, e=False, fsn=5)) is Verdict.INVALID
    assert q.receive(_frag(3, b"z", b=False, e=True, fsn=3)) is Verdict.INVALID  # 5 > 3
    assert q.receive(_frag(4, b"", b=True, e=True)) is Verdict.INVALID
    assert q.tracker.cumulative == 1


def test_inconsistent_data_run_is_dropped_not_delivered() -> None:
    q = ReceiveQueue(1)
    q.receive(_frag(1, b"a", sid=1, b=True, e=False))
    q.receive(_frag(2, b"b", sid=2, b=False, e=True))
    assert q.pop_messages() == []
    assert q.dropped_messages == 1 and q.buffered == 0


def test_forward_tsn_skips_lost_ordered_message_and_releases_the_next() -> None:
    q = ReceiveQueue(1)
    q.receive(_frag(1, b"m0-part", seq=0, b=True, e=False))  # message 0 never completes
    q.receive(_frag(3, b"m1", seq=1))
    assert q.pop_messages() == []
    assert q.skip(2, ((0, False, 0),))
    assert [m.data for m in q.pop_messages()] == [b"m1"]
    assert q.cumulative_tsn == 3 and q.buffered == 0 and q.stored == 0


def test_iforward_tsn_skips_by_mid() -> None:
    q = ReceiveQueue(1, interleaving=True)
    q.receive(_frag(1, b"x", sid=3, seq=0, b=True, e=False))
    q.receive(_frag(3, b"y", sid=3, seq=1))
    q.receive(_frag(4, b"u", sid=3, seq=0, u=True, b=True, e=False))
    assert q.skip(2, ((3, False, 0), (3, True, 0)))
    assert [m.data for m in q.pop_messages()] == [b"y"]
    assert q.buffered == 0


def test_forward_tsn_outside_window_is_refused() -> None:
    q = ReceiveQueue(1)
    assert not q.skip(add32(1, 1 << 20), ())
    assert q.cumulative_tsn == 0


def test_receive_window_bounds_buffering_but_next_tsn_gets_in() -> None:
    q = ReceiveQueue(1, window=100)
    assert q.receive(_frag(2, b"x" * 90, seq=1)) is Verdict.ACCEPTED
    assert q.rwnd == 10
    assert q.receive(_frag(3, b"y" * 20, seq=2)) is Verdict.BUFFER_FULL
    assert q.receive(_frag(1, b"z" * 20, seq=0)) is Verdict.ACCEPTED  # next in line
    assert [m.data[:1] for m in q.pop_messages()] == [b"z", b"x"]


def test_stream_reset_restarts_sequence_numbers() -> None:
    q = ReceiveQueue(1)
    q.receive(_frag(1, b"a", sid=5, seq=0))
    q.reset_streams((5,))
    q.receive(_frag(2, b"b", sid=5, seq=0))
    assert [m.data for m in q.pop_messages()] == [b"a", b"b"]


def test_random_fragment_order_delivers_each_message_once_in_order() -> None:
    rng = random.Random(7)
    for interleaving in (False, True):
        q = ReceiveQueue(1000, interleaving=interleaving)
        frags: list[InboundFragment] = []
        tsn = 1000
        messages = [bytes([i]) * rng.randint(1, 50) for i in range(40)]
        for seq, msg in enumerate(messages):
            pieces = [msg[i : i + 7] for i in range(0, len(msg), 7)]
            for n, piece in enumerate(pieces):
                frags.append(_frag(tsn, piece, seq=seq, b=n == 0, e=n == len(pieces) - 1, fsn=n))
                tsn += 1
        shuffled = frags + frags[:10]
        rng.shuffle(shuffled)
        for f in shuffled:
            q.receive(f)
        assert [m.data for m in q.pop_messages()] == messages
        assert q.buffered == 0 and q.stored == 0


# --- send side -----------------------------------------------------------------------------


def test_outbox_fragments_and_round_robins() -> None:
    out = Outbox(interleaving=False)
    out.push(OutgoingMessage(1, 51, b"a" * 25))
    out.push(OutgoingMessage(2, 51, b"b" * 5))
    pieces = []
    while (f := out.next_fragment(10, 0.0)) is not None:
        pieces.append((f.message.stream_id, f.data, f.beginning, f.ending))
    # without I-DATA the started message finishes first
    assert pieces == [
        (1, b"a" * 10, True, False),
        (1, b"a" * 10, False, False),
        (1, b"a" * 5, False, True),
        (2, b"b" * 5, True, True),
    ]
    out = Outbox(interleaving=True)
    out.push(OutgoingMessage(1, 51, b"a" * 25))
    out.push(OutgoingMessage(2, 51, b"b" * 5))
    order = []
    while (f := out.next_fragment(10, 0.0)) is not None:
        order.append(f.message.stream_id)
    assert order == [1, 2, 1, 1]


def test_outbox_assigns_ssn_and_reports_buffered_amount_low() -> None:
    out = Outbox()
    out.set_threshold(1, 10)
    out.push(OutgoingMessage(1, 51, b"x" * 15))
    out.push(OutgoingMessage(1, 51, b"y" * 5))
    assert out.buffered_amount(1) == 20
    f1 = out.next_fragment(100, 0.0)
    assert f1 is not None and f1.message.seq == 0
    assert out.low == [1]
    f2 = out.next_fragment(100, 0.0)
    assert f2 is not None and f2.message.seq == 1
    assert out.buffered_amount(1) == 0


def test_outbox_drops_expired_unsent_messages() -> None:
    out = Outbox()
    out.push(OutgoingMessage(1, 51, b"old", ordered=False, expires_at=1.0))
    out.push(OutgoingMessage(1, 51, b"new"))
    f = out.next_fragment(100, 2.0)
    assert f is not None and f.data == b"new" and f.message.seq == 0
    assert out.total == 0


def _send_all(out: Outbox, rq: RetransmitQueue, now: float, size: int = 100) -> list[int]:
    tsns = []
    while (f := out.next_fragment(size, now)) is not None:
        chunk = rq.send_new(f, now)
        tsns.append(chunk.tsn)
    return tsns


def _rq(tsn: int = 1000) -> RetransmitQueue:
    return RetransmitQueue(tsn, mtu=1000, peer_rwnd=100000, rto=RtoEstimator())


def test_sack_acks_measures_rtt_and_stops_t3() -> None:
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(0, 51, b"z" * 250))
    assert _send_all(out, rq, 0.0) == [1000, 1001, 1002]
    # Whole chunks count: 16-octet DATA headers, padding to 4.
    assert rq.flight_size == 116 + 116 + 68 and rq.t3_deadline == 1.0
    result = rq.on_sack(1002, 100000, (), 0.1)
    assert result.cumulative_advanced and result.bytes_acked == 300
    assert rq.rto.srtt == pytest.approx(0.1)
    assert rq.flight_size == 0 and rq.t3_deadline is None and rq.outstanding == 0


def test_sack_validation_rejects_stale_future_and_absurd_gaps() -> None:
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(0, 51, b"z" * 500))
    _send_all(out, rq, 0.0)
    assert not rq.on_sack(1010, 1000, (), 0.1).accepted  # acks the unsent
    assert rq.on_sack(1000, 1000, (), 0.1).accepted
    assert not rq.on_sack(999, 1000, (), 0.1).accepted  # older than the ack point
    r = rq.on_sack(1000, 1000, ((3, 1), (0, 2), (1, 60000)), 0.1)
    assert r.invalid_gap_blocks == 3 and r.bytes_acked == 0
    r = rq.on_sack(1000, 1000, tuple((1, 1) for _ in range(5000)), 0.1)
    assert r.invalid_gap_blocks == 5000 - 256


def test_three_miss_reports_fast_retransmit_and_halve_cwnd() -> None:
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(0, 51, b"q" * 600))
    _send_all(out, rq, 0.0)  # TSNs 1000..1005
    cwnd = rq.cc.cwnd
    for end in (1, 2):
        assert not rq.on_sack(999, 100000, ((2, 1 + end),), 0.1).fast_retransmit
    r = rq.on_sack(999, 100000, ((2, 4),), 0.1)
    assert r.fast_retransmit and rq.cc.in_fast_recovery
    assert rq.cc.cwnd == max(cwnd // 2, 4 * 1000)
    [chunk] = rq.retransmission_candidates(fast_only=True)
    assert chunk.tsn == 1000
    rq.sent(chunk, 0.2)
    assert rq.retransmissions == 1 and not rq.has_retransmissions


def test_t3_expiry_marks_everything_and_backs_off() -> None:
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(0, 51, b"q" * 300))
    _send_all(out, rq, 0.0)
    rq.on_t3_expired(1.0)
    assert rq.rto.rto == 2.0 and rq.cc.cwnd == 1000 and rq.flight_size == 0
    assert [c.tsn for c in rq.retransmission_candidates()] == [1000, 1001, 1002]


def test_pr_sctp_max_retransmits_abandons_and_forward_tsn_names_the_stream() -> None:
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(4, 51, b"a" * 150, max_retransmits=0))
    out.push(OutgoingMessage(4, 51, b"b" * 50))
    _send_all(out, rq, 0.0)  # 1000, 1001 = message 0 (ssn 0); 1002 = message 1
    rq.on_sack(999, 100000, ((3, 3),), 0.1)
    rq.on_t3_expired(1.0)  # message 0 may not be retransmitted: abandoned
    assert rq.abandoned_count == 1
    assert rq.forward_tsn_needed
    assert rq.forward_tsn(interleaving=False) == (1001, ((4, False, 0),))
    assert [c.tsn for c in rq.retransmission_candidates()] == []
    rq.on_sack(1002, 100000, (), 1.1)
    assert not rq.forward_tsn_needed and rq.outstanding == 0


def test_pr_sctp_lifetime_abandons_outstanding_chunks() -> None:
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(2, 51, b"x" * 10, ordered=False, expires_at=0.5))
    _send_all(out, rq, 0.0)
    assert rq.timed_outstanding == 1
    rq.expire(0.6)
    assert rq.forward_tsn(interleaving=True) == (1000, ((2, True, 0),))
    assert rq.forward_tsn(interleaving=False) == (1000, ())
    # Until the peer's cumulative ack passes it, the chunk still counts.
    assert rq.timed_outstanding == 1
    rq.on_sack(1000, 100000, (), 0.7)
    assert rq.timed_outstanding == 0 and rq.outstanding == 0


def test_reliable_chunks_do_not_count_as_timed() -> None:
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(0, 51, b"x" * 300))
    out.push(OutgoingMessage(0, 51, b"y" * 150, expires_at=5.0))
    _send_all(out, rq, 0.0)  # 1000..1002 reliable, 1003..1004 timed
    assert rq.timed_outstanding == 2
    rq.on_sack(1003, 100000, (), 0.1)
    assert rq.timed_outstanding == 1
    rq.on_sack(1004, 100000, (), 0.1)
    assert rq.timed_outstanding == 0


def test_zero_window_allows_one_probe() -> None:
    rq = RetransmitQueue(1, mtu=1000, peer_rwnd=0, rto=RtoEstimator())
    assert rq.can_send_new(100)  # nothing in flight: probe
    out = Outbox()
    out.push(OutgoingMessage(0, 51, b"p" * 100))
    _send_all(out, rq, 0.0)
    assert not rq.can_send_new(100)


# --- RTO and congestion control ---------------------------------------------------------------


def test_rto_follows_rfc6298() -> None:
    r = RtoEstimator(rto_initial=1.0, rto_min=0.2, rto_max=10.0)
    assert r.rto == 1.0
    r.observe(0.1)
    assert r.srtt == pytest.approx(0.1) and r.rttvar == pytest.approx(0.05)
    assert r.rto == pytest.approx(0.3)
    r.observe(0.3)
    assert r.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert r.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)
    for _ in range(10):
        r.backoff()
    assert r.rto == 10.0
    with pytest.raises(ValueError):
        RtoEstimator(rto_initial=0.1, rto_min=0.2)


def test_cwnd_slow_start_then_congestion_avoidance() -> None:
    cc = CongestionControl(mtu=1000, ssthresh=8000)
    assert cc.cwnd == initial_cwnd(1000) == 4000
    cc.on_ack(3000, True, flight_before=4000)
    assert cc.cwnd == 5000  # at most one MTU per SACK
    cc.on_ack(1000, True, flight_before=1000)
    assert cc.cwnd == 5000  # window not used: no growth
    cc.cwnd = 9000
    for _ in range(8):
        cc.on_ack(1000, True, flight_before=9000)
    assert cc.cwnd == 9000
    cc.on_ack(1000, True, flight_before=9000)
    assert cc.cwnd == 10000 and cc.partial_bytes_acked == 0
    cc.on_timeout()
    assert cc.cwnd == 1000 and cc.ssthresh == 5000


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(1, 3000), st.booleans()), max_size=30),
    st.lists(st.integers(16, 1200), min_size=1, max_size=10),
    st.booleans(),
)
def test_outbox_fragments_rebuild_every_message_in_stream_order(
    messages: list[tuple[int, int, bool]], payloads: list[int], interleaving: bool
) -> None:
    out = Outbox(interleaving=interleaving)
    sent: dict[int, list[bytes]] = {}
    for i, (sid, size, ordered) in enumerate(messages):
        data = bytes([i % 256]) * size
        out.push(OutgoingMessage(sid, 51, data, ordered=ordered))
        sent.setdefault(sid, []).append(data)
    rebuilt: dict[int, list[bytes]] = {}
    partial: dict[int, list[bytes]] = {}
    current: OutgoingMessage | None = None
    step = 0
    while (f := out.next_fragment(payloads[step % len(payloads)], 0.0)) is not None:
        step += 1
        assert len(f.data) <= payloads[(step - 1) % len(payloads)]
        if not interleaving:
            # DATA: one message's fragments are consecutive (RFC 9260 6.9)
            assert current is None or f.message is current
            current = None if f.ending else f.message
        sid = f.message.stream_id
        assert f.beginning == (sid not in partial)
        partial.setdefault(sid, []).append(f.data)
        if f.ending:
            rebuilt.setdefault(sid, []).append(b"".join(partial.pop(sid)))
    assert rebuilt == sent
    assert out.total == 0 and all(out.buffered_amount(s) == 0 for s in sent)
    assert out.empty


def test_t3_keeps_running_while_only_a_forward_tsn_is_owed() -> None:
    # Regression: with every outstanding chunk abandoned, flight size is zero; T3 must
    # still run so that a lost FORWARD-TSN is sent again (else the peer never moves its
    # cumulative TSN, and a shutdown waits forever).
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(1, 51, b"a" * 50, max_retransmits=0))
    out.push(OutgoingMessage(1, 51, b"b" * 50, max_retransmits=0))
    _send_all(out, rq, 0.0)  # 1000, 1001
    rq.on_t3_expired(1.0)  # both abandoned, nothing to retransmit
    assert rq.forward_tsn_needed and rq.flight_size == 0
    rq.on_sack(999, 100000, (), 1.1)  # a SACK that does not move the ack point
    assert rq.t3_deadline is not None
    rq.on_sack(1001, 100000, (), 1.2)  # the FORWARD-TSN got through
    assert not rq.forward_tsn_needed and rq.t3_deadline is None


def test_cwnd_decays_after_idle_periods() -> None:
    out, rq = Outbox(), _rq()
    rq.cc.cwnd = 64000
    out.push(OutgoingMessage(0, 51, b"x" * 100))
    _send_all(out, rq, 0.0)
    rq.on_sack(1000, 100000, (), 0.1)
    assert rq.rto.rto == pytest.approx(0.4)  # 0.1 s RTT, clamped to rto_min
    rq.restart_after_idle(0.3)  # idle for less than one RTO: unchanged
    assert rq.cc.cwnd == 64000
    rq.restart_after_idle(1.55)  # three RTOs of silence: halved three times
    assert rq.cc.cwnd == 8000
    rq.restart_after_idle(100.0)  # never below 4 MTU
    assert rq.cc.cwnd == 4000


def test_overlapping_gap_blocks_cost_one_walk() -> None:
    out, rq = Outbox(), _rq()
    for _ in range(2000):
        out.push(OutgoingMessage(0, 51, b"t"))
    _send_all(out, rq, 0.0)
    walked = 0
    real_get = rq.chunks.get

    class Counting(dict):  # type: ignore[type-arg]
        def get(self, key, default=None):  # type: ignore[no-untyped-def]
            nonlocal walked
            walked += 1
            return real_get(key, default)

    rq.chunks = Counting(rq.chunks)
    result = rq.on_sack(999, 100000, tuple((1, 1999) for _ in range(256)), 0.1)
    assert result.bytes_acked == 1999 * 20 and walked <= 2100


def test_fast_retransmit_happens_once_per_chunk_until_t3() -> None:
    """RFC 9260 7.2.4 (5): a fast-retransmitted chunk is ineligible for another fast
    retransmit; SACKs sent before the retransmission arrived keep reporting it
    missing and must not send it again and again (the interop helper saw one TSN go
    out 88 times)."""
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(0, 51, b"q" * 2000))
    _send_all(out, rq, 0.0)  # TSNs 1000..1019, 1000 lost
    for end in (1, 2, 3):
        r = rq.on_sack(999, 100000, ((2, 1 + end),), 0.1)
    assert r.fast_retransmit
    [chunk] = rq.retransmission_candidates(fast_only=True)
    rq.sent(chunk, 0.2)
    # The SACKs already on their way still miss 1000 and newly ack more TSNs.
    for end in range(4, 19):
        r = rq.on_sack(999, 100000, ((2, 1 + end),), 0.21)
        assert not r.fast_retransmit
        assert not rq.has_retransmissions
    assert rq.retransmissions == 1 and rq.fast_retransmits == 1
    # T3 makes it eligible again: resent by T3, then a new loss episode may fast
    # retransmit it once more.
    rq.on_t3_expired(2.0)
    chunk, last = rq.retransmission_candidates()
    assert (chunk.tsn, last.tsn) == (1000, 1019)
    rq.sent(chunk, 2.0)
    rq.sent(last, 2.0)
    assert rq.retransmissions == 3
    out.push(OutgoingMessage(0, 51, b"r" * 300))
    assert _send_all(out, rq, 2.0) == [1020, 1021, 1022]
    for end in (20, 21, 22):
        r = rq.on_sack(999, 100000, ((2, end),), 2.1)
    assert r.fast_retransmit
    assert [c.tsn for c in rq.retransmission_candidates(fast_only=True)] == [1000]


def test_miss_indications_follow_the_highest_newly_acked_tsn() -> None:
    """7.2.4 HTNA: a SACK that newly acks nothing adds no miss indication, and only
    TSNs below the highest newly acked one count a miss."""
    out, rq = Outbox(), _rq()
    out.push(OutgoingMessage(0, 51, b"q" * 1000))
    _send_all(out, rq, 0.0)  # TSNs 1000..1009
    rq.on_sack(999, 100000, ((3, 3),), 0.1)  # 1002 acked: 1000, 1001 miss once
    for _ in range(5):  # repeats: nothing newly acked
        assert not rq.on_sack(999, 100000, ((3, 3),), 0.1).fast_retransmit
    rq.on_sack(999, 100000, ((3, 4),), 0.1)
    r = rq.on_sack(999, 100000, ((3, 5),), 0.1)
    assert r.fast_retransmit
    assert [c.tsn for c in rq.retransmission_candidates(fast_only=True)] == [1000, 1001]


def test_idle_streams_hold_no_containers() -> None:
    """One stream per open channel on each side: an idle one keeps no empty deque or
    dict (an empty deque was ~600 of an outbound stream's ~760 bytes)."""
    out = Outbox()
    out.push(OutgoingMessage(3, 51, b"m" * 10))
    assert out.next_fragment(100, 0.0) is not None
    stream = out._streams[3]
    assert stream.queue is None and not hasattr(stream, "__dict__")
    q = ReceiveQueue(1)
    q.receive(_frag(2, b"second", sid=3, seq=1))
    q.receive(_frag(1, b"first", sid=3, seq=0))
    assert [m.data for m in q.pop_messages()] == [b"first", b"second"]
    inbound = q._streams[3]
    assert inbound.waiting is None and not hasattr(inbound, "__dict__")


@pytest.mark.parametrize("expires", [None, 5.0])
def test_send_piece_builds_the_chunk_the_dataclass_would(expires: float | None) -> None:
    """RetransmitQueue.send_piece sets a SentChunk's slots one by one instead of calling
    its __init__: every field the dataclass declares must be set, to the values of the
    constructor call it replaces (a field added to SentChunk without a line there fails
    here)."""
    rq = RetransmitQueue(
        0xFFFFFFFF, mtu=1163, peer_rwnd=1 << 20, rto=RtoEstimator(), chunk_header=20
    )
    message = OutgoingMessage(3, 53, b"x" * 10, expires_at=expires, seq=7)
    fragment = Fragment(message, b"x" * 10, True, False, 0)
    chunk = rq.send_new(fragment, 1.5)
    expected = SentChunk(
        0xFFFFFFFF, (1 << 32) | 0xFFFFFFFF, message, b"x" * 10, True, False, 0,
        1.5, 1, False, False, True, False, False, False, 0, (20 + 10 + 3) & ~3,
    )
    for field in dataclasses.fields(SentChunk):
        assert getattr(chunk, field.name) == getattr(expected, field.name), field.name
    assert rq.next_tsn == 0 and rq.flight_size == expected.size
    assert message.chunks == ([chunk] if expires is not None else [])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # stream
            st.integers(1, 3000),  # size
            st.booleans(),  # ordered
            st.none() | st.integers(0, 3),  # max_retransmits
            st.none() | st.floats(0, 10),  # lifetime
            st.sampled_from(["bytes", "bytearray", "memoryview"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_send_queues_the_message_the_dataclass_and_push_would(sends: list[Any]) -> None:
    """Association.send builds an OutgoingMessage slot by slot and does Outbox.push's
    steps inline: the queued messages (every field the dataclass declares), the stream
    turns, the buffered and total counts must be what OutgoingMessage(...) and
    Outbox.push make of the same sends (a field added to OutgoingMessage without a line
    in send fails here)."""
    from tests.sctp_pair import config, make_pair

    pair = make_pair(7, a=config(1), b=config(2))
    assert pair.connect()
    assoc = pair.a
    reference = Outbox(capacity=assoc._outbox.capacity)
    now = pair.now
    for i, (stream, size, ordered, max_rtx, lifetime, kind) in enumerate(sends):
        raw = bytes([i % 251]) * size
        data: Any = {"bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(raw)}[
            kind
        ]
        assoc.send(
            stream, 53, data, now, ordered=ordered, max_retransmits=max_rtx, lifetime=lifetime
        )
        reference.push(
            OutgoingMessage(
                stream, 53, raw, ordered, max_rtx, None if lifetime is None else now + lifetime
            )
        )
    outbox = assoc._outbox
    assert outbox.total == reference.total
    assert list(outbox._turns or ()) == list(reference._turns or ())
    assert outbox._streams.keys() == reference._streams.keys()
    for sid, stream_state in outbox._streams.items():
        expected = reference._streams[sid]
        assert stream_state.buffered == expected.buffered
        assert stream_state.next_ssn == expected.next_ssn
        got_queue = list(stream_state.queue or ())
        want_queue = list(expected.queue or ())
        assert len(got_queue) == len(want_queue)
        for got, want in zip(got_queue, want_queue, strict=True):
            assert type(got.data) is bytes
            for field in dataclasses.fields(OutgoingMessage):
                assert getattr(got, field.name) == getattr(want, field.name), field.name
            assert got.chunks is not want.chunks
