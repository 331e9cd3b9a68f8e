"""Self-tests of tests/interop/pyopenssl_peer.py: OpenSSL against OpenSSL in memory, so
the harness is known good before it is pointed at our engine."""

from __future__ import annotations

import pytest

from tests.browser_hello import (
    HANDSHAKE_HELLO_VERIFY_REQUEST,
    HANDSHAKE_SERVER_HELLO,
    epoch0_handshakes,
)
from tests.interop.pyopenssl_peer import (
    CIPHER_IDS,
    PyOpenSslDtls,
    handshake_in_memory,
    pack_records,
    split_records,
)
from webrtc_secure import Certificate, DtlsError
from webrtc_secure.dtls.events import ApplicationData, ConnectionClosed, HandshakeComplete
from webrtc_secure.srtp.profiles import Profile

_CERTS: dict[str, Certificate] = {}


def cert(name: str, rsa: bool = False) -> Certificate:
    key = f"{name}-{rsa}"
    if key not in _CERTS:
        _CERTS[key] = Certificate.generate_rsa() if rsa else Certificate.generate()
    return _CERTS[key]


def drain(peer: PyOpenSslDtls) -> list[object]:
    events = []
    while (event := peer.next_event()) is not None:
        events.append(event)
    return events


def shuttle(sender: PyOpenSslDtls, receiver: PyOpenSslDtls) -> list[bytes]:
    datagrams = sender.datagrams_to_send(0.0)
    for datagram in datagrams:
        receiver.receive_datagram(datagram, 0.0)
    return datagrams


def test_default_handshake_agrees_on_everything() -> None:
    client = PyOpenSslDtls(True, cert("client"))
    server = PyOpenSslDtls(False, cert("server"))
    handshake_in_memory(client, server)
    assert client.is_connected and server.is_connected
    assert client.peer_certificate == cert("server").der
    assert server.peer_certificate == cert("client").der
    assert client.cipher_name == server.cipher_name
    assert client.cipher_suite == CIPHER_IDS[client.cipher_name or ""]
    assert client.srtp_profile is Profile.AEAD_AES_128_GCM
    assert server.srtp_profile is Profile.AEAD_AES_128_GCM
    assert client.extended_master_secret and server.extended_master_secret
    ours = client.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    assert len(ours) == 60
    assert ours == server.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    assert ours != client.export_keying_material("EXTRACTOR-other", 60)
    (complete,) = drain(client)
    assert isinstance(complete, HandshakeComplete)
    assert complete.cipher_suite == client.cipher_suite
    assert complete.srtp_profile == 0x0007
    assert complete.peer_certificate == cert("server").der


@pytest.mark.parametrize("profile", list(Profile))
def test_each_srtp_profile_negotiates(profile: Profile) -> None:
    client = PyOpenSslDtls(True, cert("client"), srtp_profiles=[profile])
    server = PyOpenSslDtls(False, cert("server"), srtp_profiles=list(Profile))
    handshake_in_memory(client, server)
    assert client.srtp_profile is profile
    assert server.srtp_profile is profile


def test_no_common_srtp_profile_means_no_srtp() -> None:
    client = PyOpenSslDtls(True, cert("client"), srtp_profiles=[Profile.AEAD_AES_256_GCM])
    server = PyOpenSslDtls(False, cert("server"), srtp_profiles=[Profile.AES128_CM_HMAC_SHA1_80])
    handshake_in_memory(client, server)
    assert client.is_connected and server.is_connected
    assert client.srtp_profile is None and server.srtp_profile is None


@pytest.mark.parametrize(
    ("cipher", "rsa"),
    [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", False),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", False),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", False),
        ("ECDHE-RSA-AES128-GCM-SHA256", True),
    ],
)
def test_cipher_list_selects_the_suite(cipher: str, rsa: bool) -> None:
    client = PyOpenSslDtls(True, cert("client"), cipher_list=cipher)
    server = PyOpenSslDtls(False, cert("server", rsa=rsa))
    handshake_in_memory(client, server)
    assert server.cipher_name == cipher
    assert client.cipher_suite == CIPHER_IDS[cipher]


@pytest.mark.parametrize(
    ("groups", "name"), [([0x0017], "secp256r1"), ([0x001D, 0x0017], "x25519")]
)
def test_groups_option_limits_the_key_exchange(groups: list[int], name: str) -> None:
    client = PyOpenSslDtls(True, cert("client"), groups=groups)
    server = PyOpenSslDtls(False, cert("server"))
    handshake_in_memory(client, server)
    assert client.group_name == name
    assert server.group_name == name


