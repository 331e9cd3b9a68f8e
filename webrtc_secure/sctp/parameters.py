"""SCTP type-length-value structures: INIT parameters, RE-CONFIG parameters and
error causes (RFC 9260 3.2.1 and 3.3.10, RFC 6525 4, RFC 3758, RFC 8260, RFC 9653).

All three share one encoding: a 16-bit type (or cause code), a 16-bit length that
counts the 4-byte header and the value but not the padding, the value, then zero
padding to a multiple of 4. Each structure is a frozen dataclass with ``serialize()``
(padded TLV bytes, ready to concatenate); the parse functions map a chunk's
parameter area to a tuple of them.

Parsing never trusts a length field: a TLV shorter than its header or running past
the bytes present raises :class:`MalformedSctpPacket`. Types this module does not
know are kept raw (:class:`UnknownParameter`, :class:`UnknownCause`) with their type,
so the association can apply the RFC 9260 3.2.1 upper-two-bits rule and echo them
back in an Unrecognized Parameter.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, TypeAlias, TypeVar

from webrtc_secure.errors import MalformedSctpPacket

_TLV_HEADER = struct.Struct("!HH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U32_U32 = struct.Struct("!II")
_U32_U32_U32 = struct.Struct("!III")
_U32_U16_U16 = struct.Struct("!IHH")
_U16_U16 = struct.Struct("!HH")

_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")


def padding(length: int) -> bytes:
    """The zero octets that pad ``length`` up to a multiple of 4."""
    return _PADDING[length & 3]


def padded(length: int) -> int:
    """``length`` rounded up to a multiple of 4."""
    return (length + 3) & ~3


def encode_tlv(type_: int, value: bytes) -> bytes:
    """One padded TLV; the length field counts header and value, not padding."""
    length = 4 + len(value)
    if length > 0xFFFF:
        raise ValueError(f"TLV value of {len(value)} octets does not fit a 16-bit length")
    return _TLV_HEADER.pack(type_, length) + value + _PADDING[length & 3]


def iter_tlvs(data: bytes, what: str = "parameter") -> list[tuple[int, bytes]]:
    """Split a parameter area into ``(type, value)`` pairs.

    The padding after the last TLV may be absent (RFC 9260 3.2 lets a receiver
    ignore it); anything else that does not add up raises MalformedSctpPacket. The
    result has at most ``len(data) // 4`` entries, so hostile input cannot make it
    grow beyond the packet.
    """
    out: list[tuple[int, bytes]] = []
    pos = 0
    end = len(data)
    unpack = _TLV_HEADER.unpack_from
    while pos < end:
        if end - pos < 4:
            raise MalformedSctpPacket(f"{what}: {end - pos} trailing octets, no room for a header")
        type_, length = unpack(data, pos)
        if length < 4:
            raise MalformedSctpPacket(f"{what} type {type_}: length {length} below its header")
        stop = pos + length
        if stop > end:
            raise MalformedSctpPacket(
                f"{what} type {type_}: length {length} runs past the {end - pos} octets left"
            )
        out.append((type_, data[pos + 4 : stop]))
        pos = min(stop + ((-length) & 3), end)
    return out


def _u16_list(value: bytes, what: str) -> tuple[int, ...]:
    if len(value) & 1:
        raise MalformedSctpPacket(f"{what}: odd length {len(value)} for a list of 16-bit values")
    return struct.unpack(f"!{len(value) // 2}H", value)


def _pack_u16_list(values: tuple[int, ...]) -> bytes:
    return struct.pack(f"!{len(values)}H", *values)


def _exact(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise MalformedSctpPacket(f"{what}: value of {len(value)} octets, expected {size}")


_T = TypeVar("_T")


def _or_unknown(
    parser: Callable[[bytes], _T] | None, type_: int, value: bytes
) -> _T | UnknownParameter:
    """The typed parameter, or the raw one when the type is unknown or its value does
    not fit the type's fixed layout.

    Framing (the TLV lengths) is always strict: a lie there means the rest of the chunk
    cannot be located. A well-framed parameter whose value is the wrong size for its
    type is kept raw instead of failing the whole packet: the association then treats
    it as unrecognized by its upper two bits (RFC 9260 3.2.1). One real case: the
    early zero-checksum drafts sent 0x8001 without the error detection method, and an
    INIT that carries it must still set up an association (without zero checksum).
    """
    if parser is None:
        return UnknownParameter(type_, value)
    try:
        return parser(value)
    except MalformedSctpPacket:
        return UnknownParameter(type_, value)


# --- INIT / INIT-ACK parameters (RFC 9260 3.3.2, 3.3.3 and the extensions) ------------


class ParameterType(IntEnum):
    """Parameter types used in INIT, INIT-ACK, HEARTBEAT and RE-CONFIG."""

    HEARTBEAT_INFO = 1
    IPV4_ADDRESS = 5
    IPV6_ADDRESS = 6
    STATE_COOKIE = 7
    UNRECOGNIZED_PARAMETER = 8
    COOKIE_PRESERVATIVE = 9
    HOST_NAME_ADDRESS = 11  # deprecated by RFC 9260; kept raw as unknown
    SUPPORTED_ADDRESS_TYPES = 12
    OUTGOING_SSN_RESET_REQUEST = 13
    INCOMING_SSN_RESET_REQUEST = 14
    SSN_TSN_RESET_REQUEST = 15
    RECONFIGURATION_RESPONSE = 16
    ADD_OUTGOING_STREAMS_REQUEST = 17
    ADD_INCOMING_STREAMS_REQUEST = 18
    ECN_CAPABLE = 0x8000
    ZERO_CHECKSUM_ACCEPTABLE = 0x8001
    SUPPORTED_EXTENSIONS = 0x8008
    FORWARD_TSN_SUPPORTED = 0xC000


class ErrorDetectionMethod(IntEnum):
    """RFC 9653 error detection methods that replace the CRC32c."""

    NONE = 0  # reserved: never sent
    DTLS = 1  # SCTP over DTLS (RFC 8261): the DTLS record MAC already covers the packet


@dataclass(frozen=True, slots=True)
class StateCookieParameter:
    """State Cookie (7), INIT-ACK only: opaque to the receiver, echoed in COOKIE-ECHO."""

    cookie: bytes
    type: ClassVar[int] = ParameterType.STATE_COOKIE

    def serialize(self) -> bytes:
        return encode_tlv(self.type, self.cookie)


@dataclass(frozen=True, slots=True)
class UnrecognizedParameter:
    """Unrecognized Parameter (8), INIT-ACK only: one echoed parameter, raw TLV bytes."""

    parameter: bytes
    type: ClassVar[int] = ParameterType.UNRECOGNIZED_PARAMETER

    def serialize(self) -> bytes:
        return encode_tlv(self.type, self.parameter)


@dataclass(frozen=True, slots=True)
class CookiePreservativeParameter:
    """Cookie Preservative (9): the lifespan increment the sender asks for, in ms."""

    increment_ms: int
    type: ClassVar[int] = ParameterType.COOKIE_PRESERVATIVE

    def serialize(self) -> bytes:
        return encode_tlv(self.type, _U32.pack(self.increment_ms))


@dataclass(frozen=True, slots=True)
class Ipv4AddressParameter:
    """IPv4 Address (5). Meaningless over DTLS (RFC 8261 4) but legal to receive."""

    address: bytes
    type: ClassVar[int] = ParameterType.IPV4_ADDRESS

    def serialize(self) -> bytes:
        return encode_tlv(self.type, self.address)


@dataclass(frozen=True, slots=True)
class Ipv6AddressParameter:
    """IPv6 Address (6). Meaningless over DTLS (RFC 8261 4) but legal to receive."""

    address: bytes
    type: ClassVar[int] = ParameterType.IPV6_ADDRESS

    def serialize(self) -> bytes:
        return encode_tlv(self.type, self.address)


@dataclass(frozen=True, slots=True)
class SupportedAddressTypesParameter:
    """Supported Address Types (12): a list of address parameter types."""

    address_types: tuple[int, ...]
    type: ClassVar[int] = ParameterType.SUPPORTED_ADDRESS_TYPES

    def serialize(self) -> bytes:
        return encode_tlv(self.type, _pack_u16_list(self.address_types))


@dataclass(frozen=True, slots=True)
class SupportedExtensionsParameter:
    """Supported Extensions (0x8008, RFC 5061 4.2.7): chunk types beyond RFC 9260.

    WebRTC lists RE-CONFIG (130), FORWARD-TSN (192) and, with RFC 8260, I-DATA (64)
    and I-FORWARD-TSN (194).
    """

    chunk_types: tuple[int, ...]
    type: ClassVar[int] = ParameterType.SUPPORTED_EXTENSIONS

    def serialize(self) -> bytes:
        return encode_tlv(self.type, bytes(self.chunk_types))


@dataclass(frozen=True, slots=True)
class ForwardTsnSupportedParameter:
    """Forward-TSN-Supported (0xC000, RFC 3758 3.1): PR-SCTP is available."""

    type: ClassVar[int] = ParameterType.FORWARD_TSN_SUPPORTED

    def serialize(self) -> bytes:
        return _TLV_HEADER.pack(self.type, 4)


@dataclass(frozen=True, slots=True)
class EcnCapableParameter:
    """ECN Capable (0x8000, RFC 9260 Appendix A). Known so it is not mistaken for unknown."""

    type: ClassVar[int] = ParameterType.ECN_CAPABLE

    def serialize(self) -> bytes:
        return _TLV_HEADER.pack(self.type, 4)


@dataclass(frozen=True, slots=True)
class ZeroChecksumAcceptableParameter:
    """Zero Checksum Acceptable (0x8001, RFC 9653 4): the sender accepts packets whose
    checksum field is zero when they are protected by ``error_detection_method``."""

    error_detection_method: int = ErrorDetectionMethod.DTLS
    type: ClassVar[int] = ParameterType.ZERO_CHECKSUM_ACCEPTABLE

    def serialize(self) -> bytes:
        return encode_tlv(self.type, _U32.pack(self.error_detection_method))


@dataclass(frozen=True, slots=True)
class HeartbeatInfoParameter:
    """Heartbeat Info (1): the sender's opaque info, echoed in HEARTBEAT-ACK."""

    info: bytes
    type: ClassVar[int] = ParameterType.HEARTBEAT_INFO

    def serialize(self) -> bytes:
        return encode_tlv(self.type, self.info)


