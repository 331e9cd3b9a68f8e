"""TLS 1.3 handshake messages and extensions as DTLS 1.3 carries them (RFC 8446 4,
RFC 9147 5).

The message bodies are TLS 1.3's with two DTLS differences: ClientHello keeps the
``legacy_cookie`` field (always empty in DTLS 1.3, RFC 9147 5.3) and the legacy
version fields say {254, 253}. Each codec takes ``dtls`` where the forms differ, so
that RFC 8448's TLS messages and a TLS 1.3 peer (OpenSSL) can check them.

Framing is not here: DTLS 1.3 keeps DTLS 1.2's 12-octet handshake header (messages.py
``framed_message`` / ``split_handshake_fragments``), but the transcript hashes the TLS
form with the 4-octet header (RFC 9147 5.2), which :func:`transcript_message` builds.

Every parser is bounds checked through :class:`~webrtc_secure.dtls.codec.Reader` and
raises :class:`~webrtc_secure.errors.MalformedPacket` (a decode_error for the
handshake layer); values that parse but that TLS 1.3 forbids in a field (a
compression method other than null, a KeyUpdate value other than 0 or 1) are
malformed too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from webrtc_secure.dtls.codec import Reader, u16_list, vec
from webrtc_secure.dtls.messages import (
    AlertDescription,
    Extension,
    find_extension,
    parse_extensions,
    serialize_extensions,
)
from webrtc_secure.errors import HandshakeFailure, MalformedPacket

RANDOM_LENGTH = 32
DTLS_1_3 = 0xFEFC
DTLS_1_2 = 0xFEFD
TLS_1_3 = 0x0304
TLS_1_2 = 0x0303

#: ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 4.1.3)
HELLO_RETRY_REQUEST_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
#: the last 8 octets of ServerHello.random when a 1.3-capable server negotiates
#: 1.2 ("DOWNGRD" 01) or below ("DOWNGRD" 00), RFC 8446 4.1.3
DOWNGRADE_TLS12 = b"DOWNGRD\x01"
DOWNGRADE_TLS11 = b"DOWNGRD\x00"


class HandshakeType13(IntEnum):
    """Handshake message types of TLS/DTLS 1.3 (RFC 8446 4, RFC 9147 5.2)."""

    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    NEW_SESSION_TICKET = 4
    END_OF_EARLY_DATA = 5
    ENCRYPTED_EXTENSIONS = 8
    REQUEST_CONNECTION_ID = 9
    NEW_CONNECTION_ID = 10
    CERTIFICATE = 11
    CERTIFICATE_REQUEST = 13
    CERTIFICATE_VERIFY = 15
    FINISHED = 20
    KEY_UPDATE = 24
    MESSAGE_HASH = 254


class ExtensionType13(IntEnum):
    """Extensions the DTLS 1.3 handshake here reads or writes (IANA ids)."""

    SUPPORTED_GROUPS = 10
    SIGNATURE_ALGORITHMS = 13
    USE_SRTP = 14
    RECORD_SIZE_LIMIT = 28
    SUPPORTED_VERSIONS = 43
    COOKIE = 44
    PSK_KEY_EXCHANGE_MODES = 45
    CERTIFICATE_AUTHORITIES = 47
    SIGNATURE_ALGORITHMS_CERT = 50
    KEY_SHARE = 51


# --- framing for the transcript --------------------------------------------------------


def transcript_message(msg_type: int, body: bytes) -> bytes:
    """A handshake message in TLS form (type, 24-bit length, body): what the DTLS 1.3
    transcript hashes, without message_seq and fragment fields (RFC 9147 5.2)."""
    if len(body) > 0xFFFFFF:
        raise ValueError("handshake message over 2^24 octets")
    return bytes((msg_type,)) + len(body).to_bytes(3, "big") + body


def parse_transcript_message(data: bytes) -> tuple[int, bytes]:
    """(type, body) of one TLS-form handshake message filling ``data`` exactly."""
    r = Reader(data)
    msg_type = r.u8()
    body = r.vector(3)
    r.expect_end()
    return msg_type, body


# --- extensions ------------------------------------------------------------------------


class KeyShareEntry(NamedTuple):
    """One key share: the group and its opaque key_exchange (RFC 8446 4.2.8)."""

    group: int
    key_exchange: bytes


def encode_supported_versions_client(versions: Sequence[int]) -> bytes:
    """ClientHello supported_versions: ProtocolVersion versions<2..254>."""
    return u16_list(tuple(versions), 1)


def parse_supported_versions_client(data: bytes) -> list[int]:
    r = Reader(data)
    versions = r.uint16_list(1, minimum=2)
    r.expect_end()
    return versions


def encode_supported_versions_server(version: int) -> bytes:
    """ServerHello/HelloRetryRequest supported_versions: the selected version."""
    return version.to_bytes(2, "big")


def parse_supported_versions_server(data: bytes) -> int:
    if len(data) != 2:
        raise MalformedPacket(f"selected supported_versions of {len(data)} octets")
    return (data[0] << 8) | data[1]


def _encode_entry(entry: KeyShareEntry) -> bytes:
    return entry.group.to_bytes(2, "big") + vec(entry.key_exchange, 2)


def _read_entry(r: Reader) -> KeyShareEntry:
    group = r.u16()
    return KeyShareEntry(group, r.vector(2, minimum=1))


def encode_key_share_client(entries: Sequence[KeyShareEntry]) -> bytes:
    """ClientHello key_share: KeyShareEntry client_shares<0..2^16-1>."""
    return vec(b"".join(_encode_entry(e) for e in entries), 2)


def parse_key_share_client(data: bytes) -> list[KeyShareEntry]:
    """The client's shares; a group offered twice is malformed (RFC 8446 4.2.8)."""
    outer = Reader(data)
    r = Reader(outer.vector(2))
    outer.expect_end()
    entries: list[KeyShareEntry] = []
    seen: set[int] = set()
    while r.remaining:
        entry = _read_entry(r)
        if entry.group in seen:
            raise MalformedPacket(f"key_share offers group {entry.group:#06x} twice")
        seen.add(entry.group)
        entries.append(entry)
    return entries


