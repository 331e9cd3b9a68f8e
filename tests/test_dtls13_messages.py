"""TLS 1.3 message codecs as DTLS 1.3 uses them (dtls/messages13.py), against RFC
8448's message bytes, Chromium's recorded DTLS ClientHello, and hostile input."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.dtls.messages import Extension, split_handshake_fragments
from webrtc_secure.dtls.messages13 import (
    DOWNGRADE_TLS12,
    HELLO_RETRY_REQUEST_RANDOM,
    Certificate13,
    CertificateEntry,
    CertificateRequest13,
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
    check_downgrade,
    encode_cookie,
    encode_key_share_client,
    encode_key_share_hrr,
    encode_key_share_server,
    encode_supported_versions_client,
    encode_supported_versions_server,
    encode_u16_list_extension,
    parse_cookie,
    parse_key_share_client,
    parse_key_share_hrr,
    parse_key_share_server,
    parse_supported_versions_client,
    parse_supported_versions_server,
    parse_transcript_message,
    parse_u16_list,
    select_version,
    transcript_message,
    with_downgrade_sentinel,
)
from webrtc_secure.dtls.records13 import PlaintextRecord, split_datagram
from webrtc_secure.errors import HandshakeFailure, MalformedPacket

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def trace() -> Any:
    return json.loads((HERE / "vectors" / "rfc8448_simple_1rtt.json").read_text())


def _body(trace: Any, name: str) -> tuple[int, bytes]:
    return parse_transcript_message(bytes.fromhex(trace["messages"][name]))


def test_rfc8448_client_hello(trace: Any) -> None:
    msg_type, body = _body(trace, "client_hello")
    assert msg_type == HandshakeType13.CLIENT_HELLO
    hello = ClientHello13.parse(body, dtls=False)
    assert hello.serialize(dtls=False) == body
    assert hello.legacy_version == 0x0303 and hello.legacy_session_id == b""
    assert hello.cipher_suites == (0x1301, 0x1303, 0x1302)
    versions = hello.extension(ExtensionType13.SUPPORTED_VERSIONS)
    assert versions is not None and parse_supported_versions_client(versions) == [0x0304]
    shares_raw = hello.extension(ExtensionType13.KEY_SHARE)
    assert shares_raw is not None
    shares = parse_key_share_client(shares_raw)
    assert shares == [KeyShareEntry(0x001D, bytes.fromhex(trace["client_x25519_public"]))]
    assert encode_key_share_client(shares) == shares_raw
    groups = hello.extension(ExtensionType13.SUPPORTED_GROUPS)
    assert groups is not None
    assert parse_u16_list(groups) == [0x1D, 0x17, 0x18, 0x19, 0x100, 0x101, 0x102, 0x103, 0x104]
    assert encode_u16_list_extension(parse_u16_list(groups)) == groups
    # the DTLS form has the legacy_cookie after the session id
    dtls = hello.serialize(dtls=True)
    assert len(dtls) == len(body) + 1 and dtls[35] == 0
    assert ClientHello13.parse(dtls, dtls=True) == hello


def test_rfc8448_server_hello(trace: Any) -> None:
    msg_type, body = _body(trace, "server_hello")
    assert msg_type == HandshakeType13.SERVER_HELLO
    hello = ServerHello13.parse(body)
    assert hello.serialize() == body
    assert hello.cipher_suite == 0x1301
    assert not hello.is_hello_retry_request and hello.downgrade_sentinel is None
    version = hello.extension(ExtensionType13.SUPPORTED_VERSIONS)
    assert version is not None and parse_supported_versions_server(version) == 0x0304
    assert encode_supported_versions_server(0x0304) == version
    share_raw = hello.extension(ExtensionType13.KEY_SHARE)
    assert share_raw is not None
    share = parse_key_share_server(share_raw)
    assert share == KeyShareEntry(0x001D, bytes.fromhex(trace["server_x25519_public"]))
    assert encode_key_share_server(share) == share_raw


def test_rfc8448_server_flight(trace: Any) -> None:
    msg_type, body = _body(trace, "encrypted_extensions")
    assert msg_type == HandshakeType13.ENCRYPTED_EXTENSIONS
    ee = EncryptedExtensions.parse(body)
    assert ee.serialize() == body
    assert [e.type for e in ee.extensions] == [10, 28, 0]

    msg_type, body = _body(trace, "certificate")
    assert msg_type == HandshakeType13.CERTIFICATE
    certificate = Certificate13.parse(body)
    assert certificate.serialize() == body
    assert certificate.certificate_request_context == b""
    assert len(certificate.entries) == 1 and certificate.entries[0].extensions == ()
    cert = x509.load_der_x509_certificate(certificate.entries[0].cert_data)

    msg_type, body = _body(trace, "certificate_verify")
    assert msg_type == HandshakeType13.CERTIFICATE_VERIFY
    verify = CertificateVerify13.parse(body)
    assert verify.serialize() == body
    assert verify.algorithm == 0x0804  # rsa_pss_rsae_sha256

    # the signature verifies over 64 spaces || context || 0 || Hash(CH..Certificate)
    transcript = b"".join(
        bytes.fromhex(trace["messages"][n])
        for n in ("client_hello", "server_hello", "encrypted_extensions", "certificate")
    )
    content = certificate_verify_content(hashlib.sha256(transcript).digest(), server=True)
    assert content[:64] == b" " * 64 and content[64:98] == b"TLS 1.3, server CertificateVerify\x00"
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    public_key.verify(verify.signature, content, pss, hashes.SHA256())
    client_content = certificate_verify_content(hashlib.sha256(transcript).digest(), False)
    with pytest.raises(InvalidSignature):
        public_key.verify(verify.signature, client_content, pss, hashes.SHA256())

    msg_type, body = _body(trace, "server_finished")
    assert msg_type == HandshakeType13.FINISHED
    finished = Finished13.parse(body, 32)
    assert finished.verify_data.hex() == trace["finished"]["server_verify_data"]
    assert finished.serialize() == body


def test_transcript_message_framing() -> None:
    assert transcript_message(20, b"abc") == b"\x14\x00\x00\x03abc"
    assert parse_transcript_message(b"\x14\x00\x00\x03abc") == (20, b"abc")
    for bad in (b"", b"\x14\x00\x00", b"\x14\x00\x00\x04abc", b"\x14\x00\x00\x02abc"):
        with pytest.raises(MalformedPacket):
            parse_transcript_message(bad)


def test_chromium_dtls_client_hello_round_trip() -> None:
    """Chromium 156's recorded DTLS ClientHello parses and re-serializes byte for byte."""
    recorded = json.loads((HERE / "browser" / "chromium_client_hello.json").read_text())
    message = bytearray()
    for datagram in recorded["datagrams"]:
        records, clean = split_datagram(bytes.fromhex(datagram))
        assert clean
        for record in records:
            assert isinstance(record, PlaintextRecord)
            for _type, total, _seq, offset, body in split_handshake_fragments(record.fragment):
                if not message:
                    message = bytearray(total)
                message[offset : offset + len(body)] = body
    hello = ClientHello13.parse(bytes(message), dtls=True)
    assert hello.serialize(dtls=True) == bytes(message)
    assert hello.legacy_version == 0xFEFD and hello.legacy_cookie == b""
    assert hello.cipher_suites[:3] == (0x1301, 0x1302, 0x1303)


