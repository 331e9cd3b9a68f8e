"""Our DTLS pieces against real OpenSSL-to-OpenSSL handshakes captured datagram by
datagram (tests/vectors/dtls12_handshake_*.json): record parsing, reassembly of
fragmented flights, transcript hashing, key schedule, Finished, exporters and record
decryption must all reproduce what OpenSSL computed."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.conftest import load_vector
from webrtc_secure.dtls import keys
from webrtc_secure.dtls.messages import (
    CertificateMessage,
    ClientHello,
    HandshakeType,
    ServerHello,
    framed_message,
    parse_handshake_fragments,
)
from webrtc_secure.dtls.reassembly import Reassembler
from webrtc_secure.dtls.records import RecordProtection, parse_records
from webrtc_secure.dtls.suites import SUITES, CipherSuite

FILES = [
    "dtls12_handshake_ecdhe_ecdsa_aes128gcm_ems_hvr.json",
    "dtls12_handshake_ecdhe_ecdsa_aes256gcm_sha384_fragmented_mtu256.json",
]


@pytest.fixture(params=FILES)
def capture(request: pytest.FixtureRequest) -> Any:
    return load_vector(request.param)


def _reassemble(capture: Any, direction: str) -> list[bytes]:
    """Reassemble every epoch-0 handshake message one side sent, in order."""
    reassembler = Reassembler()
    framed: list[bytes] = []
    for datagram in capture["datagrams"]:
        if datagram["direction"] != direction:
            continue
        records, clean = parse_records(bytes.fromhex(datagram["hex"]))
        assert clean
        for record in records:
            if record.content_type != 22 or record.epoch != 0:
                continue
            for fragment in parse_handshake_fragments(record.fragment):
                if fragment.message_seq < reassembler.next_seq:
                    continue
                if fragment.msg_type == HandshakeType.CLIENT_HELLO:
                    reassembler.reset(fragment.message_seq)
                assert reassembler.add(fragment, 0)
                while (message := reassembler.pop_ready()) is not None:
                    framed.append(
                        framed_message(message.msg_type, message.message_seq, message.body)
                    )
    return framed


def test_reassembly_reproduces_every_unprotected_message(capture: Any) -> None:
    expected = {
        direction: [
            m["dtls_framed_unfragmented_hex"]
            for m in capture["handshake_messages"]
            if m["direction"] == direction and m["epoch"] == 0
        ]
        for direction in ("client->server", "server->client")
    }
    for direction, messages in expected.items():
        got = [m.hex() for m in _reassemble(capture, direction)]
        # the second ClientHello replaces the first in our reassembly, as in a server
        assert got[-len(messages) :] == messages[-len(got) :]
        assert len(got) >= len(messages) - 1


def test_codecs_round_trip_captured_messages(capture: Any) -> None:
    parsers = {1: ClientHello, 2: ServerHello, 11: CertificateMessage}
    for m in capture["handshake_messages"]:
        if m["epoch"] != 0 or m["msg_type"] not in parsers:
            continue
        (fragment,) = parse_handshake_fragments(bytes.fromhex(m["dtls_framed_unfragmented_hex"]))
        assert parsers[m["msg_type"]].parse(fragment.body).serialize() == fragment.body


def _transcript(capture: Any, upto_name: str, upto_direction: str) -> bytes:
    out = b""
    for m in capture["handshake_messages"]:
        if not m["in_transcript"]:
            continue
        out += bytes.fromhex(m["dtls_framed_unfragmented_hex"])
        if m["name"] == upto_name and m["direction"] == upto_direction:
            return out
    raise AssertionError(f"{upto_name} not found")


def test_session_hash_key_block_finished_and_exporters(capture: Any) -> None:
    negotiated = capture["negotiated"]
    suite = SUITES[CipherSuite(int(negotiated["cipher_suite"], 16))]
    assert suite.hash_name == negotiated["prf_hash"]
    client_random = bytes.fromhex(capture["client_random"])
    server_random = bytes.fromhex(capture["server_random"])
    master = bytes.fromhex(capture["master_secret"])

    session = _transcript(capture, "client_key_exchange", "client->server")
    assert hashlib.new(suite.hash_name, session).hexdigest() == capture["session_hash"]

    block = keys.key_block(
        suite.hash_name,
        master,
        client_random,
        server_random,
        suite.key_length,
        suite.fixed_iv_length,
    )
    kb = capture["key_block"]
    assert block.client_write_key.hex() == kb["client_write_key"]
    assert block.server_write_key.hex() == kb["server_write_key"]
    assert block.client_write_iv.hex() == kb["client_write_iv"]
    assert block.server_write_iv.hex() == kb["server_write_iv"]

    client_transcript = _transcript(capture, "certificate_verify", "client->server")
    assert len(client_transcript) == capture["finished"]["client"]["transcript_length"]
    assert (
        keys.verify_data(suite.hash_name, master, True, client_transcript).hex()
        == capture["finished"]["client"]["verify_data"]
    )
    server_transcript = b"".join(
        bytes.fromhex(m["dtls_framed_unfragmented_hex"])
        for m in capture["handshake_messages"]
        if m["in_transcript"]
        and not (m["name"] == "finished" and m["direction"] == "server->client")
    )
    assert len(server_transcript) == capture["finished"]["server"]["transcript_length"]
    assert (
        keys.verify_data(suite.hash_name, master, False, server_transcript).hex()
        == capture["finished"]["server"]["verify_data"]
    )

    for exporter in capture["exporters"]:
        context = exporter["context"]
        out = keys.export_keying_material(
            suite.hash_name,
            master,
            client_random,
            server_random,
            exporter["label"],
            exporter["length"],
            None if context is None else bytes.fromhex(context),
        )
        assert out.hex() == exporter["output"]


def test_every_protected_record_decrypts_with_our_record_layer(capture: Any) -> None:
    suite = SUITES[CipherSuite(int(capture["negotiated"]["cipher_suite"], 16))]
    kb = capture["key_block"]
    readers = {
        "client->server": RecordProtection(
            suite, bytes.fromhex(kb["client_write_key"]), bytes.fromhex(kb["client_write_iv"])
        ),
        "server->client": RecordProtection(
            suite, bytes.fromhex(kb["server_write_key"]), bytes.fromhex(kb["server_write_iv"])
        ),
    }
    decrypted = 0
    for datagram in capture["datagrams"]:
        records, _ = parse_records(bytes.fromhex(datagram["hex"]))
        for record, annotation in zip(records, datagram["records"], strict=True):
            assert record.epoch == annotation["epoch"]
            assert record.sequence_number == annotation["sequence_number"]
            if record.epoch == 1:
                plain = readers[datagram["direction"]].decrypt(record)
                assert plain.hex() == annotation["decrypted"]
                decrypted += 1
    assert decrypted >= 4


def test_our_encryption_matches_openssl_when_given_the_same_nonce(capture: Any) -> None:
    """Re-encrypt a captured record: same key, IV, nonce and AAD give the same bytes."""
    suite = SUITES[CipherSuite(int(capture["negotiated"]["cipher_suite"], 16))]
    kb = capture["key_block"]
    protection = RecordProtection(
        suite, bytes.fromhex(kb["client_write_key"]), bytes.fromhex(kb["client_write_iv"])
    )
    for datagram in capture["datagrams"]:
        if datagram["direction"] != "client->server":
            continue
        records, _ = parse_records(bytes.fromhex(datagram["hex"]))
        for record, annotation in zip(records, datagram["records"], strict=True):
            if record.epoch != 1:
                continue
            aead = suite.make_aead(bytes.fromhex(kb["client_write_key"]))
            plain = bytes.fromhex(annotation["decrypted"])
            nonce = bytes.fromhex(annotation["gcm_nonce"])
            sealed = aead.encrypt(nonce, plain, bytes.fromhex(annotation["gcm_aad"]))
            assert record.fragment[8:] == sealed
            assert protection.decrypt(record) == plain
            return
    raise AssertionError("no protected client record in capture")
