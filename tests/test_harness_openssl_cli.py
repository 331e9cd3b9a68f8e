"""Self-tests of tests/interop/openssl_cli.py: the openssl command line against the
pyOpenSSL peer over 127.0.0.1 UDP, and against itself, so the harness is known good
before our engine is put in the pyOpenSSL peer's place."""

from __future__ import annotations

import pytest

from tests.browser_hello import (
    CONTENT_HANDSHAKE,
    HANDSHAKE_HELLO_VERIFY_REQUEST,
    HANDSHAKE_SERVER_HELLO,
    epoch0_handshakes,
    parse_records,
)
from tests.interop.openssl_cli import (
    EXPORTER_LABEL,
    InteropTimeout,
    UdpEndpoint,
    handshake_with_cli,
    openssl_client,
    openssl_server,
    openssl_version,
)
from tests.interop.pyopenssl_peer import SRTP_PROFILE_NAMES, PyOpenSslDtls
from webrtc_secure import Certificate
from webrtc_secure.dtls.events import ApplicationData
from webrtc_secure.srtp.profiles import Profile

pytestmark = pytest.mark.interop

_CERTS: dict[str, Certificate] = {}


def cert(name: str, rsa: bool = False) -> Certificate:
    key = f"{name}-{rsa}"
    if key not in _CERTS:
        _CERTS[key] = Certificate.generate_rsa() if rsa else Certificate.generate()
    return _CERTS[key]


def test_openssl_binary_is_there() -> None:
    assert openssl_version().startswith("OpenSSL 3.")


def test_cli_client_against_pyopenssl_server() -> None:
    server = PyOpenSslDtls(False, cert("server"), cookies=True)
    with UdpEndpoint(server) as endpoint:
        with openssl_client(cert("client"), endpoint.address[1]) as cli:
            handshake_with_cli(endpoint, cli)
            ours = server.export_keying_material(EXPORTER_LABEL, 60)
            assert cli.keying_material == ours
            assert cli.srtp_profile_name == "SRTP_AEAD_AES_128_GCM"
            assert server.srtp_profile is Profile.AEAD_AES_128_GCM
            assert cli.cipher_name == server.cipher_name
            assert cli.peer_certificate == cert("server").der
            assert server.peer_certificate == cert("client").der
            # The stateless listener answered the first hello with a cookie request.
            first_answer = epoch0_handshakes(endpoint.datagrams_out[:1])
            assert first_answer[0].msg_type == HANDSHAKE_HELLO_VERIFY_REQUEST

            cli.write(b"from the command line\n")
            endpoint.run_until(lambda: bool(server.received), 5, cli=cli)
            assert server.received == [b"from the command line\n"]
            server.send(b"from pyopenssl\n")
            endpoint.run_until(lambda: cli.seen(b"from pyopenssl\n"), 5, cli=cli)
        assert cli.returncode is not None


@pytest.mark.parametrize("listen", [True, False])
def test_cli_server_against_pyopenssl_client(listen: bool) -> None:
    server_cli, port = openssl_server(cert("server"), listen=listen)
    with server_cli as cli:
        client = PyOpenSslDtls(True, cert("client"))
        with UdpEndpoint(client, peer=("127.0.0.1", port)) as endpoint:
            endpoint.connect()
            handshake_with_cli(endpoint, cli)
            assert cli.keying_material == client.export_keying_material(EXPORTER_LABEL, 60)
            assert cli.peer_certificate == cert("client").der
            assert client.peer_certificate == cert("server").der
            types = [hs.msg_type for hs in epoch0_handshakes(endpoint.datagrams_in)]
            # s_server always asks for a cookie, with or without -listen.
            assert types[:2] == [HANDSHAKE_HELLO_VERIFY_REQUEST, HANDSHAKE_SERVER_HELLO]
            client.send(b"hello server\n")
            endpoint.run_until(lambda: cli.seen(b"hello server\n"), 5, cli=cli)
            cli.write(b"hello client\n")
            endpoint.run_until(lambda: bool(client.received), 5, cli=cli)
            assert ApplicationData(b"hello client\n") in endpoint.events


@pytest.mark.parametrize("profile", [Profile.AES128_CM_HMAC_SHA1_80, Profile.AEAD_AES_256_GCM])
def test_cli_profile_and_cipher_options(profile: Profile) -> None:
    length = profile.keying_material_length
    server_cli, port = openssl_server(
        cert("server"),
        srtp_profiles=[profile],
        cipher="ECDHE-ECDSA-AES128-GCM-SHA256",
        keymat_length=length,
    )
    with server_cli as cli:
        client = PyOpenSslDtls(True, cert("client"))
        with UdpEndpoint(client, peer=("127.0.0.1", port)) as endpoint:
            endpoint.connect()
            handshake_with_cli(endpoint, cli)
            assert client.srtp_profile is profile
            assert cli.srtp_profile_name == SRTP_PROFILE_NAMES[profile]
            assert client.cipher_name == "ECDHE-ECDSA-AES128-GCM-SHA256"
            assert cli.keying_material is not None and len(cli.keying_material) == length
            assert client.export_keying_material(EXPORTER_LABEL, length) == cli.keying_material


def test_cli_mtu_is_the_udp_payload_limit() -> None:
    server_cli, port = openssl_server(cert("server", rsa=True), mtu=300)
    with server_cli as cli:
        client = PyOpenSslDtls(True, cert("client"), mtu=300)
        with UdpEndpoint(client, peer=("127.0.0.1", port)) as endpoint:
            endpoint.connect()
            handshake_with_cli(endpoint, cli)
            assert max(endpoint.sizes_out) <= 300
            # OpenSSL 3.0 fact: it packs ChangeCipherSpec + Finished after the last
            # handshake fragment without counting them against the MTU (seen: 311 octets
            # at -mtu 300); every other datagram respects the limit.
            plain = [
                d
                for d in endpoint.datagrams_in
                if all(r.content_type == CONTENT_HANDSHAKE for r in parse_records(d))
            ]
            assert max(len(d) for d in plain) <= 300
            # An RSA-2048 certificate alone is bigger than 300 octets.
            assert len(endpoint.datagrams_in) >= 5


def test_cli_against_cli_keying_material_matches() -> None:
    server_cli, port = openssl_server(cert("server"))
    with server_cli as server, openssl_client(cert("client"), port) as client:
        server.wait_for(b"Keying material: ")
        client.wait_for(b"Keying material: ")
        assert server.keying_material is not None and len(server.keying_material) == 60
        assert server.keying_material == client.keying_material
        assert server.srtp_profile_name == client.srtp_profile_name
        assert server.peer_certificate == cert("client").der
        assert client.peer_certificate == cert("server").der


def test_timeouts_fail_loudly_and_processes_die() -> None:
    server_cli, _port = openssl_server(cert("server"))
    silent = PyOpenSslDtls(False, cert("client"))
    with server_cli as cli, UdpEndpoint(silent) as endpoint:
        with pytest.raises(InteropTimeout, match="ACCEPT"):
            endpoint.run_until(lambda: False, 0.2, what="nothing", cli=cli)
        with pytest.raises(InteropTimeout):
            cli.wait_for(b"this never appears", timeout=0.2)
    assert cli.returncode is not None