def encode_key_share_server(entry: KeyShareEntry) -> bytes:
    """ServerHello key_share: the one KeyShareEntry server_share."""
    return _encode_entry(entry)


def parse_key_share_server(data: bytes) -> KeyShareEntry:
    r = Reader(data)
    entry = _read_entry(r)
    r.expect_end()
    return entry


def encode_key_share_hrr(group: int) -> bytes:
    """HelloRetryRequest key_share: NamedGroup selected_group."""
    return group.to_bytes(2, "big")


def parse_key_share_hrr(data: bytes) -> int:
    if len(data) != 2:
        raise MalformedPacket(f"HelloRetryRequest key_share of {len(data)} octets")
    return (data[0] << 8) | data[1]


def encode_cookie(cookie: bytes) -> bytes:
    """cookie: opaque cookie<1..2^16-1> (RFC 8446 4.2.2)."""
    if not cookie:
        raise ValueError("a cookie extension carries at least one octet")
    return vec(cookie, 2)


def parse_cookie(data: bytes) -> bytes:
    r = Reader(data)
    cookie = r.vector(2, minimum=1)
    r.expect_end()
    return cookie


def encode_u16_list_extension(values: Sequence[int]) -> bytes:
    """supported_groups / signature_algorithms / signature_algorithms_cert."""
    return u16_list(tuple(values))


def parse_u16_list(data: bytes) -> list[int]:
    """A non-empty uint16 list filling the extension."""
    r = Reader(data)
    values = r.uint16_list(2, minimum=2)
    r.expect_end()
    return values


def _extensions_tuple(r: Reader) -> tuple[Extension, ...]:
    return tuple(parse_extensions(r))


def _required_extensions(r: Reader) -> tuple[Extension, ...]:
    """An extensions block that must be present (possibly empty): messages other
    than the hellos always carry the length field."""
    if r.remaining < 2:
        raise MalformedPacket("truncated: the extensions block is missing")
    return _extensions_tuple(r)


def _extensions_block(extensions: tuple[Extension, ...]) -> bytes:
    """The extensions block with its length, even when empty."""
    return serialize_extensions(list(extensions)) or b"\x00\x00"


