"""Coverage-guided fuzz targets (atheris/libFuzzer).

    python tests/fuzz/target.py NAME [libFuzzer flags] [CORPUS_DIR ...]

Each target states its contract: parsers may raise only errors from
``webrtc_secure.errors``; a DtlsConnection's ``receive_datagram`` may raise nothing.
Anything else is a crash, which libFuzzer saves as ``crash-*`` for a regression test.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris
from aiortc import rtcsctptransport as aiortc_sctp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["webrtc_secure"]):
    from webrtc_secure.certificate import Certificate
    from webrtc_secure.description import SessionDescription
    from webrtc_secure.dtls.connection import DtlsConnection
    from webrtc_secure.dtls.messages import (
        CertificateMessage,
        CertificateRequest,
        CertificateVerify,
        ClientHello,
        ClientKeyExchange,
        Finished,
        HelloVerifyRequest,
        ServerHello,
        ServerHelloDone,
        ServerKeyExchange,
        parse_handshake_fragments,
    )
    from webrtc_secure.dtls.reassembly import Reassembler
    from webrtc_secure.dtls.records import parse_records
    from webrtc_secure.errors import ChecksumMismatch, MalformedSctpPacket, WebrtcSecureError
    from webrtc_secure.sctp import (
        AbortChunk,
        CookieEchoChunk,
        DataChunk,
        ErrorChunk,
        ForwardTsnChunk,
        HeartbeatAckChunk,
        HeartbeatChunk,
        InitAckChunk,
        InitChunk,
        ReconfigChunk,
        SackChunk,
        ShutdownChunk,
        crc32c,
        parse_chunk,
        parse_packet,
        serialize_packet,
    )
    from webrtc_secure.sctp.parameters import (
        parse_error_causes,
        parse_init_parameters,
        parse_reconfig_parameters,
    )
    from webrtc_secure.srtp import Profile, SrtpContext
    from webrtc_secure.srtp.rtp import rtp_header_length

MESSAGE_PARSERS = [
    ClientHello,
    ServerHello,
    HelloVerifyRequest,
    CertificateMessage,
    ServerKeyExchange,
    CertificateRequest,
    ServerHelloDone,
    CertificateVerify,
    ClientKeyExchange,
    Finished,
]
_CERT = Certificate.generate()
_SRTP = {p: SrtpContext(p, bytes(p.key_length), bytes(p.salt_length)) for p in Profile}


def _typed_only(fn: Callable[[], object]) -> None:
    with contextlib.suppress(WebrtcSecureError):
        fn()


def records(data: bytes) -> None:
    parse_records(data)  # never raises: malformed input ends the parse


def messages(data: bytes) -> None:
    if not data:
        return
    parser = MESSAGE_PARSERS[data[0] % len(MESSAGE_PARSERS)]
    _typed_only(lambda: parser.parse(data[1:]))
    _typed_only(lambda: parse_handshake_fragments(data[1:]))


def reassembly(data: bytes) -> None:
    reassembler = Reassembler(max_message_size=4096, max_messages_ahead=4)
    try:
        fragments = parse_handshake_fragments(data)
    except WebrtcSecureError:
        return
    for fragment in fragments:
        reassembler.add(fragment, 0)
        while (message := reassembler.pop_ready()) is not None:
            assert len(message.body) <= 4096
    assert reassembler.buffered_bytes <= 4 * 4096


def _engine(is_client: bool) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        # the "peer" is the fuzzer: pin a certificate it cannot present
        conn = DtlsConnection(
            is_client, _CERT, cookies=False, remote_fingerprints=_CERT.fingerprints()
        )
        conn.connect(0.0)
        # a datagram may hold several: split on a marker so one input can be a flight
        for piece in data.split(b"\xff\xfe\xfd"):
            conn.receive_datagram(piece, 0.0)
        conn.handle_timer(1.0)
        conn.datagrams_to_send(1.0)

    return run


def rtp(data: bytes) -> None:
    _typed_only(lambda: rtp_header_length(data))
    for context in _SRTP.values():
        _typed_only(lambda c=context: c.unprotect(data))
        _typed_only(lambda c=context: c.unprotect_rtcp(data))
        _typed_only(lambda c=context: c.protect(data))
        _typed_only(lambda c=context: c.protect_rtcp(data))


def sdp(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    _typed_only(lambda: SessionDescription.from_sdp(text, "offer"))
    _typed_only(lambda: SessionDescription.from_json(data))


def sctp_packet(data: bytes) -> None:
    """SCTP codec: only MalformedSctpPacket may escape; what parses re-encodes to a
    packet that parses the same, and never holds more chunks than 4-octet slots."""
    with contextlib.suppress(MalformedSctpPacket):
        parse_packet(data)  # the CRC gate (almost always ChecksumMismatch)
    with contextlib.suppress(MalformedSctpPacket):
        parse_packet(data, allow_zero_checksum=True)
    try:
        packet = parse_packet(data, verify_checksum=False)  # everything past the CRC
    except ChecksumMismatch as e:
        raise AssertionError("checksum verification was off") from e
    except MalformedSctpPacket:
        packet = None
    if packet is not None:
        assert len(packet.chunks) <= (len(data) - 12) // 4
        assert parse_packet(serialize_packet(packet)) == packet
    with contextlib.suppress(MalformedSctpPacket):
        chunk = parse_chunk(data)
        assert parse_chunk(chunk.serialize()) == chunk
    # the TLV areas on their own, chosen by the first octet
    if data:
        parser = (parse_init_parameters, parse_reconfig_parameters, parse_error_causes)[data[0] % 3]
        with contextlib.suppress(MalformedSctpPacket):
            assert len(parser(data[1:])) <= len(data) // 4


def _tlv_value(tlv: bytes) -> bytes:
    return tlv[4 : int.from_bytes(tlv[2:4], "big")]


def _same_chunk(ours: object, theirs: Any) -> None:
    """The fields both codecs decode must agree (reserved bits aside: ours drops them)."""
    assert ours.type == theirs.type  # type: ignore[attr-defined]
    if isinstance(ours, DataChunk):
        flags = ours.immediate << 3 | ours.unordered << 2 | ours.beginning << 1 | ours.ending
        assert flags == theirs.flags & 0x0F
        assert (ours.tsn, ours.stream_id, ours.stream_seq, ours.ppid, ours.user_data) == (
            theirs.tsn, theirs.stream_id, theirs.stream_seq, theirs.protocol, theirs.user_data,
        )  # fmt: skip
    elif isinstance(ours, (InitChunk, InitAckChunk)):
        assert (ours.initiate_tag, ours.a_rwnd, ours.outbound_streams, ours.inbound_streams,
                ours.initial_tsn) == (theirs.initiate_tag, theirs.advertised_rwnd,
                theirs.outbound_streams, theirs.inbound_streams, theirs.initial_tsn)  # fmt: skip
        assert [p.type for p in ours.parameters] == [t for t, _ in theirs.params]
    elif isinstance(ours, SackChunk):
        assert (ours.cumulative_tsn, ours.a_rwnd) == (theirs.cumulative_tsn, theirs.advertised_rwnd)
        assert list(ours.gap_blocks) == [tuple(g) for g in theirs.gaps]
        assert list(ours.duplicate_tsns) == theirs.duplicates
    elif isinstance(ours, (HeartbeatChunk, HeartbeatAckChunk)):
        assert ours.info == next(v for t, v in theirs.params if t == 1)
    elif isinstance(ours, (AbortChunk, ErrorChunk)):
        assert [c.code for c in ours.causes] == [t for t, _ in theirs.params]
    elif isinstance(ours, ReconfigChunk):
        assert [p.type for p in ours.parameters] == [t for t, _ in theirs.params]
    elif isinstance(ours, ForwardTsnChunk):
        assert ours.new_cumulative_tsn == theirs.cumulative_tsn
        assert list(ours.streams) == [tuple(s) for s in theirs.streams]
    elif isinstance(ours, ShutdownChunk):
        assert ours.cumulative_tsn == theirs.cumulative_tsn
    elif isinstance(ours, CookieEchoChunk):
        assert ours.cookie == theirs.body


def sctp_aiortc_diff(data: bytes) -> None:
    """Differential against aiortc's SCTP parser: for a packet ours accepts (CRC made
    valid first), aiortc decodes the same fields. aiortc is only asked about packets
    ours accepted: its TLV loop spins forever on a zero length, which ours refuses."""
    if len(data) < 16:
        return
    raw = data[:8] + (crc32c(data[:8] + bytes(4) + data[12:])).to_bytes(4, "little") + data[12:]
    try:
        packet = parse_packet(raw)
    except MalformedSctpPacket:
        return
    _, _, tag, theirs = aiortc_sctp.parse_packet(raw)
    assert tag == packet.verification_tag
    ours = [c for c in packet.chunks if c.type in aiortc_sctp.CHUNK_TYPES]
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs, strict=True):
        _same_chunk(mine, other)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "records": records,
    "messages": messages,
    "reassembly": reassembly,
    "dtls_server": _engine(False),
    "dtls_client": _engine(True),
    "rtp": rtp,
    "sdp": sdp,
    "sctp_packet": sctp_packet,
    "sctp_aiortc_diff": sctp_aiortc_diff,
}


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Fuzz()


if __name__ == "__main__":
    main()
