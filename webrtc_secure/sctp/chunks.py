"""SCTP chunks (RFC 9260 3.3, RFC 3758, RFC 6525, RFC 8260) as frozen dataclasses.

Every chunk has ``serialize() -> bytes`` returning the chunk *padded to a multiple of
4* (the length field counts the header and value, never the padding), so a packet is
the concatenation of its chunks' bytes and ``len(chunk.serialize())`` — or the cheaper
:func:`encoded_size` — is the room it takes in a packet. :func:`parse_chunks` walks a
packet's chunk area; :func:`parse_chunk` reads exactly one chunk (SNAP's
``a=sctp-init`` carries a bare INIT chunk).

Parsing checks encodings only: a chunk whose length lies, whose fixed part is short,
or whose counts overrun it raises :class:`MalformedSctpPacket`. Semantic checks (an
INIT with a zero initiate tag, a DATA chunk without user data, gap blocks that go
backwards, which chunks may be bundled together) belong to the association, which
knows what to answer (ABORT with a cause, a counted drop). Unknown chunk types come
back as :class:`UnknownChunk` for the RFC 9260 3.2 upper-two-bits rule.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, TypeAlias

from webrtc_secure.errors import MalformedSctpPacket
from webrtc_secure.sctp.parameters import (
    ErrorCause,
    InitParameter,
    ParameterType,
    ReconfigParameter,
    StateCookieParameter,
    encode_tlv,
    iter_tlvs,
    padding,
    parse_error_causes,
    parse_init_parameters,
    parse_reconfig_parameters,
)

_HEADER = struct.Struct("!BBH")
_DATA = struct.Struct("!BBHIHHI")  # header + TSN, stream, SSN, PPID
_IDATA = struct.Struct("!BBHIHHII")  # header + TSN, stream, reserved, MID, PPID/FSN
_INIT_FIXED = struct.Struct("!IIHHI")  # tag, a_rwnd, OS, MIS, initial TSN
_SACK = struct.Struct("!BBHIIHH")  # header + cum TSN, a_rwnd, #gaps, #dups
_U32 = struct.Struct("!I")
_HEADER_U32 = struct.Struct("!BBHI")

_ZEROS = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")

DATA_HEADER_SIZE = 16
"""Octets of a DATA chunk before its user data."""
IDATA_HEADER_SIZE = 20
"""Octets of an I-DATA chunk before its user data."""
MAX_CHUNK_LENGTH = 0xFFFF


class ChunkType(IntEnum):
    DATA = 0
    INIT = 1
    INIT_ACK = 2
    SACK = 3
    HEARTBEAT = 4
    HEARTBEAT_ACK = 5
    ABORT = 6
    SHUTDOWN = 7
    SHUTDOWN_ACK = 8
    ERROR = 9
    COOKIE_ECHO = 10
    COOKIE_ACK = 11
    SHUTDOWN_COMPLETE = 14
    I_DATA = 64
    RE_CONFIG = 130
    FORWARD_TSN = 192
    I_FORWARD_TSN = 194


# DATA / I-DATA flag bits (RFC 9260 3.3.1, RFC 7053, RFC 8260 2.1)
FLAG_ENDING = 0x01
FLAG_BEGINNING = 0x02
FLAG_UNORDERED = 0x04
FLAG_IMMEDIATE = 0x08
# ABORT / SHUTDOWN-COMPLETE: the verification tag is the sender's reflected tag
FLAG_T = 0x01


def _chunk(type_: int, flags: int, value: bytes) -> bytes:
    length = 4 + len(value)
    if length > MAX_CHUNK_LENGTH:
        raise ValueError(f"chunk type {type_} of {length} octets exceeds the 16-bit length")
    return _HEADER.pack(type_, flags, length) + value + padding(length)


def _tlv_chunk(type_: int, flags: int, fixed: bytes, tlvs: list[bytes]) -> bytes:
    """A chunk whose value is ``fixed`` then padded TLVs.

    RFC 9260 3.2: the chunk length counts the padding of every parameter except the
    last one's, which is the chunk's own terminating padding. The octets emitted are the
    same either way; only the length field differs.
    """
    trailing = 0
    if tlvs:
        last = tlvs[-1]
        trailing = len(last) - ((last[2] << 8) | last[3])
    value = fixed + b"".join(tlvs)
    length = 4 + len(value) - trailing
    if length > MAX_CHUNK_LENGTH:
        raise ValueError(f"chunk type {type_} of {length} octets exceeds the 16-bit length")
    return _HEADER.pack(type_, flags, length) + value


def _exact(body: bytes, size: int, what: str) -> None:
    if len(body) != size:
        raise MalformedSctpPacket(f"{what}: {len(body)} octets of value, expected {size}")


def _at_least(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise MalformedSctpPacket(f"{what}: {len(body)} octets of value, need at least {size}")


def _data_flags(unordered: bool, beginning: bool, ending: bool, immediate: bool) -> int:
    return (
        (FLAG_IMMEDIATE if immediate else 0)
        | (FLAG_UNORDERED if unordered else 0)
        | (FLAG_BEGINNING if beginning else 0)
        | (FLAG_ENDING if ending else 0)
    )


_I_DATA_TYPE = int(ChunkType.I_DATA)  # a plain int: no enum lookup per fragment

#: The packed header of a DATA chunk (type, flags, length, TSN, stream, SSN, PPID) and of
#: an I-DATA chunk (type, flags, length, TSN, stream, reserved, MID, PPID or FSN), and
#: the padding after n octets of user data (``PADDING[-n & 3]``): for a send path that
#: puts a chunk's header and its user data into a packet without joining them first.
DATA_CHUNK_HEADER = _DATA
IDATA_CHUNK_HEADER = _IDATA
PADDING = _ZEROS


def encode_data_chunk(
    interleaved: bool,
    flags: int,
    tsn: int,
    stream_id: int,
    seq: int,
    ppid_or_fsn: int,
    user_data: bytes | memoryview,
) -> bytes:
    """A DATA (``seq`` = SSN, last field the PPID) or I-DATA (``seq`` = MID, last field
    the PPID on a first fragment, the FSN otherwise) chunk, padded, from its fields:
    the send path encodes every fragment with this, without a chunk object."""
    if interleaved:
        length = IDATA_HEADER_SIZE + len(user_data)
        if length > MAX_CHUNK_LENGTH:
            raise ValueError(f"I-DATA chunk of {length} octets exceeds the 16-bit length")
        head = _IDATA.pack(_I_DATA_TYPE, flags, length, tsn, stream_id, 0, seq, ppid_or_fsn)
    else:
        length = DATA_HEADER_SIZE + len(user_data)
        if length > MAX_CHUNK_LENGTH:
            raise ValueError(f"DATA chunk of {length} octets exceeds the 16-bit length")
        head = _DATA.pack(0, flags, length, tsn, stream_id, seq, ppid_or_fsn)
    pad = -length & 3
    if pad:  # one copy of the user data either way
        return b"".join((head, user_data, _ZEROS[pad]))
    return head + user_data


@dataclass(frozen=True, slots=True)
class DataChunk:
    """DATA (0): one fragment of a user message (RFC 9260 3.3.1)."""

    tsn: int
    stream_id: int
    stream_seq: int
    ppid: int
    user_data: bytes
    unordered: bool = False
    beginning: bool = True
    ending: bool = True
    immediate: bool = False
    type: ClassVar[int] = ChunkType.DATA

    def serialize(self) -> bytes:
        flags = _data_flags(self.unordered, self.beginning, self.ending, self.immediate)
        return encode_data_chunk(
            False, flags, self.tsn, self.stream_id, self.stream_seq, self.ppid, self.user_data
        )

    @property
    def encoded_size(self) -> int:
        return (DATA_HEADER_SIZE + len(self.user_data) + 3) & ~3


@dataclass(frozen=True, slots=True)
class IDataChunk:
    """I-DATA (64, RFC 8260 2.1): DATA with a 32-bit message id and a fragment sequence
    number so fragments of several messages may interleave. The first fragment
    (``beginning``) carries ``ppid`` and an implicit ``fsn`` of 0; the others carry
    ``fsn`` in the same field and no ppid (decoded as 0)."""

    tsn: int
    stream_id: int
    mid: int
    ppid: int
    fsn: int
    user_data: bytes
    unordered: bool = False
    beginning: bool = True
    ending: bool = True
    immediate: bool = False
    type: ClassVar[int] = ChunkType.I_DATA

    def serialize(self) -> bytes:
        flags = _data_flags(self.unordered, self.beginning, self.ending, self.immediate)
        return encode_data_chunk(
            True,
            flags,
            self.tsn,
            self.stream_id,
            self.mid,
            self.ppid if self.beginning else self.fsn,
            self.user_data,
        )

    @property
    def encoded_size(self) -> int:
        return (IDATA_HEADER_SIZE + len(self.user_data) + 3) & ~3


@dataclass(frozen=True, slots=True)
class _InitBase:
    initiate_tag: int
    a_rwnd: int
    outbound_streams: int
    inbound_streams: int
    initial_tsn: int
    parameters: tuple[InitParameter, ...] = ()
    type: ClassVar[int] = ChunkType.INIT

    def serialize(self) -> bytes:
        return _tlv_chunk(
            self.type,
            0,
            _INIT_FIXED.pack(
                self.initiate_tag,
                self.a_rwnd,
                self.outbound_streams,
                self.inbound_streams,
                self.initial_tsn,
            ),
            [p.serialize() for p in self.parameters],
        )

    @property
    def encoded_size(self) -> int:
        return len(self.serialize())


@dataclass(frozen=True, slots=True)
class InitChunk(_InitBase):
    """INIT (1, RFC 9260 3.3.2)."""

    type: ClassVar[int] = ChunkType.INIT


@dataclass(frozen=True, slots=True)
class InitAckChunk(_InitBase):
    """INIT-ACK (2, RFC 9260 3.3.3); must carry a State Cookie parameter."""

    type: ClassVar[int] = ChunkType.INIT_ACK

    @property
    def cookie(self) -> bytes | None:
        """The State Cookie parameter's value, or None when missing."""
        for p in self.parameters:
            if isinstance(p, StateCookieParameter):
                return p.cookie
        return None


