"""The association's receive fast path (``Association._receive_fast``: DATA / I-DATA and
SACK packets without chunk objects) against the general path (``parse_packet`` and
``_handle_packet``).

Two associations built from the same seeds, one with the fast path switched off, take
the same datagrams: after each one their events, counters (drops by reason included),
state, timers and the packets they answer with must be equal. The datagrams are real
traffic over a lossy, reordering, duplicating link, the same traffic mutated (bits
flipped, truncated, extended, chunk lengths and types changed, packets glued together,
wrong tags and checksums) and generated chunk sequences.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sctp_pair import Pair, capture, config, healthy, lossy_pair, make_pair
from tests.test_sctp_association_hostile import _chunks
from webrtc_secure.sctp.association import Association, _ResetRequest
from webrtc_secure.sctp.chunks import (
    DATA_HEADER_SIZE,
    IDATA_HEADER_SIZE,
    Chunk,
    DataChunk,
    IDataChunk,
    SackChunk,
)
from webrtc_secure.sctp.packet import Packet, parse_packet, serialize_packet
from webrtc_secure.sctp.receive_queue import ReceiveQueue, TsnTracker, Verdict


def _general_only(assoc: Association) -> Association:
    assoc._receive_fast = lambda data, now: False  # type: ignore[method-assign]
    return assoc


def _no_plain_sack(assoc: Association) -> Association:
    """Switch off _produce's shortcut for a flush of one plain SACK."""
    assoc._send_plain_sack = lambda receive: False  # type: ignore[method-assign]
    return assoc


def _counting(assoc: Association) -> list[int]:
    """Count the packets the fast path took."""
    taken = [0]
    real = assoc._receive_fast

    def counted(data: bytes, now: float) -> bool:
        handled = real(data, now)
        taken[0] += handled
        return handled

    assoc._receive_fast = counted  # type: ignore[method-assign]
    return taken


def _events(assoc: Association) -> list[object]:
    out = []
    while (event := assoc.next_event()) is not None:
        out.append(event)
    return out


def _same(fast: Association, general: Association, now: float) -> None:
    assert _events(fast) == _events(general)
    assert fast.stats == general.stats
    assert fast.state == general.state
    assert fast.get_timer() == general.get_timer()
    assert fast.datagrams_to_send(now) == general.datagrams_to_send(now)


# --- whole transfers: the fast path changes nothing on the wire -------------------------


def _transfer(
    seed: int, interleaving: bool, fast: bool, zero: bool = True, plain_sack: bool = True
) -> tuple[list[tuple[str, bytes]], Pair]:
    """Both ends send mixed sizes through 10 % loss with reordering and duplicates."""
    pair = lossy_pair(seed, interleaving=interleaving, zero_checksum=zero)
    if not fast:
        _general_only(pair.a)
        _general_only(pair.b)
    if not plain_sack:
        _no_plain_sack(pair.a)
        _no_plain_sack(pair.b)
    seen = capture(pair)
    assert pair.connect(both=True)
    rng = random.Random(seed)
    for side in (pair.a, pair.b):
        for i in range(40):
            size = rng.choice((1, 300, 1200, 5000, 70000))
            side.send(i % 3, 53, rng.randbytes(size), pair.now, ordered=i % 4 != 0)
    expected = 80

    def delivered() -> bool:
        return len(pair.messages("a")) + len(pair.messages("b")) >= expected

    assert pair.run_until(delivered, 600)
    pair.pump.run_for(2)
    return seen, pair


@pytest.mark.parametrize("zero", [True, False], ids=["zero-checksum", "crc32c"])
@pytest.mark.parametrize("interleaving", [True, False])
def test_a_lossy_transfer_is_the_same_datagram_for_datagram(interleaving: bool, zero: bool) -> None:
    fast_seen, fast = _transfer(3, interleaving, fast=True, zero=zero)
    general_seen, general = _transfer(3, interleaving, fast=False, zero=zero)
    assert fast.a.zero_checksum is fast.b.zero_checksum is zero
    assert fast_seen == general_seen
    for side in ("a", "b"):
        assert fast.messages(side) == general.messages(side)
    assert fast.a.stats == general.a.stats and fast.b.stats == general.b.stats
    assert fast.a.stats.retransmissions > 0  # the loss was repaired, gap blocks were sent
    assert healthy(fast.a) and healthy(fast.b)


