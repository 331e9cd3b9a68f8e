"""Seed corpora for the fuzz targets, made from real captures and our own traffic."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import handshake_captures, load_vector  # noqa: E402


def _capture_datagrams() -> list[bytes]:
    out = []
    for path in handshake_captures():
        out += [bytes.fromhex(d["hex"]) for d in json.loads(path.read_text())["datagrams"]]
    fixture = ROOT / "tests" / "browser" / "chromium_client_hello.json"
    if fixture.exists():
        text = fixture.read_text()
        for value in json.loads(text).get("raw_datagrams", []):
            out.append(bytes.fromhex(value))
    return out


def _our_handshake() -> list[bytes]:
    from tests.dtls_pair import cert
    from webrtc_secure.dtls import DtlsConnection

    client = DtlsConnection(True, cert("a"), mtu=300, remote_fingerprints=cert("b").fingerprints())
    server = DtlsConnection(False, cert("b"), mtu=300, remote_fingerprints=cert("a").fingerprints())
    client.connect(0.0)
    out: list[bytes] = []
    for _ in range(10):
        for sender, receiver in ((client, server), (server, client)):
            for d in sender.datagrams_to_send(0.0):
                out.append(d)
                receiver.receive_datagram(d, 0.0)
    return out


def _media() -> list[bytes]:
    out = []
    vectors = load_vector("srtp_packet_vectors.json")["vectors"]
    for v in vectors:
        for kind in ("rtp", "rtcp"):
            if kind in v:
                out += [bytes.fromhex(v[kind]["plaintext"]), bytes.fromhex(v[kind]["protected"])]
    out.append(struct.pack("!BBHII", 0x93, 96, 1, 2, 3) + b"\x00" * 12 + b"\xbe\xde\x00\x01abcd")
    return out


def _sdp() -> list[bytes]:
    out = []
    for name in ("chromium_offer.sdp", "chromium_answer.sdp"):
        path = ROOT / "tests" / "browser" / name
        if path.exists():
            out.append(path.read_bytes())
    return out


def _sctp() -> list[bytes]:
    """SCTP packets covering every chunk, parameter and cause the codec knows, built by
    our serializer and by aiortc's (an independent encoder: its parameter padding and
    chunk lengths differ from ours where RFC 9260 lets them)."""
    from tests.test_sctp_codec import ALL_CAUSES, ALL_PARAMETERS, WIRE
    from webrtc_secure.sctp import (
        AbortChunk,
        InitAckChunk,
        InitChunk,
        Packet,
        ReconfigChunk,
        SackChunk,
        serialize_chunks,
        serialize_packet,
    )
    from webrtc_secure.sctp.parameters import (
        AddOutgoingStreamsRequest,
        ReconfigResponse,
        SsnTsnResetRequest,
    )

    out = [serialize_chunks(5000, 5000, 1, [wire]) for _, _, wire in WIRE]
    out.append(serialize_packet(Packet(5000, 5000, 2, tuple(c for _, c, _ in WIRE))))
    out.append(serialize_packet(Packet(5000, 5000, 0, (InitChunk(1, 2, 3, 4, 5, ALL_PARAMETERS),))))
    out.append(serialize_packet(Packet(1, 2, 3, (InitAckChunk(1, 2, 3, 4, 5, ALL_PARAMETERS),))))
    out.append(
        serialize_packet(Packet(1, 2, 3, (AbortChunk(True, ALL_CAUSES),)), zero_checksum=True)
    )
    reconfig = (
        SsnTsnResetRequest(1),
        ReconfigResponse(2, 1, 3, 4),
        AddOutgoingStreamsRequest(5, 6),
    )
    out.append(serialize_packet(Packet(1, 2, 3, (ReconfigChunk(reconfig),))))
    sack = SackChunk(100, 5000, tuple((i, i + 1) for i in range(1, 40, 3)), (7, 8, 9))
    out.append(serialize_packet(Packet(1, 2, 3, (sack,))))
    try:
        from aiortc import rtcsctptransport as a
    except ImportError:  # a test-only dependency; our own seeds suffice to start
        return out
    init = a.InitChunk()
    init.initiate_tag, init.advertised_rwnd, init.initial_tsn = 7, 131072, 99
    init.outbound_streams = init.inbound_streams = 65535
    init.params = [(0xC000, b""), (0x8008, bytes([192, 130])), (7, b"odd-cookie")]
    data = a.DataChunk(flags=3)
    data.user_data = b"hello"
    out += [a.serialize_packet(5000, 5000, 9, c) for c in (init, data, a.CookieAckChunk())]
    return out


def write_corpora(base: Path) -> dict[str, Path]:
    """One directory of seeds per target; returns target -> directory."""
    datagrams = _capture_datagrams() + _our_handshake()
    payloads = [d[13:] for d in datagrams if len(d) > 13 and d[0] == 22]
    seeds = {
        "records": datagrams,
        "messages": [bytes([i]) + p[12:] for i, p in enumerate(payloads)],
        "reassembly": payloads,
        "dtls_server": datagrams,
        "dtls_client": datagrams,
        "rtp": _media(),
        "sdp": _sdp(),
        "sctp_packet": _sctp(),
        "sctp_aiortc_diff": _sctp(),
    }
    dirs = {}
    for target, items in seeds.items():
        directory = base / target
        directory.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(items):
            (directory / f"seed-{i:04d}").write_bytes(item)
        dirs[target] = directory
    return dirs


if __name__ == "__main__":
    for target, directory in write_corpora(
        Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz-corpus")
    ).items():
        print(target, directory, len(os.listdir(directory)))
