"""The small-message path (webrtc_secure/sctp/small_path.py) against the general paths.

``send_small`` builds the packet of one whole small message on an idle association and
``receive_small`` takes a packet of [SACK] + one whole message; switched off, the same
input goes through ``_produce`` / ``_take_data`` and ``_receive_fast`` /
``_handle_packet``. The twins here run the same traffic both ways, from the same seeds,
and compare every datagram, every event, every counter and the state both ends are
left in after every step (sequence numbers, windows, timers, queues, the RTT
estimator, cwnd):

* an echo pattern (a sends small messages on a schedule, b answers each one from its
  event handler, as a data-channel application does), clean and lossy (the losses
  make retransmissions, gap reports and T3 expiries, where the small path must step
  aside), DATA and I-DATA, zero checksum and CRC32c, ordered, unordered, partially
  reliable, messages too large for one packet, several streams, thresholds for
  ``BufferedAmountLow``;
* hostile input: the packet the small path takes, mutated (fields near their valid
  values, bits flipped, truncated, extended, wrong tags and checksums, other chunk
  kinds and flags), fed to an association with and one without the small path.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import webrtc_secure.sctp.association as association_module
from tests.netsim import A_TO_B, B_TO_A
from tests.sctp_pair import config, healthy, make_pair
from webrtc_secure.sctp.association import Association
from webrtc_secure.sctp.events import MessageReceived
from webrtc_secure.sctp.packet import packet_crc


@contextmanager
def _small_path(enabled: bool, taken: list[int] | None = None) -> Iterator[None]:
    """Run with the small path switched on (counting the packets it took into
    ``taken``: [sent, received]) or off (the general paths only, the receive fast
    path included)."""
    real_send, real_receive = association_module.send_small, association_module.receive_small
    counts = taken if taken is not None else [0, 0]

    def send(assoc: Association, now: float) -> bool:
        done = enabled and real_send(assoc, now)
        counts[0] += done
        return done

    def receive(assoc: Association, data: bytes, now: float) -> bool:
        done = enabled and real_receive(assoc, data, now)
        counts[1] += done
        return done

    association_module.send_small = send  # type: ignore[assignment]
    association_module.receive_small = receive  # type: ignore[assignment]
    try:
        yield
    finally:
        association_module.send_small = real_send
        association_module.receive_small = real_receive


def _state(assoc: Association) -> tuple[Any, ...]:
    """What an association's future behaviour depends on, as comparable values."""
    rq = assoc._retransmit
    receive = assoc._receive
    outbox = assoc._outbox
    out: list[Any] = [
        assoc.state,
        assoc._sack_now,
        assoc._sack_pending,
        assoc._ack_deadline,
        assoc._data_packets_unacked,
        assoc._burst_left,
        assoc._errors,
        assoc._event_bytes,
        assoc._forward_pending,
        assoc._hb_deadline,
        assoc.get_timer(),
        repr(assoc.stats),
        len(assoc._events or ()),
        outbox.total,
        outbox._current is not None,
        tuple(outbox._turns or ()),
        tuple(outbox.low),
        len(outbox.expired),
        tuple(
            (
                sid,
                s.next_ssn,
                s.next_unordered_mid,
                s.buffered,
                s.threshold,
                s.paused,
                tuple((m.seq, m.offset, m.next_fsn, len(m.data)) for m in s.queue or ()),
            )
            for sid, s in sorted(outbox._streams.items())
        ),
        repr(assoc._rto),
    ]
    if rq is not None:
        out += [
            rq.next_tsn,
            rq.next_unwrapped,
            rq.cumulative_unwrapped,
            rq.advanced_unwrapped,
            rq.flight_size,
            rq.peer_rwnd,
            rq.t3_deadline,
            rq.last_sent,
            rq.timed_outstanding,
            rq._pending_retransmit,
            rq._last_timeout,
            repr(rq.cc),
            tuple(
                (
                    u,
                    c.tsn,
                    bytes(c.data),
                    c.beginning,
                    c.ending,
                    c.fsn,
                    c.first_sent,
                    c.transmissions,
                    c.acked,
                    c.abandoned,
                    c.in_flight,
                    c.retransmit,
                    c.fast,
                    c.fast_retransmitted,
                    c.misses,
                    c.size,
                    c.message.seq,
                    c.message.stream_id,
                    c.message.ordered,
                    len(c.message.chunks),
                )
                for u, c in rq.chunks.items()
            ),
        ]
    if receive is not None:
        tracker = receive.tracker
        out += [
            tracker.cumulative,
            tracker.cumulative_unwrapped,
            sorted(tracker._above),
            tuple(tracker._duplicates),
            receive.window,
            receive.buffered,
            receive.stored,
            receive.dropped_messages,
            len(receive._ready),
            len(receive._fragments),
            len(receive._partials),
            tuple(
                (sid, s.next_seq, None if s.waiting is None else sorted(s.waiting))
                for sid, s in sorted(receive._streams.items())
            ),
        ]
    return tuple(out)


