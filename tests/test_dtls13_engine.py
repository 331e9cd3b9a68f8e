"""The DTLS 1.3 engine (handshake13.py) through DtlsConnection, against itself in both
roles, with every message on the wire decoded independently of the engine.

No second DTLS 1.3 implementation is available offline (issue 12; Chromium covers
that in tests/test_interop_chromium.py). So the wire is checked from the outside:
the records are opened with keys derived from the SSLKEYLOGFILE lines the engine
writes, every handshake message is parsed with the messages13 codecs and must
re-encode byte for byte, the server's CertificateVerify is verified against its
certificate over a transcript hashed here, and both Finished are recomputed here.
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.dtls_pair import Link, cert, drain_events, pins, run
from webrtc_secure.dtls import DtlsConnection, State, keys13
from webrtc_secure.dtls.events import ApplicationData, ConnectionClosed, HandshakeComplete
from webrtc_secure.dtls.groups import Group
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.dtls.messages import AlertDescription, split_handshake_fragments
from webrtc_secure.dtls.messages13 import (
    DOWNGRADE_TLS12,
    DTLS_1_3,
    HELLO_RETRY_REQUEST_RANDOM,
    Certificate13,
    CertificateRequest13,
    CertificateVerify13,
    ClientHello13,
    EncryptedExtensions,
    ExtensionType13,
    Finished13,
    HandshakeType13,
    ServerHello13,
    certificate_verify_content,
    parse_cookie,
    parse_key_share_client,
    parse_key_share_hrr,
    parse_key_share_server,
    parse_supported_versions_client,
    parse_supported_versions_server,
    transcript_message,
)
from webrtc_secure.dtls.records13 import (
    CiphertextRecord,
    ContentType13,
    PlaintextRecord,
    ReceiveEpoch,
    encode_plaintext_record,
    parse_ack,
    reconstruct_epoch,
    split_datagram,
)
from webrtc_secure.dtls.suites13 import SUITES13, CipherSuite13
from webrtc_secure.errors import (
    AlertReceived,
    DtlsError,
    FingerprintMismatch,
    HandshakeFailure,
    HandshakeTimeout,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from faults import _run

A = AlertDescription
T = HandshakeType13


def pair(
    client_options: dict[str, Any] | None = None, server_options: dict[str, Any] | None = None
) -> tuple[DtlsConnection, DtlsConnection]:
    client = DtlsConnection(
        True, cert("client"), remote_fingerprints=pins("server"), **(client_options or {})
    )
    server_options = {"cookies": False, **(server_options or {})}
    server = DtlsConnection(
        False, cert("server"), remote_fingerprints=pins("client"), **server_options
    )
    return client, server


class Tap:
    """Runs a pair like tests.dtls_pair.run, recording every datagram by direction and
    optionally dropping some (``drop(direction, index, datagram) -> bool``)."""

    def __init__(self, client: DtlsConnection, server: DtlsConnection, drop: Any = None) -> None:
        self.client, self.server = client, server
        self.sent: dict[str, list[bytes]] = {"c2s": [], "s2c": []}
        self.drop = drop
        self.now = 0.0

    def run(self, max_time: float = 30.0, until: Any = None) -> None:
        client, server = self.client, self.server
        if client.state is State.NEW:
            client.connect(self.now)
            server.connect(self.now)
        in_flight: list[tuple[float, int, DtlsConnection, bytes]] = []
        order = 0
        while self.now <= max_time:
            for direction, sender, receiver in (("c2s", client, server), ("s2c", server, client)):
                for datagram in sender.datagrams_to_send(self.now):
                    index = len(self.sent[direction])
                    self.sent[direction].append(datagram)
                    if self.drop is not None and self.drop(direction, index, datagram):
                        continue
                    order += 1
                    in_flight.append((self.now + 0.005, order, receiver, datagram))
            done = until() if until else client.is_connected and server.is_connected
            if done and not in_flight:
                return
            timers = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
            candidates = timers + [d[0] for d in in_flight]
            if not candidates:
                return
            self.now = max(self.now, min(candidates))
            due = sorted(d for d in in_flight if d[0] <= self.now)
            in_flight = [d for d in in_flight if d[0] > self.now]
            for _, _, receiver, datagram in due:
                receiver.receive_datagram(datagram, self.now)
            for conn in (client, server):
                timer = conn.get_timer()
                if timer is not None and timer <= self.now:
                    conn.handle_timer(self.now)


def assert_connected_13(client: DtlsConnection, server: DtlsConnection) -> None:
    assert client.state is State.CONNECTED, client.error
    assert server.state is State.CONNECTED, server.error
    assert client.version == server.version == DTLS_1_3
    assert client.version_name == "DTLS 1.3"
    assert client.cipher_suite == server.cipher_suite
    assert client.group == server.group
    assert client.srtp_profile == server.srtp_profile and client.srtp_profile is not None
    assert client.peer_certificate == cert("server").der
    assert server.peer_certificate == cert("client").der
    ours = client.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    assert ours == server.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    assert len(ours) == 60


def exchange(client: DtlsConnection, server: DtlsConnection, tap: Tap | None = None) -> None:
    drain_events(client)
    drain_events(server)
    client.send(b"ping")
    server.send(b"pong")
    if tap is not None:
        tap.run(until=lambda: False, max_time=tap.now + 1.0)
    else:
        run(client, server, until_connected=False, max_time=5.0)
    assert [e for e in drain_events(server) if isinstance(e, ApplicationData)] == [
        ApplicationData(b"ping")
    ]
    assert [e for e in drain_events(client) if isinstance(e, ApplicationData)] == [
        ApplicationData(b"pong")
    ]


# --- handshakes ---------------------------------------------------------------------------


@pytest.mark.parametrize("suite", list(CipherSuite13), ids=lambda s: s.name)
@pytest.mark.parametrize("group", list(Group), ids=lambda g: g.name)
def test_every_suite_and_group(suite: CipherSuite13, group: Group) -> None:
    options = {"cipher_suites13": [suite], "groups13": [group]}
    client, server = pair(options, options)
    events = []
    run(client, server)
    events = drain_events(client)
    assert_connected_13(client, server)
    assert client.cipher_suite is suite and client.group == group.name
    complete = [e for e in events if isinstance(e, HandshakeComplete)]
    assert len(complete) == 1 and complete[0].cipher_suite == suite
    # a client limited to one group sends its share: no HelloRetryRequest
    assert client.stats.flights_sent == 2
    exchange(client, server)


def test_defaults_negotiate_the_hybrid_with_aes_128_gcm() -> None:
    client, server = pair()
    run(client, server)
    assert_connected_13(client, server)
    assert client.group == "X25519MLKEM768"
    assert client.cipher_suite is CipherSuite13.TLS_AES_128_GCM_SHA256
    assert client.stats.retransmissions == server.stats.retransmissions == 0
    exchange(client, server)


# --- the wire, decoded here --------------------------------------------------------------


def _keylog(path: Path) -> dict[str, bytes]:
    secrets: dict[str, bytes] = {}
    for line in path.read_text().splitlines():
        label, _random, secret = line.split()
        secrets[label] = bytes.fromhex(secret)
    return secrets


class WireDecoder:
    """Opens one direction's records with keys from the key log, and reassembles
    the handshake messages (type, body, epoch) in message_seq order."""

    def __init__(self, suite: CipherSuite13, secrets: dict[int, bytes]) -> None:
        info = SUITES13[suite]
        self.epochs = {
            epoch: ReceiveEpoch(
                info, keys13.traffic_keys(info.hash_name, s, info.key_length), epoch
            )
            for epoch, s in secrets.items()
        }
        self.messages: dict[int, tuple[int, bytearray, int]] = {}
        self.acks: list[tuple[int, list[Any]]] = []
        self.records: list[tuple[int, int, int]] = []  # (epoch, seq, content type)

    def feed(self, datagram: bytes) -> None:
        records, clean = split_datagram(datagram)
        assert clean
        for record in records:
            if isinstance(record, PlaintextRecord):
                epoch, seq, ctype, content = (
                    record.epoch,
                    record.sequence_number,
                    record.content_type,
                    record.fragment,
                )
                assert epoch == 0
            else:
                assert isinstance(record, CiphertextRecord)
                epoch_or_none = reconstruct_epoch(record.epoch_bits, max(self.epochs))
                assert epoch_or_none is not None
                receiver = self.epochs[epoch_or_none]
                ctype, content, epoch, seq = receiver.open_record(record)
            self.records.append((epoch, seq, ctype))
            if ctype == ContentType13.HANDSHAKE:
                for msg_type, length, message_seq, offset, body in split_handshake_fragments(
                    content
                ):
                    entry = self.messages.setdefault(
                        message_seq, (msg_type, bytearray(length), epoch)
                    )
                    assert entry[0] == msg_type and entry[2] == epoch
                    entry[1][offset : offset + len(body)] = body
            elif ctype == ContentType13.ACK:
                self.acks.append((epoch, parse_ack(content)))

    def handshake(self) -> list[tuple[int, bytes, int]]:
        return [(t, bytes(b), e) for _, (t, b, e) in sorted(self.messages.items())]


def test_every_message_matches_the_rfc_encoding(tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    client, server = pair({"keylog_file": str(keylog)})
    tap = Tap(client, server)
    tap.run()
    assert_connected_13(client, server)
    suite = client.cipher_suite
    assert isinstance(suite, CipherSuite13)
    info = SUITES13[suite]
    secrets = _keylog(keylog)
    assert sorted(secrets) == [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_TRAFFIC_SECRET_0",
    ]
    # the exporter as RFC 8446 7.5 defines it, from the logged exporter secret
    assert client.export_keying_material("EXTRACTOR-dtls_srtp", 60) == (
        keys13.export_keying_material(
            info.hash_name, secrets["EXPORTER_SECRET"], b"EXTRACTOR-dtls_srtp", None, 60
        )
    )
    from_client = WireDecoder(
        suite,
        {
            2: secrets["CLIENT_HANDSHAKE_TRAFFIC_SECRET"],
            3: secrets["CLIENT_TRAFFIC_SECRET_0"],
        },
    )
    from_server = WireDecoder(
        suite,
        {
            2: secrets["SERVER_HANDSHAKE_TRAFFIC_SECRET"],
            3: secrets["SERVER_TRAFFIC_SECRET_0"],
        },
    )
    for datagram in tap.sent["c2s"]:
        from_client.feed(datagram)
    for datagram in tap.sent["s2c"]:
        from_server.feed(datagram)
    ours = from_client.handshake()
    theirs = from_server.handshake()
    assert [(t, e) for t, _, e in ours] == [
        (T.CLIENT_HELLO, 0),
        (T.CERTIFICATE, 2),
        (T.CERTIFICATE_VERIFY, 2),
        (T.FINISHED, 2),
    ]
    assert [(t, e) for t, _, e in theirs] == [
        (T.SERVER_HELLO, 0),
        (T.ENCRYPTED_EXTENSIONS, 2),
        (T.CERTIFICATE_REQUEST, 2),
        (T.CERTIFICATE, 2),
        (T.CERTIFICATE_VERIFY, 2),
        (T.FINISHED, 2),
    ]
    ch_body = ours[0][1]
    ch = ClientHello13.parse(ch_body)
    assert ch.serialize() == ch_body
    assert ch.legacy_version == 0xFEFD and ch.legacy_cookie == b"" and ch.legacy_session_id == b""
    versions = ch.extension(ExtensionType13.SUPPORTED_VERSIONS)
    assert versions is not None and parse_supported_versions_client(versions) == [0xFEFC, 0xFEFD]
    shares = ch.extension(ExtensionType13.KEY_SHARE)
    assert shares is not None
    assert [(e.group, len(e.key_exchange)) for e in parse_key_share_client(shares)] == [
        (Group.X25519MLKEM768, 1216),
        (Group.X25519, 32),
    ]
    sh_body = theirs[0][1]
    sh = ServerHello13.parse(sh_body)
    assert sh.serialize() == sh_body and not sh.is_hello_retry_request
    assert sh.legacy_session_id_echo == b"" and sh.downgrade_sentinel is None
    raw_version = sh.extension(ExtensionType13.SUPPORTED_VERSIONS)
    assert raw_version is not None and parse_supported_versions_server(raw_version) == DTLS_1_3
    raw_share = sh.extension(ExtensionType13.KEY_SHARE)
    assert raw_share is not None
    server_share = parse_key_share_server(raw_share)
    assert (server_share.group, len(server_share.key_exchange)) == (Group.X25519MLKEM768, 1120)
    ee = EncryptedExtensions.parse(theirs[1][1])
    assert ee.serialize() == theirs[1][1]
    assert ee.extension(ExtensionType13.USE_SRTP) is not None
    cr = CertificateRequest13.parse(theirs[2][1])
    assert cr.serialize() == theirs[2][1] and cr.certificate_request_context == b""
    for body, der in ((theirs[3][1], cert("server").der), (ours[1][1], cert("client").der)):
        certificate = Certificate13.parse(body)
        assert certificate.serialize() == body
        assert [e.cert_data for e in certificate.entries] == [der]
    # the transcript, hashed here from the TLS forms of the messages as they were sent
    order = [ours[0], *theirs, *ours[1:]]
    transcript = [transcript_message(t, b) for t, b, _ in order]

    def th(count: int) -> bytes:
        return hashlib.new(info.hash_name, b"".join(transcript[:count])).digest()

    for index, signer, server_side in ((5, cert("server"), True), (8, cert("client"), False)):
        verify = CertificateVerify13.parse(order[index][1])
        assert verify.serialize() == order[index][1]
        assert verify.algorithm == 0x0403  # ECDSA P-256 with SHA-256
        public_key = x509.load_der_x509_certificate(signer.der).public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(
            verify.signature,
            certificate_verify_content(th(index), server=server_side),
            ec.ECDSA(hashes.SHA256()),
        )
    for index, secret in (
        (6, "SERVER_HANDSHAKE_TRAFFIC_SECRET"),
        (9, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
    ):
        finished = Finished13.parse(order[index][1], 32)
        assert finished.verify_data == keys13.finished_verify_data(
            info.hash_name, secrets[secret], th(index)
        )
    # the server acknowledged the client's final flight, in epoch 3, by record number
    acked_flight = {(e, s) for e, s, ct in from_client.records if e == 2}
    (ack_epoch, numbers), *_ = from_server.acks
    assert ack_epoch == 3
    assert {(n.epoch, n.sequence_number) for n in numbers} == acked_flight


# --- HelloRetryRequest ------------------------------------------------------------------


def _hellos(datagrams: list[bytes]) -> list[tuple[int, bytes]]:
    """(type, whole body) of the epoch-0 handshake messages, by message_seq."""
    messages: dict[int, tuple[int, bytearray]] = {}
    for datagram in datagrams:
        records, _ = split_datagram(datagram)
        for record in records:
            if not isinstance(record, PlaintextRecord) or record.content_type != 22:
                continue
            for t, length, seq, offset, body in split_handshake_fragments(record.fragment):
                entry = messages.setdefault(seq, (t, bytearray(length)))
                entry[1][offset : offset + len(body)] = body
    return [(t, bytes(b)) for _, (t, b) in sorted(messages.items())]


def test_hello_retry_request_for_a_missing_key_share() -> None:
    client, server = pair(server_options={"groups13": [Group.SECP256R1]})
    tap = Tap(client, server)
    tap.run()
    assert_connected_13(client, server)
    assert client.group == "SECP256R1" and client.stats.flights_sent == 3
    (hrr_type, hrr_body), (sh_type, _sh_body) = _hellos(tap.sent["s2c"])
    (_, ch1), (_, ch2) = _hellos(tap.sent["c2s"])
    hrr = ServerHello13.parse(hrr_body)
    assert hrr_type == sh_type == T.SERVER_HELLO
    assert hrr.is_hello_retry_request and hrr.random == HELLO_RETRY_REQUEST_RANDOM
    raw_group = hrr.extension(ExtensionType13.KEY_SHARE)
    assert raw_group is not None and parse_key_share_hrr(raw_group) == Group.SECP256R1
    hello2 = ClientHello13.parse(ch2)
    assert hello2.random == ClientHello13.parse(ch1).random
    shares = hello2.extension(ExtensionType13.KEY_SHARE)
    assert shares is not None
    assert [e.group for e in parse_key_share_client(shares)] == [Group.SECP256R1]
    hrr_cookie = hrr.extension(ExtensionType13.COOKIE)
    echoed = hello2.extension(ExtensionType13.COOKIE)
    assert hrr_cookie is not None and echoed is not None
    assert parse_cookie(echoed) == parse_cookie(hrr_cookie)
    exchange(client, server)


def test_cookie_hello_retry_request_checks_return_routability() -> None:
    client, server = pair(server_options={"cookies": True})
    tap = Tap(client, server)
    tap.run()
    assert_connected_13(client, server)
    assert client.group == "X25519MLKEM768"  # the cookie round did not change the share
    (_, hrr_body), _ = _hellos(tap.sent["s2c"])
    hrr = ServerHello13.parse(hrr_body)
    assert hrr.is_hello_retry_request
    assert hrr.extension(ExtensionType13.KEY_SHARE) is None
    assert hrr.extension(ExtensionType13.COOKIE) is not None
    # the HRR is smaller than the hello that asked for it (no amplification)
    assert len(tap.sent["s2c"][0]) < sum(len(d) for d in tap.sent["c2s"][:2])


def test_listener_answers_statelessly_then_connects() -> None:
    listener = DtlsListener(cert("server"), remote_fingerprints=pins("client"))
    client = DtlsConnection(True, cert("client"), remote_fingerprints=pins("server"))
    addr = ("192.0.2.7", 4444)
    client.connect(0.0)
    server: DtlsConnection | None = None
    now = 0.0
    for _ in range(10):
        now += 0.01
        for datagram in client.datagrams_to_send(now):
            conn, replies = listener.receive_datagram(datagram, addr, now)
            if server is None and conn is None:
                assert not listener.connections
            server = conn or server
            for reply in replies:
                client.receive_datagram(reply, now)
        if server is not None:
            for datagram in server.datagrams_to_send(now):
                client.receive_datagram(datagram, now)
        if client.is_connected and server is not None and server.is_connected:
            break
    assert server is not None and client.is_connected and server.is_connected
    assert listener.hello_retry_requests_sent == 1 and listener.hello_verify_requests_sent == 0
    assert client.version == server.version == DTLS_1_3
    # a forged cookie from another address gets a fresh HRR, not a connection
    other = DtlsConnection(True, cert("client"), remote_fingerprints=pins("server"))
    other.connect(0.0)
    replies: list[bytes] = []
    for datagram in other.datagrams_to_send(0.0):
        conn, replies = listener.receive_datagram(datagram, ("192.0.2.8", 1), 0.0)
        assert conn is None
    assert len(replies) == 1 and listener.hello_retry_requests_sent == 2


# --- versions and downgrade -------------------------------------------------------------


@pytest.mark.parametrize("cookies", [False, True], ids=["no-cookies", "hello-verify"])
def test_client_falls_back_to_a_dtls12_server(cookies: bool) -> None:
    client, server = pair(server_options={"dtls_versions": ["1.2"], "cookies": cookies})
    run(client, server)
    assert client.is_connected and server.is_connected, (client.error, server.error)
    assert client.version_name == server.version_name == "DTLS 1.2"
    assert client.export_keying_material("EXTRACTOR-dtls_srtp", 60) == (
        server.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    )
    exchange(client, server)


def test_server_answers_a_dtls12_client_with_the_downgrade_sentinel() -> None:
    client, server = pair({"dtls_versions": ["1.2"]})
    tap = Tap(client, server)
    tap.run()
    assert client.version_name == server.version_name == "DTLS 1.2"
    # the 1.2 ServerHello: version(2) random(32); the random ends in "DOWNGRD" 01
    (_, sh), *_ = [m for m in _hellos(tap.sent["s2c"]) if m[0] == T.SERVER_HELLO]
    assert sh[2:34][-8:] == DOWNGRADE_TLS12


def test_downgrade_attempt_is_refused_with_illegal_parameter() -> None:
    # a 1.3-capable server made to answer 1.2 (as if 1.3 had been stripped from the
    # hello on the way): its random carries the sentinel, which the client refuses
    client, server = pair(server_options={"dtls_versions": ["1.2"]})
    server._handshake.dtls13_capable = True
    run(client, server)
    assert client.state is State.FAILED
    assert isinstance(client.error, HandshakeFailure)
    assert client.error.alert == A.ILLEGAL_PARAMETER
    assert isinstance(server.error, AlertReceived) and server.error.alert == A.ILLEGAL_PARAMETER


def test_dtls12_client_at_a_dtls13_only_server_gets_protocol_version() -> None:
    client, server = pair({"dtls_versions": ["1.2"]}, {"dtls_versions": ["1.3"]})
    run(client, server)
    assert isinstance(server.error, HandshakeFailure)
    assert server.error.alert == A.PROTOCOL_VERSION
    assert isinstance(client.error, AlertReceived) and client.error.alert == A.PROTOCOL_VERSION


def test_dtls13_only_client_at_a_dtls12_server_finds_nothing_in_common() -> None:
    # the 1.2 server sees a 1.2 legacy_version and only TLS 1.3 suites
    client, server = pair({"dtls_versions": ["1.3"]}, {"dtls_versions": ["1.2"]})
    run(client, server)
    assert isinstance(server.error, HandshakeFailure)
    assert server.error.alert == A.HANDSHAKE_FAILURE
    assert isinstance(client.error, AlertReceived)
    assert client.state is State.FAILED


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("wrong", ["client", "server"])
def test_fingerprint_mismatch_fails_like_dtls12(wrong: str, version: str) -> None:
    # ``wrong`` pins a third certificate instead of its peer's
    client = DtlsConnection(
        True,
        cert("client"),
        remote_fingerprints=pins("mallory" if wrong == "client" else "server"),
        dtls_versions=(version,),
    )
    server = DtlsConnection(
        False,
        cert("server"),
        cookies=False,
        remote_fingerprints=pins("mallory" if wrong == "server" else "client"),
        dtls_versions=(version,),
    )
    run(client, server)
    refusing, other = (client, server) if wrong == "client" else (server, client)
    assert isinstance(refusing.error, FingerprintMismatch)
    assert refusing.error.alert == A.BAD_CERTIFICATE
    assert isinstance(other.error, AlertReceived) and other.error.alert == A.BAD_CERTIFICATE
    for conn in (client, server):
        assert conn.state is State.FAILED
        events = drain_events(conn)
        closed = [e for e in events if isinstance(e, ConnectionClosed)]
        assert len(closed) == 1 and closed[0].error is conn.error
        assert closed[0].by_peer is (conn is other)
        completed = any(isinstance(e, HandshakeComplete) for e in events)
        # only a DTLS 1.3 client completes before the server has checked its
        # certificate: it is connected once it sent its Finished (RFC 9147 5.8.4),
        # and the server's alert then ends that connection with the same error
        assert completed is (version == "1.3" and wrong == "server" and conn is client)
        if completed:
            assert events.index(closed[0]) > [type(e) for e in events].index(HandshakeComplete)


def test_client_is_connected_on_sending_its_finished() -> None:
    # one flight earlier than DTLS 1.2: HandshakeComplete, the exporter and data right
    # after the client's Finished; the final flight is resent until the server's ACK
    client, server = pair()
    client.connect(0.0)
    server.connect(0.0)
    flights = 0
    for sender, receiver in ((client, server), (server, client)):
        flights += 1
        for d in sender.datagrams_to_send(0.0):
            receiver.receive_datagram(d, 0.0)
    assert flights == 2 and client.state is State.CONNECTED and server.state is State.HANDSHAKING
    assert any(isinstance(e, HandshakeComplete) for e in drain_events(client))
    keys = client.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    final = client.datagrams_to_send(0.0)
    client.send(b"early")
    (data,) = client.datagrams_to_send(0.0)
    # the data overtakes the final flight: the server holds it until the Finished
    server.receive_datagram(data, 0.001)
    assert server.state is State.HANDSHAKING and not drain_events(server)
    for d in final:
        server.receive_datagram(d, 0.002)
    assert server.state is State.CONNECTED
    events = drain_events(server)
    assert isinstance(events[0], HandshakeComplete) and events[1:] == [ApplicationData(b"early")]
    assert server.export_keying_material("EXTRACTOR-dtls_srtp", 60) == keys
    # the server's ACK went out; until it arrives the client resends the final flight
    ack = server.datagrams_to_send(0.002)
    assert client._v13 is not None and client._v13.retransmit_at is not None
    timer = client.get_timer()
    assert timer is not None
    client.handle_timer(timer)
    resent = client.datagrams_to_send(timer)
    # the same flight in epoch 2 under new record numbers, twice (a second copy of
    # the small final flight, as after every timer of it)
    assert len(resent) == 2 * len(final)
    assert all(d[0] & 0xE3 == 0x22 for d in resent)
    assert sorted(map(len, resent)) == sorted(map(len, final + final))
    for d in ack:
        client.receive_datagram(d, timer + 0.001)
    assert client._v13.retransmit_at is None and client.get_timer() is None
    assert client._v13.state_name == "CONNECTED"
    exchange(client, server)


def to_final_flight() -> tuple[DtlsConnection, DtlsConnection, list[bytes]]:
    """Client and server through the server's flight (the client connected, the
    server still handshaking); the client's final flight, not yet delivered."""
    client, server = pair()
    client.connect(0.0)
    server.connect(0.0)
    for sender, receiver in ((client, server), (server, client)):
        for d in sender.datagrams_to_send(0.0):
            receiver.receive_datagram(d, 0.0)
    assert client.state is State.CONNECTED and server.state is State.HANDSHAKING
    return client, server, client.datagrams_to_send(0.0)


