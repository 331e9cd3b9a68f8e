"""Same-run cross-check of the SCTP codec against aiortc's (an independent
implementation that interoperates with browsers): packets we serialize parse with
aiortc's parser to the same fields, CRC32c included, and packets aiortc serializes
parse with ours."""

from __future__ import annotations

import struct

import pytest
from aiortc import rtcsctptransport as a
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.sctp import (
    AbortChunk,
    Chunk,
    CookieAckChunk,
    CookieEchoChunk,
    DataChunk,
    ErrorChunk,
    ForwardTsnChunk,
    ForwardTsnSupportedParameter,
    HeartbeatAckChunk,
    HeartbeatChunk,
    InitAckChunk,
    InitChunk,
    InvalidStreamIdentifierCause,
    OutgoingSsnResetRequest,
    Packet,
    ProtocolViolationCause,
    ReconfigChunk,
    ReconfigResponse,
    ReconfigResult,
    SackChunk,
    ShutdownAckChunk,
    ShutdownChunk,
    ShutdownCompleteChunk,
    StateCookieParameter,
    SupportedExtensionsParameter,
    UnknownParameter,
    UserInitiatedAbortCause,
    ZeroChecksumAcceptableParameter,
    parse_packet,
    serialize_packet,
)

pytestmark = pytest.mark.interop

PORTS_TAG = (5000, 5001, 0x1234ABCD)


def _to_aiortc(*chunks: Chunk) -> list[object]:
    raw = serialize_packet(Packet(*PORTS_TAG, chunks))
    source, destination, tag, parsed = a.parse_packet(raw)  # verifies our CRC32c
    assert (source, destination, tag) == PORTS_TAG
    assert len(parsed) == len(chunks)
    return parsed  # type: ignore[no-any-return]


def _from_aiortc(chunk: object) -> Chunk:
    raw = a.serialize_packet(*PORTS_TAG, chunk)
    packet = parse_packet(raw)  # verifies aiortc's CRC32c
    assert (packet.source_port, packet.destination_port, packet.verification_tag) == PORTS_TAG
    (ours,) = packet.chunks
    return ours


def _aiortc_chunk(cls: type, **fields: object) -> object:
    chunk = cls()
    for name, value in fields.items():
        setattr(chunk, name, value)
    return chunk


# --- DATA -----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    tsn=st.integers(0, 2**32 - 1),
    stream_id=st.integers(0, 65535),
    ssn=st.integers(0, 65535),
    ppid=st.integers(0, 2**32 - 1),
    user_data=st.binary(min_size=1, max_size=1200),
    flags=st.integers(0, 15),
)
def test_data_both_ways(
    tsn: int, stream_id: int, ssn: int, ppid: int, user_data: bytes, flags: int
) -> None:
    ours = DataChunk(
        tsn, stream_id, ssn, ppid, user_data, bool(flags & 4), bool(flags & 2), bool(flags & 1),
        bool(flags & 8),
    )  # fmt: skip
    (theirs,) = _to_aiortc(ours)
    assert isinstance(theirs, a.DataChunk)
    assert (theirs.flags, theirs.tsn, theirs.stream_id, theirs.stream_seq, theirs.protocol) == (
        flags,
        tsn,
        stream_id,
        ssn,
        ppid,
    )
    assert theirs.user_data == user_data
    assert _from_aiortc(theirs) == ours


# --- INIT / INIT-ACK ------------------------------------------------------------------

WEBRTC_INIT_PARAMS = (
    SupportedExtensionsParameter((130, 192, 64, 194)),
    ForwardTsnSupportedParameter(),
    ZeroChecksumAcceptableParameter(1),
    UnknownParameter(0x8002, b"\x11" * 33),  # RFC 4895 Random, odd length
)


@pytest.mark.parametrize("cls", ["InitChunk", "InitAckChunk"])
def test_init_and_init_ack_ours_to_aiortc(cls: str) -> None:
    params = WEBRTC_INIT_PARAMS
    if cls == "InitAckChunk":
        params = (StateCookieParameter(b"\xc0" * 37), *params)
    ours = (InitChunk if cls == "InitChunk" else InitAckChunk)(
        0xDEADBEEF, 1 << 20, 65535, 65534, 0x7FFFFFFF, params
    )
    (theirs,) = _to_aiortc(ours)
    assert type(theirs).__name__ == cls
    assert (
        theirs.initiate_tag,
        theirs.advertised_rwnd,
        theirs.outbound_streams,
        theirs.inbound_streams,
        theirs.initial_tsn,
    ) == (0xDEADBEEF, 1 << 20, 65535, 65534, 0x7FFFFFFF)
    assert theirs.params == [
        (p.type, p.serialize()[4 : struct.unpack_from("!H", p.serialize(), 2)[0]]) for p in params
    ]
    assert _from_aiortc(theirs) == ours