Plan = list[tuple[float, int, int, int]]  # (gap before the send, size, stream, kind)


def _echo(
    seed: int,
    plan: Plan,
    *,
    small: bool,
    interleaving: bool = True,
    zero: bool = True,
    loss: float = 0.0,
    thresholds: bool = False,
    window: tuple[int, int, int] | None = None,
) -> tuple[list[Any], list[int]]:
    """a sends ``plan`` (kind 0 reliable, 1 unordered, 2 PR by retransmissions, 3 PR by
    lifetime) on a schedule; b echoes every message from its event loop, on the same
    stream, as a data-channel echo handler does (its send, then one flush). Returns
    the record of the run (every datagram, event and state after each step) and the
    small path's counts. ``window``: (cwnd, ssthresh, partial_bytes_acked) set on
    both ends once connected, as a T3 expiry or a long transfer leaves them."""
    taken = [0, 0]
    record: list[Any] = []
    with _small_path(small, taken):
        pair = make_pair(
            seed,
            a=config(seed * 2 + 1, interleaving=interleaving, zero_checksum=zero),
            b=config(seed * 2 + 2, interleaving=interleaving, zero_checksum=zero),
            loss=loss,
            reorder=loss,
            duplicate=loss / 2,
            delay=0.004,
            jitter=0.002 if loss else 0.0,
        )
        assert pair.connect()
        sim, a, b = pair.sim, pair.a, pair.b
        if window is not None:
            for assoc in (a, b):
                rq = assoc._retransmit
                assert rq is not None
                rq.cc.cwnd, rq.cc.ssthresh, rq.cc.partial_bytes_acked = window
        if thresholds:
            for stream in range(3):
                a.set_buffered_amount_low_threshold(stream, (0, 50, 2000)[stream])
                b.set_buffered_amount_low_threshold(stream, (30, 0, 100)[stream])
        rng = random.Random(seed)

        def drain(assoc: Association) -> None:
            while (event := assoc.next_event()) is not None:
                record.append(("event", assoc is a, repr(event)))
                if assoc is b and isinstance(event, MessageReceived):
                    due = b.send(event.stream_id, event.ppid, event.data, sim.now)
                    assert due == (bool(b._events) or b._output_due())

        def flush(assoc: Association) -> None:
            direction = A_TO_B if assoc is a else B_TO_A
            for datagram in assoc.datagrams_to_send(sim.now):
                record.append((direction, datagram))
                sim.send(direction, datagram)
            drain(assoc)

        when = sim.now
        schedule = []
        for gap, size, stream, kind in plan:
            when += gap
            schedule.append((when, size, stream, kind))
        index = 0
        end = when + 30.0
        idle = 0
        while sim.now < end:
            candidates = [t for t in (a.get_timer(), b.get_timer(), sim.next_delivery()) if t]
            if index < len(schedule):
                candidates.append(schedule[index][0])
            if not candidates:
                break
            target = min(candidates)
            if target > sim.now:
                sim.now = target
                idle = 0
            else:
                idle += 1
                assert idle < 1000, "a timer stays due"
            now = sim.now
            while index < len(schedule) and schedule[index][0] <= now:
                _, size, stream, kind = schedule[index]
                data = rng.randbytes(size)
                if kind == 1:
                    due = a.send(stream, 53, data, now, ordered=False)
                elif kind == 2:
                    due = a.send(stream, 51, data, now, max_retransmits=0)
                elif kind == 3:
                    due = a.send(stream, 51, data, now, lifetime=0.01)
                else:
                    due = a.send(stream, 53, data, now)
                # send's answer (its shortcut for an empty flight included) is what
                # _output_due says
                assert due == (bool(a._events) or a._output_due())
                index += 1
                flush(a)
            for direction, datagram in sim.due(now):
                receiver = b if direction == A_TO_B else a
                receiver.receive_datagram(datagram, now)
                drain(receiver)
                flush(receiver)
            for assoc in (a, b):
                timer = assoc.get_timer()
                if timer is not None and timer <= now:
                    assoc.handle_timer(now)
                    flush(assoc)
            record.append((now, _state(a), _state(b)))
        assert healthy(a) and healthy(b)
    return record, taken


