"""The DTLS 1.3 record layer (dtls/records13.py): AEAD and nonce against RFC 8448's
protected records, record number masks against RFC 9001's vectors, the unified header
against RFC 9147's figures, and hostile input."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.dtls import keys13
from webrtc_secure.dtls.records13 import (
    CiphertextRecord,
    ContentType13,
    PlaintextRecord,
    ReceiveEpoch,
    RecordAead,
    RecordNumber,
    SendEpoch,
    encode_ack,
    encode_inner_plaintext,
    encode_plaintext_record,
    encode_unified_header,
    parse_ack,
    parse_inner_plaintext,
    reconstruct_epoch,
    reconstruct_sequence,
    record_number_mask,
    split_datagram,
)
from webrtc_secure.dtls.suites13 import SUITES13, CipherSuite13
from webrtc_secure.errors import (
    AuthenticationFailed,
    DtlsError,
    MalformedPacket,
    ReplayDetected,
)

VECTORS = Path(__file__).resolve().parent / "vectors"
AES128 = SUITES13[CipherSuite13.TLS_AES_128_GCM_SHA256]
ALL_SUITES = list(SUITES13.values())


@pytest.fixture(scope="module")
def trace() -> Any:
    return json.loads((VECTORS / "rfc8448_simple_1rtt.json").read_text())


def _pair(
    suite_id: CipherSuite13 = CipherSuite13.TLS_AES_128_GCM_SHA256, epoch: int = 3
) -> tuple[SendEpoch, ReceiveEpoch]:
    suite = SUITES13[suite_id]
    size = keys13.digest_size(suite.hash_name)
    secret = bytes(range(size))
    keys = keys13.traffic_keys(suite.hash_name, secret, suite.key_length)
    return SendEpoch(suite, keys, epoch), ReceiveEpoch(suite, keys, epoch)


def _only_ciphertext(datagram: bytes, cid_length: int = 0) -> CiphertextRecord:
    records, clean = split_datagram(datagram, cid_length)
    assert clean and len(records) == 1
    record = records[0]
    assert isinstance(record, CiphertextRecord)
    return record


# --- known answers ---------------------------------------------------------------------


def test_rfc8448_records_through_record_aead(trace: Any) -> None:
    """Every protected record of RFC 8448 section 3, sealed and opened with the
    TLS 1.3 nonce rule (same AEAD and nonce as DTLS 1.3; TLS's AAD is its 5-octet
    header, DTLS 1.3's the unified header)."""
    secrets = trace["secrets"]
    secret_of = {
        "server_handshake": secrets["server_handshake_traffic_secret"],
        "client_handshake": secrets["client_handshake_traffic_secret"],
        "server_application": secrets["server_application_traffic_secret_0"],
        "client_application": secrets["client_application_traffic_secret_0"],
    }
    for vector in trace["records"]:
        keys = keys13.traffic_keys(
            "sha256",
            bytes.fromhex(secret_of[vector["keys"]]),
            16,
            12,
            keys13.TLS13_LABEL_PREFIX,
            sn_key=False,
        )
        aead = RecordAead(AES128, keys.key, keys.iv)
        record = bytes.fromhex(vector["record"])
        header, sealed = record[:5], record[5:]
        if "plaintext_messages" in vector:
            content = b"".join(
                bytes.fromhex(trace["messages"][name]) for name in vector["plaintext_messages"]
            )
        else:
            content = bytes.fromhex(vector["plaintext"])
        inner = encode_inner_plaintext(vector["content_type"], content)
        assert aead.seal(vector["sequence"], inner, header) == sealed, vector["name"]
        opened = aead.open(vector["sequence"], sealed, header)
        assert parse_inner_plaintext(opened) == (vector["content_type"], content)
        with pytest.raises(AuthenticationFailed):
            aead.open(vector["sequence"] + 1, sealed, header)


def test_rfc9001_mask_vectors() -> None:
    """RFC 9001 A.2 (AES-ECB) and A.5 (ChaCha20): the mask over a 16-octet sample is
    the construction RFC 9147 4.2.3 specifies for record numbers."""
    aes = record_number_mask(
        bytes.fromhex("9f50449e04a0e810283a1e9933adedd2"),
        bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b"),
        is_chacha=False,
    )
    assert aes[:5].hex() == "437b9aec36"
    chacha = record_number_mask(
        bytes.fromhex("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4"),
        bytes.fromhex("5e5cd55c41f69080575d7999c25a5bfb"),
        is_chacha=True,
    )
    assert chacha.hex() == "aefe"
    with pytest.raises(ValueError):
        record_number_mask(bytes(16), bytes(15), is_chacha=False)


def test_unified_header_figures() -> None:
    """RFC 9147 Figures 3 and 4: 001CSLEE, CID, 8/16-bit sequence, optional length."""
    # minimal: 8-bit sequence number, no length
    assert encode_unified_header(2, 0x1234, None, sequence_length=1) == b"\x22\x34"
    # full: CID, 16-bit sequence number, length: 0|0|1|1|1|1|E E
    assert encode_unified_header(7, 0x12345, 0x0102, 2, b"\xaa\xbb") == (
        b"\x3f\xaa\xbb\x23\x45\x01\x02"
    )
    # the common one we send: 16-bit sequence and length, no CID
    assert encode_unified_header(4, 1, 1000, 2) == b"\x2c\x00\x01\x03\xe8"
    with pytest.raises(ValueError):
        encode_unified_header(3, 0, None, sequence_length=3)
    with pytest.raises(ValueError):
        encode_unified_header(3, 0, 0x10000)


def test_protect_matches_a_by_hand_construction() -> None:
    """SendEpoch's bytes, rebuilt with cryptography's primitives step by step."""
    for suite in ALL_SUITES:
        secret = bytes(range(keys13.digest_size(suite.hash_name)))
        keys = keys13.traffic_keys(suite.hash_name, secret, suite.key_length)
        sender = SendEpoch(suite, keys, epoch=3, first_sequence=0x10203)
        content = b"hello, dtls 1.3"
        record = sender.protect(ContentType13.APPLICATION_DATA, content, padding=3)

        inner = content + b"\x17" + bytes(3)
        header = bytes([0x20 | 0x08 | 0x04 | 0x03]) + struct.pack("!HH", 0x0203, len(inner) + 16)
        nonce = (int.from_bytes(keys.iv, "big") ^ 0x10203).to_bytes(12, "big")
        aead = ChaCha20Poly1305(keys.key) if suite.is_chacha else AESGCM(keys.key)
        sealed = aead.encrypt(nonce, inner, header)
        if suite.is_chacha:
            cipher = Cipher(algorithms.ChaCha20(keys.sn_key, sealed[:16]), None)
            mask = cipher.encryptor().update(bytes(2))
        else:
            mask = Cipher(algorithms.AES(keys.sn_key), modes.ECB()).encryptor().update(sealed[:16])
        masked = bytes([header[1] ^ mask[0], header[2] ^ mask[1]])
        assert record == header[:1] + masked + header[3:] + sealed, suite.suite.name


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", list(CipherSuite13))
@pytest.mark.parametrize("sequence_length", [1, 2])
@pytest.mark.parametrize("with_length", [True, False])
def test_round_trip(suite_id: CipherSuite13, sequence_length: int, with_length: bool) -> None:
    sender, receiver = _pair(suite_id)
    for i in range(300):  # past the 8-bit wrap
        content = bytes([i & 0xFF]) * (i % 40)
        record = sender.protect(
            ContentType13.APPLICATION_DATA,
            content,
            padding=i % 5,
            sequence_length=sequence_length,
            with_length=with_length,
        )
        opened = receiver.open_record(_only_ciphertext(record))
        assert opened == (ContentType13.APPLICATION_DATA, content, 3, i)
    assert receiver.highest_sequence == 299


def test_connection_id_round_trip() -> None:
    sender, receiver = _pair()
    cid = b"\x01\x02\x03\x04"
    record = sender.protect(ContentType13.HANDSHAKE, b"x" * 20, connection_id=cid)
    assert record[0] & 0x10 and record[1:5] == cid
    parsed = _only_ciphertext(record, cid_length=4)
    assert parsed.connection_id == cid
    assert receiver.open_record(parsed).content == b"x" * 20
    # without a negotiated CID length the record cannot be delimited
    assert split_datagram(record) == ([], False)


def test_sequence_number_is_masked_on_the_wire() -> None:
    sender, _ = _pair()
    lows = set()
    for _ in range(64):
        record = sender.protect(ContentType13.APPLICATION_DATA, b"same content")
        lows.add(record[1:3])
    # in clear they would be 0..63 with a zero high octet; masked they scatter
    assert sum(1 for low in lows if low[0] == 0) < 16


def test_several_records_in_one_datagram() -> None:
    sender, receiver = _pair(epoch=2)
    hello = encode_plaintext_record(ContentType13.HANDSHAKE, b"\x02" + bytes(40), 1)
    ack = encode_plaintext_record(ContentType13.ACK, encode_ack([(0, 0)]), 2)
    first = sender.protect(ContentType13.HANDSHAKE, b"encrypted extensions")
    last = sender.protect(ContentType13.HANDSHAKE, b"finished", with_length=False)
    records, clean = split_datagram(hello + ack + first + last)
    assert clean
    assert [type(r).__name__ for r in records] == [
        "PlaintextRecord",
        "PlaintextRecord",
        "CiphertextRecord",
        "CiphertextRecord",
    ]
    assert records[0] == PlaintextRecord(22, 0xFEFD, 0, 1, b"\x02" + bytes(40))
    assert isinstance(records[1], PlaintextRecord)
    assert parse_ack(records[1].fragment) == [RecordNumber(0, 0)]
    assert isinstance(records[2], CiphertextRecord) and isinstance(records[3], CiphertextRecord)
    assert receiver.open_record(records[2]).content == b"encrypted extensions"
    assert receiver.open_record(records[3]).content == b"finished"


def test_plaintext_record_limits() -> None:
    assert encode_plaintext_record(22, b"ab", 5, 0xFEFF)[:13] == (
        b"\x16\xfe\xff\x00\x00\x00\x00\x00\x00\x00\x05\x00\x02"
    )
    with pytest.raises(ValueError):
        encode_plaintext_record(22, b"", 1 << 48)
    with pytest.raises(ValueError):
        encode_plaintext_record(22, bytes((1 << 14) + 1), 0)


# --- sequence numbers, epochs, replay ----------------------------------------------------


def test_reconstruct_sequence() -> None:
    # RFC 9000 A.3's example: highest 0xa82f30ea, 16 bits 0x9b32
    assert reconstruct_sequence(0xA82F30EB, 0x9B32, 16) == 0xA82F9B32
    assert reconstruct_sequence(0, 0, 8) == 0
    assert reconstruct_sequence(0, 5, 8) == 5
    assert reconstruct_sequence(250, 3, 8) == 259  # forward across the wrap
    assert reconstruct_sequence(260, 250, 8) == 250  # a late one before the wrap
    assert reconstruct_sequence(0x10000, 0xFFFF, 16) == 0xFFFF
    assert reconstruct_sequence(1, 0xFF, 8) == 0xFF  # nothing below zero
    top = (1 << 64) - 1
    assert reconstruct_sequence(top, 0xFF, 8) == top  # nothing above 2^64 - 1


def test_reconstruct_epoch() -> None:
    assert [reconstruct_epoch(b, 3) for b in range(4)] == [0, 1, 2, 3]
    assert [reconstruct_epoch(b, 1) for b in range(4)] == [0, 1, None, None]
    assert [reconstruct_epoch(b, 9) for b in range(4)] == [8, 9, 6, 7]


def test_reordered_records_within_the_window() -> None:
    sender, receiver = _pair()
    records = [
        sender.protect(ContentType13.APPLICATION_DATA, bytes([i]), sequence_length=1)
        for i in range(200)
    ]
    order = list(range(200))
    for i in range(0, 200, 4):  # swap neighbours in blocks
        order[i : i + 4] = reversed(order[i : i + 4])
    for i in order:
        assert receiver.open_record(_only_ciphertext(records[i])).sequence_number == i


def test_replay_and_forgery_do_not_move_the_window() -> None:
    sender, receiver = _pair()
    first = sender.protect(ContentType13.APPLICATION_DATA, b"one")
    receiver.open_record(_only_ciphertext(first))
    with pytest.raises(ReplayDetected):
        receiver.open_record(_only_ciphertext(first))
    forged = bytearray(sender.protect(ContentType13.APPLICATION_DATA, b"two"))
    forged[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        receiver.open_record(_only_ciphertext(bytes(forged)))
    assert receiver.failures == 1 and receiver.highest_sequence == 0
    assert not receiver.integrity_exhausted
    # the genuine record with that sequence number still opens
    forged[-1] ^= 1
    assert receiver.open_record(_only_ciphertext(bytes(forged))).content == b"two"


def test_tampered_header_fails_authentication() -> None:
    sender, receiver = _pair()
    record = sender.protect(ContentType13.APPLICATION_DATA, b"payload" * 3)
    for index in (0, 1, 2):  # epoch bits, both sequence number octets
        bad = bytearray(record)
        bad[index] ^= 0x01
        parsed, clean = split_datagram(bytes(bad))
        assert clean
        assert isinstance(parsed[0], CiphertextRecord)
        with pytest.raises(AuthenticationFailed):
            receiver.open_record(parsed[0])
    assert receiver.highest_sequence == -1


def test_short_and_foreign_records() -> None:
    _, receiver = _pair()
    with pytest.raises(AuthenticationFailed):
        receiver.open_record(CiphertextRecord(b"\x2b\x00", b"", 3, 1, bytes(15)))
    with pytest.raises(AuthenticationFailed):
        receiver.open_record(CiphertextRecord(b"\x2a\x00", b"", 2, 1, bytes(40)))
    with pytest.raises(AuthenticationFailed):
        receiver.open_record(CiphertextRecord(b"\x2b\x00", b"", 3, 1, bytes(40)))
    assert receiver.failures == 1  # only the last one reached the AEAD


def test_send_limit() -> None:
    sender, _ = _pair()
    sender.next_sequence = AES128.confidentiality_limit - 1
    assert not sender.exhausted
    sender.protect(ContentType13.APPLICATION_DATA, b"last")
    assert sender.exhausted
    with pytest.raises(DtlsError):
        sender.protect(ContentType13.APPLICATION_DATA, b"one too many")
    with pytest.raises(ValueError):
        _pair()[0].protect(ContentType13.APPLICATION_DATA, bytes((1 << 14) + 1))


def test_keys_must_fit_the_suite() -> None:
    keys = keys13.traffic_keys("sha256", bytes(32), 16, sn_key=False)
    with pytest.raises(ValueError):
        SendEpoch(AES128, keys, 2)
    with pytest.raises(ValueError):
        ReceiveEpoch(AES128, keys, 2)
    with pytest.raises(ValueError):
        RecordAead(AES128, bytes(16), bytes(8))


# --- DTLSInnerPlaintext and ACK ----------------------------------------------------------


def test_inner_plaintext() -> None:
    assert encode_inner_plaintext(22, b"abc", 4) == b"abc\x16\x00\x00\x00\x00"
    assert parse_inner_plaintext(b"abc\x16\x00\x00\x00\x00") == (22, b"abc")
    assert parse_inner_plaintext(b"\x00\x00\x17") == (23, b"\x00\x00")
    with pytest.raises(MalformedPacket):
        parse_inner_plaintext(bytes(20))
    with pytest.raises(MalformedPacket):
        parse_inner_plaintext(b"")
    with pytest.raises(MalformedPacket):
        parse_inner_plaintext(b"abc\x14\x00")  # change_cipher_spec has no place in 1.3


def _seal_by_hand(keys: keys13.TrafficKeys, inner: bytes) -> bytes:
    """An epoch-3, sequence-0 AES-128-GCM record around any inner plaintext (what a
    peer that ignores the rules could send)."""
    header = encode_unified_header(3, 0, len(inner) + 16)
    sealed = RecordAead(AES128, keys.key, keys.iv).seal(0, inner, header)
    mask = record_number_mask(keys.sn_key, sealed[:16], False)
    return header[:1] + bytes([mask[0], mask[1]]) + header[3:] + sealed


def test_all_zero_inner_plaintext_is_malformed_and_not_committed() -> None:
    keys = keys13.traffic_keys("sha256", bytes(32), 16)
    receiver = ReceiveEpoch(AES128, keys, 3)
    with pytest.raises(MalformedPacket):
        receiver.open_record(_only_ciphertext(_seal_by_hand(keys, bytes(8))))
    assert receiver.highest_sequence == -1


def test_ack_codec() -> None:
    body = encode_ack([(2, 0), (2, 1), (3, 0x0102030405060708)])
    assert body[:2] == b"\x00\x30"
    assert body[2:18] == bytes(7) + b"\x02" + bytes(8)
    assert parse_ack(body) == [
        RecordNumber(2, 0),
        RecordNumber(2, 1),
        RecordNumber(3, 0x0102030405060708),
    ]
    assert encode_ack([]) == b"\x00\x00" and parse_ack(b"\x00\x00") == []
    for bad in (b"", b"\x00", b"\x00\x10" + bytes(15), b"\x00\x08" + bytes(8), body + b"\x00"):
        with pytest.raises(MalformedPacket):
            parse_ack(bad)
    with pytest.raises(ValueError):
        encode_ack([(0, i) for i in range(4096)])


# --- hostile input ---------------------------------------------------------------------


def test_truncated_and_oversized_headers() -> None:
    sender, _ = _pair()
    record = sender.protect(ContentType13.APPLICATION_DATA, b"x" * 30)
    # every truncation inside the length-delimited record is refused
    for cut in range(1, len(record)):
        records, clean = split_datagram(record[:cut])
        assert not clean and records == []
    # a length past the end of the datagram
    assert split_datagram(b"\x2e\x00\x01\xff\xff" + bytes(10)) == ([], False)
    # a length beyond 2^14 + 256 even when the datagram has the octets
    oversized = b"\x2e\x00\x01" + struct.pack("!H", (1 << 14) + 257) + bytes((1 << 14) + 257)
    assert split_datagram(oversized) == ([], False)
    # plaintext headers: truncated, lying length, oversized
    assert split_datagram(b"\x16\xfe\xfd" + bytes(5)) == ([], False)
    assert split_datagram(b"\x16\xfe\xfd" + bytes(8) + b"\x00\x05abc") == ([], False)
    big = b"\x16\xfe\xfd" + bytes(8) + struct.pack("!H", (1 << 14) + 1) + bytes((1 << 14) + 1)
    assert split_datagram(big) == ([], False)
    # a first octet that is neither a plaintext type nor 001xxxxx: 1.2 application
    # data, change_cipher_spec, garbage
    for first in (0x17, 0x14, 0x00, 0x40, 0xFF):
        assert split_datagram(bytes([first]) + bytes(20)) == ([], False)
    # what parsed before a bad record is kept
    good = sender.protect(ContentType13.APPLICATION_DATA, b"ok")
    records, clean = split_datagram(good + b"\xff\x00")
    assert not clean and len(records) == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=4))
