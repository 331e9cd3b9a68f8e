"""DTLS 1.2 handshake messages and extensions: one frozen dataclass per message,
``parse(body)`` and ``serialize()`` on each (RFC 5246 7.4, RFC 6347 4.2, RFC 8422,
RFC 5764 4.1.1, RFC 7627, RFC 5746)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from webrtc_secure.dtls.codec import Reader, u16_list, u16_values, vec
from webrtc_secure.errors import MalformedPacket

HANDSHAKE_HEADER_LENGTH = 12
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
    MISSING_EXTENSION = 109
    UNSUPPORTED_EXTENSION = 110
    CERTIFICATE_REQUIRED = 116


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

#: The 12-octet fragment header as four fields: type(8)||length(24), message_seq(16),
#: fragment_offset(24)||fragment_length high 8 bits, fragment_length low 16 bits.
FRAGMENT_HEADER = struct.Struct("!IHIH")
_FRAGMENT_HEADER = FRAGMENT_HEADER
#: ``unpack_fragment_header(payload)`` -> the four fields above, from offset 0
unpack_fragment_header = FRAGMENT_HEADER.unpack_from
_MAX_U24 = 0xFFFFFF

#: one fragment as plain values: (msg_type, length, message_seq, fragment_offset, body)
FragmentTuple = tuple[int, int, int, int, bytes]


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
    if length > _MAX_U24 or offset > _MAX_U24 or fragment_length > _MAX_U24:
        raise OverflowError("handshake length field over 24 bits")
    return _FRAGMENT_HEADER.pack(
        (msg_type << 24) | length,
        message_seq,
        (offset << 8) | (fragment_length >> 16),
        fragment_length & 0xFFFF,
    )


def framed_message(msg_type: int, message_seq: int, body: bytes) -> bytes:
    """A whole message with its unfragmented 12-octet header: the transcript form."""
    length = len(body)
    if length > _MAX_U24:
        raise OverflowError("handshake message over 2^24 octets")
    return (
        _FRAGMENT_HEADER.pack((msg_type << 24) | length, message_seq, length >> 16, length & 0xFFFF)
        + body
    )


def split_handshake_fragments(payload: bytes) -> list[FragmentTuple]:
    """Split a handshake record's payload into fragments as plain tuples; raises
    MalformedPacket (and then nothing of the payload is used)."""
    fragments: list[FragmentTuple] = []
    offset = 0
    end = len(payload)
    unpack = _FRAGMENT_HEADER.unpack_from
    while offset < end:
        if end - offset < HANDSHAKE_HEADER_LENGTH:
            raise MalformedPacket("truncated handshake fragment header")
        type_length, message_seq, offset_hi, frag_lo = unpack(payload, offset)
        length = type_length & _MAX_U24
        fragment_offset = offset_hi >> 8
        fragment_length = ((offset_hi & 0xFF) << 16) | frag_lo
        offset += HANDSHAKE_HEADER_LENGTH
        if fragment_length > end - offset:
            raise MalformedPacket("handshake fragment longer than its record")
        if fragment_offset + fragment_length > length:
            raise MalformedPacket("handshake fragment extends past its message length")
        stop = offset + fragment_length
        fragments.append(
            (type_length >> 24, length, message_seq, fragment_offset, payload[offset:stop])
        )
        offset = stop
    return fragments


def parse_handshake_fragments(payload: bytes) -> list[HandshakeFragment]:
    """Split a handshake record's payload into fragments; raises MalformedPacket."""
    return [HandshakeFragment(*f) for f in split_handshake_fragments(payload)]


# --- extensions -----------------------------------------------------------------------


class Extension(NamedTuple):
    """One hello extension: type and opaque data."""

    type: int
    data: bytes


_EXT_HEADER = struct.Struct("!HH")


def parse_extension_map(r: Reader) -> dict[int, bytes]:
    """The optional extensions block of a hello as {type: data} in wire order;
    duplicates are a decode error."""
    if not r.remaining:
        return {}
    block = r.vector(2)
    extensions: dict[int, bytes] = {}
    pos = 0
    end = len(block)
    unpack = _EXT_HEADER.unpack_from
    while pos < end:
        if end - pos < 4:
            raise MalformedPacket(f"truncated: need 4 octets, have {end - pos}")
        ext_type, length = unpack(block, pos)
        pos += 4
        if length > end - pos:
            raise MalformedPacket(f"truncated: need {length} octets, have {end - pos}")
        if ext_type in extensions:
            raise MalformedPacket(f"duplicate extension {ext_type}")
        extensions[ext_type] = block[pos : pos + length]
        pos += length
    return extensions


