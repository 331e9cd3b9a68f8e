"""Stateless HelloVerifyRequest cookies (RFC 6347 4.2.1).

The cookie is an HMAC, under a server secret, of the transport address (when the
caller knows it) and the ClientHello fields that a retransmitted hello repeats. A
server can therefore answer any number of cookie-less hellos without keeping one byte
per client, and recognise the second hello by recomputing the HMAC.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import Protocol

from webrtc_secure.dtls.keys import Prf

COOKIE_LENGTH = 20


class HelloFields(Protocol):
    """What a cookie covers: a ClientHello or its parsed fields."""

    @property
    def client_version(self) -> int: ...
    @property
    def random(self) -> bytes: ...
    @property
    def session_id(self) -> bytes: ...
    @property
    def cookie(self) -> bytes: ...
    @property
    def cipher_suites(self) -> list[int]: ...
    @property
    def compression_methods(self) -> bytes: ...


class CookieFactory:
    """Makes and checks cookies under one random secret (HMAC-SHA256, keyed once)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or os.urandom(32)
        self._hmac = Prf("sha256", self._secret).hmac

    def make(self, hello: HelloFields, address: object = None) -> bytes:
        suites = hello.cipher_suites
        material = b"|".join(
            (
                repr(address).encode(),
                hello.client_version.to_bytes(2, "big"),
                hello.random,
                hello.session_id,
                struct.pack(f"!{len(suites)}H", *suites),
                hello.compression_methods,
            )
        )
        return self._hmac(material)[:COOKIE_LENGTH]

    def check(self, hello: HelloFields, address: object = None) -> bool:
        return bool(hello.cookie) and hmac.compare_digest(hello.cookie, self.make(hello, address))
