"""Our DTLS engine against OpenSSL in the same run, both roles: through pyOpenSSL in
memory and through the `openssl s_server` / `s_client` commands over loopback UDP.

Every case checks that both sides export identical EXTRACTOR-dtls_srtp keying
material, agree on suite and SRTP profile, and carry application data both ways.
"""

from __future__ import annotations

import pytest

from tests.dtls_pair import cert, drain_events
from tests.interop.openssl_cli import (
    UdpEndpoint,
    handshake_with_cli,
    openssl_client,
    openssl_server,
)
from tests.interop.pyopenssl_peer import PyOpenSslDtls, handshake_in_memory
from webrtc_secure import Fingerprint
from webrtc_secure.dtls import (
    AlertDescription,
    ApplicationData,
    CipherSuite,
    DtlsConnection,
    NamedGroup,
    State,
)
from webrtc_secure.errors import FingerprintMismatch
from webrtc_secure.srtp import Profile

pytestmark = pytest.mark.interop

LABEL = "EXTRACTOR-dtls_srtp"


def _check(ours: DtlsConnection, theirs: PyOpenSslDtls) -> None:
    assert ours.state == State.CONNECTED, ours.error
    assert theirs.is_connected, theirs.error
    assert ours.cipher_suite == theirs.cipher_suite
    assert ours.srtp_profile == theirs.srtp_profile
    assert ours.srtp_profile is not None
    length = ours.srtp_profile.keying_material_length
    assert ours.export_keying_material(LABEL, length) == theirs.export_keying_material(
        LABEL, length
    )
    assert ours.peer_certificate == theirs_certificate(theirs)
    drain_events(ours)
    ours.send(b"from ours")
    theirs.send(b"from openssl")
    handshake_in_memory(ours, theirs) if ours.is_client else handshake_in_memory(theirs, ours)
    assert b"from ours" in theirs.received
    assert ApplicationData(b"from openssl") in drain_events(ours)


def theirs_certificate(theirs: PyOpenSslDtls) -> bytes:
    return theirs._certificate_der  # type: ignore[attr-defined,no-any-return]


def _pair(
    ours_is_client: bool,
    *,
    rsa: bool = False,
    mtu: int = 1200,
    openssl_mtu: int = 1200,
    cookies: bool = False,
    **ours_options: object,
) -> tuple[DtlsConnection, PyOpenSslDtls]:
    ours = DtlsConnection(ours_is_client, cert("ours", rsa), mtu=mtu, cookies=False, **ours_options)  # type: ignore[arg-type]
    openssl_cert = cert("openssl", rsa)
    theirs = PyOpenSslDtls(not ours_is_client, openssl_cert, mtu=openssl_mtu, cookies=cookies)
    theirs._certificate_der = openssl_cert.der  # type: ignore[attr-defined]
    if ours_is_client:
        handshake_in_memory(ours, theirs)
    else:
        handshake_in_memory(theirs, ours)
    return ours, theirs


SUITES = [
    (CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256, False),
    (CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384, False),
    (CipherSuite.ECDHE_ECDSA_CHACHA20_POLY1305_SHA256, False),
    (CipherSuite.ECDHE_RSA_AES_128_GCM_SHA256, True),
    (CipherSuite.ECDHE_RSA_AES_256_GCM_SHA384, True),
    (CipherSuite.ECDHE_RSA_CHACHA20_POLY1305_SHA256, True),
]


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["ours-client", "ours-server"])
@pytest.mark.parametrize(("suite", "rsa"), SUITES, ids=[s.name for s, _ in SUITES])
def test_every_suite_both_roles(ours_is_client: bool, suite: CipherSuite, rsa: bool) -> None:
    ours, theirs = _pair(ours_is_client, rsa=rsa, cipher_suites=[suite])
    _check(ours, theirs)
    assert ours.cipher_suite == suite


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["ours-client", "ours-server"])
@pytest.mark.parametrize("group", list(NamedGroup), ids=[g.name for g in NamedGroup])
def test_every_group_both_roles(ours_is_client: bool, group: NamedGroup) -> None:
    # RFC 8422 5.1: supported_groups also names the curves a peer's ECDSA certificate
    # may use, and OpenSSL enforces it, so P-256 (both certificates) is always listed
    groups = [group] if group == NamedGroup.SECP256R1 else [group, NamedGroup.SECP256R1]
    ours, theirs = _pair(ours_is_client, groups=groups)
    _check(ours, theirs)
    assert ours._handshake.group == group


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["ours-client", "ours-server"])
@pytest.mark.parametrize("profile", list(Profile), ids=[p.name for p in Profile])
def test_every_srtp_profile_both_roles(ours_is_client: bool, profile: Profile) -> None:
    ours, theirs = _pair(ours_is_client, srtp_profiles=[profile])
    _check(ours, theirs)
    assert ours.srtp_profile == profile


