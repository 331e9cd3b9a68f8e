"""DCEP (RFC 8832) and the WebRTC payload protocol identifiers (RFC 8831 8).

Pure codecs: :class:`DataChannelOpen` and :class:`DataChannelAck` parse from and
serialize to the bytes carried on an SCTP stream with PPID 50. Parsing trusts no
length field and fails with :class:`~webrtc_secure.errors.MalformedDcepMessage`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from webrtc_secure.errors import MalformedDcepMessage

#: RFC 8832 5.1: type, channel type, priority, reliability parameter, label and
#: protocol lengths
_OPEN_HEADER = struct.Struct("!BBHIHH")
OPEN_HEADER_LENGTH = _OPEN_HEADER.size  # 12


class Ppid(IntEnum):
    """SCTP payload protocol identifiers used by WebRTC (IANA, RFC 8831 8)."""

    DCEP = 50
    STRING = 51
    #: deprecated "binary partial": a piece of a message completed by a later BINARY
    BINARY_PARTIAL = 52
    BINARY = 53
    #: deprecated "string partial": a piece of a message completed by a later STRING
    STRING_PARTIAL = 54
    STRING_EMPTY = 56
    BINARY_EMPTY = 57


class MessageType(IntEnum):
    """The first byte of a DCEP message (RFC 8832 8.2.1)."""

    ACK = 0x02
    OPEN = 0x03


class ChannelType(IntEnum):
    """RFC 8832 5.1 channel types: the high bit says unordered, the low bits which
    partial reliability applies."""

    RELIABLE = 0x00
    RELIABLE_UNORDERED = 0x80
    PARTIAL_RELIABLE_REXMIT = 0x01
    PARTIAL_RELIABLE_REXMIT_UNORDERED = 0x81
    PARTIAL_RELIABLE_TIMED = 0x02
    PARTIAL_RELIABLE_TIMED_UNORDERED = 0x82

    @property
    def ordered(self) -> bool:
        return not self & 0x80

    @classmethod
    def of(
        cls, *, ordered: bool, max_retransmits: int | None, max_packet_life_time: int | None
    ) -> ChannelType:
        """The channel type for the browser-style reliability parameters."""
        base = 0x00
        if max_retransmits is not None:
            base = 0x01
        elif max_packet_life_time is not None:
            base = 0x02
        return cls(base | (0 if ordered else 0x80))


class Priority(IntEnum):
    """RFC 8831 6.4 priorities as the W3C API names them (RTCPriorityType)."""

    VERY_LOW = 128
    LOW = 256
    MEDIUM = 512
    HIGH = 1024


@dataclass(frozen=True, slots=True)
class DataChannelOpen:
    """DATA_CHANNEL_OPEN: the opener's channel type, priority, reliability, label and
    protocol. ``reliability_parameter`` is the retransmission count (REXMIT types),
    the lifetime in milliseconds (TIMED types), and ignored for reliable channels."""

    channel_type: ChannelType
    priority: int
    reliability_parameter: int
    label: str
    protocol: str

    def __post_init__(self) -> None:
        if not 0 <= self.priority <= 0xFFFF:
            raise MalformedDcepMessage(f"priority {self.priority} does not fit 16 bits")
        if not 0 <= self.reliability_parameter <= 0xFFFFFFFF:
            raise MalformedDcepMessage(
                f"reliability parameter {self.reliability_parameter} does not fit 32 bits"
            )
        for name, text in (("label", self.label), ("protocol", self.protocol)):
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise MalformedDcepMessage(f"{name} is not encodable as UTF-8") from None
            if size > 0xFFFF:
                raise MalformedDcepMessage(f"{name} is {size} bytes of UTF-8; at most 65535")

    @property
    def ordered(self) -> bool:
        return self.channel_type.ordered

    @property
    def max_retransmits(self) -> int | None:
        return self.reliability_parameter if self.channel_type & 0x03 == 0x01 else None

    @property
    def max_packet_life_time(self) -> int | None:
        """Milliseconds, for the TIMED channel types."""
        return self.reliability_parameter if self.channel_type & 0x03 == 0x02 else None

    def serialize(self) -> bytes:
        label = self.label.encode("utf-8")
        protocol = self.protocol.encode("utf-8")
        reliability = 0 if self.channel_type & 0x03 == 0 else self.reliability_parameter
        return (
            _OPEN_HEADER.pack(
                MessageType.OPEN,
                self.channel_type,
                self.priority,
                reliability,
                len(label),
                len(protocol),
            )
            + label
            + protocol
        )

    @classmethod
    def parse(cls, data: bytes) -> DataChannelOpen:
        if len(data) < OPEN_HEADER_LENGTH:
            raise MalformedDcepMessage(
                f"DATA_CHANNEL_OPEN of {len(data)} bytes; the header alone is 12"
            )
        kind, channel_type, priority, reliability, label_length, protocol_length = (
            _OPEN_HEADER.unpack_from(data)
        )
        if kind != MessageType.OPEN:
            raise MalformedDcepMessage(f"message type {kind:#04x} is not DATA_CHANNEL_OPEN")
        try:
            ctype = ChannelType(channel_type)
        except ValueError:
            raise MalformedDcepMessage(f"unknown channel type {channel_type:#04x}") from None
        end = OPEN_HEADER_LENGTH + label_length + protocol_length
        if len(data) != end:
            raise MalformedDcepMessage(
                f"DATA_CHANNEL_OPEN is {len(data)} bytes but its lengths say {end}"
            )
        try:
            label = data[OPEN_HEADER_LENGTH : OPEN_HEADER_LENGTH + label_length].decode("utf-8")
            protocol = data[OPEN_HEADER_LENGTH + label_length : end].decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedDcepMessage("label or protocol is not UTF-8") from None
        # RFC 8832 5.1: the reliability parameter of a reliable channel is ignored
        if ctype & 0x03 == 0:
            reliability = 0
        return cls(ctype, priority, reliability, label, protocol)


@dataclass(frozen=True, slots=True)
class DataChannelAck:
    """DATA_CHANNEL_ACK: one byte, the message type."""

    def serialize(self) -> bytes:
        return bytes([MessageType.ACK])

    @classmethod
    def parse(cls, data: bytes) -> DataChannelAck:
        if data != bytes([MessageType.ACK]):
            raise MalformedDcepMessage(
                f"DATA_CHANNEL_ACK must be the single byte 0x02, got {len(data)} bytes"
            )
        return cls()


DcepMessage = DataChannelOpen | DataChannelAck


def parse_dcep(data: bytes) -> DcepMessage:
    """Parse the user data of a PPID 50 message; MalformedDcepMessage on anything else."""
    if not data:
        raise MalformedDcepMessage("empty DCEP message")
    if data[0] == MessageType.OPEN:
        return DataChannelOpen.parse(data)
    if data[0] == MessageType.ACK:
        return DataChannelAck.parse(data)
    raise MalformedDcepMessage(f"unknown DCEP message type {data[0]:#04x}")


__all__ = [
    "OPEN_HEADER_LENGTH",
    "ChannelType",
    "DataChannelAck",
    "DataChannelOpen",
    "DcepMessage",
    "MessageType",
    "Ppid",
    "Priority",
    "parse_dcep",
]
