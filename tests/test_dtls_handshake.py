"""Handshakes between two of our engines in memory, on a fake clock."""

from __future__ import annotations

import pytest

from tests.dtls_pair import DtlsConnection12, Link, cert, drain_events, pins, run
from webrtc_secure import Fingerprint
from webrtc_secure.dtls import (
    AlertDescription,
    ApplicationData,
    CipherSuite,
    ConnectionClosed,
    DtlsConnection,
    HandshakeComplete,
    NamedGroup,
    State,
)
from webrtc_secure.errors import FingerprintMismatch, HandshakeFailure, HandshakeTimeout
from webrtc_secure.srtp import Profile


def _pair(**kwargs: object) -> tuple[DtlsConnection, DtlsConnection]:
    client_kw = {k[2:]: v for k, v in kwargs.items() if k.startswith("c_")}
    server_kw = {k[2:]: v for k, v in kwargs.items() if k.startswith("s_")}
    common = {k: v for k, v in kwargs.items() if not k.startswith(("c_", "s_"))}
    rsa = bool(common.pop("rsa", False))
    # each side pins the other's certificate unless the test says otherwise
    client = DtlsConnection12(
        True,
        cert("client", rsa),
        **{"remote_fingerprints": pins("server", rsa), **common, **client_kw},  # type: ignore[arg-type]
    )
    server = DtlsConnection12(
        False,
        cert("server", rsa),
        **{"remote_fingerprints": pins("client", rsa), **common, **server_kw},  # type: ignore[arg-type]
    )
    return client, server


def _assert_connected(client: DtlsConnection, server: DtlsConnection) -> None:
    assert client.state == State.CONNECTED, client.error
    assert server.state == State.CONNECTED, server.error
    assert client.cipher_suite == server.cipher_suite
    assert client.srtp_profile == server.srtp_profile
    assert client.extended_master_secret and server.extended_master_secret
    assert client.export_keying_material("EXTRACTOR-dtls_srtp", 60) == (
        server.export_keying_material("EXTRACTOR-dtls_srtp", 60)
    )
    assert client.peer_certificate == server._handshake.config.certificate.der
    assert server.peer_certificate == client._handshake.config.certificate.der


def _exchange(client: DtlsConnection, server: DtlsConnection) -> None:
    drain_events(client)
    drain_events(server)
    client.send(b"ping")
    server.send(b"pong")
    run(client, server, until_connected=False)
    assert ApplicationData(b"ping") in drain_events(server)
    assert ApplicationData(b"pong") in drain_events(client)


@pytest.mark.parametrize("suite", list(CipherSuite))
@pytest.mark.parametrize("group", list(NamedGroup))
def test_every_suite_and_group(suite: CipherSuite, group: NamedGroup) -> None:
    rsa = "RSA" in suite.name
    client, server = _pair(cipher_suites=[suite], groups=[group], rsa=rsa)
    run(client, server)
    _assert_connected(client, server)
    assert client.cipher_suite == suite
    assert client._handshake.group == group
    _exchange(client, server)


@pytest.mark.parametrize("profile", list(Profile))
def test_every_srtp_profile(profile: Profile) -> None:
    client, server = _pair(s_srtp_profiles=[profile])
    run(client, server)
    _assert_connected(client, server)
    assert client.srtp_profile == profile
    events = [e for e in drain_events(client) if isinstance(e, HandshakeComplete)]
    assert events and events[0].srtp_profile == profile


def test_no_common_srtp_profile_negotiates_none() -> None:
    client, server = _pair(
        c_srtp_profiles=[Profile.AES128_CM_HMAC_SHA1_80], s_srtp_profiles=[Profile.AEAD_AES_128_GCM]
    )
    run(client, server)
    _assert_connected(client, server)
    assert client.srtp_profile is None


@pytest.mark.parametrize("cookies", [True, False])
def test_cookie_exchange_on_and_off(cookies: bool) -> None:
    client, server = _pair(s_cookies=cookies)
    run(client, server)
    _assert_connected(client, server)
    # the HelloVerifyRequest costs the client one extra flight
    assert client.stats.flights_sent == (3 if cookies else 2)