@dataclass(frozen=True, slots=True)
class SackChunk:
    """SACK (3, RFC 9260 3.3.4). Gap blocks are ``(start, end)`` offsets from
    ``cumulative_tsn``, as on the wire; the association validates them."""

    cumulative_tsn: int
    a_rwnd: int
    gap_blocks: tuple[tuple[int, int], ...] = ()
    duplicate_tsns: tuple[int, ...] = ()
    type: ClassVar[int] = ChunkType.SACK

    def serialize(self) -> bytes:
        ngaps = len(self.gap_blocks)
        ndups = len(self.duplicate_tsns)
        length = 16 + 4 * (ngaps + ndups)
        if length > MAX_CHUNK_LENGTH:
            raise ValueError(f"SACK chunk of {length} octets exceeds the 16-bit length")
        flat = [v for block in self.gap_blocks for v in block]
        return _SACK.pack(
            ChunkType.SACK, 0, length, self.cumulative_tsn, self.a_rwnd, ngaps, ndups
        ) + struct.pack(f"!{2 * ngaps}H{ndups}I", *flat, *self.duplicate_tsns)

    @property
    def encoded_size(self) -> int:
        return 16 + 4 * (len(self.gap_blocks) + len(self.duplicate_tsns))


@dataclass(frozen=True, slots=True)
class _HeartbeatBase:
    info: bytes
    type: ClassVar[int] = ChunkType.HEARTBEAT

    def serialize(self) -> bytes:
        return _tlv_chunk(self.type, 0, b"", [encode_tlv(ParameterType.HEARTBEAT_INFO, self.info)])

    @property
    def encoded_size(self) -> int:
        return 8 + ((len(self.info) + 3) & ~3)


