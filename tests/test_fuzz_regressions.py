"""The CI pass of the fuzzers: every target runs a few thousand coverage-guided
executions from the real-capture seeds, and every saved regression input replays
through its target without a crash. The DTLS 1.3 targets (tests/fuzz/target13.py:
records13, messages13, engine13) run from their own script and seeds, and their
regressions replay the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.run import DTLS13, fuzz
from tests.fuzz.seeds import write_corpora
from tests.fuzz.target import TARGETS
from tests.fuzz.target13 import TARGETS13, seeds13

REGRESSIONS = Path(__file__).resolve().parent / "fuzz" / "regressions"
#: every byte-level target by name, DTLS 1.2 and 1.3
ALL_TARGETS = {**TARGETS, **TARGETS13}


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
def test_short_fuzz_pass(target: str, tmp_path: Path) -> None:
    corpora = write_corpora(tmp_path / "corpus")
    result = fuzz(target, corpora[target], runs=3000, crashes=tmp_path / "crashes")
    assert result["returncode"] == 0 and not result["crashes"], result["tail"]
    assert result["executions"] is not None and result["executions"] >= 3000


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS13))
def test_short_fuzz_pass_dtls13(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus" / target
    corpus.mkdir(parents=True)
    for i, seed in enumerate(seeds13()[target]):
        (corpus / f"seed-{i:04d}").write_bytes(seed)
    result = fuzz(target, corpus, runs=3000, crashes=tmp_path / "crashes", harness=DTLS13)
    assert result["returncode"] == 0 and not result["crashes"], result["tail"]
    assert result["executions"] is not None and result["executions"] >= 3000


def test_every_regression_directory_names_a_target() -> None:
    # a directory for a target that does not exist would never replay
    names = {d.name for d in REGRESSIONS.iterdir() if d.is_dir()}
    assert names <= set(ALL_TARGETS), names - set(ALL_TARGETS)
    assert names & set(TARGETS13), "the DTLS 1.3 targets have saved inputs too"


def _regressions() -> list[tuple[str, Path]]:
    return [
        (d.name, f)
        for d in sorted(REGRESSIONS.glob("*"))
        if d.is_dir()
        for f in sorted(d.iterdir())
    ]


@pytest.mark.parametrize(
    ("target", "path"), _regressions(), ids=[f"{t}-{p.name}" for t, p in _regressions()]
)
def test_saved_regressions_replay(target: str, path: Path) -> None:
    ALL_TARGETS[target](path.read_bytes())
