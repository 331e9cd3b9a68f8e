"""Structure-aware fuzz targets that go past the first message.

- ``dtls_server_deep`` / ``dtls_client_deep``: a DtlsConnection whose handshake is fully
  deterministic (fixed RSA certificates, RSA-PKCS1 signatures, seeded randomness, fixed
  cookie secret), so a recorded peer's datagrams replay to CONNECTED in any process and
  the fuzzer mutates real flights, application data, alerts and timer firings.
  Input: chunks ``op(1) length(2) payload``; op%4: 0 datagram, 1 fire the timer,
  2 send application data, 3 close.
- ``listener_deep``: a DtlsListener fed datagrams from two addresses (seeded with a
  cookie exchange and handshake bound to the first), timers and ``forget``; nothing
  escapes and no stateless reply is larger than its trigger.
- ``messages_roundtrip``: every handshake message/extension parser; what parses must
  serialize and parse back to the same value.
- ``records_roundtrip`` / ``fragments_roundtrip``: parse, re-serialize, compare.
- ``reassembly_diff``: messages cut into fuzzer-chosen fragments, shuffled and
  duplicated, must come out of the Reassembler byte-exact and in order.
- ``srtp_deep``: unprotect of raw input, protect->unprotect round trips for RTP and
  RTCP in all four profiles, replay refusal, and single-byte tampering never accepted.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import handshake_captures, load_vector
from webrtc_secure.certificate import Certificate
from webrtc_secure.dtls import (
    ApplicationData,
    CipherSuite,
    ConnectionClosed,
    DtlsConnection,
    HandshakeComplete,
    NamedGroup,
    SignatureScheme,
    State,
)
from webrtc_secure.dtls.codec import Reader, u16_list, vec
from webrtc_secure.dtls.cookies import CookieFactory
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.dtls.messages import (
    Alert,
    CertificateMessage,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    Finished,
    HandshakeFragment,
    HelloVerifyRequest,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchange,
    encode_use_srtp,
    parse_ec_point_formats,
    parse_extensions,
    parse_handshake_fragments,
    parse_renegotiation_info,
    parse_u16_list_extension,
    parse_use_srtp,
    serialize_extensions,
)
from webrtc_secure.dtls.reassembly import Reassembler
from webrtc_secure.dtls.records import parse_records
from webrtc_secure.errors import (
    MalformedPacket,
    ReplayDetected,
    WebrtcSecureError,
)
from webrtc_secure.srtp import Profile, SrtpContext

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
MTU = 1200


def _cert(name: str) -> Certificate:
    pem = (FIXTURES / f"{name}_rsa.pem").read_bytes()
    cert_end = pem.index(b"-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")
    return Certificate.from_pem(pem[:cert_end], pem[cert_end:])


CLIENT_CERT = _cert("client")
SERVER_CERT = _cert("server")


def seeded_random(label: bytes) -> Callable[[int], bytes]:
    counter = itertools.count()

    def random(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(label + next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    return random


def _options(label: bytes, mtu: int) -> dict[str, Any]:
    return {
        "signature_schemes": [SignatureScheme.RSA_PKCS1_SHA256],
        "cipher_suites": [
            CipherSuite.ECDHE_RSA_AES_128_GCM_SHA256,
            CipherSuite.ECDHE_RSA_CHACHA20_POLY1305_SHA256,
            CipherSuite.ECDHE_RSA_AES_256_GCM_SHA384,
        ],
        "groups": [NamedGroup.X25519, NamedGroup.SECP256R1],
        "mtu": mtu,
        "random": seeded_random(label),
    }


def _cookies() -> CookieFactory:
    return CookieFactory(b"fuzz-cookie-secret".ljust(32, b"."))


def make_engine(is_client: bool, *, mtu: int = MTU) -> DtlsConnection:
    """A DtlsConnection whose every output is a function of its input."""
    label = b"client" if is_client else b"server"
    return DtlsConnection(
        is_client,
        CLIENT_CERT if is_client else SERVER_CERT,
        cookie_factory=_cookies(),
        # each side pins the other's certificate, as a real endpoint does
        remote_fingerprints=(SERVER_CERT if is_client else CLIENT_CERT).fingerprints(),
        # this harness explores the DTLS 1.2 engine (its 1.3 targets: fuzz/target13.py)
        dtls_versions=("1.2",),
        **_options(label, mtu),
    )


LISTENER_ADDRESSES = (("192.0.2.1", 5000), ("192.0.2.2", 6000))


def make_listener() -> DtlsListener:
    return DtlsListener(
        SERVER_CERT,
        cookie_factory=_cookies(),
        remote_fingerprints=CLIENT_CERT.fingerprints(),
        dtls_versions=("1.2",),
        **_options(b"server", MTU),
    )


def chunks(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        op = data[i]
        n = int.from_bytes(data[i + 1 : i + 3], "big")
        out.append((op % 4, data[i + 3 : i + 3 + n]))
        i += 3 + n
    return out


def encode_chunks(items: list[tuple[int, bytes]]) -> bytes:
    return b"".join(bytes([op]) + len(p).to_bytes(2, "big") + p for op, p in items)


def _engine_target(is_client: bool) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        conn = make_engine(is_client)
        now = 0.0
        conn.connect(now)
        completed = closed = False
        for op, payload in chunks(data):
            now += 0.01
            sent_app = False
            if op == 0:
                conn.receive_datagram(payload, now)
            elif op == 1:
                timer = conn.get_timer()
                now = max(now, timer) if timer is not None else now + 1.0
                conn.handle_timer(now)
            elif op == 2:
                if conn.state == State.CONNECTED:
                    conn.send(payload)
                    sent_app = True
                else:
                    try:
                        conn.send(payload)
                    except WebrtcSecureError:
                        pass
                    else:
                        raise AssertionError(f"send() accepted data in {conn.state}")
            else:
                conn.close()
            for datagram in conn.datagrams_to_send(now):
                if not sent_app:
                    assert len(datagram) <= MTU, f"{len(datagram)}-octet datagram > MTU"
            while (event := conn.next_event()) is not None:
                assert not closed, f"event {event!r} after ConnectionClosed"
                if isinstance(event, HandshakeComplete):
                    assert not completed, "second HandshakeComplete"
                    completed = True
                    assert conn.export_keying_material("EXTRACTOR-dtls_srtp", 60)
                elif isinstance(event, ApplicationData):
                    assert completed, "application data before the handshake completed"
                elif isinstance(event, ConnectionClosed):
                    closed = True
            if conn.state in (State.CLOSED, State.FAILED):
                assert conn.get_timer() is None
                assert conn.error is None or isinstance(conn.error, WebrtcSecureError)
            timer = conn.get_timer()
            assert timer is None or timer >= now - 1e-9 or conn.state == State.HANDSHAKING

    return run


dtls_server_deep = _engine_target(False)
dtls_client_deep = _engine_target(True)


def listener_deep(data: bytes) -> None:
    """A DtlsListener fed datagrams from two addresses. op%4: 0 datagram from the
    first address, 1 from the second, 2 fire every due timer, 3 forget the first.
    Nothing may escape, and a stateless reply is never larger than what provoked it."""
    listener = make_listener()
    now = 0.0
    for op, payload in chunks(data):
        now += 0.01
        if op in (0, 1):
            conn, replies = listener.receive_datagram(payload, LISTENER_ADDRESSES[op], now)
            for reply in replies:
                assert len(reply) <= len(payload), "the listener amplifies"
            if conn is not None:
                assert listener.connections[LISTENER_ADDRESSES[op]] is conn
        elif op == 2:
            for conn in list(listener.connections.values()):
                timer = conn.get_timer()
                if timer is not None:
                    now = max(now, timer)
                    conn.handle_timer(now)
        else:
            listener.forget(LISTENER_ADDRESSES[0])
        for conn in listener.connections.values():
            conn.datagrams_to_send(now)
            while conn.next_event() is not None:
                pass


# --- message parsers: parse -> serialize -> parse is the identity -----------------------

_MESSAGE_TYPES = [
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
    Alert,
]


def _ext_block(body: bytes) -> object:
    r = Reader(body)
    exts = parse_extensions(r)
    r.expect_end()
    return exts


_EXTENSION_PARSERS: list[tuple[Callable[[bytes], object], Callable[[object], bytes]]] = [
    (parse_u16_list_extension, lambda v: u16_list(v)),  # type: ignore[arg-type]
    (parse_use_srtp, lambda v: encode_use_srtp(*v)),  # type: ignore[misc]
    (parse_ec_point_formats, lambda v: vec(v, 1)),  # type: ignore[arg-type]
    (parse_renegotiation_info, lambda v: vec(v, 1)),  # type: ignore[arg-type]
    (_ext_block, lambda v: serialize_extensions(v) or b"\x00\x00"),  # type: ignore[arg-type]
]


def messages_roundtrip(data: bytes) -> None:
    if not data:
        return
    choice, body = data[0], data[1:]
    kinds = len(_MESSAGE_TYPES) + len(_EXTENSION_PARSERS)
    choice %= kinds
    if choice < len(_MESSAGE_TYPES):
        cls = _MESSAGE_TYPES[choice]
        try:
            message = cls.parse(body)
        except MalformedPacket:
            return
        again = cls.parse(message.serialize())
        assert again == message, f"{cls.__name__} does not round-trip"
        return
    parse, encode = _EXTENSION_PARSERS[choice - len(_MESSAGE_TYPES)]
    try:
        value = parse(body)
    except MalformedPacket:
        return
    assert parse(encode(value)) == value, f"{parse.__name__} does not round-trip"


def records_roundtrip(data: bytes) -> None:
    records, clean = parse_records(data)
    total = sum(13 + len(r.fragment) for r in records)
    assert total <= len(data)
    if clean:
        assert b"".join(r.serialize() for r in records) == data


def fragments_roundtrip(data: bytes) -> None:
    try:
        fragments = parse_handshake_fragments(data)
    except MalformedPacket:
        return
    assert b"".join(f.serialize() for f in fragments) == data
    for f in fragments:
        assert f.fragment_offset + f.fragment_length <= f.length


# --- reassembly: random cuts, order and duplicates, byte-exact result --------------------


def reassembly_diff(data: bytes) -> None:
    if len(data) < 4:
        return
    reader = iter(data)

    def byte() -> int:
        # past the end of the input: big fragments, so one input stays cheap
        return next(reader, 255)

    count = byte() % 4 + 1
    base = byte() % 3
    messages = []
    for i in range(count):
        length = (byte() << 4 | byte() >> 4) % 3000
        body = hashlib.shake_128(bytes([i]) + data[:8]).digest(length) if length else b""
        messages.append((base + i, 1 + byte() % 20, body))
    fragments: list[tuple[HandshakeFragment, int]] = []
    for seq, msg_type, body in messages:
        offset = 0
        while True:
            size = min(len(body) - offset, 1 + byte() * 7)
            piece = body[offset : offset + size]
            fragments.append((HandshakeFragment(msg_type, len(body), seq, offset, piece), 0))
            offset += size
            if offset >= len(body):
                break
    # fuzzer-chosen permutation with duplicates and overlaps (overlaps agree with the body)
    extra = []
    for _ in range(byte() % 8):
        seq, msg_type, body = messages[byte() % count]
        if body:
            start = byte() * 11 % len(body)
            end = min(len(body), start + 1 + byte() * 5)
            extra.append((HandshakeFragment(msg_type, len(body), seq, start, body[start:end]), 0))
    fragments += extra
    order = sorted(range(len(fragments)), key=lambda i: (byte(), i))
    r = Reassembler()
    r.reset(base)
    out = []
    for i in order:
        r.add(*fragments[i])
        while (m := r.pop_ready()) is not None:
            out.append(m)
    assert r.buffered_bytes <= r.max_messages_ahead * r.max_message_size
    fragment_counts = {}
    for f, _ in fragments:
        fragment_counts[f.message_seq] = fragment_counts.get(f.message_seq, 0) + 1
    if all(n <= r.max_fragments_per_message for n in fragment_counts.values()):
        got = [(m.message_seq, m.msg_type, m.body) for m in out]
        assert got == messages, f"reassembly lost or changed messages: {len(got)}/{count}"


# --- SRTP ------------------------------------------------------------------------------------

_PROFILES = list(Profile)


def _ctx(profile: Profile) -> SrtpContext:
    key = bytes(range(profile.key_length))
    return SrtpContext(profile, key, bytes(range(100, 100 + profile.salt_length)))


def srtp_deep(data: bytes) -> None:
    if len(data) < 3:
        return
    profile = _PROFILES[data[0] % len(_PROFILES)]
    mode = data[1] % 4
    flip = data[2]
    packet = data[3:]
    rx = _ctx(profile)
    if mode in (0, 1):
        # raw input: any typed error is fine, nothing else may escape
        with contextlib.suppress(WebrtcSecureError):
            if mode == 0:
                rx.unprotect(packet)
            else:
                rx.unprotect_rtcp(packet)
        return
    tx = _ctx(profile)
    rtcp = mode == 3
    try:
        protected = tx.protect_rtcp(packet) if rtcp else tx.protect(packet)
    except MalformedPacket:
        return
    unprotect = rx.unprotect_rtcp if rtcp else rx.unprotect
    assert unprotect(protected) == packet, "round trip changed the packet"
    try:
        unprotect(protected)
    except ReplayDetected:
        pass
    else:
        raise AssertionError("replayed packet accepted")
    tampered = bytearray(protected)
    position = flip * 7 % len(tampered)
    tampered[position] ^= 1 << (flip % 8)
    rx2 = _ctx(profile)
    try:
        unprotect2 = rx2.unprotect_rtcp if rtcp else rx2.unprotect
        result = unprotect2(bytes(tampered))
    except WebrtcSecureError:
        return
    raise AssertionError(
        f"tampered packet accepted (bit {flip % 8} of octet {position}): {result!r}"
    )


TARGETS: dict[str, Callable[[bytes], None]] = {
    "dtls_server_deep": dtls_server_deep,
    "dtls_client_deep": dtls_client_deep,
    "messages_roundtrip": messages_roundtrip,
    "records_roundtrip": records_roundtrip,
    "fragments_roundtrip": fragments_roundtrip,
    "reassembly_diff": reassembly_diff,
    "srtp_deep": srtp_deep,
    "listener_deep": listener_deep,
}


# --- seed corpora -------------------------------------------------------------------------


def recorded_handshake(client_mtu: int = MTU, server_mtu: int = MTU) -> dict[str, list[bytes]]:
    """Both sides' datagrams of one lossless deterministic handshake, then one
    application-data record and a close_notify each way."""
    client = make_engine(True, mtu=client_mtu)
    server = make_engine(False, mtu=server_mtu)
    client.connect(0.0)
    server.connect(0.0)
    c2s: list[bytes] = []
    s2c: list[bytes] = []
    for _ in range(20):
        for src, dst, log in ((client, server, c2s), (server, client, s2c)):
            for datagram in src.datagrams_to_send(0.0):
                log.append(datagram)
                dst.receive_datagram(datagram, 0.0)
    if not (client.is_connected and server.is_connected):
        raise RuntimeError(f"seed handshake failed: {client.error!r} {server.error!r}")
    client.send(b"hello from the client")
    server.send(b"hello from the server")
    c_app, s_app = client.datagrams_to_send(0.0), server.datagrams_to_send(0.0)
    client.close()
    server.close()
    return {
        "c2s": c2s,
        "s2c": s2c,
        "c_app": c_app,
        "s_app": s_app,
        "c_close": client.datagrams_to_send(0.0),
        "s_close": server.datagrams_to_send(0.0),
    }


def recorded_listener_handshake() -> list[bytes]:
    """The client's datagrams of a handshake through a DtlsListener (cookie exchange
    bound to the first listener address)."""
    client = make_engine(True)
    listener = make_listener()
    addr = LISTENER_ADDRESSES[0]
    client.connect(0.0)
    sent: list[bytes] = []
    for _ in range(20):
        for datagram in client.datagrams_to_send(0.0):
            sent.append(datagram)
            conn, replies = listener.receive_datagram(datagram, addr, 0.0)
            if conn is not None:
                replies = replies + conn.datagrams_to_send(0.0)
            for reply in replies:
                client.receive_datagram(reply, 0.0)
    conn = listener.connections.get(addr)
    if not (client.is_connected and conn is not None and conn.is_connected):
        raise RuntimeError(f"listener seed handshake failed: {client.error!r}")
    return sent


def captured_datagrams() -> dict[str, list[bytes]]:
    """OpenSSL handshakes from tests/vectors and Chromium's ClientHello."""
    out: dict[str, list[bytes]] = {"c2s": [], "s2c": [], "chromium": []}
    for path in handshake_captures():
        for d in json.loads(path.read_text())["datagrams"]:
            key = "c2s" if d["direction"].startswith("client") else "s2c"
            out[key].append(bytes.fromhex(d["hex"]))
    chromium = ROOT / "tests" / "browser" / "chromium_client_hello.json"
    out["chromium"] = [bytes.fromhex(h) for h in json.loads(chromium.read_text())["datagrams"]]
    return out


