"""`make fuzz`: run every fuzz target for FUZZ_SECONDS (default 60) and report
executions and coverage per target.

Two families of targets run under one report: the byte-level ones of target.py
(parsers and engines fed raw mutated bytes) and the structure-aware ones of deep.py
(engines driven to deep states by recorded handshakes, round trips, a reassembly
differential, SRTP round trip/tamper/replay), run through deep_harness.py. Crashes
land in tests/fuzz/crashes/ and make the run fail; once fixed, copy them to
tests/fuzz/regressions/<target>/ (byte-level) or tests/fuzz/corpus_deep/<target>/
regressions/ (structure-aware), and the CI pass replays them forever.
``FUZZ_TARGETS=a,b`` limits the run to those targets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.fuzz import deep  # noqa: E402
from tests.fuzz.seeds import write_corpora  # noqa: E402
from tests.fuzz.target import TARGETS  # noqa: E402

BYTE_LEVEL = HERE / "target.py"
STRUCTURE_AWARE = HERE / "deep_harness.py"
#: the DTLS 1.3 targets (records, messages, the engine) run from their own script
DTLS13 = HERE / "target13.py"
TARGETS13 = ("records13", "messages13", "engine13")


def fuzz(
    target: str,
    corpus: Path,
    *,
    seconds: int | None = None,
    runs: int | None = None,
    crashes: Path,
    harness: Path = BYTE_LEVEL,
) -> dict[str, object]:
    crashes.mkdir(parents=True, exist_ok=True)
    limit = [f"-max_total_time={seconds}"] if seconds else [f"-runs={runs}"]
    command = [
        sys.executable,
        str(harness),
        target,
        *limit,
        f"-artifact_prefix={crashes}/{target}-",
        "-print_final_stats=1",
        "-rss_limit_mb=2048",
        "-timeout=10",
        str(corpus),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=(seconds or 60) + 120)
    output = done.stdout + done.stderr
    cov = re.findall(r"cov: (\d+)", output)
    execs = re.search(r"stat::number_of_executed_units: (\d+)", output)
    rate = re.search(r"stat::average_exec_per_sec:\s+(\d+)", output)
    return {
        "target": target,
        "family": "structure-aware" if harness == STRUCTURE_AWARE else "byte-level",
        "returncode": done.returncode,
        "executions": int(execs.group(1)) if execs else None,
        "exec_per_s": int(rate.group(1)) if rate else None,
        "coverage_edges": int(cov[-1]) if cov else None,
        "crashes": sorted(p.name for p in crashes.glob(f"{target}-*")),
        "tail": output[-1500:] if done.returncode else "",
    }


def main() -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    wanted = {t for t in os.environ.get("FUZZ_TARGETS", "").split(",") if t}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        byte_corpora = write_corpora(Path(tmp) / "bytes")
        deep_corpora = deep.write_corpora(Path(tmp) / "deep")
        plan = [(t, byte_corpora[t], BYTE_LEVEL) for t in TARGETS]
        plan += [(t, deep_corpora[t], STRUCTURE_AWARE) for t in deep.TARGETS]
        seeds13 = Path(tmp) / "dtls13"
        subprocess.run(
            [sys.executable, str(DTLS13), "--write-seeds", str(seeds13)],
            check=True,
            capture_output=True,
        )
        plan += [(t, seeds13 / t, DTLS13) for t in TARGETS13]
        unknown = wanted - {t for t, _, _ in plan}
        if unknown:
            print(f"unknown fuzz targets: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        for target, corpus, harness in plan:
            if wanted and target not in wanted:
                continue
            result = fuzz(
                target, corpus, seconds=seconds, crashes=HERE / "crashes", harness=harness
            )
            results.append(result)
            print(
                f"{target:20s} executions={result['executions']} "
                f"exec/s={result['exec_per_s']} cov={result['coverage_edges']} "
                f"crashes={len(result['crashes'])}",
                flush=True,
            )
            if result["returncode"]:
                print(result["tail"], file=sys.stderr)
    out = HERE.parents[1] / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fuzz.json").write_text(json.dumps(results, indent=1))
    return 1 if any(r["returncode"] or r["crashes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