def test_garbage_datagrams_never_crash(data: bytes, cid_length: int) -> None:
    _, receiver = _pair()
    records, _clean = split_datagram(data, cid_length)
    for record in records:
        if isinstance(record, CiphertextRecord):
            with pytest.raises((AuthenticationFailed, ReplayDetected, MalformedPacket)):
                receiver.open_record(record)
        else:
            assert record.content_type in (21, 22, 26)
    assert receiver.highest_sequence == -1


@settings(max_examples=150, deadline=None)
@given(
    suite_id=st.sampled_from(list(CipherSuite13)),
    content_type=st.sampled_from(list(ContentType13)),
    content=st.binary(max_size=300),
    padding=st.integers(min_value=0, max_value=64),
    sequence_length=st.sampled_from([1, 2]),
    with_length=st.booleans(),
    first_sequence=st.integers(min_value=0, max_value=AES128.confidentiality_limit - 1),
)
def test_round_trip_property(
    suite_id: CipherSuite13,
    content_type: int,
    content: bytes,
    padding: int,
    sequence_length: int,
    with_length: bool,
    first_sequence: int,
) -> None:
    suite = SUITES13[suite_id]
    keys = keys13.traffic_keys(
        suite.hash_name, bytes(keys13.digest_size(suite.hash_name)), suite.key_length
    )
    receiver = ReceiveEpoch(suite, keys, 5)
    # the receiver has seen every record before, in order, as in a running connection
    # (what the in-order fast path records: only the highest moves)
    receiver._highest = first_sequence - 1
    sender = SendEpoch(suite, keys, 5, first_sequence)
    record = sender.protect(content_type, content, padding, sequence_length, with_length)
    opened = receiver.open_record(_only_ciphertext(record))
    assert opened == (content_type, content, 5, first_sequence)


def test_record_overflow() -> None:
    """Inner plaintext over 2^14 + 1 octets (content, type and padding) is refused
    after authentication; a ciphertext over 2^14 + 256 before it."""
    keys = keys13.traffic_keys("sha256", bytes(32), 16)
    receiver = ReceiveEpoch(AES128, keys, 3)
    too_long = bytes(1 << 14) + b"\x17" + bytes(10)
    with pytest.raises(MalformedPacket):
        receiver.open_record(_only_ciphertext(_seal_by_hand(keys, too_long)))
    assert receiver.highest_sequence == -1
    fits = bytes(1 << 14) + b"\x17"
    assert len(receiver.open_record(_only_ciphertext(_seal_by_hand(keys, fits))).content) == 1 << 14
    with pytest.raises(MalformedPacket):
        receiver.open_record(CiphertextRecord(b"\x2b\x00", b"", 3, 1, bytes((1 << 14) + 257)))
    with pytest.raises(ValueError):  # and we never send one
        SendEpoch(AES128, keys, 3).protect(23, bytes(1 << 14), padding=1)
