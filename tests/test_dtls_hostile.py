"""Hostile input against the DTLS engine: nothing crashes, nothing unauthenticated is
delivered, and every buffer stays bounded."""

from __future__ import annotations

import os
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dtls_pair import DtlsConnection12, cert, drain_events, pins, run
from webrtc_secure.dtls import ApplicationData, DtlsConnection, State
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.dtls.messages import ClientHello, HandshakeFragment, HandshakeType
from webrtc_secure.dtls.reassembly import Reassembler
from webrtc_secure.dtls.records import MAX_SEQUENCE, ContentType, Record, parse_records
from webrtc_secure.errors import ConnectionClosed, WebrtcSecureError


def _hello_datagram(random: bytes, cookie: bytes = b"", seq: int = 0) -> bytes:
    hello = ClientHello(0xFEFD, random, b"", cookie, [0xC02B], b"\x00").serialize()
    fragment = HandshakeFragment(HandshakeType.CLIENT_HELLO, len(hello), 0, 0, hello)
    return Record(ContentType.HANDSHAKE, 0xFEFF, 0, seq, fragment.serialize()).serialize()


def _connected_pair() -> tuple[DtlsConnection, DtlsConnection]:
    client = DtlsConnection12(True, cert("client"), remote_fingerprints=pins("server"))
    server = DtlsConnection12(False, cert("server"), remote_fingerprints=pins("client"))
    run(client, server)
    assert client.is_connected and server.is_connected
    drain_events(client)
    drain_events(server)
    return client, server


# --- denial of service --------------------------------------------------------------


def test_spoofed_hello_flood_leaves_no_state_and_flat_memory() -> None:
    listener = DtlsListener(cert("server"), remote_fingerprints=pins("client"))
    # warm up allocations (cookie HMAC, codecs) before measuring
    for i in range(100):
        listener.receive_datagram(_hello_datagram(os.urandom(32)), ("10.0.0.1", i), 0.0)
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    replies_larger = 0
    for i in range(5000):
        hello = _hello_datagram(os.urandom(32), seq=i)
        conn, replies = listener.receive_datagram(hello, ("192.0.2.7", 1024 + i), 0.0)
        assert conn is None and len(replies) == 1
        replies_larger += len(replies[0]) > len(hello)
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert listener.connections == {}
    assert listener.hello_verify_requests_sent == 5100
    assert replies_larger == 0  # never an amplifier
    assert after - before < 64 * 1024


def test_hello_verify_request_echoes_record_and_message_sequence() -> None:
    listener = DtlsListener(cert("server"), remote_fingerprints=pins("client"))
    _, replies = listener.receive_datagram(_hello_datagram(os.urandom(32), seq=42), "addr", 0.0)
    (record,), clean = parse_records(replies[0])
    assert clean and record.sequence_number == 42 and record.version == 0xFEFF


def test_cookie_is_bound_to_the_address() -> None:
    listener = DtlsListener(cert("server"), remote_fingerprints=pins("client"))
    random = os.urandom(32)
    _, replies = listener.receive_datagram(_hello_datagram(random), ("198.51.100.1", 5), 0.0)
    (record,), _ = parse_records(replies[0])
    cookie = record.fragment[12 + 3 :]
    # the same cookie from another address is answered with a new HelloVerifyRequest
    conn, replies = listener.receive_datagram(
        _hello_datagram(random, cookie), ("198.51.100.2", 5), 0.0
    )
    assert conn is None and replies
    conn, replies = listener.receive_datagram(
        _hello_datagram(random, cookie), ("198.51.100.1", 5), 0.0
    )
    assert conn is not None and not replies


def test_listener_completes_real_handshakes_for_several_clients() -> None:
    listener = DtlsListener(cert("server"), remote_fingerprints=pins("client"))
    clients = {
        ("127.0.0.1", 5000 + i): DtlsConnection12(
            True, cert("client"), remote_fingerprints=pins("server")
        )
        for i in range(3)
    }
    for client in clients.values():
        client.connect(0.0)
    for _ in range(10):
        for addr, client in clients.items():
            for datagram in client.datagrams_to_send(0.0):
                conn, replies = listener.receive_datagram(datagram, addr, 0.0)
                for reply in replies + (conn.datagrams_to_send(0.0) if conn else []):
                    client.receive_datagram(reply, 0.0)
    assert all(c.is_connected for c in clients.values())
    assert all(c.is_connected for c in listener.connections.values())
    assert len(listener.connections) == 3