@pytest.mark.parametrize("zero", [True, False], ids=["zero-checksum", "crc32c"])
@pytest.mark.parametrize("interleaving", [True, False])
def test_a_flush_of_one_plain_sack_is_what_the_general_steps_build(
    interleaving: bool, zero: bool
) -> None:
    """_produce's shortcut for a flush with only a SACK without gaps or duplicates
    (_send_plain_sack) against the general steps, on a lossy transfer both ways."""
    calls = [0]
    real = Association._send_plain_sack

    def counted(self: Association, receive: Any) -> bool:
        calls[0] += 1
        return real(self, receive)

    Association._send_plain_sack = counted  # type: ignore[method-assign]
    try:
        short_seen, short = _transfer(8, interleaving, fast=True, zero=zero)
    finally:
        Association._send_plain_sack = real  # type: ignore[method-assign]
    general_seen, general = _transfer(8, interleaving, fast=True, zero=zero, plain_sack=False)
    assert calls[0] > 3  # (both ends send: most SACKs travel with DATA)
    assert short_seen == general_seen
    for side in ("a", "b"):
        assert short.messages(side) == general.messages(side)
    assert short.a.stats == general.a.stats and short.b.stats == general.b.stats


@pytest.mark.parametrize("interleaving", [True, False])
def test_every_packet_built_is_what_the_generic_codec_builds(interleaving: bool) -> None:
    """The send path builds packets from chunk octets and a precomputed common header
    (and SACKs straight from the tracker): each one must parse, and re-serialize with
    the chunk classes to the same octets."""
    seen, _pair = _transfer(4, interleaving, fast=True)
    kinds: set[str] = set()
    for _direction, datagram in seen:
        packet = parse_packet(datagram, allow_zero_checksum=True)
        kinds.update(type(c).__name__ for c in packet.chunks)
        zero = datagram[8:12] == bytes(4)
        assert serialize_packet(packet, zero_checksum=zero) == datagram
    data = "IDataChunk" if interleaving else "DataChunk"
    assert {data, "SackChunk", "InitChunk", "CookieEchoChunk"} <= kinds


@pytest.mark.parametrize("zero", [True, False], ids=["zero-checksum", "crc32c"])
def test_the_fast_path_takes_data_and_sack_packets(zero: bool) -> None:
    pair = make_pair(5, a=config(11, zero_checksum=zero), b=config(12, zero_checksum=zero))
    a_taken, b_taken = _counting(pair.a), _counting(pair.b)
    assert pair.connect()
    # RFC 9653 between our peers; a peer without it gets CRC32c, checked on the fast path
    assert pair.a.zero_checksum is pair.b.zero_checksum is zero
    for _ in range(50):
        pair.a.send(0, 53, bytes(1200), pair.now)
    assert pair.run_until(lambda: len(pair.messages("b")) == 50, 30)
    # every packet after the handshake (INIT and COOKIE-ECHO in, INIT-ACK and
    # COOKIE-ACK out): DATA to b, SACKs to a
    assert b_taken[0] == pair.b.stats.packets_in - 2 >= 50
    assert a_taken[0] == pair.a.stats.packets_in - 2 > 0
    assert pair.a.stats.dropped == pair.b.stats.dropped == {}


# --- the same datagrams, hostile: same drops and answers ----------------------------------


def _lockstep(a: Association, b: Association, twin: Association, now: float) -> None:
    """Exchange packets until both ends are quiet; ``twin`` gets what ``b`` gets and
    must answer the same."""
    for _ in range(100):
        moved = False
        for datagram in a.datagrams_to_send(now):
            b.receive_datagram(datagram, now)
            twin.receive_datagram(datagram, now)
            moved = True
        answers = b.datagrams_to_send(now)
        assert twin.datagrams_to_send(now) == answers
        for datagram in answers:
            a.receive_datagram(datagram, now)
            moved = True
        if not moved:
            return
    raise AssertionError("no quiet point")