@dataclass(frozen=True, slots=True)
class HeartbeatChunk(_HeartbeatBase):
    """HEARTBEAT (4): ``info`` is the Heartbeat Info parameter's opaque value."""

    type: ClassVar[int] = ChunkType.HEARTBEAT


@dataclass(frozen=True, slots=True)
class HeartbeatAckChunk(_HeartbeatBase):
    """HEARTBEAT-ACK (5): echoes the HEARTBEAT's info unchanged."""

    type: ClassVar[int] = ChunkType.HEARTBEAT_ACK


@dataclass(frozen=True, slots=True)
class AbortChunk:
    """ABORT (6). ``t_bit``: the packet carries the receiver's own tag reflected."""

    t_bit: bool = False
    causes: tuple[ErrorCause, ...] = ()
    type: ClassVar[int] = ChunkType.ABORT

    def serialize(self) -> bytes:
        return _tlv_chunk(
            self.type, FLAG_T if self.t_bit else 0, b"", [c.serialize() for c in self.causes]
        )

    @property
    def encoded_size(self) -> int:
        return len(self.serialize())


@dataclass(frozen=True, slots=True)
class ShutdownChunk:
    """SHUTDOWN (7)."""

    cumulative_tsn: int
    type: ClassVar[int] = ChunkType.SHUTDOWN

    def serialize(self) -> bytes:
        return _HEADER_U32.pack(self.type, 0, 8, self.cumulative_tsn)

    @property
    def encoded_size(self) -> int:
        return 8