def test_aiortc_style_init_ack_to_ours() -> None:
    # the parameters aiortc's own INIT-ACK carries, in its encoding (0xC000, 0x8008, cookie)
    theirs = _aiortc_chunk(
        a.InitAckChunk,
        initiate_tag=42,
        advertised_rwnd=131072,
        outbound_streams=65535,
        inbound_streams=65535,
        initial_tsn=1000,
        params=[(0xC000, b""), (0x8008, bytes([192, 130])), (7, b"cookie-bytes-with-odd-len")],
    )
    ours = _from_aiortc(theirs)
    assert ours == InitAckChunk(
        42,
        131072,
        65535,
        65535,
        1000,
        (
            ForwardTsnSupportedParameter(),
            SupportedExtensionsParameter((192, 130)),
            StateCookieParameter(b"cookie-bytes-with-odd-len"),
        ),
    )
    assert isinstance(ours, InitAckChunk) and ours.cookie == b"cookie-bytes-with-odd-len"


# --- SACK -----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    cum=st.integers(0, 2**32 - 1),
    rwnd=st.integers(0, 2**32 - 1),
    gaps=st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535)), max_size=40),
    dups=st.lists(st.integers(0, 2**32 - 1), max_size=40),
)
def test_sack_with_gaps_and_duplicates_both_ways(
    cum: int, rwnd: int, gaps: list[tuple[int, int]], dups: list[int]
) -> None:
    ours = SackChunk(cum, rwnd, tuple(gaps), tuple(dups))
    (theirs,) = _to_aiortc(ours)
    assert isinstance(theirs, a.SackChunk)
    assert (theirs.cumulative_tsn, theirs.advertised_rwnd) == (cum, rwnd)
    assert [tuple(g) for g in theirs.gaps] == gaps
    assert theirs.duplicates == dups
    assert _from_aiortc(theirs) == ours


# --- the small control chunks -----------------------------------------------------------


@pytest.mark.parametrize("info", [b"", b"x", b"hb-info-123", bytes(range(64))])
def test_heartbeat_and_ack_both_ways(info: bytes) -> None:
    pairs = (
        (HeartbeatChunk(info), a.HeartbeatChunk),
        (HeartbeatAckChunk(info), a.HeartbeatAckChunk),
    )
    for ours, cls in pairs:
        (theirs,) = _to_aiortc(ours)
        assert isinstance(theirs, cls)
        assert theirs.params == [(1, info)]
        assert _from_aiortc(_aiortc_chunk(cls, params=[(1, info)])) == ours


def test_abort_and_error_both_ways() -> None:
    causes = (InvalidStreamIdentifierCause(9), UserInitiatedAbortCause(b"odd"))
    for ours, cls, flags in (
        (AbortChunk(True, causes), a.AbortChunk, 1),
        (AbortChunk(False, causes), a.AbortChunk, 0),
        (ErrorChunk(causes), a.ErrorChunk, 0),
    ):
        (theirs,) = _to_aiortc(ours)
        assert isinstance(theirs, cls)
        assert theirs.flags == flags
        assert theirs.params == [(1, b"\x00\x09\x00\x00"), (12, b"odd")]
        back = _aiortc_chunk(cls, flags=flags, params=[(1, b"\x00\x09\x00\x00"), (12, b"odd")])
        assert _from_aiortc(back) == ours
    # aiortc's own abort when it gives up: a Protocol Violation cause
    theirs = _aiortc_chunk(a.AbortChunk, params=[(13, b"Expected SACK")])
    assert _from_aiortc(theirs) == AbortChunk(False, (ProtocolViolationCause(b"Expected SACK"),))