@dataclass(frozen=True, slots=True)
class UnknownParameter:
    """A parameter this codec does not interpret, kept with its type and raw value.

    ``raw`` (the TLV re-encoded) is what goes into an Unrecognized Parameter when the
    type's upper bits ask for a report (RFC 9260 3.2.1).
    """

    type: int
    value: bytes

    def serialize(self) -> bytes:
        return encode_tlv(self.type, self.value)


InitParameter: TypeAlias = (
    StateCookieParameter
    | UnrecognizedParameter
    | CookiePreservativeParameter
    | Ipv4AddressParameter
    | Ipv6AddressParameter
    | SupportedAddressTypesParameter
    | SupportedExtensionsParameter
    | ForwardTsnSupportedParameter
    | EcnCapableParameter
    | ZeroChecksumAcceptableParameter
    | UnknownParameter
)


def _p_cookie(v: bytes) -> InitParameter:
    return StateCookieParameter(v)


def _p_unrecognized(v: bytes) -> InitParameter:
    return UnrecognizedParameter(v)


def _p_preservative(v: bytes) -> InitParameter:
    _exact(v, 4, "Cookie Preservative")
    return CookiePreservativeParameter(_U32.unpack(v)[0])


def _p_ipv4(v: bytes) -> InitParameter:
    _exact(v, 4, "IPv4 Address")
    return Ipv4AddressParameter(v)


