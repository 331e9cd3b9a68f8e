"""DtlsConnection.seal_many (a flush's records handed straight back to the transport)
against send_many + datagrams_to_send, and DtlsTransport.send_many's use of it.

seal_many may only take a batch the queued path would send at once and unchanged: the
same octets, the same counters, no event, no timer; everything else (not connected, a
datagram already waiting, a batch reaching the KeyUpdate threshold, an oversized
record, a key at its usage limit) is left to send_many, which decides as before."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.dtls_pair import cert, drain_events, pins, run
from tests.test_dtls13_fastpaths import _pair13
from tests.test_dtls_fastpaths import _deterministic_pair
from tests.test_dtls_receive_handoff import _scenario
from webrtc_secure.dtls import ApplicationData, DtlsConnection, State
from webrtc_secure.dtls.records13 import SendEpoch
from webrtc_secure.dtls_transport import DtlsTransport

BATCHES = [[b"a"], [bytes([i]) * (90 * i + 1) for i in range(7)], [bytes(1200)] * 3, [b"z"]]


def _queued(conn: DtlsConnection, batch: Sequence[bytes]) -> list[bytes]:
    assert conn.send_many(batch) == 0
    return conn.datagrams_to_send(1.0)


def _delivered(server: DtlsConnection, datagrams: list[bytes]) -> list[bytes]:
    for datagram in datagrams:
        server.receive_datagram(datagram, 1.0)
    return [e.data for e in drain_events(server) if isinstance(e, ApplicationData)]


def test_dtls13_seal_many_makes_the_records_send_many_queues() -> None:
    client, server = _pair13()
    engine = client._v13
    assert engine is not None and engine._tx is not None and engine.suite is not None
    tx = engine._tx
    twin = SendEpoch(engine.suite, engine._traffic(engine._tx_secret), tx.epoch, tx.next_sequence)
    sent_before = client.stats.datagrams_sent
    for batch in BATCHES:
        records = client.seal_many(batch)
        assert records is not None
        # the octets of send_many's batch (or one send) on a sender with the same keys
        assert records == (
            twin.protect_application_data_many(batch)
            if len(batch) > 1
            else [twin.protect_application_data(batch[0])]
        )
        assert client.datagrams_to_send(1.0) == []  # nothing was queued
        assert client.next_event() is None and client.get_timer() is None
        assert _delivered(server, records) == list(batch)
    assert client.stats.datagrams_sent - sent_before == sum(map(len, BATCHES))


def test_dtls12_seal_many_makes_the_records_send_many_queues() -> None:
    sealed_pair, queued_pair = _deterministic_pair(), _deterministic_pair()
    for batch in BATCHES:
        records = sealed_pair[0].seal_many(batch)
        assert records is not None and sealed_pair[0].datagrams_to_send(1.0) == []
        assert records == _queued(queued_pair[0], batch)
        assert _delivered(sealed_pair[1], records) == list(batch)
        _delivered(queued_pair[1], records)
    assert sealed_pair[0].stats == queued_pair[0].stats
    assert sealed_pair[1].stats == queued_pair[1].stats


def test_seal_many_declines_with_nothing_changed() -> None:
    client, server = _pair13()
    engine = client._v13
    assert engine is not None and engine._tx is not None

    def unchanged(batch: Sequence[bytes]) -> None:
        state = (client.stats.datagrams_sent, engine._tx.next_sequence, client.state)  # type: ignore[union-attr]
        assert client.seal_many(batch) is None
        assert state == (client.stats.datagrams_sent, engine._tx.next_sequence, client.state)  # type: ignore[union-attr]

    unchanged([])
    unchanged([bytes(2**14 + 1)])  # one (checked without max()): send raises the ValueError
    with pytest.raises(ValueError):
        client.send_many([bytes(2**14 + 1)])
    assert client.datagrams_to_send(1.0) == []
    unchanged([b"x", bytes(2**14 + 1)])  # send_many raises the ValueError
    with pytest.raises(ValueError):
        client.send_many([b"x", bytes(2**14 + 1)])  # b"x" went (one send() each)
    assert _delivered(server, client.datagrams_to_send(1.0)) == [b"x"]
    # a datagram already waiting (our KeyUpdate): the batch must not overtake it
    assert client.key_update(request_peer_update=False)
    assert engine.outbox or client._outbox
    unchanged([b"late"])
    waiting = client.datagrams_to_send(1.0)
    assert _delivered(server, waiting + _queued(client, [b"late"])) == [b"late"]
    # a batch reaching the KeyUpdate threshold: the engine decides (a KeyUpdate first)
    for _ in range(3):  # the KeyUpdate's ACK back, so that another may start
        for a, b in ((server, client), (client, server)):
            for d in a.datagrams_to_send(1.0):
                b.receive_datagram(d, 1.0)
    drain_events(client)
    sent_updates = engine.key_updates_sent
    engine.key_update_threshold = engine._tx.next_sequence + 2
    unchanged([b"1", b"2", b"3"])
    assert _delivered(server, _queued(client, [b"1", b"2", b"3"])) == [b"1", b"2", b"3"]
    assert engine.key_updates_sent == sent_updates + 1
    client.close()
    unchanged([b"closed"])


@pytest.mark.parametrize("threshold_above", [True, False])
def test_a_key_at_its_usage_limit_is_refused_as_by_send_many(threshold_above: bool) -> None:
    """Transport level: the batch is refused as send_many refuses it, the connection
    fails the same way and the same datagrams reach the wire."""
    outcomes = []
    for sealing in (True, False):
        client, server = _pair13()
        engine = client._v13
        assert engine is not None and engine._tx is not None
        start = engine._tx.next_sequence
        engine._tx._limit = start + 2
        engine.key_update_threshold = start + 10 if threshold_above else start
        wire: list[bytes] = []
        transport = DtlsTransport.__new__(DtlsTransport)
        transport.connection, transport._send = client, wire.append
        transport._send_batch = None
        transport._timer = None
        transport._closed = False

        class _Loop:
            def time(self) -> float:
                return 1.0

            def call_at(self, when: float, callback: object) -> None:
                return None

        transport._loop = _Loop()  # type: ignore[assignment]
        transport._now = transport._loop.time
        if sealing:
            refused = transport.send_many([b"x", b"y", b"z", b"w"])
        else:
            refused = client.send_many([b"x", b"y", b"z", b"w"])
            transport._sent()
        outcomes.append((refused, client.state, len(wire), _delivered(server, wire)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] is State.FAILED


class _QueuedSendTransport(DtlsTransport):
    """DtlsTransport.send_many as before seal_many: queued, then flushed."""

    __slots__ = ()

    def send_many(self, datagrams: list[bytes]) -> int:
        refused = self.connection.send_many(datagrams)
        self._sent()
        return refused


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_transport_send_many_is_the_queued_path(version: str) -> None:
    """The whole scenario of the hand-off tests (handshake, data both ways, a KeyUpdate
    whose ACK is held while data flows, its timer, close): the same data delivered and
    the same timer log with and without seal_many."""
    assert _scenario(DtlsTransport, version) == _scenario(_QueuedSendTransport, version)


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_transport_send_batch_is_one_send_at_a_time(version: str) -> None:
    """The same scenario with send_many's records handed over in one call
    (send_batch) and one at a time (send): the same data, the same timer log."""
    assert _scenario(DtlsTransport, version, send_batch=True) == _scenario(
        DtlsTransport, version
    )


def test_closed_connections_refuse_the_batch() -> None:
    client = DtlsConnection(
        True, cert("client"), remote_fingerprints=pins("server"), dtls_versions=("1.2",)
    )
    server = DtlsConnection(
        False, cert("server"), remote_fingerprints=pins("client"), dtls_versions=("1.2",)
    )
    run(client, server)
    client.close()
    assert client.seal_many([b"a"]) is None
    assert client.send_many([b"a", b"b"]) == 2