@pytest.mark.parametrize("mtu", [200, 300, 1200])
def test_every_datagram_fits_the_mtu(mtu: int) -> None:
    client, server = _pair(
        mtu=mtu, rsa=True, cipher_suites=[CipherSuite.ECDHE_RSA_AES_256_GCM_SHA384]
    )
    sizes: list[int] = []
    original = DtlsConnection.datagrams_to_send

    def spy(self: DtlsConnection, now: float) -> list[bytes]:
        out = original(self, now)
        sizes.extend(len(d) for d in out)
        return out

    DtlsConnection.datagrams_to_send = spy  # type: ignore[method-assign]
    try:
        run(client, server)
    finally:
        DtlsConnection.datagrams_to_send = original  # type: ignore[method-assign]
    _assert_connected(client, server)
    assert max(sizes) <= mtu
    if mtu == 200:
        assert len(sizes) > 10  # the RSA certificate had to be fragmented


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("mtu", [200, 1200])
def test_handshake_survives_loss_reordering_and_duplication(seed: int, mtu: int) -> None:
    # the default policy: no wall-clock bound, up to 12 retransmissions of each flight
    client, server = _pair(mtu=mtu)
    link = Link(loss=0.3, duplicate=0.1, reorder=0.3, seed=seed)
    run(client, server, link, max_time=600.0)
    _assert_connected(client, server)
    _exchange(client, server)


def _transmissions_until_failure(client: DtlsConnection) -> list[float]:
    """Drive a client whose peer never answers; the times it sent its flight."""
    client.connect(0.0)
    sent_at = []
    now = 0.0
    while client.state == State.HANDSHAKING:
        if client.datagrams_to_send(now):
            sent_at.append(now)
        timer = client.get_timer()
        assert timer is not None
        now = timer
        client.handle_timer(now)
    return sent_at


def test_rfc6347_timer_resends_a_flight_twelve_times_on_the_rfc_schedule() -> None:
    # the default timer is shorter (tests/test_handshake_timer.py); RFC 6347's on request
    client = DtlsConnection12(
        True,
        cert("client"),
        remote_fingerprints=pins("server"),
        initial_retransmit_timeout=1.0,
        max_retransmit_timeout=60.0,
    )
    sent_at = _transmissions_until_failure(client)
    # RFC 6347 4.2.4.1: 1 s, doubling, capped at 60 s; 12 retransmissions as OpenSSL
    assert sent_at == [0, 1, 3, 7, 15, 31, 63, 123, 183, 243, 303, 363, 423]
    assert client.stats.retransmissions == 12
    assert isinstance(client.error, HandshakeTimeout)
    assert "12 retransmissions" in str(client.error)
    # it gave up one (capped) timer period after the last copy, not at it
    assert client.state == State.FAILED


def test_retransmission_limit_and_timer_cap_are_configurable() -> None:
    server = pins("server")
    client = DtlsConnection12(
        True,
        cert("client"),
        remote_fingerprints=server,
        max_retransmissions=3,
        initial_retransmit_timeout=1.0,
        max_retransmit_timeout=2.0,
    )
    assert _transmissions_until_failure(client) == [0, 1, 3, 5]
    with pytest.raises(ValueError):
        DtlsConnection12(True, cert("client"), remote_fingerprints=server, max_retransmissions=-1)
    with pytest.raises(ValueError):
        DtlsConnection12(
            True, cert("client"), remote_fingerprints=server, initial_retransmit_timeout=0
        )
    with pytest.raises(ValueError):
        DtlsConnection12(True, cert("client"), remote_fingerprints=server, handshake_timeout=0)


def test_a_server_without_a_wall_clock_bound_waits_for_its_client() -> None:
    server = DtlsConnection12(False, cert("server"), remote_fingerprints=pins("client"))
    server.connect(0.0)
    assert server.state == State.HANDSHAKING and server.get_timer() is None


def test_retransmission_timer_doubles_and_gives_up() -> None:
    # a wall-clock bound cuts the schedule short
    client = DtlsConnection12(
        True,
        cert("client"),
        remote_fingerprints=pins("server"),
        handshake_timeout=20.0,
        initial_retransmit_timeout=1.0,
        max_retransmit_timeout=60.0,
    )
    assert _transmissions_until_failure(client) == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert isinstance(client.error, HandshakeTimeout)
    assert "within 20 s" in str(client.error)
    events = drain_events(client)
    assert isinstance(events[-1], ConnectionClosed)
    assert isinstance(events[-1].error, HandshakeTimeout)


