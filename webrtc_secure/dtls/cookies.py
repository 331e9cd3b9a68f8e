"""Stateless HelloVerifyRequest cookies (RFC 6347 4.2.1).

The cookie is an HMAC, under a server secret, of the transport address (when the
caller knows it) and the ClientHello fields that a retransmitted hello repeats. A
server can therefore answer any number of cookie-less hellos without keeping one byte
per client, and recognise the second hello by recomputing the HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from webrtc_secure.dtls.messages import ClientHello

COOKIE_LENGTH = 20


class CookieFactory:
    """Makes and checks cookies under one random secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or os.urandom(32)

    def make(self, hello: ClientHello, address: object = None) -> bytes:
        material = b"|".join(
            (
                repr(address).encode(),
                hello.client_version.to_bytes(2, "big"),
                hello.random,
                hello.session_id,
                b"".join(s.to_bytes(2, "big") for s in hello.cipher_suites),
                hello.compression_methods,
            )
        )
        return hmac.digest(self._secret, material, hashlib.sha256)[:COOKIE_LENGTH]

    def check(self, hello: ClientHello, address: object = None) -> bool:
        return bool(hello.cookie) and hmac.compare_digest(hello.cookie, self.make(hello, address))