def _twins(interleaving: bool, zero: bool = True) -> tuple[Association, Association, Association]:
    """An established ``a`` and ``b``, and ``b``'s twin (same seed, same input, general
    path only); ``b`` has data in flight that ``a`` received but whose SACK b never
    saw, so SACKs sent to b have something to acknowledge. 16 streams: the generated
    chunks (stream ids 0..20) also name streams that do not exist."""
    a = Association(config(21, interleaving=interleaving, zero_checksum=zero, streams=16))
    b = Association(config(22, interleaving=interleaving, zero_checksum=zero, streams=16))
    twin = _general_only(
        Association(config(22, interleaving=interleaving, zero_checksum=zero, streams=16))
    )
    a.connect(0.0)
    _lockstep(a, b, twin, 0.0)
    assert a.is_established and b.is_established and twin.is_established
    a.send(0, 53, b"x" * 3000, 0.0)
    a.send(1, 51, b"y", 0.0, ordered=False)
    _lockstep(a, b, twin, 0.0)
    assert _events(b) == _events(twin)
    for i in range(6):
        b.send(0, 53, bytes([i]) * 900, 0.0)
        twin.send(0, 53, bytes([i]) * 900, 0.0)
    sent = b.datagrams_to_send(0.0)
    assert twin.datagrams_to_send(0.0) == sent and sent
    for datagram in sent:
        a.receive_datagram(datagram, 0.0)  # a's SACKs are dropped
    return a, b, twin


def _traffic(a: Association, count: int, rng: random.Random) -> list[bytes]:
    """Packets a sends next (DATA and a SACK, not delivered), assorted sizes and streams."""
    for i in range(count):
        a.send(i % 2, 53, rng.randbytes(rng.choice((1, 100, 1200, 4000))), 0.0)
    return a.datagrams_to_send(0.0)


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("as_is"), st.integers(0, 63)),
        st.tuples(st.just("flip"), st.integers(0, 63), st.integers(0, 1 << 16)),
        st.tuples(st.just("truncate"), st.integers(0, 63), st.integers(0, 1300)),
        st.tuples(st.just("extend"), st.integers(0, 63), st.binary(max_size=24)),
        st.tuples(st.just("concat"), st.integers(0, 63), st.integers(0, 63)),
        st.tuples(st.just("length"), st.integers(0, 63), st.integers(-8, 8)),
        st.tuples(st.just("type"), st.integers(0, 63), st.sampled_from([0, 1, 3, 6, 64, 192])),
        st.tuples(st.just("tag"), st.integers(0, 63), st.integers(0, 0xFFFFFFFF)),
        st.tuples(st.just("checksum"), st.integers(0, 63), st.integers(1, 0xFFFFFFFF)),
        st.tuples(st.just("sack"), st.integers(0, 63), st.integers(-4, 4), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=25,
)


def _mutate(base: bytes, op: tuple[Any, ...], pool: list[bytes], b: Association) -> bytes:
    kind = op[0]
    if kind == "flip":
        data = bytearray(base)
        data[op[2] % len(data)] ^= 1 << (op[2] % 8)
        return bytes(data)
    if kind == "truncate":
        return base[: op[2]]
    if kind == "extend":
        return base + op[2]
    if kind == "concat":
        return base + pool[op[2] % len(pool)][12:]
    if kind == "length":
        length = max(0, min(0xFFFF, struct.unpack_from("!H", base, 14)[0] + op[2]))
        return base[:14] + struct.pack("!H", length) + base[16:]
    if kind == "type":
        return base[:12] + bytes([op[2]]) + base[13:]
    if kind == "tag":
        return base[:4] + struct.pack("!I", op[2]) + base[8:]
    if kind == "checksum":
        return base[:8] + struct.pack("<I", op[2]) + base[12:]
    if kind == "sack":
        # a SACK near b's real cumulative ack point, with gap blocks
        rq = b._retransmit
        assert rq is not None
        cum = (rq.cumulative_tsn + op[2]) & 0xFFFFFFFF
        gaps = tuple((2 * i + 1, 2 * i + 1 + op[3]) for i in range(op[3]))
        return _packet(b._local_tag, SackChunk(cum, 1 << 20, gaps, ()), zero=b.zero_checksum)
    return base


def _packet(tag: int, *chunks: Chunk, zero: bool = True) -> bytes:
    return serialize_packet(Packet(5000, 5000, tag, tuple(chunks)), zero_checksum=zero)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OPS, st.booleans(), st.integers(0, 1000), st.booleans())
