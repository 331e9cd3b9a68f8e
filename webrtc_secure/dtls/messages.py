"""DTLS 1.2 handshake messages and extensions: one frozen dataclass per message,
``parse(body)`` and ``serialize()`` on each (RFC 5246 7.4, RFC 6347 4.2, RFC 8422,
RFC 5764 4.1.1, RFC 7627, RFC 5746)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from webrtc_secure.dtls.codec import Reader, u16_list, vec
from webrtc_secure.errors import MalformedPacket

HANDSHAKE_HEADER_LENGTH = 12
_HS_HEADER = struct.Struct("!B3sH3s3s")
RANDOM_LENGTH = 32
MAX_COOKIE_LENGTH = 255


class HandshakeType(IntEnum):
    HELLO_REQUEST = 0
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    HELLO_VERIFY_REQUEST = 3
    NEW_SESSION_TICKET = 4
    CERTIFICATE = 11
    SERVER_KEY_EXCHANGE = 12
    CERTIFICATE_REQUEST = 13
    SERVER_HELLO_DONE = 14
    CERTIFICATE_VERIFY = 15
    CLIENT_KEY_EXCHANGE = 16
    FINISHED = 20


class ExtensionType(IntEnum):
    SUPPORTED_GROUPS = 10
    EC_POINT_FORMATS = 11
    SIGNATURE_ALGORITHMS = 13
    USE_SRTP = 14
    EXTENDED_MASTER_SECRET = 23
    RENEGOTIATION_INFO = 0xFF01


class AlertLevel(IntEnum):
    WARNING = 1
    FATAL = 2


class AlertDescription(IntEnum):
    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    RECORD_OVERFLOW = 22
    HANDSHAKE_FAILURE = 40
    BAD_CERTIFICATE = 42
    UNSUPPORTED_CERTIFICATE = 43
    CERTIFICATE_UNKNOWN = 46
    ILLEGAL_PARAMETER = 47
    UNKNOWN_CA = 48
    ACCESS_DENIED = 49
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    PROTOCOL_VERSION = 70
    INSUFFICIENT_SECURITY = 71
    INTERNAL_ERROR = 80
    USER_CANCELED = 90
    NO_RENEGOTIATION = 100
    UNSUPPORTED_EXTENSION = 110


#: TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 3.3)
EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF
EC_CURVE_TYPE_NAMED = 3
CLIENT_CERT_ECDSA_SIGN = 64
CLIENT_CERT_RSA_SIGN = 1


def enum_name(enum_cls: type[IntEnum], value: int) -> str:
    """The member name for ``value`` or the number itself (for logs and errors)."""
    try:
        return enum_cls(value).name
    except ValueError:
        return str(value)


# --- handshake framing ----------------------------------------------------------------


@dataclass(frozen=True)
class HandshakeFragment:
    """One handshake fragment as carried in a record (RFC 6347 4.2.2)."""

    msg_type: int
    length: int
    message_seq: int
    fragment_offset: int
    body: bytes

    @property
    def fragment_length(self) -> int:
        return len(self.body)

    def serialize(self) -> bytes:
        return (
            encode_handshake_header(
                self.msg_type, self.length, self.message_seq, self.fragment_offset, len(self.body)
            )
            + self.body
        )


def encode_handshake_header(
    msg_type: int, length: int, message_seq: int, offset: int, fragment_length: int
) -> bytes:
    return _HS_HEADER.pack(
        msg_type,
        length.to_bytes(3, "big"),
        message_seq,
        offset.to_bytes(3, "big"),
        fragment_length.to_bytes(3, "big"),
    )


def framed_message(msg_type: int, message_seq: int, body: bytes) -> bytes:
    """A whole message with its unfragmented 12-octet header: the transcript form."""
    return encode_handshake_header(msg_type, len(body), message_seq, 0, len(body)) + body


def parse_handshake_fragments(payload: bytes) -> list[HandshakeFragment]:
    """Split a handshake record's payload into fragments; raises MalformedPacket."""
    fragments = []
    offset = 0
    end = len(payload)
    while offset < end:
        if end - offset < HANDSHAKE_HEADER_LENGTH:
            raise MalformedPacket("truncated handshake fragment header")
        msg_type, length3, message_seq, offset3, frag3 = _HS_HEADER.unpack_from(payload, offset)
        length = int.from_bytes(length3, "big")
        fragment_offset = int.from_bytes(offset3, "big")
        fragment_length = int.from_bytes(frag3, "big")
        offset += HANDSHAKE_HEADER_LENGTH
        if fragment_length > end - offset:
            raise MalformedPacket("handshake fragment longer than its record")
        if fragment_offset + fragment_length > length:
            raise MalformedPacket("handshake fragment extends past its message length")
        body = payload[offset : offset + fragment_length]
        offset += fragment_length
        fragments.append(HandshakeFragment(msg_type, length, message_seq, fragment_offset, body))
    return fragments


