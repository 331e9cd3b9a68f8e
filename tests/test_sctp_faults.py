"""Two Associations through the fault simulator (tests/netsim.py, fake clock) at 0, 10,
20 and 30 % loss with reordering and duplication, several seeds, both ways at once.

What must hold on every run:

* reliable ordered streams: every message arrives exactly once, intact, in order;
* a reliable unordered stream: every message exactly once, intact;
* a partially reliable stream limited by retransmissions: no TSN of it goes on the wire
  more than 1 + max_retransmits times, and what arrives arrives once, in order;
* a partially reliable stream limited by lifetime: no fragment of it is (re)sent after
  its message's lifetime ended;
* neither partially reliable stream stalls the others, and the association then shuts
  down gracefully on both sides.

``python -m tests.test_sctp_faults`` prints the loss -> delivered / duration table.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.sctp_pair import Pair, capture, config, healthy, make_pair
from webrtc_secure.sctp.events import AssociationClosed
from webrtc_secure.sctp.packet import parse_packet

LOSSES = (0.0, 0.1, 0.2, 0.3)
SEEDS = range(6)
ORDERED_STREAMS = (0, 1, 2)
UNORDERED_STREAM = 3
PR_RTX_STREAM = 4  # max_retransmits = 1
PR_LIFETIME_STREAM = 5  # lifetime = 2 s, single-fragment messages
MAX_RETRANSMITS = 1
LIFETIME = 2.0


@dataclass
class Outcome:
    loss: float
    seed: int
    interleaving: bool
    reliable_sent: int
    reliable_delivered: int
    pr_sent: int
    pr_delivered: int
    duration: float | None  # fake seconds until every reliable message arrived
    closed_at: float | None
    retransmissions: int


def _message(stream: int, index: int, rng: random.Random, size: int) -> bytes:
    # Self-describing payload: stream, index, then random bytes.
    return struct.pack("!HI", stream, index) + rng.randbytes(size)


def run_scenario(loss: float, seed: int, *, interleaving: bool = True) -> tuple[Outcome, Pair]:
    pair = make_pair(
        seed,
        a=config(seed * 2 + 1, interleaving=interleaving, remote_max_message_size=0),
        b=config(seed * 2 + 2, interleaving=interleaving, remote_max_message_size=0),
        loss=loss,
        reorder=0.2,
        duplicate=0.05,
        delay=0.02,
        jitter=0.01,
    )
    rng = random.Random(seed)
    seen = capture(pair)
    pair.a.connect(pair.now)
    pair.b.connect(pair.now)  # WebRTC peers may both send INIT
    sent: dict[str, dict[int, list[bytes]]] = {"a": {}, "b": {}}
    deadlines: dict[bytes, float] = {}
    for side, assoc in (("a", pair.a), ("b", pair.b)):
        for i in range(60):
            stream = ORDERED_STREAMS[i % 3]
            size = rng.choice((10, 900, 3000, 20000))
            msg = _message(stream, i, rng, size)
            assoc.send(stream, 51, msg, pair.now)
            sent[side].setdefault(stream, []).append(msg)
        for i in range(20):
            msg = _message(UNORDERED_STREAM, i, rng, rng.randint(1, 4000))
            assoc.send(UNORDERED_STREAM, 53, msg, pair.now, ordered=False)
            sent[side].setdefault(UNORDERED_STREAM, []).append(msg)
        for i in range(40):
            msg = _message(PR_RTX_STREAM, i, rng, rng.randint(1, 2500))
            assoc.send(PR_RTX_STREAM, 53, msg, pair.now, max_retransmits=MAX_RETRANSMITS)
            sent[side].setdefault(PR_RTX_STREAM, []).append(msg)
    # The lifetime stream is fed over time, so some messages expire and some do not.
    lifetime_sent: dict[str, list[bytes]] = {"a": [], "b": []}

    def reliable_done() -> bool:
        for side in ("a", "b"):
            other = "b" if side == "a" else "a"
            got = Counter(m.stream_id for m in pair.messages(other))
            for stream in (*ORDERED_STREAMS, UNORDERED_STREAM):
                if got[stream] < len(sent[side][stream]):
                    return False
        return True

    for step in range(10):
        for side, assoc in (("a", pair.a), ("b", pair.b)):
            msg = _message(PR_LIFETIME_STREAM, step, rng, 200)
            assoc.send(PR_LIFETIME_STREAM, 51, msg, pair.now, lifetime=LIFETIME)
            lifetime_sent[side].append(msg)
            deadlines[msg[:6]] = pair.now + LIFETIME
        pair.pump.run_for(0.5)
    start = 0.0
    done = pair.run_until(reliable_done, 3000)
    duration = pair.now - start if done else None
    pair.a.shutdown(pair.now)
    closed = pair.run_until(pair.closed, 600)

    # --- checks ------------------------------------------------------------------------
    assert done, f"loss {loss} seed {seed}: reliable streams incomplete at t={pair.now}"
    assert closed, f"loss {loss} seed {seed}: shutdown did not complete"
    for side in ("a", "b"):
        other = "b" if side == "a" else "a"
        received = pair.messages(other)
        for stream in ORDERED_STREAMS:
            got = [m.data for m in received if m.stream_id == stream]
            assert got == sent[side][stream], f"stream {stream} {side}->{other}"
        unordered = [m.data for m in received if m.stream_id == UNORDERED_STREAM]
        assert sorted(unordered) == sorted(sent[side][UNORDERED_STREAM])
        for stream, expected in (
            (PR_RTX_STREAM, sent[side][PR_RTX_STREAM]),
            (PR_LIFETIME_STREAM, lifetime_sent[side]),
        ):
            got = [m.data for m in received if m.stream_id == stream]
            assert len(set(got)) == len(got), "a partially reliable message arrived twice"
            assert got == [m for m in expected if m in set(got)], "out of order or altered"
    # Wire checks: retransmission limit and lifetime of the partially reliable streams.
    transmissions: Counter[tuple[str, int]] = Counter()
    time_of: list[float] = []
    for (direction, data), entry in zip(seen, pair.sim.trace[-len(seen) :], strict=True):
        time_of.append(entry.time)
        for chunk in parse_packet(data, allow_zero_checksum=True).chunks:
            stream = getattr(chunk, "stream_id", None)
            if stream == PR_RTX_STREAM:
                transmissions[(direction, chunk.tsn)] += 1  # type: ignore[union-attr]
            elif stream == PR_LIFETIME_STREAM:
                payload = chunk.user_data  # type: ignore[union-attr]
                assert entry.time <= deadlines[payload[:6]] + 1e-9, "sent after its lifetime"
    assert transmissions and max(transmissions.values()) <= 1 + MAX_RETRANSMITS
    assert healthy(pair.a) and healthy(pair.b)
    for side in ("a", "b"):
        assert pair.events(side, AssociationClosed) == [AssociationClosed(None)]

    reliable_sent = sum(len(v) for s in sent.values() for k, v in s.items() if k != PR_RTX_STREAM)
    pr_streams = (PR_RTX_STREAM, PR_LIFETIME_STREAM)
    pr_sent = sum(len(s[PR_RTX_STREAM]) for s in sent.values()) + sum(
        len(v) for v in lifetime_sent.values()
    )
    all_received = pair.messages("a") + pair.messages("b")
    outcome = Outcome(
        loss=loss,
        seed=seed,
        interleaving=interleaving,
        reliable_sent=reliable_sent,
        reliable_delivered=sum(1 for m in all_received if m.stream_id not in pr_streams),
        pr_sent=pr_sent,
        pr_delivered=sum(1 for m in all_received if m.stream_id in pr_streams),
        duration=duration,
        closed_at=pair.now,
        retransmissions=pair.a.stats.retransmissions + pair.b.stats.retransmissions,
    )
    return outcome, pair


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loss", LOSSES, ids=lambda v: f"{int(v * 100)}%")
@pytest.mark.parametrize("interleaving", [True, False], ids=["I-DATA", "DATA"])
def test_delivery_under_faults(loss: float, seed: int, interleaving: bool) -> None:
    outcome, _ = run_scenario(loss, seed, interleaving=interleaving)
    assert outcome.reliable_delivered == outcome.reliable_sent
    if loss == 0.0:
        assert outcome.pr_delivered == outcome.pr_sent


def main() -> None:
    print(
        "| loss | mode | seeds | reliable delivered | PR delivered | duration (fake s) "
        "min / median / max | retransmissions (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    for interleaving in (True, False):
        for loss in LOSSES:
            outcomes = [run_scenario(loss, s, interleaving=interleaving)[0] for s in range(8)]
            durations = sorted(o.duration or 0.0 for o in outcomes)
            rtx = sorted(o.retransmissions for o in outcomes)
            print(
                f"| {int(loss * 100)} % | {'I-DATA' if interleaving else 'DATA'} | 8 | "
                f"{sum(o.reliable_delivered for o in outcomes)}/"
                f"{sum(o.reliable_sent for o in outcomes)} | "
                f"{sum(o.pr_delivered for o in outcomes)}/{sum(o.pr_sent for o in outcomes)} | "
                f"{durations[0]:.1f} / {durations[len(durations) // 2]:.1f} / "
                f"{durations[-1]:.1f} | {rtx[len(rtx) // 2]} |"
            )


if __name__ == "__main__":
    main()
