"""Every handshake failure path sends the right fatal alert and ends with a typed error."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.dtls_pair import DtlsConnection12, cert, drain_events, pins, run
from webrtc_secure.dtls import AlertDescription, DtlsConnection, NamedGroup, State
from webrtc_secure.dtls import handshake as handshake_module
from webrtc_secure.dtls.codec import u16_list
from webrtc_secure.dtls.messages import (
    ClientHello,
    ClientKeyExchange,
    Extension,
    ExtensionType,
    HandshakeFragment,
    HandshakeType,
    ServerHello,
    encode_use_srtp,
    parse_handshake_fragments,
)
from webrtc_secure.dtls.records import ContentType, Record, parse_records
from webrtc_secure.errors import AlertReceived, HandshakeFailure

A = AlertDescription
Rewrite = Callable[[int, bytes], bytes]


def _alerts(datagrams: list[bytes]) -> list[int]:
    out = []
    for d in datagrams:
        records, _ = parse_records(d)
        out += [
            r.fragment[1] for r in records if r.content_type == ContentType.ALERT and r.epoch == 0
        ]
    return out


class Tamper:
    """Wraps a connection so its epoch-0 handshake messages can be rewritten on the way out."""

    def __init__(self, conn: DtlsConnection, rewrite: Rewrite) -> None:
        self.conn = conn
        self.rewrite = rewrite
        original = conn.datagrams_to_send

        def patched(now: float) -> list[bytes]:
            return [self._rewrite(d) for d in original(now)]

        conn.datagrams_to_send = patched  # type: ignore[method-assign]

    def _rewrite(self, datagram: bytes) -> bytes:
        records, _ = parse_records(datagram)
        out = b""
        for r in records:
            if r.content_type == ContentType.HANDSHAKE and r.epoch == 0:
                frags = []
                for f in parse_handshake_fragments(r.fragment):
                    body = self.rewrite(f.msg_type, f.body)
                    frags.append(
                        HandshakeFragment(f.msg_type, len(body), f.message_seq, 0, body).serialize()
                        if body is not f.body
                        else f.serialize()
                    )
                r = Record(r.content_type, r.version, r.epoch, r.sequence_number, b"".join(frags))
            out += r.serialize()
        return out


def _handshake(
    rewrite_client: Rewrite | None = None, rewrite_server: Rewrite | None = None, **kwargs: object
) -> tuple[DtlsConnection, DtlsConnection, list[int], list[int]]:
    client = DtlsConnection12(
        True,
        cert("client"),
        remote_fingerprints=pins("server"),
        **kwargs,  # type: ignore[arg-type]
    )
    server = DtlsConnection12(
        False,
        cert("server"),
        remote_fingerprints=pins("client"),
        cookies=False,
        **kwargs,  # type: ignore[arg-type]
    )
    sent: dict[str, list[bytes]] = {"c": [], "s": []}
    for name, conn, rw in (("c", client, rewrite_client), ("s", server, rewrite_server)):
        if rw is not None:
            Tamper(conn, rw)
        inner = conn.datagrams_to_send

        def spy(
            now: float, inner: Callable[[float], list[bytes]] = inner, name: str = name
        ) -> list[bytes]:
            out = inner(now)
            sent[name] += out
            return out

        conn.datagrams_to_send = spy  # type: ignore[method-assign]
    run(client, server, max_time=5.0)
    return client, server, _alerts(sent["c"]), _alerts(sent["s"])


def _only(msg_type: int, fn: Callable[[bytes], bytes]) -> Rewrite:
    return lambda t, body: fn(body) if t == msg_type else body


def _server_hello(change: Callable[[ServerHello], ServerHello]) -> Rewrite:
    return _only(HandshakeType.SERVER_HELLO, lambda b: change(ServerHello.parse(b)).serialize())


def _client_hello(change: Callable[[ClientHello], ClientHello]) -> Rewrite:
    return _only(HandshakeType.CLIENT_HELLO, lambda b: change(ClientHello.parse(b)).serialize())


def _replace(hello: ServerHello | ClientHello, **changes: object) -> ServerHello | ClientHello:
    import dataclasses

    return dataclasses.replace(hello, **changes)  # type: ignore[type-var]


def _set_ext(exts: list[Extension], ext_type: int, data: bytes | None) -> list[Extension]:
    out = [e for e in exts if e.type != ext_type]
    return [*out, Extension(ext_type, data)] if data is not None else out


def _assert_client_failed(
    client: DtlsConnection, server: DtlsConnection, client_alerts: list[int], alert: int
) -> None:
    assert client.state == State.FAILED
    assert isinstance(client.error, HandshakeFailure)
    assert client.error.alert == alert
    assert alert in client_alerts
    assert isinstance(server.error, AlertReceived) and server.error.alert == alert


def _assert_server_failed(
    client: DtlsConnection, server: DtlsConnection, server_alerts: list[int], alert: int
) -> None:
    assert server.state == State.FAILED
    assert isinstance(server.error, HandshakeFailure)
    assert server.error.alert == alert
    assert alert in server_alerts
    assert isinstance(client.error, AlertReceived) and client.error.alert == alert


# --- the client judges the server ---------------------------------------------------


@pytest.mark.parametrize(
    ("change", "alert"),
    [
        (lambda h: _replace(h, cipher_suite=0xC009), A.ILLEGAL_PARAMETER),  # CBC, never offered
        (lambda h: _replace(h, server_version=0xFEFF), A.PROTOCOL_VERSION),
        (lambda h: _replace(h, server_version=0xFEFC), A.PROTOCOL_VERSION),
        (lambda h: _replace(h, compression_method=1), A.ILLEGAL_PARAMETER),
        (
            lambda h: _replace(
                h,
                extensions=_set_ext(
                    h.extensions, ExtensionType.USE_SRTP, encode_use_srtp([0x0003])
                ),
            ),
            A.ILLEGAL_PARAMETER,
        ),
        (
            lambda h: _replace(
                h,
                extensions=_set_ext(
                    h.extensions, ExtensionType.USE_SRTP, encode_use_srtp([0x0001], b"mki")
                ),
            ),
            A.ILLEGAL_PARAMETER,
        ),
        (
            lambda h: _replace(h, extensions=_set_ext(h.extensions, 0x0010, b"\x00\x03\x02h2")),
            A.UNSUPPORTED_EXTENSION,
        ),
        (
            lambda h: _replace(
                h, extensions=_set_ext(h.extensions, ExtensionType.EXTENDED_MASTER_SECRET, None)
            ),
            A.HANDSHAKE_FAILURE,
        ),
        (
            lambda h: _replace(
                h, extensions=_set_ext(h.extensions, ExtensionType.RENEGOTIATION_INFO, b"\x01\x00")
            ),
            A.HANDSHAKE_FAILURE,
        ),
        (
            lambda h: _replace(
                h, extensions=_set_ext(h.extensions, ExtensionType.USE_SRTP, b"\x00\x03\x00")
            ),
            A.DECODE_ERROR,
        ),
    ],
    ids=[
        "suite-not-offered",
        "dtls10",
        "dtls13",
        "compression",
        "srtp-not-offered",
        "srtp-mki",
        "unsolicited-ext",
        "no-ems",
        "renegotiation-info",
        "malformed-srtp",
    ],
)
def test_client_refuses_bad_server_hello(
    change: Callable[[ServerHello], ServerHello], alert: int
) -> None:
    client, server, client_alerts, _ = _handshake(rewrite_server=_server_hello(change))
    _assert_client_failed(client, server, client_alerts, alert)


def test_client_refuses_group_it_did_not_offer() -> None:
    def p256_group(body: bytes) -> bytes:
        # named_group sits right after curve_type; the signature then fails too, but the
        # group check comes first
        return body[:1] + NamedGroup.SECP384R1.to_bytes(2, "big") + body[3:]

    client, server, client_alerts, _ = _handshake(
        rewrite_server=_only(HandshakeType.SERVER_KEY_EXCHANGE, p256_group),
        groups=[NamedGroup.X25519],
    )
    _assert_client_failed(client, server, client_alerts, A.ILLEGAL_PARAMETER)


def test_server_key_exchange_signed_by_another_key_is_decrypt_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    intruder = ec.generate_private_key(ec.SECP256R1())
    server_key = cert("server").private_key
    real_sign = handshake_module.sign

    def sign(key: object, scheme: object, data: bytes) -> bytes:
        return real_sign(intruder if key is server_key else key, scheme, data)  # type: ignore[arg-type]

    monkeypatch.setattr(handshake_module, "sign", sign)
    client, server, client_alerts, _ = _handshake()
    _assert_client_failed(client, server, client_alerts, A.DECRYPT_ERROR)


# --- the server judges the client ---------------------------------------------------


@pytest.mark.parametrize(
    ("change", "alert"),
    [
        (lambda h: _replace(h, client_version=0xFEFF), A.PROTOCOL_VERSION),
        (lambda h: _replace(h, client_version=0x0303), A.PROTOCOL_VERSION),
        (lambda h: _replace(h, cipher_suites=[0x002F]), A.HANDSHAKE_FAILURE),
        (lambda h: _replace(h, compression_methods=b"\x01"), A.ILLEGAL_PARAMETER),
        (
            lambda h: _replace(
                h, extensions=_set_ext(h.extensions, ExtensionType.EXTENDED_MASTER_SECRET, None)
            ),
            A.HANDSHAKE_FAILURE,
        ),
        (
            lambda h: _replace(
                h,
                extensions=_set_ext(
                    h.extensions, ExtensionType.SUPPORTED_GROUPS, u16_list([0x0019])
                ),
            ),
            A.HANDSHAKE_FAILURE,
        ),
        (
            lambda h: _replace(
                h,
                extensions=_set_ext(
                    h.extensions, ExtensionType.SUPPORTED_GROUPS, b"\x00\x03\x00\x17\x00"
                ),
            ),
            A.DECODE_ERROR,
        ),
        (
            lambda h: _replace(
                h, extensions=_set_ext(h.extensions, ExtensionType.RENEGOTIATION_INFO, b"\x01\x00")
            ),
            A.HANDSHAKE_FAILURE,
        ),
        (
            lambda h: _replace(
                h, extensions=_set_ext(h.extensions, ExtensionType.EC_POINT_FORMATS, b"\x01\x01")
            ),
            A.ILLEGAL_PARAMETER,
        ),
        (
            lambda h: _replace(
                h,
                extensions=_set_ext(
                    h.extensions, ExtensionType.SIGNATURE_ALGORITHMS, u16_list([0x0201])
                ),
            ),
            A.HANDSHAKE_FAILURE,
        ),
    ],
    ids=[
        "dtls10",
        "tls12",
        "no-common-suite",
        "no-null-compression",
        "no-ems",
        "no-common-group",
        "malformed-groups",
        "renegotiation-info",
        "compressed-points",
        "no-common-signature",
    ],
)
def test_server_refuses_bad_client_hello(
    change: Callable[[ClientHello], ClientHello], alert: int
) -> None:
    client, server, _, server_alerts = _handshake(rewrite_client=_client_hello(change))
    _assert_server_failed(client, server, server_alerts, alert)


def test_duplicated_extension_is_decode_error() -> None:
    def dup(body: bytes) -> bytes:
        hello = ClientHello.parse(body)
        # serialize_extensions would not write a duplicate: build the block by hand
        exts = [*hello.extensions, Extension(ExtensionType.EXTENDED_MASTER_SECRET, b"")]
        block = b"".join(
            e.type.to_bytes(2, "big") + len(e.data).to_bytes(2, "big") + e.data for e in exts
        )
        prefix = _replace(hello, extensions=[]).serialize()
        return prefix + len(block).to_bytes(2, "big") + block

    client, server, _, server_alerts = _handshake(
        rewrite_client=_only(HandshakeType.CLIENT_HELLO, dup)
    )
    _assert_server_failed(client, server, server_alerts, A.DECODE_ERROR)


@pytest.mark.parametrize(
    ("group", "point"),
    [
        (NamedGroup.X25519, bytes(32)),  # low order: all-zero shared secret
        (NamedGroup.X25519, (1).to_bytes(32, "little")),  # order-1 point
        (NamedGroup.SECP256R1, b"\x04" + bytes(64)),  # not on the curve
        (NamedGroup.SECP256R1, b"\x04" + (1).to_bytes(32, "big") * 2),  # not on the curve
        (NamedGroup.SECP256R1, b"\x02" + bytes(32)),  # compressed form, wrong length
        (NamedGroup.SECP384R1, b"\x04" + bytes(96)),
    ],
)
def test_invalid_client_ecdhe_points_are_illegal_parameter(group: NamedGroup, point: bytes) -> None:
    client, server, _, server_alerts = _handshake(
        rewrite_client=_only(
            HandshakeType.CLIENT_KEY_EXCHANGE, lambda b: ClientKeyExchange(point).serialize()
        ),
        groups=[group],
    )
    _assert_server_failed(client, server, server_alerts, A.ILLEGAL_PARAMETER)


def test_wrong_finished_is_decrypt_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = handshake_module.Handshake.finished_for

    def wrong(self: handshake_module.Handshake, client_side: bool) -> bytes:
        value = real(self, client_side)
        return bytes([value[0] ^ 1]) + value[1:] if self.is_client and client_side else value

    monkeypatch.setattr(handshake_module.Handshake, "finished_for", wrong)
    client, server, _, _ = _handshake()
    assert isinstance(server.error, HandshakeFailure)
    assert server.error.alert == A.DECRYPT_ERROR
    assert isinstance(client.error, AlertReceived)


def test_certificate_verify_signed_by_another_key_is_decrypt_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    intruder = ec.generate_private_key(ec.SECP256R1())
    client_key = cert("client").private_key
    real_sign = handshake_module.sign

    def sign(key: object, scheme: object, data: bytes) -> bytes:
        return real_sign(intruder if key is client_key else key, scheme, data)  # type: ignore[arg-type]

    monkeypatch.setattr(handshake_module, "sign", sign)
    client, server, _, server_alerts = _handshake()
    _assert_server_failed(client, server, server_alerts, A.DECRYPT_ERROR)


def test_client_without_certificate_is_refused() -> None:
    def empty_chain(body: bytes) -> bytes:
        return b"\x00\x00\x00"

    client, server, _, server_alerts = _handshake(
        rewrite_client=_only(HandshakeType.CERTIFICATE, empty_chain)
    )
    _assert_server_failed(client, server, server_alerts, A.HANDSHAKE_FAILURE)


def test_garbage_certificate_is_bad_certificate() -> None:
    def garbage(body: bytes) -> bytes:
        cert_bytes = os.urandom(40)
        inner = len(cert_bytes).to_bytes(3, "big") + cert_bytes
        return len(inner).to_bytes(3, "big") + inner

    client, server, client_alerts, _ = _handshake(
        rewrite_server=_only(HandshakeType.CERTIFICATE, garbage)
    )
    _assert_client_failed(client, server, client_alerts, A.BAD_CERTIFICATE)


@pytest.mark.parametrize(
    "msg_type",
    [
        HandshakeType.SERVER_HELLO,
        HandshakeType.SERVER_HELLO_DONE,
        HandshakeType.FINISHED,
        HandshakeType.CERTIFICATE_VERIFY,
        HandshakeType.HELLO_VERIFY_REQUEST,
        HandshakeType.CLIENT_KEY_EXCHANGE,
    ],
)
def test_server_refuses_message_out_of_order(msg_type: int) -> None:
    server = DtlsConnection12(
        False, cert("server"), remote_fingerprints=pins("client"), cookies=False
    )
    fragment = HandshakeFragment(msg_type, 12, 0, 0, bytes(12))
    record = Record(ContentType.HANDSHAKE, 0xFEFD, 0, 0, fragment.serialize())
    server.receive_datagram(record.serialize(), 0.0)
    assert isinstance(server.error, HandshakeFailure)
    assert server.error.alert == A.UNEXPECTED_MESSAGE
    assert _alerts(server.datagrams_to_send(0.0)) == [A.UNEXPECTED_MESSAGE]


@pytest.mark.parametrize(
    "msg_type",
    [
        HandshakeType.CLIENT_HELLO,
        HandshakeType.CERTIFICATE,
        HandshakeType.FINISHED,
        HandshakeType.SERVER_HELLO_DONE,
    ],
)
def test_client_refuses_message_out_of_order(msg_type: int) -> None:
    client = DtlsConnection12(True, cert("client"), remote_fingerprints=pins("server"))
    client.connect(0.0)
    client.datagrams_to_send(0.0)
    fragment = HandshakeFragment(msg_type, 12, 0, 0, bytes(12))
    record = Record(ContentType.HANDSHAKE, 0xFEFD, 0, 0, fragment.serialize())
    client.receive_datagram(record.serialize(), 0.0)
    assert isinstance(client.error, HandshakeFailure)
    assert client.error.alert == A.UNEXPECTED_MESSAGE


def test_renegotiation_after_handshake_is_refused_with_warning() -> None:
    client = DtlsConnection12(True, cert("client"), remote_fingerprints=pins("server"))
    server = DtlsConnection12(False, cert("server"), remote_fingerprints=pins("client"))
    run(client, server)
    assert client.is_connected and server.is_connected
    drain_events(server)
    # a new ClientHello protected in epoch 1 from the client: refused, connection lives on
    hello = ClientHello(0xFEFD, os.urandom(32), b"", b"", [0xC02B], b"\x00")
    fragment = HandshakeFragment(1, len(hello.serialize()), 7, 0, hello.serialize())
    client._outbox.append(client._seal(ContentType.HANDSHAKE, 1, fragment.serialize()))
    run(client, server, until_connected=False)
    assert server.is_connected and client.is_connected
    client.send(b"still here")
    run(client, server, until_connected=False)
    assert any(getattr(e, "data", None) == b"still here" for e in drain_events(server))