def _p_ipv6(v: bytes) -> InitParameter:
    _exact(v, 16, "IPv6 Address")
    return Ipv6AddressParameter(v)


def _p_address_types(v: bytes) -> InitParameter:
    return SupportedAddressTypesParameter(_u16_list(v, "Supported Address Types"))


def _p_extensions(v: bytes) -> InitParameter:
    return SupportedExtensionsParameter(tuple(v))


def _p_forward_tsn(v: bytes) -> InitParameter:
    _exact(v, 0, "Forward-TSN-Supported")
    return ForwardTsnSupportedParameter()


def _p_ecn(v: bytes) -> InitParameter:
    _exact(v, 0, "ECN Capable")
    return EcnCapableParameter()


def _p_zero_checksum(v: bytes) -> InitParameter:
    _exact(v, 4, "Zero Checksum Acceptable")
    return ZeroChecksumAcceptableParameter(_U32.unpack(v)[0])


_INIT_PARSERS: dict[int, Callable[[bytes], InitParameter]] = {
    ParameterType.STATE_COOKIE: _p_cookie,
    ParameterType.UNRECOGNIZED_PARAMETER: _p_unrecognized,
    ParameterType.COOKIE_PRESERVATIVE: _p_preservative,
    ParameterType.IPV4_ADDRESS: _p_ipv4,
    ParameterType.IPV6_ADDRESS: _p_ipv6,
    ParameterType.SUPPORTED_ADDRESS_TYPES: _p_address_types,
    ParameterType.SUPPORTED_EXTENSIONS: _p_extensions,
    ParameterType.FORWARD_TSN_SUPPORTED: _p_forward_tsn,
    ParameterType.ECN_CAPABLE: _p_ecn,
    ParameterType.ZERO_CHECKSUM_ACCEPTABLE: _p_zero_checksum,
}