@dataclass(frozen=True, slots=True)
class ShutdownAckChunk:
    """SHUTDOWN-ACK (8)."""

    type: ClassVar[int] = ChunkType.SHUTDOWN_ACK

    def serialize(self) -> bytes:
        return _HEADER.pack(self.type, 0, 4)

    @property
    def encoded_size(self) -> int:
        return 4


@dataclass(frozen=True, slots=True)
class ErrorChunk:
    """ERROR (9): non-fatal error report."""

    causes: tuple[ErrorCause, ...] = ()
    type: ClassVar[int] = ChunkType.ERROR

    def serialize(self) -> bytes:
        return _tlv_chunk(self.type, 0, b"", [c.serialize() for c in self.causes])

    @property
    def encoded_size(self) -> int:
        return len(self.serialize())


@dataclass(frozen=True, slots=True)
class CookieEchoChunk:
    """COOKIE-ECHO (10): the State Cookie from INIT-ACK, returned verbatim."""

    cookie: bytes
    type: ClassVar[int] = ChunkType.COOKIE_ECHO

    def serialize(self) -> bytes:
        return _chunk(self.type, 0, self.cookie)

    @property
    def encoded_size(self) -> int:
        return (4 + len(self.cookie) + 3) & ~3


@dataclass(frozen=True, slots=True)
class CookieAckChunk:
    """COOKIE-ACK (11)."""

    type: ClassVar[int] = ChunkType.COOKIE_ACK

    def serialize(self) -> bytes:
        return _HEADER.pack(self.type, 0, 4)

    @property
    def encoded_size(self) -> int:
        return 4


@dataclass(frozen=True, slots=True)
class ShutdownCompleteChunk:
    """SHUTDOWN-COMPLETE (14)."""

    t_bit: bool = False
    type: ClassVar[int] = ChunkType.SHUTDOWN_COMPLETE

    def serialize(self) -> bytes:
        return _HEADER.pack(self.type, FLAG_T if self.t_bit else 0, 4)

    @property
    def encoded_size(self) -> int:
        return 4


@dataclass(frozen=True, slots=True)
class ForwardTsnChunk:
    """FORWARD-TSN (192, RFC 3758 3.2): ``streams`` holds ``(stream_id, ssn)`` pairs."""

    new_cumulative_tsn: int
    streams: tuple[tuple[int, int], ...] = ()
    type: ClassVar[int] = ChunkType.FORWARD_TSN

    def serialize(self) -> bytes:
        n = len(self.streams)
        length = 8 + 4 * n
        if length > MAX_CHUNK_LENGTH:
            raise ValueError(f"FORWARD-TSN chunk of {length} octets exceeds the 16-bit length")
        flat = [v for pair in self.streams for v in pair]
        return _HEADER_U32.pack(self.type, 0, length, self.new_cumulative_tsn) + struct.pack(
            f"!{2 * n}H", *flat
        )

    @property
    def encoded_size(self) -> int:
        return 8 + 4 * len(self.streams)