def test_shutdown_family_both_ways() -> None:
    (theirs,) = _to_aiortc(ShutdownChunk(0xFFFFFFFE))
    assert isinstance(theirs, a.ShutdownChunk) and theirs.cumulative_tsn == 0xFFFFFFFE
    assert _from_aiortc(_aiortc_chunk(a.ShutdownChunk, cumulative_tsn=77)) == ShutdownChunk(77)

    (theirs,) = _to_aiortc(ShutdownAckChunk())
    assert isinstance(theirs, a.ShutdownAckChunk)
    assert _from_aiortc(a.ShutdownAckChunk()) == ShutdownAckChunk()

    for t_bit in (False, True):
        (theirs,) = _to_aiortc(ShutdownCompleteChunk(t_bit))
        assert isinstance(theirs, a.ShutdownCompleteChunk) and theirs.flags == int(t_bit)
        assert _from_aiortc(a.ShutdownCompleteChunk(flags=int(t_bit))) == ShutdownCompleteChunk(
            t_bit
        )


@pytest.mark.parametrize("cookie", [b"c", b"cookie", bytes(range(200))])
def test_cookie_echo_and_ack_both_ways(cookie: bytes) -> None:
    theirs, ack = _to_aiortc(CookieEchoChunk(cookie), CookieAckChunk())
    assert isinstance(theirs, a.CookieEchoChunk) and theirs.body == cookie
    assert isinstance(ack, a.CookieAckChunk)
    assert _from_aiortc(a.CookieEchoChunk(body=cookie)) == CookieEchoChunk(cookie)
    assert _from_aiortc(a.CookieAckChunk()) == CookieAckChunk()


@pytest.mark.parametrize("streams", [(), ((1, 2),), ((0, 65535), (65535, 0), (7, 7))])
def test_forward_tsn_both_ways(streams: tuple[tuple[int, int], ...]) -> None:
    ours = ForwardTsnChunk(123456, streams)
    (theirs,) = _to_aiortc(ours)
    assert isinstance(theirs, a.ForwardTsnChunk)
    assert theirs.cumulative_tsn == 123456 and [tuple(s) for s in theirs.streams] == list(streams)
    back = _aiortc_chunk(a.ForwardTsnChunk, cumulative_tsn=123456, streams=list(streams))
    assert _from_aiortc(back) == ours


def test_reconfig_both_ways() -> None:
    ours = ReconfigChunk(
        (
            OutgoingSsnResetRequest(5, 6, 7, (1, 3, 5)),
            ReconfigResponse(4, ReconfigResult.SUCCESS_PERFORMED),
        )
    )
    (theirs,) = _to_aiortc(ours)
    assert isinstance(theirs, a.ReconfigChunk)
    (t1, v1), (t2, v2) = theirs.params
    assert (t1, a.StreamResetOutgoingParam.parse(v1)) == (
        13,
        a.StreamResetOutgoingParam(5, 6, 7, [1, 3, 5]),
    )
    assert (t2, a.StreamResetResponseParam.parse(v2)) == (16, a.StreamResetResponseParam(4, 1))

    # what aiortc sends when it closes a data channel, and its answer to ours
    params = [
        (13, bytes(a.StreamResetOutgoingParam(9, 8, 100, [2]))),
        (16, bytes(a.StreamResetResponseParam(3, 1))),
    ]
    assert _from_aiortc(_aiortc_chunk(a.ReconfigChunk, params=params)) == ReconfigChunk(
        (OutgoingSsnResetRequest(9, 8, 100, (2,)), ReconfigResponse(3, 1))
    )


def test_bundle_of_control_and_data_parses_in_aiortc() -> None:
    chunks: tuple[Chunk, ...] = (
        SackChunk(10, 5000, ((2, 2),), (9,)),
        ForwardTsnChunk(8),
        DataChunk(11, 1, 0, 51, b"a"),
        DataChunk(12, 1, 1, 53, b"bc"),
        HeartbeatAckChunk(b"xyz"),
    )
    parsed = _to_aiortc(*chunks)
    assert [type(c).__name__ for c in parsed] == [
        "SackChunk",
        "ForwardTsnChunk",
        "DataChunk",
        "DataChunk",
        "HeartbeatAckChunk",
    ]
    assert [c.user_data for c in parsed[2:4]] == [b"a", b"bc"]  # type: ignore[attr-defined]


def test_aiortc_refuses_our_corrupted_checksum() -> None:
    raw = bytearray(serialize_packet(Packet(*PORTS_TAG, (CookieAckChunk(),))))
    raw[8] ^= 0x80
    with pytest.raises(ValueError, match="checksum"):
        a.parse_packet(bytes(raw))