# --- messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientHello13:
    """ClientHello (RFC 8446 4.1.2; RFC 9147 5.3 adds legacy_cookie for DTLS)."""

    random: bytes
    cipher_suites: tuple[int, ...]
    extensions: tuple[Extension, ...]
    legacy_session_id: bytes = b""
    legacy_cookie: bytes = b""
    legacy_version: int = DTLS_1_2
    legacy_compression_methods: bytes = b"\x00"

    def extension(self, ext_type: int) -> bytes | None:
        return find_extension(list(self.extensions), ext_type)

    def serialize(self, dtls: bool = True) -> bytes:
        if len(self.random) != RANDOM_LENGTH:
            raise ValueError("ClientHello.random is 32 octets")
        out = self.legacy_version.to_bytes(2, "big") + self.random + vec(self.legacy_session_id, 1)
        if dtls:
            out += vec(self.legacy_cookie, 1)
        return (
            out
            + u16_list(self.cipher_suites)
            + vec(self.legacy_compression_methods, 1)
            + _extensions_block(self.extensions)
        )

    @classmethod
    def parse(cls, body: bytes, dtls: bool = True) -> ClientHello13:
        r = Reader(body)
        legacy_version = r.u16()
        random = r.read(RANDOM_LENGTH)
        session_id = r.vector(1, maximum=32)
        cookie = r.vector(1) if dtls else b""
        suites = tuple(r.uint16_list(2, minimum=2))
        compression = r.vector(1, minimum=1)
        # a 1.3 hello always has extensions (supported_versions at least)
        extensions = _required_extensions(r)
        r.expect_end()
        return cls(random, suites, extensions, session_id, cookie, legacy_version, compression)


@dataclass(frozen=True)
class ServerHello13:
    """ServerHello, and HelloRetryRequest when ``random`` is the special value
    (RFC 8446 4.1.3, 4.1.4)."""

    random: bytes
    cipher_suite: int
    extensions: tuple[Extension, ...]
    #: DTLS 1.3 servers do not echo the client's session id (RFC 9147 5)
    legacy_session_id_echo: bytes = b""
    legacy_version: int = DTLS_1_2

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HELLO_RETRY_REQUEST_RANDOM

    @property
    def downgrade_sentinel(self) -> bytes | None:
        """The RFC 8446 4.1.3 downgrade marker in ``random``, if any."""
        tail = self.random[-8:]
        return tail if tail in (DOWNGRADE_TLS12, DOWNGRADE_TLS11) else None

    def extension(self, ext_type: int) -> bytes | None:
        return find_extension(list(self.extensions), ext_type)

    def serialize(self) -> bytes:
        if len(self.random) != RANDOM_LENGTH:
            raise ValueError("ServerHello.random is 32 octets")
        return (
            self.legacy_version.to_bytes(2, "big")
            + self.random
            + vec(self.legacy_session_id_echo, 1)
            + self.cipher_suite.to_bytes(2, "big")
            + b"\x00"
            + _extensions_block(self.extensions)
        )

    @classmethod
    def parse(cls, body: bytes) -> ServerHello13:
        r = Reader(body)
        legacy_version = r.u16()
        random = r.read(RANDOM_LENGTH)
        session_id = r.vector(1, maximum=32)
        suite = r.u16()
        if r.u8() != 0:
            raise MalformedPacket("ServerHello compression method is not null")
        extensions = _required_extensions(r)
        r.expect_end()
        return cls(random, suite, extensions, session_id, legacy_version)


@dataclass(frozen=True)
class EncryptedExtensions:
    """EncryptedExtensions (RFC 8446 4.3.1): where the use_srtp answer goes."""

    extensions: tuple[Extension, ...]

    def extension(self, ext_type: int) -> bytes | None:
        return find_extension(list(self.extensions), ext_type)

    def serialize(self) -> bytes:
        return _extensions_block(self.extensions)

    @classmethod
    def parse(cls, body: bytes) -> EncryptedExtensions:
        r = Reader(body)
        extensions = _required_extensions(r)
        r.expect_end()
        return cls(extensions)


@dataclass(frozen=True)
class CertificateRequest13:
    """CertificateRequest (RFC 8446 4.3.2); signature_algorithms is mandatory."""

    extensions: tuple[Extension, ...]
    certificate_request_context: bytes = b""

    def extension(self, ext_type: int) -> bytes | None:
        return find_extension(list(self.extensions), ext_type)

    def serialize(self) -> bytes:
        return vec(self.certificate_request_context, 1) + _extensions_block(self.extensions)

    @classmethod
    def parse(cls, body: bytes) -> CertificateRequest13:
        r = Reader(body)
        context = r.vector(1)
        extensions = _required_extensions(r)
        r.expect_end()
        if find_extension(list(extensions), ExtensionType13.SIGNATURE_ALGORITHMS) is None:
            raise MalformedPacket("CertificateRequest without signature_algorithms")
        return cls(extensions, context)