@dataclass(frozen=True, slots=True)
class IForwardTsnChunk:
    """I-FORWARD-TSN (194, RFC 8260 2.3): ``streams`` holds ``(stream_id, unordered,
    mid)`` triples."""

    new_cumulative_tsn: int
    streams: tuple[tuple[int, bool, int], ...] = ()
    type: ClassVar[int] = ChunkType.I_FORWARD_TSN

    def serialize(self) -> bytes:
        n = len(self.streams)
        length = 8 + 8 * n
        if length > MAX_CHUNK_LENGTH:
            raise ValueError(f"I-FORWARD-TSN chunk of {length} octets exceeds the 16-bit length")
        flat: list[int] = []
        for stream_id, unordered, mid in self.streams:
            flat += (stream_id, 1 if unordered else 0, mid)
        return _HEADER_U32.pack(self.type, 0, length, self.new_cumulative_tsn) + struct.pack(
            "!" + "HHI" * n, *flat
        )

    @property
    def encoded_size(self) -> int:
        return 8 + 8 * len(self.streams)


@dataclass(frozen=True, slots=True)
class ReconfigChunk:
    """RE-CONFIG (130, RFC 6525 3.1): one or two re-configuration parameters."""

    parameters: tuple[ReconfigParameter, ...]
    type: ClassVar[int] = ChunkType.RE_CONFIG

    def serialize(self) -> bytes:
        return _tlv_chunk(self.type, 0, b"", [p.serialize() for p in self.parameters])

    @property
    def encoded_size(self) -> int:
        return len(self.serialize())


@dataclass(frozen=True, slots=True)
class UnknownChunk:
    """A chunk type this codec does not know, kept whole: the association looks at
    the upper two bits of ``type`` (RFC 9260 3.2) and may echo ``serialize()`` back in
    an Unrecognized Chunk Type cause."""

    type: int
    flags: int
    body: bytes

    def serialize(self) -> bytes:
        return _chunk(self.type, self.flags, self.body)

    @property
    def encoded_size(self) -> int:
        return (4 + len(self.body) + 3) & ~3


Chunk: TypeAlias = (
    DataChunk
    | IDataChunk
    | InitChunk
    | InitAckChunk
    | SackChunk
    | HeartbeatChunk
    | HeartbeatAckChunk
    | AbortChunk
    | ShutdownChunk
    | ShutdownAckChunk
    | ErrorChunk
    | CookieEchoChunk
    | CookieAckChunk
    | ShutdownCompleteChunk
    | ForwardTsnChunk
    | IForwardTsnChunk
    | ReconfigChunk
    | UnknownChunk
)


def encoded_size(chunk: Chunk) -> int:
    """Octets ``chunk`` takes in a packet, padding included."""
    return chunk.encoded_size


# --- parsing -----------------------------------------------------------------------


def _parse_data(flags: int, body: bytes) -> Chunk:
    if len(body) < 12:
        raise MalformedSctpPacket(f"DATA: {len(body)} octets of value, need 12")
    tsn, stream_id, ssn, ppid = struct.unpack_from("!IHHI", body)
    return DataChunk(
        tsn,
        stream_id,
        ssn,
        ppid,
        body[12:],
        bool(flags & FLAG_UNORDERED),
        bool(flags & FLAG_BEGINNING),
        bool(flags & FLAG_ENDING),
        bool(flags & FLAG_IMMEDIATE),
    )


