"""Shared fixtures: the known-answer vectors in tests/vectors (see its README.md), and
the event loop each async test runs on.

Every async test runs on asyncio's loop; the tests marked ``both_loops`` (the peer,
ICE and interop tests: everything that reaches into the loop's socket transports) run
once on asyncio and once on uvloop when uvloop is installed (the ``test`` extra
installs it). ``--loop asyncio`` or ``--loop uvloop`` runs every async test on one
loop only; ``--loop uvloop`` without uvloop installed is a usage error, not a skip.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from webrtc_secure import loops

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--loop",
        choices=["both", "asyncio", "uvloop"],
        default="both",
        help="event loop of the async tests: 'both' (default) runs the tests marked "
        "both_loops on asyncio and on uvloop (when installed), the rest on asyncio",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_loops: run on asyncio and on uvloop (see tests/conftest.py)"
    )
    if config.getoption("--loop") == "uvloop" and not loops.uvloop_available():
        raise pytest.UsageError("--loop uvloop: uvloop is not installed")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    """pytest-asyncio's hook: the loops an async test runs on (one each)."""
    choice = config.getoption("--loop")
    if choice in ("asyncio", "uvloop"):
        return {choice: loops.loop_factory(choice)}
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    if item.get_closest_marker("both_loops") is not None and loops.uvloop_available():
        factories["uvloop"] = loops.loop_factory("uvloop")
    return factories

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