def parse_init_parameters(data: bytes) -> tuple[InitParameter, ...]:
    """The optional/variable-length parameters of an INIT or INIT-ACK chunk."""
    out: list[InitParameter] = []
    for type_, value in iter_tlvs(data, "INIT parameter"):
        parser = _INIT_PARSERS.get(type_)
        out.append(_or_unknown(parser, type_, value))
    return tuple(out)


# --- RE-CONFIG parameters (RFC 6525 4) -----------------------------------------------


class ReconfigResult(IntEnum):
    """Re-configuration Response result codes (RFC 6525 4.4)."""

    SUCCESS_NOTHING_TO_DO = 0
    SUCCESS_PERFORMED = 1
    DENIED = 2
    ERROR_WRONG_SSN = 3
    ERROR_REQUEST_ALREADY_IN_PROGRESS = 4
    ERROR_BAD_SEQUENCE_NUMBER = 5
    IN_PROGRESS = 6


@dataclass(frozen=True, slots=True)
class OutgoingSsnResetRequest:
    """Outgoing SSN Reset Request (13): the sender resets these outgoing streams
    (all of them if ``streams`` is empty) once every TSN up to ``last_tsn`` arrived."""

    request_seq: int
    response_seq: int
    last_tsn: int
    streams: tuple[int, ...] = ()
    type: ClassVar[int] = ParameterType.OUTGOING_SSN_RESET_REQUEST

    def serialize(self) -> bytes:
        return encode_tlv(
            self.type,
            _U32_U32_U32.pack(self.request_seq, self.response_seq, self.last_tsn)
            + _pack_u16_list(self.streams),
        )


@dataclass(frozen=True, slots=True)
class IncomingSsnResetRequest:
    """Incoming SSN Reset Request (14): asks the peer to reset its outgoing streams."""

    request_seq: int
    streams: tuple[int, ...] = ()
    type: ClassVar[int] = ParameterType.INCOMING_SSN_RESET_REQUEST

    def serialize(self) -> bytes:
        return encode_tlv(self.type, _U32.pack(self.request_seq) + _pack_u16_list(self.streams))


@dataclass(frozen=True, slots=True)
class SsnTsnResetRequest:
    """SSN/TSN Reset Request (15)."""

    request_seq: int
    type: ClassVar[int] = ParameterType.SSN_TSN_RESET_REQUEST

    def serialize(self) -> bytes:
        return encode_tlv(self.type, _U32.pack(self.request_seq))


@dataclass(frozen=True, slots=True)
class ReconfigResponse:
    """Re-configuration Response (16). The two next-TSN fields come together or not at
    all (only an SSN/TSN reset response carries them)."""

    response_seq: int
    result: int
    sender_next_tsn: int | None = None
    receiver_next_tsn: int | None = None
    type: ClassVar[int] = ParameterType.RECONFIGURATION_RESPONSE

    def serialize(self) -> bytes:
        value = _U32_U32.pack(self.response_seq, self.result)
        if self.sender_next_tsn is not None or self.receiver_next_tsn is not None:
            value += _U32_U32.pack(self.sender_next_tsn or 0, self.receiver_next_tsn or 0)
        return encode_tlv(self.type, value)


@dataclass(frozen=True, slots=True)
class AddOutgoingStreamsRequest:
    """Add Outgoing Streams Request (17)."""

    request_seq: int
    new_streams: int
    type: ClassVar[int] = ParameterType.ADD_OUTGOING_STREAMS_REQUEST

    def serialize(self) -> bytes:
        return encode_tlv(self.type, _U32_U16_U16.pack(self.request_seq, self.new_streams, 0))