def _twins(seed: int, plan: Plan, **kwargs: Any) -> list[int]:
    fast, taken = _echo(seed, plan, small=True, **kwargs)
    slow, untaken = _echo(seed, plan, small=False, **kwargs)
    assert untaken == [0, 0]
    assert len(fast) == len(slow)
    for got, want in zip(fast, slow, strict=True):
        assert got == want
    return taken


def _small_plan(count: int, rng: random.Random, gaps: tuple[float, ...] = (0.01,)) -> Plan:
    return [(rng.choice(gaps), rng.choice((1, 4, 100, 500, 1000)), 1, 0) for _ in range(count)]


@pytest.mark.parametrize("interleaving", [True, False])
@pytest.mark.parametrize("zero", [True, False])
def test_a_clean_echo_takes_the_small_path_and_puts_the_same_bytes_on_the_wire(
    interleaving: bool, zero: bool
) -> None:
    """100-octet-ish echoes every 10 ms (the round-trip benchmark's pattern) and, now
    and then, a pause longer than the delayed-ack time or the RTO (a lone SACK, an
    idle restart): nearly every packet goes through the small path both ways."""
    rng = random.Random(7)
    plan = _small_plan(150, rng, gaps=(0.01, 0.01, 0.01, 0.0, 0.3, 2.5))
    taken = _twins(7, plan, interleaving=interleaving, zero=zero)
    assert taken[0] > 200 and taken[1] > 200, taken  # of 300 messages each way


@pytest.mark.parametrize("interleaving", [True, False])
def test_a_lossy_echo_falls_back_and_stays_the_same(interleaving: bool) -> None:
    """Loss, reordering and duplicates: retransmissions, gap blocks, duplicate TSNs and
    T3 expiries happen, and the small path must step aside for them."""
    rng = random.Random(8)
    plan = _small_plan(200, rng, gaps=(0.01, 0.02, 0.0))
    taken = _twins(8, plan, interleaving=interleaving, loss=0.1)
    assert taken[0] > 20 and taken[1] > 20, taken


@pytest.mark.parametrize(
    "window",
    [
        (1163, 1 << 20, 0),  # slow start after a T3 expiry: cwnd grows by what is acked
        (2326, 4652, 0),  # slow start until ssthresh
        (5000, 4652, 4200),  # congestion avoidance: one MTU per cwnd of acked octets
        (5000, 4652, 0),
    ],
)
def test_cwnd_grows_the_same(window: tuple[int, int, int]) -> None:
    rng = random.Random(10)
    plan = [(0.01, rng.choice((1, 400, 800, 1100)), 1, 0) for _ in range(60)]
    for interleaving in (True, False):
        taken = _twins(10, plan, interleaving=interleaving, window=window)
        assert taken[0] > 100 and taken[1] > 100, taken


