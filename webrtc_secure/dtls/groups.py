"""TLS 1.3 key shares: x25519, secp256r1 and the X25519MLKEM768 hybrid.

A TLS 1.3 client sends a key share per group it guesses the server will pick; the
server answers one. For the ECDHE groups both shares are public keys and the shared
secret is the Diffie-Hellman result (RFC 8446 4.2.8.2). For the hybrid
(draft-ietf-tls-ecdhe-mlkem, code point 0x11EC) the client's share is an ML-KEM-768
encapsulation key followed by an X25519 public key (1184 + 32 octets), the server's
share an ML-KEM-768 ciphertext followed by its X25519 public key (1088 + 32), and
the shared secret the ML-KEM shared secret followed by the X25519 one (32 + 32).
ML-KEM comes first in all three, unlike the older SecP256r1MLKEM768.

Every check a peer's share needs is here: lengths, the ML-KEM encapsulation key's
modulus check (FIPS 203 7.2, done by ``cryptography``), points off the curve and
low-order X25519 points. All of them are :class:`HandshakeFailure` with the
illegal_parameter alert (RFC 8446 4.2.8: a share that does not parse).

The table is separate from ``suites.NamedGroup`` because that enum is the DTLS 1.2
group list (tests and the 1.2 handshake iterate over it); the values agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from webrtc_secure.dtls.crypto import KeyShare
from webrtc_secure.dtls.messages import AlertDescription
from webrtc_secure.dtls.suites import NamedGroup
from webrtc_secure.errors import HandshakeFailure


class Group(IntEnum):
    """NamedGroup values DTLS 1.3 speaks here (IANA TLS Supported Groups)."""

    SECP256R1 = 0x0017
    X25519 = 0x001D
    X25519MLKEM768 = 0x11EC


MLKEM768_ENCAPSULATION_KEY_LENGTH = 1184
MLKEM768_CIPHERTEXT_LENGTH = 1088
MLKEM768_SHARED_SECRET_LENGTH = 32
MLKEM768_SEED_LENGTH = 64
X25519_LENGTH = 32

#: key_exchange lengths per group: (client share, server share)
SHARE_LENGTHS: dict[Group, tuple[int, int]] = {
    Group.X25519: (X25519_LENGTH, X25519_LENGTH),
    Group.SECP256R1: (65, 65),
    Group.X25519MLKEM768: (
        MLKEM768_ENCAPSULATION_KEY_LENGTH + X25519_LENGTH,
        MLKEM768_CIPHERTEXT_LENGTH + X25519_LENGTH,
    ),
}

#: our preference as a server, and the shares we send as a client: the hybrid
#: first, with an x25519 share beside it so that a server without ML-KEM needs no
#: HelloRetryRequest
DEFAULT_GROUPS: tuple[Group, ...] = (Group.X25519MLKEM768, Group.X25519, Group.SECP256R1)


def _illegal(message: str) -> HandshakeFailure:
    return HandshakeFailure(message, AlertDescription.ILLEGAL_PARAMETER)


def _x25519_exchange(private: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    try:
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError as exc:
        # cryptography refuses an all-zero result, i.e. a low-order peer point
        raise _illegal(f"invalid X25519 share: {exc}") from None
    if not any(shared):  # belt and braces: RFC 7748 6.1's all-zero check
        raise _illegal("X25519 share is a low-order point")
    return shared


class ClientKeyShare:
    """The client's half of one group: the share to send and, once the server's
    share arrives, the shared secret.

    ``random`` is the RNG (``os.urandom`` in production; a deterministic one in
    tests derives the same keys every run).
    """

    __slots__ = ("_ecdhe", "_mlkem", "_x25519", "group", "key_exchange")

    def __init__(self, group: Group, random: Callable[[int], bytes] = os.urandom) -> None:
        self.group = Group(group)
        self._ecdhe: KeyShare | None = None
        self._mlkem: mlkem.MLKEM768PrivateKey | None = None
        self._x25519: x25519.X25519PrivateKey | None = None
        if self.group == Group.X25519MLKEM768:
            native = random is os.urandom
            self._mlkem = (
                mlkem.MLKEM768PrivateKey.generate()
                if native
                else mlkem.MLKEM768PrivateKey.from_seed_bytes(random(MLKEM768_SEED_LENGTH))
            )
            self._x25519 = (
                x25519.X25519PrivateKey.generate()
                if native
                else x25519.X25519PrivateKey.from_private_bytes(random(X25519_LENGTH))
            )
            self.key_exchange: bytes = (
                self._mlkem.public_key().public_bytes_raw()
                + self._x25519.public_key().public_bytes_raw()
            )
        else:
            self._ecdhe = KeyShare(NamedGroup(int(self.group)), random)
            self.key_exchange = self._ecdhe.public_bytes

    def shared_secret(self, server_share: bytes) -> bytes:
        """The shared secret from the server's key_exchange (illegal_parameter if it
        does not parse or is a low-order point)."""
        expected = SHARE_LENGTHS[self.group][1]
        if len(server_share) != expected:
            raise _illegal(
                f"{self.group.name} server share of {len(server_share)} octets, expected {expected}"
            )
        if self._ecdhe is not None:
            return self._ecdhe.exchange(server_share)
        assert self._mlkem is not None and self._x25519 is not None
        ciphertext = server_share[:MLKEM768_CIPHERTEXT_LENGTH]
        # ML-KEM decapsulation never fails on a well-sized ciphertext (implicit
        # rejection, FIPS 203 6.3): a forged one yields a secret the server lacks
        kem_secret = self._mlkem.decapsulate(ciphertext)
        ecdh_secret = _x25519_exchange(self._x25519, server_share[MLKEM768_CIPHERTEXT_LENGTH:])
        return kem_secret + ecdh_secret


def server_key_share(
    group: Group, client_share: bytes, random: Callable[[int], bytes] = os.urandom
) -> tuple[bytes, bytes]:
    """The server's answer to a client share: (server key_exchange, shared secret).

    For the hybrid the ML-KEM half is an encapsulation to the client's key (its
    randomness comes from OpenSSL, not from ``random``); the X25519 half a fresh
    key pair.
    """
    group = Group(group)
    expected = SHARE_LENGTHS[group][0]
    if len(client_share) != expected:
        raise _illegal(
            f"{group.name} client share of {len(client_share)} octets, expected {expected}"
        )
    if group != Group.X25519MLKEM768:
        ours = KeyShare(NamedGroup(int(group)), random)
        return ours.public_bytes, ours.exchange(client_share)
    try:
        encapsulation_key = mlkem.MLKEM768PublicKey.from_public_bytes(
            client_share[:MLKEM768_ENCAPSULATION_KEY_LENGTH]
        )
    except ValueError as exc:
        # FIPS 203 7.2 input check: a coefficient not reduced modulo q
        raise _illegal(f"invalid ML-KEM-768 encapsulation key: {exc}") from None
    kem_secret, ciphertext = encapsulation_key.encapsulate()
    private = (
        x25519.X25519PrivateKey.generate()
        if random is os.urandom
        else x25519.X25519PrivateKey.from_private_bytes(random(X25519_LENGTH))
    )
    ecdh_secret = _x25519_exchange(private, client_share[MLKEM768_ENCAPSULATION_KEY_LENGTH:])
    share = ciphertext + private.public_key().public_bytes_raw()
    return share, kem_secret + ecdh_secret


def split_hybrid_share(share: bytes, from_client: bool) -> tuple[bytes, bytes]:
    """(ML-KEM part, X25519 part) of an X25519MLKEM768 key_exchange, length checked."""
    kem_length = MLKEM768_ENCAPSULATION_KEY_LENGTH if from_client else MLKEM768_CIPHERTEXT_LENGTH
    if len(share) != kem_length + X25519_LENGTH:
        raise _illegal(f"X25519MLKEM768 share of {len(share)} octets")
    return share[:kem_length], share[kem_length:]
