"""Key shares for DTLS 1.3 (dtls/groups.py): x25519, secp256r1 and X25519MLKEM768.

No published X25519MLKEM768 known-answer vectors exist (draft-ietf-tls-ecdhe-mlkem has
none), so the layout is checked against a real 1216-octet share recorded from Chromium
156, the combination against RFC 8448's x25519 exchange and a by-hand recomputation,
and the whole hybrid against OpenSSL's TLS 1.3 in tests/test_dtls13_openssl.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from webrtc_secure.dtls.groups import (
    DEFAULT_GROUPS,
    MLKEM768_CIPHERTEXT_LENGTH,
    MLKEM768_ENCAPSULATION_KEY_LENGTH,
    SHARE_LENGTHS,
    ClientKeyShare,
    Group,
    server_key_share,
    split_hybrid_share,
)
from webrtc_secure.dtls.messages import split_handshake_fragments
from webrtc_secure.dtls.messages13 import (
    ClientHello13,
    ExtensionType13,
    parse_key_share_client,
    parse_supported_versions_client,
)
from webrtc_secure.dtls.records13 import PlaintextRecord, split_datagram
from webrtc_secure.errors import HandshakeFailure

HERE = Path(__file__).resolve().parent
ILLEGAL_PARAMETER = 47

#: X25519 points of small order (RFC 7748 section 5 names the all-zero and one
#: u-coordinates; the others are the order-8 points listed in the curve25519 literature
#: and refused by every X25519 implementation that checks for an all-zero output)
LOW_ORDER_POINTS = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


@pytest.mark.parametrize("group", list(Group))
def test_round_trip_and_lengths(group: Group) -> None:
    client = ClientKeyShare(group)
    assert len(client.key_exchange) == SHARE_LENGTHS[group][0]
    share, server_secret = server_key_share(group, client.key_exchange)
    assert len(share) == SHARE_LENGTHS[group][1]
    assert client.shared_secret(share) == server_secret
    assert len(server_secret) == (64 if group == Group.X25519MLKEM768 else 32)


def test_lengths_of_the_hybrid() -> None:
    assert SHARE_LENGTHS[Group.X25519MLKEM768] == (1216, 1120)
    assert DEFAULT_GROUPS[0] == Group.X25519MLKEM768 and Group.X25519 in DEFAULT_GROUPS
    assert int(Group.X25519MLKEM768) == 0x11EC


def test_hybrid_layout_and_secret_order_by_hand() -> None:
    """Client share = ML-KEM-768 encapsulation key || X25519 public key; server share
    = ML-KEM ciphertext || X25519 public key; secret = ML-KEM secret || X25519 secret."""
    rng = _rng(7)
    client = ClientKeyShare(Group.X25519MLKEM768, rng.randbytes)
    rng = _rng(7)
    seed, x_private = rng.randbytes(64), rng.randbytes(32)
    kem_private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    ecdh_private = x25519.X25519PrivateKey.from_private_bytes(x_private)
    assert client.key_exchange == (
        kem_private.public_key().public_bytes_raw() + ecdh_private.public_key().public_bytes_raw()
    )
    # the same seed gives the same share (injected randomness)
    assert ClientKeyShare(Group.X25519MLKEM768, _rng(7).randbytes).key_exchange == (
        client.key_exchange
    )

    share, secret = server_key_share(Group.X25519MLKEM768, client.key_exchange)
    ciphertext, server_x = split_hybrid_share(share, from_client=False)
    assert len(ciphertext) == MLKEM768_CIPHERTEXT_LENGTH
    expected = kem_private.decapsulate(ciphertext) + ecdh_private.exchange(
        x25519.X25519PublicKey.from_public_bytes(server_x)
    )
    assert secret == expected
    assert client.shared_secret(share) == expected


def test_x25519_against_rfc8448() -> None:
    """RFC 8448 section 3's x25519 key pairs give its shared secret through groups.py."""
    trace = json.loads((HERE / "vectors" / "rfc8448_simple_1rtt.json").read_text())
    client_private = bytes.fromhex(trace["client_x25519_private"])
    server_private = bytes.fromhex(trace["server_x25519_private"])
    client = ClientKeyShare(Group.X25519, lambda n: client_private[:n])
    assert client.key_exchange.hex() == trace["client_x25519_public"]
    share, secret = server_key_share(Group.X25519, client.key_exchange, lambda n: server_private)
    assert share.hex() == trace["server_x25519_public"]
    assert secret.hex() == trace["ecdhe_shared_secret"]
    assert client.shared_secret(share) == secret


