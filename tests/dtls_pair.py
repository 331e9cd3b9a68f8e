"""Two DtlsConnections wired back to back on a fake clock, with optional seeded loss,
duplication and reordering. Small on purpose: the full fault simulator lives in
tests/netsim.py; this is what the unit tests need to drive handshakes quickly."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from webrtc_secure import Certificate, Fingerprint
from webrtc_secure.dtls import DtlsConnection

#: the DTLS 1.2 engine's own tests pin the version: DtlsConnection negotiates 1.3 by
#: default (tests/test_dtls13_*.py cover that engine)
DTLS12_ONLY = ("1.2",)


def DtlsConnection12(*args: Any, **kwargs: Any) -> DtlsConnection:
    """A DtlsConnection that speaks DTLS 1.2 only."""
    kwargs.setdefault("dtls_versions", DTLS12_ONLY)
    return DtlsConnection(*args, **kwargs)


_CERTS: dict[str, Certificate] = {}


def cert(name: str = "a", rsa: bool = False) -> Certificate:
    """Certificates are cached per name: generating RSA keys is slow."""
    key = f"{name}-{'rsa' if rsa else 'ec'}"
    if key not in _CERTS:
        _CERTS[key] = Certificate.generate_rsa() if rsa else Certificate.generate()
    return _CERTS[key]


def pins(name: str = "a", rsa: bool = False) -> list[Fingerprint]:
    """What an endpoint pins for the peer holding ``cert(name)``: its ``a=fingerprint``."""
    return cert(name, rsa).fingerprints()


@dataclass
class Link:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.005
    seed: int = 0
    rng: random.Random = field(init=False)
    delivered: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


def run(
    client: DtlsConnection,
    server: DtlsConnection,
    link: Link | None = None,
    max_time: float = 120.0,
    until_connected: bool = True,
) -> float:
    """Run both engines until both are connected (or quiet); return the fake time."""
    link = link or Link()
    now = 0.0
    client.connect(now)
    server.connect(now)
    in_flight: list[tuple[float, int, DtlsConnection, bytes]] = []
    order = 0
    while now <= max_time:
        for sender, receiver in ((client, server), (server, client)):
            for datagram in sender.datagrams_to_send(now):
                copies = 1
                if link.rng.random() < link.loss:
                    copies = 0
                elif link.rng.random() < link.duplicate:
                    copies = 2
                for _ in range(copies):
                    delay = link.delay
                    if link.rng.random() < link.reorder:
                        delay += link.rng.uniform(0, 0.05)
                    order += 1
                    in_flight.append((now + delay, order, receiver, datagram))
        if until_connected and client.is_connected and server.is_connected and not in_flight:
            return now
        timers = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
        next_delivery = min((d[0] for d in in_flight), default=None)
        candidates = timers + ([next_delivery] if next_delivery is not None else [])
        if not candidates:
            return now
        now = max(now, min(candidates))
        due = sorted(d for d in in_flight if d[0] <= now)
        in_flight = [d for d in in_flight if d[0] > now]
        for _, _, receiver, datagram in due:
            link.delivered += 1
            receiver.receive_datagram(datagram, now)
        for conn in (client, server):
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
    return now


def drain_events(conn: DtlsConnection) -> list[object]:
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events