def test_hello_verify_request_from_openssl() -> None:
    ours, theirs = _pair(True, cookies=True)
    _check(ours, theirs)
    assert ours.stats.flights_sent == 3  # hello, hello with cookie, flight 5


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["ours-client", "ours-server"])
def test_fragmented_flights_at_small_mtu(ours_is_client: bool) -> None:
    # OpenSSL will not go below its minimum MTU (~256); ours runs at 200
    ours, theirs = _pair(
        ours_is_client,
        rsa=True,
        mtu=200,
        openssl_mtu=256,
        cipher_suites=[CipherSuite.ECDHE_RSA_AES_256_GCM_SHA384],
    )
    _check(ours, theirs)
    assert ours.stats.datagrams_sent >= 6


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["ours-client", "ours-server"])
def test_fingerprint_of_openssl_certificate_checked(ours_is_client: bool) -> None:
    right = Fingerprint.parse(f"sha-256 {cert('openssl').fingerprint()}")
    ours, theirs = _pair(ours_is_client, remote_fingerprints=[right])
    _check(ours, theirs)
    wrong = Fingerprint.parse(f"sha-256 {cert('mallory').fingerprint()}")
    ours, theirs = _pair(ours_is_client, remote_fingerprints=[wrong])
    assert isinstance(ours.error, FingerprintMismatch)
    assert ours.error.alert == AlertDescription.BAD_CERTIFICATE
    assert not theirs.is_connected
    # OpenSSL reports the alert it received from us
    assert "tls alert bad certificate" in str(theirs.error)


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["ours-client", "ours-server"])
def test_close_notify_both_ways(ours_is_client: bool) -> None:
    ours, theirs = _pair(ours_is_client)
    _check(ours, theirs)
    ours.close()
    for d in ours.datagrams_to_send(0.0):
        theirs.receive_datagram(d, 0.0)
    assert theirs.closed
    ours, theirs = _pair(ours_is_client)
    theirs.close()
    for d in theirs.datagrams_to_send(0.0):
        ours.receive_datagram(d, 0.0)
    assert ours.state == State.CLOSED and ours.error is None


# --- the openssl command line over real UDP ----------------------------------------------


def test_ours_client_against_openssl_s_server_with_stateless_cookies() -> None:
    server, port = openssl_server(cert("openssl"), listen=True, keymat_length=60)
    with server:
        engine = DtlsConnection(True, cert("ours"))
        with UdpEndpoint(engine, peer=("127.0.0.1", port)) as endpoint:
            endpoint.connect()
            handshake_with_cli(endpoint, server)
            assert engine.srtp_profile is not None
            ours = engine.export_keying_material(LABEL, 60)
            assert server.keying_material == ours
            assert server.peer_certificate == cert("ours").der
            engine.send(b"hello s_server\n")
            endpoint.run_until(lambda: server.seen(b"hello s_server"), 5, cli=server)
            server.write(b"hello ours\n")
            endpoint.run_until(
                lambda: any(
                    getattr(e, "data", b"").startswith(b"hello ours") for e in endpoint.events
                ),
                5,
                cli=server,
            )


def test_ours_server_against_openssl_s_client() -> None:
    engine = DtlsConnection(False, cert("ours"), cookies=True)
    with UdpEndpoint(engine) as endpoint:
        client = openssl_client(cert("openssl"), endpoint.address[1], keymat_length=60)
        with client:
            handshake_with_cli(endpoint, client)
            assert engine.srtp_profile is not None
            assert client.keying_material == engine.export_keying_material(LABEL, 60)
            client.write(b"hello ours\n")
            endpoint.run_until(
                lambda: any(
                    getattr(e, "data", b"").startswith(b"hello ours") for e in endpoint.events
                ),
                5,
                cli=client,
            )
            engine.send(b"hello s_client\n")
            endpoint.run_until(lambda: client.seen(b"hello s_client"), 5, cli=client)