def _chromium_client_hello() -> ClientHello13:
    recorded = json.loads((HERE / "browser" / "chromium_client_hello.json").read_text())
    message = bytearray()
    length = None
    for datagram in recorded["datagrams"]:
        records, clean = split_datagram(bytes.fromhex(datagram))
        assert clean
        for record in records:
            assert isinstance(record, PlaintextRecord) and record.content_type == 22
            for msg_type, total, _seq, offset, body in split_handshake_fragments(record.fragment):
                assert msg_type == 1
                if length is None:
                    length = total
                    message = bytearray(total)
                message[offset : offset + len(body)] = body
    assert length is not None
    return ClientHello13.parse(bytes(message), dtls=True)


def test_chromium_hybrid_share_layout() -> None:
    """A real X25519MLKEM768 share (Chromium 156's recorded DTLS ClientHello): its
    first 1184 octets pass FIPS 203's encapsulation key check, and we can
    encapsulate to it; read the other way round (X25519 first) the check fails."""
    hello = _chromium_client_hello()
    versions_raw = hello.extension(ExtensionType13.SUPPORTED_VERSIONS)
    assert versions_raw is not None
    assert parse_supported_versions_client(versions_raw) == [0xFEFC, 0xFEFD]
    key_share_raw = hello.extension(ExtensionType13.KEY_SHARE)
    assert key_share_raw is not None
    shares = {e.group: e.key_exchange for e in parse_key_share_client(key_share_raw)}
    assert set(shares) == {Group.X25519MLKEM768, Group.X25519}
    hybrid = shares[Group.X25519MLKEM768]
    assert len(hybrid) == 1216
    kem_part, ecdh_part = split_hybrid_share(hybrid, from_client=True)
    mlkem.MLKEM768PublicKey.from_public_bytes(kem_part)  # raises if not a valid key
    x25519.X25519PublicKey.from_public_bytes(ecdh_part)
    with pytest.raises(ValueError):
        mlkem.MLKEM768PublicKey.from_public_bytes(hybrid[32:])
    share, secret = server_key_share(Group.X25519MLKEM768, hybrid)
    assert len(share) == 1120 and len(secret) == 64


# --- hostile shares -----------------------------------------------------------------------


def _assert_illegal(call, *args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(HandshakeFailure) as info:
        call(*args)
    assert info.value.alert == ILLEGAL_PARAMETER


@pytest.mark.parametrize("group", list(Group))
def test_wrong_lengths(group: Group) -> None:
    client = ClientKeyShare(group)
    server_share, _ = server_key_share(group, client.key_exchange)
    for bad in (client.key_exchange[:-1], client.key_exchange + b"\x00", b""):
        _assert_illegal(server_key_share, group, bad)
    for bad in (server_share[:-1], server_share + b"\x00", b""):
        _assert_illegal(client.shared_secret, bad)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_low_order_x25519_points(point: bytes) -> None:
    _assert_illegal(server_key_share, Group.X25519, point)
    _assert_illegal(ClientKeyShare(Group.X25519).shared_secret, point)
    hybrid_client = ClientKeyShare(Group.X25519MLKEM768)
    kem_part = hybrid_client.key_exchange[:MLKEM768_ENCAPSULATION_KEY_LENGTH]
    _assert_illegal(server_key_share, Group.X25519MLKEM768, kem_part + point)
    share, _ = server_key_share(Group.X25519MLKEM768, hybrid_client.key_exchange)
    _assert_illegal(hybrid_client.shared_secret, share[:MLKEM768_CIPHERTEXT_LENGTH] + point)


def test_invalid_mlkem_encapsulation_keys() -> None:
    x_part = ClientKeyShare(Group.X25519).key_exchange
    rng = _rng(3)
    for kem_part in (b"\xff" * 1184, rng.randbytes(1184), rng.randbytes(1184)):
        _assert_illegal(server_key_share, Group.X25519MLKEM768, kem_part + x_part)


def test_forged_mlkem_ciphertext_gives_a_different_secret() -> None:
    """ML-KEM's implicit rejection: a tampered ciphertext decapsulates without an
    error to a secret the server does not have (the Finished check then fails)."""
    client = ClientKeyShare(Group.X25519MLKEM768)
    share, secret = server_key_share(Group.X25519MLKEM768, client.key_exchange)
    forged = bytes([share[0] ^ 1]) + share[1:]
    assert client.shared_secret(forged) != secret


def test_invalid_secp256r1_points() -> None:
    client = ClientKeyShare(Group.SECP256R1)
    good = client.key_exchange
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    compressed_prefix = b"\x02" + good[1:]
    for bad in (off_curve, compressed_prefix, bytes(65)):
        _assert_illegal(server_key_share, Group.SECP256R1, bad)
        _assert_illegal(client.shared_secret, bad)


def test_unknown_group_is_refused() -> None:
    with pytest.raises(ValueError):
        ClientKeyShare(0x0018)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        server_key_share(0x11EB, bytes(1249))  # type: ignore[arg-type]
