"""Stateless HelloRetryRequest cookies for DTLS 1.3 (RFC 9147 5.1, RFC 8446 4.2.2, 4.4.1).

A DTLS 1.3 server checks return routability the TLS 1.3 way: it answers a first
ClientHello with a HelloRetryRequest carrying a cookie and keeps nothing. When the
second ClientHello echoes the cookie, the server must continue the same transcript,
which starts with ``message_hash(ClientHello1)`` followed by the HelloRetryRequest.
So the cookie carries what rebuilds both: the hash of ClientHello1, the cipher suite
and the group the HelloRetryRequest named, and when it was issued, all under an HMAC
that also covers the client's transport address. The HelloRetryRequest itself is a
deterministic function of (suite, group, cookie) (:func:`hello_retry_request`), so
the server re-encodes it byte for byte instead of remembering it.

Cookie layout (opaque to the client, at most 1 + 8 + 2 + 2 + 1 + 48 + 16 octets)::

    version(1)=1  issued_ms(8)  cipher_suite(2)  group(2, 0 = none)
    hash_length(1)  client_hello1_hash  mac(16) = HMAC-SHA256(secret, address || all before)[:16]
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import NamedTuple

from webrtc_secure.dtls import keys13
from webrtc_secure.dtls.messages import Extension
from webrtc_secure.dtls.messages13 import (
    DTLS_1_2,
    DTLS_1_3,
    HELLO_RETRY_REQUEST_RANDOM,
    TLS_1_2,
    TLS_1_3,
    ExtensionType13,
    HandshakeType13,
    ServerHello13,
    encode_cookie,
    encode_key_share_hrr,
    encode_supported_versions_server,
    transcript_message,
)

COOKIE_VERSION = 1
MAC_LENGTH = 16
DEFAULT_LIFETIME = 60.0
_FIXED = struct.Struct("!BQHHB")


class RetryState(NamedTuple):
    """What a HelloRetryRequest cookie remembers for the server."""

    cipher_suite: int
    #: the group the HelloRetryRequest asked a key share for, 0 when it asked none
    group: int
    client_hello1_hash: bytes
    #: ``now`` (seconds, the engine's clock) when the cookie was made
    issued_at: float


def hello_retry_request(
    cipher_suite: int,
    group: int,
    cookie: bytes,
    dtls: bool = True,
    legacy_session_id_echo: bytes = b"",
) -> bytes:
    """The HelloRetryRequest body, always encoded the same way from its parameters:
    supported_versions, then key_share (if ``group``), then cookie. DTLS 1.3 echoes
    no session id (RFC 9147 5); TLS 1.3 echoes the client's, which ClientHello2
    repeats, so a stateless TLS server passes it from there."""
    extensions = [
        Extension(
            ExtensionType13.SUPPORTED_VERSIONS,
            encode_supported_versions_server(DTLS_1_3 if dtls else TLS_1_3),
        )
    ]
    if group:
        extensions.append(Extension(ExtensionType13.KEY_SHARE, encode_key_share_hrr(group)))
    extensions.append(Extension(ExtensionType13.COOKIE, encode_cookie(cookie)))
    return ServerHello13(
        HELLO_RETRY_REQUEST_RANDOM,
        cipher_suite,
        tuple(extensions),
        b"" if dtls else legacy_session_id_echo,
        DTLS_1_2 if dtls else TLS_1_2,
    ).serialize()


def retry_transcript(
    state: RetryState, cookie: bytes, dtls: bool = True, legacy_session_id_echo: bytes = b""
) -> list[bytes]:
    """The first two transcript entries after a HelloRetryRequest: the synthetic
    message_hash of ClientHello1 and the HelloRetryRequest (TLS-form messages)."""
    synthetic = (
        bytes((HandshakeType13.MESSAGE_HASH, 0, 0, len(state.client_hello1_hash)))
        + state.client_hello1_hash
    )
    hrr = hello_retry_request(state.cipher_suite, state.group, cookie, dtls, legacy_session_id_echo)
    return [synthetic, transcript_message(HandshakeType13.SERVER_HELLO, hrr)]


class RetryCookies:
    """Makes and opens HelloRetryRequest cookies under one random secret."""

    __slots__ = ("_secret", "lifetime")

    def __init__(self, secret: bytes | None = None, lifetime: float = DEFAULT_LIFETIME) -> None:
        self._secret = secret or os.urandom(32)
        self.lifetime = lifetime

    def _mac(self, address: object, body: bytes) -> bytes:
        return hmac.digest(self._secret, repr(address).encode() + b"|" + body, "sha256")[
            :MAC_LENGTH
        ]

    def make(self, state: RetryState, address: object = None) -> bytes:
        digest = state.client_hello1_hash
        if len(digest) not in (32, 48):
            raise ValueError("the ClientHello1 hash is a SHA-256 or SHA-384 digest")
        body = (
            _FIXED.pack(
                COOKIE_VERSION,
                int(state.issued_at * 1000),
                state.cipher_suite,
                state.group,
                len(digest),
            )
            + digest
        )
        return body + self._mac(address, body)

    def open(self, cookie: bytes, address: object, now: float) -> RetryState | None:
        """The state in a genuine, fresh cookie from this address; None for anything
        else (forged, from another address, expired, from the future, malformed):
        the caller answers such a hello as if it had no cookie."""
        if len(cookie) < _FIXED.size + MAC_LENGTH:
            return None
        version, issued_ms, suite, group, hash_length = _FIXED.unpack_from(cookie)
        if version != COOKIE_VERSION or hash_length not in (32, 48):
            return None
        end = _FIXED.size + hash_length
        if len(cookie) != end + MAC_LENGTH:
            return None
        if not hmac.compare_digest(cookie[end:], self._mac(address, cookie[:end])):
            return None
        issued_at = issued_ms / 1000
        if not issued_at - 1.0 <= now <= issued_at + self.lifetime:
            return None
        return RetryState(suite, group, cookie[_FIXED.size : end], issued_at)


def client_hello1_hash(hash_name: str, client_hello1: bytes) -> bytes:
    """Hash(ClientHello1) as the TLS-form message, the input of message_hash."""
    return keys13.message_hash(hash_name, client_hello1)[4:]
