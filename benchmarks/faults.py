"""`make faults`: DTLS handshake success and completion time under network faults.

Two of our engines handshake through the seeded simulator in tests/netsim.py on a fake
clock, with the engine's default policy: the RFC 6347 timer (1 s initial
retransmission, doubling to a 60 s cap) and up to 12 retransmissions of each flight
(OpenSSL's limit), no wall-clock bound. Each row is 200+ seeds of one configuration.
Loss, duplication and reordering apply to each direction independently. Besides the
success rate the table shows the median, p95 and slowest completion, and how many
completed within 30 s (the wall-clock budget this engine used to have), so the tail
of the backoff stays visible. Every failure is re-run with the same seed on a link that
heals (loses nothing more) after 30 s: a live protocol then completes at its next
scheduled retransmission; one that still fails is stuck, which is a bug.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.netsim import LinkConfig, NetSim, run_handshake  # noqa: E402
from webrtc_secure import Certificate  # noqa: E402
from webrtc_secure.dtls import DtlsConnection  # noqa: E402

_CERTS: list[Certificate] = []
HEAL_AT = 30.0
#: the old default wall-clock budget, kept as a column
WITHIN = 30.0
#: fake seconds a run may take: beyond the 12th retransmission (423 s) and its timer
MAX_FAKE_TIME = 600.0


class HealingNetSim(NetSim):
    """The same seeded link, but nothing is lost, duplicated or reordered after
    ``heal_at``: tells a live-but-unlucky handshake from a stuck one."""

    def __init__(self, seed: int, heal_at: float, **common: Any) -> None:
        super().__init__(seed, **common)
        self.heal_at = heal_at
        self.healed = False

    def send(self, direction: str, datagram: bytes) -> None:
        if not self.healed and self.now >= self.heal_at:
            self.links = {
                d: dataclasses.replace(link, loss=0.0, duplicate=0.0, reorder=0.0, jitter=0.0)
                for d, link in self.links.items()
            }
            self.healed = True
        super().send(direction, datagram)


def _certs() -> list[Certificate]:
    if not _CERTS:
        _CERTS.extend([Certificate.generate(), Certificate.generate()])
    return _CERTS


def _one(
    config: dict[str, Any], seed: int, budget: float | None = None, heal: bool = False
) -> tuple[bool, float | None]:
    """One seeded handshake: (both sides connected, completion time in fake seconds).
    ``budget`` is the engines' wall-clock ``handshake_timeout`` (None: the default)."""
    client_cert, server_cert = _certs()
    mtu = config["mtu"]
    client = DtlsConnection(
        True,
        client_cert,
        mtu=mtu,
        handshake_timeout=budget,
        remote_fingerprints=server_cert.fingerprints(),
    )
    server = DtlsConnection(
        False,
        server_cert,
        mtu=mtu,
        handshake_timeout=budget,
        cookies=config["cookies"],
        remote_fingerprints=client_cert.fingerprints(),
    )
    if config.get("blackhole"):
        start, end = config["blackhole"]
        sim = NetSim(
            seed, a_to_b=LinkConfig(mtu=mtu, blackhole=(start, end)), b_to_a=LinkConfig(mtu=mtu)
        )
    else:
        link = {
            "loss": config["loss"],
            "duplicate": config["duplicate"],
            "reorder": config["reorder"],
            "jitter": 0.005,
            "mtu": mtu,
        }
        sim = HealingNetSim(seed, HEAL_AT, **link) if heal else NetSim(seed, **link)
    max_time = MAX_FAKE_TIME if budget is None else budget + 5
    result = run_handshake(client, server, sim, max_time=max_time)
    ok = result.completed and client.is_connected and server.is_connected
    return ok, result.duration if ok else None


def _row(config: dict[str, Any]) -> dict[str, Any]:
    logging.disable(logging.WARNING)  # thousands of expected "handshake failed" lines
    seeds = range(config["seeds"])
    times: list[float] = []
    failed: list[int] = []
    for seed in seeds:
        ok, duration = _one(config, seed)
        if ok and duration is not None:
            times.append(duration)
        else:
            failed.append(seed)
    recovered = [s for s in failed if _one(config, s, heal=True)[0]]
    times.sort()
    return {
        **config,
        "success_rate": len(times) / len(seeds),
        "within_30s_rate": sum(t <= WITHIN for t in times) / len(seeds),
        "median_s": statistics.median(times) if times else None,
        "p95_s": times[int(0.95 * (len(times) - 1))] if times else None,
        "max_s": times[-1] if times else None,
        "failed_seeds": failed,
        "completed_once_healed": recovered,
        "stuck_after_healing": sorted(set(failed) - set(recovered)),
    }


def configurations(seeds: int) -> list[dict[str, Any]]:
    rows = []
    for mtu in (1200, 300):
        for loss in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
            for disorder in (False, True):
                rows.append(
                    {
                        "mtu": mtu,
                        "loss": loss,
                        "seeds": seeds,
                        "cookies": False,
                        "reorder": 0.3 if disorder else 0.0,
                        "duplicate": 0.1 if disorder else 0.0,
                    }
                )
    # HelloVerifyRequest costs a round trip: the same path with cookies on
    for loss in (0.0, 0.2, 0.3):
        rows.append(
            {
                "mtu": 1200,
                "loss": loss,
                "reorder": 0.3,
                "duplicate": 0.1,
                "seeds": seeds,
                "cookies": True,
            }
        )
    rows.append(
        {
            "mtu": 1200,
            "loss": 0.0,
            "reorder": 0.0,
            "duplicate": 0.0,
            "seeds": seeds,
            "cookies": False,
            "blackhole": (0.0, 5.0),
        }
    )
    return rows


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=200)
    print(
        "DTLS handshakes between two of our engines (client and server), fake clock; "
        "SecurePeer runs without cookies over ICE.",
        file=sys.stderr,
    )
    args = parser.parse_args()
    with ProcessPoolExecutor() as pool:
        rows = list(pool.map(_row, configurations(args.seeds)))
    lines = [
        f"{args.seeds} seeds a row; default policy: RFC 6347 timer (1 s doubling to 60 s),",
        "12 retransmissions per flight, no wall-clock bound. Loss, reordering and",
        "duplication apply to each direction. Each failure is re-run on a link that heals",
        "at 30 s: 'healed' = it completed then (live), 'stuck' = it did not (a bug).",
        "",
        "| MTU | loss | reorder+dup | cookies | success | within 30 s | median s | p95 s "
        "| max s | failures: healed / stuck |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        disorder = (
            "blackhole 0-5 s client->server"
            if r.get("blackhole")
            else ("30 % / 10 %" if r["reorder"] else "no")
        )
        lines.append(
            f"| {r['mtu']} | {int(100 * r['loss'])} % | {disorder} | "
            f"{'on' if r['cookies'] else 'off'} | "
            f"{100 * r['success_rate']:.1f} % | {100 * r['within_30s_rate']:.1f} % | "
            f"{_fmt(r['median_s'])} | {_fmt(r['p95_s'])} | {_fmt(r['max_s'])} | "
            f"{len(r['completed_once_healed'])} / {len(r['stuck_after_healing'])} |"
        )
    table = "\n".join(lines)
    print(table)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "faults.json").write_text(json.dumps(rows, indent=1))
    (out / "faults.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
