"""The two packet transforms: AES-CM + HMAC-SHA1 (RFC 3711) and AES-GCM (RFC 7714).

Each object holds the keyed primitives of one direction and one packet kind (RTP or
RTCP) and nothing that changes per packet, so :class:`~webrtc_secure.srtp.context.
SrtpContext` can pull them into local variables on its hot path:

- AES-CM: one AES-CTR context per key, re-aimed at each packet's IV with
  ``reset_nonce`` (about 1 us). Building a fresh CTR context costs about 11 us, and
  producing the keystream with ECB over counter blocks needs a Python-level XOR (about
  5 us for 1200 octets), so re-aiming is the cheapest way to get C to do the XOR.
- HMAC-SHA1: pre-keyed inner and outer ``hashlib.sha1`` states, copied per packet.
- AES-GCM: one ``AESGCM`` object per key.

The IV helpers spell out the RFC formulas; the context caches their SSRC-dependent
part per stream and only XORs the index in.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from webrtc_secure.errors import AuthenticationFailed

_HMAC_BLOCK = 64


class AesCmHmac:
    """AES-CM encryption and truncated HMAC-SHA1 for one session key set."""

    __slots__ = ("ctr", "inner", "outer", "salt_int", "tag_length")

    def __init__(self, key: bytes, salt: bytes, auth_key: bytes, tag_length: int) -> None:
        self.ctr = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        #: the 112-bit session salt, already in IV position (RFC 3711 4.1.1)
        self.salt_int = int.from_bytes(salt, "big") << 16
        block = auth_key.ljust(_HMAC_BLOCK, b"\x00")
        self.inner = hashlib.sha1(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha1(bytes(b ^ 0x5C for b in block))
        self.tag_length = tag_length

    def iv_base(self, ssrc: int) -> int:
        """The per-SSRC part of the IV: salt XOR (SSRC << 64). XOR ``index << 16`` in."""
        return self.salt_int ^ (ssrc << 64)

    def iv(self, ssrc: int, index: int) -> bytes:
        """RFC 3711 4.1.1: (salt << 16) XOR (SSRC << 64) XOR (index << 16)."""
        return (self.iv_base(ssrc) ^ (index << 16)).to_bytes(16, "big")

    def xor_keystream(self, iv: bytes, data: bytes) -> bytes:
        """Encrypt or decrypt ``data`` with the AES-CM keystream starting at ``iv``."""
        ctr = self.ctr
        ctr.reset_nonce(iv)
        return ctr.update(data)

    def tag(self, *parts: bytes) -> bytes:
        """Truncated HMAC-SHA1 over the concatenation of ``parts``."""
        inner = self.inner.copy()
        for part in parts:
            inner.update(part)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()[: self.tag_length]

    def verify(self, tag: bytes, *parts: bytes) -> None:
        """Raise AuthenticationFailed unless ``tag`` matches (constant time)."""
        if not hmac.compare_digest(self.tag(*parts), tag):
            raise AuthenticationFailed("SRTP authentication tag does not verify")


class AesGcm:
    """AEAD_AES_128_GCM / AEAD_AES_256_GCM with a 16-octet tag (RFC 7714)."""

    __slots__ = ("aead", "salt_int")
    tag_length = 16

    def __init__(self, key: bytes, salt: bytes) -> None:
        self.aead = AESGCM(key)
        self.salt_int = int.from_bytes(salt, "big")

    def iv_base(self, ssrc: int) -> int:
        """The per-SSRC part of the IV: salt XOR (SSRC << 48). XOR the index in."""
        return self.salt_int ^ (ssrc << 48)

    def iv(self, ssrc: int, index: int) -> bytes:
        """RFC 7714 8.1 / 9.1: salt XOR (00 00 || SSRC || ROC || SEQ), or for SRTCP
        salt XOR (00 00 || SSRC || 00 00 || 0 || 31-bit index)."""
        return (self.iv_base(ssrc) ^ index).to_bytes(12, "big")

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Ciphertext || tag."""
        return self.aead.encrypt(iv, plaintext, aad)

    def open(self, iv: bytes, sealed: bytes, aad: bytes) -> bytes:
        """Plaintext, or AuthenticationFailed."""
        try:
            return self.aead.decrypt(iv, sealed, aad)
        except InvalidTag:
            raise AuthenticationFailed("SRTP AEAD tag does not verify") from None
