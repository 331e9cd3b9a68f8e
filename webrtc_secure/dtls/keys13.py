"""TLS 1.3 key schedule (RFC 8446 7) with the DTLS 1.3 label prefix (RFC 9147 5.9).

Everything here is a pure function of its inputs. HKDF (RFC 5869) runs on
``hmac.digest``, the one-shot C implementation: every derivation in the schedule
asks for at most one hash length of output, so HKDF-Expand is one HMAC call.

A handshake derives some thirty secrets and keys per side, so the per-derivation
Python work counts (it cost more than the HMAC itself): the HKDF-Expand ``info`` of
the fixed, context-free labels ("key", "iv", "sn", "finished", "traffic upd",
"derived") is built once per prefix, hash and length and cached, and the two
values that do not depend on the connection without a PSK (the Early Secret and
the salt derived from it) are computed once per hash and prefix. Every public
function keeps its definition; tests/test_dtls13_keys.py checks them against RFC
8448 and against the plain construction.

The label prefix is a parameter everywhere: DTLS 1.3 writes ``"dtls13"`` where TLS
1.3 writes ``"tls13 "`` (both six octets), which is the only difference between the
two key schedules. The TLS prefix is what lets RFC 8448's traces check this module.

Names follow RFC 8446 7.1::

             0
             |
   PSK ->  HKDF-Extract = Early Secret
             |
             +-> Derive-Secret(., "derived", "")
             v
   (EC)DHE -> HKDF-Extract = Handshake Secret
             |
             +-> Derive-Secret(., "c hs traffic", CH..SH)
             +-> Derive-Secret(., "s hs traffic", CH..SH)
             +-> Derive-Secret(., "derived", "")
             v
   0 -> HKDF-Extract = Master Secret
             |
             +-> Derive-Secret(., "c ap traffic", CH..server Finished)
             +-> Derive-Secret(., "s ap traffic", CH..server Finished)
             +-> Derive-Secret(., "exp master", CH..server Finished)
             +-> Derive-Secret(., "res master", CH..client Finished)
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import NamedTuple

from webrtc_secure.dtls.keys import Prf

#: HkdfLabel prefixes (RFC 8446 7.1, RFC 9147 5.9)
TLS13_LABEL_PREFIX = b"tls13 "
DTLS13_LABEL_PREFIX = b"dtls13"

#: HandshakeType of the synthetic message that stands for ClientHello1 in the
#: transcript after a HelloRetryRequest (RFC 8446 4.4.1)
MESSAGE_HASH = 254

_DIGEST_SIZE = {"sha256": 32, "sha384": 48}
_U16 = struct.Struct("!H")


def digest_size(hash_name: str) -> int:
    """Output length of ``hash_name`` in octets (the schedule's secret length)."""
    size = _DIGEST_SIZE.get(hash_name)
    if size is None:
        size = hashlib.new(hash_name).digest_size
    return size


def empty_hash(hash_name: str) -> bytes:
    """Transcript-Hash of no messages, Hash("")."""
    return _EMPTY_HASH.get(hash_name) or hashlib.new(hash_name).digest()


_EMPTY_HASH = {name: hashlib.new(name).digest() for name in _DIGEST_SIZE}


# --- HKDF (RFC 5869) ------------------------------------------------------------------


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM); an empty salt means HashLen zero octets (RFC 5869 2.2)."""
    if not salt:
        salt = bytes(digest_size(hash_name))
    return hmac.digest(salt, ikm, hash_name)


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand(PRK, info, L); at most 255 hash lengths (RFC 5869 2.3)."""
    size = digest_size(hash_name)
    if length <= size:
        # the schedule's common case: T(1) alone
        return hmac.digest(prk, info + b"\x01", hash_name)[:length]
    if length > 255 * size:
        raise ValueError(f"HKDF-Expand cannot produce {length} octets with {hash_name}")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes((counter,)), hash_name)
        out += block
        counter += 1
    return out[:length]


def hkdf_label(
    label: bytes, context: bytes, length: int, prefix: bytes = DTLS13_LABEL_PREFIX
) -> bytes:
    """The HkdfLabel structure (RFC 8446 7.1): uint16 length, opaque
    label<7..255> = prefix + label, opaque context<0..255>."""
    full = prefix + label
    if not 7 <= len(full) <= 255:
        raise ValueError(f"HKDF label of {len(full)} octets (7..255 allowed)")
    if len(context) > 255:
        raise ValueError(f"HKDF context of {len(context)} octets (at most 255)")
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"HKDF output length {length} does not fit 16 bits")
    return _U16.pack(length) + bytes((len(full),)) + full + bytes((len(context),)) + context