def _parse_idata(flags: int, body: bytes) -> Chunk:
    if len(body) < 16:
        raise MalformedSctpPacket(f"I-DATA: {len(body)} octets of value, need 16")
    tsn, stream_id, _reserved, mid, ppid_or_fsn = struct.unpack_from("!IHHII", body)
    beginning = bool(flags & FLAG_BEGINNING)
    return IDataChunk(
        tsn,
        stream_id,
        mid,
        ppid_or_fsn if beginning else 0,
        0 if beginning else ppid_or_fsn,
        body[16:],
        bool(flags & FLAG_UNORDERED),
        beginning,
        bool(flags & FLAG_ENDING),
        bool(flags & FLAG_IMMEDIATE),
    )


def _init_fields(body: bytes, what: str) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise MalformedSctpPacket(f"{what}: {len(body)} octets of value, need 16")
    return struct.unpack_from("!IIHHI", body)


def _parse_init(flags: int, body: bytes) -> Chunk:
    fields = _init_fields(body, "INIT")
    return InitChunk(*fields, parse_init_parameters(body[16:]))


def _parse_init_ack(flags: int, body: bytes) -> Chunk:
    fields = _init_fields(body, "INIT-ACK")
    return InitAckChunk(*fields, parse_init_parameters(body[16:]))


def _parse_sack(flags: int, body: bytes) -> Chunk:
    if len(body) < 12:
        raise MalformedSctpPacket(f"SACK: {len(body)} octets of value, need 12")
    cum_tsn, a_rwnd, ngaps, ndups = struct.unpack_from("!IIHH", body)
    need = 12 + 4 * (ngaps + ndups)
    if len(body) != need:
        # the counts are bounded by 16 bits each, but never allocate from them before
        # checking they match the octets actually present
        raise MalformedSctpPacket(
            f"SACK: {ngaps} gap blocks and {ndups} duplicates need {need} octets, "
            f"chunk has {len(body)}"
        )
    values = struct.unpack_from(f"!{2 * ngaps}H{ndups}I", body, 12)
    gaps = tuple(zip(values[0 : 2 * ngaps : 2], values[1 : 2 * ngaps : 2], strict=True))
    return SackChunk(cum_tsn, a_rwnd, gaps, values[2 * ngaps :])


def _heartbeat_info(body: bytes, what: str) -> bytes:
    tlvs = iter_tlvs(body, what)
    for type_, value in tlvs:
        if type_ == ParameterType.HEARTBEAT_INFO:
            return value
    raise MalformedSctpPacket(f"{what}: no Heartbeat Info parameter")


def _parse_heartbeat(flags: int, body: bytes) -> Chunk:
    return HeartbeatChunk(_heartbeat_info(body, "HEARTBEAT"))


def _parse_heartbeat_ack(flags: int, body: bytes) -> Chunk:
    return HeartbeatAckChunk(_heartbeat_info(body, "HEARTBEAT-ACK"))


def _parse_abort(flags: int, body: bytes) -> Chunk:
    return AbortChunk(bool(flags & FLAG_T), parse_error_causes(body))


def _parse_shutdown(flags: int, body: bytes) -> Chunk:
    _exact(body, 4, "SHUTDOWN")
    return ShutdownChunk(_U32.unpack(body)[0])


def _parse_shutdown_ack(flags: int, body: bytes) -> Chunk:
    _exact(body, 0, "SHUTDOWN-ACK")
    return ShutdownAckChunk()


def _parse_error(flags: int, body: bytes) -> Chunk:
    return ErrorChunk(parse_error_causes(body))


def _parse_cookie_echo(flags: int, body: bytes) -> Chunk:
    return CookieEchoChunk(body)


def _parse_cookie_ack(flags: int, body: bytes) -> Chunk:
    _exact(body, 0, "COOKIE-ACK")
    return CookieAckChunk()


def _parse_shutdown_complete(flags: int, body: bytes) -> Chunk:
    _exact(body, 0, "SHUTDOWN-COMPLETE")
    return ShutdownCompleteChunk(bool(flags & FLAG_T))


def _parse_forward_tsn(flags: int, body: bytes) -> Chunk:
    _at_least(body, 4, "FORWARD-TSN")
    if len(body) & 3:
        raise MalformedSctpPacket(f"FORWARD-TSN: {len(body)} octets is not 4 + 4n")
    n = (len(body) - 4) // 4
    values = struct.unpack(f"!I{2 * n}H", body)
    return ForwardTsnChunk(values[0], tuple(zip(values[1::2], values[2::2], strict=True)))


