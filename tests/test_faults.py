"""A fast, deterministic slice of `make faults`: the handshake is never stuck, the
default timer (from the round-trip time ICE measures) meets the goal under 30 % and
50 % loss, and RFC 6347's schedule still holds when configured (fake clock only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from faults import HEAL_AT, _one, _run

DISORDERLY = {"loss": 0.2, "reorder": 0.3, "duplicate": 0.1, "mtu": 300, "cookies": True}
LOSSY_30 = {"loss": 0.3, "reorder": 0.3, "duplicate": 0.1, "mtu": 1200, "cookies": False}
RFC6347 = {"policy": "rfc6347"}

#: when a flight that keeps being lost is sent again (RFC 6347: 1 s, doubling, 60 s cap)
SCHEDULE = (0, 1, 3, 7, 15, 31, 63, 123, 183, 243, 303, 363, 423)


def _on_schedule(duration: float) -> bool:
    """Without cookies three flights expect an answer: the ClientHello, the server's
    ServerHello..ServerHelloDone (the server resends it on its own timer) and the
    client's Certificate..Finished. Each is retransmitted on its own schedule from the
    moment it is first sent, so completion is one offset of each schedule plus a few
    one-way delays. Nothing else may add waiting time."""
    return any(
        0 <= duration - (a + b + c) < 0.5 for a in SCHEDULE for b in SCHEDULE for c in SCHEDULE
    )


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("config", [DISORDERLY, LOSSY_30], ids=["20%-mtu300-cookies", "30%"])
def test_lossy_path_completes_with_the_default_policy(seed: int, config: dict) -> None:
    ok, duration = _one(config, seed)
    assert ok, f"seed {seed}: failed under the default retransmission policy"
    assert duration is not None and duration < 30


@pytest.mark.parametrize("mtu", [1200, 300])
@pytest.mark.parametrize("disorder", [False, True], ids=["in-order", "reorder+dup"])
def test_the_default_timer_meets_the_call_setup_goal(mtu: int, disorder: bool) -> None:
    # the goal of `make faults` (200 seeds, 10 ms one-way): at 30 % loss each way every
    # handshake completes within 30 s and the p95 is at most 5 s; at 50 % every one
    # completes. RFC 6347's 1 s timer doubling to 60 s gave 96-97.5 % within 30 s and a
    # p95 of 15-16 s at 30 %, and 96-96.5 % at 50 % with MTU 1200 (see the test below).
    link = {
        "mtu": mtu,
        "cookies": False,
        "reorder": 0.3 if disorder else 0.0,
        "duplicate": 0.1 if disorder else 0.0,
    }
    at_30 = [_run({**link, "loss": 0.3}, seed) for seed in range(200)]
    durations = sorted(o.duration for o in at_30 if o.ok and o.duration is not None)
    assert len(durations) == 200 and durations[-1] <= 30, durations[-5:]
    assert durations[int(0.95 * 199)] <= 5.0
    at_50 = [_run({**link, "loss": 0.5}, seed) for seed in range(200)]
    assert [seed for seed, o in enumerate(at_50) if not o.ok] == []


def test_the_rfc6347_timer_misses_the_30_percent_goal() -> None:
    # the same measurement with the old schedule, so the test above is known to bite
    # there (its 50 % half bites without the second copy of a resent Finished flight,
    # which both schedules now have: 96.5 % completed at MTU 1200 before it)
    link = {"mtu": 1200, "cookies": False, "reorder": 0.0, "duplicate": 0.0, **RFC6347}
    at_30 = [_run({**link, "loss": 0.3}, seed) for seed in range(200)]
    durations = sorted(o.duration for o in at_30 if o.ok and o.duration is not None)
    assert durations[-1] > 30 and durations[int(0.95 * 199)] > 5.0


@pytest.mark.parametrize("seed", range(20))
def test_a_wall_clock_budget_may_cut_a_handshake_short_but_never_leaves_it_stuck(
    seed: int,
) -> None:
    ok, duration = _one(DISORDERLY, seed, 30.0)
    if ok:
        assert duration is not None and duration < 30
    # the same seed on a link that heals at 10 s completes at a retransmission after it
    healed, healed_duration = _one(DISORDERLY, seed, heal=True)
    assert healed, f"seed {seed}: stuck even after the link healed"
    assert healed_duration is not None and (ok or healed_duration >= HEAL_AT["webrtc"] - 1)


def test_completion_times_fall_on_the_rfc6347_schedule_when_configured() -> None:
    # without reordering or jitter beyond 5 ms, a handshake that needed retransmissions
    # completes right after one of the scheduled send times
    lossy = {"loss": 0.3, "reorder": 0.0, "duplicate": 0.0, "mtu": 1200, "cookies": False}
    durations = [_one({**lossy, **RFC6347}, seed)[1] for seed in range(30)]
    assert all(d is not None and _on_schedule(d) for d in durations), durations
    assert any(d is not None and d > 1 for d in durations)  # some needed retransmissions


def test_blackhole_completes_on_the_first_retransmission_after_it_ends() -> None:
    blackhole = {"mtu": 1200, "cookies": False, "blackhole": (0.0, 5.0)}
    ok, duration = _one(blackhole, 0)
    # the default timer (20 ms RTT: 100 ms doubling to 3 s) sends hellos at 0, 0.1,
    # 0.3, 0.7, 1.5 and 3.1 s into the hole; the one at 6.1 s gets through
    assert ok and duration is not None and 6.1 <= duration < 6.2
    # RFC 6347: hellos at 0, 1 and 3 s fall in the hole; the one at 7 s gets through
    ok, duration = _one({**blackhole, **RFC6347}, 0)
    assert ok and duration is not None and 7.0 <= duration < 7.5


def test_lossless_handshake_takes_two_round_trips_without_cookies() -> None:
    clean = {"mtu": 1200, "cookies": False, "loss": 0.0, "reorder": 0.0, "duplicate": 0.0}
    outcome = _run(clean, 0)
    assert outcome.ok and outcome.duration is not None and outcome.duration < 0.1
    # four flights of one datagram each: a clean path sees no retransmission
    assert outcome.datagrams == 4