def hkdf_expand_label(
    hash_name: str,
    secret: bytes,
    label: bytes,
    context: bytes,
    length: int,
    prefix: bytes = DTLS13_LABEL_PREFIX,
) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) with ``prefix`` ("dtls13" for
    DTLS 1.3, "tls13 " for TLS 1.3)."""
    if length <= _DIGEST_SIZE.get(hash_name, 0):
        # one HMAC over HkdfLabel || 0x01 (see hkdf_expand)
        if context:
            info = hkdf_label(label, context, length, prefix) + b"\x01"
        else:
            info = _fixed_info(label, length, prefix)
        return hmac.digest(secret, info, hash_name)[:length]
    return hkdf_expand(hash_name, secret, hkdf_label(label, context, length, prefix), length)


#: HkdfLabel || 0x01 of the context-free labels, by (label, length, prefix): the
#: schedule's own labels only (see _fixed_info), so the cache stays small
_FIXED_INFO: dict[tuple[bytes, int, bytes], bytes] = {}
_FIXED_INFO_LIMIT = 256


def _fixed_info(label: bytes, length: int, prefix: bytes) -> bytes:
    """The HKDF-Expand ``info`` (with T(1)'s counter octet) of a label with an empty
    context, built once: the traffic keys, Finished and KeyUpdate derive from the
    same few labels on every connection."""
    key = (label, length, prefix)
    info = _FIXED_INFO.get(key)
    if info is None:
        info = hkdf_label(label, b"", length, prefix) + b"\x01"
        if len(_FIXED_INFO) < _FIXED_INFO_LIMIT:
            _FIXED_INFO[key] = info
    return info


def derive_secret(
    hash_name: str,
    secret: bytes,
    label: bytes,
    transcript_hash: bytes,
    prefix: bytes = DTLS13_LABEL_PREFIX,
) -> bytes:
    """Derive-Secret(Secret, Label, Messages) given Transcript-Hash(Messages)."""
    return hkdf_expand_label(
        hash_name, secret, label, transcript_hash, digest_size(hash_name), prefix
    )


# --- the schedule ---------------------------------------------------------------------


def early_secret(hash_name: str, psk: bytes | None = None) -> bytes:
    """Early Secret = HKDF-Extract(0, PSK or HashLen zeros); no PSK in WebRTC."""
    size = digest_size(hash_name)
    if not psk:
        secret = _NO_PSK_EARLY.get(hash_name)
        if secret is None:
            secret = _NO_PSK_EARLY[hash_name] = hkdf_extract(hash_name, bytes(size), bytes(size))
        return secret
    return hkdf_extract(hash_name, bytes(size), psk)


#: the Early Secret without a PSK: a constant of the hash
_NO_PSK_EARLY: dict[str, bytes] = {}
#: Derive-Secret(Early Secret without a PSK, "derived", ""), by (hash, prefix)
_NO_PSK_DERIVED: dict[tuple[str, bytes], bytes] = {}


def _derived_salt(hash_name: str, early: bytes, prefix: bytes) -> bytes:
    """Derive-Secret(early, "derived", ""): the salt of the Handshake Secret, a
    constant (computed once) when ``early`` is the Early Secret without a PSK."""
    if hmac.compare_digest(early, early_secret(hash_name)):
        salt = _NO_PSK_DERIVED.get((hash_name, prefix))
        if salt is None:
            salt = derive_secret(hash_name, early, b"derived", empty_hash(hash_name), prefix)
            _NO_PSK_DERIVED[(hash_name, prefix)] = salt
        return salt
    return derive_secret(hash_name, early, b"derived", empty_hash(hash_name), prefix)


def handshake_secret(
    hash_name: str, early: bytes, shared_secret: bytes, prefix: bytes = DTLS13_LABEL_PREFIX
) -> bytes:
    """Handshake Secret = HKDF-Extract(Derive-Secret(early, "derived", ""), (EC)DHE)."""
    return hkdf_extract(hash_name, _derived_salt(hash_name, early, prefix), shared_secret)


def master_secret(hash_name: str, handshake: bytes, prefix: bytes = DTLS13_LABEL_PREFIX) -> bytes:
    """Master Secret = HKDF-Extract(Derive-Secret(handshake, "derived", ""), 0)."""
    salt = derive_secret(hash_name, handshake, b"derived", empty_hash(hash_name), prefix)
    return hkdf_extract(hash_name, salt, bytes(digest_size(hash_name)))


def _expand_all(hash_name: str, secret: bytes, infos: tuple[bytes, ...]) -> list[bytes]:
    """T(1) = HMAC(secret, info || 0x01) for each ``info`` (HKDF-Expand of one hash
    length, the info already carrying its counter octet), with the HMAC keyed once:
    the schedule derives two or three secrets from each of its secrets."""
    mac = Prf(hash_name, secret).hmac
    return [mac(info) for info in infos]


def _secret_info(hash_name: str, label: bytes, context: bytes, prefix: bytes) -> bytes:
    """The HKDF-Expand info (with T(1)'s counter octet) of Derive-Secret(., label, .)
    given Transcript-Hash(Messages) as ``context``."""
    return hkdf_label(label, context, digest_size(hash_name), prefix) + b"\x01"


class HandshakeSecrets(NamedTuple):
    """The secrets that protect epoch 2 (RFC 9147 6.1), from ClientHello..ServerHello."""

    handshake_secret: bytes
    client_handshake_traffic_secret: bytes
    server_handshake_traffic_secret: bytes
    master_secret: bytes


class ApplicationSecrets(NamedTuple):
    """The secrets of epoch 3 and the exporter, from ClientHello..server Finished."""

    client_application_traffic_secret: bytes
    server_application_traffic_secret: bytes
    exporter_master_secret: bytes


class KeySchedule:
    """One connection's TLS 1.3 key schedule for one hash and label prefix.

    Feed it the (EC)DHE or KEM shared secret with the ClientHello..ServerHello hash,
    then the ClientHello..server Finished hash; every secret stays readable for the
    key log (SSLKEYLOGFILE) and the exporter.
    """

    __slots__ = ("application", "early_secret", "handshake", "hash_name", "prefix")

    def __init__(self, hash_name: str, prefix: bytes = DTLS13_LABEL_PREFIX) -> None:
        self.hash_name = hash_name
        self.prefix = prefix
        self.early_secret = early_secret(hash_name)
        self.handshake: HandshakeSecrets | None = None
        self.application: ApplicationSecrets | None = None

    def derive_handshake(self, shared_secret: bytes, hello_hash: bytes) -> HandshakeSecrets:
        """Handshake traffic secrets; ``hello_hash`` = Transcript-Hash(CH..SH)."""
        h, p = self.hash_name, self.prefix
        hs = handshake_secret(h, self.early_secret, shared_secret, p)
        client, server, derived = _expand_all(
            h,
            hs,
            (
                _secret_info(h, b"c hs traffic", hello_hash, p),
                _secret_info(h, b"s hs traffic", hello_hash, p),
                _secret_info(h, b"derived", empty_hash(h), p),
            ),
        )
        self.handshake = HandshakeSecrets(
            handshake_secret=hs,
            client_handshake_traffic_secret=client,
            server_handshake_traffic_secret=server,
            # Master Secret = HKDF-Extract(Derive-Secret(handshake, "derived", ""), 0)
            master_secret=hkdf_extract(h, derived, bytes(digest_size(h))),
        )
        return self.handshake

    def derive_application(self, server_finished_hash: bytes) -> ApplicationSecrets:
        """Application traffic and exporter secrets; ``server_finished_hash`` =
        Transcript-Hash(CH..server Finished)."""
        if self.handshake is None:
            raise RuntimeError("derive_handshake must run before derive_application")
        h, p, ms = self.hash_name, self.prefix, self.handshake.master_secret
        th = server_finished_hash
        client, server, exporter = _expand_all(
            h,
            ms,
            (
                _secret_info(h, b"c ap traffic", th, p),
                _secret_info(h, b"s ap traffic", th, p),
                _secret_info(h, b"exp master", th, p),
            ),
        )
        self.application = ApplicationSecrets(
            client_application_traffic_secret=client,
            server_application_traffic_secret=server,
            exporter_master_secret=exporter,
        )
        return self.application

    def resumption_master_secret(self, client_finished_hash: bytes) -> bytes:
        """Derive-Secret(master, "res master", CH..client Finished); unused for WebRTC
        (no tickets) but part of the schedule RFC 8448 checks."""
        if self.handshake is None:
            raise RuntimeError("derive_handshake must run first")
        return derive_secret(
            self.hash_name,
            self.handshake.master_secret,
            b"res master",
            client_finished_hash,
            self.prefix,
        )

    def key_log_lines(self, client_random: bytes) -> list[str]:
        """NSS key-log lines (SSLKEYLOGFILE) for the secrets derived so far."""
        cr = client_random.hex()
        lines: list[str] = []
        if self.handshake is not None:
            lines.append(
                f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {cr} "
                f"{self.handshake.client_handshake_traffic_secret.hex()}"
            )
            lines.append(
                f"SERVER_HANDSHAKE_TRAFFIC_SECRET {cr} "
                f"{self.handshake.server_handshake_traffic_secret.hex()}"
            )
        if self.application is not None:
            app = self.application
            client_secret = app.client_application_traffic_secret.hex()
            server_secret = app.server_application_traffic_secret.hex()
            lines.append(f"CLIENT_TRAFFIC_SECRET_0 {cr} {client_secret}")
            lines.append(f"SERVER_TRAFFIC_SECRET_0 {cr} {server_secret}")
            lines.append(f"EXPORTER_SECRET {cr} {app.exporter_master_secret.hex()}")
        return lines


# --- what a traffic secret gives -------------------------------------------------------


class TrafficKeys(NamedTuple):
    """AEAD key, IV and the DTLS 1.3 record-number key derived from one traffic secret."""

    key: bytes
    iv: bytes
    #: RFC 9147 4.2.3 "sn" key; empty when derived with ``sn_key=False`` (TLS)
    sn_key: bytes


def traffic_keys(
    hash_name: str,
    secret: bytes,
    key_length: int,
    iv_length: int = 12,
    prefix: bytes = DTLS13_LABEL_PREFIX,
    sn_key: bool = True,
) -> TrafficKeys:
    """[sender]_write_key = HKDF-Expand-Label(secret, "key", "", key_length),
    [sender]_write_iv = HKDF-Expand-Label(secret, "iv", "", iv_length) (RFC 8446 7.3),
    and the record-number key HKDF-Expand-Label(secret, "sn", "", key_length)
    (RFC 9147 4.2.3)."""
    size = _DIGEST_SIZE.get(hash_name, 0)
    if key_length > size or iv_length > size:
        key = hkdf_expand_label(hash_name, secret, b"key", b"", key_length, prefix)
        iv = hkdf_expand_label(hash_name, secret, b"iv", b"", iv_length, prefix)
        sn = hkdf_expand_label(hash_name, secret, b"sn", b"", key_length, prefix) if sn_key else b""
        return TrafficKeys(key, iv, sn)
    # three HMACs under one secret, keyed once
    mac = Prf(hash_name, secret).hmac
    key = mac(_fixed_info(b"key", key_length, prefix))[:key_length]
    iv = mac(_fixed_info(b"iv", iv_length, prefix))[:iv_length]
    sn = mac(_fixed_info(b"sn", key_length, prefix))[:key_length] if sn_key else b""
    return TrafficKeys(key, iv, sn)


def next_traffic_secret(
    hash_name: str, secret: bytes, prefix: bytes = DTLS13_LABEL_PREFIX
) -> bytes:
    """application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 7.2)."""
    return hkdf_expand_label(hash_name, secret, b"traffic upd", b"", digest_size(hash_name), prefix)


def finished_key(hash_name: str, base_key: bytes, prefix: bytes = DTLS13_LABEL_PREFIX) -> bytes:
    """finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length)."""
    return hkdf_expand_label(hash_name, base_key, b"finished", b"", digest_size(hash_name), prefix)


def finished_verify_data(
    hash_name: str, base_key: bytes, transcript_hash: bytes, prefix: bytes = DTLS13_LABEL_PREFIX
) -> bytes:
    """Finished.verify_data = HMAC(finished_key, Transcript-Hash(...)) (RFC 8446 4.4.4);
    ``base_key`` is the sender's handshake traffic secret."""
    return hmac.digest(finished_key(hash_name, base_key, prefix), transcript_hash, hash_name)


