"""Self-tests of tests/browser_hello.py: the hello parses back to what we meant, and
OpenSSL accepts it and answers with a DTLS 1.2 ServerHello."""

from __future__ import annotations

import struct

import pytest

from tests.browser_hello import (
    DTLS_1_0,
    DTLS_1_2,
    DTLS_1_3,
    HANDSHAKE_CLIENT_HELLO,
    HANDSHAKE_HELLO_VERIFY_REQUEST,
    HANDSHAKE_SERVER_HELLO,
    X25519MLKEM768,
    X25519MLKEM768_SHARE_LENGTH,
    ExtensionType,
    HelloParams,
    browser_extensions,
    browser_hello_datagrams,
    chromium_hello_datagrams,
    client_hello_body,
    epoch0_handshakes,
    hello_verify_cookie,
    parse_handshake_fragments,
    parse_records,
    parse_server_hello,
    pion_hello_datagrams,
)
from tests.interop.pyopenssl_peer import PyOpenSslDtls
from webrtc_secure import Certificate

_SERVER_CERT: list[Certificate] = []


def server_cert() -> Certificate:
    if not _SERVER_CERT:
        _SERVER_CERT.append(Certificate.generate())
    return _SERVER_CERT[0]


def reassemble(datagrams: list[bytes]) -> tuple[bytes, list[int], list[int]]:
    body = b""
    versions: list[int] = []
    seqs: list[int] = []
    for datagram in datagrams:
        (rec,) = parse_records(datagram)
        versions.append(rec.version)
        seqs.append(rec.sequence)
        (frag,) = parse_handshake_fragments(rec.fragment)
        assert frag.msg_type == HANDSHAKE_CLIENT_HELLO
        assert frag.fragment_offset == len(body)
        body += frag.body
        assert frag.length == len(client_hello_body(HelloParams(seed=7), frag_cookie(body)))
    return body, versions, seqs


def frag_cookie(body: bytes) -> bytes:
    pos = 35 + body[34]  # past version, random and session_id
    return body[pos + 1 : pos + 1 + body[pos]]


