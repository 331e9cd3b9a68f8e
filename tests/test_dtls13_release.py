"""Memory per peer (issue 14) in the DTLS 1.3 engine, and the behaviour it must keep.

A connected server's epoch-2 receiver loses its keyed ciphers, and a resent client
Finished (our ACK lost) still gets its ACK, under the same replay and integrity
checks; a flight message's acknowledged octets are a list of ranges, which must
agree with the byte map they replace; epoch 2 keys its AEAD per record, with the
same records as an AEAD keyed once."""

from __future__ import annotations

import functools
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.dtls_pair import drain_events, run
from tests.test_dtls13_engine import exchange, pair, to_final_flight
from webrtc_secure.dtls import State, keys13
from webrtc_secure.dtls.handshake13 import (
    _handshake_epoch_suite,
    _Out,
    handshake_receiver,
    handshake_sender,
)
from webrtc_secure.dtls.records13 import (
    MASK_BUFFER_LENGTH,
    CiphertextRecord,
    ReceiveEpoch,
    SendEpoch,
    make_mask_writer,
    split_datagram,
)
from webrtc_secure.dtls.suites13 import SUITES13, CipherSuite13
from webrtc_secure.errors import AuthenticationFailed


def test_resent_finished_is_acked_after_epoch2_was_parked() -> None:
    client, server, final = to_final_flight()
    for d in final:
        server.receive_datagram(d, 0.001)
    engine = server._v13
    assert engine is not None and server.state is State.CONNECTED
    assert 2 not in engine._rx and engine._parked_rx2 is not None
    assert server.datagrams_to_send(0.001)  # the ACK of the final flight: lost
    client_engine = client._v13
    assert client_engine is not None
    # the original records again (a replay): dropped as replays, nothing answered
    replays = server.stats.dropped_replay
    for d in final:
        server.receive_datagram(d, 0.002)
    assert server.stats.dropped_replay > replays and server.datagrams_to_send(0.002) == []
    # the client's timer resends its final flight under new record numbers
    timer = client.get_timer()
    assert timer is not None
    client.handle_timer(timer)
    resent = client.datagrams_to_send(timer)
    assert resent and all(d[0] & 0xE3 == 0x22 for d in resent)  # epoch 2
    # a forged copy of its last record fails authentication and counts against the
    # epoch's limit (the datagram's other records are the genuine resend)
    forged = bytearray(resent[-1])
    forged[-1] ^= 1
    server.receive_datagram(bytes(forged), timer + 0.001)
    assert engine._rx[2].failures == 1
    for d in resent:
        server.receive_datagram(d, timer + 0.002)
    ack = server.datagrams_to_send(timer + 0.002)
    assert ack
    assert client_engine.retransmit_at is not None
    for d in ack:
        client.receive_datagram(d, timer + 0.003)
    assert client_engine.retransmit_at is None and client.get_timer() is None
    assert server.state is State.CONNECTED and server.error is None
    exchange(client, server)


def test_resent_finished_without_ack_still_ends_in_connection() -> None:
    """Every ACK of the server lost several times: the client keeps resending until
    one arrives (or an epoch-3 record does), whatever the server parked between."""
    client, server, final = to_final_flight()
    for d in final:
        server.receive_datagram(d, 0.001)
    server.datagrams_to_send(0.001)
    now = 0.001
    for _ in range(3):
        timer = client.get_timer()
        assert timer is not None
        now = timer
        client.handle_timer(now)
        for d in client.datagrams_to_send(now):
            server.receive_datagram(d, now)
        assert server.datagrams_to_send(now)  # ACKed each time; lost each time
    run(client, server, until_connected=False, max_time=now + 5.0)
    assert client._v13 is not None and client._v13.retransmit_at is None
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    exchange(client, server)


def test_key_update_forgets_the_parked_epoch() -> None:
    client, server = pair()
    run(client, server)
    run(client, server, until_connected=False, max_time=2.0)
    engine = server._v13
    assert engine is not None and engine._parked_rx2 is not None
    drain_events(server)
    assert client.key_update(request_peer_update=True)
    run(client, server, until_connected=False, max_time=5.0)
    assert engine._parked_rx2 is None and 2 not in engine._rx
    assert engine.read_epoch == 4 and engine.write_epoch == 4
    exchange(client, server)