def parse_extensions(r: Reader) -> list[Extension]:
    """The optional extensions block of a hello; duplicates are a decode error."""
    return [Extension(t, d) for t, d in parse_extension_map(r).items()]


def serialize_extensions(extensions: list[Extension]) -> bytes:
    if not extensions:
        return b""
    return vec(b"".join(e.type.to_bytes(2, "big") + vec(e.data, 2) for e in extensions), 2)


def find_extension(extensions: list[Extension], ext_type: int) -> bytes | None:
    for e in extensions:
        if e.type == ext_type:
            return e.data
    return None


# The extension bodies below are parsed by slicing, not through a Reader: they are
# tiny and a hello carries several (tests/test_dtls_fastpaths.py holds the Reader
# forms they must agree with).


def parse_u16_list_extension(data: bytes) -> list[int]:
    """supported_groups / signature_algorithms: a non-empty uint16 list, nothing after."""
    if len(data) < 2:
        raise MalformedPacket("truncated uint16 list")
    n = (data[0] << 8) | data[1]
    if n < 2:
        raise MalformedPacket("empty uint16 list")
    if n + 2 != len(data):
        raise MalformedPacket("uint16 list length does not match its extension")
    return u16_values(data[2:])


def parse_use_srtp(data: bytes) -> tuple[list[int], bytes]:
    """use_srtp: (profile ids, MKI)."""
    if len(data) < 2:
        raise MalformedPacket("truncated use_srtp")
    n = (data[0] << 8) | data[1]
    if n < 2:
        raise MalformedPacket("use_srtp without profiles")
    mki_at = n + 2
    if mki_at >= len(data) or mki_at + 1 + data[mki_at] != len(data):
        raise MalformedPacket("use_srtp lengths do not match the extension")
    return u16_values(data[2:mki_at]), data[mki_at + 1 :]


def encode_use_srtp(profiles: list[int], mki: bytes = b"") -> bytes:
    return u16_list(profiles) + vec(mki, 1)


def parse_ec_point_formats(data: bytes) -> bytes:
    """ec_point_formats: the non-empty list of formats."""
    if not data or data[0] == 0 or data[0] + 1 != len(data):
        raise MalformedPacket("malformed ec_point_formats")
    return data[1:]


def parse_renegotiation_info(data: bytes) -> bytes:
    """renegotiation_info: the renegotiated_connection octets (empty initially)."""
    if not data or data[0] + 1 != len(data):
        raise MalformedPacket("malformed renegotiation_info")
    return data[1:]


# --- messages -------------------------------------------------------------------------
#
# One dataclass per message for building, inspecting and testing. Each parser and
# encoder is also a plain function, which the dataclass methods call and which the
# handshake uses directly: one codec per message, without an object per message on
# the handshake's path.


def client_hello_tail(
    cipher_suites: list[int] | tuple[int, ...],
    compression_methods: bytes,
    extensions: list[Extension],
) -> bytes:
    """The ClientHello after the cookie: suites, compression methods and extensions
    (the same for every hello of one configuration)."""
    return u16_list(cipher_suites) + vec(compression_methods, 1) + serialize_extensions(extensions)


def encode_client_hello(
    client_version: int, random: bytes, session_id: bytes, cookie: bytes, tail: bytes
) -> bytes:
    return client_version.to_bytes(2, "big") + random + vec(session_id, 1) + vec(cookie, 1) + tail


_U16 = struct.Struct("!H")


def _truncated() -> MalformedPacket:
    return MalformedPacket("truncated hello")


