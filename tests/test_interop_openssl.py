"""Our DTLS 1.2 engine against OpenSSL, in the same run, in both roles.

Three ways in:

* pyOpenSSL (tests/interop/pyopenssl_peer.py) on the lossless network simulator: every
  suite, group and SRTP profile, HelloVerifyRequest either side, fragmented flights at a
  small MTU, fingerprint checks, alerts and close_notify;
* the ``openssl s_server -dtls1_2`` / ``s_client -dtls1_2`` processes over loopback UDP,
  first with our engine pumped by ``UdpEndpoint``, then end to end with our own command
  line (``python -m webrtc_secure dtls connect|listen``) as a subprocess;
* browser-shaped ClientHellos (tests/browser_hello.py) answered by our server.

Every completed handshake is checked the same way: both sides export the same
EXTRACTOR-dtls_srtp keying material (as long as the profile needs), agree on the suite,
the SRTP profile and extended master secret, see each other's certificate, and carry
application data both ways.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser_hello import (
    BROWSER_SRTP_PROFILES,
    CONTENT_HANDSHAKE,
    DTLS_1_2,
    HANDSHAKE_CLIENT_HELLO,
    HANDSHAKE_HELLO_VERIFY_REQUEST,
    HANDSHAKE_SERVER_HELLO,
    X25519MLKEM768,
    HandshakeFragment,
    chromium_hello_datagrams,
    epoch0_handshakes,
    hello_verify_cookie,
    parse_records,
    parse_server_hello,
    pion_hello_datagrams,
)
from tests.dtls_pair import cert
from tests.interop.openssl_cli import (
    EXPORTER_LABEL,
    OpenSslCliPeer,
    UdpEndpoint,
    handshake_with_cli,
    openssl_client,
    openssl_server,
    write_credentials,
)
from tests.interop.pyopenssl_peer import CIPHER_NAMES, SRTP_PROFILE_NAMES, PyOpenSslDtls
from tests.netsim import HandshakeResult, LinkConfig, NetSim, run_handshake
from webrtc_secure import Certificate, Fingerprint
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
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.errors import AlertReceived, FingerprintMismatch
from webrtc_secure.errors import ConnectionClosed as ConnectionClosedError
from webrtc_secure.srtp import Profile

pytestmark = pytest.mark.interop

LABEL = EXPORTER_LABEL
CONTENT_ALERT = 21
UNKNOWN_CA = 48
HANDSHAKE_CERTIFICATE = 11
HANDSHAKE_SERVER_KEY_EXCHANGE = 12
HANDSHAKE_CERTIFICATE_REQUEST = 13
HANDSHAKE_SERVER_HELLO_DONE = 14
EXT_USE_SRTP = 14
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51
OPENSSL_GROUP_NAMES = {
    NamedGroup.X25519: "x25519",
    NamedGroup.SECP256R1: "secp256r1",
    NamedGroup.SECP384R1: "secp384r1",
}
ECDSA_AEAD_SUITES = {
    CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256,
    CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384,
    CipherSuite.ECDHE_ECDSA_CHACHA20_POLY1305_SHA256,
}
#: 2 * (master key + master salt): RFC 5764 4.2 and RFC 7714 12
KEYING_MATERIAL_LENGTHS = {
    Profile.AES128_CM_HMAC_SHA1_80: 60,
    Profile.AES128_CM_HMAC_SHA1_32: 60,
    Profile.AEAD_AES_128_GCM: 56,
    Profile.AEAD_AES_256_GCM: 88,
}
ROLES = pytest.mark.parametrize("ours_is_client", [True, False], ids=["ours-client", "ours-server"])
# fake seconds: a lossless run needs well under one; OpenSSL's timers use the real clock
HANDSHAKE_BUDGET = 10.0


# --- the pyOpenSSL side: one run on the simulator -----------------------------------------


class Tap:
    """Forwards the sans-I/O face of an engine and keeps every datagram crossing it."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    def connect(self, now: float) -> None:
        self.engine.connect(now)

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        self.received.append(data)
        self.engine.receive_datagram(data, now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out: list[bytes] = self.engine.datagrams_to_send(now)
        self.sent.extend(out)
        return out

    def get_timer(self) -> float | None:
        timer: float | None = self.engine.get_timer()
        return timer

    def handle_timer(self, now: float) -> None:
        self.engine.handle_timer(now)

    def next_event(self) -> Any:
        return self.engine.next_event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


class ListenerFace:
    """The stateless cookie front our ``dtls listen`` uses (:class:`DtlsListener`) behind
    the engine face, for one client address; ``conn`` is the connection it accepted."""

    ADDRESS = ("192.0.2.7", 5004)

    def __init__(self, listener: DtlsListener) -> None:
        self.listener = listener
        self.conn: DtlsConnection | None = None
        self._replies: list[bytes] = []

    def connect(self, now: float) -> None:
        del now  # a listener waits for hellos

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        conn, replies = self.listener.receive_datagram(data, self.ADDRESS, now)
        self._replies.extend(replies)
        if conn is not None:
            self.conn = conn

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._replies = self._replies, []
        if self.conn is not None:
            out += self.conn.datagrams_to_send(now)
        return out

    def get_timer(self) -> float | None:
        return self.conn.get_timer() if self.conn is not None else None

    def handle_timer(self, now: float) -> None:
        if self.conn is not None:
            self.conn.handle_timer(now)

    def next_event(self) -> Any:
        return self.conn.next_event() if self.conn is not None else None

    @property
    def is_connected(self) -> bool:
        return self.conn is not None and self.conn.is_connected

    @property
    def error(self) -> Any:
        return self.conn.error if self.conn is not None else None


@dataclass
class Run:
    """Our engine and OpenSSL after a handshake on the simulator, with their traffic."""

    ours: DtlsConnection
    theirs: PyOpenSslDtls
    ours_cert: Certificate
    theirs_cert: Certificate
    ours_tap: Tap
    theirs_tap: Tap
    result: HandshakeResult
    ours_is_client: bool

    @property
    def ours_events(self) -> list[Any]:
        side = self.result.a if self.ours_is_client else self.result.b
        return side.events

    @property
    def theirs_events(self) -> list[Any]:
        side = self.result.b if self.ours_is_client else self.result.a
        return side.events

    def pump_until(self, until: Callable[[], bool], what: str) -> None:
        assert self.result.pump.run_until(until, HANDSHAKE_BUDGET), f"never happened: {what}"


def ours_failed(engine: Any, _events: list[Any]) -> bool:
    return engine.error is not None


def theirs_closed(engine: Any, _events: list[Any]) -> bool:
    return bool(engine.closed)


def run_pair(
    ours_is_client: bool,
    *,
    rsa: bool = False,
    ours_mtu: int = 1200,
    theirs_mtu: int = 1200,
    ours_cookies: bool = True,
    theirs_cookies: bool = False,
    stateless_cookies: bool = True,
    theirs_options: dict[str, Any] | None = None,
    expect_failure: bool = False,
    ours_listener: bool = False,
    **ours_options: Any,
) -> Run:
    """Handshake our engine with a pyOpenSSL peer over a lossless simulated path whose
    MTU clamp in each direction is the sender's MTU (anything larger is dropped).
    ``ours_listener`` puts our server behind :class:`DtlsListener` (stateless cookies)."""
    ours_cert = cert("ours", rsa)
    theirs_cert = cert("openssl", rsa)
    # ours pins OpenSSL's certificate, as its a=fingerprint would, unless the test says
    ours_options.setdefault("remote_fingerprints", theirs_cert.fingerprints())
    ours_face: Any
    if ours_listener:
        assert not ours_is_client
        ours_face = ListenerFace(DtlsListener(ours_cert, mtu=ours_mtu, **ours_options))
    else:
        ours_face = DtlsConnection(
            ours_is_client, ours_cert, mtu=ours_mtu, cookies=ours_cookies, **ours_options
        )
    theirs = PyOpenSslDtls(
        not ours_is_client,
        theirs_cert,
        mtu=theirs_mtu,
        cookies=theirs_cookies,
        stateless_cookies=stateless_cookies,
        **(theirs_options or {}),
    )
    ours_tap, theirs_tap = Tap(ours_face), Tap(theirs)
    ours_link = LinkConfig(delay=0.005, mtu=ours_mtu)
    theirs_link = LinkConfig(delay=0.005, mtu=theirs_mtu)
    if ours_is_client:
        sim = NetSim(1, a_to_b=ours_link, b_to_a=theirs_link)
        a, b = ours_tap, theirs_tap
    else:
        sim = NetSim(1, a_to_b=theirs_link, b_to_a=ours_link)
        a, b = theirs_tap, ours_tap
    if expect_failure:
        a_done = ours_failed if ours_is_client else theirs_closed
        b_done = theirs_closed if ours_is_client else ours_failed
        result = run_handshake(a, b, sim, HANDSHAKE_BUDGET, a_done=a_done, b_done=b_done)
    else:
        result = run_handshake(a, b, sim, HANDSHAKE_BUDGET)
    assert sum(s.mtu_dropped for s in sim.stats.values()) == 0, "a datagram exceeded its MTU"
    ours = ours_face.conn if ours_listener else ours_face
    assert ours is not None, "the listener never accepted the client"
    run = Run(ours, theirs, ours_cert, theirs_cert, ours_tap, theirs_tap, result, ours_is_client)
    assert result.completed, (
        f"handshake did not finish: ours={ours.state} {ours.error!r} "
        f"(retransmissions {ours.stats.retransmissions}), "
        f"openssl connected={theirs.is_connected} {theirs.error}"
    )
    return run


def assert_agree(run: Run, *, message_size: int = 300) -> Profile:
    """Everything both sides must agree on after a handshake, then data both ways."""
    ours, theirs = run.ours, run.theirs
    assert ours.state is State.CONNECTED and ours.error is None
    assert theirs.is_connected, theirs.error
    # the path is lossless: a retransmission means one side ignored a flight
    assert ours.stats.retransmissions == 0
    assert theirs.stats.retransmissions == 0
    suite = ours.cipher_suite
    assert suite is not None
    assert theirs.cipher_suite == suite
    assert theirs.cipher_name == CIPHER_NAMES[suite]
    profile = ours.srtp_profile
    assert profile is not None
    assert theirs.srtp_profile is profile
    assert ours.extended_master_secret and theirs.extended_master_secret
    length = profile.keying_material_length
    material = ours.export_keying_material(LABEL, length)
    assert len(material) == length
    assert material == theirs.export_keying_material(LABEL, length)
    assert ours.peer_certificate == run.theirs_cert.der
    assert theirs.peer_certificate == run.ours_cert.der
    expected = HandshakeComplete(suite, profile, run.theirs_cert.der)
    assert [e for e in run.ours_events if isinstance(e, HandshakeComplete)] == [expected]
    (theirs_complete,) = [e for e in run.theirs_events if isinstance(e, HandshakeComplete)]
    assert theirs_complete == HandshakeComplete(suite, profile, run.ours_cert.der)

    ours_messages = [b"ours #1", bytes(range(256)) * (message_size // 256) + b"tail", b"ours #3"]
    theirs_messages = [b"openssl #1", b"\x00" * message_size, b"openssl #3"]
    for message in ours_messages:
        ours.send(message)
    for message in theirs_messages:
        theirs.send(message)
    run.pump_until(
        lambda: (
            len(theirs.received) >= 3
            and sum(isinstance(e, ApplicationData) for e in run.ours_events) >= 3
        ),
        "application data both ways",
    )
    assert theirs.received == ours_messages
    assert [e for e in run.ours_events if isinstance(e, ApplicationData)] == [
        ApplicationData(m) for m in theirs_messages
    ]
    assert ours.stats.dropped_authentication == 0
    return profile


def handshakes(datagrams: Sequence[bytes], msg_type: int) -> list[HandshakeFragment]:
    return [hs for hs in epoch0_handshakes(datagrams) if hs.msg_type == msg_type]


def first_fragments(datagrams: Sequence[bytes], msg_type: int) -> list[HandshakeFragment]:
    """The first fragment of each ``msg_type`` message (our 1.3 + 1.2 ClientHello
    carries the X25519MLKEM768 share and spans two datagrams)."""
    return [hs for hs in handshakes(datagrams, msg_type) if hs.fragment_offset == 0]


def client_hello_random_and_cookie(hello: HandshakeFragment) -> tuple[bytes, bytes]:
    """client_version(2) random(32) session_id<0..32> cookie<0..255> ..."""
    body = hello.body
    assert hello.fragment_offset == 0 and len(body) >= 35 + body[34] + 1, "truncated hello"
    sid_end = 35 + body[34]
    return body[2:34], body[sid_end + 1 : sid_end + 1 + body[sid_end]]


# --- suites, groups, profiles ---------------------------------------------------------------

SUITES = [
    (CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256, False),
    (CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384, False),
    (CipherSuite.ECDHE_ECDSA_CHACHA20_POLY1305_SHA256, False),
    (CipherSuite.ECDHE_RSA_AES_128_GCM_SHA256, True),
    (CipherSuite.ECDHE_RSA_AES_256_GCM_SHA384, True),
    (CipherSuite.ECDHE_RSA_CHACHA20_POLY1305_SHA256, True),
]


@ROLES
@pytest.mark.parametrize(("suite", "rsa"), SUITES, ids=[s.name for s, _ in SUITES])
def test_cipher_suite(ours_is_client: bool, suite: CipherSuite, rsa: bool) -> None:
    # only our side is restricted: OpenSSL offers (or accepts) all of its defaults
    run = run_pair(ours_is_client, rsa=rsa, cipher_suites=[suite])
    assert_agree(run)
    assert run.ours.cipher_suite is suite
    assert run.theirs.cipher_name == CIPHER_NAMES[suite]


@ROLES
@pytest.mark.parametrize("group", list(NamedGroup), ids=[g.name for g in NamedGroup])
def test_group_alone_with_rsa_certificates(ours_is_client: bool, group: NamedGroup) -> None:
    # RSA certificates let both sides name exactly one group (an ECDSA P-256
    # certificate obliges the client to list P-256 too: RFC 8422 5.1, OpenSSL enforces it)
    run = run_pair(ours_is_client, rsa=True, groups=[group], theirs_options={"groups": [group]})
    assert_agree(run)
    assert run.ours._handshake.group is group
    assert run.theirs.group_name == OPENSSL_GROUP_NAMES[group]


@ROLES
@pytest.mark.parametrize("group", list(NamedGroup), ids=[g.name for g in NamedGroup])
def test_group_first_with_ecdsa_certificates(ours_is_client: bool, group: NamedGroup) -> None:
    groups = list(dict.fromkeys([group, NamedGroup.SECP256R1]))
    # the DTLS 1.2 group preference: a 1.3 + 1.2 hello also lists the 1.3 groups
    run = run_pair(
        ours_is_client, groups=groups, theirs_options={"groups": groups}, dtls_versions=["1.2"]
    )
    assert_agree(run)
    assert run.ours._handshake.group is group
    assert run.theirs.group_name == OPENSSL_GROUP_NAMES[group]


@ROLES
@pytest.mark.parametrize("restricted", ["ours", "openssl"])
@pytest.mark.parametrize("profile", list(Profile), ids=[p.name for p in Profile])
def test_srtp_profile(ours_is_client: bool, restricted: str, profile: Profile) -> None:
    """One profile offered (or accepted) by one side, all four by the other."""
    if restricted == "ours":
        run = run_pair(ours_is_client, srtp_profiles=[profile])
    else:
        run = run_pair(ours_is_client, theirs_options={"srtp_profiles": [profile]})
    assert assert_agree(run) is profile
    assert profile.keying_material_length == KEYING_MATERIAL_LENGTHS[profile]


@ROLES
def test_exporter_with_context_and_other_labels(ours_is_client: bool) -> None:
    run = run_pair(ours_is_client)
    assert_agree(run)
    for label, length, context in [
        ("EXTRACTOR-dtls_srtp", 1, None),
        ("EXTRACTOR-dtls_srtp", 256, None),
        ("EXPORTER-webrtc-test", 48, b""),
        ("EXPORTER-webrtc-test", 48, b"some context"),
    ]:
        ours = run.ours.export_keying_material(label, length, context)
        assert ours == run.theirs.export_keying_material(label, length, context)
    # an empty context is not the same as no context (RFC 5705 4)
    assert run.ours.export_keying_material("EXPORTER-webrtc-test", 48, b"") != (
        run.ours.export_keying_material("EXPORTER-webrtc-test", 48, None)
    )


# --- HelloVerifyRequest -------------------------------------------------------------------


@pytest.mark.parametrize("stateless", [True, False], ids=["DTLSv1_listen", "OP_COOKIE_EXCHANGE"])
def test_hello_verify_request_from_openssl(stateless: bool) -> None:
    run = run_pair(True, theirs_cookies=True, stateless_cookies=stateless)
    assert_agree(run)
    first_answer = epoch0_handshakes(run.ours_tap.received[:1])
    assert [hs.msg_type for hs in first_answer] == [HANDSHAKE_HELLO_VERIFY_REQUEST]
    cookie = hello_verify_cookie(run.ours_tap.received[:1])
    first, second = first_fragments(run.ours_tap.sent, HANDSHAKE_CLIENT_HELLO)
    assert (first.message_seq, second.message_seq) == (0, 1)
    random1, cookie1 = client_hello_random_and_cookie(first)
    random2, cookie2 = client_hello_random_and_cookie(second)
    assert cookie1 == b"" and cookie2 == cookie and len(cookie) > 0
    assert random1 == random2  # RFC 6347 4.2.1: the same hello, plus the cookie
    assert run.ours.stats.retransmissions == 0


def test_hello_verify_request_from_ours() -> None:
    run = run_pair(False, ours_cookies=True)
    assert_agree(run)
    answer = epoch0_handshakes(run.ours_tap.sent[:1])
    assert [hs.msg_type for hs in answer] == [HANDSHAKE_HELLO_VERIFY_REQUEST]
    cookie = hello_verify_cookie(run.ours_tap.sent[:1])
    first, second = handshakes(run.ours_tap.received, HANDSHAKE_CLIENT_HELLO)
    assert client_hello_random_and_cookie(second)[1] == cookie
    assert client_hello_random_and_cookie(first)[0] == client_hello_random_and_cookie(second)[0]


def test_stateless_listener_against_openssl_client() -> None:
    """Our ``dtls listen`` front (DtlsListener) answers the first hello statelessly, then
    the connection it creates must not reuse the HelloVerifyRequest's epoch-0 record
    sequence number: OpenSSL's replay window drops such a ServerHello, and the
    handshake then waits for a retransmission (RFC 6347 4.1, 4.2.1)."""
    run = run_pair(False, ours_listener=True)
    assert [hs.msg_type for hs in epoch0_handshakes(run.ours_tap.sent[:1])] == [
        HANDSHAKE_HELLO_VERIFY_REQUEST
    ]
    # checked before assert_agree, whose retransmission check would hide the cause
    epoch0_sequences = [
        r.sequence for d in run.ours_tap.sent for r in parse_records(d) if r.epoch == 0
    ]
    assert len(epoch0_sequences) == len(set(epoch0_sequences)), epoch0_sequences
    assert_agree(run)


# --- fragmentation --------------------------------------------------------------------------


@ROLES
@pytest.mark.parametrize("cookies", [False, True], ids=["no-cookies", "cookies"])
def test_fragmented_flights_at_small_mtu(ours_is_client: bool, cookies: bool) -> None:
    """Ours at 200 octets, OpenSSL at 256 (it refuses anything lower); RSA-2048
    certificates fragment the Certificate message in both directions."""
    run = run_pair(
        ours_is_client,
        rsa=True,
        ours_mtu=200,
        theirs_mtu=256,
        ours_cookies=cookies,
        theirs_cookies=cookies,
    )
    assert_agree(run, message_size=100)
    assert max(len(d) for d in run.ours_tap.sent) <= 200
    assert max(len(d) for d in run.theirs_tap.sent) <= 256
    ours_cert_fragments = handshakes(run.ours_tap.sent, HANDSHAKE_CERTIFICATE)
    theirs_cert_fragments = handshakes(run.ours_tap.received, HANDSHAKE_CERTIFICATE)
    assert len(ours_cert_fragments) >= 4
    assert len(theirs_cert_fragments) >= 4
    assert sum(len(f.body) for f in ours_cert_fragments) == ours_cert_fragments[0].length
    assert run.ours.stats.retransmissions == 0


# --- fingerprints and alerts --------------------------------------------------------------


@ROLES
@pytest.mark.parametrize("algorithm", ["sha-256", "sha-1", "sha-512"])
def test_matching_fingerprint_passes(ours_is_client: bool, algorithm: str) -> None:
    right = Fingerprint.parse(f"{algorithm} {cert('openssl').fingerprint(algorithm)}")
    other = Fingerprint.parse(f"sha-256 {cert('mallory').fingerprint()}")
    # any one of several fingerprints may match (RFC 8122 5)
    run = run_pair(ours_is_client, remote_fingerprints=[other, right])
    assert_agree(run)


@ROLES
def test_wrong_fingerprint_fails_with_bad_certificate(ours_is_client: bool) -> None:
    wrong = Fingerprint.parse(f"sha-256 {cert('mallory').fingerprint()}")
    run = run_pair(ours_is_client, remote_fingerprints=[wrong], expect_failure=True)
    ours, theirs = run.ours, run.theirs
    assert isinstance(ours.error, FingerprintMismatch)
    assert ours.error.alert == AlertDescription.BAD_CERTIFICATE
    assert ours.state is State.FAILED
    assert not any(isinstance(e, HandshakeComplete) for e in run.ours_events)
    assert run.ours_events[-1] == ConnectionClosed(error=ours.error, by_peer=False)
    assert not theirs.is_connected
    assert theirs.error is not None
    assert re.search(r"alert bad certificate", str(theirs.error)), theirs.error
    with pytest.raises(ConnectionClosedError):
        ours.send(b"never")
    last = parse_records(run.ours_tap.sent[-1])[-1]
    assert last.content_type == CONTENT_ALERT
    if last.epoch == 0:
        assert last.fragment == bytes([2, AlertDescription.BAD_CERTIFICATE])


@ROLES
def test_openssl_rejecting_our_certificate_fails_ours_with_its_alert(ours_is_client: bool) -> None:
    run = run_pair(
        ours_is_client, theirs_options={"verify_peer": lambda der: False}, expect_failure=True
    )
    assert isinstance(run.ours.error, AlertReceived)
    # OpenSSL answers a failed verify callback with unknown_ca, which our AlertDescription
    # table does not name (yet)
    assert run.ours.error.alert == UNKNOWN_CA
    assert not run.theirs.is_connected
    assert not any(isinstance(e, HandshakeComplete) for e in run.ours_events)


# --- close_notify ---------------------------------------------------------------------------


@ROLES
def test_close_notify_from_ours(ours_is_client: bool) -> None:
    run = run_pair(ours_is_client)
    assert_agree(run)
    run.ours.send(b"last words")
    run.ours.close()
    run.pump_until(lambda: run.theirs.closed, "OpenSSL sees close_notify")
    assert run.theirs.received[-1] == b"last words"
    assert run.theirs_events[-1] == ConnectionClosed(error=None, by_peer=True)
    assert run.theirs.error is None
    assert run.ours.state is State.CLOSED and run.ours.error is None
    assert run.ours_events[-1] == ConnectionClosed(error=None, by_peer=False)
    with pytest.raises(ConnectionClosedError):
        run.ours.send(b"after close")


@ROLES
def test_close_notify_from_openssl(ours_is_client: bool) -> None:
    run = run_pair(ours_is_client)
    assert_agree(run)
    run.theirs.send(b"last words")
    run.theirs.close()
    run.pump_until(lambda: run.ours.state is State.CLOSED, "ours sees close_notify")
    assert run.ours.error is None
    assert run.ours_events[-2:] == [
        ApplicationData(b"last words"),
        ConnectionClosed(error=None, by_peer=True),
    ]
    with pytest.raises(ConnectionClosedError):
        run.ours.send(b"after close")


# --- the openssl command line over loopback UDP ---------------------------------------------


def _wait_data(endpoint: UdpEndpoint, prefix: bytes, cli: OpenSslCliPeer) -> None:
    endpoint.run_until(
        lambda: any(
            isinstance(e, ApplicationData) and e.data.startswith(prefix) for e in endpoint.events
        ),
        5,
        what=f"application data {prefix!r}",
        cli=cli,
    )


def _assert_cli_agrees(
    engine: DtlsConnection, cli: OpenSslCliPeer, profile: Profile, ours: Certificate
) -> None:
    assert engine.srtp_profile is profile
    assert cli.srtp_profile_name == SRTP_PROFILE_NAMES[profile]
    assert engine.cipher_suite is not None
    assert cli.cipher_name == CIPHER_NAMES[engine.cipher_suite]
    assert engine.extended_master_secret
    # s_server does not print extended master secret; s_client does
    if not engine.is_client:
        assert cli.seen(b"Extended master secret: yes")
    length = profile.keying_material_length
    assert cli.keying_material is not None and len(cli.keying_material) == length
    assert cli.keying_material == engine.export_keying_material(LABEL, length)
    assert cli.peer_certificate == ours.der
    assert engine.peer_certificate == cert("openssl").der


@pytest.mark.parametrize(
    "profile", [Profile.AES128_CM_HMAC_SHA1_80, Profile.AEAD_AES_256_GCM], ids=lambda p: p.name
)
def test_ours_client_against_s_server_listen(profile: Profile) -> None:
    ours = cert("ours")
    server, port = openssl_server(
        cert("openssl"),
        listen=True,
        srtp_profiles=[profile],
        keymat_length=profile.keying_material_length,
    )
    with server:
        engine = DtlsConnection(True, ours, remote_fingerprints=cert("openssl").fingerprints())
        with UdpEndpoint(engine, peer=("127.0.0.1", port)) as endpoint:
            endpoint.connect()
            handshake_with_cli(endpoint, server)
            # -listen answers statelessly with a HelloVerifyRequest first
            first = epoch0_handshakes(endpoint.datagrams_in[:1])
            assert [hs.msg_type for hs in first] == [HANDSHAKE_HELLO_VERIFY_REQUEST]
            _assert_cli_agrees(engine, server, profile, ours)
            engine.send(b"hello s_server\n")
            endpoint.run_until(lambda: server.seen(b"hello s_server\n"), 5, cli=server)
            server.write(b"hello ours\n")
            _wait_data(endpoint, b"hello ours\n", server)
            engine.close()
            endpoint.run_until(lambda: server.seen(b"DONE"), 5, what="s_server DONE", cli=server)
        assert server.proc.wait(timeout=5) == 0


def test_ours_server_against_s_client() -> None:
    ours = cert("ours")
    engine = DtlsConnection(
        False, ours, cookies=True, remote_fingerprints=cert("openssl").fingerprints()
    )
    with UdpEndpoint(engine) as endpoint:
        client = openssl_client(
            cert("openssl"),
            endpoint.address[1],
            keymat_length=Profile.AEAD_AES_128_GCM.keying_material_length,
        )
        with client:
            handshake_with_cli(endpoint, client)
            answer = epoch0_handshakes(endpoint.datagrams_out[:1])
            assert [hs.msg_type for hs in answer] == [HANDSHAKE_HELLO_VERIFY_REQUEST]
            _assert_cli_agrees(engine, client, Profile.AEAD_AES_128_GCM, ours)
            client.write(b"hello ours\n")
            _wait_data(endpoint, b"hello ours\n", client)
            engine.send(b"hello s_client\n")
            endpoint.run_until(lambda: client.seen(b"hello s_client\n"), 5, cli=client)
            # s_client sends close_notify when its stdin ends
            assert client.proc.stdin is not None
            client.proc.stdin.close()
            endpoint.run_until(lambda: engine.state is State.CLOSED, 5, cli=client)
            assert engine.error is None
            assert endpoint.events[-1] == ConnectionClosed(error=None, by_peer=True)


# --- our command line against the openssl command line -------------------------------------

_EXPORT = re.compile(rb"export EXTRACTOR-dtls_srtp ([0-9a-f]+)")


def _our_cli(mode: str, address: str, certificate: Certificate, tmp: Any) -> OpenSslCliPeer:
    """``python -m webrtc_secure dtls MODE ADDRESS`` with OpenSSL's certificate pinned."""
    cert_path, key_path = write_credentials(certificate, tmp)
    fingerprint = f"sha-256:{cert('openssl').fingerprint('sha-256')}"
    args = [
        sys.executable,
        "-m",
        "webrtc_secure",
        "dtls",
        mode,
        address,
        "--cert",
        str(cert_path),
        "--key",
        str(key_path),
        "--fingerprint",
        fingerprint,
        "--srtp-profiles",
        "SRTP_AES128_CM_SHA1_80",
        "--export",
        f"{LABEL}:60",
        "--timeout",
        "10",
    ]
    return OpenSslCliPeer(args)


def _exported(cli: OpenSslCliPeer) -> bytes:
    return bytes.fromhex(cli.wait_for(_EXPORT).group(1).decode())


def test_our_cli_connect_against_s_server(tmp_path: Any) -> None:
    server, port = openssl_server(cert("openssl"), srtp_profiles=list(Profile))
    with server, _our_cli("connect", f"127.0.0.1:{port}", cert("ours"), tmp_path) as ours:
        ours_material = _exported(ours)
        server.wait_for(b"Keying material: ")
        assert server.keying_material == ours_material
        assert ours.seen(b"srtp-profile AES128_CM_HMAC_SHA1_80")
        assert server.srtp_profile_name == "SRTP_AES128_CM_SHA1_80"
        assert ours.seen(b"peer-verified yes")
        assert ours.seen(b"extended-master-secret yes")
        suite = CipherSuite[ours.wait_for(re.compile(rb"cipher (\w+) ")).group(1).decode()]
        assert server.cipher_name == CIPHER_NAMES[suite]
        assert server.peer_certificate == cert("ours").der
        ours.write(b"from our cli\n")
        server.wait_for(b"from our cli\n", timeout=5)
        server.write(b"from s_server\n")
        ours.wait_for(b"from s_server\n", timeout=5)
        # stdin EOF: our CLI sends close_notify and exits cleanly
        assert ours.proc.stdin is not None
        ours.proc.stdin.close()
        assert ours.proc.wait(timeout=5) == 0
        server.wait_for(b"DONE", timeout=5)


def test_our_cli_listen_against_s_client(tmp_path: Any) -> None:
    # port 0: the listener reports the port it got, so there is no race for one
    with _our_cli("listen", "127.0.0.1:0", cert("ours"), tmp_path) as ours:
        port = int(ours.wait_for(re.compile(rb"listening on 127\.0\.0\.1:(\d+)")).group(1))
        with openssl_client(cert("openssl"), port, srtp_profiles=list(Profile)) as client:
            ours_material = _exported(ours)
            client.wait_for(b"Keying material: ")
            assert client.keying_material == ours_material
            assert ours.seen(b"srtp-profile AES128_CM_HMAC_SHA1_80")
            assert client.srtp_profile_name == "SRTP_AES128_CM_SHA1_80"
            assert ours.seen(b"peer-verified yes")
            suite = CipherSuite[ours.wait_for(re.compile(rb"cipher (\w+) ")).group(1).decode()]
            assert client.cipher_name == CIPHER_NAMES[suite]
            assert client.peer_certificate == cert("ours").der
            client.write(b"from s_client\n")
            ours.wait_for(b"from s_client\n", timeout=5)
            ours.write(b"from our cli\n")
            client.wait_for(b"from our cli\n", timeout=5)
            assert client.proc.stdin is not None
            client.proc.stdin.close()  # s_client sends close_notify
            ours.wait_for(b"peer closed the connection", timeout=5)
            assert ours.proc.wait(timeout=5) == 0


# --- browser-shaped ClientHellos ------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("cookies", [False, True], ids=["no-cookies", "cookies"])
@pytest.mark.parametrize("shape", ["chromium", "pion"])
def test_browser_shaped_hello_gets_dtls12_ecdsa_aead_answer(
    shape: str, cookies: bool, seed: int
) -> None:
    make = chromium_hello_datagrams if shape == "chromium" else pion_hello_datagrams
    # the browser-shaped hello carries no certificate: pin one the test never presents
    # our DTLS 1.2 answer (with 1.3 enabled Chromium's hello gets 1.3: the Chromium tests)
    server = DtlsConnection(
        False,
        cert("ours"),
        cookies=cookies,
        remote_fingerprints=cert("openssl").fingerprints(),
        dtls_versions=["1.2"],
    )
    first = make(seed=seed)
    assert len(first) == 2
    for datagram in first:
        server.receive_datagram(datagram, 0.0)
    answer = server.datagrams_to_send(0.0)
    if cookies:
        assert [hs.msg_type for hs in epoch0_handshakes(answer)] == [HANDSHAKE_HELLO_VERIFY_REQUEST]
        cookie = hello_verify_cookie(answer)
        assert 0 < len(cookie) <= 255
        # no amplification: the cookie request is smaller than the hello
        assert sum(len(d) for d in answer) < sum(len(d) for d in first)
        for datagram in make(seed=seed, cookie=cookie):
            server.receive_datagram(datagram, 0.0)
        answer = server.datagrams_to_send(0.0)
    assert server.error is None and server.state is State.HANDSHAKING
    assert max(len(d) for d in answer) <= 1200

    hello = parse_server_hello(answer)
    assert hello.record_version == DTLS_1_2
    assert hello.server_version == DTLS_1_2
    assert CipherSuite(hello.cipher_suite) in ECDSA_AEAD_SUITES
    assert hello.extensions[EXT_EXTENDED_MASTER_SECRET] == b""
    srtp = hello.extensions[EXT_USE_SRTP]
    # profiles<2..2^16-1> with exactly one entry, then an empty MKI
    assert len(srtp) == 5 and srtp[:2] == b"\x00\x02" and srtp[4] == 0
    (profile,) = struct.unpack("!H", srtp[2:4])
    assert profile in BROWSER_SRTP_PROFILES
    assert server.srtp_profile == Profile(profile)
    assert EXT_SUPPORTED_VERSIONS not in hello.extensions
    assert EXT_KEY_SHARE not in hello.extensions

    types = [hs.msg_type for hs in epoch0_handshakes(answer)]
    assert types == [
        HANDSHAKE_SERVER_HELLO,
        HANDSHAKE_CERTIFICATE,
        HANDSHAKE_SERVER_KEY_EXCHANGE,
        HANDSHAKE_CERTIFICATE_REQUEST,
        HANDSHAKE_SERVER_HELLO_DONE,
    ]
    (ske,) = handshakes(answer, HANDSHAKE_SERVER_KEY_EXCHANGE)
    assert ske.body[0] == 3  # named_curve
    (curve,) = struct.unpack("!H", ske.body[1:3])
    assert curve != X25519MLKEM768  # a hybrid share is TLS 1.3 only
    assert curve == NamedGroup.X25519  # our first preference, offered by the browser
    for datagram in answer:
        for rec in parse_records(datagram):
            assert rec.version == DTLS_1_2 and rec.epoch == 0
            assert rec.content_type == CONTENT_HANDSHAKE
