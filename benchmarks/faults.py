"""`make faults`: DTLS handshake success and completion time under network faults.

Two of our engines handshake through the seeded simulator in tests/netsim.py on a fake
clock, each direction 10 ms one-way (plus up to 5 ms jitter), with the policy
SecurePeer uses by default: the engine's timer given the round-trip time ICE measures
(20 ms: initial retransmission 1.5 x RTT raised to 100 ms, doubling to a 3 s cap), up
to 12 retransmissions of each flight (OpenSSL's limit), no wall-clock bound.
``--policy rfc6347`` runs the schedule the engine had before (1 s doubling to 60 s).
Each row is 200+ seeds of one configuration. Loss, duplication and reordering apply to
each direction independently. Besides the success rate the table shows the median,
p95 and slowest completion, how many completed within 30 s, and the datagrams both
sides sent per handshake (until it completed or gave up): what the timer costs a
congested path. Every failure is re-run with the same seed on a link that heals (loses
nothing more) early enough for the policy (10 s; 30 s for RFC 6347): a live protocol
then completes at its next scheduled retransmission; one that still fails is stuck,
which is a bug.
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
from webrtc_secure.dtls.connection import (  # noqa: E402
    RFC6347_INITIAL_RETRANSMIT_TIMEOUT,
    RFC6347_MAX_RETRANSMIT_TIMEOUT,
)
from webrtc_secure.dtls.groups import Group  # noqa: E402

_CERTS: list[Certificate] = []
#: one-way delay of each direction (seconds), plus up to JITTER more per datagram
DELAY = 0.010
JITTER = 0.005
#: when the re-run of a failure heals its link, by policy: well before a flight
#: first sent at 0 s is given up (about 27 s with the "webrtc" timer, 483 s with RFC 6347)
HEAL_AT = {"webrtc": 10.0, "rfc6347": 30.0}
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


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One seeded handshake: both sides connected, when (fake seconds), and how many
    datagrams both sides sent until it completed or failed."""

    ok: bool
    duration: float | None
    datagrams: int
    #: when the client reported connected (a DTLS 1.3 client: on sending its Finished)
    client_connected: float | None = None


#: timer settings by policy name (``--policy``). "webrtc", the default, is what
#: SecurePeer does: the engine's defaults given the round-trip time ICE measures on
#: this link (2 x the one-way delay; the jitter adds 0-10 ms to a real check).
#: "rfc6347" is the schedule the engine used before: 1 s doubling to 60 s.
POLICIES: dict[str, dict[str, float]] = {
    "webrtc": {"round_trip_time": 2 * DELAY},
    "rfc6347": {
        "initial_retransmit_timeout": RFC6347_INITIAL_RETRANSMIT_TIMEOUT,
        "max_retransmit_timeout": RFC6347_MAX_RETRANSMIT_TIMEOUT,
    },
}


def _policy(config: dict[str, Any]) -> dict[str, float]:
    return POLICIES[config.get("policy", "webrtc")]


def _one(
    config: dict[str, Any], seed: int, budget: float | None = None, heal: bool = False
) -> tuple[bool, float | None]:
    """One seeded handshake: (both sides connected, completion time in fake seconds).
    ``budget`` is the engines' wall-clock ``handshake_timeout`` (None: the default)."""
    outcome = _run(config, seed, budget, heal)
    return outcome.ok, outcome.duration


def _run(
    config: dict[str, Any], seed: int, budget: float | None = None, heal: bool = False
) -> Outcome:
    client_cert, server_cert = _certs()
    mtu = config["mtu"]
    timer = _policy(config)
    # DTLS 1.3's key share group (None: the default, X25519MLKEM768 with x25519)
    group13 = {"groups13": [config["group13"]]} if config.get("group13") else {}
    client = DtlsConnection(
        True,
        client_cert,
        mtu=mtu,
        handshake_timeout=budget,
        remote_fingerprints=server_cert.fingerprints(),
        dtls_versions=config.get("versions", ("1.2",)),
        **group13,
        **timer,
    )
    server = DtlsConnection(
        False,
        server_cert,
        mtu=mtu,
        handshake_timeout=budget,
        cookies=config["cookies"],
        remote_fingerprints=client_cert.fingerprints(),
        dtls_versions=config.get("versions", ("1.2",)),
        **group13,
        **timer,
    )
    delay = config.get("delay", DELAY)
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
            "delay": delay,
            "jitter": JITTER,
            "mtu": mtu,
        }
        heal_at = HEAL_AT[config.get("policy", "webrtc")]
        sim = HealingNetSim(seed, heal_at, **link) if heal else NetSim(seed, **link)
    max_time = MAX_FAKE_TIME if budget is None else budget + 5
    result = run_handshake(client, server, sim, max_time=max_time)
    ok = result.completed and client.is_connected and server.is_connected
    client_at = result.a.done_at - result.pump.started_at if ok and result.a.done_at else None
    return Outcome(ok, result.duration if ok else None, result.datagrams, client_at)


