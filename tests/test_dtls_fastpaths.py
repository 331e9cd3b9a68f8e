"""The DTLS fast paths against the general code they shortcut.

Each shortcut (the connected application-data receive path, the pre-keyed PRF, the
running transcript hash, whole-message flight packing, cached hello bytes, the
24-bit header codec, the overlap check of the reassembler) is fed the same input as
the slower, obviously correct form and must give the same bytes, events and counters.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load_vector
from tests.dtls_pair import DtlsConnection12
from tests.fuzz import deep
from webrtc_secure import Certificate
from webrtc_secure.dtls import DtlsConnection, keys
from webrtc_secure.dtls.codec import Reader
from webrtc_secure.dtls.crypto import Digest, scheme_hash
from webrtc_secure.dtls.crypto import sign as crypto_sign
from webrtc_secure.dtls.crypto import verify as crypto_verify
from webrtc_secure.dtls.flights import FlightItem, pack_flight
from webrtc_secure.dtls.handshake import ClientHandshake, Handshake
from webrtc_secure.dtls.messages import (
    ClientHello,
    ExtensionType,
    HandshakeFragment,
    encode_handshake_header,
    framed_message,
    parse_certificate_list,
    parse_certificate_request,
    parse_certificate_verify,
    parse_client_hello,
    parse_client_key_exchange,
    parse_ec_point_formats,
    parse_handshake_fragments,
    parse_renegotiation_info,
    parse_server_hello,
    parse_server_key_exchange,
    parse_u16_list_extension,
    parse_use_srtp,
)
from webrtc_secure.dtls.reassembly import _differs_where_covered
from webrtc_secure.dtls.records import (
    ContentType,
    RecordProtection,
    encode_header,
    parse_records,
)
from webrtc_secure.dtls.suites import SUITES, CipherSuite, SignatureScheme
from webrtc_secure.errors import HandshakeFailure, MalformedPacket

SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- PRF ----------------------------------------------------------------------------------


def _reference_prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, n: int) -> bytes:
    """RFC 5246 5 P_hash written the plain way, one stdlib HMAC per block."""
    seed = label + seed
    out = b""
    a = seed
    while len(out) < n:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return out[:n]


def test_prf_known_answers() -> None:
    vectors = load_vector("tls12_prf_vectors.json")["vectors"]
    checked = 0
    for v in vectors:
        if "output" not in v:
            continue
        out = keys.prf(
            v["hash"],
            bytes.fromhex(v["secret"]),
            bytes.fromhex(v["label"]),
            bytes.fromhex(v["seed"]),
            int(v["output_length"]),
        )
        assert out.hex() == v["output"]
        checked += 1
    assert checked >= 6


def test_key_schedule_known_answers() -> None:
    vectors = load_vector("tls12_prf_vectors.json")["vectors"]
    (v,) = [v for v in vectors if v.get("name") == "illustrated_tls12_key_schedule"]
    client_random = bytes.fromhex(v["client_random"])
    server_random = bytes.fromhex(v["server_random"])
    master = keys.master_secret(
        "sha256", bytes.fromhex(v["pre_master_secret"]), client_random, server_random
    )
    assert master.hex() == v["master_secret"]
    block = keys.key_block("sha256", master, client_random, server_random, 16, 4)
    assert block.client_write_key.hex() == v["client_write_key"]
    assert block.server_write_key.hex() == v["server_write_key"]
    assert block.client_write_iv.hex() == v["client_write_iv"]
    assert block.server_write_iv.hex() == v["server_write_iv"]
    finished = keys.verify_data_from_hash(
        keys.Prf("sha256", master), True, bytes.fromhex(v["transcript_sha256"])
    )
    assert finished.hex() == v["client_finished_verify_data"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["sha256", "sha384", "sha1", "sha512"]),
    st.binary(max_size=300),  # longer than the hash block: hashed first (RFC 2104)
    st.binary(max_size=20),
    st.binary(max_size=100),
    st.integers(min_value=0, max_value=200),
)
def test_prefixed_hmac_prf_matches_stdlib_hmac(
    hash_name: str, secret: bytes, label: bytes, seed: bytes, n: int
) -> None:
    assert keys.prf(hash_name, secret, label, seed, n) == _reference_prf(
        hash_name, secret, label, seed, n
    )
    assert keys.Prf(hash_name, secret).hmac(seed) == hmac.digest(secret, seed, hash_name)


# --- application data: fast receive path == general path ------------------------------------


def _deterministic_pair() -> tuple[DtlsConnection, DtlsConnection]:
    """A connected pair whose keys are a function of nothing but the code."""
    client, server = deep.make_engine(True), deep.make_engine(False)
    client.connect(0.0)
    server.connect(0.0)
    for _ in range(20):
        for a, b in ((client, server), (server, client)):
            for d in a.datagrams_to_send(0.0):
                b.receive_datagram(d, 0.0)
        if client.is_connected and server.is_connected:
            break
    assert client.is_connected and server.is_connected
    for conn in (client, server):
        while conn.next_event() is not None:
            pass
    return client, server


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 1400)),
        st.tuples(st.just("replay"), st.integers(0, 50)),
        st.tuples(st.just("flip"), st.integers(0, 50), st.integers(0, 2000)),
        st.tuples(st.just("truncate"), st.integers(0, 50), st.integers(0, 60)),
        st.tuples(st.just("extend"), st.integers(0, 50), st.binary(min_size=1, max_size=30)),
        st.tuples(st.just("concat"), st.integers(0, 50), st.integers(0, 50)),
        st.tuples(st.just("version"), st.sampled_from([0xFEFF, 0xFEFD, 0x0303])),
        st.tuples(st.just("epoch"), st.integers(0, 50), st.integers(0, 3)),
        st.tuples(st.just("length"), st.integers(0, 50), st.integers(-30, 30)),
        st.tuples(st.just("type"), st.integers(0, 50), st.sampled_from([20, 21, 22, 24])),
    ),
    min_size=1,
    max_size=25,
)


def _datagrams(client: DtlsConnection, ops: list[tuple[Any, ...]]) -> list[bytes]:
    pool: list[bytes] = []
    out: list[bytes] = []

    def pick(i: int) -> bytes | None:
        return pool[i % len(pool)] if pool else None

    for op in ops:
        kind = op[0]
        if kind == "send":
            client.send(bytes([op[1] % 251]) * op[1])
            (datagram,) = client.datagrams_to_send(0.0)
            pool.append(datagram)
            out.append(datagram)
            continue
        if kind == "version":
            # a correctly protected record under another record-layer version
            seq = client._write_seq[1]
            client._write_seq[1] = seq + 1
            protection = client._write_protection[1]
            assert protection is not None
            out.append(protection.seal(23, op[1], (1 << 48) | seq, b"other version"))
            continue
        base = pick(op[1])
        if base is None:
            continue
        if kind == "replay":
            out.append(base)
        elif kind == "flip":
            flipped = bytearray(base)
            flipped[op[2] % len(flipped)] ^= 0x01
            out.append(bytes(flipped))
        elif kind == "truncate":
            out.append(base[: op[2]])
        elif kind == "extend":
            out.append(base + op[2])
        elif kind == "concat":
            other = pick(op[2])
            assert other is not None
            out.append(base + other)
        elif kind == "epoch":
            out.append(base[:3] + op[2].to_bytes(2, "big") + base[5:])
        elif kind == "length":
            length = max(0, min(0xFFFF, int.from_bytes(base[11:13], "big") + op[2]))
            out.append(base[:11] + length.to_bytes(2, "big") + base[13:])
        elif kind == "type":
            out.append(bytes([op[2]]) + base[1:])
    return out


def _events(conn: DtlsConnection) -> list[object]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


@SLOW
@given(_OPS)
def test_application_data_fast_path_matches_general_path(ops: list[tuple[Any, ...]]) -> None:
    client, fast = _deterministic_pair()
    _client2, general = _deterministic_pair()
    taken = 0
    real = fast._read_application_data

    def counting(data: bytes) -> bool:
        nonlocal taken
        handled = real(data)
        taken += handled
        return handled

    fast._read_application_data = counting  # type: ignore[method-assign]
    general._read_application_data = lambda data: False  # type: ignore[method-assign]
    for datagram in _datagrams(client, ops):
        fast.receive_datagram(datagram, 1.0)
        general.receive_datagram(datagram, 1.0)
        assert _events(fast) == _events(general)
        assert fast.stats == general.stats
        assert fast.state == general.state
        assert fast.datagrams_to_send(1.0) == general.datagrams_to_send(1.0)
    if any(op[0] == "send" for op in ops):
        assert taken, "the fast path never ran"


def test_application_data_both_ways_after_fast_path() -> None:
    client, server = _deterministic_pair()
    for i in range(300):
        client.send(b"c%d" % i)
        server.send(b"s%d" % i)
        for d in client.datagrams_to_send(0.0):
            server.receive_datagram(d, 0.0)
        for d in server.datagrams_to_send(0.0):
            client.receive_datagram(d, 0.0)
        assert [e.data for e in _events(server)] == [b"c%d" % i]  # type: ignore[attr-defined]
        assert [e.data for e in _events(client)] == [b"s%d" % i]  # type: ignore[attr-defined]


@pytest.mark.parametrize("suite", list(SUITES))
def test_record_seal_is_header_plus_encrypt_and_opens(suite: CipherSuite) -> None:
    info = SUITES[suite]
    key = bytes(range(info.key_length))
    iv = bytes(range(100, 100 + info.fixed_iv_length))
    writer, reader = RecordProtection(info, key, iv), RecordProtection(info, key, iv)
    for seq, payload in ((0, b""), (1, b"x"), (2**48 - 1, b"y" * 1200)):
        record = writer.seal(23, 0xFEFD, (1 << 48) | seq, payload)
        fragment = writer.encrypt(23, 0xFEFD, 1, seq, payload)
        assert record == encode_header(23, 0xFEFD, 1, seq, len(fragment)) + fragment
        ((parsed,), clean) = parse_records(record)
        assert clean and parsed.sequence_number == seq and parsed.epoch == 1
        assert reader.decrypt(parsed) == payload
        assert reader.open(23, 0xFEFD, (1 << 48) | seq, parsed.fragment) == payload


# --- handshake: running transcript hash, cached hello bytes ---------------------------------


def test_running_transcript_hash_equals_hashing_the_whole_transcript(monkeypatch: Any) -> None:
    # the transcript is released once the handshake is done: kept here to compare
    monkeypatch.setattr(Handshake, "release_handshake_state", lambda self: None)
    client, server = _deterministic_pair()
    for conn in (client, server):
        hs: Handshake = conn._handshake
        whole = hashlib.new(hs.hash_name(), bytes(hs.transcript)).digest()
        assert hs.transcript_hash() == whole
        # and Finished from the running hash is the textbook verify_data
        assert hs.finished_for(True) == keys.verify_data(
            hs.hash_name(), hs.master_secret, True, bytes(hs.transcript)
        )


def test_handshake_only_state_is_released_once_done() -> None:
    """Memory per established connection: the framed transcript (both certificates),
    its running hash, the keyed PRF, the server's ECDHE key and the peer's public key
    go once the handshake is done; the exporter keys a PRF from the master secret
    again and gives the same bytes as one kept from the handshake."""
    client, server = _deterministic_pair()
    kept_client, kept_server = _deterministic_pair_kept()
    for conn, kept in ((client, kept_client), (server, kept_server)):
        hs: Handshake = conn._handshake
        assert hs.done and hs.transcript == bytearray()
        assert hs._transcript_hash is None and hs._master_prf is None
        assert hs.peer_public_key is None and hs.peer_certificate is not None
        assert getattr(hs, "share", None) is None
        assert conn.export_keying_material("EXTRACTOR-dtls_srtp", 60) == (
            kept.export_keying_material("EXTRACTOR-dtls_srtp", 60)
        )
    assert client.export_keying_material("EXTRACTOR-dtls_srtp", 60) == (
        server.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    )


def _deterministic_pair_kept() -> tuple[DtlsConnection, DtlsConnection]:
    original = Handshake.release_handshake_state
    Handshake.release_handshake_state = lambda self: None  # type: ignore[method-assign]
    try:
        return _deterministic_pair()
    finally:
        Handshake.release_handshake_state = original  # type: ignore[method-assign]


def _client() -> DtlsConnection:
    return DtlsConnection12(
        True, deep.CLIENT_CERT, remote_fingerprints=deep.SERVER_CERT.fingerprints()
    )


def _server() -> DtlsConnection:
    return DtlsConnection12(
        False, deep.SERVER_CERT, cookies=False, remote_fingerprints=deep.CLIENT_CERT.fingerprints()
    )


def test_cached_client_hello_is_the_dataclass_serialization() -> None:
    conn = _client()
    conn.connect(0.0)
    (datagram,) = conn.datagrams_to_send(0.0)
    ((record,), _) = parse_records(datagram)
    (fragment,) = parse_handshake_fragments(record.fragment)
    hello = ClientHello.parse(fragment.body)
    assert hello.serialize() == fragment.body
    hs = conn._handshake
    assert isinstance(hs, ClientHandshake)
    offer = hs.config.offer
    assert hello.cipher_suites == [int(s) for s in offer.cipher_suites]
    assert [e.type for e in hello.extensions] == [
        ExtensionType.EXTENDED_MASTER_SECRET,
        ExtensionType.RENEGOTIATION_INFO,
        ExtensionType.SUPPORTED_GROUPS,
        ExtensionType.EC_POINT_FORMATS,
        ExtensionType.SIGNATURE_ALGORITHMS,
        ExtensionType.USE_SRTP,
    ]
    assert offer.client_extensions == {e.type for e in hello.extensions}


# --- framing --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 0xFFFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFF),
    st.integers(0, 0xFFFFFF),
)
def test_fragment_header_is_the_plain_big_endian_encoding(
    msg_type: int, length: int, seq: int, offset: int, fragment_length: int
) -> None:
    header = encode_handshake_header(msg_type, length, seq, offset, fragment_length)
    assert header == (
        bytes([msg_type])
        + length.to_bytes(3, "big")
        + seq.to_bytes(2, "big")
        + offset.to_bytes(3, "big")
        + fragment_length.to_bytes(3, "big")
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=600))
def test_framed_message_parses_back(msg_type: int, seq: int, body: bytes) -> None:
    framed = framed_message(msg_type, seq, body)
    assert framed == HandshakeFragment(msg_type, len(body), seq, 0, body).serialize()
    assert parse_handshake_fragments(framed) == [
        HandshakeFragment(msg_type, len(body), seq, 0, body)
    ]


def _reference_pack(
    items: list[FlightItem],
    mtu: int,
    seal: Callable[[int, int, bytes], bytes],
    overhead_of: Callable[[int], int],
) -> list[bytes]:
    """Flight packing the plain way: every handshake message through the fragment loop."""
    datagrams: list[bytes] = []
    current = b""
    for item in items:
        record_overhead = 13 + overhead_of(item.epoch)
        if item.content_type != ContentType.HANDSHAKE:
            if len(current) + record_overhead + len(item.body) > mtu and current:
                datagrams.append(current)
                current = b""
            current += seal(item.content_type, item.epoch, item.body)
            continue
        total = len(item.body)
        offset = 0
        while True:
            room = mtu - len(current) - record_overhead - 12
            remaining = total - offset
            if room < min(remaining, 16):
                if current:
                    datagrams.append(current)
                    current = b""
                room = mtu - record_overhead - 12
            size = min(remaining, room)
            fragment = HandshakeFragment(
                item.msg_type, total, item.message_seq, offset, item.body[offset : offset + size]
            )
            current += seal(ContentType.HANDSHAKE, item.epoch, fragment.serialize())
            offset += size
            if offset >= total:
                break
    if current:
        datagrams.append(current)
    return datagrams


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 1), st.integers(0, 3000)),
        min_size=1,
        max_size=8,
    ),
    st.integers(150, 1500),
    st.booleans(),
)
def test_flight_packing_matches_fragmenting_every_message(
    spec: list[tuple[bool, int, int]], mtu: int, with_framed: bool
) -> None:
    items = []
    for seq, (is_ccs, epoch, size) in enumerate(spec):
        if is_ccs:
            items.append(FlightItem(ContentType.CHANGE_CIPHER_SPEC, 0, body=b"\x01"))
            continue
        body = bytes([seq]) * size
        framed = framed_message(11, seq, body) if with_framed else None
        items.append(FlightItem(ContentType.HANDSHAKE, epoch, 11, seq, body, framed))

    def seal(content_type: int, epoch: int, payload: bytes) -> bytes:
        return bytes([content_type, epoch]) * 6 + b"h" + b"t" * (24 * epoch) + payload

    def overhead_of(epoch: int) -> int:
        return 24 * epoch

    packed = pack_flight(items, mtu, seal, overhead_of)
    assert packed == _reference_pack(items, mtu, seal, overhead_of)
    assert all(len(d) <= mtu for d in packed)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_overlap_check_matches_a_byte_loop(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 64))
    old = data.draw(st.binary(min_size=n, max_size=n))
    new = bytearray(old)
    for i in data.draw(st.lists(st.integers(0, n - 1), max_size=3)):
        new[i] ^= data.draw(st.integers(1, 255))
    covered = bytearray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    expected = any(c and a != b for c, a, b in zip(covered, old, new, strict=True))
    assert _differs_where_covered(old, bytes(new), covered) == expected


# --- hello and extension parsers: slicing parsers == Reader parsers -------------------------


def _reader_extensions(r: Reader) -> list[tuple[int, bytes]] | None:
    if not r.remaining:
        return []
    block = Reader(r.vector(2))
    out: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    while block.remaining:
        ext_type = block.uint(2)
        data = block.vector(2)
        if ext_type in seen:
            raise MalformedPacket("duplicate")
        seen.add(ext_type)
        out.append((ext_type, data))
    return out


def _reader_client_hello(body: bytes) -> tuple[object, ...]:
    r = Reader(body)
    version = r.uint(2)
    random = r.read(32)
    session_id = r.vector(1, maximum=32)
    cookie = r.vector(1, maximum=255)
    suites = r.uint16_list(2, minimum=2)
    compression = r.vector(1, minimum=1)
    extensions = _reader_extensions(r)
    r.expect_end()
    return (version, random, session_id, cookie, suites, compression, extensions)


def _reader_server_hello(body: bytes) -> tuple[object, ...]:
    r = Reader(body)
    version = r.uint(2)
    random = r.read(32)
    session_id = r.vector(1, maximum=32)
    suite = r.uint(2)
    compression = r.uint(1)
    extensions = _reader_extensions(r)
    r.expect_end()
    return (version, random, session_id, suite, compression, extensions)


def _reader_u16_list(data: bytes) -> object:
    r = Reader(data)
    values = r.uint16_list(2, minimum=2)
    r.expect_end()
    return values


def _reader_use_srtp(data: bytes) -> object:
    r = Reader(data)
    profiles = r.uint16_list(2, minimum=2)
    mki = r.vector(1)
    r.expect_end()
    return profiles, mki


def _reader_vector1(minimum: int) -> Callable[[bytes], object]:
    def parse(data: bytes) -> object:
        r = Reader(data)
        value = r.vector(1, minimum=minimum)
        r.expect_end()
        return value

    return parse


def _outcome(parse: Callable[[bytes], Any], data: bytes) -> object:
    try:
        return parse(data)
    except MalformedPacket:
        return MalformedPacket


def _fields(f: Any) -> tuple[object, ...]:
    return (*f[:-1], list(f.extensions.items()))


def _real_hellos() -> list[bytes]:
    client, server = _client(), _server()
    client.connect(0.0)
    out = []
    for a, b in ((client, server), (server, client)):
        for datagram in a.datagrams_to_send(0.0):
            b.receive_datagram(datagram, 0.0)
            for record in parse_records(datagram)[0]:
                for fragment in parse_handshake_fragments(record.fragment):
                    if fragment.msg_type in (1, 2):
                        out.append(fragment.body)
    return out


_HELLOS = _real_hellos()


def _mutated(data: st.DataObject) -> bytes:
    body = bytearray(data.draw(st.sampled_from(_HELLOS)))
    for _ in range(data.draw(st.integers(0, 3))):
        kind = data.draw(st.integers(0, 2))
        i = data.draw(st.integers(0, max(0, len(body) - 1)))
        if kind == 0 and body:
            body[i] = data.draw(st.integers(0, 255))
        elif kind == 1:
            del body[i:]
        else:
            body[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    return bytes(body)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_hello_parsers_match_the_reader_forms(data: st.DataObject) -> None:
    body = _mutated(data) if data.draw(st.booleans()) else data.draw(st.binary(max_size=120))
    for fast, reference in (
        (parse_client_hello, _reader_client_hello),
        (parse_server_hello, _reader_server_hello),
    ):
        got = _outcome(fast, body)
        expected = _outcome(reference, body)
        assert (got if got is MalformedPacket else _fields(got)) == expected


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=12), st.booleans())
def test_extension_parsers_match_the_reader_forms(data: bytes, well_formed: bool) -> None:
    if well_formed:
        data = len(data).to_bytes(2, "big") + data + b"\x00"  # a plausible shape
    pairs: list[tuple[Callable[[bytes], Any], Callable[[bytes], object]]] = [
        (parse_u16_list_extension, _reader_u16_list),
        (parse_use_srtp, _reader_use_srtp),
        (parse_ec_point_formats, _reader_vector1(1)),
        (parse_renegotiation_info, _reader_vector1(0)),
    ]
    for fast, reference in pairs:
        for candidate in (data, data[:-1], data[2:], data[1:]):
            assert _outcome(fast, candidate) == _outcome(reference, candidate)


def _reader_certificate_list(body: bytes) -> object:
    r = Reader(body)
    chain = Reader(r.vector(3))
    r.expect_end()
    out = []
    while chain.remaining:
        out.append(chain.vector(3, minimum=1))
    return out


def _reader_server_key_exchange(body: bytes) -> object:
    r = Reader(body)
    if r.u8() != 3:
        raise MalformedPacket("named curves only")
    group = r.u16()
    public = r.vector(1, minimum=1)
    scheme = r.u16()
    signature = r.vector(2, minimum=1)
    r.expect_end()
    return group, public, scheme, signature


def _reader_certificate_request(body: bytes) -> object:
    r = Reader(body)
    types = r.vector(1, minimum=1)
    schemes = r.uint16_list(2, minimum=2)
    authorities = r.vector(2)
    r.expect_end()
    return types, schemes, authorities


def _reader_certificate_verify(body: bytes) -> object:
    r = Reader(body)
    scheme = r.u16()
    signature = r.vector(2, minimum=1)
    r.expect_end()
    return scheme, signature


def _real_messages() -> dict[int, list[bytes]]:
    client, server = _client(), _server()
    client.connect(0.0)
    out: dict[int, list[bytes]] = {}
    for _ in range(3):
        for a, b in ((client, server), (server, client)):
            for datagram in a.datagrams_to_send(0.0):
                b.receive_datagram(datagram, 0.0)
                for record in parse_records(datagram)[0]:
                    if record.epoch == 0 and record.content_type == ContentType.HANDSHAKE:
                        for fragment in parse_handshake_fragments(record.fragment):
                            out.setdefault(fragment.msg_type, []).append(fragment.body)
    return out


_MESSAGES = _real_messages()
_MESSAGE_PARSERS: dict[int, tuple[Callable[[bytes], Any], Callable[[bytes], object]]] = {
    11: (parse_certificate_list, _reader_certificate_list),
    12: (parse_server_key_exchange, _reader_server_key_exchange),
    13: (parse_certificate_request, _reader_certificate_request),
    15: (parse_certificate_verify, _reader_certificate_verify),
    16: (parse_client_key_exchange, _reader_vector1(1)),
}


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(_MESSAGE_PARSERS)), st.data())
def test_message_parsers_match_the_reader_forms(msg_type: int, data: st.DataObject) -> None:
    fast, reference = _MESSAGE_PARSERS[msg_type]
    body = bytearray(_MESSAGES[msg_type][0])
    for _ in range(data.draw(st.integers(0, 3))):
        kind = data.draw(st.integers(0, 2))
        i = data.draw(st.integers(0, max(0, len(body) - 1)))
        if kind == 0 and body:
            body[i] = data.draw(st.sampled_from([0, 1, 2, 3, 0xFF, body[i] ^ 1]))
        elif kind == 1:
            del body[i:]
        else:
            body[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    assert _outcome(fast, bytes(body)) == _outcome(reference, bytes(body))


# --- CertificateVerify over the running hash == over the whole transcript -----------------


@pytest.mark.parametrize(
    ("make_cert", "scheme"),
    [
        (lambda: deep.CLIENT_CERT, SignatureScheme.RSA_PKCS1_SHA256),
        (lambda: deep.CLIENT_CERT, SignatureScheme.RSA_PSS_RSAE_SHA256),
        (Certificate.generate, SignatureScheme.ECDSA_SECP256R1_SHA256),
        (
            lambda: Certificate.generate(curve=ec.SECP384R1()),
            SignatureScheme.ECDSA_SECP384R1_SHA384,
        ),
    ],
)
def test_signature_over_a_digest_is_the_signature_over_the_message(
    make_cert: Callable[[], Certificate], scheme: SignatureScheme
) -> None:
    certificate = make_cert()
    message = bytes(range(256)) * 10
    digest = Digest(hashlib.new(scheme_hash(scheme), message).digest())
    public = certificate.private_key.public_key()
    for signed, checked in ((message, digest), (digest, message), (digest, digest)):
        signature = crypto_sign(certificate.private_key, scheme, signed)
        crypto_verify(public, scheme, signature, checked)
    with pytest.raises(HandshakeFailure):
        crypto_verify(public, scheme, signature, Digest(bytes(len(digest.value))))


def test_certificate_verify_uses_the_running_hash_only_when_the_hashes_agree() -> None:
    client, _server = _deterministic_pair_kept()  # the transcript as at the handshake
    hs: Handshake = client._handshake
    assert hs.hash_name() == "sha256"
    assert hs.signed_transcript(SignatureScheme.RSA_PKCS1_SHA256) == Digest(
        hashlib.sha256(bytes(hs.transcript)).digest()
    )
    assert hs.signed_transcript(SignatureScheme.ECDSA_SECP384R1_SHA384) == bytes(hs.transcript)
