"""Self-tests of tests/netsim.py: every fault does what it says, runs are reproducible
from the seed, and the pump drives real OpenSSL peers to completion."""

from __future__ import annotations

import pytest

from tests.interop.pyopenssl_peer import PyOpenSslDtls
from tests.netsim import (
    A_TO_B,
    B_TO_A,
    LinkConfig,
    NetSim,
    Pump,
    StalledClock,
    handshake_complete,
    run_handshake,
)
from webrtc_secure import Certificate
from webrtc_secure.dtls.events import ApplicationData, HandshakeComplete


class Toy:
    """A three-message handshake with DTLS-like retransmission on the fake clock:
    client HELLO (retransmitted, doubling from 1 s) -> server REPLY (retransmitted until
    ACK) -> client ACK for every REPLY. Deterministic, so traces can be compared."""

    def __init__(self, is_client: bool, size: int = 100) -> None:
        self.is_client = is_client
        self.size = size
        self.done = False
        self.stats = type("Stats", (), {"retransmissions": 0})()
        self._out: list[bytes] = []
        self._events: list[object] = []
        self._timer: float | None = None
        self._interval = 1.0
        self._pending: bytes | None = None

    def _packet(self, kind: bytes) -> bytes:
        return kind.ljust(self.size, b".")

    def _arm(self, packet: bytes, now: float) -> None:
        self._pending = packet
        self._out.append(packet)
        self._timer = now + self._interval

    def connect(self, now: float) -> None:
        if self.is_client:
            self._arm(self._packet(b"HELLO"), now)

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        if self.is_client and data.startswith(b"REPLY"):
            self._out.append(self._packet(b"ACK"))
            self._timer = None
            self._finish()
        elif not self.is_client and data.startswith(b"HELLO") and not self.done:
            if self._pending is None:
                self._arm(self._packet(b"REPLY"), now)
        elif not self.is_client and data.startswith(b"ACK"):
            self._timer = None
            self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self._events.append(HandshakeComplete(0, None, b""))

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return self._timer

    def handle_timer(self, now: float) -> None:
        if self._timer is not None and now >= self._timer and self._pending is not None:
            self.stats.retransmissions += 1
            self._interval *= 2
            self._out.append(self._pending)
            self._timer = now + self._interval

    def next_event(self) -> object | None:
        return self._events.pop(0) if self._events else None


def test_lossless_toy_completes_after_three_one_way_delays() -> None:
    result = run_handshake(Toy(True), Toy(False), NetSim(0, delay=0.01))
    assert result.completed
    assert result.a.done_at == pytest.approx(0.02)
    assert result.b.done_at == pytest.approx(0.03)
    assert result.duration == pytest.approx(0.03)
    assert result.datagrams == 3
    assert (result.a.timer_fires, result.b.timer_fires) == (0, 0)
    assert result.sim.stats[A_TO_B].delivered == 2
    assert result.sim.stats[B_TO_A].delivered == 1


def test_same_seed_same_run_different_seed_different_run() -> None:
    def trace(seed: int) -> list[object]:
        sim = NetSim(seed, loss=0.4, delay=0.02, jitter=0.03, duplicate=0.2, reorder=0.3)
        result = run_handshake(Toy(True), Toy(False), sim, max_time=200)
        assert result.completed
        return [*sim.trace, result.a.done_at, result.b.done_at]

    assert trace(3) == trace(3)
    assert len({str(trace(seed)) for seed in range(5)}) > 1


def test_loss_is_recovered_by_retransmission() -> None:
    sim = NetSim(42, loss=0.3, delay=0.02)
    result = run_handshake(Toy(True), Toy(False), sim, max_time=300)
    assert result.completed
    lost = sim.stats[A_TO_B].lost + sim.stats[B_TO_A].lost
    assert lost > 0
    assert result.a.timer_fires + result.b.timer_fires > 0
    assert (result.a.retransmissions or 0) + (result.b.retransmissions or 0) > 0
    fates = {entry.fate for entry in sim.trace}
    assert "lost" in fates


def test_drop_indices_loses_exactly_those_datagrams() -> None:
    sim = NetSim(0, a_to_b=LinkConfig(drop_indices=frozenset({0})), b_to_a=LinkConfig())
    result = run_handshake(Toy(True), Toy(False), sim)
    assert result.completed
    # The first HELLO is lost; the retransmission after 1 s gets through.
    assert result.a.done_at == pytest.approx(1.0 + 0.02)
    assert result.a.timer_fires == 1
    assert sim.trace[0].fate == "dropped"


def test_mtu_clamp_drops_oversized_datagrams() -> None:
    sim = NetSim(0, mtu=1200)
    result = run_handshake(Toy(True, size=1300), Toy(False), sim, max_time=10)
    assert not result.completed
    assert result.time == pytest.approx(10.0)
    assert sim.stats[A_TO_B].mtu_dropped == sim.stats[A_TO_B].sent > 1
    assert sim.stats[A_TO_B].delivered == 0
    ok = run_handshake(Toy(True, size=1200), Toy(False), NetSim(0, mtu=1200))
    assert ok.completed


def test_blackhole_window_delays_completion_until_it_ends() -> None:
    sim = NetSim(0, a_to_b=LinkConfig(blackhole=(0.0, 5.0)), b_to_a=LinkConfig())
    result = run_handshake(Toy(True), Toy(False), sim, max_time=60)
    assert result.completed
    assert sim.stats[A_TO_B].blackholed >= 3  # t=0, 1, 3
    assert result.a.done_at is not None and result.a.done_at > 5.0
    assert all(e.fate == "blackhole" for e in sim.trace if e.direction == A_TO_B and e.time < 5)