def _parse_hello_extensions(body: bytes, pos: int) -> dict[int, bytes]:
    """The optional extensions block that ends a hello at ``body[pos:]``."""
    end = len(body)
    if pos == end:
        return {}
    if end - pos < 2:
        raise _truncated()
    stop = pos + 2 + _U16.unpack_from(body, pos)[0]
    if stop > end:
        raise _truncated()
    if stop != end:
        raise MalformedPacket(f"{end - stop} trailing octets")
    extensions: dict[int, bytes] = {}
    pos += 2
    unpack = _EXT_HEADER.unpack_from
    while pos < stop:
        if stop - pos < 4:
            raise _truncated()
        ext_type, length = unpack(body, pos)
        pos += 4
        if length > stop - pos:
            raise _truncated()
        if ext_type in extensions:
            raise MalformedPacket(f"duplicate extension {ext_type}")
        extensions[ext_type] = body[pos : pos + length]
        pos += length
    return extensions


class ClientHelloFields(NamedTuple):
    """A parsed ClientHello as plain values, extensions as {type: data} in wire order
    (what the server needs, without building a :class:`ClientHello` per hello).

    The parsers build these and ServerHelloFields with ``tuple.__new__``, which skips
    the NamedTuple's generated Python ``__new__`` (the field order is the contract)."""

    client_version: int
    random: bytes
    session_id: bytes
    cookie: bytes
    cipher_suites: list[int]
    compression_methods: bytes
    extensions: dict[int, bytes]


def parse_client_hello(body: bytes) -> ClientHelloFields:
    """Parse a ClientHello body; raises MalformedPacket (RFC 6347 4.2.1 layout)."""
    end = len(body)
    if end < 35:
        raise _truncated()
    version = _U16.unpack_from(body, 0)[0]
    n = body[34]
    if n > 32:
        raise MalformedPacket(f"session_id of {n} octets")
    pos = 35 + n
    if pos >= end:
        raise _truncated()
    session_id = body[35:pos]
    start = pos + 1
    pos = start + body[pos]
    if pos + 2 > end:
        raise _truncated()
    cookie = body[start:pos]
    n = _U16.unpack_from(body, pos)[0]
    start = pos + 2
    pos = start + n
    if n < 2:
        raise MalformedPacket("empty cipher_suites")
    if pos >= end:
        raise _truncated()
    suites = u16_values(body[start:pos])
    n = body[pos]
    start = pos + 1
    pos = start + n
    if n < 1:
        raise MalformedPacket("empty compression_methods")
    if pos > end:
        raise _truncated()
    return tuple.__new__(
        ClientHelloFields,
        (
            version,
            body[2:34],
            session_id,
            cookie,
            suites,
            body[start:pos],
            _parse_hello_extensions(body, pos),
        ),
    )


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
        f = parse_client_hello(body)
        return cls(
            f.client_version,
            f.random,
            f.session_id,
            f.cookie,
            f.cipher_suites,
            f.compression_methods,
            [Extension(t, d) for t, d in f.extensions.items()],
        )

    def serialize(self) -> bytes:
        return encode_client_hello(
            self.client_version,
            self.random,
            self.session_id,
            self.cookie,
            client_hello_tail(self.cipher_suites, self.compression_methods, self.extensions),
        )


def parse_hello_verify_request(body: bytes) -> tuple[int, bytes]:
    """HelloVerifyRequest: (server_version, cookie)."""
    r = Reader(body)
    version = r.u16()
    cookie = r.vector(1, maximum=MAX_COOKIE_LENGTH)
    r.expect_end()
    return version, cookie


def encode_hello_verify_request(server_version: int, cookie: bytes) -> bytes:
    return server_version.to_bytes(2, "big") + vec(cookie, 1)


@dataclass(frozen=True)
class HelloVerifyRequest:
    server_version: int
    cookie: bytes

    msg_type = HandshakeType.HELLO_VERIFY_REQUEST

    @classmethod
    def parse(cls, body: bytes) -> HelloVerifyRequest:
        return cls(*parse_hello_verify_request(body))

    def serialize(self) -> bytes:
        return encode_hello_verify_request(self.server_version, self.cookie)


def encode_server_hello(
    server_version: int,
    random: bytes,
    session_id: bytes,
    cipher_suite: int,
    compression_method: int,
    extensions: bytes,
) -> bytes:
    """ServerHello with its extensions block already serialized."""
    return (
        server_version.to_bytes(2, "big")
        + random
        + vec(session_id, 1)
        + cipher_suite.to_bytes(2, "big")
        + bytes((compression_method,))
        + extensions
    )