def test_fragment_bombs_stay_bounded() -> None:
    r = Reassembler(max_message_size=32 * 1024, max_messages_ahead=8)
    # a huge declared length is refused outright
    assert not r.add(HandshakeFragment(11, (1 << 24) - 1, 0, 0, b"x"), 0)
    # endless one-octet fragments of one message hit the fragment budget
    accepted = sum(r.add(HandshakeFragment(11, 30_000, 0, i, b"y"), 0) for i in range(10_000))
    assert accepted == r.max_fragments_per_message
    # messages far ahead are not buffered; the near ones are, within limits
    for seq in range(1000):
        r.add(HandshakeFragment(11, 32 * 1024, seq, 0, b"z"), 0)
    assert r.buffered_bytes <= 8 * 32 * 1024
    assert r.pop_ready() is None


def test_contradictory_and_empty_fragments_are_dropped() -> None:
    r = Reassembler()
    assert r.add(HandshakeFragment(11, 10, 0, 0, b"abcde"), 0)
    assert not r.add(HandshakeFragment(12, 10, 0, 5, b"fghij"), 0)  # other type
    assert not r.add(HandshakeFragment(11, 11, 0, 5, b"fghij"), 0)  # other length
    assert not r.add(HandshakeFragment(11, 10, 0, 3, b"XXXX"), 0)  # overlap disagrees
    assert not r.add(HandshakeFragment(11, 10, 0, 4, b""), 0)  # empty inside non-empty
    assert r.add(HandshakeFragment(11, 10, 0, 3, b"defgh"), 0)  # consistent overlap
    assert r.add(HandshakeFragment(11, 10, 0, 8, b"ij"), 0)
    message = r.pop_ready()
    assert message is not None and message.body == b"abcdefghij"
    # an empty message (ServerHelloDone) is legal
    assert r.add(HandshakeFragment(14, 0, 1, 0, b""), 0)
    done = r.pop_ready()
    assert done is not None and done.body == b""


def test_early_epoch_records_are_bounded() -> None:
    server = DtlsConnection12(
        False, cert("server"), remote_fingerprints=pins("client"), cookies=False
    )
    for i in range(1000):
        record = Record(ContentType.APPLICATION_DATA, 0xFEFD, 1, i, os.urandom(40))
        server.receive_datagram(record.serialize(), 0.0)
    assert len(server._early_records) <= 32
    assert server.stats.dropped_epoch >= 1000 - 32


# --- tampering and replay -------------------------------------------------------------