def test_unacknowledged_finished_ends_the_connection() -> None:
    # a server that never answers the final flight (gone, or never got it): the client
    # reported connected, keeps resending, and then fails with HandshakeTimeout
    client, _server, _final = to_final_flight()
    resends = 0
    while (timer := client.get_timer()) is not None and timer < 600:
        client.handle_timer(timer)
        resends += bool(client.datagrams_to_send(timer))
    assert client.state is State.FAILED and isinstance(client.error, HandshakeTimeout)
    assert resends == client._max_retransmissions


# --- after the handshake ------------------------------------------------------------------


@pytest.mark.parametrize("initiator", ["client", "server"])
def test_key_update_requested_moves_both_directions(initiator: str) -> None:
    client, server = pair()
    run(client, server)
    first, second = (client, server) if initiator == "client" else (server, client)
    assert first.key_update(request_peer_update=True)
    assert not first.key_update()  # one at a time until it is acknowledged
    # data sent before the ACK still goes out in the old epoch and is delivered
    first.send(b"before")
    run(client, server, until_connected=False, max_time=5.0)
    for conn in (client, server):
        engine = conn._v13
        assert engine is not None
        assert (engine.write_epoch, engine.read_epoch) == (4, 4)
    assert first._v13 is not None and second._v13 is not None
    assert first._v13.key_updates_sent == 1 and second._v13.key_updates_received == 1
    assert second._v13.key_updates_sent == 1 and first._v13.key_updates_received == 1
    events = [e for e in drain_events(second) if isinstance(e, ApplicationData)]
    assert events == [ApplicationData(b"before")]
    exchange(client, server)
    # and again: epochs keep counting
    assert second.key_update(request_peer_update=False)
    run(client, server, until_connected=False, max_time=5.0)
    assert second._v13.write_epoch == 5 and first._v13.read_epoch == 5
    assert first._v13.write_epoch == 4
    exchange(client, server)