class _ByteMapOut:
    """The former acknowledgement map of a flight message (a byte per body octet),
    kept here as the model the range list must agree with."""

    def __init__(self, size: int) -> None:
        self.acked = bytearray(size)
        self.size = size
        self.done = False

    def missing(self) -> list[tuple[int, int]]:
        if self.done:
            return []
        if not self.size:
            return [(0, 0)]
        runs: list[tuple[int, int]] = []
        pos = self.acked.find(0)
        while pos != -1:
            stop = self.acked.find(1, pos)
            stop = self.size if stop == -1 else stop
            runs.append((pos, stop))
            if stop == self.size:
                break
            pos = self.acked.find(0, stop)
        return runs

    def ack(self, start: int, stop: int) -> None:
        self.acked[start:stop] = b"\x01" * (stop - start)
        if self.acked.find(0) == -1:
            self.done = True


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(0, 3000),
    acks=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 600)), max_size=12),
)
def test_acknowledged_ranges_match_a_byte_map(size: int, acks: list[tuple[int, int]]) -> None:
    out = _Out(22, 0, bytes(size), 2)
    model = _ByteMapOut(size)
    assert out.missing() == model.missing()
    for start, length in acks:
        start = min(start, size)
        stop = min(start + length, size)
        out.ack(start, stop)
        model.ack(start, stop)
        assert out.missing() == model.missing()
        assert out.done == model.done


@pytest.mark.parametrize("suite_id", list(CipherSuite13), ids=lambda s: s.name)
def test_handshake_epoch_aead_keyed_per_record_gives_the_same_records(
    suite_id: CipherSuite13,
) -> None:
    """Epoch 2 keys its AEAD and record-number cipher per record: the same octets as
    ciphers keyed once, read back by either, and a forged record still fails."""
    suite = SUITES13[suite_id]
    light = _handshake_epoch_suite(suite)
    assert light is _handshake_epoch_suite(suite) and light.make_aead is not suite.make_aead
    keys = keys13.traffic_keys(suite.hash_name, bytes(range(suite.key_length)), suite.key_length)
    once, per_record = SendEpoch(suite, keys, 2), handshake_sender(suite, keys)
    records = []
    for i in range(3):
        payload = bytes([i]) * (40 + 300 * i)
        record = once.protect(22, payload)
        assert per_record.protect(22, payload) == record
        records.append((record, payload))
    for receiver in (ReceiveEpoch(suite, keys, 2), handshake_receiver(suite, keys, 64)):
        for record, payload in records:
            ((parsed,), clean) = split_datagram(record)
            assert clean
            opened = receiver.open_record(cast(CiphertextRecord, parsed))
            assert (opened[0], opened[1]) == (22, payload)
    forged = bytearray(records[0][0])
    forged[-1] ^= 1
    ((parsed,), _) = split_datagram(bytes(forged))
    with pytest.raises(AuthenticationFailed):
        handshake_receiver(suite, keys, 64).open_record(cast(CiphertextRecord, parsed))
    # the mask writer slot is per record too (a keyed one would hold the epoch's
    # encryptor for the whole handshake), and writes the keyed writer's mask
    sample = bytes(range(16))
    keyed = bytearray(MASK_BUFFER_LENGTH)
    make_mask_writer(keys.sn_key, suite.is_chacha)(sample, keyed)
    for epoch in (per_record, handshake_receiver(suite, keys, 64)):
        assert isinstance(epoch._mask_into, functools.partial)
        written = bytearray(MASK_BUFFER_LENGTH)
        epoch._mask_into(sample, written)
        assert written == keyed


@pytest.mark.parametrize("versions", [("1.3", "1.2"), ("1.2",)])
def test_connection_and_handshake_state_fit_their_slots(versions: tuple[str, ...]) -> None:
    """Every attribute a connection, its DTLS 1.2 handshake and the 1.3 engine set
    through a whole handshake and a KeyUpdate is a slot: no instance dict is made."""
    client, server = pair({"dtls_versions": versions}, {"dtls_versions": versions})
    run(client, server)
    run(client, server, until_connected=False, max_time=2.0)
    client.key_update()
    exchange(client, server)
    for conn in (client, server):
        assert vars(conn) == {}
        assert vars(conn._handshake) == {}
        if conn._v13 is not None:
            assert vars(conn._v13) == {}
    # the configuration-wide parts of the 1.3 offer are shared between connections
    if client._config13 is not None and server._config13 is not None:
        assert client._config13.legacy_extensions is server._config13.legacy_extensions
        assert client._config13.cipher_suites is server._config13.cipher_suites
