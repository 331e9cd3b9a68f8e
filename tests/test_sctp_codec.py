"""SCTP codec: CRC32c known answers, hand-assembled wire images from the RFC figures,
round trips of every chunk, padding rules, bundling, and malformed input."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

from webrtc_secure.errors import (
    ChecksumMismatch,
    MalformedPacket,
    MalformedSctpPacket,
    SctpError,
    WebrtcSecureError,
)
from webrtc_secure.sctp import (
    COMMON_HEADER_SIZE,
    AbortChunk,
    AddIncomingStreamsRequest,
    AddOutgoingStreamsRequest,
    CauseCode,
    Chunk,
    ChunkType,
    CookieAckChunk,
    CookieEchoChunk,
    CookiePreservativeParameter,
    CookieReceivedWhileShuttingDownCause,
    DataChunk,
    EcnCapableParameter,
    ErrorChunk,
    ForwardTsnChunk,
    ForwardTsnSupportedParameter,
    HeartbeatAckChunk,
    HeartbeatChunk,
    IDataChunk,
    IForwardTsnChunk,
    IncomingSsnResetRequest,
    InitAckChunk,
    InitChunk,
    InvalidMandatoryParameterCause,
    InvalidStreamIdentifierCause,
    Ipv4AddressParameter,
    Ipv6AddressParameter,
    MissingMandatoryParameterCause,
    NoUserDataCause,
    OutgoingSsnResetRequest,
    OutOfResourceCause,
    Packet,
    ProtocolViolationCause,
    ReconfigChunk,
    ReconfigResponse,
    ReconfigResult,
    RestartWithNewAddressesCause,
    SackChunk,
    ShutdownAckChunk,
    ShutdownChunk,
    ShutdownCompleteChunk,
    SsnTsnResetRequest,
    StaleCookieCause,
    StateCookieParameter,
    SupportedAddressTypesParameter,
    SupportedExtensionsParameter,
    UnknownCause,
    UnknownChunk,
    UnknownParameter,
    UnrecognizedChunkTypeCause,
    UnrecognizedParameter,
    UnrecognizedParametersCause,
    UnresolvableAddressCause,
    UserInitiatedAbortCause,
    ZeroChecksumAcceptableParameter,
    bundle,
    crc32c,
    encoded_size,
    packet_size,
    parse_chunk,
    parse_chunks,
    parse_packet,
    serialize_chunks,
    serialize_packet,
)

# --- CRC32c: RFC 3720 B.4 (the byte strings there are the CRC's little-endian octets) ---

ISCSI_READ_10 = bytes.fromhex(
    "01c00000 00000000 00000000 00000000 14000000 00000400 00000014 00000018"
    " 28000000 00000000 02000000 00000000".replace(" ", "")
)


@pytest.mark.parametrize(
    ("data", "crc_octets"),
    [
        (bytes(32), "aa36918a"),
        (b"\xff" * 32, "43aba862"),
        (bytes(range(32)), "4e79dd46"),
        (bytes(range(31, -1, -1)), "5cdb3f11"),
        (ISCSI_READ_10, "563a96d9"),
    ],
    ids=["zeros", "ones", "incrementing", "decrementing", "iscsi-read10"],
)
def test_crc32c_rfc3720_vectors(data: bytes, crc_octets: str) -> None:
    assert struct.pack("<I", crc32c(data)) == bytes.fromhex(crc_octets)


def test_crc32c_is_the_c_extension() -> None:
    # google-crc32c silently falls back to a per-byte Python loop without its wheel
    assert google_crc32c.implementation == "c"


def test_crc32c_check_value() -> None:
    # the CRC-32C catalogue "check" value over ASCII "123456789"
    assert crc32c(b"123456789") == 0xE3069283


def test_packet_checksum_is_crc_over_zeroed_field_little_endian() -> None:
    raw = serialize_packet(Packet(5000, 5001, 0x01020304, (CookieAckChunk(),)))
    assert raw[:8] == bytes.fromhex("13881389 01020304".replace(" ", ""))
    assert raw[12:] == bytes.fromhex("0b000004")
    expected = crc32c(raw[:8] + bytes(4) + raw[12:])
    assert raw[8:12] == struct.pack("<I", expected)


# --- hand-assembled wire images (RFC 9260 3.3, RFC 8260, RFC 3758, RFC 6525) ---------


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


WIRE: list[tuple[str, Chunk, bytes]] = [
    (
        "data-unordered-B-E-I",
        DataChunk(0x11223344, 7, 9, 51, b"hello", True, True, True, True),
        # type 0, flags I|U|B|E = 0x0f, length 16+5 = 21, then 3 octets of padding
        _hex("000f0015 11223344 00070009 00000033 68656c6c6f 000000"),
    ),
    (
        "data-middle-fragment",
        DataChunk(1, 2, 3, 53, b"abcd", False, False, False, False),
        _hex("00000014 00000001 00020003 00000035 61626364"),
    ),
    (
        "idata-first-fragment",
        IDataChunk(5, 1, 0x01020304, 51, 0, b"xy", False, True, False, False),
        # flags B; reserved 0; MID; the PPID on the first fragment
        _hex("40020016 00000005 00010000 01020304 00000033 7879 0000"),
    ),
    (
        "idata-later-fragment",
        IDataChunk(6, 1, 0x01020304, 0, 2, b"z", True, False, True, False),
        # flags U|E; the FSN where the PPID was
        _hex("40050015 00000006 00010000 01020304 00000002 7a 000000"),
    ),
    (
        "init",
        InitChunk(
            0xA1B2C3D4,
            131072,
            1024,
            2048,
            0x0BADF00D,
            (
                SupportedExtensionsParameter((130, 192, 64, 194)),
                ForwardTsnSupportedParameter(),
                ZeroChecksumAcceptableParameter(1),
            ),
        ),
        _hex(
            "01000028 a1b2c3d4 00020000 04000800 0badf00d"
            " 80080008 82c040c2 c0000004 80010008 00000001"
        ),
    ),
    (
        "init-ack-odd-cookie",
        InitAckChunk(1, 2, 3, 4, 5, (StateCookieParameter(b"abc"),)),
        # the last parameter's padding is the chunk's: the chunk length (27) excludes it
        _hex("0200001b 00000001 00000002 00030004 00000005 00070007 616263 00"),
    ),
    (
        "sack",
        SackChunk(100, 65536, ((2, 3), (5, 5)), (99, 98)),
        _hex("03000020 00000064 00010000 00020002 00020003 00050005 00000063 00000062"),
    ),
    (
        "heartbeat",
        HeartbeatChunk(b"\x01\x02\x03\x04\x05"),
        _hex("0400000d 00010009 0102030405 000000"),
    ),
    ("heartbeat-ack", HeartbeatAckChunk(b"1234"), _hex("0500000c 00010008 31323334")),
    (
        "abort-t-user",
        AbortChunk(True, (UserInitiatedAbortCause(b"bye"),)),
        _hex("0601000b 000c0007 627965 00"),
    ),
    ("abort-empty", AbortChunk(), _hex("06000004")),
    ("shutdown", ShutdownChunk(0xFFFFFFFF), _hex("07000008 ffffffff")),
    ("shutdown-ack", ShutdownAckChunk(), _hex("08000004")),
    (
        "error-stream",
        ErrorChunk((InvalidStreamIdentifierCause(17),)),
        _hex("0900000c 00010008 00110000"),
    ),
    ("cookie-echo", CookieEchoChunk(b"cookie!"), _hex("0a00000b 636f6f6b696521 00")),
    ("cookie-ack", CookieAckChunk(), _hex("0b000004")),
    ("shutdown-complete-t", ShutdownCompleteChunk(True), _hex("0e010004")),
    ("shutdown-complete", ShutdownCompleteChunk(False), _hex("0e000004")),
    (
        "forward-tsn",
        ForwardTsnChunk(1000, ((1, 2), (3, 4))),
        _hex("c0000010 000003e8 00010002 00030004"),
    ),
    (
        "i-forward-tsn",
        IForwardTsnChunk(1000, ((1, True, 7), (2, False, 0xFFFFFFFF))),
        _hex("c2000018 000003e8 00010001 00000007 00020000 ffffffff"),
    ),
    (
        "reconfig-outgoing-reset",
        ReconfigChunk((OutgoingSsnResetRequest(10, 20, 30, (1, 3, 5)),)),
        # parameter length 22, its padding is the chunk's: chunk length 26
        _hex("8200001a 000d0016 0000000a 00000014 0000001e 00010003 0005 0000"),
    ),
    (
        "reconfig-response-and-incoming",
        ReconfigChunk(
            (
                ReconfigResponse(7, ReconfigResult.SUCCESS_PERFORMED),
                IncomingSsnResetRequest(8, ()),
            )
        ),
        _hex("82000018 0010000c 00000007 00000001 000e0008 00000008"),
    ),
    ("unknown-chunk", UnknownChunk(0xC1, 0xAA, b"\x00\x01"), _hex("c1aa0006 0001 0000")),
]


@pytest.mark.parametrize(("chunk", "wire"), [(c, w) for _, c, w in WIRE], ids=[n for n, *_ in WIRE])
def test_wire_image(chunk: Chunk, wire: bytes) -> None:
    assert chunk.serialize() == wire
    assert encoded_size(chunk) == len(wire)
    assert len(wire) % 4 == 0
    assert parse_chunk(wire) == chunk
    # a receiver must also accept the final chunk without its padding (RFC 9260 3.2)
    length = struct.unpack_from("!H", wire, 2)[0]
    assert parse_chunk(wire[:length]) == chunk


def test_every_chunk_type_in_one_bundled_packet() -> None:
    chunks = tuple(c for _, c, _ in WIRE)
    raw = serialize_packet(Packet(5000, 5000, 0xCAFEBABE, chunks))
    assert len(raw) == packet_size(chunks) == COMMON_HEADER_SIZE + sum(len(w) for *_, w in WIRE)
    packet = parse_packet(raw)
    assert packet == Packet(5000, 5000, 0xCAFEBABE, chunks)
    assert parse_chunks(raw, COMMON_HEADER_SIZE) == chunks


ALL_PARAMETERS = (
    StateCookieParameter(b"\x00" * 33),
    UnrecognizedParameter(UnknownParameter(0x4321, b"q").serialize()),
    CookiePreservativeParameter(30000),
    Ipv4AddressParameter(b"\x7f\x00\x00\x01"),
    Ipv6AddressParameter(bytes(15) + b"\x01"),
    SupportedAddressTypesParameter((5, 6)),
    SupportedExtensionsParameter((130, 192, 64, 194)),
    ForwardTsnSupportedParameter(),
    EcnCapableParameter(),
    ZeroChecksumAcceptableParameter(1),
    UnknownParameter(0x8002, b"random-bytes"),
    UnknownParameter(0x000B, b"host.example\x00"),
    UnknownParameter(0x4000, b""),
)

ALL_CAUSES = (
    InvalidStreamIdentifierCause(65535),
    MissingMandatoryParameterCause((7, 0xC000)),
    StaleCookieCause(123456),
    OutOfResourceCause(),
    UnresolvableAddressCause(Ipv4AddressParameter(b"\x01\x02\x03\x04").serialize()),
    UnrecognizedChunkTypeCause(UnknownChunk(0x7F, 0, b"abc").serialize()),
    InvalidMandatoryParameterCause(),
    UnrecognizedParametersCause(UnknownParameter(0xBEEF, b"xyz").serialize()),
    NoUserDataCause(42),
    CookieReceivedWhileShuttingDownCause(),
    RestartWithNewAddressesCause(Ipv4AddressParameter(b"\x0a\x00\x00\x01").serialize()),
    UserInitiatedAbortCause(b"closing"),
    ProtocolViolationCause(b"bad tsn"),
    UnknownCause(0x0100, b"\x01"),
)


def test_every_init_parameter_round_trips() -> None:
    for cls in (InitChunk, InitAckChunk):
        chunk = cls(1, 2, 3, 4, 5, ALL_PARAMETERS)
        assert parse_chunk(chunk.serialize()) == chunk


def test_init_ack_cookie_accessor() -> None:
    ack = InitAckChunk(1, 2, 3, 4, 5, (ForwardTsnSupportedParameter(), StateCookieParameter(b"c")))
    assert ack.cookie == b"c"
    assert InitAckChunk(1, 2, 3, 4, 5).cookie is None


def test_unknown_parameter_keeps_type_and_value_for_reporting() -> None:
    init = InitChunk(1, 2, 3, 4, 5, (UnknownParameter(0x4001, b"\x01\x02\x03"),))
    (param,) = parse_chunk(init.serialize()).parameters  # type: ignore[union-attr]
    assert param == UnknownParameter(0x4001, b"\x01\x02\x03")
    # what goes back inside an Unrecognized Parameter: the TLV as received, padded
    assert param.serialize() == _hex("40010007 010203 00")


def test_every_error_cause_round_trips() -> None:
    for chunk in (AbortChunk(False, ALL_CAUSES), ErrorChunk(ALL_CAUSES)):
        assert parse_chunk(chunk.serialize()) == chunk
    assert {c.code for c in ALL_CAUSES if not isinstance(c, UnknownCause)} == set(CauseCode)


def test_every_reconfig_parameter_round_trips() -> None:
    params = (
        OutgoingSsnResetRequest(1, 2, 3),
        OutgoingSsnResetRequest(1, 2, 3, tuple(range(100))),
        IncomingSsnResetRequest(4, (65535,)),
        SsnTsnResetRequest(5),
        ReconfigResponse(6, ReconfigResult.DENIED),
        ReconfigResponse(7, ReconfigResult.SUCCESS_PERFORMED, 100, 200),
        AddOutgoingStreamsRequest(8, 10),
        AddIncomingStreamsRequest(9, 11),
        UnknownParameter(0x4005, b"?"),
    )
    for p in params:
        chunk = ReconfigChunk((p,))
        assert parse_chunk(chunk.serialize()) == chunk


# --- zero checksum (RFC 9653) -----------------------------------------------------------


def test_zero_checksum_needs_negotiation() -> None:
    packet = Packet(5000, 5000, 9, (DataChunk(1, 0, 0, 51, b"x"),))
    raw = serialize_packet(packet, zero_checksum=True)
    assert raw[8:12] == bytes(4)
    with pytest.raises(ChecksumMismatch):
        parse_packet(raw)
    assert parse_packet(raw, allow_zero_checksum=True) == packet
    # with zero checksum agreed, a real CRC is still accepted and still checked
    good = serialize_packet(packet)
    assert parse_packet(good, allow_zero_checksum=True) == packet
    bad = good[:8] + bytes([good[8] ^ 1]) + good[9:]
    with pytest.raises(ChecksumMismatch):
        parse_packet(bad, allow_zero_checksum=True)


def test_checksum_verification_can_be_skipped() -> None:
    raw = serialize_packet(Packet(1, 2, 3, (CookieAckChunk(),)))
    bad = raw[:8] + b"\x00\x00\x00\x01" + raw[12:]
    with pytest.raises(ChecksumMismatch):
        parse_packet(bad)
    assert parse_packet(bad, verify_checksum=False).chunks == (CookieAckChunk(),)


def test_any_single_bit_flip_is_caught_by_the_crc() -> None:
    raw = serialize_packet(
        Packet(5000, 5000, 77, (DataChunk(1, 0, 0, 51, b"payload"), SackChunk(0, 1000)))
    )
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(ChecksumMismatch):
            parse_packet(bytes(flipped))


# --- bundling helpers -------------------------------------------------------------------


def test_bundle_fills_packets_in_order_up_to_the_limit() -> None:
    chunks = [DataChunk(i, 0, i, 51, bytes(100)) for i in range(30)]  # 116 octets each
    packets = bundle(chunks, 1200)
    assert [c for p in packets for c in p] == chunks
    assert all(packet_size(p) <= 1200 for p in packets)
    assert [len(p) for p in packets] == [10, 10, 10]  # 12 + 10*116 = 1172; an 11th won't fit
    for p in packets:
        raw = serialize_packet(Packet(1, 1, 1, p))
        assert len(raw) == packet_size(p)


def test_bundle_refuses_a_chunk_larger_than_a_packet() -> None:
    with pytest.raises(ValueError):
        bundle([DataChunk(0, 0, 0, 51, bytes(1200))], 1200)


def test_serialize_chunks_matches_serialize_packet() -> None:
    chunks = (SackChunk(5, 100, ((1, 1),)), DataChunk(6, 0, 0, 51, b"abc"))
    raw = serialize_chunks(1, 2, 3, [c.serialize() for c in chunks])
    assert raw == serialize_packet(Packet(1, 2, 3, chunks))


def test_serializing_an_oversized_chunk_is_refused() -> None:
    with pytest.raises(ValueError):
        DataChunk(0, 0, 0, 51, bytes(65535)).serialize()
    with pytest.raises(ValueError):
        CookieEchoChunk(bytes(65532)).serialize()


# --- malformed input: a typed error, never IndexError/struct.error -------------------


def _packet(chunk_area: bytes) -> bytes:
    return serialize_chunks(5000, 5000, 1, [chunk_area])


MALFORMED_CHUNK_AREAS = {
    "no-chunk": b"",
    "short-header": _hex("000000"),
    "zero-length": _hex("00000000"),
    "length-below-header": _hex("0b000003"),
    "length-past-packet": _hex("0b000008"),
    "second-chunk-past-packet": _hex("0b000004 0a0000ff 00000000"),
    "trailing-garbage": _hex("0b000004 0102"),
    "data-short": _hex("0003000c 00000001 00000000"),
    "idata-short": _hex("40030013 00000001 00000000 00000000 000000 00"),
    "init-short": _hex("01000010 00000001 00000002 00030004"),
    "init-param-zero-length": _hex("01000018 00000001 00000002 00030004 00000005 00070000"),
    "init-param-past-chunk": _hex("01000018 00000001 00000002 00030004 00000005 00070010"),
    "sack-short": _hex("03000008 00000001"),
    "sack-gap-count-past-chunk": _hex("03000010 00000001 00001000 ffff0000"),
    "sack-dup-count-past-chunk": _hex("03000010 00000001 00001000 0000ffff"),
    "sack-extra-octets": _hex("03000014 00000001 00001000 00000000 00000000"),
    "heartbeat-no-info": _hex("04000004"),
    "heartbeat-wrong-param": _hex("04000008 00020004"),
    "heartbeat-info-past-chunk": _hex("04000008 00010010"),
    "abort-cause-zero-length": _hex("06000008 000c0000"),
    "abort-cause-past-chunk": _hex("06000008 000c0040"),
    "shutdown-short": _hex("07000004"),
    "shutdown-long": _hex("0700000c 00000001 00000002"),
    "shutdown-ack-long": _hex("08000008 00000000"),
    "cookie-ack-long": _hex("0b000008 00000000"),
    "shutdown-complete-long": _hex("0e000005 00000000"),
    "forward-tsn-short": _hex("c0000006 0000 0000"),
    "forward-tsn-odd": _hex("c000000a 00000001 0001 0000"),
    "iforward-tsn-odd": _hex("c200000c 00000001 00010000"),
    "reconfig-param-zero-length": _hex("82000008 000d0000"),
}


@pytest.mark.parametrize(
    "area", list(MALFORMED_CHUNK_AREAS.values()), ids=list(MALFORMED_CHUNK_AREAS)
)
def test_malformed_chunks_raise_typed_errors(area: bytes) -> None:
    raw = _packet(area)
    with pytest.raises(MalformedSctpPacket) as info:
        parse_packet(raw)
    assert not isinstance(info.value, ChecksumMismatch)


WRONG_SIZED_VALUES = {
    # well-framed TLVs whose value does not fit their type: kept raw, never a failed packet
    "init-bad-zero-checksum-param": _hex("01000018 00000001 00000002 00030004 00000005 80010004"),
    "init-bad-forward-tsn-param": _hex(
        "0100001c 00000001 00000002 00030004 00000005 c0000008 00000000"
    ),
    "init-odd-address-types": _hex(
        "0100001b 00000001 00000002 00030004 00000005 000c0007 000500 00"
    ),
    "error-stream-cause-short": _hex("09000008 00010004"),
    "error-missing-param-count-lies": _hex("0900000c 00020008 00000005"),
    "reconfig-outgoing-short": _hex("8200000c 000d0008 00000001"),
    "reconfig-outgoing-odd-streams": _hex("82000017 000d0013 00000001 00000002 00000003 000100 00"),
    "reconfig-response-bad-size": _hex("82000014 00100010 00000001 00000001 00000001"),
    "reconfig-add-streams-short": _hex("8200000c 00110008 00000001"),
}


@pytest.mark.parametrize("area", list(WRONG_SIZED_VALUES.values()), ids=list(WRONG_SIZED_VALUES))
def test_wrong_sized_known_tlvs_are_kept_raw(area: bytes) -> None:
    (chunk,) = parse_packet(_packet(area)).chunks
    items = getattr(chunk, "parameters", None) or chunk.causes  # type: ignore[union-attr]
    assert len(items) == 1
    assert isinstance(items[0], (UnknownParameter, UnknownCause))
    # re-encoded unchanged, so it can be echoed in an Unrecognized Parameter
    assert chunk.serialize() == area


def test_draft_zero_checksum_parameter_without_method_is_kept_raw() -> None:
    # draft-tuexen-tsvwg-sctp-zero-checksum-00 had no error detection method
    init = _hex("01000018 00000001 00000002 00030004 00000005 80010004")
    (chunk,) = parse_packet(_packet(init)).chunks
    assert isinstance(chunk, InitChunk)
    assert chunk.parameters == (UnknownParameter(0x8001, b""),)


@pytest.mark.parametrize("size", range(COMMON_HEADER_SIZE + 4))
def test_short_packets_are_malformed(size: int) -> None:
    with pytest.raises(MalformedSctpPacket):
        parse_packet(bytes(size), verify_checksum=False)


def test_error_tree() -> None:
    assert issubclass(ChecksumMismatch, MalformedSctpPacket)
    assert issubclass(MalformedSctpPacket, SctpError)
    assert issubclass(MalformedSctpPacket, MalformedPacket)
    assert issubclass(SctpError, WebrtcSecureError)


def test_parse_chunk_wants_exactly_one() -> None:
    two = CookieAckChunk().serialize() * 2
    with pytest.raises(MalformedSctpPacket):
        parse_chunk(two)
    with pytest.raises(MalformedSctpPacket):
        parse_chunk(b"")


def test_flags_outside_the_defined_bits_are_ignored() -> None:
    # RFC 9260 3.2: reserved flag bits are set to 0 on send and ignored on receipt
    data = parse_chunk(_hex("00f30011 00000001 00000000 00000000 61 000000"))
    assert isinstance(data, DataChunk) and data.beginning and data.ending and not data.unordered
    assert parse_chunk(_hex("07ff0008 00000005")) == ShutdownChunk(5)
    assert parse_chunk(_hex("0efe0004")) == ShutdownCompleteChunk(False)


def test_empty_user_data_parses_for_the_association_to_refuse() -> None:
    # a DATA chunk without user data is well-formed on the wire; RFC 9260 6.2 has the
    # association answer it with ABORT (No User Data), so the codec must hand it over
    assert parse_chunk(_hex("00030010 00000009 00000000 00000000")) == DataChunk(9, 0, 0, 0, b"")


def test_bytes_like_input_is_accepted() -> None:
    raw = serialize_packet(Packet(1, 2, 3, (CookieAckChunk(),)))
    assert parse_packet(bytearray(raw)) == parse_packet(memoryview(raw)) == parse_packet(raw)  # type: ignore[arg-type]


# --- captures from another stack (tests/vectors/sctp_captures.json) ----------------------

CAPTURES = json.loads((Path(__file__).parent / "vectors" / "sctp_captures.json").read_text())


def _value(tlv: bytes) -> bytes:
    return tlv[4 : struct.unpack_from("!H", tlv, 2)[0]]


@pytest.mark.parametrize(
    "vector", CAPTURES["packets"], ids=[v["name"] for v in CAPTURES["packets"]]
)
def test_captured_packets(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    if vector["checksum_valid"]:
        packet = parse_packet(raw)
    else:
        with pytest.raises(ChecksumMismatch):
            parse_packet(raw)
        packet = parse_packet(raw, verify_checksum=False)
    assert (packet.source_port, packet.destination_port, packet.verification_tag) == (
        vector["source_port"],
        vector["destination_port"],
        vector["verification_tag"],
    )
    assert [ChunkType(c.type).name for c in packet.chunks] == [c["type"] for c in vector["chunks"]]
    for chunk, expected in zip(packet.chunks, vector["chunks"], strict=True):
        assert struct.unpack_from("!H", chunk.serialize(), 2)[0] == expected["length"]
        for name, value in expected.items():
            if name in ("type", "length"):
                continue
            if name == "parameters":
                got = [(p.type, _value(p.serialize())) for p in chunk.parameters]  # type: ignore[union-attr]
                assert got == [(e["type"], bytes.fromhex(e["value"])) for e in value]
            elif isinstance(value, list):
                assert list(getattr(chunk, name)) == value
            else:
                assert getattr(chunk, name) == value
    if vector["checksum_valid"]:
        # byte for byte: same chunk lengths, padding and CRC placement as the capture
        assert serialize_packet(packet) == raw


def test_captured_init_parameters_are_typed() -> None:
    raw = bytes.fromhex(CAPTURES["packets"][0]["hex"])
    (init,) = parse_packet(raw).chunks
    assert isinstance(init, InitChunk)
    assert init.parameters[:3] == (
        EcnCapableParameter(),
        ForwardTsnSupportedParameter(),
        SupportedExtensionsParameter((192, 15, 193, 128, 130)),
    )
    # RFC 4895 AUTH parameters: not implemented, kept raw with their types
    assert [p.type for p in init.parameters[3:]] == [0x8002, 0x8004, 0x8003]
    assert all(isinstance(p, UnknownParameter) for p in init.parameters[3:])