def test_handshake_only_state_is_released_once_connected() -> None:
    """Memory per established connection: the key shares (an ML-KEM-768 private key is
    about 9 KB), ClientHello1, the transcript hash, the peer's public key and the
    acknowledged flight's bookkeeping go once the handshake is over; a KeyUpdate and
    the exporter still work without them, and post-handshake messages are not kept
    for a transcript."""
    client, server = pair()
    run(client, server)
    run(client, server, until_connected=False, max_time=2.0)  # the client's Finished ACKed
    for conn in (client, server):
        engine = conn._v13
        assert engine is not None and engine.state == 6  # _CONNECTED
        assert engine._shares == {} and engine._client_hello1 == b""
        assert engine._hash is None and engine._pending_transcript == []
        assert engine.peer_public_key is None and engine._requested_schemes is None
        assert engine._flight == [] and engine._old_senders == {}
        assert engine._sent == {}
    assert client._v13 is not None and server._v13 is not None
    assert sorted(client._v13._rx) == [3] and sorted(server._v13._rx) == [3]
    assert server._v13._parked_rx2 is not None  # epoch 2 readable, not keyed
    assert_connected_13(client, server)
    assert client.key_update(request_peer_update=True)
    run(client, server, until_connected=False, max_time=5.0)
    for conn in (client, server):
        engine = conn._v13
        assert engine is not None and engine.write_epoch == 4
        assert engine._hash is None and engine._pending_transcript == []
    exchange(client, server)


