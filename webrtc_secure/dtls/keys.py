"""TLS 1.2 key schedule (RFC 5246 5, 6.3, 7.4.9), extended master secret (RFC 7627)
and the keying material exporter (RFC 5705). DTLS 1.2 uses all of them unchanged.

The PRF is HMAC over one secret many times (P_hash, RFC 5246 5): :class:`Prf` keys
the HMAC once (the inner and outer hash states after the padded key, RFC 2104) and
copies those states for every block, instead of re-keying a fresh HMAC per block.
A handshake keeps one :class:`Prf` over the master secret for the key block, both
Finished messages and the exporter.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

MASTER_SECRET_LENGTH = 48
VERIFY_DATA_LENGTH = 12

#: hashlib constructors by name (direct constructors, not ``hashlib.new``'s lookup)
HASHES: dict[str, Callable[..., Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
}
_BLOCK_SIZE = {"sha256": 64, "sha384": 128}
#: XOR with the HMAC pads as byte translations (RFC 2104): no loop over bytes
_IPAD = bytes(i ^ 0x36 for i in range(256))
_OPAD = bytes(i ^ 0x5C for i in range(256))


def hash_constructor(hash_name: str) -> Callable[..., Any]:
    """The hashlib constructor for ``hash_name`` (a direct one for the PRF hashes)."""
    new = HASHES.get(hash_name)
    if new is None:
        new = functools.partial(hashlib.new, hash_name)
    return new


class Prf:
    """HMAC-<hash> and P_<hash> under one secret, keyed once."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, hash_name: str, secret: bytes) -> None:
        new = HASHES.get(hash_name) or hash_constructor(hash_name)
        block = _BLOCK_SIZE.get(hash_name) or new().block_size
        if len(secret) > block:
            secret = new(secret).digest()
        key = secret.ljust(block, b"\x00")
        self._inner = new(key.translate(_IPAD))
        self._outer = new(key.translate(_OPAD))

    def hmac(self, message: bytes) -> bytes:
        """HMAC(secret, message)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()  # type: ignore[no-any-return]

    def __call__(self, label: bytes, seed: bytes, length: int) -> bytes:
        """P_hash(secret, label || seed) truncated to ``length`` octets.

        A(0) = label || seed, A(i) = HMAC(A(i-1)), output HMAC(A(i) || label || seed)
        for i = 1, 2, ...; the HMACs are written out here (this runs for every key
        derivation and Finished)."""
        seed = label + seed
        inner = self._inner
        outer = self._outer
        h = inner.copy()
        h.update(seed)
        o = outer.copy()
        o.update(h.digest())
        a = o.digest()
        out = b""
        while True:
            h = inner.copy()
            h.update(a + seed)
            o = outer.copy()
            o.update(h.digest())
            out += o.digest()
            if len(out) >= length:
                return out[:length]  # type: ignore[no-any-return]
            h = inner.copy()
            h.update(a)
            o = outer.copy()
            o.update(h.digest())
            a = o.digest()


def prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.2 PRF: P_<hash>(secret, label || seed) truncated to ``length`` octets."""
    return Prf(hash_name, secret)(label, seed, length)


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


class KeyBlock(NamedTuple):
    """AEAD write keys and implicit IVs for both directions."""

    client_write_key: bytes
    server_write_key: bytes
    client_write_iv: bytes
    server_write_iv: bytes


def key_block_from(
    master_prf: Prf,
    client_random: bytes,
    server_random: bytes,
    key_length: int,
    iv_length: int,
) -> KeyBlock:
    """Split the key expansion under a PRF keyed with the master secret (AEAD suites
    have no MAC keys)."""
    material = master_prf(
        b"key expansion", server_random + client_random, 2 * (key_length + iv_length)
    )
    k = key_length
    return KeyBlock(
        client_write_key=material[:k],
        server_write_key=material[k : 2 * k],
        client_write_iv=material[2 * k : 2 * k + iv_length],
        server_write_iv=material[2 * k + iv_length :],
    )


def key_block(
    hash_name: str,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    key_length: int,
    iv_length: int,
) -> KeyBlock:
    """Split the key expansion (AEAD suites have no MAC keys)."""
    return key_block_from(
        Prf(hash_name, master), client_random, server_random, key_length, iv_length
    )


def verify_data_from_hash(master_prf: Prf, is_client: bool, transcript_hash: bytes) -> bytes:
    """Finished.verify_data from the hash of the transcript so far."""
    label = b"client finished" if is_client else b"server finished"
    return master_prf(label, transcript_hash, VERIFY_DATA_LENGTH)


def verify_data(hash_name: str, master: bytes, is_client: bool, transcript: bytes) -> bytes:
    """Finished.verify_data over the transcript so far."""
    digest = hash_constructor(hash_name)(transcript).digest()
    return verify_data_from_hash(Prf(hash_name, master), is_client, digest)


def _exporter_seed(client_random: bytes, server_random: bytes, context: bytes | None) -> bytes:
    seed = client_random + server_random
    if context is not None:
        if len(context) > 0xFFFF:
            raise ValueError("exporter context longer than 65535 octets")
        seed += len(context).to_bytes(2, "big") + context
    return seed


def export_from(
    master_prf: Prf,
    client_random: bytes,
    server_random: bytes,
    label: str | bytes,
    length: int,
    context: bytes | None = None,
) -> bytes:
    """RFC 5705 exporter under a PRF keyed with the master secret."""
    label_bytes = label.encode("ascii") if isinstance(label, str) else label
    return master_prf(label_bytes, _exporter_seed(client_random, server_random, context), length)


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
    return export_from(Prf(hash_name, master), client_random, server_random, label, length, context)
