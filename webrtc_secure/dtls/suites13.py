"""TLS 1.3 cipher suites as DTLS 1.3 uses them (RFC 8446 B.4, RFC 9147 4.2.3, 4.5.3).

A TLS 1.3 suite names only the AEAD and the key schedule's hash; the key exchange
and the signature are negotiated separately. Its own table, because the DTLS 1.2
``SuiteInfo`` describes 1.2 things (explicit nonces, the certificate type) that do
not exist here, and 1.2 code iterates over ``CipherSuite``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from webrtc_secure.named_enum import NamedIntEnum

Aead = AESGCM | ChaCha20Poly1305


class CipherSuite13(NamedIntEnum):
    """TLS 1.3 cipher suite ids (IANA)."""

    TLS_AES_128_GCM_SHA256 = 0x1301
    TLS_AES_256_GCM_SHA384 = 0x1302
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303


@dataclass(frozen=True)
class Suite13Info:
    """What one TLS 1.3 suite means for the key schedule and the record layer."""

    suite: CipherSuite13
    key_length: int
    hash_name: str
    make_aead: Callable[[bytes], Aead]
    #: record numbers are masked with ChaCha20 (else AES-ECB), RFC 9147 4.2.3
    is_chacha: bool
    #: records one key may protect before a KeyUpdate (RFC 8446 5.5): 2^24.5 for
    #: AES-GCM; ChaCha20-Poly1305's bound lies beyond any sequence number
    confidentiality_limit: int
    #: records that may fail authentication under one key before it must be
    #: dropped (RFC 9147 4.5.3): 2^36 for all three suites
    integrity_limit: int


IV_LENGTH = 12
TAG_LENGTH = 16
_AES_GCM_LIMIT = 23_726_566  # floor(2^24.5)
_NO_LIMIT = (1 << 64) - 1
_FORGERY_LIMIT = 1 << 36

SUITES13: dict[CipherSuite13, Suite13Info] = {
    s.suite: s
    for s in (
        Suite13Info(
            CipherSuite13.TLS_AES_128_GCM_SHA256,
            16,
            "sha256",
            AESGCM,
            False,
            _AES_GCM_LIMIT,
            _FORGERY_LIMIT,
        ),
        Suite13Info(
            CipherSuite13.TLS_AES_256_GCM_SHA384,
            32,
            "sha384",
            AESGCM,
            False,
            _AES_GCM_LIMIT,
            _FORGERY_LIMIT,
        ),
        Suite13Info(
            CipherSuite13.TLS_CHACHA20_POLY1305_SHA256,
            32,
            "sha256",
            ChaCha20Poly1305,
            True,
            _NO_LIMIT,
            _FORGERY_LIMIT,
        ),
    )
}

#: our preference as a server
DEFAULT_SUITES13: tuple[CipherSuite13, ...] = (
    CipherSuite13.TLS_AES_128_GCM_SHA256,
    CipherSuite13.TLS_AES_256_GCM_SHA384,
    CipherSuite13.TLS_CHACHA20_POLY1305_SHA256,
)
