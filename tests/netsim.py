"""A seeded, deterministic network between two sans-I/O engines, on a fake clock.

Each direction is a :class:`LinkConfig`: loss, duplication, reordering, delay + jitter,
an MTU clamp (datagrams larger than it are dropped, as a path with a small MTU and DF
set would), a blackhole window, and explicit drops by send index. Every decision comes
from one ``random.Random`` per direction seeded from the simulator's seed, so the same
seed and the same traffic give the same run, and traffic in one direction never
changes the fate of datagrams in the other.

:func:`run_handshake` drives two engines with the face of
``webrtc_secure.dtls.DtlsConnection`` (``connect``, ``receive_datagram``,
``datagrams_to_send``, ``get_timer``, ``handle_timer``, ``next_event``) by jumping the
clock to the next timer or delivery, and records when each side finished, what was
sent and how often timers fired. :class:`Pump` continues from there (application data,
close) on the same clock.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

A_TO_B = "a->b"
B_TO_A = "b->a"


class Engine(Protocol):
    """The sans-I/O face the simulator drives."""

    def connect(self, now: float) -> None: ...
    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None: ...
    def datagrams_to_send(self, now: float) -> list[bytes]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> Any: ...


@dataclass(frozen=True)
class LinkConfig:
    """One direction of the simulated path. Probabilities are in [0, 1]."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.05
    delay: float = 0.01
    jitter: float = 0.0
    mtu: int | None = None
    blackhole: tuple[float, float] | None = None
    drop_indices: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability, got {value}")
        if self.delay < 0 or self.jitter < 0 or self.reorder_delay < 0:
            raise ValueError("delays must not be negative")


@dataclass
class LinkStats:
    """What happened to the datagrams sent in one direction."""

    sent: int = 0
    bytes_sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    mtu_dropped: int = 0
    blackholed: int = 0
    largest: int = 0


@dataclass(frozen=True)
class TraceEntry:
    """One send: when, which way, how big, and its fate (``delivered@t`` per copy or
    ``lost`` / ``mtu`` / ``blackhole`` / ``dropped``)."""

    time: float
    direction: str
    index: int
    size: int
    fate: str


class NetSim:
    """Two one-way links and the datagrams in flight on them.

    ``NetSim(seed, loss=0.1, delay=0.02)`` builds the same link both ways; pass
    ``a_to_b=`` / ``b_to_a=`` for asymmetric paths (e.g. a blackhole one way).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        a_to_b: LinkConfig | None = None,
        b_to_a: LinkConfig | None = None,
        start: float = 0.0,
        **common: Any,
    ) -> None:
        if common and (a_to_b is not None or b_to_a is not None):
            raise ValueError("give either per-direction LinkConfigs or common settings")
        both = LinkConfig(**common)
        self.seed = seed
        self.now = start
        self.links = {A_TO_B: a_to_b or both, B_TO_A: b_to_a or both}
        self.stats = {A_TO_B: LinkStats(), B_TO_A: LinkStats()}
        self.trace: list[TraceEntry] = []
        self._rng = {
            A_TO_B: random.Random(f"{seed}:{A_TO_B}"),
            B_TO_A: random.Random(f"{seed}:{B_TO_A}"),
        }
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._order = 0
        self._last_order = {A_TO_B: 0, B_TO_A: 0}

    def send(self, direction: str, datagram: bytes) -> None:
        """Put one datagram on the ``direction`` link at the current time."""
        link = self.links[direction]
        stats = self.stats[direction]
        rng = self._rng[direction]
        index = stats.sent
        stats.sent += 1
        stats.bytes_sent += len(datagram)
        stats.largest = max(stats.largest, len(datagram))
        # Draw every random number for every datagram so one fate never shifts the
        # random stream seen by the next datagram.
        lose = rng.random() < link.loss
        dup = rng.random() < link.duplicate
        delays = [self._delay(link, rng), self._delay(link, rng)]
        fate: str
        if index in link.drop_indices:
            fate = "dropped"
            stats.lost += 1
        elif link.mtu is not None and len(datagram) > link.mtu:
            fate = "mtu"
            stats.mtu_dropped += 1
        elif link.blackhole is not None and link.blackhole[0] <= self.now < link.blackhole[1]:
            fate = "blackhole"
            stats.blackholed += 1
        elif lose:
            fate = "lost"
            stats.lost += 1
        else:
            copies = 2 if dup else 1
            if dup:
                stats.duplicated += 1
            fates = []
            for copy in range(copies):
                at = self.now + delays[copy]
                self._order += 1
                heapq.heappush(self._queue, (at, self._order, direction, datagram))
                fates.append(f"delivered@{at:.6f}")
            fate = ",".join(fates)
        self.trace.append(TraceEntry(self.now, direction, index, len(datagram), fate))

    def _delay(self, link: LinkConfig, rng: random.Random) -> float:
        delay = link.delay + rng.uniform(0.0, link.jitter)
        extra = rng.uniform(0.0, link.reorder_delay)
        if rng.random() < link.reorder:
            delay += extra
        return delay

    def next_delivery(self) -> float | None:
        """When the next datagram in flight arrives (None when nothing is in flight)."""
        return self._queue[0][0] if self._queue else None

    def in_flight(self) -> int:
        return len(self._queue)

    def due(self, now: float) -> list[tuple[str, bytes]]:
        """Remove and return, in arrival order, the datagrams arriving by ``now``."""
        out: list[tuple[str, bytes]] = []
        while self._queue and self._queue[0][0] <= now:
            _, order, direction, datagram = heapq.heappop(self._queue)
            stats = self.stats[direction]
            stats.delivered += 1
            if order < self._last_order[direction]:
                stats.reordered += 1
            self._last_order[direction] = max(self._last_order[direction], order)
            out.append((direction, datagram))
        return out


@dataclass
class SideResult:
    """One engine's view of a run."""

    done_at: float | None = None
    datagrams_sent: int = 0
    bytes_sent: int = 0
    timer_fires: int = 0
    timer_datagrams: int = 0
    events: list[Any] = field(default_factory=list)
    retransmissions: int | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None