def verify_finished(
    hash_name: str,
    base_key: bytes,
    transcript_hash: bytes,
    received: bytes,
    prefix: bytes = DTLS13_LABEL_PREFIX,
) -> bool:
    """True when ``received`` is the right verify_data (constant-time comparison)."""
    expected = finished_verify_data(hash_name, base_key, transcript_hash, prefix)
    return hmac.compare_digest(expected, received)


def export_keying_material(
    hash_name: str,
    exporter_master: bytes,
    label: bytes,
    context: bytes | None,
    length: int,
    prefix: bytes = DTLS13_LABEL_PREFIX,
) -> bytes:
    """TLS-Exporter(label, context_value, key_length) (RFC 8446 7.5)::

        HKDF-Expand-Label(Derive-Secret(exporter_master, label, ""),
                          "exporter", Hash(context_value), key_length)

    Under TLS 1.3 "no context" and "empty context" are the same thing: both hash
    the empty string. DTLS-SRTP passes ``b"EXTRACTOR-dtls_srtp"`` and no context.
    """
    secret = derive_secret(hash_name, exporter_master, label, empty_hash(hash_name), prefix)
    context_hash = hashlib.new(hash_name, context or b"").digest()
    return hkdf_expand_label(hash_name, secret, b"exporter", context_hash, length, prefix)


def message_hash(hash_name: str, client_hello1: bytes) -> bytes:
    """The synthetic ``message_hash`` handshake message that replaces ClientHello1 in
    the transcript after a HelloRetryRequest (RFC 8446 4.4.1): type 254, a 24-bit
    length and Hash(ClientHello1)."""
    digest = hashlib.new(hash_name, client_hello1).digest()
    return bytes((MESSAGE_HASH, 0, 0, len(digest))) + digest
