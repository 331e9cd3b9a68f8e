"""DCEP codec (RFC 8832): known bytes, round trips, and hostile input (only
MalformedDcepMessage ever escapes the parser)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webrtc_secure.datachannel.dcep import (
    ChannelType,
    DataChannelAck,
    DataChannelOpen,
    MessageType,
    Ppid,
    Priority,
    parse_dcep,
)
from webrtc_secure.errors import MalformedDcepMessage


def test_open_bytes_match_rfc_8832_layout() -> None:
    message = DataChannelOpen(ChannelType.PARTIAL_RELIABLE_REXMIT_UNORDERED, 256, 3, "chat", "p")
    data = message.serialize()
    # type 0x03, channel type 0x81, priority 256, reliability 3, lengths 4 and 1
    assert data == bytes.fromhex("03 81 0100 00000003 0004 0001") + b"chatp"
    assert parse_dcep(data) == message


def test_chromium_style_open_parses() -> None:
    # what Chromium sends for createDataChannel("dc", {ordered: false, maxPacketLifeTime: 500})
    data = struct.pack("!BBHIHH", 3, 0x82, 256, 500, 2, 0) + b"dc"
    message = parse_dcep(data)
    assert isinstance(message, DataChannelOpen)
    assert not message.ordered
    assert message.max_packet_life_time == 500
    assert message.max_retransmits is None
    assert message.label == "dc" and message.protocol == ""


def test_ack_is_one_byte() -> None:
    assert DataChannelAck().serialize() == b"\x02"
    assert parse_dcep(b"\x02") == DataChannelAck()


@pytest.mark.parametrize(
    ("ordered", "rexmit", "lifetime", "expected"),
    [
        (True, None, None, ChannelType.RELIABLE),
        (False, None, None, ChannelType.RELIABLE_UNORDERED),
        (True, 0, None, ChannelType.PARTIAL_RELIABLE_REXMIT),
        (False, 5, None, ChannelType.PARTIAL_RELIABLE_REXMIT_UNORDERED),
        (True, None, 100, ChannelType.PARTIAL_RELIABLE_TIMED),
        (False, None, 0, ChannelType.PARTIAL_RELIABLE_TIMED_UNORDERED),
    ],
)
def test_every_channel_type(
    ordered: bool, rexmit: int | None, lifetime: int | None, expected: ChannelType
) -> None:
    kind = ChannelType.of(ordered=ordered, max_retransmits=rexmit, max_packet_life_time=lifetime)
    assert kind is expected
    parameter = rexmit if rexmit is not None else lifetime
    message = DataChannelOpen(kind, Priority.HIGH, parameter or 0, "l", "")
    back = parse_dcep(message.serialize())
    assert isinstance(back, DataChannelOpen)
    assert back.ordered is ordered
    assert back.max_retransmits == rexmit
    assert back.max_packet_life_time == lifetime
    assert back.priority == 1024


def test_reliable_channel_ignores_reliability_parameter() -> None:
    data = struct.pack("!BBHIHH", 3, 0x00, 0, 12345, 0, 0)
    message = parse_dcep(data)
    assert isinstance(message, DataChannelOpen)
    assert message.reliability_parameter == 0
    assert message.max_retransmits is None and message.max_packet_life_time is None


def test_ppids_match_iana() -> None:
    assert [int(p) for p in Ppid] == [50, 51, 52, 53, 54, 56, 57]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x03", "12"),
        (b"\x03" + bytes(10), "12"),
        (b"\x04", "unknown DCEP"),
        (b"\x02\x00", "single byte"),
        (struct.pack("!BBHIHH", 3, 0x03, 0, 0, 0, 0), "channel type"),
        (struct.pack("!BBHIHH", 3, 0x40, 0, 0, 0, 0), "channel type"),
        (struct.pack("!BBHIHH", 3, 0, 0, 0, 5, 0) + b"abc", "lengths"),
        (struct.pack("!BBHIHH", 3, 0, 0, 0, 0xFFFF, 0xFFFF), "lengths"),
        (struct.pack("!BBHIHH", 3, 0, 0, 0, 1, 0) + b"ab", "lengths"),
        (struct.pack("!BBHIHH", 3, 0, 0, 0, 2, 0) + b"\xff\xfe", "UTF-8"),
        (struct.pack("!BBHIHH", 3, 0, 0, 0, 0, 1) + b"\x80", "UTF-8"),
    ],
)
def test_malformed_messages_raise_typed_error(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedDcepMessage, match=reason):
        parse_dcep(data)


def test_open_refuses_unrepresentable_fields() -> None:
    with pytest.raises(MalformedDcepMessage):
        DataChannelOpen(ChannelType.RELIABLE, 70000, 0, "", "")
    with pytest.raises(MalformedDcepMessage):
        DataChannelOpen(ChannelType.PARTIAL_RELIABLE_REXMIT, 0, 2**32, "", "")
    with pytest.raises(MalformedDcepMessage):
        DataChannelOpen(ChannelType.RELIABLE, 0, 0, "x" * 65536, "")
    with pytest.raises(MalformedDcepMessage):
        DataChannelOpen(ChannelType.RELIABLE, 0, 0, "\ud800", "")


def test_largest_label_and_protocol_round_trip() -> None:
    message = DataChannelOpen(ChannelType.RELIABLE, 0, 0, "l" * 65535, "é" * 32767)
    assert parse_dcep(message.serialize()) == message


@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        message = parse_dcep(data)
    except MalformedDcepMessage:
        return
    # whatever parses is canonical: it serializes to bytes that parse to the same message
    assert parse_dcep(message.serialize()) == message
    assert len(message.serialize()) == len(data)


@given(
    st.sampled_from(list(ChannelType)),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.text(max_size=40),
    st.text(max_size=40),
)
def test_open_round_trip(
    kind: ChannelType, priority: int, parameter: int, label: str, protocol: str
) -> None:
    try:
        message = DataChannelOpen(kind, priority, parameter, label, protocol)
    except MalformedDcepMessage:
        return  # surrogates cannot be UTF-8
    back = parse_dcep(message.serialize())
    assert isinstance(back, DataChannelOpen)
    assert back.channel_type is kind
    assert (back.label, back.protocol, back.priority) == (label, protocol, priority)
    if kind & 0x03:
        assert back.reliability_parameter == parameter


@given(st.binary(min_size=12, max_size=120), st.integers(0, 11))
def test_mutated_open_never_crashes(tail: bytes, cut: int) -> None:
    base = DataChannelOpen(ChannelType.PARTIAL_RELIABLE_TIMED, 256, 9, "label", "proto")
    data = bytearray(base.serialize())
    data[1 : 1 + len(tail)] = tail[: len(data) - 1]
    for candidate in (bytes(data), bytes(data[:cut]), bytes(data) + tail):
        try:
            message = parse_dcep(candidate)
        except MalformedDcepMessage:
            continue
        assert message.serialize()[0] in (MessageType.OPEN, MessageType.ACK)
