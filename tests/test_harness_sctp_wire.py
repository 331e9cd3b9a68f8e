"""The wire decoder of the data channel interop tests (tests/browser/sctp_wire.py).

It must open real DTLS 1.2 records from nothing but a capture and a key log, for every
suite a WebRTC peer may pick, and list the SCTP chunks inside, or fail loudly: a
truncated record or a lying chunk length is a WireDecodeError, a record that does not
authenticate is counted, never turned into chunks. Driven by two of our DtlsConnections
(the key log written by the client), with SCTP packets assembled by hand here, so the
decoder meets neither our SCTP codec nor anything it could agree with by accident.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.browser.sctp_wire import (
    Datagram,
    DtlsCapture,
    WireDecodeError,
    _records,
    decode_sctp,
    parse_chunks,
    prf,
)
from tests.dtls_pair import cert, pins
from webrtc_secure.dtls import CipherSuite, DtlsConnection

VECTORS = Path(__file__).resolve().parent / "vectors" / "tls12_prf_vectors.json"
CLIENT = ("127.0.0.1", 1000)
SERVER = ("127.0.0.1", 2000)


def _sctp(vtag: int, *chunks: bytes) -> bytes:
    """Common header (ports 5000, checksum left zero: the decoder does not check it)."""
    return struct.pack("!HHII", 5000, 5000, vtag, 0) + b"".join(chunks)


def _chunk(ctype: int, flags: int, body: bytes) -> bytes:
    raw = struct.pack("!BBH", ctype, flags, 4 + len(body)) + body
    return raw + b"\0" * (-len(raw) % 4)


def _data(tsn: int, stream: int, ppid: int, payload: bytes, flags: int = 3) -> bytes:
    return _chunk(0, flags, struct.pack("!IHHI", tsn, stream, 0, ppid) + payload)


def _sack(cum: int, rwnd: int, gaps: tuple[tuple[int, int], ...] = ()) -> bytes:
    body = struct.pack("!IIHH", cum, rwnd, len(gaps), 0)
    body += b"".join(struct.pack("!HH", s, e) for s, e in gaps)
    return _chunk(3, 0, body)


def _session(suite: CipherSuite, keylog: Path) -> tuple[DtlsConnection, DtlsConnection,
                                                         list[Datagram]]:
    """A handshake between two engines, every datagram kept as if captured on lo."""
    # the decoder reads DTLS 1.2 records (the suites below are 1.2 suites)
    client = DtlsConnection(True, cert("a"), cipher_suites=[suite], dtls_versions=("1.2",),
                            remote_fingerprints=pins("b"), keylog_file=str(keylog))
    server = DtlsConnection(False, cert("b"), cipher_suites=[suite], dtls_versions=("1.2",),
                            remote_fingerprints=pins("a"), cookies=False)
    wire: list[Datagram] = []
    now = 0.0
    client.connect(now)
    server.connect(now)
    for _ in range(20):
        _pump(client, server, wire, now)
        if client.is_connected and server.is_connected:
            return client, server, wire
        now += 0.01
    raise AssertionError("handshake did not complete")


def _pump(client: DtlsConnection, server: DtlsConnection, wire: list[Datagram],
          now: float) -> None:
    for sender, receiver, src, dst in ((client, server, CLIENT, SERVER),
                                       (server, client, SERVER, CLIENT)):
        for datagram in sender.datagrams_to_send(now):
            wire.append(Datagram(now, src, dst, datagram))
            receiver.receive_datagram(datagram, now)


@pytest.mark.parametrize("suite", [
    CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256,
    CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384,
    CipherSuite.ECDHE_ECDSA_CHACHA20_POLY1305_SHA256,
], ids=lambda s: s.name)
def test_decoder_opens_every_suite_both_ways(suite: CipherSuite, tmp_path: Path) -> None:
    keylog = tmp_path / "keylog"
    client, server, wire = _session(suite, keylog)
    client.send(_sctp(7, _chunk(1, 0, b"\0" * 16)))  # an INIT (body not parsed)
    server.send(_sctp(9, _sack(99, 65536, ((2, 3),)), _data(100, 1, 51, b"hi")))
    client.send(_sctp(7, _data(100, 1, 51, b"again")))  # the same TSN: a retransmission
    _pump(client, server, wire, 1.0)

    traces = decode_sctp(wire, keylog)
    assert len(traces) == 1
    trace = traces[0]
    assert (trace.client, trace.server, trace.suite) == (CLIENT, SERVER, int(suite))
    assert trace.undecryptable == 0
    # capture order: _pump forwards the client's datagrams first
    assert [(p.sender, p.verification_tag) for p in trace.packets] == [
        ("client", 7), ("client", 7), ("server", 9)]
    assert trace.chunk_names("client") == ["INIT", "DATA"]
    assert trace.chunk_names("server") == ["SACK", "DATA"]
    assert trace.handshake_chunks() == [("client", "INIT")]
    sack = trace.packets[2].chunks[0]
    assert (sack["cumulative_tsn"], sack["a_rwnd"], sack["gap_blocks"]) == (99, 65536, 1)
    assert trace.data_messages("server") == {"string": 1}
    assert trace.retransmitted("client") == 0 and trace.retransmitted("server") == 0
    assert trace.sack_facts("server") == {"sacks": 1, "with_gaps": 1,
                                          "duplicates_reported": 0, "min_a_rwnd": 65536}
    assert all(p.zero_checksum for p in trace.packets)


def test_retransmissions_counted_by_tsn(tmp_path: Path) -> None:
    keylog = tmp_path / "keylog"
    client, server, wire = _session(CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256, keylog)
    for _ in range(3):
        client.send(_sctp(7, _data(5, 0, 53, b"x")))
    _pump(client, server, wire, 1.0)
    (trace,) = decode_sctp(wire, keylog)
    assert trace.retransmitted("client") == 2
    assert trace.data_messages("client") == {"binary": 3}


def test_tampered_record_is_counted_not_decoded(tmp_path: Path) -> None:
    keylog = tmp_path / "keylog"
    client, server, wire = _session(CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256, keylog)
    client.send(_sctp(7, _data(1, 0, 51, b"secret")))
    _pump(client, server, wire, 1.0)
    last = wire[-1]
    flipped = last.payload[:-1] + bytes([last.payload[-1] ^ 1])
    wire[-1] = Datagram(last.at, last.src, last.dst, flipped)
    (trace,) = decode_sctp(wire, keylog)
    assert trace.undecryptable == 1 and trace.packets == []


def test_no_key_no_trace_and_wrong_key_decodes_nothing(tmp_path: Path) -> None:
    keylog = tmp_path / "keylog"
    client, server, wire = _session(CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256, keylog)
    client.send(_sctp(7, _data(1, 0, 51, b"secret")))
    _pump(client, server, wire, 1.0)
    assert decode_sctp(wire, tmp_path / "missing") == []
    line = keylog.read_text().split()
    wrong = tmp_path / "wrong"
    wrong.write_text(f"CLIENT_RANDOM {line[1]} {'00' * 48}\n")
    (trace,) = decode_sctp(wire, wrong)
    assert trace.packets == [] and trace.undecryptable >= 1


def test_truncated_record_and_lying_chunk_lengths_raise() -> None:
    record = bytes([23]) + b"\xfe\xfd" + b"\0\1" + b"\0" * 6 + struct.pack("!H", 40) + b"x" * 10
    with pytest.raises(WireDecodeError):
        _records(record)
    with pytest.raises(WireDecodeError):
        parse_chunks(b"\0" * 11)
    with pytest.raises(WireDecodeError):
        parse_chunks(struct.pack("!HHII", 1, 1, 1, 0) + struct.pack("!BBH", 0, 3, 200))
    with pytest.raises(WireDecodeError):
        parse_chunks(struct.pack("!HHII", 1, 1, 1, 0) + struct.pack("!BBH", 0, 3, 2))
    # a chunk too short for its fields is listed by type only, never read past its end
    vtag, zero, chunks = parse_chunks(struct.pack("!HHII", 1, 1, 5, 0) + _chunk(0, 3, b"ab"))
    assert (vtag, zero, chunks) == (5, True, [{"type": "DATA", "flags": 3, "length": 6}])


def test_prf_matches_the_published_vectors() -> None:
    vectors = json.loads(VECTORS.read_text())["vectors"]
    checked = 0
    for v in vectors:
        if not {"hash", "secret", "label", "seed", "output"} <= set(v):
            continue
        out = prf(bytes.fromhex(v["secret"]), bytes.fromhex(v["label"]),
                  bytes.fromhex(v["seed"]), len(v["output"]) // 2, v["hash"])
        assert out.hex() == v["output"]
        checked += 1
    assert checked >= 2


def test_capture_keeps_dtls_only() -> None:
    capture = DtlsCapture()
    dns = b">\x1e\x01\x00\x00\x01" + b"\0" * 20
    frame_head = b"\0" * 12 + b"\x08\x00"

    def frame(payload: bytes) -> bytes:
        udp = struct.pack("!HHHH", 5353, 53, 8 + len(payload), 0) + payload
        ip = bytes([0x45, 0]) + struct.pack("!H", 20 + len(udp)) + b"\0" * 5 + bytes([17])
        ip += b"\0\0" + bytes([127, 0, 0, 1, 127, 0, 0, 2])
        return frame_head + ip + udp

    capture._frame(frame(dns))
    capture._frame(frame(bytes([23]) + b"\xfe\xfd" + b"\0" * 20))
    capture._frame(frame(b"\x80" + b"\0" * 20))  # RTP
    assert [d.payload[0] for d in capture.datagrams] == [23]
    assert capture.datagrams[0].src == ("127.0.0.1", 5353)
