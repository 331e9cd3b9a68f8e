"""Shared fixtures: the known-answer vectors in ../shared/vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors"


def load_vector(name: str) -> Any:
    """Load one JSON vector file from ../shared/vectors (fails loudly if missing)."""
    path = VECTORS / name
    if not path.exists():
        raise FileNotFoundError(f"known-answer vector {path} is missing; CI needs ../shared")
    return json.loads(path.read_text())


@pytest.fixture
def vectors_dir() -> Path:
    return VECTORS
