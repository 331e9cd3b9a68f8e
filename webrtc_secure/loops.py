"""Which event loop runs a program: asyncio's own or uvloop (an optional extra).

SecurePeer runs on either loop; nothing in the library creates a loop. This module is
for the programs around it (the CLI, the demo, ``make bench``): :func:`run` is
``asyncio.run`` on the loop :func:`choose` picks. ``pip install webrtc_secure[uvloop]``
installs uvloop; the choice is, in order, the caller's (``--loop`` on the command line),
the environment variable :data:`LOOP_ENV`, and else ``auto``: uvloop when it is
installed, asyncio otherwise.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from webrtc_secure.errors import ConfigurationError

T = TypeVar("T")

#: environment variable that chooses the loop: ``auto``, ``asyncio`` or ``uvloop``
LOOP_ENV = "WEBRTC_SECURE_LOOP"
#: the values :func:`choose` accepts
CHOICES = ("auto", "asyncio", "uvloop")


def uvloop_available() -> bool:
    """Whether uvloop is installed (the ``uvloop`` extra)."""
    return importlib.util.find_spec("uvloop") is not None


def choose(name: str | None = None) -> str:
    """``asyncio`` or ``uvloop``: ``name``, else :data:`LOOP_ENV`, else ``auto``.

    ``auto`` is uvloop when it is installed. Asking for uvloop when it is not installed
    is a ConfigurationError, never a silent fallback: a benchmark row labelled uvloop
    must have run on it.
    """
    if name is None:
        name = os.environ.get(LOOP_ENV) or "auto"
    name = name.strip().lower()
    if name not in CHOICES:
        raise ConfigurationError(
            f"unknown event loop {name!r} (from --loop or {LOOP_ENV}); one of {', '.join(CHOICES)}"
        )
    if name == "auto":
        return "uvloop" if uvloop_available() else "asyncio"
    if name == "uvloop" and not uvloop_available():
        raise ConfigurationError(
            "uvloop is not installed: pip install 'webrtc_secure[uvloop]' (or choose asyncio)"
        )
    return name


def loop_factory(name: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function that creates a new loop of the kind :func:`choose` picks."""
    if choose(name) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], loop: str | None = None) -> T:
    """``asyncio.run(main)`` on the loop :func:`choose` picks for ``loop``."""
    factory = loop_factory(loop)
    # asyncio.Runner (3.11) takes a loop_factory; 3.10 sets the loop by hand
    runner_class = getattr(asyncio, "Runner", None)
    if runner_class is not None:
        with runner_class(loop_factory=factory) as runner:
            return runner.run(main)  # type: ignore[no-any-return]
    event_loop = factory()
    try:
        asyncio.set_event_loop(event_loop)
        return event_loop.run_until_complete(main)
    finally:
        try:
            event_loop.run_until_complete(event_loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            event_loop.close()


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: the kind of loop running now (for reports)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