def test_mixed_traffic_falls_back_where_it_must() -> None:
    """Messages too large for one packet, several in one flush, unordered, partially
    reliable ones, three streams with thresholds (BufferedAmountLow events)."""
    rng = random.Random(9)
    plan = [
        (
            rng.choice((0.0, 0.005, 0.01, 0.25)),
            rng.choice((1, 100, 1100, 1120, 1124, 1200, 5000)),
            rng.randrange(3),
            rng.choice((0, 0, 0, 1, 2, 3)),
        )
        for _ in range(200)
    ]
    for interleaving in (True, False):
        taken = _twins(9, plan, interleaving=interleaving, loss=0.03, thresholds=True)
        assert taken[0] > 20 and taken[1] > 20


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    interleaving=st.booleans(),
    zero=st.booleans(),
    loss=st.sampled_from((0.0, 0.0, 0.05, 0.2)),
    thresholds=st.booleans(),
    plan=st.lists(
        st.tuples(
            st.sampled_from((0.0, 0.003, 0.01, 0.3, 1.5)),
            st.sampled_from((1, 3, 100, 1000, 1104, 1108, 1120, 1124, 1140, 3000)),
            st.integers(0, 2),
            st.sampled_from((0, 0, 0, 1, 2, 3)),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_generated_echoes_are_the_same_with_and_without_the_small_path(
    seed: int, interleaving: bool, zero: bool, loss: float, thresholds: bool, plan: Plan
) -> None:
    _twins(seed, plan, interleaving=interleaving, zero=zero, loss=loss, thresholds=thresholds)


# --- hostile input ------------------------------------------------------------------------


def _pair_with_one_outstanding(
    interleaving: bool, zero: bool
) -> tuple[Association, Association, bytes]:
    """An established a and b (16 streams): b has one small message outstanding, which
    a received; a's answer, [SACK] + one whole message, is the packet returned (not
    delivered to b)."""
    a = Association(config(31, interleaving=interleaving, zero_checksum=zero, streams=16))
    b = Association(config(32, interleaving=interleaving, zero_checksum=zero, streams=16))
    a.connect(0.0)
    for _ in range(10):
        moved = False
        for datagram in a.datagrams_to_send(0.0):
            b.receive_datagram(datagram, 0.0)
            moved = True
        for datagram in b.datagrams_to_send(0.0):
            a.receive_datagram(datagram, 0.0)
            moved = True
        if not moved:
            break
    assert a.is_established and b.is_established
    while a.next_event() is not None or b.next_event() is not None:
        pass
    b.send(3, 51, b"question", 0.01)
    for datagram in b.datagrams_to_send(0.01):
        a.receive_datagram(datagram, 0.02)
    while a.next_event() is not None:
        pass
    a.send(3, 51, b"answer!", 0.02)
    (answer,) = a.datagrams_to_send(0.02)
    return a, b, answer


def _fields_packet(base: bytes, zero: bool, **fields: int) -> bytes:
    """``base`` ([SACK] + DATA / I-DATA) with some fields replaced, checksum redone."""
    data = bytearray(base)
    for name, value in fields.items():
        offset, fmt = _FIELDS[name]
        size = struct.calcsize(fmt)
        struct.pack_into(fmt, data, offset, value % (1 << (8 * size)))
    if not zero:
        data[8:12] = b"\0\0\0\0"
        data[8:12] = struct.pack("<I", packet_crc(bytes(data)))
    return bytes(data)


def _feed(fast: Association, slow: Association, datagram: bytes, now: float) -> None:
    with _small_path(True):
        fast.receive_datagram(datagram, now)
        fast_out = fast.datagrams_to_send(now)
    with _small_path(False):
        slow.receive_datagram(datagram, now)
        slow_out = slow.datagrams_to_send(now)
    assert fast_out == slow_out
    fast_events, slow_events = [], []
    while (event := fast.next_event()) is not None:
        fast_events.append(repr(event))
    while (event := slow.next_event()) is not None:
        slow_events.append(repr(event))
    assert fast_events == slow_events
    assert _state(fast) == _state(slow)


@pytest.mark.parametrize(
    ("window", "growth"),
    [
        ((1163, 1 << 20, 0), None),  # slow start, cwnd fully used: + the chunk's size
        ((1163, 100, 0), 0),  # congestion avoidance, less than a cwnd acked: no growth
        ((1170, 100, 1165), 1163),  # congestion avoidance, a cwnd acked: + one MTU
        ((1170, 100, 1000), 0),  # ... short of a cwnd
        ((9000, 100, 8990), 0),  # ... the flight not fully used: no growth
        ((9000, 1 << 20, 0), 0),  # slow start, not fully used: no growth
    ],
)
@pytest.mark.parametrize("interleaving", [True, False])
def test_the_answers_sack_moves_cwnd_as_the_general_path_does(
    window: tuple[int, int, int], growth: int | None, interleaving: bool
) -> None:
    """The SACK in the answer, taken by the small path and by the general path from
    the same cwnd, ssthresh and partial_bytes_acked: every branch of the cwnd rule
    (RFC 9260 7.2.1, 7.2.2) lands in the same state. (The echo twins reach congestion
    avoidance's growth only from a state a long transfer leaves, set here.)"""
    cwnd, ssthresh, partial = window
    with _small_path(True):
        _a, fast, base = _pair_with_one_outstanding(interleaving, True)
    with _small_path(False):
        _a2, slow, _ = _pair_with_one_outstanding(interleaving, True)
    rq = fast._retransmit
    assert rq is not None
    (chunk,) = rq.chunks.values()
    for assoc in (fast, slow):
        cc = assoc._retransmit.cc  # type: ignore[union-attr]
        cc.cwnd, cc.ssthresh, cc.partial_bytes_acked = cwnd, ssthresh, partial
    taken = [0, 0]
    with _small_path(True, taken):
        fast.receive_datagram(base, 0.03)
    assert taken == [0, 1]
    with _small_path(False):
        slow.receive_datagram(base, 0.03)
    assert _state(fast) == _state(slow)
    assert rq.cc.cwnd - cwnd == (chunk.size if growth is None else growth)


_FIELDS = {  # name: (offset, struct format) in [SACK] + DATA / I-DATA
    "sack_type": (12, "!B"),
    "sack_flags": (13, "!B"),
    "sack_length": (14, "!H"),
    "cum": (16, "!I"),
    "a_rwnd": (20, "!I"),
    "gaps": (24, "!H"),
    "dups": (26, "!H"),
    "type": (28, "!B"),
    "flags": (29, "!B"),
    "length": (30, "!H"),
    "tsn": (32, "!I"),
    "stream": (36, "!H"),
    "seq": (38, "!H"),  # DATA: the SSN; I-DATA: the reserved field
    "mid": (40, "!I"),  # I-DATA: the MID; DATA: the PPID
}
_KINDS_AND_FLAGS = (0, 1, 2, 3, 4, 6, 7, 11, 15, 19, 64, 192)

_FIELD_OPS = st.lists(
    st.one_of(
        # a field moved by a little, or (types and flags) set to another value
        st.tuples(st.just("field"), st.sampled_from(sorted(_FIELDS)), st.integers(-3, 3)),
        st.tuples(
            st.just("set"),
            st.sampled_from(["sack_type", "sack_flags", "type", "flags"]),
            st.sampled_from(_KINDS_AND_FLAGS),
        ),
        st.tuples(st.just("flip"), st.integers(0, 10_000)),
        st.tuples(st.just("truncate"), st.integers(0, 80)),
        st.tuples(st.just("extend"), st.binary(min_size=1, max_size=24)),
        st.tuples(st.just("data_only"), st.integers(-2, 2)),
        st.tuples(st.just("sack_only"), st.integers(-2, 2)),
        st.tuples(st.just("as_is")),
    ),
    min_size=1,
    max_size=12,
)


def _mutate(base: bytes, op: tuple[Any, ...], zero: bool) -> bytes:
    kind = op[0]
    if kind == "field":
        offset, fmt = _FIELDS[op[1]]
        current = struct.unpack_from(fmt, base, offset)[0]
        return _fields_packet(base, zero, **{op[1]: current + op[2]})
    if kind == "set":
        return _fields_packet(base, zero, **{op[1]: op[2]})
    if kind == "flip":
        data = bytearray(base)
        data[op[1] % len(data)] ^= 1 << (op[1] % 8)
        return bytes(data)
    if kind == "truncate":
        return base[: op[1]]
    if kind == "extend":
        return base + op[1]
    if kind == "data_only":
        # the DATA chunk alone (its TSN moved by op[1])
        data = bytearray(base[:12] + base[28:])
        tsn = int.from_bytes(data[16:20], "big")
        data[16:20] = ((tsn + op[1]) & 0xFFFFFFFF).to_bytes(4, "big")
        if not zero:
            data[8:12] = b"\0\0\0\0"
            data[8:12] = struct.pack("<I", packet_crc(bytes(data)))
        return bytes(data)
    if kind == "sack_only":
        data = bytearray(base[:28])
        cum = int.from_bytes(data[16:20], "big")
        data[16:20] = ((cum + op[1]) & 0xFFFFFFFF).to_bytes(4, "big")
        if not zero:
            data[8:12] = b"\0\0\0\0"
            data[8:12] = struct.pack("<I", packet_crc(bytes(data)))
        return bytes(data)
    return base


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_FIELD_OPS, interleaving=st.booleans(), zero=st.booleans())
def test_mutated_small_packets_get_the_same_verdicts(
    ops: list[tuple[Any, ...]], interleaving: bool, zero: bool
) -> None:
    with _small_path(True):
        _a, fast, base = _pair_with_one_outstanding(interleaving, zero)
    with _small_path(False):
        _a2, slow, base2 = _pair_with_one_outstanding(interleaving, zero)
    assert base == base2
    _feed(fast, slow, _mutate(base, ops[0], zero), 0.03)
    for op in ops[1:]:
        _feed(fast, slow, _mutate(base, op, zero), 0.04)
    _feed(fast, slow, base, 0.05)  # the real one, after whatever came before
    assert healthy(fast) and healthy(slow)


@pytest.mark.parametrize("interleaving", [True, False])
@pytest.mark.parametrize("zero", [True, False])
def test_the_small_path_takes_the_answer_and_refuses_what_is_off_the_common_case(
    interleaving: bool, zero: bool
) -> None:
    """Each field of the packet off by a little: the small path refuses every one (the
    general path decides), and takes the unchanged packet."""
    variants = {
        "tag": lambda p: p[:4] + bytes(a ^ 1 for a in p[4:8]) + p[8:],
        "checksum": lambda p: p[:8] + b"\x01\x02\x03\x04" + p[12:],
        "no checksum": lambda p: p[:8] + b"\0\0\0\0" + p[12:],
        "cum ahead": lambda p: _fields_packet(p, zero, cum=int.from_bytes(p[16:20], "big") + 1),
        "cum behind": lambda p: _fields_packet(p, zero, cum=int.from_bytes(p[16:20], "big") - 1),
        "gap block": lambda p: _fields_packet(p, zero, gaps=1),
        "duplicate": lambda p: _fields_packet(p, zero, dups=1),
        "tsn ahead": lambda p: _fields_packet(p, zero, tsn=int.from_bytes(p[32:36], "big") + 1),
        "tsn again": lambda p: _fields_packet(p, zero, tsn=int.from_bytes(p[32:36], "big") - 1),
        "stream": lambda p: _fields_packet(p, zero, stream=16),
        "not whole": lambda p: _fields_packet(p, zero, flags=p[29] & ~1),
        "immediate": lambda p: _fields_packet(p, zero, flags=p[29] | 8),
        "other kind": lambda p: _fields_packet(p, zero, type=0 if interleaving else 64),
        "short": lambda p: p[:-4],
        "long": lambda p: p + b"\0\0\0\0",
    }
    if interleaving:
        variants["mid"] = lambda p: _fields_packet(p, zero, mid=int.from_bytes(p[40:44], "big") + 1)
    else:
        variants["ssn"] = lambda p: _fields_packet(p, zero, seq=int.from_bytes(p[38:40], "big") + 1)
    if zero:
        del variants["no checksum"]  # (that is the packet: RFC 9653 negotiated)
    for name, variant in variants.items():
        with _small_path(True):
            _a, fast, base = _pair_with_one_outstanding(interleaving, zero)
        with _small_path(False):
            _a2, slow, _ = _pair_with_one_outstanding(interleaving, zero)
        taken = [0, 0]
        with _small_path(True, taken):
            fast.receive_datagram(variant(base), 0.03)
        assert taken == [0, 0], name
        with _small_path(False):
            slow.receive_datagram(variant(base), 0.03)
        _feed(fast, slow, base, 0.04)
    taken = [0, 0]
    with _small_path(True):
        _a, fast, base = _pair_with_one_outstanding(interleaving, zero)
    with _small_path(True, taken):
        fast.receive_datagram(base, 0.03)
    assert taken == [0, 1]
