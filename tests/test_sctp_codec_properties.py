"""Properties of the SCTP codec under hypothesis: every chunk round-trips; random,
mutated and truncated bytes give a Packet or a typed error, never another exception;
what parses re-serializes to something that parses the same; absurd counts and
lengths stay bounded by the input's size."""

from __future__ import annotations

import contextlib
import struct
import tracemalloc

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from webrtc_secure.errors import ChecksumMismatch, MalformedSctpPacket
from webrtc_secure.sctp import (
    COMMON_HEADER_SIZE,
    AbortChunk,
    AddIncomingStreamsRequest,
    AddOutgoingStreamsRequest,
    Chunk,
    CookieAckChunk,
    CookieEchoChunk,
    CookiePreservativeParameter,
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
    InvalidStreamIdentifierCause,
    Ipv4AddressParameter,
    MissingMandatoryParameterCause,
    NoUserDataCause,
    OutgoingSsnResetRequest,
    OutOfResourceCause,
    Packet,
    ProtocolViolationCause,
    ReconfigChunk,
    ReconfigResponse,
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
    UserInitiatedAbortCause,
    ZeroChecksumAcceptableParameter,
    bundle,
    crc32c,
    encoded_size,
    packet_size,
    parse_chunk,
    parse_packet,
    serialize_chunks,
    serialize_packet,
)

U8 = st.integers(0, 255)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
BLOB = st.binary(max_size=80)
KNOWN_CHUNK_TYPES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 64, 130, 192, 194}
KNOWN_PARAMETER_TYPES = {5, 6, 7, 8, 9, 12, 0x8000, 0x8001, 0x8008, 0xC000}
KNOWN_RECONFIG_TYPES = {13, 14, 15, 16, 17, 18}

init_parameters = st.one_of(
    st.builds(StateCookieParameter, BLOB),
    st.builds(UnrecognizedParameter, BLOB),
    st.builds(CookiePreservativeParameter, U32),
    st.builds(Ipv4AddressParameter, st.binary(min_size=4, max_size=4)),
    st.builds(SupportedAddressTypesParameter, st.lists(U16, max_size=4).map(tuple)),
    st.builds(SupportedExtensionsParameter, st.lists(U8, max_size=8).map(tuple)),
    st.just(ForwardTsnSupportedParameter()),
    st.just(EcnCapableParameter()),
    st.builds(ZeroChecksumAcceptableParameter, U32),
    st.builds(UnknownParameter, U16.filter(lambda t: t not in KNOWN_PARAMETER_TYPES), BLOB),
)
reconfig_parameters = st.one_of(
    st.builds(OutgoingSsnResetRequest, U32, U32, U32, st.lists(U16, max_size=8).map(tuple)),
    st.builds(IncomingSsnResetRequest, U32, st.lists(U16, max_size=8).map(tuple)),
    st.builds(SsnTsnResetRequest, U32),
    st.builds(ReconfigResponse, U32, U32),
    st.builds(ReconfigResponse, U32, U32, U32, U32),
    st.builds(AddOutgoingStreamsRequest, U32, U16),
    st.builds(AddIncomingStreamsRequest, U32, U16),
    st.builds(UnknownParameter, U16.filter(lambda t: t not in KNOWN_RECONFIG_TYPES), BLOB),
)
causes = st.one_of(
    st.builds(InvalidStreamIdentifierCause, U16),
    st.builds(MissingMandatoryParameterCause, st.lists(U16, max_size=4).map(tuple)),
    st.builds(StaleCookieCause, U32),
    st.just(OutOfResourceCause()),
    st.builds(UnrecognizedChunkTypeCause, BLOB),
    st.builds(NoUserDataCause, U32),
    st.builds(UserInitiatedAbortCause, BLOB),
    st.builds(ProtocolViolationCause, BLOB),
    st.builds(UnknownCause, st.integers(14, 0xFFFF), BLOB),
)


@st.composite
def idata_chunks(draw: st.DrawFn) -> IDataChunk:
    beginning = draw(st.booleans())
    return IDataChunk(
        draw(U32),
        draw(U16),
        draw(U32),
        draw(U32) if beginning else 0,
        0 if beginning else draw(U32),
        draw(st.binary(max_size=300)),
        draw(st.booleans()),
        beginning,
        draw(st.booleans()),
        draw(st.booleans()),
    )