def test_mutated_traffic_gets_the_same_verdicts(
    ops: list[tuple[Any, ...]], interleaving: bool, seed: int, zero: bool
) -> None:
    a, fast, general = _twins(interleaving, zero)
    pool = _traffic(a, 12, random.Random(seed))
    for op in ops:
        datagram = _mutate(pool[op[1] % len(pool)], op, pool, fast)
        fast.receive_datagram(datagram, 0.5)
        general.receive_datagram(datagram, 0.5)
        _same(fast, general, 0.5)
    assert healthy(fast) and healthy(general)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(_chunks, min_size=1, max_size=4), min_size=1, max_size=8),
    st.booleans(),
    st.booleans(),
)
def test_generated_chunk_sequences_get_the_same_verdicts(
    packets: list[list[Chunk]], interleaving: bool, zero: bool
) -> None:
    _a, fast, general = _twins(interleaving, zero)
    receive = fast._receive
    assert receive is not None
    next_tsn = (receive.cumulative_tsn + 1) & 0xFFFFFFFF
    tag = fast._local_tag
    for chunks in packets:
        near = [
            dataclasses.replace(c, tsn=(next_tsn + c.tsn % 64) & 0xFFFFFFFF)
            if isinstance(c, DataChunk | IDataChunk) and c.tsn & 1
            else c
            for c in chunks
        ]
        datagram = _packet(tag, *near, zero=zero)
        fast.receive_datagram(datagram, 0.5)
        general.receive_datagram(datagram, 0.5)
        _same(fast, general, 0.5)
    assert healthy(fast) and healthy(general)


@pytest.mark.parametrize("interleaving", [True, False])
def test_data_chunks_off_the_common_case_get_the_same_verdicts(interleaving: bool) -> None:
    """The fast path handles a data chunk of the negotiated kind, without the I bit, on
    an existing stream inline and hands the others to ``_data_received``: each of those
    alone and next to a common one, both orders, against the general path."""
    _a, fast, general = _twins(interleaving)
    receive = fast._receive
    assert receive is not None
    tsn = (receive.cumulative_tsn + 1) & 0xFFFFFFFF
    mid = 1000

    def data(stream_id: int, *, kind: bool = interleaving, immediate: bool = False) -> Chunk:
        nonlocal tsn, mid
        tsn, mid = (tsn + 1) & 0xFFFFFFFF, mid + 1
        if kind:
            return IDataChunk(tsn - 1, stream_id, mid, 53, 0, b"abc", True, immediate=immediate)
        return DataChunk(tsn - 1, stream_id, mid & 0xFFFF, 53, b"abc", True, immediate=immediate)

    rare = [
        lambda: data(17),  # a stream that does not exist (16 negotiated)
        lambda: data(3, immediate=True),  # the I bit: SACK at once
        lambda: data(3, kind=not interleaving),  # the kind not negotiated
    ]
    for make in rare:
        for chunks in ([make()], [data(2), make()], [make(), data(2)]):
            datagram = _packet(fast._local_tag, *chunks)
            fast.receive_datagram(datagram, 0.5)
            general.receive_datagram(datagram, 0.5)
            _same(fast, general, 0.5)
    dropped = fast.stats.dropped
    assert dropped["data_bad_stream"] == 3 and dropped["data_wrong_kind"] == 3
    assert healthy(fast) and healthy(general)


# --- no garbage cycles per message ----------------------------------------------------------


@pytest.mark.parametrize("partially_reliable", [False, True])
def test_messages_leave_no_reference_cycles(partially_reliable: bool) -> None:
    """A message and its chunks are freed by reference counting once acknowledged: a
    cycle per message would leave the work to the cyclic GC (collections inside the
    transfer, and passes over the whole heap)."""
    pair = make_pair(9)
    assert pair.connect()
    gc.collect()
    gc.disable()
    try:
        for i in range(200):
            pair.a.send(
                0,
                53,
                bytes(1200 if i % 2 else 30000),
                pair.now,
                max_retransmits=5 if partially_reliable else None,
            )
        assert pair.run_until(lambda: len(pair.messages("b")) == 200, 60)
        pair.pump.run_for(1)
        pair.pump.a.events.clear()
        pair.pump.b.events.clear()
        assert gc.collect() == 0
    finally:
        gc.enable()


# --- send() says when a flush would send nothing ------------------------------------------