def test_tampered_records_are_dropped_and_the_connection_survives() -> None:
    client, server = _connected_pair()
    client.send(b"secret")
    (datagram,) = client.datagrams_to_send(0.0)
    for bit in range(0, len(datagram) * 8, 7):
        flipped = bytearray(datagram)
        flipped[bit // 8] ^= 1 << (bit % 8)
        server.receive_datagram(bytes(flipped), 0.0)
    assert not [e for e in drain_events(server) if isinstance(e, ApplicationData)]
    assert server.is_connected
    assert server.stats.dropped_authentication > 0
    server.receive_datagram(datagram, 0.0)
    assert drain_events(server) == [ApplicationData(b"secret")]


def test_replayed_record_is_refused() -> None:
    client, server = _connected_pair()
    client.send(b"once")
    (datagram,) = client.datagrams_to_send(0.0)
    server.receive_datagram(datagram, 0.0)
    server.receive_datagram(datagram, 0.0)
    assert drain_events(server) == [ApplicationData(b"once")]
    assert server.stats.dropped_replay == 1


def test_unauthenticated_alert_after_handshake_is_ignored() -> None:
    _client, server = _connected_pair()
    forged = Record(ContentType.ALERT, 0xFEFD, 0, 99, b"\x02\x28").serialize()
    server.receive_datagram(forged, 0.0)
    assert server.is_connected


def test_sequence_exhaustion_ends_the_connection_cleanly() -> None:
    client, _server = _connected_pair()
    client._write_seq[1] = MAX_SEQUENCE
    client.send(b"last")  # uses the final sequence number
    try:
        client.send(b"one too many")
    except ConnectionClosed:
        pass
    else:
        raise AssertionError("send past the sequence space must raise")
    assert client.state == State.FAILED


# --- garbage ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.booleans())
def test_random_datagrams_never_raise(data: bytes, as_client: bool) -> None:
    conn = DtlsConnection12(
        as_client,
        cert("client" if as_client else "server"),
        cookies=False,
        remote_fingerprints=pins("server" if as_client else "client"),
    )
    conn.connect(0.0)
    conn.receive_datagram(data, 0.0)
    conn.receive_datagram(b"\x16\xfe\xfd" + data, 0.0)
    conn.handle_timer(5.0)
    assert conn.error is None or isinstance(conn.error, WebrtcSecureError)


def _handshake_datagrams() -> list[tuple[bool, bytes]]:
    """Every datagram of a real handshake, tagged with whether the client sent it."""
    client = DtlsConnection12(True, cert("client"), remote_fingerprints=pins("server"), mtu=300)
    server = DtlsConnection12(False, cert("server"), remote_fingerprints=pins("client"), mtu=300)
    captured: list[tuple[bool, bytes]] = []
    client.connect(0.0)
    for _ in range(10):
        for sender, receiver, is_client in ((client, server, True), (server, client, False)):
            for d in sender.datagrams_to_send(0.0):
                captured.append((is_client, d))
                receiver.receive_datagram(d, 0.0)
    assert client.is_connected
    return captured


_CAPTURE = _handshake_datagrams()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_truncated_and_mutated_real_datagrams_never_raise(data: st.DataObject) -> None:
    from_client, datagram = data.draw(st.sampled_from(_CAPTURE))
    cut = data.draw(st.integers(0, len(datagram)))
    position = data.draw(st.integers(0, max(0, len(datagram) - 1)))
    mutated = bytearray(datagram[:cut])
    if mutated and position < len(mutated):
        mutated[position] ^= data.draw(st.integers(1, 255))
    receiver = DtlsConnection12(
        not from_client,
        cert("server" if from_client else "client"),
        cookies=False,
        remote_fingerprints=pins("client" if from_client else "server"),
    )
    receiver.connect(0.0)
    receiver.receive_datagram(bytes(mutated), 0.0)
    assert receiver.error is None or isinstance(receiver.error, WebrtcSecureError)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2, 3, 11, 12, 13, 14, 15, 16, 20, 99]),
            st.integers(0, 6),
            st.binary(max_size=80),
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_random_handshake_message_sequences_end_in_typed_errors(
    messages: list[tuple[int, int, bytes]], as_client: bool
) -> None:
    conn = DtlsConnection12(as_client, cert("x"), cookies=False, remote_fingerprints=pins("y"))
    conn.connect(0.0)
    for seq, (msg_type, epoch_hint, body) in enumerate(messages):
        fragment = HandshakeFragment(msg_type, len(body), seq, 0, body)
        conn.receive_datagram(
            Record(
                ContentType.HANDSHAKE, 0xFEFD, 0, seq + epoch_hint, fragment.serialize()
            ).serialize(),
            0.0,
        )
    assert conn.state in (State.HANDSHAKING, State.FAILED)
    assert conn.error is None or isinstance(conn.error, WebrtcSecureError)


def test_a_whole_message_is_not_replaced_by_a_later_different_copy() -> None:
    r = Reassembler()
    assert r.add(HandshakeFragment(11, 4, 0, 0, b"good"), 0)
    assert not r.add(HandshakeFragment(11, 4, 0, 0, b"evil"), 0)
    assert not r.add(HandshakeFragment(11, 4, 0, 2, b"il"), 0)
    assert r.add(HandshakeFragment(11, 4, 0, 2, b"od"), 0)  # consistent repeat
    message = r.pop_ready()
    assert message is not None and message.body == b"good"
