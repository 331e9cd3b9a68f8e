"""The data channel interop script, one behaviour for every end.

Each end opens its own channels (``prefix + "-reliable"``, ordered and reliable, and
``prefix + "-unordered"``, unordered with ``maxRetransmits`` 0), echoes every message
that arrives on a channel the other end opened, unchanged (string stays string, binary
stays binary), and records every message that comes back on its own channels. The
browser page (``tests/browser/datachannel/datachannel.js``) does exactly this in JS;
:class:`ChannelAgent` does it in Python over any channel object with aiortc's shape
(``label``, ``send(str | bytes)``, ``close()``, pyee events ``open``, ``message``,
``close``), which both aiortc's ``RTCDataChannel`` and webrtc_secure's ``DataChannel``
have. So a harness failure shows up between two aiortc peers, before our side is in it.

Messages are compared by (type, length, SHA-256): the same description the page makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: the page's labels are "remote-*" (the remote end as seen from the Python peer)
RELIABLE = "reliable"
UNORDERED = "unordered"


def pattern(length: int, seed: int) -> bytes:
    """``(i * 31 + seed) & 0xff`` for each index i (the page's ``pattern``)."""
    return bytes((i * 31 + seed) & 0xFF for i in range(length))


def _repeat_text(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def suite() -> list[tuple[str, str | bytes]]:
    """Text, non-ASCII text, binary, both empty kinds, 64 KiB text, 256 KiB binary."""
    return [
        ("text", "hello from the other end"),
        ("text-unicode", "gr\u00fc\u00dfe \u2713 \U0001f600 \u65e5\u672c"),
        ("binary", pattern(1000, 7)),
        ("empty-text", ""),
        ("empty-binary", b""),
        ("text-64k", _repeat_text("abcdefghijklmnopqrstuvwxyz0123456789", 65536)),
        ("binary-256k", pattern(262144, 11)),
    ]


def unordered_suite() -> list[tuple[str, str | bytes]]:
    """Forty small messages for the unordered, maxRetransmits 0 channel."""
    return [(f"u-text-{i}", f"unordered {i}") for i in range(20)] + [
        (f"u-binary-{i}", pattern(100 + i, i)) for i in range(20)
    ]


def describe(data: str | bytes) -> dict[str, Any]:
    """(type, length in bytes on the wire, SHA-256) of one message, as the page does."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return {
        "type": "string" if isinstance(data, str) else "binary",
        "length": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }


def described(messages: list[tuple[str, str | bytes]]) -> list[dict[str, Any]]:
    return [{"name": name, **describe(value)} for name, value in messages]


def strip_names(descriptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if k != "name"} for d in descriptions]


def message_bytes(descriptions: list[dict[str, Any]]) -> int:
    return sum(int(d["length"]) for d in descriptions)


@dataclass
class ChannelCounters:
    """What crossed one channel, counted at the application boundary."""

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0


@dataclass
class ChannelAgent:
    """One end's behaviour over channel objects (see the module docstring)."""

    prefix: str
    channels: dict[str, Any] = field(default_factory=dict)
    own: list[str] = field(default_factory=list)
    theirs: list[str] = field(default_factory=list)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counters: dict[str, ChannelCounters] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: properties of each channel when it opened (or was announced, for theirs)
    open_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: time.monotonic() of each channel event, for the benchmark-like prints
    marks: dict[str, float] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def reliable(self) -> str:
        return f"{self.prefix}-{RELIABLE}"

    @property
    def unordered(self) -> str:
        return f"{self.prefix}-{UNORDERED}"

    # --- wiring ------------------------------------------------------------------------

    def adopt_own(self, channel: Any) -> Any:
        """A channel this end opened: record what comes back on it."""
        self.own.append(channel.label)
        self._watch(channel, echo=False)
        return channel

    def adopt_theirs(self, channel: Any) -> None:
        """A channel the other end opened (the ``datachannel`` event): echo on it."""
        self.theirs.append(channel.label)
        self._event(channel.label, "datachannel")
        self.open_info[channel.label] = channel_info(channel)
        self._watch(channel, echo=True)

    def _event(self, label: str, name: str) -> None:
        self.events.append((label, name))
        self.marks.setdefault(f"{label}:{name}", time.monotonic())
        self._changed.set()

    def _watch(self, channel: Any, *, echo: bool) -> None:
        label = channel.label
        self.channels[label] = channel
        self.received[label] = []
        counters = self.counters[label] = ChannelCounters()

        def on_open() -> None:
            self.open_info[label] = channel_info(channel)
            self._event(label, "open")

        def on_close() -> None:
            self._event(label, "close")

        def on_error(error: Any) -> None:
            self.errors.append(f"{label}: {error!r}")
            self._event(label, "error")

        def on_message(data: str | bytes) -> None:
            description = describe(data)
            counters.messages_received += 1
            counters.bytes_received += description["length"]
            self.received[label].append(description)
            if echo:
                try:
                    channel.send(data)
                except Exception as exc:
                    self.errors.append(f"{label}: echo: {exc!r}")
                else:
                    counters.messages_sent += 1
                    counters.bytes_sent += description["length"]
            self._changed.set()

        channel.on("open", on_open)
        channel.on("close", on_close)
        channel.on("error", on_error)
        channel.on("message", on_message)
        if ready_state(channel) == "open":
            on_open()

    # --- actions -------------------------------------------------------------------------

    def send(self, label: str, which: str = RELIABLE) -> list[dict[str, Any]]:
        """Send the suite (or the unordered suite) on ``label``; the descriptions sent."""
        channel = self.channels[label]
        counters = self.counters[label]
        messages = unordered_suite() if which == UNORDERED else suite()
        for _, value in messages:
            channel.send(value)
            counters.messages_sent += 1
            counters.bytes_sent += describe(value)["length"]
        return described(messages)

    def close(self, label: str) -> None:
        self.channels[label].close()

    # --- waiting -------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], what: str,
                       timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.prefix}: no {what} in {timeout}s; {self.summary()}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    def has(self, label: str, event: str) -> bool:
        return (label, event) in self.events

    async def wait_open(self, labels: list[str], timeout: float = 15.0) -> None:
        await self.wait_for(lambda: all(self.has(x, "open") for x in labels),
                            f"open of {labels}", timeout)

    async def wait_received(self, label: str, count: int, timeout: float = 15.0) -> None:
        await self.wait_for(lambda: len(self.received.get(label, ())) >= count,
                            f"{count} messages on {label}", timeout)

    async def wait_settled(self, label: str, count: int, quiet: float = 1.0,
                           timeout: float = 20.0) -> int:
        """For a channel that may lose messages (maxRetransmits 0): wait until ``count``
        arrived or none arrived for ``quiet`` seconds; the number that arrived."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while True:
            got = len(self.received.get(label, ()))
            now = time.monotonic()
            if got != last:
                last, last_change = got, now
            if got >= count or now - last_change >= quiet:
                return got
            if now > deadline:
                raise TimeoutError(f"{self.prefix}: {label} still receiving after {timeout}s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.1)

    async def wait_closed(self, label: str, timeout: float = 15.0) -> None:
        await self.wait_for(lambda: self.has(label, "close"), f"close of {label}", timeout)

    def summary(self) -> dict[str, Any]:
        return {
            "own": self.own,
            "theirs": self.theirs,
            "events": self.events,
            "received": {k: len(v) for k, v in self.received.items()},
            "errors": self.errors,
            "states": {k: ready_state(c) for k, c in self.channels.items()},
        }


def ready_state(channel: Any) -> str:
    """aiortc spells it ``readyState``, webrtc_secure ``ready_state``."""
    state = getattr(channel, "ready_state", None)
    if state is None:
        state = getattr(channel, "readyState", None)
    return str(getattr(state, "value", state))


def channel_info(channel: Any) -> dict[str, Any]:
    """The W3C-named properties of a channel from either Python stack."""

    def pick(*names: str) -> Any:
        for name in names:
            if hasattr(channel, name):
                value = getattr(channel, name)
                return getattr(value, "value", value)
        return None

    return {
        "label": channel.label,
        "id": pick("id"),
        "ordered": pick("ordered"),
        "maxRetransmits": pick("max_retransmits", "maxRetransmits"),
        "maxPacketLifeTime": pick("max_packet_life_time", "maxPacketLifeTime"),
        "protocol": pick("protocol"),
        "readyState": ready_state(channel),
    }