@pytest.mark.parametrize("loss", [0.0, 0.05])
@pytest.mark.parametrize("interleaving", [True, False])
def test_a_send_reported_not_due_has_nothing_to_flush(interleaving: bool, loss: float) -> None:
    """``Association.send`` returns False only when ``datagrams_to_send`` would then
    send nothing (cwnd, the peer's window or Max.Burst used up, nothing else due), so
    the owner's skipped flush loses nothing: no packet, no event, the same timer. The
    owner here flushes after a True only, as the channel manager does, through loss
    and reordering; every message still arrives."""
    pair = make_pair(
        7,
        a=config(15, interleaving=interleaving, remote_max_message_size=0),
        b=config(16, interleaving=interleaving, remote_max_message_size=0),
        loss=loss,
        reorder=0.1,
        delay=0.01,
    )
    assert pair.connect()
    rng = random.Random(7)
    if not loss:  # a window that Max.Burst, not cwnd, limits
        for _ in range(200):
            pair.a.send(1, 53, bytes(1200), pair.now)
        assert pair.run_until(lambda: len(pair.messages("b")) == 200, 60)
        pair.pump.b.events.clear()
    sent: list[bytes] = []
    verdicts = {True: 0, False: 0}
    for _ in range(400):
        message = rng.randbytes(rng.choice((1, 100, 300, 1200, 3000, 20000)))
        sent.append(message)
        timer = pair.a.get_timer()
        due = pair.a.send(0, 53, message, pair.now)
        verdicts[due] += 1
        if due:
            pair.pump.flush()
        else:
            assert pair.a.next_event() is None
            assert pair.a.datagrams_to_send(pair.now) == []
            assert pair.a.get_timer() == timer
        if rng.random() < 0.1:
            pair.pump.run_for(rng.choice((0.005, 0.05)))  # SACKs come back
    assert verdicts[True] > 0 and verdicts[False] > 0
    assert pair.run_until(lambda: len(pair.messages("b")) == len(sent), 300)
    assert [m.data for m in pair.messages("b")] == sent
    assert healthy(pair.a) and healthy(pair.b)


@pytest.mark.parametrize("interleaving", [True, False])
def test_send_is_due_exactly_when_max_burst_takes_one_more_chunk(interleaving: bool) -> None:
    """The boundary of the Max.Burst test in ``send``'s answer: with data in flight and
    the burst's adjusted cwnd reached (no octet left), False and nothing to send; with
    one octet left, True and one packet (RFC 9260 6.1 B: the packet that crosses the
    window may overshoot it by less than its size), after which it is reached."""
    pair = make_pair(
        8, a=config(17, interleaving=interleaving), b=config(18, interleaving=interleaving)
    )
    assert pair.connect()
    a, now = pair.a, pair.now
    header = IDATA_HEADER_SIZE if interleaving else DATA_HEADER_SIZE
    assert a.send(0, 53, bytes(10), now) is True  # nothing in flight: always due
    assert len(a.datagrams_to_send(now)) == 1  # in flight now, unacknowledged
    _events(a)  # BufferedAmountLow (the threshold is 0): events make a flush due
    a._burst_left = 0
    assert a.send(0, 53, bytes(101), now) is False
    assert a.next_event() is None and a.datagrams_to_send(now) == []
    a._burst_left = 1
    assert a.send(0, 53, bytes(1), now) is True  # two messages queued: 101 and 1 octets
    packets = a.datagrams_to_send(now)
    assert len(packets) == 1
    chunks = parse_packet(packets[0], allow_zero_checksum=True).chunks
    # the packet that crosses the limit is filled (6.1 B: one packet may breach)
    assert [len(c.user_data) for c in chunks] == [101, 1]  # type: ignore[attr-defined]
    assert a._burst_left == 1 - (header + 104) - (header + 4)
    _events(a)  # BufferedAmountLow again (the queue emptied)
    assert a.send(0, 53, bytes(1), now) is False  # no new packet: this one waits
    assert a.next_event() is None and a.datagrams_to_send(now) == []


# --- the receive queue's inline in-order TSN advance ---------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.integers(-3, 40), max_size=80),
    st.booleans(),
)
def test_receive_chunk_tracks_tsns_as_the_tracker_does(
    initial: int, offsets: list[int], interleaving: bool
) -> None:
    """``ReceiveQueue.receive_chunk`` advances the cumulative TSN inline when a chunk
    is the next one with nothing above (I-DATA); the TsnTracker's own classify / add /
    note_duplicate must give the same verdicts, cumulative TSN, gap blocks and
    duplicates for any arrival order, across the 32-bit wrap."""
    queue = ReceiveQueue(initial, interleaving=interleaving)
    reference = TsnTracker(initial)
    for mid, offset in enumerate(offsets):
        tsn = (initial + offset) & 0xFFFFFFFF
        # unordered whole messages with their own MIDs: reassembly accepts each
        verdict = queue.receive_chunk(tsn, 0, mid, 53, b"x", True, True, True, 0)
        expected = reference.classify(tsn)
        if expected is Verdict.ACCEPTED:
            reference.add(tsn)
        elif expected is Verdict.DUPLICATE:
            reference.note_duplicate(tsn)
        assert verdict is expected
        assert queue.tracker.cumulative == reference.cumulative
        assert queue.tracker.cumulative_unwrapped == reference.cumulative_unwrapped
        assert queue.tracker.gap_blocks() == reference.gap_blocks()
    assert queue.tracker.take_duplicates() == reference.take_duplicates()
    assert len(queue.pop_messages()) == len(offsets) - _refused(offsets)