def test_hello_retry_request() -> None:
    assert HELLO_RETRY_REQUEST_RANDOM.hex() == (
        "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
    )
    hrr = ServerHello13(
        HELLO_RETRY_REQUEST_RANDOM,
        0x1301,
        (
            Extension(ExtensionType13.SUPPORTED_VERSIONS, encode_supported_versions_server(0xFEFC)),
            Extension(ExtensionType13.KEY_SHARE, encode_key_share_hrr(0x001D)),
            Extension(ExtensionType13.COOKIE, encode_cookie(b"state")),
        ),
    )
    parsed = ServerHello13.parse(hrr.serialize())
    assert parsed == hrr and parsed.is_hello_retry_request
    key_share = parsed.extension(ExtensionType13.KEY_SHARE)
    cookie = parsed.extension(ExtensionType13.COOKIE)
    assert key_share is not None and parse_key_share_hrr(key_share) == 0x001D
    assert cookie is not None and parse_cookie(cookie) == b"state"


def test_downgrade_sentinel() -> None:
    hello = ServerHello13(bytes(24) + DOWNGRADE_TLS12, 0xC02B, ())
    assert hello.downgrade_sentinel == b"DOWNGRD\x01"
    assert ServerHello13.parse(hello.serialize()).downgrade_sentinel == DOWNGRADE_TLS12


def test_certificate_request_and_entries() -> None:
    schemes = Extension(ExtensionType13.SIGNATURE_ALGORITHMS, encode_u16_list_extension([0x0403]))
    request = CertificateRequest13((schemes,), b"ctx")
    assert CertificateRequest13.parse(request.serialize()) == request
    with pytest.raises(MalformedPacket):
        CertificateRequest13.parse(CertificateRequest13(()).serialize())
    status = Extension(5, b"\x01\x02")
    chain = Certificate13(
        (CertificateEntry(b"leaf", (status,)), CertificateEntry(b"issuer")), b"ctx"
    )
    assert Certificate13.parse(chain.serialize()) == chain
    assert Certificate13.parse(Certificate13(()).serialize()).entries == ()
    with pytest.raises(MalformedPacket):  # an empty cert_data
        Certificate13.parse(b"\x00\x00\x00\x05\x00\x00\x00\x00\x00")


def test_key_update_and_finished() -> None:
    assert KeyUpdate.parse(b"\x01") == KeyUpdate(True)
    assert KeyUpdate.parse(b"\x00").serialize() == b"\x00"
    for bad in (b"", b"\x02", b"\x00\x00"):
        with pytest.raises(MalformedPacket):
            KeyUpdate.parse(bad)
    with pytest.raises(MalformedPacket):
        Finished13.parse(bytes(32), 48)