@dataclass(frozen=True, slots=True)
class AddIncomingStreamsRequest:
    """Add Incoming Streams Request (18)."""

    request_seq: int
    new_streams: int
    type: ClassVar[int] = ParameterType.ADD_INCOMING_STREAMS_REQUEST

    def serialize(self) -> bytes:
        return encode_tlv(self.type, _U32_U16_U16.pack(self.request_seq, self.new_streams, 0))


ReconfigParameter: TypeAlias = (
    OutgoingSsnResetRequest
    | IncomingSsnResetRequest
    | SsnTsnResetRequest
    | ReconfigResponse
    | AddOutgoingStreamsRequest
    | AddIncomingStreamsRequest
    | UnknownParameter
)


def _r_outgoing(v: bytes) -> ReconfigParameter:
    if len(v) < 12:
        raise MalformedSctpPacket(f"Outgoing SSN Reset Request: {len(v)} octets, need 12")
    req, resp, last = _U32_U32_U32.unpack_from(v)
    return OutgoingSsnResetRequest(req, resp, last, _u16_list(v[12:], "Outgoing SSN Reset"))


def _r_incoming(v: bytes) -> ReconfigParameter:
    if len(v) < 4:
        raise MalformedSctpPacket(f"Incoming SSN Reset Request: {len(v)} octets, need 4")
    return IncomingSsnResetRequest(_U32.unpack_from(v)[0], _u16_list(v[4:], "Incoming SSN Reset"))


def _r_ssn_tsn(v: bytes) -> ReconfigParameter:
    _exact(v, 4, "SSN/TSN Reset Request")
    return SsnTsnResetRequest(_U32.unpack(v)[0])


def _r_response(v: bytes) -> ReconfigParameter:
    if len(v) == 8:
        return ReconfigResponse(*_U32_U32.unpack(v))
    if len(v) == 16:
        seq, result, sender_next, receiver_next = struct.unpack("!IIII", v)
        return ReconfigResponse(seq, result, sender_next, receiver_next)
    raise MalformedSctpPacket(f"Re-configuration Response: {len(v)} octets, expected 8 or 16")


def _r_add_outgoing(v: bytes) -> ReconfigParameter:
    _exact(v, 8, "Add Outgoing Streams Request")
    seq, count, _reserved = _U32_U16_U16.unpack(v)
    return AddOutgoingStreamsRequest(seq, count)


def _r_add_incoming(v: bytes) -> ReconfigParameter:
    _exact(v, 8, "Add Incoming Streams Request")
    seq, count, _reserved = _U32_U16_U16.unpack(v)
    return AddIncomingStreamsRequest(seq, count)


_RECONFIG_PARSERS: dict[int, Callable[[bytes], ReconfigParameter]] = {
    ParameterType.OUTGOING_SSN_RESET_REQUEST: _r_outgoing,
    ParameterType.INCOMING_SSN_RESET_REQUEST: _r_incoming,
    ParameterType.SSN_TSN_RESET_REQUEST: _r_ssn_tsn,
    ParameterType.RECONFIGURATION_RESPONSE: _r_response,
    ParameterType.ADD_OUTGOING_STREAMS_REQUEST: _r_add_outgoing,
    ParameterType.ADD_INCOMING_STREAMS_REQUEST: _r_add_incoming,
}


def parse_reconfig_parameters(data: bytes) -> tuple[ReconfigParameter, ...]:
    """The parameters of a RE-CONFIG chunk (RFC 6525 3.1 allows one or two; the
    association checks the combination, the codec returns whatever is there)."""
    out: list[ReconfigParameter] = []
    for type_, value in iter_tlvs(data, "RE-CONFIG parameter"):
        parser = _RECONFIG_PARSERS.get(type_)
        out.append(_or_unknown(parser, type_, value))
    return tuple(out)


# --- error causes (RFC 9260 3.3.10) ----------------------------------------------------


class CauseCode(IntEnum):
    """Error cause codes carried by ABORT and ERROR chunks."""

    INVALID_STREAM_IDENTIFIER = 1
    MISSING_MANDATORY_PARAMETER = 2
    STALE_COOKIE = 3
    OUT_OF_RESOURCE = 4
    UNRESOLVABLE_ADDRESS = 5
    UNRECOGNIZED_CHUNK_TYPE = 6
    INVALID_MANDATORY_PARAMETER = 7
    UNRECOGNIZED_PARAMETERS = 8
    NO_USER_DATA = 9
    COOKIE_RECEIVED_WHILE_SHUTTING_DOWN = 10
    RESTART_WITH_NEW_ADDRESSES = 11
    USER_INITIATED_ABORT = 12
    PROTOCOL_VIOLATION = 13


