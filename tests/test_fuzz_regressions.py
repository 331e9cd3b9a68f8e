"""The CI pass of the fuzzers: every target runs a few thousand coverage-guided
executions from the real-capture seeds, and every saved regression input replays
through its target without a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.run import fuzz
from tests.fuzz.seeds import write_corpora
from tests.fuzz.target import TARGETS

REGRESSIONS = Path(__file__).resolve().parent / "fuzz" / "regressions"


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
def test_short_fuzz_pass(target: str, tmp_path: Path) -> None:
    corpora = write_corpora(tmp_path / "corpus")
    result = fuzz(target, corpora[target], runs=3000, crashes=tmp_path / "crashes")
    assert result["returncode"] == 0 and not result["crashes"], result["tail"]
    assert result["executions"] is not None and result["executions"] >= 3000


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
    TARGETS[target](path.read_bytes())