def test_duplication_delivers_two_copies() -> None:
    sim = NetSim(0, duplicate=1.0, delay=0.01, jitter=0.005)
    result = run_handshake(Toy(True), Toy(False), sim)
    assert result.completed
    stats = sim.stats[A_TO_B]
    assert stats.duplicated == stats.sent
    Pump(Toy(True), Toy(False), sim).run_for(1.0)
    assert sim.stats[A_TO_B].delivered == 2 * stats.sent


class Burst:
    """Sends ``count`` numbered datagrams at connect; records arrival order."""

    def __init__(self, count: int = 0) -> None:
        self.count = count
        self.arrived: list[int] = []
        self._out = [i.to_bytes(4, "big") for i in range(count)]

    def connect(self, now: float) -> None: ...

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        self.arrived.append(int.from_bytes(data, "big"))

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None: ...

    def next_event(self) -> object | None:
        return None


def test_reordering_and_jitter_reorder_but_deliver_everything() -> None:
    sender, receiver = Burst(200), Burst()
    sim = NetSim(9, reorder=0.3, reorder_delay=0.05, delay=0.01)
    Pump(sender, receiver, sim).run_for(1.0)
    assert sorted(receiver.arrived) == list(range(200))
    assert receiver.arrived != list(range(200))
    assert sim.stats[A_TO_B].reordered > 0
    no_reorder = Burst()
    Pump(Burst(200), no_reorder, NetSim(9, delay=0.01)).run_for(1.0)
    assert no_reorder.arrived == list(range(200))


def test_loss_rate_is_roughly_the_configured_one() -> None:
    sim = NetSim(1, loss=0.25)
    receiver = Burst()
    Pump(Burst(2000), receiver, sim).run_for(1.0)
    assert 400 < sim.stats[A_TO_B].lost < 600
    assert len(receiver.arrived) == 2000 - sim.stats[A_TO_B].lost


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        LinkConfig(loss=1.5)
    with pytest.raises(ValueError):
        NetSim(0, a_to_b=LinkConfig(), loss=0.1)


def test_stuck_timer_is_reported() -> None:
    class Stuck(Burst):
        def get_timer(self) -> float | None:
            return 0.0

    with pytest.raises(StalledClock):
        run_handshake(Stuck(), Burst(), NetSim(0), max_time=5)


def test_custom_predicates() -> None:
    result = run_handshake(
        Toy(True),
        Toy(False),
        NetSim(0),
        a_done=lambda engine, events: engine.done,
        b_done=lambda engine, events: True,
    )
    assert result.completed
    assert result.b.done_at == 0.0


# --- real OpenSSL peers (their timers run on the real clock: lossless paths only) ---------

_CERTS: list[Certificate] = []


def certs() -> tuple[Certificate, Certificate]:
    if not _CERTS:
        _CERTS.extend([Certificate.generate(), Certificate.generate()])
    return _CERTS[0], _CERTS[1]


@pytest.mark.parametrize("cookies", [False, True])
def test_pyopenssl_pair_completes_over_the_simulator(cookies: bool) -> None:
    ca, cb = certs()
    client = PyOpenSslDtls(True, ca)
    server = PyOpenSslDtls(False, cb, cookies=cookies)
    sim = NetSim(0, delay=0.02)
    result = run_handshake(client, server, sim, max_time=10)
    assert result.completed
    # Flights: [CH, HVR,] CH, server flight, client flight (server done), server Finished.
    flights = 6 if cookies else 4
    assert result.b.done_at == pytest.approx(0.02 * (flights - 1))
    assert result.a.done_at == pytest.approx(0.02 * flights)
    assert any(isinstance(e, HandshakeComplete) for e in result.a.events)
    label = "EXTRACTOR-dtls_srtp"
    assert client.export_keying_material(label, 60) == server.export_keying_material(label, 60)
    # The pump keeps going on the same clock for application data.
    client.send(b"over the simulator")
    result.pump.run_for(0.1)
    assert ApplicationData(b"over the simulator") in result.b.events


def test_pyopenssl_pair_survives_duplication_and_mtu_clamp() -> None:
    ca, cb = certs()
    client = PyOpenSslDtls(True, ca, mtu=300)
    server = PyOpenSslDtls(False, cb, mtu=300)
    sim = NetSim(5, delay=0.01, duplicate=0.5, mtu=300)
    result = run_handshake(client, server, sim, max_time=10)
    assert result.completed
    assert sim.stats[A_TO_B].duplicated + sim.stats[B_TO_A].duplicated > 0
    assert sim.stats[A_TO_B].mtu_dropped == sim.stats[B_TO_A].mtu_dropped == 0
    assert max(sim.stats[A_TO_B].largest, sim.stats[B_TO_A].largest) <= 300
    assert handshake_complete(client, result.a.events)


def test_pyopenssl_pair_recovers_from_loss_when_sleeping_for_timers() -> None:
    """OpenSSL's timers run on the real clock; sleeping them out lets a lossy run finish.
    The server's first flight is lost once, costing about one real second."""
    ca, cb = certs()
    client = PyOpenSslDtls(True, ca, sleep_for_timers=True)
    server = PyOpenSslDtls(False, cb, sleep_for_timers=True)
    sim = NetSim(0, a_to_b=LinkConfig(), b_to_a=LinkConfig(drop_indices=frozenset({0})))
    result = run_handshake(client, server, sim, max_time=10)
    assert result.completed
    assert result.a.retransmissions == 1
    assert result.a.timer_fires >= 1