@dataclass(frozen=True, slots=True)
class InvalidStreamIdentifierCause:
    stream_id: int
    code: ClassVar[int] = CauseCode.INVALID_STREAM_IDENTIFIER

    def serialize(self) -> bytes:
        return encode_tlv(self.code, _U16_U16.pack(self.stream_id, 0))


@dataclass(frozen=True, slots=True)
class MissingMandatoryParameterCause:
    parameter_types: tuple[int, ...]
    code: ClassVar[int] = CauseCode.MISSING_MANDATORY_PARAMETER

    def serialize(self) -> bytes:
        return encode_tlv(
            self.code, _U32.pack(len(self.parameter_types)) + _pack_u16_list(self.parameter_types)
        )


@dataclass(frozen=True, slots=True)
class StaleCookieCause:
    """The cookie expired this many microseconds ago."""

    staleness_us: int
    code: ClassVar[int] = CauseCode.STALE_COOKIE

    def serialize(self) -> bytes:
        return encode_tlv(self.code, _U32.pack(self.staleness_us))


@dataclass(frozen=True, slots=True)
class OutOfResourceCause:
    code: ClassVar[int] = CauseCode.OUT_OF_RESOURCE

    def serialize(self) -> bytes:
        return _TLV_HEADER.pack(self.code, 4)


@dataclass(frozen=True, slots=True)
class UnresolvableAddressCause:
    address: bytes  # the address parameter, raw TLV
    code: ClassVar[int] = CauseCode.UNRESOLVABLE_ADDRESS

    def serialize(self) -> bytes:
        return encode_tlv(self.code, self.address)


@dataclass(frozen=True, slots=True)
class UnrecognizedChunkTypeCause:
    chunk: bytes  # the unrecognized chunk as received (header included)
    code: ClassVar[int] = CauseCode.UNRECOGNIZED_CHUNK_TYPE

    def serialize(self) -> bytes:
        return encode_tlv(self.code, self.chunk)


@dataclass(frozen=True, slots=True)
class InvalidMandatoryParameterCause:
    code: ClassVar[int] = CauseCode.INVALID_MANDATORY_PARAMETER

    def serialize(self) -> bytes:
        return _TLV_HEADER.pack(self.code, 4)


@dataclass(frozen=True, slots=True)
class UnrecognizedParametersCause:
    parameters: bytes  # the unrecognized parameters, raw padded TLVs
    code: ClassVar[int] = CauseCode.UNRECOGNIZED_PARAMETERS

    def serialize(self) -> bytes:
        return encode_tlv(self.code, self.parameters)


@dataclass(frozen=True, slots=True)
class NoUserDataCause:
    tsn: int
    code: ClassVar[int] = CauseCode.NO_USER_DATA

    def serialize(self) -> bytes:
        return encode_tlv(self.code, _U32.pack(self.tsn))


@dataclass(frozen=True, slots=True)
class CookieReceivedWhileShuttingDownCause:
    code: ClassVar[int] = CauseCode.COOKIE_RECEIVED_WHILE_SHUTTING_DOWN

    def serialize(self) -> bytes:
        return _TLV_HEADER.pack(self.code, 4)


@dataclass(frozen=True, slots=True)
class RestartWithNewAddressesCause:
    addresses: bytes  # the new address parameters, raw TLVs
    code: ClassVar[int] = CauseCode.RESTART_WITH_NEW_ADDRESSES

    def serialize(self) -> bytes:
        return encode_tlv(self.code, self.addresses)


@dataclass(frozen=True, slots=True)
class UserInitiatedAbortCause:
    reason: bytes = b""  # upper-layer abort reason; UTF-8 text by convention
    code: ClassVar[int] = CauseCode.USER_INITIATED_ABORT

    def serialize(self) -> bytes:
        return encode_tlv(self.code, self.reason)


@dataclass(frozen=True, slots=True)
class ProtocolViolationCause:
    information: bytes = b""
    code: ClassVar[int] = CauseCode.PROTOCOL_VIOLATION

    def serialize(self) -> bytes:
        return encode_tlv(self.code, self.information)


