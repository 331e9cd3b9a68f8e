"""The two packet transforms: AES-CM + HMAC-SHA1 (RFC 3711) and AES-GCM (RFC 7714).

Per-packet work builds no cipher objects: AES-CM keystream comes from one cached
AES-ECB encryptor run over counter blocks made with a couple of big-integer
operations (the low 16 bits of an SRTP IV are zero, so block i is IV + i = IV XOR i),
HMAC-SHA1 copies pre-keyed inner and outer hash states, and XOR is done on integers.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from webrtc_secure.errors import AuthenticationFailed

#: counters 0..n-1 as one big-endian integer of n 16-octet blocks, for n up to this
_MAX_BLOCKS = 4096
_counter_cache: dict[int, int] = {}


def _counters(n: int) -> int:
    value = _counter_cache.get(n)
    if value is None:
        value = int.from_bytes(b"".join(i.to_bytes(16, "big") for i in range(n)), "big")
        if n <= _MAX_BLOCKS:
            _counter_cache[n] = value
    return value


class AesCmHmac:
    """AES-CM encryption and truncated HMAC-SHA1 for one key set."""

    __slots__ = ("_ecb", "_inner", "_outer", "salt_int", "tag_length")

    def __init__(self, key: bytes, salt: bytes, auth_key: bytes, tag_length: int) -> None:
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        self.salt_int = int.from_bytes(salt, "big") << 16
        block = auth_key.ljust(64, b"\x00")
        self._inner = hashlib.sha1(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha1(bytes(b ^ 0x5C for b in block))
        self.tag_length = tag_length

    def xor_keystream(self, iv: int, data: bytes) -> bytes:
        """Encrypt or decrypt ``data`` with the AES-CM keystream starting at ``iv``."""
        n = len(data)
        if not n:
            return b""
        blocks = (n + 15) >> 4
        counter = int.from_bytes(iv.to_bytes(16, "big") * blocks, "big") ^ _counters(blocks)
        keystream = self._ecb.update(counter.to_bytes(blocks << 4, "big"))
        mixed = int.from_bytes(data, "big") ^ int.from_bytes(keystream[:n], "big")
        return mixed.to_bytes(n, "big")

    def tag(self, *parts: bytes) -> bytes:
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[: self.tag_length]


class AesGcm:
    """AEAD_AES_128_GCM / AEAD_AES_256_GCM with a 16-octet tag."""

    __slots__ = ("_aead", "salt_int")
    tag_length = 16

    def __init__(self, key: bytes, salt: bytes) -> None:
        self._aead = AESGCM(key)
        self.salt_int = int.from_bytes(salt, "big")

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(iv, plaintext, aad)

    def open(self, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(iv, ciphertext, aad)
        except InvalidTag:
            raise AuthenticationFailed("SRTP AEAD tag does not verify") from None