def test_fingerprint_mismatch_fails_both_sides_with_bad_certificate() -> None:
    other = cert("third-party")
    wrong = Fingerprint.parse(f"sha-256 {other.fingerprint()}")
    client, server = _pair(c_remote_fingerprints=[wrong])
    run(client, server)
    assert client.state == State.FAILED and server.state == State.FAILED
    assert isinstance(client.error, FingerprintMismatch)
    assert client.error.alert == AlertDescription.BAD_CERTIFICATE
    assert server.error is not None and server.error.alert == AlertDescription.BAD_CERTIFICATE
    assert not any(
        isinstance(e, (ApplicationData, HandshakeComplete)) for e in drain_events(client)
    )


def test_server_checks_client_fingerprint() -> None:
    right = Fingerprint.parse(f"sha-256 {cert('client').fingerprint()}")
    client, server = _pair(s_remote_fingerprints=[right])
    run(client, server)
    _assert_connected(client, server)
    wrong = Fingerprint.parse(f"sha-256 {cert('server').fingerprint()}")
    client, server = _pair(s_remote_fingerprints=[wrong])
    run(client, server)
    assert isinstance(server.error, FingerprintMismatch)
    assert client.state == State.FAILED


def test_no_common_suite_is_handshake_failure() -> None:
    client, server = _pair(
        c_cipher_suites=[CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256],
        s_cipher_suites=[CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384],
    )
    run(client, server)
    assert isinstance(server.error, HandshakeFailure)
    assert server.error.alert == AlertDescription.HANDSHAKE_FAILURE
    assert client.state == State.FAILED


def test_close_notify_both_ways() -> None:
    client, server = _pair()
    run(client, server)
    drain_events(client)
    drain_events(server)
    client.close()
    run(client, server, until_connected=False)
    assert client.state == State.CLOSED
    assert server.state == State.CLOSED
    events = drain_events(server)
    assert events == [ConnectionClosed(None, by_peer=True)]


def test_keylog_file_written_only_when_asked(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "keys.log"
    client, server = _pair(c_keylog_file=str(path))
    run(client, server)
    _assert_connected(client, server)
    line = path.read_text().strip()
    label, client_random, master = line.split()
    assert label == "CLIENT_RANDOM"
    assert bytes.fromhex(client_random) == client._handshake.client_random
    assert bytes.fromhex(master) == client._handshake.master_secret


@pytest.mark.parametrize("cookies", [False, True])
@pytest.mark.parametrize("shape", ["chromium", "pion"])
def test_browser_shaped_hello_gets_a_dtls12_answer(shape: str, cookies: bool) -> None:
    """A ~1.5 KB hello in two datagrams offering DTLS 1.3 and 1.2, TLS 1.3 suites first,
    an X25519MLKEM768 key share, ALPN, record_size_limit and shuffled extensions."""
    from tests.browser_hello import (
        chromium_hello_datagrams,
        hello_verify_cookie,
        parse_server_hello,
        pion_hello_datagrams,
    )

    make = chromium_hello_datagrams if shape == "chromium" else pion_hello_datagrams
    server = DtlsConnection12(
        False, cert("server"), remote_fingerprints=pins("client"), cookies=cookies
    )
    first = make(seed=3)
    assert len(first) == 2  # the hello spans two datagrams
    for datagram in first:
        server.receive_datagram(datagram, 0.0)
    answer = server.datagrams_to_send(0.0)
    if cookies:
        cookie = hello_verify_cookie(answer)
        assert cookie and sum(len(d) for d in answer) < sum(len(d) for d in first)
        for datagram in make(seed=3, cookie=cookie):
            server.receive_datagram(datagram, 0.0)
        answer = server.datagrams_to_send(0.0)
    hello = parse_server_hello(answer)
    assert server.error is None
    assert hello.server_version == 0xFEFD
    assert CipherSuite(hello.cipher_suite).name.startswith("ECDHE_ECDSA_")
    assert 23 in hello.extensions  # extended_master_secret
    assert 14 in hello.extensions  # use_srtp
    assert 43 not in hello.extensions  # no supported_versions: this is DTLS 1.2