chunks: st.SearchStrategy[Chunk] = st.one_of(
    st.builds(
        DataChunk,
        U32,
        U16,
        U16,
        U32,
        st.binary(max_size=300),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    idata_chunks(),
    st.builds(InitChunk, U32, U32, U16, U16, U32, st.lists(init_parameters, max_size=6).map(tuple)),
    st.builds(
        InitAckChunk, U32, U32, U16, U16, U32, st.lists(init_parameters, max_size=6).map(tuple)
    ),
    st.builds(
        SackChunk,
        U32,
        U32,
        st.lists(st.tuples(U16, U16), max_size=20).map(tuple),
        st.lists(U32, max_size=20).map(tuple),
    ),
    st.builds(HeartbeatChunk, BLOB),
    st.builds(HeartbeatAckChunk, BLOB),
    st.builds(AbortChunk, st.booleans(), st.lists(causes, max_size=4).map(tuple)),
    st.builds(ShutdownChunk, U32),
    st.just(ShutdownAckChunk()),
    st.builds(ErrorChunk, st.lists(causes, max_size=4).map(tuple)),
    st.builds(CookieEchoChunk, BLOB),
    st.just(CookieAckChunk()),
    st.builds(ShutdownCompleteChunk, st.booleans()),
    st.builds(ForwardTsnChunk, U32, st.lists(st.tuples(U16, U16), max_size=10).map(tuple)),
    st.builds(
        IForwardTsnChunk, U32, st.lists(st.tuples(U16, st.booleans(), U32), max_size=10).map(tuple)
    ),
    st.builds(ReconfigChunk, st.lists(reconfig_parameters, min_size=1, max_size=2).map(tuple)),
    st.builds(UnknownChunk, U8.filter(lambda t: t not in KNOWN_CHUNK_TYPES), U8, BLOB),
)


@settings(max_examples=400, deadline=None)
@given(chunks)
def test_every_chunk_round_trips(chunk: Chunk) -> None:
    wire = chunk.serialize()
    assert len(wire) % 4 == 0
    assert encoded_size(chunk) == len(wire)
    length = struct.unpack_from("!H", wire, 2)[0]
    assert 4 <= length <= len(wire) < length + 4  # the length excludes only padding
    assert parse_chunk(wire) == chunk


@settings(max_examples=150, deadline=None)
@given(U16, U16, U32, st.lists(chunks, min_size=1, max_size=8), st.booleans())
def test_packets_round_trip(
    sport: int, dport: int, tag: int, body: list[Chunk], zero_checksum: bool
) -> None:
    packet = Packet(sport, dport, tag, tuple(body))
    raw = serialize_packet(packet, zero_checksum=zero_checksum)
    assert parse_packet(raw, allow_zero_checksum=zero_checksum) == packet


def _typed_parse(raw: bytes) -> Packet | None:
    """Parse with the CRC recomputed so the chunk parsers see the bytes; only the
    typed error may escape."""
    if len(raw) >= COMMON_HEADER_SIZE:
        raw = raw[:8] + struct.pack("<I", crc32c(raw[:8] + bytes(4) + raw[12:])) + raw[12:]
    try:
        packet = parse_packet(raw)
    except MalformedSctpPacket as e:
        assert not isinstance(e, ChecksumMismatch)
        return None
    # bounded output: every chunk took at least 4 octets of input
    assert len(packet.chunks) <= (len(raw) - COMMON_HEADER_SIZE) // 4
    # whatever parsed re-encodes to a packet that parses the same (canonical form)
    again = serialize_packet(packet)
    assert parse_packet(again) == packet
    return packet


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_give_a_packet_or_a_typed_error(raw: bytes) -> None:
    _typed_parse(raw)
    with contextlib.suppress(MalformedSctpPacket):
        parse_packet(raw)  # checksum checked: almost always ChecksumMismatch


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chunks, min_size=1, max_size=5), st.data())
def test_mutated_packets_give_a_packet_or_a_typed_error(
    body: list[Chunk], data: st.DataObject
) -> None:
    raw = bytearray(serialize_packet(Packet(5000, 5000, 1, tuple(body))))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(COMMON_HEADER_SIZE, len(raw) - 1))
        raw[pos] = data.draw(U8)
    _typed_parse(bytes(raw))


