"""Whole TLS 1.3 handshakes against OpenSSL 4.0 (pyOpenSSL, memory BIOs), assembled
from the DTLS 1.3 foundations: groups.py (X25519MLKEM768, x25519, secp256r1),
keys13.py (with the "tls13 " prefix), messages13.py (TLS forms) and RecordAead.

DTLS 1.3 shares all of this with TLS 1.3 except the label prefix, the record header
and the handshake framing, and no DTLS 1.3 peer is available here (issue 12). So a
TLS 1.3 handshake that OpenSSL accepts, in both roles, with OpenSSL's key log equal
to our secrets at every stage, checks the hybrid key exchange, the key schedule, the
message encodings, CertificateVerify, Finished, HelloRetryRequest's transcript
rule and KeyUpdate's "traffic upd" against a real implementation.

The driver below is test scaffolding (a straight-line happy path), not the state
machine: that comes with the DTLS 1.3 engine.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from cryptography import x509

from tests.interop.tls13_openssl import OpenSslTls13, tls_records
from webrtc_secure import Certificate
from webrtc_secure.dtls import keys13
from webrtc_secure.dtls.cookies13 import (
    RetryCookies,
    RetryState,
    client_hello1_hash,
    hello_retry_request,
    retry_transcript,
)
from webrtc_secure.dtls.crypto import sign, verify
from webrtc_secure.dtls.groups import ClientKeyShare, Group, server_key_share
from webrtc_secure.dtls.keys13 import TLS13_LABEL_PREFIX, KeySchedule
from webrtc_secure.dtls.messages import Extension
from webrtc_secure.dtls.messages13 import (
    TLS_1_2,
    TLS_1_3,
    Certificate13,
    CertificateEntry,
    CertificateVerify13,
    ClientHello13,
    EncryptedExtensions,
    ExtensionType13,
    Finished13,
    HandshakeType13,
    KeyShareEntry,
    KeyUpdate,
    ServerHello13,
    certificate_verify_content,
    encode_key_share_client,
    encode_key_share_server,
    encode_supported_versions_client,
    encode_supported_versions_server,
    encode_u16_list_extension,
    parse_cookie,
    parse_key_share_client,
    parse_key_share_hrr,
    parse_key_share_server,
    parse_supported_versions_server,
    parse_transcript_message,
    transcript_message,
)
from webrtc_secure.dtls.records13 import (
    ContentType13,
    RecordAead,
    encode_inner_plaintext,
    parse_inner_plaintext,
)
from webrtc_secure.dtls.suites import SignatureScheme
from webrtc_secure.dtls.suites13 import SUITES13, CipherSuite13, Suite13Info

pytestmark = pytest.mark.interop

OPENSSL_SUITE_NAMES = {
    CipherSuite13.TLS_AES_128_GCM_SHA256: "TLS_AES_128_GCM_SHA256",
    CipherSuite13.TLS_AES_256_GCM_SHA384: "TLS_AES_256_GCM_SHA384",
    CipherSuite13.TLS_CHACHA20_POLY1305_SHA256: "TLS_CHACHA20_POLY1305_SHA256",
}
OPENSSL_GROUP_NAMES = {
    Group.X25519MLKEM768: "X25519MLKEM768",
    Group.X25519: "x25519",
    Group.SECP256R1: "secp256r1",
}
SCHEMES = [0x0403, 0x0804, 0x0503]
RETRY_COOKIES = RetryCookies()


class TlsDirection:
    """One direction of TLS 1.3 record protection: a traffic secret's keys and the
    record sequence number (reset by every key change)."""

    def __init__(self, suite: Suite13Info, secret: bytes) -> None:
        self.suite = suite
        self.secret = secret
        keys = keys13.traffic_keys(
            suite.hash_name, secret, suite.key_length, 12, TLS13_LABEL_PREFIX, sn_key=False
        )
        self.aead = RecordAead(suite, keys.key, keys.iv)
        self.sequence = 0

    def updated(self) -> TlsDirection:
        """The direction after a KeyUpdate: application_traffic_secret_N+1."""
        return TlsDirection(
            self.suite,
            keys13.next_traffic_secret(self.suite.hash_name, self.secret, TLS13_LABEL_PREFIX),
        )

    def seal(self, content_type: int, content: bytes) -> bytes:
        inner = encode_inner_plaintext(content_type, content)
        header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
        record = header + self.aead.seal(self.sequence, inner, header)
        self.sequence += 1
        return record

    def open(self, fragment: bytes) -> tuple[int, bytes]:
        header = b"\x17\x03\x03" + len(fragment).to_bytes(2, "big")
        inner = self.aead.open(self.sequence, fragment, header)
        self.sequence += 1
        return parse_inner_plaintext(inner)


def plaintext_record(content_type: int, payload: bytes) -> bytes:
    return bytes((content_type,)) + b"\x03\x03" + len(payload).to_bytes(2, "big") + payload


def split_messages(stream: bytes) -> list[bytes]:
    """TLS-form handshake messages (with their 4-octet headers) in a byte stream."""
    messages = []
    while stream:
        length = int.from_bytes(stream[1:4], "big")
        messages.append(stream[: 4 + length])
        stream = stream[4 + length :]
    return messages


def transcript_hash(suite: Suite13Info, messages: list[bytes]) -> bytes:
    return hashlib.new(suite.hash_name, b"".join(messages)).digest()


def _check_key_log(ours: dict[str, bytes], theirs: dict[str, bytes]) -> None:
    for label, secret in ours.items():
        assert theirs.get(label) == secret, label


def _application_round(
    openssl: OpenSslTls13, our_send: TlsDirection, our_receive: TlsDirection
) -> tuple[TlsDirection, TlsDirection]:
    """Data both ways, then our KeyUpdate(update_requested): OpenSSL must read data
    under our next secret and answer with its own KeyUpdate and new keys."""
    openssl.connection.send(b"from openssl")
    records = [r for r in tls_records(openssl.take()) if r[0] == ContentType13.APPLICATION_DATA]
    opened = [our_receive.open(fragment) for _, fragment in records]
    # OpenSSL may send NewSessionTickets (handshake) before the data
    assert (ContentType13.APPLICATION_DATA, b"from openssl") in opened

    openssl.receive(our_send.seal(ContentType13.APPLICATION_DATA, b"from us"))
    assert openssl.connection.recv(100) == b"from us"

    key_update = transcript_message(HandshakeType13.KEY_UPDATE, KeyUpdate(True).serialize())
    openssl.receive(our_send.seal(ContentType13.HANDSHAKE, key_update))
    our_send = our_send.updated()
    openssl.receive(our_send.seal(ContentType13.APPLICATION_DATA, b"under new keys"))
    assert openssl.connection.recv(100) == b"under new keys"

    openssl.connection.send(b"openssl after the update")
    got_update = False
    for _, fragment in tls_records(openssl.take()):
        content_type, content = our_receive.open(fragment)
        if content_type == ContentType13.HANDSHAKE:
            msg_type, body = parse_transcript_message(content)
            if msg_type == HandshakeType13.KEY_UPDATE:
                assert KeyUpdate.parse(body) == KeyUpdate(False)
                our_receive = our_receive.updated()
                got_update = True
        elif content_type == ContentType13.APPLICATION_DATA:
            assert got_update, "OpenSSL sent data before answering our KeyUpdate"
            assert content == b"openssl after the update"
    assert got_update
    return our_send, our_receive


# --- we are the server ------------------------------------------------------------------


def _serve(
    suite_id: CipherSuite13, group: Group, certificate: Certificate
) -> tuple[OpenSslTls13, dict[str, Any]]:
    suite = SUITES13[suite_id]
    client = OpenSslTls13(False, ciphersuites=OPENSSL_SUITE_NAMES[suite_id])
    client.step()
    (ctype, hello1_msg), *_ = tls_records(client.take())
    assert ctype == ContentType13.HANDSHAKE
    transcript = [hello1_msg]
    hello = ClientHello13.parse(parse_transcript_message(hello1_msg)[1], dtls=False)
    share_raw = hello.extension(ExtensionType13.KEY_SHARE)
    assert share_raw is not None
    shares = {e.group: e.key_exchange for e in parse_key_share_client(share_raw)}
    hrr = group not in shares
    if hrr:
        # a stateless HelloRetryRequest: everything needed later travels in the
        # cookie, and the transcript is rebuilt from the cookie OpenSSL echoes
        address = ("127.0.0.1", 5000)
        state = RetryState(suite_id, group, client_hello1_hash(suite.hash_name, hello1_msg), 100.0)
        cookie = RETRY_COOKIES.make(state, address)
        retry = hello_retry_request(suite_id, group, cookie, False, hello.legacy_session_id)
        retry_msg = transcript_message(HandshakeType13.SERVER_HELLO, retry)
        client.receive(plaintext_record(ContentType13.HANDSHAKE, retry_msg))
        del state, cookie, retry, retry_msg  # nothing kept across the round trip
        hello2 = [r for r in tls_records(client.take()) if r[0] == ContentType13.HANDSHAKE]
        hello2_msg = hello2[0][1]
        hello = ClientHello13.parse(parse_transcript_message(hello2_msg)[1], dtls=False)
        echoed_raw = hello.extension(ExtensionType13.COOKIE)
        assert echoed_raw is not None
        echoed = parse_cookie(echoed_raw)
        reopened = RETRY_COOKIES.open(echoed, address, 101.0)
        assert reopened is not None and reopened.group == group
        assert RETRY_COOKIES.open(echoed, ("127.0.0.1", 5001), 101.0) is None
        transcript = retry_transcript(reopened, echoed, False, hello.legacy_session_id)
        # the rebuilt prefix is what a stateful server would have hashed
        assert transcript[0] == keys13.message_hash(suite.hash_name, hello1_msg)
        transcript.append(hello2_msg)
        share_raw = hello.extension(ExtensionType13.KEY_SHARE)
        assert share_raw is not None
        shares = {e.group: e.key_exchange for e in parse_key_share_client(share_raw)}
    server_share, shared = server_key_share(group, shares[group])

    server_hello = ServerHello13(
        os.urandom(32),
        suite_id,
        (
            Extension(
                ExtensionType13.SUPPORTED_VERSIONS, encode_supported_versions_server(TLS_1_3)
            ),
            Extension(
                ExtensionType13.KEY_SHARE,
                encode_key_share_server(KeyShareEntry(group, server_share)),
            ),
        ),
        hello.legacy_session_id,
        TLS_1_2,
    )
    server_hello_msg = transcript_message(HandshakeType13.SERVER_HELLO, server_hello.serialize())
    transcript.append(server_hello_msg)
    schedule = KeySchedule(suite.hash_name, TLS13_LABEL_PREFIX)
    hs = schedule.derive_handshake(shared, transcript_hash(suite, transcript))
    client.receive(plaintext_record(ContentType13.HANDSHAKE, server_hello_msg))
    # the client logs the server's handshake secret as soon as it read ServerHello
    # (its own one only when it starts writing with it, after our Finished)
    _check_key_log(
        {"SERVER_HANDSHAKE_TRAFFIC_SECRET": hs.server_handshake_traffic_secret}, client.key_log
    )

    send = TlsDirection(suite, hs.server_handshake_traffic_secret)
    flight = [
        transcript_message(
            HandshakeType13.ENCRYPTED_EXTENSIONS, EncryptedExtensions(()).serialize()
        ),
        transcript_message(
            HandshakeType13.CERTIFICATE,
            Certificate13((CertificateEntry(certificate.der),)).serialize(),
        ),
    ]
    content = certificate_verify_content(transcript_hash(suite, transcript + flight), server=True)
    scheme = SignatureScheme.ECDSA_SECP256R1_SHA256
    signature = sign(certificate.private_key, scheme, content)
    flight.append(
        transcript_message(
            HandshakeType13.CERTIFICATE_VERIFY, CertificateVerify13(scheme, signature).serialize()
        )
    )
    verify_data = keys13.finished_verify_data(
        suite.hash_name,
        hs.server_handshake_traffic_secret,
        transcript_hash(suite, transcript + flight),
        TLS13_LABEL_PREFIX,
    )
    flight.append(transcript_message(HandshakeType13.FINISHED, verify_data))
    transcript += flight
    client.receive(send.seal(ContentType13.HANDSHAKE, b"".join(flight)))
    assert client.done, "OpenSSL did not accept our server flight"

    app = schedule.derive_application(transcript_hash(suite, transcript))
    receive = TlsDirection(suite, hs.client_handshake_traffic_secret)
    finished = [r for r in tls_records(client.take()) if r[0] == ContentType13.APPLICATION_DATA]
    content_type, client_finished = receive.open(finished[0][1])
    assert content_type == ContentType13.HANDSHAKE
    msg_type, body = parse_transcript_message(client_finished)
    assert msg_type == HandshakeType13.FINISHED
    assert keys13.verify_finished(
        suite.hash_name,
        hs.client_handshake_traffic_secret,
        transcript_hash(suite, transcript),
        Finished13.parse(body, keys13.digest_size(suite.hash_name)).verify_data,
        TLS13_LABEL_PREFIX,
    )
    _check_key_log(
        {
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET": hs.client_handshake_traffic_secret,
            "CLIENT_TRAFFIC_SECRET_0": app.client_application_traffic_secret,
            "SERVER_TRAFFIC_SECRET_0": app.server_application_traffic_secret,
            "EXPORTER_SECRET": app.exporter_master_secret,
        },
        client.key_log,
    )
    assert client.connection.get_group_name() == OPENSSL_GROUP_NAMES[group]
    _application_round(
        client,
        TlsDirection(suite, app.server_application_traffic_secret),
        TlsDirection(suite, app.client_application_traffic_secret),
    )
    exported = keys13.export_keying_material(
        suite.hash_name,
        app.exporter_master_secret,
        b"EXTRACTOR-dtls_srtp",
        None,
        60,
        TLS13_LABEL_PREFIX,
    )
    assert client.connection.export_keying_material(b"EXTRACTOR-dtls_srtp", 60) == exported
    return client, {"hrr": hrr}


@pytest.mark.parametrize("suite_id", list(CipherSuite13), ids=lambda s: s.name)
@pytest.mark.parametrize("group", [Group.X25519MLKEM768, Group.X25519], ids=lambda g: g.name)
def test_we_serve_openssl(suite_id: CipherSuite13, group: Group) -> None:
    _, info = _serve(suite_id, group, Certificate.generate())
    assert not info["hrr"]  # OpenSSL sends shares for both


def test_we_serve_openssl_with_hello_retry_request() -> None:
    """OpenSSL offers secp256r1 without a share: our stateless HelloRetryRequest asks
    for it with a cookie, and the transcript is rebuilt from the echoed cookie."""
    _, info = _serve(CipherSuite13.TLS_AES_128_GCM_SHA256, Group.SECP256R1, Certificate.generate())
    assert info["hrr"]


# --- we are the client ------------------------------------------------------------------


def _connect(
    suite_id: CipherSuite13, groups: list[Group], shares_for: list[Group]
) -> tuple[OpenSslTls13, Group, bool]:
    suite = SUITES13[suite_id]
    server = OpenSslTls13(True, ciphersuites=OPENSSL_SUITE_NAMES[suite_id])
    key_shares = {g: ClientKeyShare(g) for g in shares_for}

    def client_hello(shares: dict[Group, ClientKeyShare]) -> bytes:
        hello = ClientHello13(
            os.urandom(32),
            (int(suite_id),),
            (
                Extension(
                    ExtensionType13.SUPPORTED_VERSIONS, encode_supported_versions_client([TLS_1_3])
                ),
                Extension(ExtensionType13.SUPPORTED_GROUPS, encode_u16_list_extension(groups)),
                Extension(ExtensionType13.SIGNATURE_ALGORITHMS, encode_u16_list_extension(SCHEMES)),
                Extension(
                    ExtensionType13.KEY_SHARE,
                    encode_key_share_client(
                        [KeyShareEntry(g, s.key_exchange) for g, s in shares.items()]
                    ),
                ),
            ),
            legacy_version=TLS_1_2,
        )
        return transcript_message(HandshakeType13.CLIENT_HELLO, hello.serialize(dtls=False))

    hello1 = client_hello(key_shares)
    server.receive(plaintext_record(ContentType13.HANDSHAKE, hello1))
    records = tls_records(server.take())
    server_hello_msg = records[0][1]
    server_hello = ServerHello13.parse(parse_transcript_message(server_hello_msg)[1])
    transcript = [hello1]
    retried = server_hello.is_hello_retry_request
    if retried:
        key_share = server_hello.extension(ExtensionType13.KEY_SHARE)
        assert key_share is not None
        wanted = Group(parse_key_share_hrr(key_share))
        assert wanted in groups and wanted not in key_shares
        key_shares = {wanted: ClientKeyShare(wanted)}
        hello2 = client_hello(key_shares)
        transcript = [keys13.message_hash(suite.hash_name, hello1), server_hello_msg, hello2]
        server.receive(plaintext_record(ContentType13.HANDSHAKE, hello2))
        records = tls_records(server.take())
        server_hello_msg = records[0][1]
        server_hello = ServerHello13.parse(parse_transcript_message(server_hello_msg)[1])
    transcript.append(server_hello_msg)
    version = server_hello.extension(ExtensionType13.SUPPORTED_VERSIONS)
    assert version is not None and parse_supported_versions_server(version) == TLS_1_3
    assert server_hello.cipher_suite == suite_id
    share_raw = server_hello.extension(ExtensionType13.KEY_SHARE)
    assert share_raw is not None
    entry = parse_key_share_server(share_raw)
    group = Group(entry.group)
    shared = key_shares[group].shared_secret(entry.key_exchange)
    schedule = KeySchedule(suite.hash_name, TLS13_LABEL_PREFIX)
    hs = schedule.derive_handshake(shared, transcript_hash(suite, transcript))
    _check_key_log(
        {
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET": hs.client_handshake_traffic_secret,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET": hs.server_handshake_traffic_secret,
        },
        server.key_log,
    )

    receive = TlsDirection(suite, hs.server_handshake_traffic_secret)
    stream = b""
    for content_type, fragment in records[1:]:
        if content_type == ContentType13.APPLICATION_DATA:
            inner_type, content = receive.open(fragment)
            assert inner_type == ContentType13.HANDSHAKE
            stream += content
    messages = split_messages(stream)
    types = [m[0] for m in messages]
    assert types == [8, 11, 15, 20]
    EncryptedExtensions.parse(parse_transcript_message(messages[0])[1])
    chain = Certificate13.parse(parse_transcript_message(messages[1])[1])
    public_key = x509.load_der_x509_certificate(chain.entries[0].cert_data).public_key()
    cert_verify = CertificateVerify13.parse(parse_transcript_message(messages[2])[1])
    content = certificate_verify_content(transcript_hash(suite, transcript + messages[:2]), True)
    verify(public_key, cert_verify.algorithm, cert_verify.signature, content)  # type: ignore[arg-type]
    server_finished = Finished13.parse(
        parse_transcript_message(messages[3])[1], keys13.digest_size(suite.hash_name)
    )
    assert keys13.verify_finished(
        suite.hash_name,
        hs.server_handshake_traffic_secret,
        transcript_hash(suite, transcript + messages[:3]),
        server_finished.verify_data,
        TLS13_LABEL_PREFIX,
    )
    transcript += messages
    app = schedule.derive_application(transcript_hash(suite, transcript))
    our_finished = keys13.finished_verify_data(
        suite.hash_name,
        hs.client_handshake_traffic_secret,
        transcript_hash(suite, transcript),
        TLS13_LABEL_PREFIX,
    )
    send = TlsDirection(suite, hs.client_handshake_traffic_secret)
    server.receive(
        send.seal(
            ContentType13.HANDSHAKE, transcript_message(HandshakeType13.FINISHED, our_finished)
        )
    )
    assert server.done, "OpenSSL did not accept our Finished"
    _check_key_log(
        {
            "CLIENT_TRAFFIC_SECRET_0": app.client_application_traffic_secret,
            "SERVER_TRAFFIC_SECRET_0": app.server_application_traffic_secret,
            "EXPORTER_SECRET": app.exporter_master_secret,
        },
        server.key_log,
    )
    assert server.connection.get_group_name() == OPENSSL_GROUP_NAMES[group]
    _application_round(
        server,
        TlsDirection(suite, app.client_application_traffic_secret),
        TlsDirection(suite, app.server_application_traffic_secret),
    )
    return server, group, retried


@pytest.mark.parametrize("suite_id", list(CipherSuite13), ids=lambda s: s.name)
def test_we_connect_to_openssl_with_the_hybrid(suite_id: CipherSuite13) -> None:
    """The issue's client offer: the hybrid and an x25519 share; OpenSSL picks the hybrid."""
    groups = [Group.X25519MLKEM768, Group.X25519]
    _, group, retried = _connect(suite_id, groups, groups)
    assert group == Group.X25519MLKEM768 and not retried


@pytest.mark.parametrize("group", [Group.X25519, Group.SECP256R1], ids=lambda g: g.name)
def test_we_connect_to_openssl_classic(group: Group) -> None:
    _, chosen, retried = _connect(CipherSuite13.TLS_AES_128_GCM_SHA256, [group], [group])
    assert chosen == group and not retried


def test_we_connect_to_openssl_after_hello_retry_request() -> None:
    """We support the hybrid but send only an x25519 share: OpenSSL (which prefers the
    hybrid) asks for it with a HelloRetryRequest, and the retried handshake completes."""
    _, chosen, retried = _connect(
        CipherSuite13.TLS_AES_128_GCM_SHA256,
        [Group.X25519MLKEM768, Group.X25519],
        [Group.X25519],
    )
    assert retried and chosen == Group.X25519MLKEM768
