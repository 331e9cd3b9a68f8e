"""Calling pyee handlers without ``emit`` on per-packet and per-message paths.

``emit`` takes a lock, builds an empty default dict and a list, and runs each handler
through a wrapper: about 2 us per call, more than the rest of an RTP packet's or a
data-channel message's delivery. pyee (>= 11) keeps ``{event: {key: handler to
call}}`` in ``_events`` and runs an awaitable's coroutine with ``_emit_run``; the
peer's media path and the data channel's "message" event read that registry directly
when :func:`registry_readable` says they can, and use ``emit`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter


def registry_readable(emitter: AsyncIOEventEmitter) -> bool:
    """Whether this pyee keeps its handlers where :func:`run_handlers` can read them."""
    return isinstance(vars(emitter).get("_events"), dict) and callable(
        getattr(emitter, "_emit_run", None)
    )


class Returning:
    """A callable that returns what a handler already returned, for pyee's runner."""

    __slots__ = ("result",)

    def __init__(self, result: object) -> None:
        self.result = result

    def __call__(self) -> object:
        return self.result


def run_handlers(
    emitter: Any,
    handlers: Iterable[Callable[[Any], object]],
    value: object,
    failed: Callable[[Exception], None],
) -> None:
    """Call each handler with ``value`` as ``emit`` would: one that raises goes to
    ``failed`` (which logs and reports it) and the others still run; one that returns
    an awaitable (an ``async def`` handler) is handed to pyee's own runner, which
    schedules it and reports its failure as "error"."""
    for handler in handlers:
        try:
            result = handler(value)
        except Exception as exc:
            failed(exc)
            continue
        if result is not None:
            emitter._emit_run(Returning(result), (), {})
