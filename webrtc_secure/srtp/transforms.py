"""The two packet transforms: AES-CM + HMAC-SHA1 (RFC 3711) and AES-GCM (RFC 7714).

Per-packet work builds no cipher objects: one AES-CTR context per key is re-aimed at
each packet's IV with ``reset_nonce`` (cryptography >= 43; building a fresh CTR
context costs about 11 us, re-aiming about 0.2 us), HMAC-SHA1 copies pre-keyed inner
and outer hash states, and the AEAD object is built once per key.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from webrtc_secure.errors import AuthenticationFailed


class AesCmHmac:
    """AES-CM encryption and truncated HMAC-SHA1 for one key set."""

    __slots__ = ("_ctr", "_inner", "_outer", "salt_int", "tag_length")

    def __init__(self, key: bytes, salt: bytes, auth_key: bytes, tag_length: int) -> None:
        self._ctr = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self.salt_int = int.from_bytes(salt, "big") << 16
        block = auth_key.ljust(64, b"\x00")
        self._inner = hashlib.sha1(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha1(bytes(b ^ 0x5C for b in block))
        self.tag_length = tag_length

    def xor_keystream(self, iv: int, data: bytes | memoryview) -> bytes:
        """Encrypt or decrypt ``data`` with the AES-CM keystream starting at ``iv``."""
        ctr = self._ctr
        ctr.reset_nonce(iv.to_bytes(16, "big"))
        return ctr.update(data)

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

    def seal(self, iv: bytes, plaintext: bytes | memoryview, aad: bytes) -> bytes:
        return self._aead.encrypt(iv, plaintext, aad)

    def open(self, iv: bytes, ciphertext: bytes | memoryview, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(iv, ciphertext, aad)
        except InvalidTag:
            raise AuthenticationFailed("SRTP AEAD tag does not verify") from None
