"""A fast, deterministic slice of `make faults`: the handshake is never stuck, and its
completion times follow the RFC 6347 retransmission schedule (fake clock only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from faults import HEAL_AT, _one

DISORDERLY = {"loss": 0.2, "reorder": 0.3, "duplicate": 0.1, "mtu": 300, "cookies": True}
LOSSY_30 = {"loss": 0.3, "reorder": 0.3, "duplicate": 0.1, "mtu": 1200, "cookies": False}

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
    assert duration is not None and duration < SCHEDULE[-1] + 60


@pytest.mark.parametrize("seed", range(20))
def test_a_wall_clock_budget_may_cut_a_handshake_short_but_never_leaves_it_stuck(
    seed: int,
) -> None:
    ok, duration = _one(DISORDERLY, seed, 30.0)
    if ok:
        assert duration is not None and duration < 30
    # the same seed on a link that heals at 30 s completes at a retransmission after it
    healed, healed_duration = _one(DISORDERLY, seed, heal=True)
    assert healed, f"seed {seed}: stuck even after the link healed"
    assert healed_duration is not None and (ok or healed_duration >= HEAL_AT - 1)


def test_completion_times_fall_on_the_retransmission_schedule() -> None:
    # without reordering or jitter beyond 5 ms, a handshake that needed retransmissions
    # completes right after one of the scheduled send times
    lossy = {"loss": 0.3, "reorder": 0.0, "duplicate": 0.0, "mtu": 1200, "cookies": False}
    durations = [_one(lossy, seed)[1] for seed in range(30)]
    assert all(d is not None and _on_schedule(d) for d in durations), durations
    assert any(d is not None and d > 1 for d in durations)  # some needed retransmissions


def test_blackhole_completes_on_the_first_retransmission_after_it_ends() -> None:
    blackhole = {"mtu": 1200, "cookies": False, "blackhole": (0.0, 5.0)}
    ok, duration = _one(blackhole, 0)
    # hellos at 0, 1 and 3 s fall in the hole; the one at 7 s gets through
    assert ok and duration is not None and 7.0 <= duration < 7.5


def test_lossless_handshake_takes_two_round_trips_without_cookies() -> None:
    clean = {"mtu": 1200, "cookies": False, "loss": 0.0, "reorder": 0.0, "duplicate": 0.0}
    ok, duration = _one(clean, 0)
    assert ok and duration is not None and duration < 0.1