# --- extensions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    type: int
    data: bytes


def parse_extensions(r: Reader) -> list[Extension]:
    """The optional extensions block of a hello; duplicates are a decode error."""
    if not r.remaining:
        return []
    block = Reader(r.vector(2))
    extensions: list[Extension] = []
    seen: set[int] = set()
    while block.remaining:
        ext_type = block.uint(2)
        data = block.vector(2)
        if ext_type in seen:
            raise MalformedPacket(f"duplicate extension {ext_type}")
        seen.add(ext_type)
        extensions.append(Extension(ext_type, data))
    return extensions


def serialize_extensions(extensions: list[Extension]) -> bytes:
    if not extensions:
        return b""
    return vec(b"".join(e.type.to_bytes(2, "big") + vec(e.data, 2) for e in extensions), 2)


def find_extension(extensions: list[Extension], ext_type: int) -> bytes | None:
    for e in extensions:
        if e.type == ext_type:
            return e.data
    return None


def parse_u16_list_extension(data: bytes) -> list[int]:
    r = Reader(data)
    values = r.uint16_list(2, minimum=2)
    r.expect_end()
    return values


def parse_use_srtp(data: bytes) -> tuple[list[int], bytes]:
    """use_srtp: (profile ids, MKI)."""
    r = Reader(data)
    profiles = r.uint16_list(2, minimum=2)
    mki = r.vector(1)
    r.expect_end()
    return profiles, mki


def encode_use_srtp(profiles: list[int], mki: bytes = b"") -> bytes:
    return u16_list(profiles) + vec(mki, 1)


def parse_ec_point_formats(data: bytes) -> bytes:
    r = Reader(data)
    formats = r.vector(1, minimum=1)
    r.expect_end()
    return formats


def parse_renegotiation_info(data: bytes) -> bytes:
    r = Reader(data)
    info = r.vector(1)
    r.expect_end()
    return info


# --- messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientHello:
    client_version: int
    random: bytes
    session_id: bytes
    cookie: bytes
    cipher_suites: list[int]
    compression_methods: bytes
    extensions: list[Extension] = field(default_factory=list)

    msg_type = HandshakeType.CLIENT_HELLO

    @classmethod
    def parse(cls, body: bytes) -> ClientHello:
        r = Reader(body)
        version = r.uint(2)
        random = r.read(RANDOM_LENGTH)
        session_id = r.vector(1, maximum=32)
        cookie = r.vector(1, maximum=MAX_COOKIE_LENGTH)
        suites = r.uint16_list(2, minimum=2)
        compression = r.vector(1, minimum=1)
        extensions = parse_extensions(r)
        r.expect_end()
        return cls(version, random, session_id, cookie, suites, compression, extensions)

    def serialize(self) -> bytes:
        return (
            self.client_version.to_bytes(2, "big")
            + self.random
            + vec(self.session_id, 1)
            + vec(self.cookie, 1)
            + u16_list(self.cipher_suites)
            + vec(self.compression_methods, 1)
            + serialize_extensions(self.extensions)
        )


@dataclass(frozen=True)
class HelloVerifyRequest:
    server_version: int
    cookie: bytes

    msg_type = HandshakeType.HELLO_VERIFY_REQUEST

    @classmethod
    def parse(cls, body: bytes) -> HelloVerifyRequest:
        r = Reader(body)
        version = r.uint(2)
        cookie = r.vector(1, maximum=MAX_COOKIE_LENGTH)
        r.expect_end()
        return cls(version, cookie)

    def serialize(self) -> bytes:
        return self.server_version.to_bytes(2, "big") + vec(self.cookie, 1)


@dataclass(frozen=True)
class ServerHello:
    server_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: list[Extension] = field(default_factory=list)

    msg_type = HandshakeType.SERVER_HELLO

    @classmethod
    def parse(cls, body: bytes) -> ServerHello:
        r = Reader(body)
        version = r.uint(2)
        random = r.read(RANDOM_LENGTH)
        session_id = r.vector(1, maximum=32)
        suite = r.uint(2)
        compression = r.uint(1)
        extensions = parse_extensions(r)
        r.expect_end()
        return cls(version, random, session_id, suite, compression, extensions)

    def serialize(self) -> bytes:
        return (
            self.server_version.to_bytes(2, "big")
            + self.random
            + vec(self.session_id, 1)
            + self.cipher_suite.to_bytes(2, "big")
            + bytes([self.compression_method])
            + serialize_extensions(self.extensions)
        )