class CertificateEntry(NamedTuple):
    """One certificate of a chain with its per-entry extensions (RFC 8446 4.4.2)."""

    cert_data: bytes
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class Certificate13:
    """Certificate (RFC 8446 4.4.2): X.509 entries, end-entity first."""

    entries: tuple[CertificateEntry, ...]
    certificate_request_context: bytes = b""

    def serialize(self) -> bytes:
        chain = b"".join(
            vec(e.cert_data, 3) + _extensions_block(e.extensions) for e in self.entries
        )
        return vec(self.certificate_request_context, 1) + vec(chain, 3)

    @classmethod
    def parse(cls, body: bytes) -> Certificate13:
        r = Reader(body)
        context = r.vector(1)
        chain = Reader(r.vector(3))
        r.expect_end()
        entries: list[CertificateEntry] = []
        while chain.remaining:
            cert_data = chain.vector(3, minimum=1)
            entries.append(CertificateEntry(cert_data, _required_extensions(chain)))
        return cls(tuple(entries), context)


@dataclass(frozen=True)
class CertificateVerify13:
    """CertificateVerify (RFC 8446 4.4.3): scheme and signature over
    :func:`certificate_verify_content`."""

    algorithm: int
    signature: bytes

    def serialize(self) -> bytes:
        return self.algorithm.to_bytes(2, "big") + vec(self.signature, 2)

    @classmethod
    def parse(cls, body: bytes) -> CertificateVerify13:
        r = Reader(body)
        algorithm = r.u16()
        signature = r.vector(2, minimum=1)
        r.expect_end()
        return cls(algorithm, signature)


SERVER_CERTIFICATE_VERIFY_CONTEXT = b"TLS 1.3, server CertificateVerify"
CLIENT_CERTIFICATE_VERIFY_CONTEXT = b"TLS 1.3, client CertificateVerify"


def certificate_verify_content(transcript_hash: bytes, server: bool) -> bytes:
    """What a CertificateVerify signs: 64 spaces, the context string, a zero octet
    and Transcript-Hash(Handshake Context, Certificate) (RFC 8446 4.4.3; DTLS 1.3
    keeps the "TLS 1.3" strings)."""
    context = SERVER_CERTIFICATE_VERIFY_CONTEXT if server else CLIENT_CERTIFICATE_VERIFY_CONTEXT
    return b" " * 64 + context + b"\x00" + transcript_hash


@dataclass(frozen=True)
class Finished13:
    """Finished (RFC 8446 4.4.4): verify_data of the hash's length."""

    verify_data: bytes

    def serialize(self) -> bytes:
        return self.verify_data

    @classmethod
    def parse(cls, body: bytes, hash_length: int) -> Finished13:
        if len(body) != hash_length:
            raise MalformedPacket(f"Finished of {len(body)} octets, expected {hash_length}")
        return cls(body)


@dataclass(frozen=True)
class KeyUpdate:
    """KeyUpdate (RFC 8446 4.6.3): whether the peer should update its keys too."""

    update_requested: bool

    def serialize(self) -> bytes:
        return b"\x01" if self.update_requested else b"\x00"

    @classmethod
    def parse(cls, body: bytes) -> KeyUpdate:
        if len(body) != 1 or body[0] > 1:
            raise MalformedPacket("KeyUpdate is one octet, 0 or 1")
        return cls(body[0] == 1)


# --- version negotiation (RFC 8446 4.1.3, 4.2.1; RFC 9147 5.3) ------------------------


def select_version(offered: Sequence[int], supported: Sequence[int]) -> int | None:
    """As server: the first of our ``supported`` versions (in our preference order)
    that the client's supported_versions offered, or None."""
    for version in supported:
        if version in offered:
            return version
    return None


def with_downgrade_sentinel(random: bytes, negotiated: int) -> bytes:
    """As a 1.3-capable server negotiating (D)TLS 1.2: ServerHello.random with its
    last 8 octets set to "DOWNGRD" 01 (RFC 8446 4.1.3). Anything older gets 00."""
    if len(random) != RANDOM_LENGTH:
        raise ValueError("ServerHello.random is 32 octets")
    sentinel = DOWNGRADE_TLS12 if negotiated in (DTLS_1_2, TLS_1_2) else DOWNGRADE_TLS11
    return random[:24] + sentinel


def check_downgrade(server_random: bytes, negotiated: int, we_offered_1_3: bool) -> None:
    """As client: refuse a ServerHello that picked an older version although we
    offered 1.3 and the server's random says it supports 1.3 (RFC 8446 4.1.3:
    illegal_parameter)."""
    if not we_offered_1_3 or negotiated in (DTLS_1_3, TLS_1_3):
        return
    if server_random[-8:] in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
        raise HandshakeFailure(
            "ServerHello picked an older version but carries the TLS 1.3 downgrade sentinel",
            AlertDescription.ILLEGAL_PARAMETER,
        )