@dataclass(frozen=True, slots=True)
class UnknownCause:
    """An error cause this codec does not interpret, kept with its code and body."""

    code: int
    body: bytes

    def serialize(self) -> bytes:
        return encode_tlv(self.code, self.body)


ErrorCause: TypeAlias = (
    InvalidStreamIdentifierCause
    | MissingMandatoryParameterCause
    | StaleCookieCause
    | OutOfResourceCause
    | UnresolvableAddressCause
    | UnrecognizedChunkTypeCause
    | InvalidMandatoryParameterCause
    | UnrecognizedParametersCause
    | NoUserDataCause
    | CookieReceivedWhileShuttingDownCause
    | RestartWithNewAddressesCause
    | UserInitiatedAbortCause
    | ProtocolViolationCause
    | UnknownCause
)


def _c_stream(v: bytes) -> ErrorCause:
    _exact(v, 4, "Invalid Stream Identifier")
    return InvalidStreamIdentifierCause(_U16_U16.unpack(v)[0])


def _c_missing(v: bytes) -> ErrorCause:
    if len(v) < 4:
        raise MalformedSctpPacket(f"Missing Mandatory Parameter: {len(v)} octets, need 4")
    count = _U32.unpack_from(v)[0]
    types = _u16_list(v[4:], "Missing Mandatory Parameter")
    if count != len(types):
        raise MalformedSctpPacket(
            f"Missing Mandatory Parameter: count {count} but {len(types)} types present"
        )
    return MissingMandatoryParameterCause(types)


def _c_stale(v: bytes) -> ErrorCause:
    _exact(v, 4, "Stale Cookie")
    return StaleCookieCause(_U32.unpack(v)[0])


def _c_resource(v: bytes) -> ErrorCause:
    _exact(v, 0, "Out of Resource")
    return OutOfResourceCause()


def _c_invalid_mandatory(v: bytes) -> ErrorCause:
    _exact(v, 0, "Invalid Mandatory Parameter")
    return InvalidMandatoryParameterCause()


def _c_no_user_data(v: bytes) -> ErrorCause:
    _exact(v, 4, "No User Data")
    return NoUserDataCause(_U32.unpack(v)[0])


def _c_shutting_down(v: bytes) -> ErrorCause:
    _exact(v, 0, "Cookie Received While Shutting Down")
    return CookieReceivedWhileShuttingDownCause()


_CAUSE_PARSERS: dict[int, Callable[[bytes], ErrorCause]] = {
    CauseCode.INVALID_STREAM_IDENTIFIER: _c_stream,
    CauseCode.MISSING_MANDATORY_PARAMETER: _c_missing,
    CauseCode.STALE_COOKIE: _c_stale,
    CauseCode.OUT_OF_RESOURCE: _c_resource,
    CauseCode.UNRESOLVABLE_ADDRESS: UnresolvableAddressCause,
    CauseCode.UNRECOGNIZED_CHUNK_TYPE: UnrecognizedChunkTypeCause,
    CauseCode.INVALID_MANDATORY_PARAMETER: _c_invalid_mandatory,
    CauseCode.UNRECOGNIZED_PARAMETERS: UnrecognizedParametersCause,
    CauseCode.NO_USER_DATA: _c_no_user_data,
    CauseCode.COOKIE_RECEIVED_WHILE_SHUTTING_DOWN: _c_shutting_down,
    CauseCode.RESTART_WITH_NEW_ADDRESSES: RestartWithNewAddressesCause,
    CauseCode.USER_INITIATED_ABORT: UserInitiatedAbortCause,
    CauseCode.PROTOCOL_VIOLATION: ProtocolViolationCause,
}


def parse_error_causes(data: bytes) -> tuple[ErrorCause, ...]:
    """The error causes of an ABORT or ERROR chunk."""
    out: list[ErrorCause] = []
    for code, value in iter_tlvs(data, "error cause"):
        parser = _CAUSE_PARSERS.get(code)
        if parser is None:
            out.append(UnknownCause(code, value))
            continue
        try:
            out.append(parser(value))
        except MalformedSctpPacket:
            # well framed, wrong size for its code: keep it raw (see _or_unknown)
            out.append(UnknownCause(code, value))
    return tuple(out)