def _parse_iforward_tsn(flags: int, body: bytes) -> Chunk:
    _at_least(body, 4, "I-FORWARD-TSN")
    if (len(body) - 4) & 7:
        raise MalformedSctpPacket(f"I-FORWARD-TSN: {len(body)} octets is not 4 + 8n")
    n = (len(body) - 4) // 8
    values = struct.unpack("!I" + "HHI" * n, body)
    streams = tuple(
        (values[i], bool(values[i + 1] & 1), values[i + 2]) for i in range(1, 1 + 3 * n, 3)
    )
    return IForwardTsnChunk(values[0], streams)


def _parse_reconfig(flags: int, body: bytes) -> Chunk:
    return ReconfigChunk(parse_reconfig_parameters(body))


_PARSERS: dict[int, Callable[[int, bytes], Chunk]] = {
    ChunkType.DATA: _parse_data,
    ChunkType.INIT: _parse_init,
    ChunkType.INIT_ACK: _parse_init_ack,
    ChunkType.SACK: _parse_sack,
    ChunkType.HEARTBEAT: _parse_heartbeat,
    ChunkType.HEARTBEAT_ACK: _parse_heartbeat_ack,
    ChunkType.ABORT: _parse_abort,
    ChunkType.SHUTDOWN: _parse_shutdown,
    ChunkType.SHUTDOWN_ACK: _parse_shutdown_ack,
    ChunkType.ERROR: _parse_error,
    ChunkType.COOKIE_ECHO: _parse_cookie_echo,
    ChunkType.COOKIE_ACK: _parse_cookie_ack,
    ChunkType.SHUTDOWN_COMPLETE: _parse_shutdown_complete,
    ChunkType.I_DATA: _parse_idata,
    ChunkType.RE_CONFIG: _parse_reconfig,
    ChunkType.FORWARD_TSN: _parse_forward_tsn,
    ChunkType.I_FORWARD_TSN: _parse_iforward_tsn,
}


def parse_chunk_body(type_: int, flags: int, body: bytes) -> Chunk:
    """One chunk from its header fields and value (the octets after the 4-byte header,
    up to its length, padding excluded)."""
    parser = _PARSERS.get(type_)
    if parser is None:
        return UnknownChunk(type_, flags, body)
    return parser(flags, body)


def parse_chunks(data: bytes, offset: int = 0) -> tuple[Chunk, ...]:
    """Every chunk in ``data[offset:]`` (a packet's chunk area).

    A chunk length below 4 or past the end raises MalformedSctpPacket; the padding
    after the last chunk may be missing. An empty area is malformed: RFC 9260 3 has
    every packet carry at least one chunk.
    """
    out: list[Chunk] = []
    end = len(data)
    pos = offset
    if pos >= end:
        raise MalformedSctpPacket("packet carries no chunk")
    unpack = _HEADER.unpack_from
    parsers = _PARSERS
    while pos < end:
        if end - pos < 4:
            raise MalformedSctpPacket(f"{end - pos} trailing octets, no room for a chunk header")
        type_, flags, length = unpack(data, pos)
        if length < 4:
            raise MalformedSctpPacket(f"chunk type {type_}: length {length} below its header")
        stop = pos + length
        if stop > end:
            raise MalformedSctpPacket(
                f"chunk type {type_}: length {length} runs past the {end - pos} octets left"
            )
        body = data[pos + 4 : stop]
        parser = parsers.get(type_)
        out.append(UnknownChunk(type_, flags, body) if parser is None else parser(flags, body))
        pos = stop + ((-length) & 3)
    return tuple(out)


def parse_chunk(data: bytes) -> Chunk:
    """Exactly one chunk (padding optional), e.g. SNAP's ``a=sctp-init`` INIT."""
    chunks = parse_chunks(data)
    if len(chunks) != 1:
        raise MalformedSctpPacket(f"expected one chunk, found {len(chunks)}")
    return chunks[0]
