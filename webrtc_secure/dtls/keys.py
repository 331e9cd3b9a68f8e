"""TLS 1.2 key schedule (RFC 5246 5, 6.3, 7.4.9), extended master secret (RFC 7627)
and the keying material exporter (RFC 5705). DTLS 1.2 uses all of them unchanged."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

MASTER_SECRET_LENGTH = 48
VERIFY_DATA_LENGTH = 12


def prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.2 PRF: P_<hash>(secret, label || seed) truncated to ``length`` octets."""
    seed = label + seed
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return bytes(out[:length])


def master_secret(
    hash_name: str, pre_master: bytes, client_random: bytes, server_random: bytes
) -> bytes:
    """Classic master secret (only used when extended master secret is off)."""
    return prf(
        hash_name,
        pre_master,
        b"master secret",
        client_random + server_random,
        MASTER_SECRET_LENGTH,
    )


def extended_master_secret(hash_name: str, pre_master: bytes, session_hash: bytes) -> bytes:
    """RFC 7627 master secret bound to the handshake transcript up to ClientKeyExchange."""
    return prf(hash_name, pre_master, b"extended master secret", session_hash, MASTER_SECRET_LENGTH)


@dataclass(frozen=True)
class KeyBlock:
    """AEAD write keys and implicit IVs for both directions."""

    client_write_key: bytes
    server_write_key: bytes
    client_write_iv: bytes
    server_write_iv: bytes


def key_block(
    hash_name: str,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    key_length: int,
    iv_length: int,
) -> KeyBlock:
    """Split the key expansion (AEAD suites have no MAC keys)."""
    material = prf(
        hash_name,
        master,
        b"key expansion",
        server_random + client_random,
        2 * (key_length + iv_length),
    )
    k = key_length
    return KeyBlock(
        client_write_key=material[:k],
        server_write_key=material[k : 2 * k],
        client_write_iv=material[2 * k : 2 * k + iv_length],
        server_write_iv=material[2 * k + iv_length :],
    )


def verify_data(hash_name: str, master: bytes, is_client: bool, transcript: bytes) -> bytes:
    """Finished.verify_data over the transcript so far."""
    label = b"client finished" if is_client else b"server finished"
    digest = hashlib.new(hash_name, transcript).digest()
    return prf(hash_name, master, label, digest, VERIFY_DATA_LENGTH)


def export_keying_material(
    hash_name: str,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    label: str | bytes,
    length: int,
    context: bytes | None = None,
) -> bytes:
    """RFC 5705 exporter; ``EXTRACTOR-dtls_srtp`` uses no context."""
    label_bytes = label.encode("ascii") if isinstance(label, str) else label
    seed = client_random + server_random
    if context is not None:
        if len(context) > 0xFFFF:
            raise ValueError("exporter context longer than 65535 octets")
        seed += len(context).to_bytes(2, "big") + context
    return prf(hash_name, master, label_bytes, seed, length)