class ServerHelloFields(NamedTuple):
    """A parsed ServerHello as plain values, extensions as {type: data} in wire order."""

    server_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: dict[int, bytes]


def parse_server_hello(body: bytes) -> ServerHelloFields:
    """Parse a ServerHello body; raises MalformedPacket."""
    end = len(body)
    if end < 35:
        raise _truncated()
    n = body[34]
    if n > 32:
        raise MalformedPacket(f"session_id of {n} octets")
    pos = 35 + n
    if pos + 3 > end:
        raise _truncated()
    return tuple.__new__(
        ServerHelloFields,
        (
            _U16.unpack_from(body, 0)[0],
            body[2:34],
            body[35:pos],
            _U16.unpack_from(body, pos)[0],
            body[pos + 2],
            _parse_hello_extensions(body, pos + 3),
        ),
    )


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
        f = parse_server_hello(body)
        return cls(
            f.server_version,
            f.random,
            f.session_id,
            f.cipher_suite,
            f.compression_method,
            [Extension(t, d) for t, d in f.extensions.items()],
        )

    def serialize(self) -> bytes:
        return encode_server_hello(
            self.server_version,
            self.random,
            self.session_id,
            self.cipher_suite,
            self.compression_method,
            serialize_extensions(self.extensions),
        )


def parse_certificate_list(body: bytes) -> list[bytes]:
    """Certificate: the DER certificates, sender's first."""
    end = len(body)
    if end < 3 or ((body[0] << 16) | (body[1] << 8) | body[2]) + 3 != end:
        raise MalformedPacket("certificate_list length does not match the message")
    certificates = []
    pos = 3
    while pos < end:
        if end - pos < 3:
            raise MalformedPacket("truncated certificate length")
        n = (body[pos] << 16) | (body[pos + 1] << 8) | body[pos + 2]
        if n < 1:
            raise MalformedPacket("empty certificate")
        start = pos + 3
        pos = start + n
        if pos > end:
            raise MalformedPacket("certificate longer than its list")
        certificates.append(body[start:pos])
    return certificates


def encode_certificate_list(certificates: list[bytes]) -> bytes:
    return vec(b"".join(vec(c, 3) for c in certificates), 3)


@dataclass(frozen=True)
class CertificateMessage:
    """Certificate: a chain of DER certificates, sender's first."""

    certificates: list[bytes]

    msg_type = HandshakeType.CERTIFICATE

    @classmethod
    def parse(cls, body: bytes) -> CertificateMessage:
        return cls(parse_certificate_list(body))

    def serialize(self) -> bytes:
        return encode_certificate_list(self.certificates)


def parse_server_key_exchange(body: bytes) -> tuple[int, bytes, int, bytes]:
    """ServerKeyExchange: (named_group, public_key, signature_scheme, signature)."""
    end = len(body)
    if not end:
        raise MalformedPacket("empty ServerKeyExchange")
    if body[0] != EC_CURVE_TYPE_NAMED:
        raise MalformedPacket("ServerKeyExchange: only named curves are supported")
    if end < 4 or body[3] < 1:
        raise MalformedPacket("truncated ServerKeyExchange or empty point")
    pos = 4 + body[3]
    if pos + 4 > end:
        raise MalformedPacket("truncated ServerKeyExchange")
    n = (body[pos + 2] << 8) | body[pos + 3]
    if n < 1 or pos + 4 + n != end:
        raise MalformedPacket("ServerKeyExchange signature length does not match")
    return (body[1] << 8) | body[2], body[4:pos], (body[pos] << 8) | body[pos + 1], body[pos + 4 :]


def encode_ecdh_params(named_group: int, public_key: bytes) -> bytes:
    """The ServerECDHParams octets that the ServerKeyExchange signature covers."""
    return bytes((EC_CURVE_TYPE_NAMED,)) + named_group.to_bytes(2, "big") + vec(public_key, 1)


def encode_signature(signature_scheme: int, signature: bytes) -> bytes:
    """A DigitallySigned struct (ServerKeyExchange tail, CertificateVerify)."""
    return signature_scheme.to_bytes(2, "big") + vec(signature, 2)


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
        return cls(*parse_server_key_exchange(body))

    def params(self) -> bytes:
        """The ServerECDHParams octets that the signature covers."""
        return encode_ecdh_params(self.named_group, self.public_key)

    def serialize(self) -> bytes:
        return self.params() + encode_signature(self.signature_scheme, self.signature)


