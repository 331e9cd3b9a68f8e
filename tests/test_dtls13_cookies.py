"""Stateless HelloRetryRequest cookies (dtls/cookies13.py). The OpenSSL test in
tests/test_dtls13_openssl.py runs the same path against a real TLS 1.3 client."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.dtls import keys13
from webrtc_secure.dtls.cookies13 import (
    RetryCookies,
    RetryState,
    client_hello1_hash,
    hello_retry_request,
    retry_transcript,
)
from webrtc_secure.dtls.messages13 import (
    HELLO_RETRY_REQUEST_RANDOM,
    ExtensionType13,
    ServerHello13,
    parse_cookie,
    parse_key_share_hrr,
    parse_supported_versions_server,
    transcript_message,
)

ADDRESS = ("192.0.2.1", 4444)
HELLO1 = transcript_message(1, b"\xfe\xfd" + bytes(32) + b"\x00\x00\x00\x02\x13\x01\x01\x00")


def _state(hash_name: str = "sha256", group: int = 0x11EC) -> RetryState:
    return RetryState(0x1301, group, client_hello1_hash(hash_name, HELLO1), 1000.0)


def test_round_trip_and_every_refusal() -> None:
    cookies = RetryCookies(b"k" * 32, lifetime=30.0)
    state = _state()
    cookie = cookies.make(state, ADDRESS)
    assert len(cookie) == 1 + 8 + 2 + 2 + 1 + 32 + 16
    assert cookies.open(cookie, ADDRESS, 1000.5) == state
    assert cookies.open(cookie, ADDRESS, 1030.0) == state
    assert cookies.open(cookie, ADDRESS, 1030.1) is None  # expired
    assert cookies.open(cookie, ADDRESS, 998.0) is None  # from the future
    assert cookies.open(cookie, ("192.0.2.1", 4445), 1000.5) is None  # other address
    assert RetryCookies(b"x" * 32).open(cookie, ADDRESS, 1000.5) is None  # other secret
    for i in range(len(cookie)):  # any flipped bit
        bad = bytearray(cookie)
        bad[i] ^= 0x01
        assert cookies.open(bytes(bad), ADDRESS, 1000.5) is None
    for cut in range(len(cookie)):
        assert cookies.open(cookie[:cut], ADDRESS, 1000.5) is None
    assert cookies.open(cookie + b"\x00", ADDRESS, 1000.5) is None
    sha384 = _state("sha384", group=0)
    assert cookies.open(cookies.make(sha384, ADDRESS), ADDRESS, 1000.0) == sha384
    with pytest.raises(ValueError):
        cookies.make(RetryState(0x1301, 0, bytes(20), 0.0))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_cookies_are_refused(data: bytes) -> None:
    assert RetryCookies(b"k" * 32).open(data, ADDRESS, 1000.0) is None


def test_hello_retry_request_encoding() -> None:
    hrr = ServerHello13.parse(hello_retry_request(0x1302, 0x001D, b"cookie!"))
    assert hrr.is_hello_retry_request and hrr.random == HELLO_RETRY_REQUEST_RANDOM
    assert hrr.legacy_version == 0xFEFD and hrr.legacy_session_id_echo == b""
    assert hrr.cipher_suite == 0x1302
    assert [e.type for e in hrr.extensions] == [
        ExtensionType13.SUPPORTED_VERSIONS,
        ExtensionType13.KEY_SHARE,
        ExtensionType13.COOKIE,
    ]
    versions, key_share, cookie = (e.data for e in hrr.extensions)
    assert parse_supported_versions_server(versions) == 0xFEFC
    assert parse_key_share_hrr(key_share) == 0x001D
    assert parse_cookie(cookie) == b"cookie!"
    # no group: a cookie-only retry (return routability, the shares were fine)
    plain = ServerHello13.parse(hello_retry_request(0x1301, 0, b"c"))
    assert [e.type for e in plain.extensions] == [43, 44]
    tls = ServerHello13.parse(hello_retry_request(0x1301, 0, b"c", False, b"\x07" * 32))
    assert tls.legacy_version == 0x0303 and tls.legacy_session_id_echo == b"\x07" * 32
    assert parse_supported_versions_server(tls.extensions[0].data) == 0x0304
    # deterministic: the same inputs give the same octets
    assert hello_retry_request(0x1301, 0x17, b"c") == hello_retry_request(0x1301, 0x17, b"c")


def test_retry_transcript_matches_the_stateful_one() -> None:
    cookies = RetryCookies()
    state = _state()
    cookie = cookies.make(state, ADDRESS)
    hrr = transcript_message(2, hello_retry_request(state.cipher_suite, state.group, cookie))
    stateful = [keys13.message_hash("sha256", HELLO1), hrr]
    reopened = cookies.open(cookie, ADDRESS, 1001.0)
    assert reopened is not None
    assert retry_transcript(reopened, cookie) == stateful
    assert stateful[0][4:] == hashlib.sha256(HELLO1).digest()