def test_key_update_near_the_aead_limit() -> None:
    client, server = pair()
    run(client, server)
    engine = client._v13
    assert engine is not None
    engine.key_update_threshold = 5  # what the margin before 2^24.5 records does
    for i in range(8):
        client.send(bytes([i]))
    run(client, server, until_connected=False, max_time=5.0)
    assert engine.key_updates_sent == 1 and engine.write_epoch == 4
    received = [e.data for e in drain_events(server) if isinstance(e, ApplicationData)]
    assert received == [bytes([i]) for i in range(8)]


def test_replayed_tampered_and_forged_records_are_dropped_and_counted() -> None:
    client, server = pair()
    run(client, server)
    drain_events(server)
    client.send(b"x" * 100)
    (datagram,) = client.datagrams_to_send(1.0)
    server.receive_datagram(datagram, 1.0)
    server.receive_datagram(datagram, 1.0)  # replay
    tampered = bytearray(datagram)
    tampered[-1] ^= 1
    server.receive_datagram(bytes(tampered), 1.0)
    server.receive_datagram(datagram[:10], 1.0)  # truncated
    # an unauthenticated epoch-0 alert after the handshake is ignored
    server.receive_datagram(bytes.fromhex("15fefd000000000000000000020228"), 1.0)
    assert [e for e in drain_events(server) if isinstance(e, ApplicationData)] == [
        ApplicationData(b"x" * 100)
    ]
    stats = server.stats
    assert stats.dropped_replay == 1
    assert stats.dropped_authentication == 1
    assert stats.dropped_malformed + stats.dropped_authentication >= 2
    assert stats.dropped_epoch == 1
    assert server.is_connected


