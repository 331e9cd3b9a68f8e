"""Smoke test of the scale benchmark's machinery (benchmarks/scale.py) at N=2.

Functional facts only (pairs up, packets delivered, nothing failed), never timings:
the machines are shared.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import scale

from webrtc_secure import loops


def _check(result: dict[str, Any], pairs: int) -> None:
    assert result["up"] == pairs
    assert result["failed"] == 0, result["failures"]
    assert result["close_timeouts"] == 0
    assert result["lost"] == 0
    traffic = result["traffic"]
    assert traffic["pairs_sending"] == pairs
    assert traffic["sent"] > 0
    # loopback loses nothing: every packet sent reached the partner's "rtp" handler
    assert traffic["delivered_total"] == traffic["sent"]
    assert traffic["starved_receivers"] == 0


async def test_knee_search_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale, "KNEE_START", 1)
    result = await scale.measure(scale.Spec("ours", 2, True, 0.3, True, 30.0, idle_seconds=0.2))
    _check(result, 2)
    # one pair of two sending (run again if beyond the limits); doubling reaches the fleet
    steps = result["knee"]
    assert 1 <= len(steps) <= 2
    for step in steps:
        assert step["pairs_sending"] == 1
        assert step["delivered_total"] == step["sent"] > 0


async def test_traffic_counts_sends_to_a_lost_connection() -> None:
    fleet = await scale.bring_up(scale.Spec("ours", 2, False, 0.0, False, 30.0))
    assert len(fleet.up) == 2
    lost, alive = fleet.up
    await lost.close()
    step = await scale.traffic(fleet.up, 0.3)
    assert not lost.connected() and alive.connected()
    assert step.send_errors.get("ConnectionClosed", 0) > 0
    assert step.delivered_total > 0  # the other pair still carried its packets
    await alive.close()


async def test_each_phase_replaces_the_receivers_of_the_last() -> None:
    """As the bare and aiortc pairs replace theirs: a knee step after the all-pairs
    phase runs one "rtp" handler per packet, not one per earlier phase."""
    fleet = await scale.bring_up(scale.Spec("ours", 1, False, 0.0, False, 30.0))
    (pair,) = fleet.up
    assert isinstance(pair, scale.OursPair)
    for _ in range(3):
        step = await scale.traffic(fleet.up, 0.1)
        assert step.delivered_total == step.sent > 0
        assert len(pair.a.listeners("rtp")) == len(pair.b.listeners("rtp")) == 1
    await pair.close()


async def test_floor_pairs_deliver_what_they_seal() -> None:
    """The floor stack (bare loop plus one AES-GCM seal and open per packet) opens every
    packet it sealed, with the payload intact (a wrong key or IV would raise)."""
    result = await scale.measure(scale.Spec("floor", 2, True, 0.3, False, 30.0, idle_seconds=0))
    _check(result, 2)
    pair = scale.FloorPair()
    await pair.prepare()
    got: list[bytes] = []
    pair.set_receivers(got.append, got.append)
    packet = scale.RTP_HEADER.pack(0x80, 0, 7, 0, 0x1000) + bytes(scale.PAYLOAD)
    for send in pair.senders():
        send(packet)
    for _ in range(100):
        if len(got) == 2:
            break
        await asyncio.sleep(0.01)
    assert got == [packet, packet]
    await pair.close()


def test_knee_of() -> None:
    steps = [
        {"offered_pps": 1000, "ok": True},
        {"offered_pps": 4000, "ok": False},
        {"offered_pps": 2000, "ok": True},
        {"offered_pps": 3000, "ok": False},
        {"offered_pps": 5000, "ok": True},  # noise above the knee is not the knee
    ]
    good, bad = scale.knee_of(steps)
    assert good is not None and good["offered_pps"] == 2000
    assert bad is not None and bad["offered_pps"] == 3000
    beyond = {"offered_pps": 10, "ok": False}
    assert scale.knee_of([beyond]) == (None, beyond)


def test_section_rows_and_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # one real child process, as the section runs them
    child = scale._child(scale.Spec("ours", 1, True, 0.2, False, 30.0, idle_seconds=0.2), 60.0)
    assert child is not None
    _check(child, 1)

    # then the whole quick section (ours over ICE and plain UDP, aiortc), every
    # configuration at two pairs, in-process
    seen = set()

    def small(spec: scale.Spec, timeout: float) -> dict[str, Any]:
        spec.pairs, spec.seconds, spec.idle_seconds = 2, 0.3, 0.2
        result = loops.run(scale.measure(spec), spec.loop)
        _check(result, 2)
        assert result["loop"] == spec.loop
        seen.add((spec.stack, spec.ice, spec.loop))
        return result

    monkeypatch.setattr(scale, "_child", small)
    rows = scale.run(quick=True)
    assert loops.uvloop_available()  # the test extra installs it: both loops measured
    assert seen == {
        ("ours", True, "asyncio"),
        ("ours", False, "asyncio"),
        ("aiortc", True, "asyncio"),
        ("bare", True, "asyncio"),
        ("ours", True, "uvloop"),
        ("bare", True, "uvloop"),
        ("floor", True, "uvloop"),
    }
    names = [row["benchmark"] for row in rows]
    assert len(names) == len(set(names))
    for row in rows:
        assert {"benchmark", "ours", "reference", "ratio", "goal", "reference_name"} <= set(row)
    failed = [row for row in rows if "pairs not up" in row["benchmark"]]
    assert failed and all(row["ours"] == 0 for row in failed)
    delivered = [row for row in rows if "SRTP delivered" in row["benchmark"]]
    assert delivered and all(row["ours"] > 0 for row in delivered)
    assert all(
        row["reference"] > 0
        for row in delivered
        if "ICE" in row["benchmark"] and "uvloop" not in row["benchmark"]
    )
    # the ceiling of each loop, and SecurePeer as a fraction of it, in the same run
    for loop in ("asyncio", "uvloop"):
        ceiling = [r for r in rows if f"bare {loop} loop (ceiling)" in r["benchmark"]]
        assert len(ceiling) == 1 and ceiling[0]["ours"] > 0
        share = [r for r in rows if r.get("reference_name") == f"bare {loop} loop"]
        assert len(share) == 1 and share[0]["ratio"] > 0
    # the floor (bare uvloop + AES-GCM) against aiortc, and SecurePeer of the floor
    floor = [r for r in rows if "floor (bare uvloop loop" in r["benchmark"]]
    assert len(floor) == 1 and floor[0]["ours"] > 0 and floor[0]["ratio"] > 0
    of_floor = [r for r in rows if r.get("reference_name") == "floor"]
    assert len(of_floor) == 1 and of_floor[0]["ratio"] > 0
