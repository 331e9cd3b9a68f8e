"""Shared fixtures: the known-answer vectors in tests/vectors (see its README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: The vectors live in the repository, so that a fresh clone tests itself.
VECTORS = Path(__file__).resolve().parent / "vectors"


def vector_path(name: str) -> Path:
    """The path of one vector file in tests/vectors; fails loudly if it is missing.

    A missing vector is an error, never a skip: a known-answer test that silently
    does not run proves nothing.
    """
    path = VECTORS / name
    if not path.is_file():
        raise FileNotFoundError(
            f"known-answer vector {path} is missing; it belongs to the repository "
            "(tests/vectors, see its README.md)"
        )
    return path


def load_vector(name: str) -> Any:
    """Load one JSON vector file from tests/vectors (fails loudly if missing)."""
    return json.loads(vector_path(name).read_text())


def handshake_captures() -> list[Path]:
    """The recorded OpenSSL DTLS 1.2 handshakes (fails loudly if there are none)."""
    paths = sorted(VECTORS.glob("dtls12_handshake_*.json"))
    if not paths:
        raise FileNotFoundError(f"no dtls12_handshake_*.json capture in {VECTORS}")
    return paths


@pytest.fixture
def vectors_dir() -> Path:
    return VECTORS
