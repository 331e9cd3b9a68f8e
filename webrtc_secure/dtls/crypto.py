"""ECDHE key shares and handshake signatures on the ``cryptography`` package."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from webrtc_secure.dtls.messages import AlertDescription
from webrtc_secure.dtls.suites import NamedGroup, SignatureScheme
from webrtc_secure.errors import HandshakeFailure

_CURVES: dict[NamedGroup, ec.EllipticCurve] = {
    NamedGroup.SECP256R1: ec.SECP256R1(),
    NamedGroup.SECP384R1: ec.SECP384R1(),
}
_ECDH = ec.ECDH()
_POINT_LENGTH = {NamedGroup.SECP256R1: 65, NamedGroup.SECP384R1: 97, NamedGroup.X25519: 32}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class KeyShare:
    """An ephemeral ECDHE key pair on one named group."""

    def __init__(self, group: NamedGroup, random: Callable[[int], bytes]) -> None:
        self.group = group
        self._x25519: x25519.X25519PrivateKey | None = None
        self._ec: ec.EllipticCurvePrivateKey | None = None
        # with the system RNG, let OpenSSL generate the key (several times faster than
        # importing bytes); an injected RNG (deterministic tests) derives it instead
        native = random is os.urandom
        if group == NamedGroup.X25519:
            self._x25519 = (
                x25519.X25519PrivateKey.generate()
                if native
                else x25519.X25519PrivateKey.from_private_bytes(random(32))
            )
            self.public_bytes = self._x25519.public_key().public_bytes_raw()
        else:
            curve = _CURVES[group]
            if native:
                self._ec = ec.generate_private_key(curve)
            else:
                order = _ORDERS[group]
                scalar = int.from_bytes(random(curve.key_size // 8 + 8), "big") % (order - 1) + 1
                self._ec = ec.derive_private_key(scalar, curve)
            self.public_bytes = self._ec.public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )

    def exchange(self, peer_public: bytes) -> bytes:
        """The pre-master secret; invalid or low-order peer points are illegal_parameter."""
        if len(peer_public) != _POINT_LENGTH[self.group]:
            raise _illegal(f"{self.group.name} public key of {len(peer_public)} octets")
        try:
            if self._x25519 is not None:
                peer = x25519.X25519PublicKey.from_public_bytes(peer_public)
                shared = self._x25519.exchange(peer)
            else:
                assert self._ec is not None
                if peer_public[0] != 0x04:
                    raise _illegal("only uncompressed EC points are accepted")
                curve = _CURVES[self.group]
                point = ec.EllipticCurvePublicKey.from_encoded_point(curve, peer_public)
                shared = self._ec.exchange(_ECDH, point)
        except ValueError as exc:
            # cryptography refuses points off the curve and x25519 all-zero results
            raise _illegal(f"invalid {self.group.name} peer key: {exc}") from None
        if not any(shared):
            raise _illegal("ECDHE produced an all-zero shared secret")
        return shared


_ORDERS = {
    NamedGroup.SECP256R1: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    NamedGroup.SECP384R1: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def _illegal(message: str) -> HandshakeFailure:
    return HandshakeFailure(message, AlertDescription.ILLEGAL_PARAMETER)


_SHA256 = hashes.SHA256()
_SHA384 = hashes.SHA384()
_PREHASHED_SHA256 = utils.Prehashed(_SHA256)
_PREHASHED_SHA384 = utils.Prehashed(_SHA384)


class Digest(NamedTuple):
    """A message already hashed with its scheme's hash (:func:`scheme_hash`), to sign
    or verify without hashing it again (the handshake keeps a running hash)."""

    value: bytes


def scheme_hash(scheme: int) -> str:
    """The hashlib name of the hash a signature scheme signs with."""
    return "sha384" if scheme == SignatureScheme.ECDSA_SECP384R1_SHA384 else "sha256"


# Signature parameter objects are immutable: build them once, not per handshake
# (``ec.ECDSA(...)`` alone costs a few microseconds in cryptography's Python layer).
# Index [0] signs a message, [1] a Digest of it.
_ECDSA: dict[int, tuple[ec.ECDSA, ec.ECDSA]] = {
    SignatureScheme.ECDSA_SECP256R1_SHA256: (ec.ECDSA(_SHA256), ec.ECDSA(_PREHASHED_SHA256)),
    SignatureScheme.ECDSA_SECP384R1_SHA384: (ec.ECDSA(_SHA384), ec.ECDSA(_PREHASHED_SHA384)),
}
_RSA_HASH = (_SHA256, _PREHASHED_SHA256)
_PSS_SHA256 = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=_SHA256.digest_size)
_PKCS1 = padding.PKCS1v15()
_RSA_SCHEMES = (SignatureScheme.RSA_PSS_RSAE_SHA256, SignatureScheme.RSA_PKCS1_SHA256)
_P384_SCHEMES = (SignatureScheme.ECDSA_SECP384R1_SHA384, SignatureScheme.ECDSA_SECP256R1_SHA256)
_EC_SCHEMES = (SignatureScheme.ECDSA_SECP256R1_SHA256, SignatureScheme.ECDSA_SECP384R1_SHA384)
#: concrete key class -> "ec", "rsa" or None (``isinstance`` on cryptography's ABCs
#: costs microseconds per call; the answer per concrete class never changes)
_KIND: dict[type, str | None] = {}


def key_kind(key: object) -> str | None:
    """ "ec" or "rsa" for the keys DTLS here signs or verifies with, else None."""
    cls = type(key)
    try:
        return _KIND[cls]
    except KeyError:
        pass
    kind: str | None = None
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        kind = "ec"
    elif isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        kind = "rsa"
    _KIND[cls] = kind
    return kind


def is_rsa(key: PrivateKey | PublicKey) -> bool:
    """True for an RSA key, False for an EC one."""
    return key_kind(key) == "rsa"


def usable_schemes(key: PrivateKey | PublicKey) -> tuple[SignatureScheme, ...]:
    """Schemes this key can produce or verify, in our order of preference."""
    if is_rsa(key):
        return _RSA_SCHEMES
    # TLS 1.2 does not tie the ECDSA hash to the curve; prefer the matching one.
    ec_key = cast(ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey, key)
    if ec_key.curve.name == "secp384r1":
        return _P384_SCHEMES
    return _EC_SCHEMES


def choose_scheme(key: PrivateKey, offered: list[int]) -> SignatureScheme | None:
    """Our preferred scheme for ``key`` among those the peer offered."""
    for scheme in usable_schemes(key):
        if scheme in offered:
            return scheme
    return None


def sign(key: PrivateKey, scheme: SignatureScheme, data: bytes | Digest) -> bytes:
    """Sign ``data`` (the message, or its :class:`Digest` under the scheme's hash)."""
    if isinstance(data, Digest):
        message, prehashed = data.value, 1
    else:
        message, prehashed = data, 0
    # the scheme was chosen among this key's usable_schemes: no isinstance needed
    ecdsa = _ECDSA.get(scheme)
    if ecdsa is not None and not is_rsa(key):
        return cast(ec.EllipticCurvePrivateKey, key).sign(message, ecdsa[prehashed])
    rsa_key = cast(rsa.RSAPrivateKey, key)
    if scheme == SignatureScheme.RSA_PSS_RSAE_SHA256:
        return rsa_key.sign(message, _PSS_SHA256, _RSA_HASH[prehashed])
    return rsa_key.sign(message, _PKCS1, _RSA_HASH[prehashed])


def verify(
    public_key: PublicKey,
    scheme: int,
    signature: bytes,
    data: bytes | Digest,
    schemes: tuple[SignatureScheme, ...] | None = None,
) -> None:
    """Check a handshake signature over ``data`` (the message or its :class:`Digest`);
    raises HandshakeFailure(decrypt_error).

    ``schemes`` are the key's :func:`usable_schemes` when the caller has them already.
    """
    if scheme not in (schemes if schemes is not None else usable_schemes(public_key)):
        raise HandshakeFailure(
            f"signature scheme {scheme:#06x} does not fit the peer's key",
            AlertDescription.ILLEGAL_PARAMETER,
        )
    if isinstance(data, Digest):
        message, prehashed = data.value, 1
    else:
        message, prehashed = data, 0
    try:
        # the scheme fits the key (checked above): no isinstance needed
        ecdsa = _ECDSA.get(scheme)
        if ecdsa is not None:
            cast(ec.EllipticCurvePublicKey, public_key).verify(signature, message, ecdsa[prehashed])
        elif scheme == SignatureScheme.RSA_PSS_RSAE_SHA256:
            cast(rsa.RSAPublicKey, public_key).verify(
                signature, message, _PSS_SHA256, _RSA_HASH[prehashed]
            )
        else:
            cast(rsa.RSAPublicKey, public_key).verify(
                signature, message, _PKCS1, _RSA_HASH[prehashed]
            )
    except InvalidSignature:
        raise HandshakeFailure(
            "handshake signature does not verify", AlertDescription.DECRYPT_ERROR
        ) from None