@settings(max_examples=100, deadline=None)
@given(st.lists(chunks, min_size=1, max_size=4))
def test_every_truncation_gives_a_packet_or_a_typed_error(body: list[Chunk]) -> None:
    raw = serialize_packet(Packet(5000, 5000, 1, tuple(body)))
    for size in range(len(raw)):
        _typed_parse(raw[:size])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(KNOWN_CHUNK_TYPES)),
    U8,
    st.integers(0, 0xFFFF),
    st.binary(max_size=64),
)
def test_lying_chunk_lengths_are_refused(type_: int, flags: int, length: int, body: bytes) -> None:
    area = struct.pack("!BBH", type_, flags, length) + body
    assume(length < 4 or length > len(area))
    raw = serialize_chunks(5000, 5000, 1, [area])
    try:
        parse_packet(raw)
    except MalformedSctpPacket as e:
        assert not isinstance(e, ChecksumMismatch)
    else:
        raise AssertionError("a chunk length below 4 or past the packet was accepted")


@settings(max_examples=200, deadline=None)
@given(U16, U16, st.lists(U32, max_size=30))
def test_absurd_sack_counts_are_refused_before_allocating(
    ngaps: int, ndups: int, words: list[int]
) -> None:
    value = struct.pack("!IIHH", 1, 2, ngaps, ndups) + struct.pack(f"!{len(words)}I", *words)
    area = struct.pack("!BBH", 3, 0, 4 + len(value)) + value
    raw = serialize_chunks(5000, 5000, 1, [area])
    if ngaps + ndups == len(words):
        (sack,) = parse_packet(raw).chunks
        assert isinstance(sack, SackChunk)
        assert len(sack.gap_blocks) == ngaps and len(sack.duplicate_tsns) == ndups
    else:
        try:
            parse_packet(raw)
        except MalformedSctpPacket:
            pass
        else:
            raise AssertionError("SACK counts that disagree with its length were accepted")


def _peak_bytes(raw: bytes) -> int:
    tracemalloc.start()
    try:
        parse_packet(raw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_worst_case_inputs_stay_linear_in_the_input() -> None:
    """The largest chunk a packet can hold, made of the smallest repeated units, costs
    memory proportional to its size: no count field is trusted to size anything."""
    most = 0xFFFF - 4
    n = (most - 12) // 4
    sack = SackChunk(0, 0, tuple((i & 0xFFFF, 0) for i in range(n)), ()).serialize()
    forward = ForwardTsnChunk(0, tuple((i & 0xFFFF, 0) for i in range(n))).serialize()
    tiny = CookieAckChunk().serialize() * (most // 4)
    params = InitChunk(1, 1, 1, 1, 1, (ForwardTsnSupportedParameter(),) * ((most - 20) // 4))
    worst = [sack, forward, tiny, params.serialize()]
    for area in worst:
        raw = serialize_chunks(5000, 5000, 1, [area])
        assert len(raw) <= 0xFFFF + COMMON_HEADER_SIZE
        # ~16k small objects; generous linear bound (200 octets of Python objects per
        # input octet would be 13 MB), far from what an unchecked count could request
        assert _peak_bytes(raw) < 200 * len(raw)


@settings(max_examples=150, deadline=None)
@given(st.lists(chunks, max_size=30), st.integers(300, 1500))
def test_bundle_packs_in_order_within_the_limit(body: list[Chunk], max_size: int) -> None:
    body = [c for c in body if encoded_size(c) <= max_size - COMMON_HEADER_SIZE]
    packets = bundle(body, max_size)
    assert [c for p in packets for c in p] == body
    for i, p in enumerate(packets):
        raw = serialize_packet(Packet(1, 2, 3, p))
        assert len(raw) == packet_size(p) <= max_size
        assert parse_packet(raw).chunks == p
        if i + 1 < len(packets):
            # greedy: the next packet's first chunk would not have fitted
            assert packet_size(p) + encoded_size(packets[i + 1][0]) > max_size