_MESSAGE_CHOICE = {1: 0, 2: 1, 3: 2, 11: 3, 12: 4, 13: 5, 14: 6, 15: 7, 16: 8, 20: 9}


def seed_inputs() -> dict[str, list[bytes]]:
    """Seed inputs per target, from real captures and our own handshakes."""
    hs = recorded_handshake()
    small = recorded_handshake(300, 300)
    cap = captured_datagrams()
    via_listener = recorded_listener_handshake()
    c2s, s2c = hs["c2s"], hs["s2c"]
    server = [
        encode_chunks(
            [(0, d) for d in c2s] + [(2, b"x" * 40)] + [(0, d) for d in hs["c_app"] + hs["c_close"]]
        ),
        encode_chunks([(0, d) for d in small["c2s"]] + [(1, b"")] + [(0, d) for d in hs["c_app"]]),
        encode_chunks(
            [(0, c2s[0]), (1, b""), (0, c2s[0]), (0, c2s[1]), (1, b""), (0, c2s[1])]
            + [(0, d) for d in c2s[2:]]
            + [(0, c2s[-1]), (3, b"")]
        ),
        encode_chunks([(0, d) for d in cap["c2s"]]),
        encode_chunks([(0, d) for d in cap["chromium"]]),
    ]
    client = [
        encode_chunks(
            [(0, d) for d in s2c] + [(2, b"y" * 40)] + [(0, d) for d in hs["s_app"] + hs["s_close"]]
        ),
        encode_chunks([(0, d) for d in small["s2c"]] + [(1, b"")] + [(0, d) for d in hs["s_app"]]),
        encode_chunks(
            [(1, b""), (0, s2c[0]), (1, b"")] + [(0, d) for d in s2c[1:]] + [(0, s2c[-1]), (3, b"")]
        ),
        encode_chunks([(0, d) for d in cap["s2c"]]),
    ]
    datagrams = c2s + s2c + small["c2s"] + small["s2c"] + cap["c2s"] + cap["s2c"] + cap["chromium"]
    payloads = [
        r.fragment
        for d in datagrams
        for r in parse_records(d)[0]
        if r.content_type == 22 and r.epoch == 0
    ]
    messages = [
        bytes([_MESSAGE_CHOICE[f.msg_type]]) + f.body
        for p in payloads
        for f in parse_handshake_fragments(p)
        if f.fragment_length == f.length and f.msg_type in _MESSAGE_CHOICE
    ]
    messages += [
        bytes([10]) + b"\x02\x28",  # Alert
        bytes([11]) + b"\x00\x04\x00\x1d\x00\x17",  # supported_groups
        bytes([12]) + b"\x00\x04\x00\x01\x00\x07\x00",  # use_srtp
        bytes([13]) + b"\x02\x01\x00",  # ec_point_formats
        bytes([14]) + b"\x00",  # renegotiation_info
        bytes([15]) + b"\x00\x08\x00\x17\x00\x00\xff\x01\x00\x01\x00",  # extension block
    ]
    srtp = []
    for v in load_vector("srtp_packet_vectors.json")["vectors"]:
        profile = _PROFILES.index(Profile(int(v["dtls_srtp_profile_id"], 16)))
        for kind, mode in (("rtp", 0), ("rtcp", 1)):
            if kind in v:
                srtp.append(bytes([profile, mode, 0]) + bytes.fromhex(v[kind]["protected"]))
                srtp.append(bytes([profile, mode + 2, 5]) + bytes.fromhex(v[kind]["plaintext"]))
    return {
        "dtls_server_deep": server,
        "dtls_client_deep": client,
        "messages_roundtrip": messages,
        "records_roundtrip": datagrams,
        "fragments_roundtrip": payloads,
        "reassembly_diff": [bytes(range(i, i + 40)) for i in range(0, 200, 20)],
        "srtp_deep": srtp,
        "listener_deep": [
            encode_chunks([(0, d) for d in via_listener]),
            encode_chunks(
                [(0, via_listener[0]), (1, via_listener[0]), (2, b"")]
                + [(0, d) for d in via_listener[1:]]
                + [(3, b""), (0, c2s[-1])]
            ),
            encode_chunks([(op, d) for op in (0, 1) for d in cap["chromium"]]),
        ],
    }


def write_corpora(base: Path) -> dict[str, Path]:
    """One directory of seed files per target under ``base``; returns target -> dir."""
    dirs = {}
    for target, items in seed_inputs().items():
        directory = base / target
        directory.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(items):
            (directory / f"seed-{i:03d}").write_bytes(item)
        dirs[target] = directory
    return dirs
