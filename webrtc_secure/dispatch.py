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


class SnapshotDispatch(AsyncIOEventEmitter):
    """An emitter whose per-packet or per-message events call handlers from snapshots
    of pyee's registry, taken again after every change to it.

    pyee (>= 11) changes its registry only through ``_add_event_handler``,
    ``_remove_listener`` and ``remove_all_listeners``; each drops the subclass's
    snapshots (:meth:`_drop_handler_snapshots`), so a handler added or removed while
    traffic flows, or by a handler, takes effect from the next packet or message, as
    with ``emit``. ``_direct`` says whether the registry may be read at all (the
    subclass goes through ``emit`` when not); a test switches it through
    ``_direct_dispatch``, which drops the snapshots too.
    """

    _direct: bool

    def _drop_handler_snapshots(self) -> None:
        """Forget the handler snapshots (each subclass names its own)."""
        raise NotImplementedError

    @property
    def _direct_dispatch(self) -> bool:
        """Whether the hot events' handlers are called without pyee's ``emit``."""
        return self._direct

    @_direct_dispatch.setter
    def _direct_dispatch(self, direct: bool) -> None:
        self._direct = direct
        self._drop_handler_snapshots()

    def _add_event_handler(self, event: str, k: Callable[..., Any], v: Callable[..., Any]) -> None:
        super()._add_event_handler(event, k, v)
        self._drop_handler_snapshots()

    def _remove_listener(self, event: str, f: Callable[..., Any]) -> None:
        try:
            super()._remove_listener(event, f)
        finally:
            self._drop_handler_snapshots()

    def remove_all_listeners(self, event: str | None = None) -> None:
        super().remove_all_listeners(event)
        self._drop_handler_snapshots()
