"""Two SCTP Associations driven through tests/netsim.py on a fake clock.

Shared by the association, fault and hostile-input tests: seeded randomness for the
associations (tags, TSNs, cookie secrets), a Pump over a NetSim link, and helpers that
read the events the Pump collected.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tests.netsim import NetSim, Pump
from webrtc_secure.sctp.association import Association, AssociationConfig, AssociationState
from webrtc_secure.sctp.events import AssociationClosed, AssociationEstablished, MessageReceived
from webrtc_secure.sctp.packet import parse_packet


def seeded(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return rng.randbytes


def config(seed: int, **overrides: Any) -> AssociationConfig:
    return replace(AssociationConfig(random=seeded(seed)), **overrides)


@dataclass
class Pair:
    a: Association
    b: Association
    sim: NetSim
    pump: Pump

    @property
    def now(self) -> float:
        return self.sim.now

    def messages(self, side: str) -> list[MessageReceived]:
        events = self.pump.a.events if side == "a" else self.pump.b.events
        return [e for e in events if isinstance(e, MessageReceived)]

    def events(self, side: str, kind: type) -> list[Any]:
        events = self.pump.a.events if side == "a" else self.pump.b.events
        return [e for e in events if isinstance(e, kind)]

    def established(self) -> bool:
        return self.a.is_established and self.b.is_established

    def closed(self) -> bool:
        return bool(self.events("a", AssociationClosed)) and bool(
            self.events("b", AssociationClosed)
        )

    def run_until(self, until: Callable[[], bool], max_time: float = 60.0) -> bool:
        return self.pump.run_until(until, max_time)

    def connect(self, *, both: bool = False, max_time: float = 60.0) -> bool:
        self.a.connect(self.now)
        if both:
            self.b.connect(self.now)
        return self.run_until(self.established, max_time)


def make_pair(
    seed: int = 0,
    *,
    a: AssociationConfig | None = None,
    b: AssociationConfig | None = None,
    **link: Any,
) -> Pair:
    link.setdefault("delay", 0.01)
    sim = NetSim(seed, **link)
    assoc_a = Association(a or config(seed * 2 + 1))
    assoc_b = Association(b or config(seed * 2 + 2))
    return Pair(assoc_a, assoc_b, sim, Pump(assoc_a, assoc_b, sim))


def lossy_pair(seed: int, *, interleaving: bool, zero_checksum: bool) -> Pair:
    """The seeded lossy link the transfer tests share: 10 % loss, 20 % reordering, 5 %
    duplicates, 10 ms +- 5 ms each way, both ends with no message size limit."""
    return make_pair(
        seed,
        a=config(
            seed * 2 + 1,
            interleaving=interleaving,
            remote_max_message_size=0,
            zero_checksum=zero_checksum,
        ),
        b=config(
            seed * 2 + 2,
            interleaving=interleaving,
            remote_max_message_size=0,
            zero_checksum=zero_checksum,
        ),
        loss=0.1,
        reorder=0.2,
        duplicate=0.05,
        delay=0.01,
        jitter=0.005,
    )


def capture(pair: Pair) -> list[tuple[str, bytes]]:
    """Record every datagram put on the link from now on: (direction, bytes)."""
    seen: list[tuple[str, bytes]] = []
    original = pair.sim.send

    def send(direction: str, datagram: bytes) -> None:
        seen.append((direction, datagram))
        original(direction, datagram)

    pair.sim.send = send  # type: ignore[method-assign]
    return seen


def chunk_types(datagrams: list[tuple[str, bytes]], direction: str | None = None) -> list[str]:
    names = []
    for d, data in datagrams:
        if direction is None or d == direction:
            packet = parse_packet(data, allow_zero_checksum=True)
            names += [type(c).__name__ for c in packet.chunks]
    return names


def healthy(assoc: Association) -> bool:
    """No internal error was ever swallowed by the engine."""
    return assoc.stats.dropped["internal_error"] == 0


__all__ = [
    "AssociationEstablished",
    "AssociationState",
    "Pair",
    "capture",
    "chunk_types",
    "config",
    "healthy",
    "make_pair",
    "seeded",
]
