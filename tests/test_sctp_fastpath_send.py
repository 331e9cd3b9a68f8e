"""The send side's fast paths against the loop without them.

``Association._take_rest`` cuts, numbers and encodes the rest of a message in one loop
once ``_take_data`` has cut its first fragment and the outbox would pick it again, and
goes on with the next message of the same stream while that is the only stream queued.
Switched off, ``_take_data`` cuts every fragment through ``Outbox.cut`` and
``RetransmitQueue.send_piece``: two pairs built from the same seeds, one with it and
one without, must put the same datagrams on a lossy, reordering, duplicating link and
end with the same deliveries and counters, for generated traffic (sizes, streams,
ordered / unordered, partially reliable, DATA and I-DATA, the peer's window, Max.Burst).
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sctp_pair import Pair, capture, config, healthy, make_pair
from webrtc_secure.sctp.association import Association, OutgoingMessage


def _without_take_rest(assoc: Association) -> Association:
    def untouched(
        message: OutgoingMessage,
        fsn: int,
        now: float,
        groups: list[list[bytes]],
        group: list[bytes],
        room: int,
        burst_left: int,
        max_payload: int,
    ) -> tuple[list[bytes], int, int]:
        return group, room, burst_left

    assoc._take_rest = untouched  # type: ignore[method-assign]
    return assoc


def _counting(assoc: Association) -> list[int]:
    """Count the fragments ``_take_rest`` cut (the test must exercise it)."""
    taken = [0]
    real = assoc._take_rest

    def counted(
        message: OutgoingMessage,
        fsn: int,
        now: float,
        groups: list[list[bytes]],
        group: list[bytes],
        room: int,
        burst_left: int,
        max_payload: int,
    ) -> tuple[list[bytes], int, int]:
        rq = assoc._retransmit
        assert rq is not None
        before = rq.next_unwrapped
        out = real(message, fsn, now, groups, group, room, burst_left, max_payload)
        taken[0] += rq.next_unwrapped - before
        return out

    assoc._take_rest = counted  # type: ignore[method-assign]
    return taken


Traffic = list[tuple[int, int, int]]  # (size, stream, kind: 0 reliable, 1 unordered, 2-3 PR)


def _run(
    seed: int,
    interleaving: bool,
    traffic: Traffic,
    *,
    fast: bool,
    loss: float,
    window: int,
    max_burst: int,
) -> tuple[list[tuple[str, bytes]], Pair, list[int]]:
    pair = make_pair(
        seed,
        a=config(
            seed * 2 + 1,
            interleaving=interleaving,
            remote_max_message_size=0,
            max_burst=max_burst,
        ),
        b=config(
            seed * 2 + 2,
            interleaving=interleaving,
            remote_max_message_size=0,
            receive_window=window,
        ),
        loss=loss,
        reorder=loss,
        duplicate=loss / 2,
        delay=0.01,
        jitter=0.003,
    )
    taken = [0]
    if fast:
        taken = _counting(pair.a)
    else:
        _without_take_rest(pair.a)
    seen = capture(pair)
    assert pair.connect()
    rng = random.Random(seed)
    for stream in range(3):  # BufferedAmountLow events are compared too
        pair.a.set_buffered_amount_low_threshold(stream, rng.choice((0, 1000, 30000)))
    for i, (size, stream, kind) in enumerate(traffic):
        data = rng.randbytes(size)
        if kind == 1:
            pair.a.send(stream, 53, data, pair.now, ordered=False)
        elif kind == 2:
            pair.a.send(stream, 51, data, pair.now, max_retransmits=i % 2)
        elif kind == 3:
            pair.a.send(stream, 51, data, pair.now, lifetime=0.02 * (i % 3))
        else:
            pair.a.send(stream, 53, data, pair.now)
    pair.run_until(lambda: False, 300)
    return seen, pair, taken


def _same(**kwargs: object) -> int:
    fast_seen, fast, taken = _run(fast=True, **kwargs)  # type: ignore[arg-type]
    slow_seen, slow, _ = _run(fast=False, **kwargs)  # type: ignore[arg-type]
    assert fast_seen == slow_seen
    assert fast.messages("b") == slow.messages("b")
    # BufferedAmountLow among them (by repr: an error in AssociationClosed compares by
    # identity)
    assert list(map(repr, fast.pump.a.events)) == list(map(repr, slow.pump.a.events))
    assert fast.a.stats == slow.a.stats and fast.b.stats == slow.b.stats
    assert healthy(fast.a) and healthy(fast.b)
    return taken[0]


def test_large_messages_on_a_lossy_link_take_the_same_path_on_the_wire() -> None:
    for interleaving in (True, False):
        traffic = [(65536, 0 if i < 8 else i % 2, i % 2) for i in range(12)]
        taken = _same(
            seed=5,
            interleaving=interleaving,
            traffic=traffic,
            loss=0.05,
            window=1 << 20,
            max_burst=4,
        )
        assert taken > 100  # _take_rest cut many of the fragments


def test_small_messages_on_one_stream_take_the_same_path_on_the_wire() -> None:
    """1200-octet messages (two fragments each, the next message's first one sharing
    the tail's packet), ordered and unordered on one stream: _take_rest goes on from
    one message to the next."""
    for interleaving in (True, False):
        traffic = [(1200, 1, int(i % 3 == 0)) for i in range(300)]
        taken = _same(
            seed=6,
            interleaving=interleaving,
            traffic=traffic,
            loss=0.02,
            window=1 << 20,
            max_burst=4,
        )
        assert taken > 200  # of 600 fragments: later messages' ones too


sizes = st.sampled_from((1, 700, 1120, 1200, 2300, 5000, 20000, 70000))
traffic_strategy = st.lists(
    st.tuples(sizes, st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=12
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    interleaving=st.booleans(),
    traffic=traffic_strategy,
    loss=st.sampled_from((0.0, 0.03, 0.15)),
    window=st.sampled_from((16384, 65536, 1 << 20)),
    max_burst=st.sampled_from((1, 4)),
)
def test_generated_traffic_is_the_same_with_and_without_take_rest(
    seed: int,
    interleaving: bool,
    traffic: Traffic,
    loss: float,
    window: int,
    max_burst: int,
) -> None:
    _same(
        seed=seed,
        interleaving=interleaving,
        traffic=traffic,
        loss=loss,
        window=window,
        max_burst=max_burst,
    )
