"""The TLS 1.3 / DTLS 1.3 key schedule (dtls/keys13.py) against known answers:
RFC 8448's Simple 1-RTT trace with the "tls13 " label prefix, RFC 5869's HKDF test
case, HkdfLabel bytes written out by hand, and OpenSSL's TLS 1.3 exporter."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from webrtc_secure.dtls import keys13
from webrtc_secure.dtls.keys13 import DTLS13_LABEL_PREFIX, TLS13_LABEL_PREFIX

VECTORS = Path(__file__).resolve().parent / "vectors"


@pytest.fixture(scope="module")
def trace() -> Any:
    return json.loads((VECTORS / "rfc8448_simple_1rtt.json").read_text())


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _messages(trace: Any, *names: str) -> bytes:
    return b"".join(_h(trace["messages"][n]) for n in names)


HELLOS = ("client_hello", "server_hello")
SERVER_FLIGHT = ("encrypted_extensions", "certificate", "certificate_verify")


def test_rfc5869_test_case_1() -> None:
    """HKDF-SHA256 with a 42-octet output, i.e. the multi-block expand path."""
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(13))
    info = bytes(range(0xF0, 0xFA))
    prk = keys13.hkdf_extract("sha256", salt, ikm)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    okm = keys13.hkdf_expand("sha256", prk, info, 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    # the one-block fast path agrees with the general one
    assert keys13.hkdf_expand("sha256", prk, info, 32) == okm[:32]
    with pytest.raises(ValueError):
        keys13.hkdf_expand("sha256", prk, info, 255 * 32 + 1)


def test_hkdf_label_bytes_for_both_prefixes() -> None:
    """HkdfLabel = uint16 length || opaque label<7..255> || opaque context<0..255>,
    written out octet by octet."""
    assert keys13.hkdf_label(b"key", b"", 16, TLS13_LABEL_PREFIX) == (
        b"\x00\x10" + b"\x09" + b"tls13 key" + b"\x00"
    )
    assert keys13.hkdf_label(b"sn", b"", 32, DTLS13_LABEL_PREFIX) == (
        b"\x00\x20" + b"\x08" + b"dtls13sn" + b"\x00"
    )
    context = bytes(range(32))
    assert keys13.hkdf_label(b"c hs traffic", context, 48, DTLS13_LABEL_PREFIX) == (
        b"\x00\x30" + b"\x12" + b"dtls13c hs traffic" + b"\x20" + context
    )
    with pytest.raises(ValueError):
        keys13.hkdf_label(b"x" * 250, b"", 16)
    with pytest.raises(ValueError):
        keys13.hkdf_label(b"key", bytes(256), 16)


def test_expand_label_matches_an_independent_hkdf() -> None:
    """HKDF-Expand-Label computed by cryptography's HKDFExpand over the hand-built
    label, for both hashes and both prefixes (this is also "traffic upd")."""
    for hash_name, algorithm, size in (
        ("sha256", hashes.SHA256(), 32),
        ("sha384", hashes.SHA384(), 48),
    ):
        secret = hashlib.new(hash_name, b"a traffic secret").digest()
        for prefix in (TLS13_LABEL_PREFIX, DTLS13_LABEL_PREFIX):
            info = size.to_bytes(2, "big") + bytes([len(prefix) + 11]) + prefix
            info += b"traffic upd" + b"\x00"
            expected = HKDFExpand(algorithm, size, info).derive(secret)
            assert keys13.next_traffic_secret(hash_name, secret, prefix) == expected
        assert keys13.next_traffic_secret(
            hash_name, secret, TLS13_LABEL_PREFIX
        ) != keys13.next_traffic_secret(hash_name, secret, DTLS13_LABEL_PREFIX)


def test_rfc8448_key_schedule(trace: Any) -> None:
    secrets = trace["secrets"]
    p = TLS13_LABEL_PREFIX
    early = keys13.early_secret("sha256")
    assert early.hex() == secrets["early_secret"]
    derived = keys13.derive_secret("sha256", early, b"derived", keys13.empty_hash("sha256"), p)
    assert derived.hex() == secrets["derived_for_handshake"]

    schedule = keys13.KeySchedule("sha256", p)
    hello_hash = hashlib.sha256(_messages(trace, *HELLOS)).digest()
    hs = schedule.derive_handshake(_h(trace["ecdhe_shared_secret"]), hello_hash)
    assert hs.handshake_secret.hex() == secrets["handshake_secret"]
    assert hs.client_handshake_traffic_secret.hex() == secrets["client_handshake_traffic_secret"]
    assert hs.server_handshake_traffic_secret.hex() == secrets["server_handshake_traffic_secret"]
    derived = keys13.derive_secret(
        "sha256", hs.handshake_secret, b"derived", keys13.empty_hash("sha256"), p
    )
    assert derived.hex() == secrets["derived_for_master"]
    assert hs.master_secret.hex() == secrets["master_secret"]

    server_finished_hash = hashlib.sha256(
        _messages(trace, *HELLOS, *SERVER_FLIGHT, "server_finished")
    ).digest()
    app = schedule.derive_application(server_finished_hash)
    assert (
        app.client_application_traffic_secret.hex()
        == secrets["client_application_traffic_secret_0"]
    )
    assert (
        app.server_application_traffic_secret.hex()
        == secrets["server_application_traffic_secret_0"]
    )
    assert app.exporter_master_secret.hex() == secrets["exporter_master_secret"]

    client_finished_hash = hashlib.sha256(
        _messages(trace, *HELLOS, *SERVER_FLIGHT, "server_finished", "client_finished")
    ).digest()
    resumption = schedule.resumption_master_secret(client_finished_hash)
    assert resumption.hex() == secrets["resumption_master_secret"]


def test_rfc8448_traffic_keys(trace: Any) -> None:
    secrets = trace["secrets"]
    by_name = {
        "server_handshake": secrets["server_handshake_traffic_secret"],
        "client_handshake": secrets["client_handshake_traffic_secret"],
        "server_application": secrets["server_application_traffic_secret_0"],
        "client_application": secrets["client_application_traffic_secret_0"],
    }
    for name, expected in trace["traffic_keys"].items():
        keys = keys13.traffic_keys(
            "sha256", _h(by_name[name]), 16, 12, TLS13_LABEL_PREFIX, sn_key=False
        )
        assert keys.key.hex() == expected["key"], name
        assert keys.iv.hex() == expected["iv"], name
        assert keys.sn_key == b""


def test_rfc8448_finished(trace: Any) -> None:
    secrets = trace["secrets"]
    p = TLS13_LABEL_PREFIX
    through_cv = hashlib.sha256(_messages(trace, *HELLOS, *SERVER_FLIGHT)).digest()
    server_vd = keys13.finished_verify_data(
        "sha256", _h(secrets["server_handshake_traffic_secret"]), through_cv, p
    )
    assert server_vd.hex() == trace["finished"]["server_verify_data"]
    # the Finished message is type 20, a 24-bit length and verify_data
    assert _h(trace["messages"]["server_finished"]) == b"\x14\x00\x00\x20" + server_vd

    through_sf = hashlib.sha256(
        _messages(trace, *HELLOS, *SERVER_FLIGHT, "server_finished")
    ).digest()
    client_secret = _h(secrets["client_handshake_traffic_secret"])
    client_vd = _h(trace["finished"]["client_verify_data"])
    assert keys13.verify_finished("sha256", client_secret, through_sf, client_vd, p)
    tampered = bytes([client_vd[0] ^ 1]) + client_vd[1:]
    assert not keys13.verify_finished("sha256", client_secret, through_sf, tampered, p)
    # the same inputs under the DTLS prefix give a different answer
    assert not keys13.verify_finished(
        "sha256", client_secret, through_sf, client_vd, DTLS13_LABEL_PREFIX
    )


def test_dtls_prefix_changes_every_secret(trace: Any) -> None:
    """The prefix is a real parameter: with "dtls13" nothing after the early secret
    equals the TLS trace (and the early secret, which has no label, does)."""
    hello_hash = hashlib.sha256(_messages(trace, *HELLOS)).digest()
    shared = _h(trace["ecdhe_shared_secret"])
    tls = keys13.KeySchedule("sha256", TLS13_LABEL_PREFIX)
    dtls = keys13.KeySchedule("sha256", DTLS13_LABEL_PREFIX)
    assert tls.early_secret == dtls.early_secret
    a = tls.derive_handshake(shared, hello_hash)
    b = dtls.derive_handshake(shared, hello_hash)
    for left, right in zip(a, b, strict=True):
        assert left != right
    assert keys13.KeySchedule("sha256").prefix == DTLS13_LABEL_PREFIX


def test_traffic_keys_for_dtls_include_the_record_number_key() -> None:
    secret = bytes(range(48))
    keys = keys13.traffic_keys("sha384", secret, 32)
    assert len(keys.key) == 32 and len(keys.iv) == 12 and len(keys.sn_key) == 32
    assert keys.sn_key == keys13.hkdf_expand_label("sha384", secret, b"sn", b"", 32)
    assert keys.sn_key != keys.key


def test_schedule_order_and_key_log(trace: Any) -> None:
    schedule = keys13.KeySchedule("sha256", TLS13_LABEL_PREFIX)
    with pytest.raises(RuntimeError):
        schedule.derive_application(bytes(32))
    with pytest.raises(RuntimeError):
        schedule.resumption_master_secret(bytes(32))
    assert schedule.key_log_lines(bytes(32)) == []
    hello_hash = hashlib.sha256(_messages(trace, *HELLOS)).digest()
    schedule.derive_handshake(_h(trace["ecdhe_shared_secret"]), hello_hash)
    schedule.derive_application(bytes(32))
    client_random = _h(trace["messages"]["client_hello"])[6:38]
    lines = schedule.key_log_lines(client_random)
    labels = [line.split()[0] for line in lines]
    assert labels == [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ]
    assert all(line.split()[1] == client_random.hex() for line in lines)
    assert lines[0].split()[2] == trace["secrets"]["client_handshake_traffic_secret"]


def test_message_hash_replaces_client_hello1() -> None:
    hello = b"\x01\x00\x00\x03abc"
    synthetic = keys13.message_hash("sha384", hello)
    assert synthetic[:4] == b"\xfe\x00\x00\x30"
    assert synthetic[4:] == hashlib.sha384(hello).digest()


def test_exporter_definition_by_hand() -> None:
    """RFC 8446 7.5 spelled out with the primitive steps."""
    exporter_master = bytes(range(32))
    label = b"EXTRACTOR-dtls_srtp"
    inner = keys13.hkdf_expand_label(
        "sha256", exporter_master, label, hashlib.sha256(b"").digest(), 32
    )
    expected = keys13.hkdf_expand_label(
        "sha256", inner, b"exporter", hashlib.sha256(b"").digest(), 60
    )
    assert keys13.export_keying_material("sha256", exporter_master, label, None, 60) == expected
    # no context and an empty context are the same thing in TLS 1.3
    assert keys13.export_keying_material("sha256", exporter_master, label, b"", 60) == expected
    assert keys13.export_keying_material("sha256", exporter_master, label, b"x", 60) != expected


@pytest.mark.interop
@pytest.mark.parametrize(
    ("ciphersuite", "hash_name"),
    [("TLS_AES_128_GCM_SHA256", "sha256"), ("TLS_AES_256_GCM_SHA384", "sha384")],
)
def test_exporter_matches_openssl_tls13(ciphersuite: str, hash_name: str) -> None:
    """OpenSSL's SSL_export_keying_material on a real TLS 1.3 connection equals our
    exporter over the EXPORTER_SECRET it logged (the "tls13 " prefix: the DTLS 1.3
    exporter differs only by the prefix)."""
    from tests.interop.tls13_openssl import connected_pair

    client, server = connected_pair(ciphersuite)
    exporter_master = client.key_log["EXPORTER_SECRET"]
    assert server.key_log["EXPORTER_SECRET"] == exporter_master
    assert len(exporter_master) == keys13.digest_size(hash_name)
    for label, context, length in (
        (b"EXTRACTOR-dtls_srtp", None, 60),
        (b"EXTRACTOR-dtls_srtp", b"", 88),
        (b"EXPORTER-test", b"some context", 32),
    ):
        theirs = client.connection.export_keying_material(label, length, context)
        ours = keys13.export_keying_material(
            hash_name, exporter_master, label, context, length, TLS13_LABEL_PREFIX
        )
        assert ours == theirs, (label, context)


# --- the shortcuts against the plain construction ----------------------------------------


def _plain_expand_label(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int, prefix: bytes
) -> bytes:
    """HKDF-Expand-Label through cryptography's HKDFExpand, nothing cached."""
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[hash_name]
    info = keys13.hkdf_label(label, context, length, prefix)
    return HKDFExpand(algorithm, length, info).derive(secret)


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("prefix", [TLS13_LABEL_PREFIX, DTLS13_LABEL_PREFIX])
def test_cached_labels_and_keyed_once_hmacs_match_the_plain_schedule(
    hash_name: str, prefix: bytes
) -> None:
    """The cached HkdfLabel infos, the HMAC keyed once per secret and the constant
    Early Secret and salt give what the plain definitions give, for both hashes and
    both prefixes, twice over (the second time from the caches)."""
    size = keys13.digest_size(hash_name)
    for round_ in range(2):
        secret = bytes((7 * i + round_) % 256 for i in range(size))
        hello_hash = hashlib.new(hash_name, b"hello %d" % round_).digest()
        finished_hash = hashlib.new(hash_name, b"finished %d" % round_).digest()
        shared = bytes((3 * i + round_) % 256 for i in range(32))
        for label, context, length in (
            (b"key", b"", 16),
            (b"iv", b"", 12),
            (b"sn", b"", 32),
            (b"c hs traffic", hello_hash, size),
            (b"exporter", hello_hash, 3 * size),  # longer than one hash: several blocks
        ):
            assert keys13.hkdf_expand_label(
                hash_name, secret, label, context, length, prefix
            ) == _plain_expand_label(hash_name, secret, label, context, length, prefix)
        keys = keys13.traffic_keys(hash_name, secret, 16, 12, prefix)
        assert keys == keys13.TrafficKeys(
            _plain_expand_label(hash_name, secret, b"key", b"", 16, prefix),
            _plain_expand_label(hash_name, secret, b"iv", b"", 12, prefix),
            _plain_expand_label(hash_name, secret, b"sn", b"", 16, prefix),
        )
        assert keys13.traffic_keys(hash_name, secret, 32, 12, prefix, sn_key=False).sn_key == b""

        # the schedule, secret by secret, from the RFC 8446 7.1 definitions
        zeros = bytes(size)
        early = keys13.hkdf_extract(hash_name, zeros, zeros)
        empty = hashlib.new(hash_name).digest()
        salt = _plain_expand_label(hash_name, early, b"derived", empty, size, prefix)
        handshake = keys13.hkdf_extract(hash_name, salt, shared)
        schedule = keys13.KeySchedule(hash_name, prefix)
        assert schedule.early_secret == early
        hs = schedule.derive_handshake(shared, hello_hash)
        assert hs.handshake_secret == handshake
        assert hs.client_handshake_traffic_secret == _plain_expand_label(
            hash_name, handshake, b"c hs traffic", hello_hash, size, prefix
        )
        assert hs.server_handshake_traffic_secret == _plain_expand_label(
            hash_name, handshake, b"s hs traffic", hello_hash, size, prefix
        )
        salt = _plain_expand_label(hash_name, handshake, b"derived", empty, size, prefix)
        master = keys13.hkdf_extract(hash_name, salt, zeros)
        assert hs.master_secret == master
        app = schedule.derive_application(finished_hash)
        for secret_value, label in (
            (app.client_application_traffic_secret, b"c ap traffic"),
            (app.server_application_traffic_secret, b"s ap traffic"),
            (app.exporter_master_secret, b"exp master"),
        ):
            assert secret_value == _plain_expand_label(
                hash_name, master, label, finished_hash, size, prefix
            )


def test_a_psk_early_secret_is_not_taken_for_the_constant() -> None:
    """The constant salt stands only for the Early Secret without a PSK."""
    with_psk = keys13.early_secret("sha256", b"\x01" * 32)
    assert with_psk != keys13.early_secret("sha256")
    empty = hashlib.new("sha256").digest()
    salt = _plain_expand_label("sha256", with_psk, b"derived", empty, 32, DTLS13_LABEL_PREFIX)
    assert keys13.handshake_secret("sha256", with_psk, b"ecdhe") == keys13.hkdf_extract(
        "sha256", salt, b"ecdhe"
    )