def test_extension_codecs_refuse_malformed() -> None:
    assert encode_supported_versions_client([0xFEFC, 0xFEFD]) == b"\x04\xfe\xfc\xfe\xfd"
    cases: list[tuple[Callable[[bytes], object], bytes]] = [
        (parse_supported_versions_client, b"\x00"),
        (parse_supported_versions_client, b"\x03\xfe\xfc\xfe"),
        (parse_supported_versions_client, b"\x02\xfe\xfc\x00"),
        (parse_supported_versions_server, b"\xfe"),
        (parse_key_share_server, b"\x00\x1d\x00\x00"),  # empty key_exchange
        (parse_key_share_server, b"\x00\x1d\x00\x02\x01"),
        (parse_key_share_client, b"\x00\x06\x00\x1d\x00\x01\x01"),
        (parse_key_share_client, b"\x00\x04\x00\x1d\x00\x01"),
        (parse_key_share_client, b"\x00\x05\x00\x1d\x00\x01\x01\x00"),
        (parse_key_share_hrr, b"\x00"),
        (parse_cookie, b"\x00\x00"),
        (parse_cookie, b"\x00\x02\x01"),
        (parse_u16_list, b"\x00\x00"),
        (parse_u16_list, b"\x00\x03\x00\x01\x02"),
    ]
    for parser, data in cases:
        with pytest.raises(MalformedPacket):
            parser(data)
    twice = encode_key_share_client([KeyShareEntry(0x1D, b"a"), KeyShareEntry(0x1D, b"b")])
    with pytest.raises(MalformedPacket):
        parse_key_share_client(twice)
    with pytest.raises(ValueError):
        encode_cookie(b"")


def test_server_hello_refuses_compression_and_trailing_octets(trace: Any) -> None:
    _, body = _body(trace, "server_hello")
    at = 2 + 32 + 1 + 2
    with pytest.raises(MalformedPacket):
        ServerHello13.parse(body[:at] + b"\x01" + body[at + 1 :])
    with pytest.raises(MalformedPacket):
        ServerHello13.parse(body + b"\x00")


PARSERS: list[Callable[[bytes], object]] = [
    lambda b: ClientHello13.parse(b, dtls=True),
    lambda b: ClientHello13.parse(b, dtls=False),
    ServerHello13.parse,
    EncryptedExtensions.parse,
    CertificateRequest13.parse,
    Certificate13.parse,
    CertificateVerify13.parse,
    KeyUpdate.parse,
    parse_key_share_client,
    parse_key_share_server,
    parse_supported_versions_client,
    parse_u16_list,
    parse_cookie,
]


def test_every_truncation_of_the_rfc8448_messages(trace: Any) -> None:
    cases = [
        ("client_hello", lambda b: ClientHello13.parse(b, dtls=False)),
        ("server_hello", ServerHello13.parse),
        ("encrypted_extensions", EncryptedExtensions.parse),
        ("certificate", Certificate13.parse),
        ("certificate_verify", CertificateVerify13.parse),
    ]
    for name, parser in cases:
        _, body = _body(trace, name)
        for cut in range(len(body)):
            with pytest.raises(MalformedPacket):
                parser(body[:cut])


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(range(len(PARSERS))))
def test_garbage_only_raises_malformed(data: bytes, which: int) -> None:
    with contextlib.suppress(MalformedPacket):
        PARSERS[which](data)


def test_version_negotiation_and_downgrade_protection() -> None:
    # server side: our preference order decides among what the client offered
    assert select_version([0xFEFC, 0xFEFD], [0xFEFC, 0xFEFD]) == 0xFEFC
    assert select_version([0xFEFD], [0xFEFC, 0xFEFD]) == 0xFEFD
    assert select_version([0xFEFC, 0xFEFD], [0xFEFD]) == 0xFEFD
    assert select_version([0xFEFF], [0xFEFC, 0xFEFD]) is None
    # a 1.3-capable server answering 1.2 marks its random
    random = bytes(range(32))
    marked = with_downgrade_sentinel(random, 0xFEFD)
    assert marked[:24] == random[:24] and marked[24:] == b"DOWNGRD\x01"
    assert with_downgrade_sentinel(random, 0xFEFF)[24:] == b"DOWNGRD\x00"
    with pytest.raises(ValueError):
        with_downgrade_sentinel(bytes(31), 0xFEFD)
    # a client that offered 1.3 refuses 1.2 with the sentinel: illegal_parameter
    with pytest.raises(HandshakeFailure) as info:
        check_downgrade(marked, 0xFEFD, we_offered_1_3=True)
    assert info.value.alert == 47
    check_downgrade(marked, 0xFEFD, we_offered_1_3=False)  # we only spoke 1.2
    check_downgrade(random, 0xFEFD, we_offered_1_3=True)  # a genuine 1.2-only server
    check_downgrade(marked, 0xFEFC, we_offered_1_3=True)  # 1.3 was negotiated
