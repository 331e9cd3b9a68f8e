"""Cipher suites, named groups and signature schemes DTLS 1.2 speaks here.

One table per concept; everything the record layer and handshake need to know about
a suite (AEAD, key and IV lengths, PRF hash, certificate type) lives next to its id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from webrtc_secure.named_enum import NamedIntEnum


class CipherSuite(NamedIntEnum):
    """TLS cipher suite ids (IANA)."""

    ECDHE_ECDSA_AES_128_GCM_SHA256 = 0xC02B
    ECDHE_ECDSA_AES_256_GCM_SHA384 = 0xC02C
    ECDHE_ECDSA_CHACHA20_POLY1305_SHA256 = 0xCCA9
    ECDHE_RSA_AES_128_GCM_SHA256 = 0xC02F
    ECDHE_RSA_AES_256_GCM_SHA384 = 0xC030
    ECDHE_RSA_CHACHA20_POLY1305_SHA256 = 0xCCA8


class NamedGroup(IntEnum):
    """ECDHE groups (RFC 8422 / RFC 7919 registry ids)."""

    SECP256R1 = 0x0017
    SECP384R1 = 0x0018
    X25519 = 0x001D


class SignatureScheme(IntEnum):
    """TLS 1.2 signature_algorithms values we sign and verify with."""

    RSA_PKCS1_SHA256 = 0x0401
    ECDSA_SECP256R1_SHA256 = 0x0403
    ECDSA_SECP384R1_SHA384 = 0x0503
    RSA_PSS_RSAE_SHA256 = 0x0804


Aead = AESGCM | ChaCha20Poly1305


@dataclass(frozen=True)
class SuiteInfo:
    """What one cipher suite means for the key schedule and the record layer."""

    suite: CipherSuite
    key_length: int
    #: implicit IV octets from the key block (GCM salt 4, ChaCha20 nonce mask 12)
    fixed_iv_length: int
    #: explicit nonce octets carried in each record (GCM 8, ChaCha20 0)
    record_iv_length: int
    hash_name: str
    uses_rsa: bool
    make_aead: Callable[[bytes], Aead]
    #: ChaCha20-Poly1305 (nonce from the IV XOR the sequence, nothing explicit)
    is_chacha: bool
    #: octets a protected record adds to its plaintext (explicit nonce + tag)
    record_overhead: int


def _suite(suite: CipherSuite, key: int, sha: str, rsa: bool, chacha: bool) -> SuiteInfo:
    if chacha:
        return SuiteInfo(suite, key, 12, 0, sha, rsa, ChaCha20Poly1305, True, 16)
    return SuiteInfo(suite, key, 4, 8, sha, rsa, AESGCM, False, 24)


SUITES: dict[CipherSuite, SuiteInfo] = {
    s.suite: s
    for s in (
        _suite(CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256, 16, "sha256", False, False),
        _suite(CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384, 32, "sha384", False, False),
        _suite(CipherSuite.ECDHE_ECDSA_CHACHA20_POLY1305_SHA256, 32, "sha256", False, True),
        _suite(CipherSuite.ECDHE_RSA_AES_128_GCM_SHA256, 16, "sha256", True, False),
        _suite(CipherSuite.ECDHE_RSA_AES_256_GCM_SHA384, 32, "sha384", True, False),
        _suite(CipherSuite.ECDHE_RSA_CHACHA20_POLY1305_SHA256, 32, "sha256", True, True),
    )
}

#: Default preference order (the server picks the first of these the client offers).
DEFAULT_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256,
    CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384,
    CipherSuite.ECDHE_ECDSA_CHACHA20_POLY1305_SHA256,
    CipherSuite.ECDHE_RSA_AES_128_GCM_SHA256,
    CipherSuite.ECDHE_RSA_AES_256_GCM_SHA384,
    CipherSuite.ECDHE_RSA_CHACHA20_POLY1305_SHA256,
)

DEFAULT_GROUPS: tuple[NamedGroup, ...] = (
    NamedGroup.X25519,
    NamedGroup.SECP256R1,
    NamedGroup.SECP384R1,
)

DEFAULT_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.ECDSA_SECP256R1_SHA256,
    SignatureScheme.ECDSA_SECP384R1_SHA384,
    SignatureScheme.RSA_PSS_RSAE_SHA256,
    SignatureScheme.RSA_PKCS1_SHA256,
)