@dataclass
class HandshakeResult:
    """What :func:`run_handshake` saw. ``completed`` means both predicates held."""

    completed: bool
    time: float
    a: SideResult
    b: SideResult
    sim: NetSim
    pump: Pump

    @property
    def duration(self) -> float | None:
        """Fake seconds from the start until the later side finished."""
        if not self.completed or self.a.done_at is None or self.b.done_at is None:
            return None
        return max(self.a.done_at, self.b.done_at) - self.pump.started_at

    @property
    def datagrams(self) -> int:
        return self.a.datagrams_sent + self.b.datagrams_sent


Predicate = Callable[[Any, list[Any]], bool]


def handshake_complete(engine: Any, events: list[Any]) -> bool:
    """Default completion test: a ``HandshakeComplete`` event was seen, or the engine
    says ``is_connected``/``handshake_done``."""
    if any(type(e).__name__ == "HandshakeComplete" for e in events):
        return True
    return bool(getattr(engine, "is_connected", False) or getattr(engine, "handshake_done", False))


class StalledClock(RuntimeError):
    """An engine keeps reporting a timer in the past without making progress."""


class Pump:
    """Moves datagrams between ``a`` and ``b`` through ``sim`` on the fake clock.

    Events are drained from both engines into ``self.a.events`` / ``self.b.events``
    as they appear, so callers read them there rather than from ``next_event()``.
    """

    MAX_IDLE_STEPS = 10_000

    def __init__(self, a: Engine, b: Engine, sim: NetSim) -> None:
        self.engines = {"a": a, "b": b}
        self.sim = sim
        self.a = SideResult()
        self.b = SideResult()
        self.started_at = sim.now
        self._sides = {"a": self.a, "b": self.b}
        self._direction = {"a": A_TO_B, "b": B_TO_A}

    def connect(self) -> None:
        """Call ``connect(now)`` on both engines (a server's is a no-op or arms a timer)."""
        self.started_at = self.sim.now
        for name in ("a", "b"):
            self.engines[name].connect(self.sim.now)
        self.flush()

    def flush(self, *, from_timer: str | None = None) -> None:
        """Collect what both engines want to send and put it on the links; drain events."""
        for name in ("a", "b"):
            engine = self.engines[name]
            side = self._sides[name]
            datagrams = engine.datagrams_to_send(self.sim.now)
            for datagram in datagrams:
                self.sim.send(self._direction[name], datagram)
            side.datagrams_sent += len(datagrams)
            side.bytes_sent += sum(len(d) for d in datagrams)
            if from_timer == name:
                side.timer_datagrams += len(datagrams)
            while (event := engine.next_event()) is not None:
                side.events.append(event)
            stats = getattr(engine, "stats", None)
            retransmissions = getattr(stats, "retransmissions", None)
            if isinstance(retransmissions, int):
                side.retransmissions = retransmissions

    def run_until(self, until: Callable[[], bool], max_time: float) -> bool:
        """Advance until ``until()`` holds (True) or the clock would pass ``max_time``
        seconds after this call, or nothing is left to happen (False)."""
        deadline = self.sim.now + max_time
        idle = 0
        self.flush()
        while not until():
            candidates = [
                t
                for t in (
                    self.engines["a"].get_timer(),
                    self.engines["b"].get_timer(),
                    self.sim.next_delivery(),
                )
                if t is not None
            ]
            if not candidates:
                return False
            target = min(candidates)
            if target > deadline:
                self.sim.now = deadline
                return until()
            if target <= self.sim.now:
                idle += 1
                if idle > self.MAX_IDLE_STEPS:
                    raise StalledClock(f"no progress at t={self.sim.now}: a timer stays due")
            else:
                idle = 0
                self.sim.now = target
            now = self.sim.now
            for direction, datagram in self.sim.due(now):
                receiver = self.engines["b"] if direction == A_TO_B else self.engines["a"]
                receiver.receive_datagram(datagram, now)
            self.flush()
            for name in ("a", "b"):
                timer = self.engines[name].get_timer()
                if timer is not None and timer <= now:
                    self._sides[name].timer_fires += 1
                    self.engines[name].handle_timer(now)
                    self.flush(from_timer=name)
        return True

    def run_for(self, seconds: float) -> None:
        """Let ``seconds`` of fake time pass (deliveries and timers included)."""
        self.run_until(lambda: False, seconds)


def run_handshake(
    a: Engine,
    b: Engine,
    sim: NetSim,
    max_time: float = 60.0,
    *,
    a_done: Predicate = handshake_complete,
    b_done: Predicate = handshake_complete,
    connect: bool = True,
) -> HandshakeResult:
    """Run until both ``a_done(a, events_a)`` and ``b_done(b, events_b)`` hold, or
    ``max_time`` fake seconds pass, or the run stalls. ``a`` is usually the client."""
    pump = Pump(a, b, sim)
    if connect:
        pump.connect()

    def check() -> bool:
        for side, engine, done in ((pump.a, a, a_done), (pump.b, b, b_done)):
            if side.done_at is None and done(engine, side.events):
                side.done_at = sim.now
        return pump.a.done and pump.b.done

    completed = check() or pump.run_until(check, max_time)
    return HandshakeResult(completed, sim.now, pump.a, pump.b, sim, pump)
