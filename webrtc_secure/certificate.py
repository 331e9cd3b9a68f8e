"""Self-signed certificates for DTLS and their RFC 8122 fingerprints.

WebRTC authenticates peers by the hash of their certificate carried in the session
description (``a=fingerprint:sha-256 AB:CD:...``), not by a CA chain, so a fresh
self-signed certificate per peer is the norm.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from webrtc_secure.errors import CertificateError, SdpError

#: RFC 8122 hash function names (lower case, as browsers write them) -> hashlib names.
FINGERPRINT_ALGORITHMS: dict[str, str] = {
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: hashlib constructors for the RFC 8122 names (direct, not through ``hashlib.new``)
_HASHES = {name: getattr(hashlib, lib) for name, lib in FINGERPRINT_ALGORITHMS.items()}


def fingerprint_of_der(der: bytes, algorithm: str = "sha-256") -> str:
    """RFC 8122 fingerprint text (upper-case hex, colon separated) of a DER certificate."""
    name = FINGERPRINT_ALGORITHMS.get(algorithm.lower())
    if name is None:
        raise SdpError(f"unsupported fingerprint hash function {algorithm!r}")
    return ":".join(f"{b:02X}" for b in hashlib.new(name, der).digest())


@dataclass(frozen=True)
class Fingerprint:
    """One ``a=fingerprint`` value: hash function name and digest bytes."""

    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        """Parse ``"sha-256 AB:CD:..."`` (the attribute value without ``a=fingerprint:``).

        Hash names are matched case-insensitively; the hex must be upper case pairs
        separated by colons (RFC 8122 grammar) and as long as the hash's output.
        """
        parts = text.strip().split()
        if len(parts) != 2:
            raise SdpError(f"malformed fingerprint {text!r}")
        algorithm = parts[0].lower()
        name = FINGERPRINT_ALGORITHMS.get(algorithm)
        if name is None:
            raise SdpError(f"unsupported fingerprint hash function {parts[0]!r}")
        pairs = parts[1].split(":")
        if any(len(p) != 2 or p.upper() != p for p in pairs):
            raise SdpError(f"malformed fingerprint digest {parts[1]!r}")
        try:
            digest = bytes.fromhex("".join(pairs))
        except ValueError as exc:
            raise SdpError(f"malformed fingerprint digest {parts[1]!r}") from exc
        if len(digest) != hashlib.new(name).digest_size:
            raise SdpError(f"{algorithm} fingerprint has the wrong length ({len(digest)} octets)")
        return cls(algorithm, digest)

    def __str__(self) -> str:
        return f"{self.algorithm} {':'.join(f'{b:02X}' for b in self.digest)}"

    def matches(self, der: bytes) -> bool:
        """Constant-time comparison of this fingerprint with the hash of ``der``."""
        actual = _HASHES[self.algorithm](der).digest()
        return hmac.compare_digest(actual, self.digest)


class Certificate:
    """A certificate with its private key, as used by one DTLS endpoint.

    Every peer has one for its whole life, so it keeps only the DER form and the key:
    the parsed certificate (about 0.8 KB inside OpenSSL) is rebuilt on demand.
    """

    __slots__ = ("_is_rsa", "der", "private_key")

    def __init__(self, cert: x509.Certificate, private_key: PrivateKey) -> None:
        if not isinstance(private_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise CertificateError("only ECDSA and RSA private keys are supported")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if cert.public_key().public_bytes(der, spki) != private_key.public_key().public_bytes(
            der, spki
        ):
            raise CertificateError("the private key does not belong to the certificate")
        self.private_key = private_key
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self._is_rsa = isinstance(private_key, rsa.RSAPrivateKey)

    @classmethod
    def generate(
        cls,
        *,
        curve: ec.EllipticCurve | None = None,
        common_name: str = "webrtc_secure",
        valid_days: int = 30,
    ) -> Certificate:
        """A fresh self-signed ECDSA certificate (P-256 unless ``curve`` says otherwise)."""
        key = ec.generate_private_key(curve or ec.SECP256R1())
        return cls(_self_sign(key, common_name, valid_days), key)

    @classmethod
    def generate_rsa(cls, *, bits: int = 2048, common_name: str = "webrtc_secure") -> Certificate:
        """A fresh self-signed RSA certificate (for peers or tests that need RSA)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(_self_sign(key, common_name, 30), key)

    @classmethod
    def from_pem(
        cls, cert_pem: bytes, key_pem: bytes, password: bytes | None = None
    ) -> Certificate:
        """Load a certificate and its private key from PEM bytes."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=password)
        except (ValueError, TypeError) as exc:
            raise CertificateError(f"cannot load PEM certificate or key: {exc}") from exc
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise CertificateError("only ECDSA and RSA private keys are supported")
        return cls(cert, key)

    @classmethod
    def load(cls, cert_path: str | Path, key_path: str | Path) -> Certificate:
        """Load a certificate and key from PEM files."""
        try:
            return cls.from_pem(Path(cert_path).read_bytes(), Path(key_path).read_bytes())
        except OSError as exc:
            raise CertificateError(f"cannot read certificate files: {exc}") from exc

    @property
    def x509(self) -> x509.Certificate:
        """The certificate, parsed (for an API that takes ``cryptography``'s object)."""
        return x509.load_der_x509_certificate(self.der)

    def cert_pem(self) -> bytes:
        """The certificate in PEM form."""
        return self.x509.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key in unencrypted PKCS#8 PEM form."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        """RFC 8122 fingerprint text of this certificate, e.g. ``"7F:3D:..."``."""
        return fingerprint_of_der(self.der, algorithm)

    def fingerprints(self) -> list[Fingerprint]:
        """The fingerprint to put in a session description (sha-256)."""
        return [Fingerprint.parse(f"sha-256 {self.fingerprint('sha-256')}")]

    @property
    def is_rsa(self) -> bool:
        """True when the key is RSA (ECDHE_RSA suites), False for ECDSA."""
        return self._is_rsa


def _self_sign(key: PrivateKey, common_name: str, valid_days: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    algorithm = hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(8), "big") >> 1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .sign(key, algorithm)
    )