def _refused(offsets: list[int]) -> int:
    """How many of ``offsets`` a fresh receiver does not accept (repeats, or at or
    before the initial TSN)."""
    seen: set[int] = set()
    refused = 0
    for offset in offsets:
        if offset < 0 or offset in seen:
            refused += 1
        seen.add(offset)
    return refused


# --- packets of two I-DATA chunks (Association._receive_two) ----------------------------


def _stream_1200(seed: int, two: bool, loss: float) -> tuple[list[tuple[str, bytes]], Pair, int]:
    """a sends 1200-octet messages on one stream (plus a few of other sizes on a
    second) through ``loss`` with reordering and duplicates; b answers some. Returns
    the datagrams, the pair, and how many packets _receive_two took."""
    pair = lossy_pair(seed, interleaving=True, zero_checksum=True) if loss else make_pair(
        seed, a=config(seed * 2 + 1), b=config(seed * 2 + 2)
    )
    taken = [0]
    real = Association._receive_two

    def counted(self: Association, *args: Any) -> bool:
        handled = real(self, *args) if two else False
        taken[0] += handled
        return handled

    seen = capture(pair)
    Association._receive_two = counted  # type: ignore[method-assign, assignment]
    try:
        assert pair.connect(both=True)
        rng = random.Random(seed)
        for i in range(120):
            if i % 10 == 9:
                pair.a.send(1, 53, rng.randbytes(rng.choice((1, 300, 5000))), pair.now)
            else:
                pair.a.send(0, 53, rng.randbytes(1200), pair.now, ordered=i % 7 != 0)
            if i % 15 == 0:
                pair.b.send(0, 51, rng.randbytes(1200), pair.now)
        assert pair.run_until(lambda: len(pair.messages("b")) >= 120, 600)
        pair.pump.run_for(2)
    finally:
        Association._receive_two = real  # type: ignore[method-assign]
    return seen, pair, taken[0]


@pytest.mark.parametrize("loss", [0.0, 0.1], ids=["clean", "lossy"])
def test_two_idata_packets_are_taken_as_the_loop_takes_them(loss: float) -> None:
    """A stream of 1200-octet messages is mostly packets of two I-DATA chunks (a
    message's tail and the next one's head): with and without _receive_two, every
    datagram, delivery and counter is the same."""
    two_seen, two, taken = _stream_1200(6, True, loss)
    loop_seen, loop, untaken = _stream_1200(6, False, loss)
    assert taken > 40 and untaken == 0, (taken, untaken)
    assert two_seen == loop_seen
    for side in ("a", "b"):
        assert two.messages(side) == loop.messages(side)
    assert two.a.stats == loop.a.stats and two.b.stats == loop.b.stats
    assert healthy(two.a) and healthy(two.b)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=100.0)), min_size=6, max_size=6
    )
)
def test_get_timer_is_the_earliest_deadline(deadlines: list[float | None]) -> None:
    """get_timer looks at T1, T2 and the RE-CONFIG request only when one is set (they
    are None for most of an association's life): it must still be the earliest of all
    six deadlines, whichever are set."""
    pair = make_pair(5, a=config(3), b=config(4))
    assert pair.connect()
    assoc = pair.a
    rq = assoc._retransmit
    assert rq is not None
    t1, t2, ack, hb, t3, request = deadlines
    assoc._t1, assoc._t2, assoc._ack_deadline, assoc._hb_deadline = t1, t2, ack, hb
    rq.t3_deadline = t3
    assoc._reset_request = None
    if request is not None:
        assoc._reset_request = _ResetRequest(seq=0, streams=(1,), last_tsn=0, deadline=request)
    set_ = [d for d in deadlines if d is not None]
    assert assoc.get_timer() == (min(set_) if set_ else None)
