"""The DTLS 1.3 fuzz targets (tests/fuzz/target13.py) over their seeds and mutations of
them, so the targets' own assertions run in every test pass (the coverage-guided runs
are ``python tests/fuzz/target13.py records13|messages13``)."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("atheris")

from tests.fuzz.target13 import TARGETS13, seeds13


@pytest.mark.parametrize("name", list(TARGETS13))
def test_seeds_and_mutations(name: str) -> None:
    target = TARGETS13[name]
    seeds = seeds13()[name]
    assert seeds
    rng = random.Random(13)
    for seed in seeds:
        target(seed)
        for _ in range(20):
            mutated = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                if mutated and rng.random() < 0.7:
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                else:
                    del mutated[rng.randrange(len(mutated) + 1) :]
            target(bytes(mutated))