def test_close_notify_closes_both_sides() -> None:
    client, server = pair()
    run(client, server)
    client.close()
    for datagram in client.datagrams_to_send(1.0):
        server.receive_datagram(datagram, 1.0)
    assert server.state is State.CLOSED and server.error is None


def test_keylog_is_written_only_when_asked(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    client, server = pair()
    run(client, server)
    assert not list(tmp_path.iterdir())
    path = tmp_path / "env.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    client, server = pair()
    run(client, server)
    lines = path.read_text().splitlines()
    # both ends log the same five secrets under the same client random
    assert len(lines) == 10 and len(set(lines)) == 5


# --- loss -------------------------------------------------------------------------------


def test_partial_flight_is_acked_and_only_the_gap_resent() -> None:
    # MTU 400: the server's flight takes several datagrams; its second one is lost
    dropped: list[bytes] = []

    def drop(direction: str, index: int, datagram: bytes) -> bool:
        if direction == "s2c" and index == 1:
            dropped.append(datagram)
            return True
        return False

    client, server = pair({"mtu": 400}, {"mtu": 400})
    tap = Tap(client, server, drop)
    tap.run()
    assert_connected_13(client, server)
    flight = [d for d in tap.sent["s2c"]][:6]
    # the client ACKed what it had (content type 26 inside an epoch-2 record)
    assert client.stats.retransmissions == 0
    assert server.stats.retransmissions >= 1
    original = sum(len(d) for d in flight)
    resent = sum(len(d) for d in tap.sent["s2c"][len(flight) :])
    assert dropped and resent < original / 2, (original, resent)


@pytest.mark.parametrize("loss", [0.0, 0.1, 0.2, 0.3])
def test_fault_simulator_at_loss(loss: float) -> None:
    config = {
        "loss": loss,
        "reorder": 0.3,
        "duplicate": 0.1,
        "mtu": 1200,
        "cookies": False,
        "versions": ("1.3",),
    }
    durations = []
    for seed in range(25):
        outcome = _run(config, seed)
        assert outcome.ok, seed
        assert outcome.duration is not None
        durations.append(outcome.duration)
    assert max(durations) < 30


@pytest.mark.parametrize("seed", range(10))
def test_disorderly_small_mtu_with_cookies(seed: int) -> None:
    config = {
        "loss": 0.2,
        "reorder": 0.3,
        "duplicate": 0.1,
        "mtu": 300,
        "cookies": True,
        "versions": ("1.3",),
    }
    outcome = _run(config, seed)
    assert outcome.ok


def test_seeded_lossy_pair_keeps_data_flowing() -> None:
    client, server = pair()
    run(client, server, Link(loss=0.3, reorder=0.3, duplicate=0.1, seed=3))
    assert_connected_13(client, server)
    exchange(client, server)


# --- hostile input ------------------------------------------------------------------------


def _recorded_handshake() -> tuple[list[bytes], list[bytes]]:
    client, server = pair()
    tap = Tap(client, server)
    tap.run()
    assert client.is_connected and server.is_connected
    return tap.sent["c2s"], tap.sent["s2c"]


_RECORDED: list[tuple[list[bytes], list[bytes]]] = []


def _mutate(rng: random.Random, datagram: bytes) -> bytes:
    data = bytearray(datagram)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if data and choice < 0.5:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif data and choice < 0.7:
            del data[rng.randrange(len(data)) :]
        elif choice < 0.85:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        else:
            at = rng.randrange(len(data) + 1)
            data[at:at] = datagram[: rng.randint(1, 64)]
    return bytes(data)


@pytest.mark.parametrize("seed", range(40))
def test_mutated_datagrams_never_crash_either_side(seed: int) -> None:
    """A fresh handshake with hostile datagrams injected at one point (a mutation of
    a datagram of that step or of a recorded handshake: hellos, encrypted flights,
    ACKs, replays): each is dropped and counted, or fails the handshake with a typed
    error; nothing else escapes receive_datagram, and a dropped one leaves the
    handshake able to complete."""
    if not _RECORDED:
        _RECORDED.append(_recorded_handshake())
    c2s, s2c = _RECORDED[0]
    rng = random.Random(seed)
    inject_at = rng.randrange(5)
    client, server = pair()
    client.connect(0.0)
    server.connect(0.0)
    now = 0.0
    for step in range(6000):  # 60 s: a led-astray handshake times out
        now += 0.01
        for sender, receiver, recorded in ((client, server, c2s), (server, client, s2c)):
            genuine = sender.datagrams_to_send(now)
            if step == inject_at:
                pool = genuine + recorded
                for _ in range(8):
                    receiver.receive_datagram(_mutate(rng, rng.choice(pool)), now)
                receiver.receive_datagram(rng.choice(recorded), now)  # replayed whole
            for datagram in genuine:
                receiver.receive_datagram(datagram, now)
        for conn in (client, server):
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
        if client.is_connected and server.is_connected:
            break
        if State.FAILED in (client.state, server.state):
            break
    for conn in (client, server):
        if conn.state is State.FAILED:
            # a typed error: an alert sent or received, or the timeout of a handshake
            # that a forged (unauthenticated) hello led astray
            assert isinstance(conn.error, DtlsError), conn.error
    if State.FAILED not in (client.state, server.state):
        assert client.is_connected and server.is_connected
        exchange(client, server)


def test_integrity_limit_ends_the_connection() -> None:
    client, server = pair()
    run(client, server)
    engine = server._v13
    assert engine is not None
    receiver = engine._rx[engine.read_epoch]
    receiver.integrity_limit = 3  # 2^36 for every suite; the same code path
    client.send(b"genuine")
    (datagram,) = client.datagrams_to_send(1.0)
    forged = datagram[:-1] + bytes([datagram[-1] ^ 1])
    for _ in range(2):
        server.receive_datagram(forged, 1.0)
    assert server.is_connected and server.stats.dropped_authentication == 2
    server.receive_datagram(forged, 1.0)
    assert server.state is State.FAILED
    assert isinstance(server.error, DtlsError) and "integrity limit" in str(server.error)


def _partial_server_flight(
    arrival: float = 0.01,
) -> tuple[DtlsConnection, DtlsConnection, list[bytes]]:
    """Client and server at MTU 400 where only the server's first datagram (ServerHello,
    EncryptedExtensions, ...) reached the client, at ``arrival``: the rest of that
    flight is returned, undelivered. The client has sent its (delayed) ACK."""
    small = {"mtu": 400, "groups13": [Group.X25519]}  # the hybrid's ServerHello spans 3
    client, server = pair(small, small)
    client.connect(0.0)
    server.connect(0.0)
    for d in client.datagrams_to_send(0.0):
        server.receive_datagram(d, 0.0)
    first, *rest = server.datagrams_to_send(0.0)
    assert rest, "the server's flight must take several datagrams at MTU 400"
    client.receive_datagram(first, arrival)
    assert client._v13 is not None and client._v13.state_name == "WAIT_CERTIFICATE"
    timer = client.get_timer()
    assert timer is not None
    client.handle_timer(timer)  # the delayed ACK of the partial flight
    assert client.datagrams_to_send(timer)
    return client, server, rest


def test_client_repeats_its_ack_while_the_server_flight_is_incomplete() -> None:
    # RFC 9147 7.1/7.2: the client's timer keeps running once the server's flight has
    # begun; on expiry it repeats its ACK, and the server resends what that ACK lacks
    # at once instead of waiting for its own (doubling) timer. Here the server's
    # first datagram arrived late (reordered), its timer fired and that resend was
    # lost too: the client's repeat comes long before the server's next expiry
    client, server, _lost = _partial_server_flight(arrival=0.2)
    server_timer = server.get_timer()
    assert server_timer is not None
    server.handle_timer(server_timer)
    assert server.datagrams_to_send(server_timer)  # lost
    next_server_timer = server.get_timer()
    nudge_at = client.get_timer()
    assert nudge_at is not None and next_server_timer is not None
    assert server_timer < nudge_at < next_server_timer
    client.handle_timer(nudge_at)
    (ack,) = client.datagrams_to_send(nudge_at)
    assert len(ack) < 100  # one small epoch-2 record: the ACK, no handshake data
    before = server.stats.retransmissions
    server.receive_datagram(ack, nudge_at + 0.005)
    resent = server.datagrams_to_send(nudge_at + 0.005)
    assert resent and server.stats.retransmissions == before + 1
    for d in resent:
        client.receive_datagram(d, nudge_at + 0.01)
    # the client has the whole flight now and answers with its own
    assert client.state is State.CONNECTED
    # a repeat of that ACK (duplicated on the path) right after it resends nothing
    server.receive_datagram(ack, nudge_at + 0.006)
    assert not server.datagrams_to_send(nudge_at + 0.006)


def test_server_gone_mid_flight_times_the_client_out() -> None:
    # Before, a client holding part of the server's flight had no timer left and
    # waited for handshake_timeout; now its ACK repeats count as retransmissions
    client, _server, _lost = _partial_server_flight()
    while (timer := client.get_timer()) is not None and timer < 600:
        client.handle_timer(timer)
        client.datagrams_to_send(timer)  # the server is gone: nothing arrives
    assert client.state is State.FAILED and isinstance(client.error, HandshakeTimeout)
    assert client.stats.retransmissions == 0  # ACK repeats resend no handshake data


# --- alerts (RFC 8446 6) ------------------------------------------------------------------


def _connected_pair() -> tuple[DtlsConnection, DtlsConnection]:
    client, server = pair()
    run(client, server)
    assert_connected_13(client, server)
    drain_events(client)
    drain_events(server)
    return client, server


def _alert_from(sender: DtlsConnection, level: int, description: int) -> list[bytes]:
    engine = sender._v13
    assert engine is not None
    # protected in the sender's current epoch; any description, a made-up one too
    return [engine._record(ContentType13.ALERT, bytes([level, description]))]


def test_user_canceled_is_a_closure_alert_not_an_error() -> None:
    client, server = _connected_pair()
    for d in _alert_from(server, 1, int(A.USER_CANCELED)):
        client.receive_datagram(d, 1.0)
    # not an error: the connection stays up and carries data
    assert client.state is State.CONNECTED and client.error is None
    exchange(client, server)
    # the close_notify that should follow ends it cleanly
    server.close()
    for d in server.datagrams_to_send(1.0):
        client.receive_datagram(d, 1.0)
    assert client.state is State.CLOSED and client.error is None
    closed = [e for e in drain_events(client) if isinstance(e, ConnectionClosed)]
    assert closed == [ConnectionClosed(None, True)]


@pytest.mark.parametrize(
    "level, description",
    [(1, int(A.HANDSHAKE_FAILURE)), (1, 200), (2, 200), (1, int(A.NO_RENEGOTIATION))],
    ids=["warning-handshake_failure", "warning-unknown", "fatal-unknown", "no_renegotiation"],
)
def test_other_alerts_are_errors_whatever_their_level(level: int, description: int) -> None:
    # RFC 8446 6: the 6.2 alerts are errors even when sent as warnings, and an alert
    # type we do not know MUST be treated as an error too
    client, server = _connected_pair()
    for d in _alert_from(server, level, description):
        client.receive_datagram(d, 1.0)
    assert client.state is State.FAILED
    assert isinstance(client.error, AlertReceived) and client.error.alert == description
    closed = [e for e in drain_events(client) if isinstance(e, ConnectionClosed)]
    assert len(closed) == 1 and closed[0].by_peer and closed[0].error is client.error


def test_unknown_warning_alert_during_the_handshake_is_an_error() -> None:
    # in epoch 0 too (before, a warning-level alert there was ignored)
    client, server = pair()
    client.connect(0.0)
    server.connect(0.0)
    for d in client.datagrams_to_send(0.0):
        server.receive_datagram(d, 0.0)
    server.datagrams_to_send(0.0)
    engine = client._v13
    assert engine is not None and client.state is State.HANDSHAKING
    alert = encode_plaintext_record(21, bytes([1, 200]), 99, 0xFEFD)
    client.receive_datagram(alert, 0.01)
    assert client.state is State.FAILED and isinstance(client.error, AlertReceived)
    assert client.error.alert == 200
