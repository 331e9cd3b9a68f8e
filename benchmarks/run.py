"""`make bench`: every benchmark section, one table, one JSON file.

Every row is ours next to a reference stack measured in the same process run, with
the ratio, because the machines are shared and absolute numbers drift. Sections:
srtp (pylibsrtp), dtls (pyOpenSSL), and peer/datachannel/scale (aiortc) when present.

The event loop is uvloop when it is installed, else asyncio (``--loop`` or
``WEBRTC_SECURE_LOOP`` choose; webrtc_secure/loops.py): the sections that run in this
process (peer, datachannel) run both stacks on it. The scale section runs every
configuration in a child process on a loop of its own: SecurePeer on asyncio next to
aiortc, and the larger fleets on uvloop too, each next to the bare loop's ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SECTIONS = ["srtp", "dtls", "peer", "datachannel", "scale"]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def _keep_other_sections(path: Path, replaced: set[str]) -> list[dict[str, Any]]:
    """Rows of earlier runs for sections not measured now, so ``--only`` refreshes one
    section without dropping the others from the table and the JSON."""
    if not path.exists():
        return []
    try:
        old = json.loads(path.read_text())["rows"]
    except (ValueError, KeyError, TypeError):
        return []
    return [row for row in old if row.get("section") not in replaced]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--only", action="append", choices=SECTIONS)
    parser.add_argument(
        "--loop", default=None, help="asyncio or uvloop (default: WEBRTC_SECURE_LOOP, auto)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from webrtc_secure.loops import choose

    loop = choose(args.loop)
    if loop == "uvloop":
        import uvloop

        # the sections' own asyncio.run() calls create their loops through the policy
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    rows: list[dict[str, Any]] = []
    for name in args.only or SECTIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # section not written yet
            raise
        started = time.perf_counter()
        section_rows = module.run(quick=args.quick)
        for row in section_rows:
            row["section"] = name
        rows += section_rows
        print(
            f"[{name}: {len(section_rows)} rows in {time.perf_counter() - started:.1f} s]",
            file=sys.stderr,
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    if args.only:
        rows = _keep_other_sections(out / "bench.json", set(args.only)) + rows
        order = {name: i for i, name in enumerate(SECTIONS)}
        rows.sort(key=lambda row: order.get(row["section"], len(order)))
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "loop": loop,
    }
    lines = [
        f"Machine: {machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']}; "
        f"event loop {loop} (scale: per row)",
        "",
        "| benchmark | ours | reference | ours/reference | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        reference = row.get("reference")
        ref_text = f"{_fmt(reference)} ({row['reference_name']})" if reference else ""
        lines.append(
            f"| {row['benchmark']} | {_fmt(row['ours'])} | {ref_text} | "
            f"{_fmt(row.get('ratio'))} | {row.get('goal', '')} |"
        )
    table = "\n".join(lines)
    print(table)
    (out / "bench.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    (out / "bench.md").write_text(table + "\n")
    print(f"\nwritten: {out / 'bench.json'} and {out / 'bench.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