def _row(config: dict[str, Any]) -> dict[str, Any]:
    logging.disable(logging.WARNING)  # thousands of expected "handshake failed" lines
    seeds = range(config["seeds"])
    times: list[float] = []
    client_times: list[float] = []
    failed: list[int] = []
    datagrams: list[int] = []
    for seed in seeds:
        outcome = _run(config, seed)
        datagrams.append(outcome.datagrams)
        if outcome.ok and outcome.duration is not None:
            times.append(outcome.duration)
            if outcome.client_connected is not None:
                client_times.append(outcome.client_connected)
        else:
            failed.append(seed)
    recovered = [s for s in failed if _one(config, s, heal=True)[0]]
    times.sort()
    client_times.sort()
    return {
        **config,
        "success_rate": len(times) / len(seeds),
        "within_30s_rate": sum(t <= WITHIN for t in times) / len(seeds),
        "median_s": statistics.median(times) if times else None,
        "p95_s": times[int(0.95 * (len(times) - 1))] if times else None,
        "max_s": times[-1] if times else None,
        "client_median_s": statistics.median(client_times) if client_times else None,
        "client_p95_s": (
            client_times[int(0.95 * (len(client_times) - 1))] if client_times else None
        ),
        "datagrams_mean": statistics.fmean(datagrams),
        "datagrams_max": max(datagrams),
        "failed_seeds": failed,
        "completed_once_healed": recovered,
        "stuck_after_healing": sorted(set(failed) - set(recovered)),
    }


def configurations(
    seeds: int, policy: str = "webrtc", versions: tuple[str, ...] = ("1.2",)
) -> list[dict[str, Any]]:
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
                        "policy": policy,
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
                "policy": policy,
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
            "policy": policy,
        }
    )
    for row in rows:
        row["versions"] = versions
    return rows


#: the side by side of DTLS 1.2 and 1.3 (``--compare``): (label, versions, 1.3 group)
COMPARED: tuple[tuple[str, tuple[str, ...], int | None], ...] = (
    ("1.2 (x25519)", ("1.2",), None),
    ("1.3 (X25519MLKEM768)", ("1.3",), None),
    ("1.3 (x25519)", ("1.3",), int(Group.X25519)),
)


def compare_configurations(seeds: int) -> list[dict[str, Any]]:
    """DTLS 1.2 and 1.3 on the same seeded paths: MTU 1200 and 300, 0-30 % loss each
    way with 30 % reordering and 10 % duplication, the RTT-derived timer."""
    rows = []
    for mtu in (1200, 300):
        for loss in (0.0, 0.1, 0.2, 0.3):
            for label, versions, group13 in COMPARED:
                rows.append(
                    {
                        "mtu": mtu,
                        "loss": loss,
                        "seeds": seeds,
                        "cookies": False,
                        "reorder": 0.3,
                        "duplicate": 0.1,
                        "policy": "webrtc",
                        "versions": versions,
                        "group13": group13,
                        "label": label,
                    }
                )
    return rows


def compare_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| MTU | loss | DTLS (group) | success | median s | p95 s | max s "
        "| client median s | client p95 s | datagrams mean |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mtu']} | {int(100 * r['loss'])} % | {r['label']} | "
            f"{100 * r['success_rate']:.1f} % | {_fmt(r['median_s'])} | {_fmt(r['p95_s'])} | "
            f"{_fmt(r['max_s'])} | {_fmt(r['client_median_s'])} | "
            f"{_fmt(r['client_p95_s'])} | {r['datagrams_mean']:.1f} |"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--policy", choices=sorted(POLICIES), default="webrtc")
    parser.add_argument(
        "--dtls",
        choices=["1.2", "1.3"],
        default="1.2",
        help="the DTLS version both engines speak (1.3: ACKs, selective retransmission)",
    )
    print(
        "DTLS handshakes between two of our engines (client and server), fake clock; "
        "SecurePeer runs without cookies over ICE.",
        file=sys.stderr,
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="DTLS 1.2 and 1.3 side by side (0-30 %% loss, reordered, MTU 1200 and 300)",
    )
    args = parser.parse_args()
    if args.compare:
        with ProcessPoolExecutor() as pool:
            rows = list(pool.map(_row, compare_configurations(args.seeds)))
        table = compare_table(rows)
        print(table)
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        (out / "faults-dtls13-compare.json").write_text(json.dumps(rows, indent=1))
        (out / "faults-dtls13-compare.md").write_text(table + "\n")
        return 0
    with ProcessPoolExecutor() as pool:
        rows = list(pool.map(_row, configurations(args.seeds, args.policy, (args.dtls,))))
    timer = {
        "webrtc": "the RTT-derived timer (20 ms RTT: 100 ms doubling to 3 s)",
        "rfc6347": "the RFC 6347 timer (1 s doubling to 60 s)",
    }[args.policy]
    lines = [
        f"DTLS {args.dtls}; {args.seeds} seeds a row, 10 ms one-way delay; policy "
        f"{args.policy!r}: {timer},",
        "12 retransmissions per flight, no wall-clock bound. Loss, reordering and",
        "duplication apply to each direction. Each failure is re-run on a link that heals",
        f"at {HEAL_AT[args.policy]:g} s: 'healed' = it completed then (live), 'stuck' = "
        "it did not (a bug).",
        "",
        "| MTU | loss | reorder+dup | cookies | success | within 30 s | median s | p95 s "
        "| max s | datagrams mean / max | failures: healed / stuck |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
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
            f"{r['datagrams_mean']:.1f} / {r['datagrams_max']} | "
            f"{len(r['completed_once_healed'])} / {len(r['stuck_after_healing'])} |"
        )
    table = "\n".join(lines)
    print(table)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    suffix = "" if args.dtls == "1.2" else "-dtls13"
    (out / f"faults{suffix}.json").write_text(json.dumps(rows, indent=1))
    (out / f"faults{suffix}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