def parse_certificate_request(body: bytes) -> tuple[bytes, list[int], bytes]:
    """CertificateRequest: (certificate_types, signature_schemes, authorities)."""
    end = len(body)
    if not end or body[0] < 1:
        raise MalformedPacket("CertificateRequest without certificate types")
    pos = 1 + body[0]
    if pos + 2 > end:
        raise MalformedPacket("truncated CertificateRequest")
    n = (body[pos] << 8) | body[pos + 1]
    start = pos + 2
    stop = start + n
    if n < 2 or stop + 2 > end:
        raise MalformedPacket("CertificateRequest signature schemes do not fit")
    schemes = u16_values(body[start:stop])
    if stop + 2 + ((body[stop] << 8) | body[stop + 1]) != end:
        raise MalformedPacket("CertificateRequest authorities length does not match")
    return body[1:pos], schemes, body[stop + 2 :]


def encode_certificate_request(
    certificate_types: bytes, signature_schemes: list[int] | tuple[int, ...], authorities: bytes
) -> bytes:
    return vec(certificate_types, 1) + u16_list(signature_schemes) + vec(authorities, 2)


@dataclass(frozen=True)
class CertificateRequest:
    certificate_types: bytes
    signature_schemes: list[int]
    authorities: bytes = b""

    msg_type = HandshakeType.CERTIFICATE_REQUEST

    @classmethod
    def parse(cls, body: bytes) -> CertificateRequest:
        return cls(*parse_certificate_request(body))

    def serialize(self) -> bytes:
        return encode_certificate_request(
            self.certificate_types, self.signature_schemes, self.authorities
        )


def parse_server_hello_done(body: bytes) -> None:
    if body:
        raise MalformedPacket("ServerHelloDone must be empty")


@dataclass(frozen=True)
class ServerHelloDone:
    msg_type = HandshakeType.SERVER_HELLO_DONE

    @classmethod
    def parse(cls, body: bytes) -> ServerHelloDone:
        parse_server_hello_done(body)
        return cls()

    def serialize(self) -> bytes:
        return b""


def parse_client_key_exchange(body: bytes) -> bytes:
    """ClientKeyExchange: the client's ECDHE public point."""
    if not body or body[0] < 1 or body[0] + 1 != len(body):
        raise MalformedPacket("ClientKeyExchange point length does not match")
    return body[1:]


@dataclass(frozen=True)
class ClientKeyExchange:
    """ECDHE public point of the client (RFC 8422 5.7)."""

    public_key: bytes

    msg_type = HandshakeType.CLIENT_KEY_EXCHANGE

    @classmethod
    def parse(cls, body: bytes) -> ClientKeyExchange:
        return cls(parse_client_key_exchange(body))

    def serialize(self) -> bytes:
        return vec(self.public_key, 1)


def parse_certificate_verify(body: bytes) -> tuple[int, bytes]:
    """CertificateVerify: (signature_scheme, signature)."""
    if len(body) < 4:
        raise MalformedPacket("truncated CertificateVerify")
    n = (body[2] << 8) | body[3]
    if n < 1 or n + 4 != len(body):
        raise MalformedPacket("CertificateVerify signature length does not match")
    return (body[0] << 8) | body[1], body[4:]


@dataclass(frozen=True)
class CertificateVerify:
    signature_scheme: int
    signature: bytes

    msg_type = HandshakeType.CERTIFICATE_VERIFY

    @classmethod
    def parse(cls, body: bytes) -> CertificateVerify:
        return cls(*parse_certificate_verify(body))

    def serialize(self) -> bytes:
        return encode_signature(self.signature_scheme, self.signature)


def parse_finished(body: bytes) -> bytes:
    """Finished: verify_data (12 octets for every suite here)."""
    if len(body) != 12:
        raise MalformedPacket("Finished.verify_data must be 12 octets")
    return body


@dataclass(frozen=True)
class Finished:
    verify_data: bytes

    msg_type = HandshakeType.FINISHED

    @classmethod
    def parse(cls, body: bytes) -> Finished:
        return cls(parse_finished(body))

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
