"""A fast, deterministic slice of `make faults`: the handshake is never stuck, and its
completion times follow the RFC 6347 retransmission schedule (fake clock only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from faults import HEAL_AT, _one

DISORDERLY = {"loss": 0.2, "reorder": 0.3, "duplicate": 0.1, "mtu": 300, "cookies": True}


@pytest.mark.parametrize("seed", range(20))
def test_lossy_path_is_never_stuck(seed: int) -> None:
    ok, duration = _one(DISORDERLY, seed, 30.0)
    if not ok:
        # out of time under the backoff is allowed; a handshake that cannot finish even
        # once the path heals is not
        healed, healed_duration = _one(DISORDERLY, seed, 120.0, heal=True)
        assert healed, f"seed {seed}: stuck even after the link healed"
        assert healed_duration is not None and healed_duration < HEAL_AT + 61
    else:
        assert duration is not None and duration < 30


def test_most_seeds_complete_within_the_default_budget() -> None:
    completed = sum(_one(DISORDERLY, seed, 30.0)[0] for seed in range(20))
    assert completed >= 18


def test_blackhole_completes_on_the_first_retransmission_after_it_ends() -> None:
    blackhole = {"mtu": 1200, "cookies": False, "blackhole": (0.0, 5.0)}
    ok, duration = _one(blackhole, 0, 30.0)
    # hellos at 0, 1 and 3 s fall in the hole; the one at 7 s gets through
    assert ok and duration is not None and 7.0 <= duration < 7.5


def test_lossless_handshake_takes_two_round_trips_without_cookies() -> None:
    clean = {"mtu": 1200, "cookies": False, "loss": 0.0, "reorder": 0.0, "duplicate": 0.0}
    ok, duration = _one(clean, 0, 30.0)
    assert ok and duration is not None and duration < 0.1