def parse_extensions(body: bytes) -> list[tuple[int, bytes]]:
    pos = 34
    pos += 1 + body[pos]  # session id
    pos += 1 + body[pos]  # cookie
    (suites_len,) = struct.unpack_from("!H", body, pos)
    pos += 2 + suites_len
    pos += 1 + body[pos]  # compression
    (total,) = struct.unpack_from("!H", body, pos)
    pos += 2
    assert pos + total == len(body)
    out = []
    while pos < len(body):
        ext_type, length = struct.unpack_from("!HH", body, pos)
        out.append((ext_type, body[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return out


def test_hello_is_two_fragments_in_two_datagrams() -> None:
    datagrams = chromium_hello_datagrams(seed=7)
    assert len(datagrams) == 2
    assert len(datagrams[0]) == 1175
    assert 150 < len(datagrams[1]) < 600
    body, versions, seqs = reassemble(datagrams)
    assert versions == [DTLS_1_0, DTLS_1_0]
    assert seqs == [0, 1]
    assert body == client_hello_body(HelloParams(seed=7))
    assert body[:2] == struct.pack("!H", DTLS_1_2)
    assert frag_cookie(body) == b""


def test_hello_carries_the_browser_extensions() -> None:
    body = client_hello_body(HelloParams(seed=7))
    extensions = dict(parse_extensions(body))
    assert extensions[ExtensionType.SUPPORTED_VERSIONS] == bytes([4]) + struct.pack(
        "!HH", DTLS_1_3, DTLS_1_2
    )
    shares = extensions[ExtensionType.KEY_SHARE]
    group, length = struct.unpack_from("!HH", shares, 2)
    assert (group, length) == (X25519MLKEM768, X25519MLKEM768_SHARE_LENGTH)
    assert struct.unpack_from("!HH", shares, 6 + length) == (0x001D, 32)
    assert extensions[ExtensionType.SUPPORTED_GROUPS] == bytes.fromhex("0008 11ec 001d 0017 0018")
    assert extensions[ExtensionType.USE_SRTP] == bytes.fromhex("0008 0007 0008 0001 0002 00")
    assert extensions[ExtensionType.EXTENDED_MASTER_SECRET] == b""
    assert extensions[ExtensionType.RENEGOTIATION_INFO] == b"\x00"
    for ext in (
        ExtensionType.ALPN,
        ExtensionType.RECORD_SIZE_LIMIT,
        ExtensionType.DELEGATED_CREDENTIALS,
        ExtensionType.SIGNATURE_ALGORITHMS,
        ExtensionType.EC_POINT_FORMATS,
        ExtensionType.SESSION_TICKET,
        ExtensionType.PSK_KEY_EXCHANGE_MODES,
    ):
        assert ext in extensions
    suites_len = struct.unpack_from("!H", body, 36)[0]
    suites = [struct.unpack_from("!H", body, 38 + i)[0] for i in range(0, suites_len, 2)]
    assert suites[:3] == [0x1301, 0x1302, 0x1303]
    assert {0xC02B, 0xC02F, 0xCCA9, 0xCCA8} <= set(suites)


def test_extension_order_is_seeded() -> None:
    def order(seed: int) -> list[int]:
        return [t for t, _ in browser_extensions(HelloParams(seed=seed))]

    assert order(1) == order(1)
    assert chromium_hello_datagrams(seed=1) == chromium_hello_datagrams(seed=1)
    assert len({tuple(order(seed)) for seed in range(6)}) > 1
    assert sorted(order(1)) == sorted(order(2))


def test_second_hello_carries_the_cookie_and_same_random() -> None:
    first = chromium_hello_datagrams(seed=3)
    second = chromium_hello_datagrams(seed=3, cookie=b"\x01" * 20)
    (rec,) = parse_records(second[0])
    (frag,) = parse_handshake_fragments(rec.fragment)
    assert frag.message_seq == 1
    assert rec.sequence == 2
    first_body = parse_handshake_fragments(parse_records(first[0])[0].fragment)[0].body
    assert frag.body[2:34] == first_body[2:34]  # client random
    assert frag_cookie(frag.body) == b"\x01" * 20


def test_pion_variant_uses_record_version_1_2() -> None:
    assert {parse_records(d)[0].version for d in pion_hello_datagrams()} == {DTLS_1_2}


def test_hello_fits_one_datagram_when_allowed() -> None:
    (only,) = browser_hello_datagrams(first_datagram_size=4000)
    (frag,) = parse_handshake_fragments(parse_records(only)[0].fragment)
    assert frag.length == len(frag.body)


def feed(server: PyOpenSslDtls, datagrams: list[bytes]) -> list[bytes]:
    for datagram in datagrams:
        server.receive_datagram(datagram, 0.0)
    return server.datagrams_to_send(0.0)


@pytest.mark.parametrize("build", [chromium_hello_datagrams, pion_hello_datagrams])
def test_openssl_answers_with_a_dtls12_server_hello(build: object) -> None:
    assert callable(build)
    server = PyOpenSslDtls(False, server_cert(), cookies=False)
    answer = feed(server, build(seed=11))
    assert server.error is None
    hello = parse_server_hello(answer)
    assert hello.record_version == DTLS_1_2
    assert hello.server_version == DTLS_1_2
    assert hello.cipher_suite in {0xC02B, 0xC02C, 0xCCA9}  # ECDSA certificate
    assert hello.extensions[ExtensionType.USE_SRTP] == bytes.fromhex("0002 0007 00")
    assert ExtensionType.EXTENDED_MASTER_SECRET in hello.extensions
    assert ExtensionType.SUPPORTED_VERSIONS not in hello.extensions
    types = [hs.msg_type for hs in epoch0_handshakes(answer)]
    assert types == [HANDSHAKE_SERVER_HELLO, 11, 12, 13, 14]


@pytest.mark.parametrize("stateless", [True, False])
def test_cookie_round_trip_with_openssl(stateless: bool) -> None:
    server = PyOpenSslDtls(False, server_cert(), cookies=True, stateless_cookies=stateless)
    answer = feed(server, chromium_hello_datagrams(seed=5))
    assert [hs.msg_type for hs in epoch0_handshakes(answer)] == [HANDSHAKE_HELLO_VERIFY_REQUEST]
    cookie = hello_verify_cookie(answer)
    assert 1 <= len(cookie) <= 255
    answer = feed(server, chromium_hello_datagrams(seed=5, cookie=cookie))
    assert parse_server_hello(answer).server_version == DTLS_1_2
    assert server.error is None


def test_wrong_cookie_gets_no_server_hello() -> None:
    server = PyOpenSslDtls(False, server_cert(), cookies=True)
    feed(server, chromium_hello_datagrams(seed=5))
    answer = feed(server, chromium_hello_datagrams(seed=5, cookie=b"\x00" * 16))
    with pytest.raises(ValueError):
        parse_server_hello(answer)