def test_ecdsa_certificate_curve_must_be_among_offered_groups() -> None:
    """OpenSSL fact (RFC 8422 5.1): with a P-256 ECDSA certificate, a client offering
    only x25519 gets no usable suite; browsers always offer P-256 too."""
    client = PyOpenSslDtls(True, cert("client"), groups=[0x001D])
    server = PyOpenSslDtls(False, cert("server"))
    handshake_in_memory(client, server)
    assert not client.is_connected and not server.is_connected
    assert isinstance(server.error, DtlsError)


@pytest.mark.parametrize("stateless", [True, False])
def test_cookie_exchange_sends_hello_verify_request(stateless: bool) -> None:
    client = PyOpenSslDtls(True, cert("client"))
    server = PyOpenSslDtls(False, cert("server"), cookies=True, stateless_cookies=stateless)
    client.connect(0.0)
    shuttle(client, server)
    answer = shuttle(server, client)
    assert [hs.msg_type for hs in epoch0_handshakes(answer)] == [HANDSHAKE_HELLO_VERIFY_REQUEST]
    shuttle(client, server)
    answer = shuttle(server, client)
    assert epoch0_handshakes(answer)[0].msg_type == HANDSHAKE_SERVER_HELLO
    handshake_in_memory(client, server)
    assert client.is_connected and server.is_connected


def test_small_mtu_fragments_the_flights() -> None:
    sizes: dict[int, list[int]] = {}
    for mtu in (1200, 256):
        client = PyOpenSslDtls(True, cert("client", rsa=True), mtu=mtu)
        server = PyOpenSslDtls(False, cert("server", rsa=True), mtu=mtu)
        client.connect(0.0)
        seen: list[int] = []
        for _ in range(10):
            for sender, receiver in ((client, server), (server, client)):
                datagrams = shuttle(sender, receiver)
                seen.extend(len(d) for d in datagrams)
        assert client.is_connected and server.is_connected
        sizes[mtu] = seen
    assert max(sizes[256]) <= 256
    assert max(sizes[1200]) <= 1200
    # RSA-2048 certificates do not fit 256 octets: the flights must have been split.
    assert len(sizes[256]) > len(sizes[1200])
    assert max(sizes[1200]) > 256


def test_application_data_and_close_notify() -> None:
    client = PyOpenSslDtls(True, cert("client"))
    server = PyOpenSslDtls(False, cert("server"))
    handshake_in_memory(client, server)
    drain(client)
    drain(server)
    client.send(b"ping")
    client.send(b"second record")
    shuttle(client, server)
    assert server.received == [b"ping", b"second record"]
    assert drain(server) == [ApplicationData(b"ping"), ApplicationData(b"second record")]
    server.send(b"pong")
    shuttle(server, client)
    assert client.received == [b"pong"]
    server.close()
    assert drain(server) == [ConnectionClosed(error=None, by_peer=False)]
    shuttle(server, client)
    events = drain(client)
    assert events == [ApplicationData(b"pong"), ConnectionClosed(error=None, by_peer=True)]
    assert not client.is_connected


def test_send_before_handshake_is_refused() -> None:
    client = PyOpenSslDtls(True, cert("client"))
    with pytest.raises(DtlsError):
        client.send(b"too early")
    with pytest.raises(DtlsError):
        client.export_keying_material("EXTRACTOR-dtls_srtp", 60)


def test_rejecting_verify_callback_fails_the_handshake() -> None:
    client = PyOpenSslDtls(True, cert("client"))
    server = PyOpenSslDtls(False, cert("server"), verify_peer=lambda der: False)
    handshake_in_memory(client, server)
    assert not server.is_connected
    closed = [e for e in drain(server) if isinstance(e, ConnectionClosed)]
    assert closed and isinstance(closed[0].error, DtlsError)
    assert not client.is_connected
    assert isinstance(client.error, DtlsError)  # the alert reached the client


def test_accepting_verify_callback_sees_the_peer_der() -> None:
    seen: list[bytes] = []
    client = PyOpenSslDtls(True, cert("client"), verify_peer=lambda der: seen.append(der) or True)
    server = PyOpenSslDtls(False, cert("server"))
    handshake_in_memory(client, server)
    assert client.is_connected
    assert seen and set(seen) == {cert("server").der}


def test_split_and_pack_records() -> None:
    def rec(n: int) -> bytes:
        return bytes([22, 0xFE, 0xFD]) + bytes(8) + n.to_bytes(2, "big") + b"x" * n

    stream = rec(10) + rec(100) + rec(50)
    records = split_records(stream)
    assert records == [rec(10), rec(100), rec(50)]
    assert split_records(stream + b"\x16\xfe") == [*records, b"\x16\xfe"]
    assert pack_records(records, 150) == [rec(10) + rec(100), rec(50)]
    assert pack_records(records, 1000) == [stream]
    assert pack_records([rec(300)], 100) == [rec(300)]