@dataclass(frozen=True)
class CertificateMessage:
    """Certificate: a chain of DER certificates, sender's first."""

    certificates: list[bytes]

    msg_type = HandshakeType.CERTIFICATE

    @classmethod
    def parse(cls, body: bytes) -> CertificateMessage:
        r = Reader(body)
        chain = Reader(r.vector(3))
        r.expect_end()
        certificates = []
        while chain.remaining:
            certificates.append(chain.vector(3, minimum=1))
        return cls(certificates)

    def serialize(self) -> bytes:
        return vec(b"".join(vec(c, 3) for c in self.certificates), 3)


@dataclass(frozen=True)
class ServerKeyExchange:
    """ECDHE parameters signed by the server (RFC 8422 5.4)."""

    named_group: int
    public_key: bytes
    signature_scheme: int
    signature: bytes

    msg_type = HandshakeType.SERVER_KEY_EXCHANGE

    @classmethod
    def parse(cls, body: bytes) -> ServerKeyExchange:
        r = Reader(body)
        if r.uint(1) != EC_CURVE_TYPE_NAMED:
            raise MalformedPacket("ServerKeyExchange: only named curves are supported")
        group = r.uint(2)
        public = r.vector(1, minimum=1)
        scheme = r.uint(2)
        signature = r.vector(2, minimum=1)
        r.expect_end()
        return cls(group, public, scheme, signature)

    def params(self) -> bytes:
        """The ServerECDHParams octets that the signature covers."""
        return (
            bytes([EC_CURVE_TYPE_NAMED])
            + self.named_group.to_bytes(2, "big")
            + vec(self.public_key, 1)
        )

    def serialize(self) -> bytes:
        return self.params() + self.signature_scheme.to_bytes(2, "big") + vec(self.signature, 2)


@dataclass(frozen=True)
class CertificateRequest:
    certificate_types: bytes
    signature_schemes: list[int]
    authorities: bytes = b""

    msg_type = HandshakeType.CERTIFICATE_REQUEST

    @classmethod
    def parse(cls, body: bytes) -> CertificateRequest:
        r = Reader(body)
        types = r.vector(1, minimum=1)
        schemes = r.uint16_list(2, minimum=2)
        authorities = r.vector(2)
        r.expect_end()
        return cls(types, schemes, authorities)

    def serialize(self) -> bytes:
        return (
            vec(self.certificate_types, 1)
            + u16_list(self.signature_schemes)
            + vec(self.authorities, 2)
        )


@dataclass(frozen=True)
class ServerHelloDone:
    msg_type = HandshakeType.SERVER_HELLO_DONE

    @classmethod
    def parse(cls, body: bytes) -> ServerHelloDone:
        if body:
            raise MalformedPacket("ServerHelloDone must be empty")
        return cls()

    def serialize(self) -> bytes:
        return b""


@dataclass(frozen=True)
class ClientKeyExchange:
    """ECDHE public point of the client (RFC 8422 5.7)."""

    public_key: bytes

    msg_type = HandshakeType.CLIENT_KEY_EXCHANGE

    @classmethod
    def parse(cls, body: bytes) -> ClientKeyExchange:
        r = Reader(body)
        public = r.vector(1, minimum=1)
        r.expect_end()
        return cls(public)

    def serialize(self) -> bytes:
        return vec(self.public_key, 1)


@dataclass(frozen=True)
class CertificateVerify:
    signature_scheme: int
    signature: bytes

    msg_type = HandshakeType.CERTIFICATE_VERIFY

    @classmethod
    def parse(cls, body: bytes) -> CertificateVerify:
        r = Reader(body)
        scheme = r.uint(2)
        signature = r.vector(2, minimum=1)
        r.expect_end()
        return cls(scheme, signature)

    def serialize(self) -> bytes:
        return self.signature_scheme.to_bytes(2, "big") + vec(self.signature, 2)


@dataclass(frozen=True)
class Finished:
    verify_data: bytes

    msg_type = HandshakeType.FINISHED

    @classmethod
    def parse(cls, body: bytes) -> Finished:
        if len(body) != 12:
            raise MalformedPacket("Finished.verify_data must be 12 octets")
        return cls(body)

    def serialize(self) -> bytes:
        return self.verify_data


@dataclass(frozen=True)
class Alert:
    level: int
    description: int

    @classmethod
    def parse(cls, payload: bytes) -> Alert:
        if len(payload) != 2:
            raise MalformedPacket("alert must be 2 octets")
        return cls(payload[0], payload[1])

    def serialize(self) -> bytes:
        return bytes([self.level, self.description])
