"""DtlsConnection: the sans-I/O DTLS engine, DTLS 1.3 (RFC 9147, handshake13.py) and
DTLS 1.2 (RFC 6347, this module and handshake.py) behind one face.

The version is settled by the first hello (RFC 8446 4.2.1): a client with 1.3
enabled lets the 1.3 engine send a hello that offers both and falls back to the 1.2
path here if the server answers 1.2 (checking the downgrade sentinel); a server
reads the first hello on the 1.2 path and hands it to the 1.3 engine when it offers
1.3, else answers 1.2 with the sentinel in its random.

It never touches a socket or a clock: the owner feeds datagrams and the current time
in, takes datagrams, events and the next deadline out::

    conn.connect(now)                      # client: send the first flight
    conn.receive_datagram(data, now)
    conn.datagrams_to_send(now) -> list[bytes]
    conn.get_timer() -> float | None
    conn.handle_timer(now)
    conn.next_event() -> Event | None

Records that fail authentication or replay checks are dropped silently and counted
(RFC 6347 4.1.2.7); handshake failures send a fatal alert and end the connection with
a typed error.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.dtls.cookies import CookieFactory
from webrtc_secure.dtls.cookies13 import RetryCookies
from webrtc_secure.dtls.events import ApplicationData, ConnectionClosed, Event, HandshakeComplete
from webrtc_secure.dtls.flights import FlightItem, pack_flight
from webrtc_secure.dtls.groups import DEFAULT_GROUPS as DEFAULT_GROUPS13
from webrtc_secure.dtls.groups import Group
from webrtc_secure.dtls.handshake import (
    CLIENT_WAIT_SERVER_HELLO,
    ClientHandshake,
    Handshake,
    HandshakeConfig,
    Offer,
    ServerHandshake,
    make_offer,
)
from webrtc_secure.dtls.handshake13 import _CONNECTED as _ENGINE_CONNECTED
from webrtc_secure.dtls.handshake13 import (
    DEFAULT_SIGNATURE_SCHEMES13,
    Config13,
    Dtls13,
    Fallback,
    PeerClosed,
    offers_dtls13,
)
from webrtc_secure.dtls.messages import (
    HANDSHAKE_HEADER_LENGTH,
    Alert,
    AlertDescription,
    AlertLevel,
    Extension,
    ExtensionType,
    HandshakeType,
    enum_name,
    parse_client_hello,
    split_handshake_fragments,
    unpack_fragment_header,
)
from webrtc_secure.dtls.messages13 import DTLS_1_2, DTLS_1_3
from webrtc_secure.dtls.reassembly import Message, Reassembler
from webrtc_secure.dtls.records import (
    MAX_PLAINTEXT_LENGTH,
    MAX_SEQUENCE,
    RECORD_HEADER,
    RECORD_HEADER_LENGTH,
    ContentType,
    ProtocolVersion,
    RecordProtection,
    RecordTuple,
    split_records,
    unpack_header,
)
from webrtc_secure.dtls.suites import (
    DEFAULT_GROUPS,
    DEFAULT_SIGNATURE_SCHEMES,
    DEFAULT_SUITES,
    CipherSuite,
    NamedGroup,
    SignatureScheme,
)
from webrtc_secure.dtls.suites13 import DEFAULT_SUITES13, CipherSuite13
from webrtc_secure.errors import (
    AlertReceived,
    AuthenticationFailed,
    ConfigurationError,
    DtlsError,
    FirstFlightTimeout,
    HandshakeFailure,
    HandshakeTimeout,
    MalformedPacket,
    WebrtcSecureError,
)
from webrtc_secure.errors import (
    ConnectionClosed as ConnectionClosedError,
)
from webrtc_secure.replay import ReplayWindow
from webrtc_secure.srtp.profiles import DEFAULT_PROFILES, Profile

if TYPE_CHECKING:
    from webrtc_secure.trace import Trace

logger = logging.getLogger(__name__)

#: records of the next epoch buffered until its keys exist (RFC 6347 4.1)
MAX_EARLY_RECORDS = 32

#: Retransmissions of one flight before the handshake is abandoned. OpenSSL gives up
#: after the same number of timeouts (DTLS1_TMO_ALERT_COUNT). The count, not the time,
#: decides how much loss a handshake survives: with the default timer below a dead
#: flight is given up about 27 s after it was first sent (0.1 s doubling to 3 s, then
#: 3 s apart), where RFC 6347's 1 s doubling to 60 s took 423 s + 60 s.
DEFAULT_MAX_RETRANSMISSIONS = 12

# --- the retransmission timer (RFC 6347 4.2.4.1, tuned as RFC 9147 5.8.2 allows) ------
#
# RFC 6347 starts every flight's timer at 1 s and doubles it up to 60 s; that is the
# right default for a path nothing is known about, but it makes a handshake that loses
# a few flights take tens of seconds (30 % loss each way: p95 15-16 s, 3 % beyond 30 s).
# A WebRTC engine knows more: ICE has just measured the path's round-trip time, and
# the call is being set up while a user waits. RFC 9147 5.8.2 (DTLS 1.3, the same
# "retransmit everything on timeout" for 1.2) says to use 1.5 times an RTT known from
# ICE, and 400 ms for DTLS-SRTP without one; libwebrtc derives the initial DTLS timer
# as 2 x the ICE RTT clamped to [50 ms, 3 s]. We take RFC 9147's factor, libwebrtc's
# ceiling, and a 100 ms floor: one ICE check's RTT says nothing of its variance, of
# the peer's time to compute a flight (ECDHE, a signature, in Python here) or of
# reordering, and below 100 ms `make faults` counted up to 73 % more datagrams on a
# reordering 20 ms path (spurious retransmissions) for a p95 at 30 % loss of 0.45 s
# instead of 0.85 s. The backoff still doubles (a congested path sees the rate of
# retransmissions fall quickly), but stops at 3 s: a flight is a few datagrams, one
# every 3 s is no load on any path, and a call being set up cannot wait for the next
# 60 s timer. The 12-retransmission limit still decides when a flight is given up.

#: initial timeout = RTT_FACTOR x the measured round-trip time (RFC 9147 5.8.2) ...
RTT_FACTOR = 1.5
#: ... clamped to these bounds (see above; libwebrtc: 50 ms and 3 s): the ceiling
#: keeps one sluggish ICE check from starting the handshake at a crawl
MIN_INITIAL_RETRANSMIT_TIMEOUT = 0.1
MAX_INITIAL_RETRANSMIT_TIMEOUT = 3.0
#: initial timeout when no round-trip time is known (e.g. the command line against
#: OpenSSL, no ICE): RFC 9147 5.8.2's recommendation for DTLS-SRTP
UNKNOWN_RTT_RETRANSMIT_TIMEOUT = 0.4
#: where the doubling stops by default: a call being set up
DEFAULT_MAX_RETRANSMIT_TIMEOUT = 3.0
#: RFC 6347 4.2.4.1's timer, for ``initial_retransmit_timeout`` /
#: ``max_retransmit_timeout`` when the plain RFC schedule is wanted
RFC6347_INITIAL_RETRANSMIT_TIMEOUT = 1.0
RFC6347_MAX_RETRANSMIT_TIMEOUT = 60.0


#: the versions an endpoint speaks by default, preferred first: DTLS 1.3 (RFC 9147)
#: and DTLS 1.2 for the peers that lack it
DEFAULT_DTLS_VERSIONS: tuple[int, ...] = (DTLS_1_3, DTLS_1_2)
#: the groups a client sends key shares for in its first hello: the hybrid and x25519
#: (a server without ML-KEM then needs no HelloRetryRequest)
DEFAULT_KEY_SHARE_GROUPS: tuple[int, ...] = (Group.X25519MLKEM768, Group.X25519)
_VERSION_NAMES = {DTLS_1_3: "DTLS 1.3", DTLS_1_2: "DTLS 1.2"}
_GROUPS12 = frozenset(int(g) for g in NamedGroup)


def parse_dtls_versions(versions: Sequence[int | str]) -> tuple[int, ...]:
    """Normalize a ``dtls_versions`` setting: 0xFEFC / 0xFEFD or "1.3" / "1.2"."""
    names = {"1.3": DTLS_1_3, "1.2": DTLS_1_2}
    out: list[int] = []
    for v in versions:
        value = names.get(v) if isinstance(v, str) else v
        if value not in (DTLS_1_3, DTLS_1_2):
            raise ConfigurationError(f"unsupported DTLS version {v!r} (1.3 and 1.2 are)")
        if value not in out:
            out.append(value)
    if not out:
        raise ConfigurationError("dtls_versions must name at least one version")
    return tuple(out)


def initial_retransmit_timeout_for(round_trip_time: float | None) -> float:
    """The first retransmission timeout of every flight for a path whose round-trip
    time (seconds, e.g. measured by ICE) is ``round_trip_time``, or unknown (None)."""
    if round_trip_time is None:
        return UNKNOWN_RTT_RETRANSMIT_TIMEOUT
    if not round_trip_time >= 0:  # also NaN
        raise ValueError("round_trip_time must not be negative")
    return min(
        max(RTT_FACTOR * round_trip_time, MIN_INITIAL_RETRANSMIT_TIMEOUT),
        MAX_INITIAL_RETRANSMIT_TIMEOUT,
    )


class State(Enum):
    NEW = "new"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    CLOSED = "closed"
    FAILED = "failed"


_NEW = State.NEW
_HANDSHAKING = State.HANDSHAKING
_CONNECTED = State.CONNECTED
_CLOSED = State.CLOSED
_FAILED = State.FAILED
_DTLS_1_0 = int(ProtocolVersion.DTLS_1_0)
_DTLS_1_2 = int(ProtocolVersion.DTLS_1_2)
_HANDSHAKE = int(ContentType.HANDSHAKE)
_APPLICATION_DATA = int(ContentType.APPLICATION_DATA)
_ALERT = int(ContentType.ALERT)
_CHANGE_CIPHER_SPEC = int(ContentType.CHANGE_CIPHER_SPEC)
_CLIENT_HELLO = int(HandshakeType.CLIENT_HELLO)
_EPOCH_1 = 1 << 48
#: an unprotected record's header (records.plaintext_record, inlined in _seal)
_PLAIN_HEADER = RECORD_HEADER.pack
#: the largest record the application-data fast path takes (RFC 6347 4.1 bound)
_MAX_CIPHERTEXT = MAX_PLAINTEXT_LENGTH + 2048


class _Offer13(NamedTuple):
    """The configuration-wide tuples of a Config13 (see :func:`_offer13`)."""

    cipher_suites: tuple[int, ...]
    groups: tuple[int, ...]
    key_share_groups: tuple[int, ...]
    signature_schemes: tuple[int, ...]
    srtp_profiles: tuple[int, ...]
    legacy_cipher_suites: tuple[int, ...]
    legacy_groups: tuple[int, ...]
    legacy_signature_schemes: tuple[int, ...]


@functools.lru_cache(maxsize=64)
def _offer13(
    cipher_suites: tuple[int, ...],
    groups: tuple[int, ...],
    key_share_groups: tuple[int, ...],
    signature_schemes: tuple[int, ...],
    srtp_profiles: tuple[int, ...],
    offer: Offer,
) -> _Offer13:
    """What a DTLS 1.3 endpoint offers, normalized once per distinct configuration
    and shared by its connections (as :func:`make_offer` is for DTLS 1.2): a fleet
    of peers with the same options holds one copy, not one per connection."""
    key_shares = tuple(g for g in key_share_groups if g in groups)
    return _Offer13(
        cipher_suites,
        groups,
        key_shares or (groups[0],),
        tuple(
            s
            for s in DEFAULT_SIGNATURE_SCHEMES13
            if s in (*DEFAULT_SIGNATURE_SCHEMES13, *signature_schemes)
        ),
        srtp_profiles,
        offer.rsa_suite_ids + offer.ecdsa_suite_ids,
        offer.group_ids,
        offer.scheme_ids,
    )


#: the DTLS 1.2 extensions a 1.3 hello that also offers 1.2 carries
_LEGACY_EXTENSIONS = (
    Extension(ExtensionType.EC_POINT_FORMATS, b"\x01\x00"),
    Extension(ExtensionType.EXTENDED_MASTER_SECRET, b""),
    Extension(ExtensionType.RENEGOTIATION_INFO, b"\x00"),
)


@dataclass(slots=True)
class DtlsStats:
    """Counters for diagnostics; nothing here is secret."""

    datagrams_received: int = 0
    datagrams_sent: int = 0
    records_received: int = 0
    dropped_malformed: int = 0
    dropped_authentication: int = 0
    dropped_replay: int = 0
    dropped_epoch: int = 0
    dropped_fragments: int = 0
    #: unprotected (epoch 0) handshake records after the handshake: unauthenticated,
    #: so never acted on (no renegotiation refusal, no retransmission)
    dropped_unexpected_handshake: int = 0
    #: authenticated renegotiation attempts refused with no_renegotiation (one per record)
    renegotiations_refused: int = 0
    flights_sent: int = 0
    retransmissions: int = 0
    handshake_started: float | None = None
    handshake_completed: float | None = None
    extra: dict[str, int] = field(default_factory=dict)


def peer_authentication(
    remote_fingerprints: Sequence[Fingerprint] | None,
    verify_peer: Callable[[bytes], bool] | None,
    insecure_skip_fingerprint_check: bool,
    *,
    is_client: bool,
    require_client_certificate: bool = True,
) -> tuple[Fingerprint, ...] | None:
    """Check how an endpoint authenticates its peer; the fingerprints to enforce.

    Fails closed. DTLS with self-signed certificates authenticates nothing by itself:
    without the peer's ``a=fingerprint`` (RFC 8122) or a ``verify_peer`` callback, any
    certificate, a man-in-the-middle's included, completes the handshake. So a missing
    or empty ``remote_fingerprints`` is a :class:`ConfigurationError`, not a silent
    downgrade; running unauthenticated takes ``insecure_skip_fingerprint_check=True``,
    which cannot be combined with fingerprints or a callback (that would leave it
    unclear which one wins). A server that does not require a client certificate
    accepts anonymous clients whatever fingerprints it holds, so it needs the opt-in
    too. Returns ``None`` when no fingerprint is to be checked.
    """
    # a str is a sequence too (of characters): refuse it rather than match nothing
    fingerprints = () if remote_fingerprints is None else tuple(remote_fingerprints)
    if isinstance(remote_fingerprints, (str, bytes)) or not all(
        isinstance(fp, Fingerprint) for fp in fingerprints
    ):
        raise ConfigurationError(
            "remote_fingerprints must be a sequence of webrtc_secure.Fingerprint "
            "(Fingerprint.parse('sha-256 AB:CD:...'))"
        )
    if verify_peer is not None and not callable(verify_peer):
        raise ConfigurationError("verify_peer must be a callable taking the peer's DER")
    if insecure_skip_fingerprint_check:
        if fingerprints or verify_peer is not None:
            raise ConfigurationError(
                "insecure_skip_fingerprint_check=True contradicts remote_fingerprints / "
                "verify_peer: pass one or the other"
            )
        return None
    if not fingerprints and verify_peer is None:
        raise ConfigurationError(
            "DtlsConnection needs the peer's remote_fingerprints (its a=fingerprint) or a "
            "verify_peer callback; without them any certificate would be accepted. Pass "
            "insecure_skip_fingerprint_check=True to run unauthenticated on purpose"
        )
    if not is_client and not require_client_certificate:
        raise ConfigurationError(
            "require_client_certificate=False lets an anonymous client past the "
            "fingerprint check; it needs insecure_skip_fingerprint_check=True"
        )
    return fingerprints or None


class DtlsConnection:
    """One DTLS association (1.3 or 1.2, see ``dtls_versions``) with one peer, as
    client or server.

    The peer is authenticated by its certificate's fingerprint: ``remote_fingerprints``
    (from the remote ``a=fingerprint``), a ``verify_peer(der) -> bool`` callback, or
    both. Without either the constructor raises :class:`ConfigurationError`;
    ``insecure_skip_fingerprint_check=True`` accepts any certificate and logs a warning
    (see :func:`peer_authentication`).

    Retransmission follows RFC 6347 4.2.4.1: a flight that expects an answer is resent
    after ``initial_retransmit_timeout`` seconds, the timer doubling on every
    retransmission up to ``max_retransmit_timeout``, and starting again at the initial
    value with each new flight. By default the initial value comes from
    ``round_trip_time`` (the path's RTT, e.g. measured by ICE: 1.5 x RTT within
    [100 ms, 3 s]; 400 ms when it is unknown) and the doubling stops at 3 s; pass
    ``initial_retransmit_timeout=1.0, max_retransmit_timeout=60.0`` for RFC 6347's own
    schedule (see the constants above this class for the reasons).

    The handshake fails with :class:`HandshakeTimeout` when one flight has been resent
    ``max_retransmissions`` times without an answer, or when ``handshake_timeout``
    seconds (a wall-clock bound; ``None``, the default, sets none) have passed since it
    started; with :class:`FirstFlightTimeout` (a HandshakeTimeout) when the peer's first
    flight (a server: the ClientHello; a client: the answer to its hello) has not
    arrived ``first_flight_timeout`` seconds after ``connect()``. Without either bound a
    server that never hears a ClientHello waits until it is closed, like a listening
    socket.
    """

    # one per peer for its life: slots instead of a ~1.6 KB instance dict (40 keys). The
    # __dict__ slot stays empty unless something sets an attribute that is not a slot
    # (a test's stand-in method, webrtc_secure.trace's wrappers)
    __slots__ = (
        "__dict__",
        "_config13",
        "_deadline",
        "_dtls12_enabled",
        "_dtls13_enabled",
        "_early_records",
        "_events",
        "_first_flight_deadline",
        "_first_flight_timeout",
        "_flight",
        "_flight_retransmissions",
        "_flight_sent_at",
        "_handshake",
        "_handshake_timeout",
        "_initial_timeout",
        "_keylog_file",
        "_last_transmit",
        "_max_retransmissions",
        "_max_timeout",
        "_now",
        "_outbox",
        "_peer_address",
        "_read_protection",
        "_reassembler",
        "_replay",
        "_replay_window_size",
        "_retransmit_at",
        "_retry_cookies",
        "_timeout",
        "_trace",
        "_v13",
        "_write_epoch",
        "_write_protection",
        "_write_seq",
        "dtls_versions",
        "error",
        "is_client",
        "mtu",
        "state",
        "stats",
    )

    def __init__(
        self,
        is_client: bool,
        certificate: Certificate,
        *,
        srtp_profiles: Sequence[Profile] = DEFAULT_PROFILES,
        cipher_suites: Sequence[CipherSuite] = DEFAULT_SUITES,
        groups: Sequence[NamedGroup] = DEFAULT_GROUPS,
        signature_schemes: Sequence[SignatureScheme] = DEFAULT_SIGNATURE_SCHEMES,
        mtu: int = 1200,
        cookies: bool = True,
        cookie_factory: CookieFactory | None = None,
        peer_address: object = None,
        remote_fingerprints: Sequence[Fingerprint] | None = None,
        verify_peer: Callable[[bytes], bool] | None = None,
        insecure_skip_fingerprint_check: bool = False,
        require_extended_master_secret: bool = True,
        require_client_certificate: bool = True,
        round_trip_time: float | None = None,
        initial_retransmit_timeout: float | None = None,
        max_retransmit_timeout: float = DEFAULT_MAX_RETRANSMIT_TIMEOUT,
        handshake_timeout: float | None = None,
        first_flight_timeout: float | None = None,
        max_retransmissions: int = DEFAULT_MAX_RETRANSMISSIONS,
        replay_window: int = 64,
        random: Callable[[int], bytes] = os.urandom,
        keylog_file: str | None = None,
        first_record_sequence: int = 0,
        dtls_versions: Sequence[int | str] = DEFAULT_DTLS_VERSIONS,
        groups13: Sequence[int] = DEFAULT_GROUPS13,
        key_share_groups: Sequence[int] = DEFAULT_KEY_SHARE_GROUPS,
        cipher_suites13: Sequence[int] = DEFAULT_SUITES13,
        retry_cookies: RetryCookies | None = None,
        trace: Trace | None = None,
    ) -> None:
        if mtu < 150:
            raise ValueError("MTU below 150 octets cannot carry DTLS handshake records")
        if initial_retransmit_timeout is None:
            initial_retransmit_timeout = min(
                initial_retransmit_timeout_for(round_trip_time), max_retransmit_timeout
            )
        if not 0 < initial_retransmit_timeout <= max_retransmit_timeout:
            raise ValueError("need 0 < initial_retransmit_timeout <= max_retransmit_timeout")
        if max_retransmissions < 0:
            raise ValueError("max_retransmissions must not be negative")
        if handshake_timeout is not None and handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be positive (or None for no bound)")
        fingerprints = peer_authentication(
            remote_fingerprints,
            verify_peer,
            insecure_skip_fingerprint_check,
            is_client=is_client,
            require_client_certificate=require_client_certificate,
        )
        if insecure_skip_fingerprint_check:
            logger.warning(
                "DTLS %s with insecure_skip_fingerprint_check=True: the peer is NOT "
                "authenticated, any certificate (a man-in-the-middle's too) is accepted",
                "client" if is_client else "server",
            )
        if first_flight_timeout is not None and not first_flight_timeout > 0:
            raise ValueError("first_flight_timeout must be positive (or None for no bound)")
        self.is_client = is_client
        self.mtu = mtu
        #: the recorder of what this engine does (handshake paths only), or None
        self._trace = trace
        self.state = State.NEW
        self.stats = DtlsStats()
        self.error: WebrtcSecureError | None = None
        self._initial_timeout = initial_retransmit_timeout
        self._max_timeout = max_retransmit_timeout
        self._handshake_timeout = handshake_timeout
        self._first_flight_timeout = first_flight_timeout
        self._max_retransmissions = max_retransmissions
        self._replay_window_size = replay_window
        self._keylog_file = (
            keylog_file if keylog_file is not None else os.environ.get("SSLKEYLOGFILE")
        )
        config = HandshakeConfig(
            certificate,
            # normalized and encoded once per distinct configuration (cached)
            make_offer(
                tuple(cipher_suites),
                tuple(groups),
                tuple(signature_schemes),
                tuple(srtp_profiles),
            ),
            require_extended_master_secret,
            require_client_certificate,
            fingerprints,
            verify_peer,
            random,
        )
        self.dtls_versions = parse_dtls_versions(dtls_versions)
        self._dtls13_enabled = DTLS_1_3 in self.dtls_versions
        self._dtls12_enabled = DTLS_1_2 in self.dtls_versions
        self._handshake: Handshake
        if is_client:
            self._handshake = ClientHandshake(config, self)
        else:
            factory = cookie_factory or CookieFactory() if cookies else None
            self._handshake = ServerHandshake(config, self, factory, peer_address)
        self._handshake.dtls13_capable = self._dtls13_enabled
        #: the DTLS 1.3 engine, once 1.3 is offered (client) or chosen (server)
        self._v13: Dtls13 | None = None
        self._peer_address = peer_address
        self._retry_cookies = retry_cookies or (RetryCookies() if cookies else None)
        self._config13: Config13 | None = None
        if self._dtls13_enabled:
            parts = _offer13(
                tuple(int(s) for s in cipher_suites13),
                tuple(int(g) for g in groups13),
                tuple(int(g) for g in key_share_groups),
                tuple(int(x) for x in signature_schemes),
                tuple(int(p) for p in srtp_profiles),
                config.offer,
            )
            self._config13 = Config13(
                certificate,
                parts.cipher_suites,
                parts.groups,
                parts.key_share_groups,
                parts.signature_schemes,
                parts.srtp_profiles,
                fingerprints,
                verify_peer,
                require_client_certificate,
                random,
                offer_1_2=self._dtls12_enabled,
                legacy_cipher_suites=parts.legacy_cipher_suites,
                legacy_groups=parts.legacy_groups,
                legacy_signature_schemes=parts.legacy_signature_schemes,
                legacy_extensions=_LEGACY_EXTENSIONS,
                require_cookie=cookies,
            )
        self._reassembler = Reassembler()
        self._events: deque[Event] = deque()
        self._outbox: list[bytes] = []
        # record layer state
        self._write_epoch = 0
        # a listener that answered a HelloVerifyRequest statelessly (echoing the first
        # hello's record number) starts here, after the cookied hello's number, so that
        # the client's replay window does not drop our ServerHello (RFC 6347 4.2.1)
        self._write_seq = [first_record_sequence, 0]
        self._write_protection: list[RecordProtection | None] = [None, None]
        self._read_protection: RecordProtection | None = None
        self._replay = ReplayWindow(replay_window)
        self._early_records: list[RecordTuple] = []
        # retransmission state
        self._flight: list[FlightItem] | None = None
        self._retransmit_at: float | None = None
        self._timeout = initial_retransmit_timeout
        self._flight_retransmissions = 0  # timer-driven resends of the current flight
        self._flight_sent_at = 0.0
        self._last_transmit = -1e9
        self._deadline: float | None = None
        #: connect() + first_flight_timeout until the peer's first flight is answered
        self._first_flight_deadline: float | None = None
        self._now = 0.0

    # --- public face -----------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self.state is _CONNECTED

    @property
    def trace(self) -> Trace | None:
        """The :class:`~webrtc_secure.trace.Trace` this engine records into, if any."""
        return self._trace

    @property
    def initial_retransmit_timeout(self) -> float:
        """The timeout every flight starts with (seconds)."""
        return self._initial_timeout

    @property
    def max_retransmit_timeout(self) -> float:
        """Where the doubling of the retransmission timeout stops (seconds)."""
        return self._max_timeout

    @property
    def peer_certificate(self) -> bytes | None:
        """DER of the peer's certificate once the handshake has seen it."""
        if self._v13 is not None:
            return self._v13.peer_certificate
        return self._handshake.peer_certificate

    @property
    def cipher_suite(self) -> CipherSuite | CipherSuite13 | None:
        if self._v13 is not None:
            suite13 = self._v13.suite
            return suite13.suite if suite13 is not None else None
        suite = self._handshake.suite
        return suite.suite if suite is not None else None

    @property
    def srtp_profile(self) -> Profile | None:
        if self._v13 is not None:
            return self._v13.srtp_profile
        return self._handshake.srtp_profile

    @property
    def version(self) -> int | None:
        """The negotiated protocol version (0xFEFC DTLS 1.3, 0xFEFD DTLS 1.2), or None
        before the handshake has settled it."""
        if self._v13 is not None:
            return DTLS_1_3 if self._v13.suite is not None else None
        return DTLS_1_2 if self._handshake.suite is not None else None

    @property
    def version_name(self) -> str | None:
        """ "DTLS 1.3" / "DTLS 1.2" (for stats), or None."""
        version = self.version
        return _VERSION_NAMES[version] if version is not None else None

    @property
    def group(self) -> str | None:
        """The key exchange group's name (e.g. "X25519MLKEM768"), once negotiated."""
        if self._v13 is not None:
            return self._v13.group.name if self._v13.group is not None else None
        group = self._handshake.group
        return group.name if group is not None else None

    def key_update(self, request_peer_update: bool = True) -> bool:
        """DTLS 1.3: update our sending keys (RFC 9147 8), asking the peer to update its
        own too when ``request_peer_update``. False under DTLS 1.2, before the
        handshake, or while one of ours is still unacknowledged."""
        if self._v13 is None or self.state is not _CONNECTED:
            return False
        started = self._v13.key_update(request_peer_update)
        return started

    @property
    def extended_master_secret(self) -> bool:
        return self._handshake.extended_master_secret

    def export_keying_material(
        self, label: str, length: int, context: bytes | None = None
    ) -> bytes:
        """RFC 5705 exporter (e.g. ``EXTRACTOR-dtls_srtp``); only after the handshake."""
        if self._v13 is not None:
            if self.state is not _CONNECTED:
                raise DtlsError("keying material can only be exported after the handshake")
            return self._v13.export_keying_material(label, length, context)
        if not self._handshake.done:
            raise DtlsError("keying material can only be exported after the handshake")
        return self._handshake.export_keying_material(label, length, context)

    def connect(self, now: float) -> None:
        """Start the handshake: the client sends its hello, the server arms its timeout."""
        if self.state != State.NEW:
            return
        self._start(now)
        if self._first_flight_timeout is not None:
            self._first_flight_deadline = now + self._first_flight_timeout
        if isinstance(self._handshake, ClientHandshake):
            if self._config13 is not None:
                # our hello offers 1.3 (and 1.2 when enabled): the 1.3 engine sends it
                # and hands over to the 1.2 path if the server answers 1.2
                self._v13 = self._new_engine13(self._reassembler, self._write_seq[0])
                self._v13.start()
            else:
                self._handshake.start()

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        """Feed one datagram received from the peer."""
        del addr  # the address binding happens at the transport or in cookies
        content = self.receive_application_data(data, now)
        if content is not None:
            self._events.append(tuple.__new__(ApplicationData, (content,)))

    def receive_application_data(self, data: bytes, now: float) -> bytes | None:
        """:meth:`receive_datagram`, for the owner that drains the connection after
        every datagram (DtlsTransport): when the datagram is one application_data record
        that the connected fast path opens and the connection has no event and no
        datagram waiting, its content is returned instead of queued as an
        ApplicationData event. Nothing else changed then: no datagram, no event and no
        timer, so the owner need not ask (``datagrams_to_send``, ``next_event``,
        ``get_timer``). Otherwise None: the datagram was processed as by
        :meth:`receive_datagram` (its data, if any, is an event). The checks (replay
        window, AEAD, epoch, usage limits) and the counters are the same either way."""
        self._now = now
        state = self.state
        if state is _CLOSED or state is _FAILED:
            return None
        stats = self.stats
        stats.datagrams_received += 1
        engine = self._v13
        if engine is not None:
            if state is _CONNECTED:
                if engine.state == _ENGINE_CONNECTED:
                    # the engine's connected fast path (Dtls13.receive_datagram), minus
                    # the call: the next in-order application data record of the newest
                    # epoch; whatever read_application_data declines (None, nothing
                    # changed) goes to the engine below, which tries the same and then
                    # its general path (the rare records that take it pay one more
                    # mask, and an ACK or KeyUpdate one more AEAD open)
                    receiver = engine._rx.get(engine._rx_highest)
                    if receiver is not None:
                        engine.now = now
                        try:
                            content = receiver.read_application_data(data)
                        except AuthenticationFailed:
                            stats.records_received += 1
                            stats.dropped_authentication += 1
                            try:
                                engine._check_integrity_limit(receiver)
                            except DtlsError as exc:
                                self._engine_stopped(exc)
                            return None
                        if content is not None:
                            stats.records_received += 1
                            if self._events or self._outbox or engine.outbox:
                                # behind what waits: in order, as an event
                                self._events.append(tuple.__new__(ApplicationData, (content,)))
                                return None
                            return content
                # straight to the engine: what _receive13 adds (starting a server,
                # the 1.2 fallback) cannot happen any more
                try:
                    engine.receive_datagram(data, now)
                except (PeerClosed, DtlsError) as exc:
                    self._engine_stopped(exc)
                return None
            self._receive13(data, now)
            return None
        if state is _CONNECTED:
            events = self._events
            quiet = not events and not self._outbox
            if self._read_application_data(data):
                # taken by the DTLS 1.2 fast path: its content, when it queued one
                # and nothing was waiting before it, is handed back instead
                if quiet and events:
                    event = events.popleft()  # the one it queued: ApplicationData
                    if type(event) is ApplicationData:
                        return event.data
                    events.appendleft(event)
                return None
        if self._trace is not None:
            self._trace.dtls_received(now, data)
        records, clean = split_records(data)
        if not clean:
            stats.dropped_malformed += 1
        peer_retransmitted = False
        try:
            while True:
                for ctype, version, epoch_seq, fragment in records:
                    stats.records_received += 1
                    if ctype == _HANDSHAKE and epoch_seq < _EPOCH_1:
                        # an unprotected handshake record: all _handle_record would do
                        # is pass it on
                        if self._handle_handshake_payload(fragment, 0):
                            peer_retransmitted = True
                    elif self._handle_record(ctype, version, epoch_seq, fragment):
                        peer_retransmitted = True
                    state = self.state
                    if state is _CLOSED or state is _FAILED or self._v13 is not None:
                        return None
                # records of the next epoch that were waiting for its keys follow the
                # rest of this datagram once the keys exist
                if not self._early_records or self._read_protection is None:
                    break
                records, self._early_records = self._early_records, []
        except DtlsError as exc:
            # handshake failures, and e.g. sequence exhaustion while answering
            self._fail(exc)
            return None
        if peer_retransmitted:
            self._on_peer_retransmission(now)
        return None

    def _read_application_data(self, data: bytes) -> bool:
        """The connected fast path: a datagram that is exactly one epoch-1 DTLS 1.2
        application_data record. Returns False (nothing done) for anything else,
        which the general path handles; for these datagrams both paths do the same
        checks, in the same order, with the same counters."""
        n = len(data)
        if n <= RECORD_HEADER_LENGTH or data[0] != _APPLICATION_DATA:
            return False
        _ctype, version, epoch_seq, length = unpack_header(data)
        protection = self._read_protection
        if (
            length != n - RECORD_HEADER_LENGTH
            or version != _DTLS_1_2
            or epoch_seq >> 48 != 1
            or length > _MAX_CIPHERTEXT
            or protection is None
        ):
            return False
        self.stats.records_received += 1
        plaintext = self._open(
            protection, _APPLICATION_DATA, _DTLS_1_2, epoch_seq, data[RECORD_HEADER_LENGTH:]
        )
        if plaintext is not None:
            # (tuple.__new__: the event without its NamedTuple's Python-level __new__)
            self._events.append(tuple.__new__(ApplicationData, (plaintext,)))
        return True

    def _open(
        self,
        protection: RecordProtection,
        ctype: int,
        version: int,
        epoch_seq: int,
        fragment: bytes,
    ) -> bytes | None:
        """Replay check, authenticated decryption and replay-window commit of one
        protected record; None (counted) when it is replayed, forged or malformed."""
        seq = epoch_seq & MAX_SEQUENCE
        replay = self._replay
        if not replay.is_fresh(seq):
            self.stats.dropped_replay += 1
            return None
        try:
            plaintext = protection.open(ctype, version, epoch_seq, fragment)
        except AuthenticationFailed:
            self.stats.dropped_authentication += 1
            return None
        except MalformedPacket:
            self.stats.dropped_malformed += 1
            return None
        replay.commit(seq)
        return plaintext

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Datagrams to put on the wire now (each at most ``mtu`` octets)."""
        del now
        engine = self._v13
        if engine is not None and engine.outbox:
            # DTLS 1.3: the engine's records (after anything of ours, e.g. an alert)
            if self._outbox:
                out = self._outbox + engine.outbox
                self._outbox = []
            else:
                out = engine.outbox
            engine.outbox = []
        else:
            out, self._outbox = self._outbox, []
        self.stats.datagrams_sent += len(out)
        return out

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or None."""
        engine = self._v13
        state = self.state
        if engine is not None:
            if state is _CONNECTED:
                # _get_timer13 and Dtls13.get_timer, inline and without their lists
                # (asked after every input): connected, the engine's two timers alone
                # (a KeyUpdate or our final flight waiting for its ACK; an ACK due)
                if engine.failed:
                    return None
                rtx = engine._rtx_at
                ack = engine._ack_at
                if rtx is None:
                    return ack
                return rtx if ack is None or rtx <= ack else ack
            return self._get_timer13()
        if state is not _HANDSHAKING:
            return None
        candidates = [
            t
            for t in (self._retransmit_at, self._deadline, self._first_flight_deadline)
            if t is not None
        ]
        return min(candidates) if candidates else None

    def handle_timer(self, now: float) -> None:
        """Retransmit the current flight or fail with HandshakeTimeout."""
        self._now = now
        if self._v13 is not None and self.state is _CONNECTED:
            self._run13(self._v13.handle_timer, now)
            return
        if self.state != State.HANDSHAKING:
            return
        if self._deadline is not None and now >= self._deadline:
            self._fail(
                HandshakeTimeout(
                    f"handshake did not complete within {self._handshake_timeout:g} s"
                ),
                send_alert=False,
            )
            return
        if self._first_flight_deadline is not None and now >= self._first_flight_deadline:
            self._fail(self._first_flight_error(), send_alert=False)
            return
        if self._v13 is not None:
            self._run13(self._v13.handle_timer, now)
            return
        if self._retransmit_at is not None and now >= self._retransmit_at:
            if self._flight_retransmissions >= self._max_retransmissions:
                self._fail(
                    HandshakeTimeout(
                        f"flight unanswered after {self._flight_retransmissions} "
                        f"retransmissions ({now - self._flight_sent_at:.0f} s)"
                    ),
                    send_alert=False,
                )
                return
            if self._trace is not None:
                self._trace_timer(now)
            self._flight_retransmissions += 1
            self._timeout = min(self._timeout * 2, self._max_timeout)
            self._retransmit_at = now + self._timeout
            self._retransmit_flight(now)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def send(self, data: bytes) -> None:
        """Send one application_data record (datagram semantics: one record, one datagram)."""
        if self.state != State.CONNECTED:
            raise ConnectionClosedError("DTLS connection is not established")
        if len(data) > MAX_PLAINTEXT_LENGTH:
            raise ValueError(f"application data of {len(data)} octets exceeds 2^14")
        engine = self._v13
        if engine is not None:
            try:
                # the engine's own send_application_data, minus its call: while the
                # epoch is an application one and below the KeyUpdate threshold that
                # method would do exactly this (the call is ~600 of the ~25k
                # instructions of a 1200-octet record's send, callgrind); otherwise
                # it decides (a KeyUpdate first, or a refusal at the usage limit)
                tx = engine._tx
                if (
                    tx is not None
                    and tx.epoch >= 3
                    and tx.next_sequence < engine.key_update_threshold
                ):
                    self._outbox.append(tx.protect_application_data(data))
                else:
                    self._outbox.append(engine.send_application_data(data))
            except DtlsError as failure:
                self._finish(State.FAILED, failure, by_peer=False)
                raise
            return
        seq = self._write_seq[1]
        if seq > MAX_SEQUENCE:
            # RFC 6347 4.1: a sequence number must never wrap; end the association
            exc = ConnectionClosedError("record sequence numbers exhausted for this epoch")
            self._finish(State.FAILED, exc, by_peer=False)
            raise exc
        self._write_seq[1] = seq + 1
        protection = self._write_protection[1]
        assert protection is not None
        self._outbox.append(protection.seal(_APPLICATION_DATA, _DTLS_1_2, _EPOCH_1 | seq, data))

    def send_many(self, datagrams: Sequence[bytes]) -> int:
        """:meth:`send` for each of ``datagrams``, in order (SCTP's packets of one
        flush: one record each); returns how many it refused. Under DTLS 1.3, while the
        whole batch stays below the KeyUpdate threshold, the records are protected
        together, their record number masks from one AES-ECB call
        (:meth:`SendEpoch.protect_application_data_many`, the same octets); otherwise,
        and under DTLS 1.2, one :meth:`send` each.

        A refusal (a ``WebrtcSecureError``: the connection is not established, or a
        key reached its usage limit, which ends the connection as :meth:`send` does)
        ends the batch: record by record, the records before it are sent; a batch
        protected whole is refused whole. An oversized record raises ``ValueError``
        as in :meth:`send`."""
        engine = self._v13
        if engine is not None and len(datagrams) > 1 and self.state is _CONNECTED:
            tx = engine._tx
            if (
                tx is not None
                and tx.epoch >= 3
                and tx.next_sequence + len(datagrams) <= engine.key_update_threshold
                and max(map(len, datagrams)) <= MAX_PLAINTEXT_LENGTH
            ):
                try:
                    self._outbox += tx.protect_application_data_many(datagrams)
                except DtlsError as failure:
                    self._finish(State.FAILED, failure, by_peer=False)
                    return len(datagrams)
                return 0
        for sent, data in enumerate(datagrams):
            try:
                self.send(data)
            except WebrtcSecureError:
                return len(datagrams) - sent
        return 0

    def seal_many(self, datagrams: Sequence[bytes]) -> list[bytes] | None:
        """:meth:`send_many` for the owner that puts the records on the wire itself
        (DtlsTransport): when the connection is connected, has no datagram waiting (so
        these cannot overtake one) and the batch needs nothing of the engine (under
        DTLS 1.3 it stays below the KeyUpdate threshold; under 1.2 the sequence
        numbers do not run out), the records, in order, counted as sent as
        :meth:`datagrams_to_send` counts them; nothing was queued, no event and no
        timer changed. The octets are those :meth:`send_many` queues for the same
        batch. Otherwise None, with nothing changed: the owner calls
        :meth:`send_many`, which decides (a KeyUpdate first, a refusal). A key that
        refuses at its usage limit ends the connection as :meth:`send_many` does
        (then None: :meth:`send_many` refuses the whole batch)."""
        if self.state is not _CONNECTED or self._outbox:
            return None
        count = len(datagrams)
        # (one packet per flush is the round trip's case: its length alone, without
        # max() and its keyword parsing)
        if count == 1:
            if len(datagrams[0]) > MAX_PLAINTEXT_LENGTH:
                return None  # send_many raises the ValueError
        elif not count or max(map(len, datagrams)) > MAX_PLAINTEXT_LENGTH:
            return None
        engine = self._v13
        if engine is not None:
            tx = engine._tx
            if (
                engine.outbox
                or tx is None
                or tx.epoch < 3
                or tx.next_sequence + count > engine.key_update_threshold
            ):
                return None
            try:
                if count > 1:
                    records = tx.protect_application_data_many(datagrams)
                else:
                    records = [tx.protect_application_data(datagrams[0])]
            except DtlsError as failure:
                self._finish(State.FAILED, failure, by_peer=False)
                return None
        else:
            seq = self._write_seq[1]
            end = seq + len(datagrams)
            protection = self._write_protection[1]
            if end - 1 > MAX_SEQUENCE or protection is None:
                return None
            self._write_seq[1] = end
            seal = protection.seal
            records = [
                seal(_APPLICATION_DATA, _DTLS_1_2, _EPOCH_1 | number, data)
                for number, data in zip(range(seq, end), datagrams, strict=True)
            ]
        self.stats.datagrams_sent += count
        return records

    def close(self) -> None:
        """Send close_notify and close; idempotent."""
        if self.state in (State.CLOSED, State.FAILED):
            return
        if self.state != State.NEW:
            self._send_alert(AlertLevel.WARNING, AlertDescription.CLOSE_NOTIFY)
        self._finish(State.CLOSED, None, by_peer=False)

    # --- HandshakeIO (called by the handshake state machines) ---------------------------

    def send_flight(self, items: list[FlightItem], *, expect_reply: bool) -> None:
        self._flight = items
        self.stats.flights_sent += 1
        if not self.is_client or self.stats.flights_sent > 1:
            # every flight but the client's first answers one of the peer's
            self._first_flight_deadline = None
        self._timeout = self._initial_timeout
        self._flight_retransmissions = 0
        self._flight_sent_at = self._now
        self._retransmit_at = self._now + self._timeout if expect_reply else None
        self._transmit_flight(self._now, retransmission=False)

    def send_stateless(self, items: list[FlightItem]) -> None:
        self._first_flight_deadline = None  # a HelloVerifyRequest answers a ClientHello
        datagrams = pack_flight(items, self.mtu, self._seal, self._overhead)
        if self._trace is not None:
            self._trace.dtls_sent(self._now, datagrams)
        self._outbox.extend(datagrams)

    def install_keys(self, read: RecordProtection, write: RecordProtection) -> None:
        self._read_protection = read
        self._write_protection[1] = write

    def handshake_complete(self) -> None:
        hs = self._handshake
        self.state = _CONNECTED
        self._deadline = self._first_flight_deadline = None
        if self.is_client:
            self._flight = None  # nothing of ours is left for the server to ask again
        self._retransmit_at = None
        self.stats.handshake_completed = self._now
        suite = self.cipher_suite
        assert suite is not None and hs.peer_certificate is not None
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "DTLS handshake complete as %s: %s, SRTP %s",
                "client" if self.is_client else "server",
                suite.name,
                hs.srtp_profile.name if hs.srtp_profile else "none",
            )
        if self._trace is not None:
            self._trace_complete()
        self._events.append(HandshakeComplete(suite, hs.srtp_profile, hs.peer_certificate))

    def log_master_secret(self, client_random: bytes, master: bytes) -> None:
        if not self._keylog_file:
            return
        try:
            with open(self._keylog_file, "a", encoding="ascii") as f:
                f.write(f"CLIENT_RANDOM {client_random.hex()} {master.hex()}\n")
        except OSError as exc:
            logger.warning("cannot write SSLKEYLOGFILE: %s", exc)

    def start_dtls13(self, message: Message) -> bool:
        """Server: the first ClientHello decides the version (RFC 8446 4.2.1). True when
        the 1.3 engine took the hello over; refuses a hello without 1.3 when 1.2 is
        not enabled; otherwise the 1.2 handshake goes on (its random then carries the
        downgrade sentinel)."""
        if self._config13 is None:
            return False
        hello = parse_client_hello(message.body)
        if not offers_dtls13(hello.extensions):
            if not self._dtls12_enabled:
                raise HandshakeFailure(
                    "client does not offer DTLS 1.3, the only version enabled",
                    AlertDescription.PROTOCOL_VERSION,
                )
            return False
        self._v13 = self._new_engine13(self._reassembler, self._write_seq[0])
        self._v13.now = self._now
        self._v13.handle(message)
        return True

    # --- the DTLS 1.3 engine's side (Io13) ---------------------------------------------------

    def _new_engine13(self, reassembler: Reassembler, plaintext_sequence: int) -> Dtls13:
        assert self._config13 is not None
        engine = Dtls13(
            self._config13,
            self,
            is_client=self.is_client,
            events=self._events,
            stats=self.stats,
            mtu=self.mtu,
            initial_timeout=self._initial_timeout,
            max_timeout=self._max_timeout,
            max_retransmissions=self._max_retransmissions,
            replay_window=self._replay_window_size,
            reassembler=reassembler,
            first_plaintext_sequence=plaintext_sequence,
            retry_cookies=self._retry_cookies,
            peer_address=self._peer_address,
        )
        engine.now = self._now
        if self._trace is not None:
            self._trace_engine13(engine)
        return engine

    def handshake_complete13(self) -> None:
        engine = self._v13
        assert engine is not None and engine.suite is not None
        assert engine.peer_certificate is not None
        self.state = _CONNECTED
        self._deadline = self._first_flight_deadline = None
        self.stats.handshake_completed = self._now
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "DTLS 1.3 handshake complete as %s: %s, %s, SRTP %s",
                "client" if self.is_client else "server",
                engine.suite.suite.name,
                engine.group.name if engine.group is not None else "?",
                engine.srtp_profile.name if engine.srtp_profile else "none",
            )
        if self._trace is not None:
            self._trace_complete()
        self._events.append(
            HandshakeComplete(engine.suite.suite, engine.srtp_profile, engine.peer_certificate)
        )

    def key_log13(self, lines: list[str]) -> None:
        if not self._keylog_file:
            return
        try:
            with open(self._keylog_file, "a", encoding="ascii") as f:
                f.write("".join(line + "\n" for line in lines))
        except OSError as exc:
            logger.warning("cannot write SSLKEYLOGFILE: %s", exc)

    def flight_sent13(self) -> None:
        if not self.is_client or self.stats.flights_sent > 1:
            self._first_flight_deadline = None

    def _get_timer13(self) -> float | None:
        state = self.state
        if state is not _HANDSHAKING and state is not _CONNECTED:
            return None
        assert self._v13 is not None
        candidates = [self._v13.get_timer()]
        if state is _HANDSHAKING:
            candidates += [self._deadline, self._first_flight_deadline]
        present = [t for t in candidates if t is not None]
        return min(present) if present else None

    def _run13(self, step: Callable[[float], None], now: float) -> None:
        """One call into the 1.3 engine, its outcomes mapped onto the connection."""
        try:
            step(now)
        except (PeerClosed, DtlsError) as exc:
            self._engine_stopped(exc)

    def _engine_stopped(self, exc: PeerClosed | DtlsError) -> None:
        if isinstance(exc, PeerClosed):
            logger.info("peer sent close_notify")
            if self.state is _CONNECTED:
                self._send_alert(AlertLevel.WARNING, AlertDescription.CLOSE_NOTIFY)
            self._finish(State.CLOSED, None, by_peer=True)
        elif isinstance(exc, AlertReceived):
            # the owner gets the typed error and reports it (a WARNING printed it twice)
            logger.info("peer sent %s", exc)
            self._finish(State.FAILED, exc, by_peer=True)
        elif isinstance(exc, HandshakeTimeout):
            self._fail(exc, send_alert=False)
        else:
            self._fail(exc)

    def _receive13(self, data: bytes, now: float) -> None:
        engine = self._v13
        assert engine is not None
        if self.state is _NEW:
            if self.is_client:
                return
            self._start(now)
        try:
            engine.receive_datagram(data, now)
        except Fallback as fallback:
            self._fall_back_to_1_2(fallback, now)
        except (PeerClosed, DtlsError) as exc:
            self._engine_stopped(exc)

    def _fall_back_to_1_2(self, fallback: Fallback, now: float) -> None:
        """Client: the server answered our 1.3 + 1.2 hello with DTLS 1.2. The 1.2
        handshake continues from the hello the engine sent (same random, same
        octets in the transcript) with the engine's reassembler and record numbers."""
        engine = self._v13
        assert engine is not None
        self._v13 = None
        hs = self._handshake
        assert isinstance(hs, ClientHandshake)
        body = engine.client_hello_body()
        # the hello's tail after its (empty) session id and cookie, for a HelloVerify
        # retry of the same offer; the extensions a 1.2 ServerHello may answer
        # every group the hello listed that DTLS 1.2 can do is acceptable: the hello
        # offered it (supported_groups is shared by both versions)
        listed = (*hs.config.offer.group_ids, *engine.config.groups)
        offer = hs.config.offer._replace(
            group_ids=tuple(dict.fromkeys(g for g in listed if g in _GROUPS12)),
            client_hello_tail=body[36:],
            client_extensions=frozenset(hs.config.offer.client_extensions)
            | frozenset(engine.client_hello_extension_types()),
        )
        hs.config = hs.config._replace(offer=offer)
        hs.client_random = engine.client_random
        hs.transcript = bytearray()
        hs.send_seq = 0
        item = hs.own_body(_CLIENT_HELLO, body)
        hs.state = CLIENT_WAIT_SERVER_HELLO
        self._write_seq[0] = engine.plaintext_sequence
        self._reassembler = engine.reassembler
        self._flight = [item]
        self._flight_retransmissions = engine.retransmissions
        self._timeout = engine.timeout
        self._flight_sent_at = now
        self._retransmit_at = engine.retransmit_at
        logger.info("DTLS server answered 1.2: continuing the handshake as DTLS 1.2")
        try:
            hs.handle(fallback.message)
            reassembler = self._reassembler
            while self.state is _HANDSHAKING and (message := reassembler.pop_ready()):
                hs.handle(message)
            for record in fallback.remaining:
                if self.state is not _HANDSHAKING:
                    break
                self._handle_record(
                    record.content_type,
                    record.version,
                    (record.epoch << 48) | record.sequence_number,
                    record.fragment,
                )
        except DtlsError as exc:
            self._fail(exc)

    # --- internals ----------------------------------------------------------------------

    def _first_flight_error(self) -> FirstFlightTimeout:
        waited = f"{self._first_flight_timeout:g} s"
        if self.is_client:
            return FirstFlightTimeout(
                f"the DTLS server did not answer our ClientHello within {waited} of "
                f"connect() ({self.stats.flights_sent} flight(s) sent)"
            )
        return FirstFlightTimeout(
            f"no ClientHello within {waited} of connect(): we are the DTLS server and "
            "the peer never started its handshake (did it call connect()?)"
        )

    def _start(self, now: float) -> None:
        self.state = _HANDSHAKING
        self._now = now
        self.stats.handshake_started = now
        if self._handshake_timeout is not None:
            self._deadline = now + self._handshake_timeout

    def _overhead(self, epoch: int) -> int:
        protection = self._write_protection[epoch]
        return protection.overhead if protection is not None else 0

    def _seal(self, content_type: int, epoch: int, payload: bytes) -> bytes:
        seq = self._write_seq[epoch]
        if seq > MAX_SEQUENCE:
            raise ConnectionClosedError("record sequence numbers exhausted for this epoch")
        self._write_seq[epoch] = seq + 1
        protection = self._write_protection[epoch]
        if protection is not None:
            return protection.seal(content_type, _DTLS_1_2, (epoch << 48) | seq, payload)
        # OpenSSL and browsers send hellos with 0xfeff; from the ServerHello on, 0xfefd
        version = (
            _DTLS_1_0
            if epoch == 0 and self.is_client and not self._handshake.server_random
            else _DTLS_1_2
        )
        return _PLAIN_HEADER(content_type, version, (epoch << 48) | seq, len(payload)) + payload

    def _transmit_flight(self, now: float, *, retransmission: bool = True) -> None:
        if self._flight is None:
            return
        self._last_transmit = now
        for item in self._flight:
            if item.epoch > self._write_epoch:
                self._write_epoch = item.epoch
        datagrams = pack_flight(self._flight, self.mtu, self._seal, self._overhead)
        if self._trace is not None:
            self._trace_flight(now, datagrams, retransmission)
        self._outbox.extend(datagrams)

    def _retransmit_flight(self, now: float) -> None:
        """Send the current flight again, twice when it carries our Finished.

        Only called where a loss is evident: our timer expired, or (for the server's
        final flight) the peer resent its Finished flight. The Finished flights (the
        client's Certificate..Finished, the server's ChangeCipherSpec + Finished) are
        the last ones: once the server is connected, nothing but the client's
        retransmissions makes it send its Finished again, and the client gives up after
        12 of them. With 1-datagram flights each such round gets through with
        (1 - loss)^2, 25 % at 50 % loss each way, so 2-3 % of those handshakes failed
        there whatever the timer, the server connected and the client not. A second
        copy of each of the two lifts a round to 56 %. The first transmission stays
        single, so a clean path never sees a copy (README, "Under loss": datagrams per
        handshake, old schedule and new).
        """
        self.stats.retransmissions += 1
        self._transmit_flight(now)
        if self._write_epoch == 1:  # the flight carries our ChangeCipherSpec + Finished
            self._transmit_flight(now)

    def _on_peer_retransmission(self, now: float) -> None:
        """The peer resent a flight we already processed: our answer was lost."""
        if self._flight is None or now - self._last_transmit < self._initial_timeout / 4:
            return
        if self.state is _CONNECTED:
            # the server's final flight: the peer's resent Finished shows it was lost
            self._retransmit_flight(now)
        else:
            # while handshaking the peer's own timer drives this exchange, and its
            # resent flight may be a spurious one (reordering): a single copy
            self.stats.retransmissions += 1
            self._transmit_flight(now)

    def _handle_record(self, ctype: int, version: int, epoch_seq: int, fragment: bytes) -> bool:
        """Process one record; returns True when it carried an old handshake message."""
        epoch = epoch_seq >> 48
        if epoch == 0:
            plaintext = fragment
            if self.state is _CONNECTED and ctype != _HANDSHAKE:
                # unauthenticated alerts or data after the handshake are forgeries
                self.stats.dropped_epoch += 1
                return False
        elif epoch == 1:
            protection = self._read_protection
            if protection is None:
                if len(self._early_records) < MAX_EARLY_RECORDS:
                    self._early_records.append((ctype, version, epoch_seq, fragment))
                else:
                    self.stats.dropped_epoch += 1
                return False
            opened = self._open(protection, ctype, version, epoch_seq, fragment)
            if opened is None:
                return False
            plaintext = opened
            if self._trace is not None:
                self._trace.dtls_opened(ctype, epoch_seq, plaintext)
        else:
            self.stats.dropped_epoch += 1
            return False

        if ctype == _HANDSHAKE:
            return self._handle_handshake_payload(plaintext, epoch)
        if ctype == _APPLICATION_DATA:
            if epoch == 1 and self.state is _CONNECTED:
                self._events.append(tuple.__new__(ApplicationData, (plaintext,)))
            else:
                self.stats.dropped_epoch += 1
        elif ctype == _ALERT:
            self._handle_alert(plaintext)
        elif ctype == _CHANGE_CIPHER_SPEC and plaintext != b"\x01":
            raise HandshakeFailure("malformed ChangeCipherSpec", AlertDescription.DECODE_ERROR)
        return False

    def _handle_handshake_payload(self, payload: bytes, epoch: int) -> bool:
        state = self.state
        if state is _CONNECTED and epoch == 0:
            # Anyone can write an epoch-0 record. Once connected, the peer's genuine
            # handshake traffic is a retransmitted final flight, whose epoch-1 Finished
            # (authenticated) triggers our retransmission by itself; acting on the
            # unprotected part would let a forger make us send (one alert per fragment
            # once made a 65 KB datagram send 5,454 of them).
            self.stats.dropped_unexpected_handshake += 1
            return False
        reassembler = self._reassembler
        if len(payload) >= HANDSHAKE_HEADER_LENGTH and state is _HANDSHAKING:
            type_length, seq, offset_hi, length_lo = unpack_fragment_header(payload)
            length = type_length & 0xFFFFFF
            if (
                seq == reassembler.next_seq
                and offset_hi == length >> 16
                and length_lo == length & 0xFFFF
                and length == len(payload) - HANDSHAKE_HEADER_LENGTH
            ):
                # The usual record: the next message, whole (offset 0, the fragment is
                # the message), and the payload is already its transcript form. This is
                # what the loop below does with it, without the loop.
                message = reassembler.accept_in_order(
                    type_length >> 24,
                    length,
                    seq,
                    0,
                    payload[HANDSHAKE_HEADER_LENGTH:],
                    epoch,
                    payload,
                )
                if message is not None:
                    self._handshake.handle(message)
                    return False
        try:
            fragments = split_handshake_fragments(payload)
        except MalformedPacket:
            self.stats.dropped_malformed += 1
            return False
        old = False
        refused = False
        hs = self._handshake
        for msg_type, length, message_seq, fragment_offset, body in fragments:
            if self.state is _NEW:
                if self.is_client:
                    return False  # a client that has not started ignores handshake input
                self._start(self._now)
            if (
                msg_type == _CLIENT_HELLO
                and not self.is_client
                and message_seq != reassembler.next_seq
                and isinstance(hs, ServerHandshake)
                and hs.waiting_for_hello
            ):
                # Until a hello is accepted the server keeps no sequence state: the hello
                # after a HelloVerifyRequest carries the next seq, and a retransmitted
                # cookie-less one (our HelloVerifyRequest was lost) the old one.
                reassembler.reset(message_seq)
            if message_seq < reassembler.next_seq:
                old = True
                continue
            if self.state is _CONNECTED:
                # (only epoch 1 gets here: authenticated.) Renegotiation is not
                # supported (RFC 5746 would allow refusing it): one warning alert per
                # record, however many fragments it carries, so that no record makes
                # us send more than one datagram
                if not refused:
                    refused = True
                    self.stats.renegotiations_refused += 1
                    self._send_alert(AlertLevel.WARNING, AlertDescription.NO_RENEGOTIATION)
                continue
            message = reassembler.accept_in_order(
                msg_type, length, message_seq, fragment_offset, body, epoch
            )
            if message is not None:
                hs.handle(message)
                continue
            if not reassembler.accept(msg_type, length, message_seq, fragment_offset, body, epoch):
                self.stats.dropped_fragments += 1
                continue
            while (message := reassembler.pop_ready()) is not None:
                hs.handle(message)
                if self.state is not _HANDSHAKING:
                    break
        return old

    def _handle_alert(self, payload: bytes) -> None:
        try:
            alert = Alert.parse(payload)
        except MalformedPacket:
            self.stats.dropped_malformed += 1
            return
        if alert.description == AlertDescription.CLOSE_NOTIFY:
            logger.info("peer sent close_notify")
            if self.state == State.CONNECTED:
                self._send_alert(AlertLevel.WARNING, AlertDescription.CLOSE_NOTIFY)
            self._finish(State.CLOSED, None, by_peer=True)
        elif alert.level == AlertLevel.FATAL:
            name = enum_name(AlertDescription, alert.description)
            # the owner gets the typed error (event, handshake()): INFO, so it is not reported twice
            logger.info("peer sent fatal alert %s", name)
            self._finish(
                State.FAILED,
                AlertReceived(f"peer sent fatal alert {name}", alert.description),
                by_peer=True,
            )
        else:
            logger.debug("ignoring warning alert %d", alert.description)

    def _send_alert(self, level: AlertLevel, description: AlertDescription) -> None:
        if self._v13 is not None:
            self._v13.send_alert(level, description)
            return
        epoch = self._write_epoch if self._write_protection[self._write_epoch] else 0
        # if the sequence space is exhausted the alert is skipped: the peer times out instead
        with contextlib.suppress(DtlsError):
            payload = Alert(level, description).serialize()
            record = self._seal(ContentType.ALERT, epoch, payload)
            if self._trace is not None:
                self._trace.dtls_alert_sent(self._now, record, payload)
            self._outbox.append(record)

    def _fail(self, error: DtlsError, *, send_alert: bool = True) -> None:
        # the owner gets the typed error (ConnectionClosed event, handshake() raising it) and
        # decides how to report it; a WARNING here printed every failure twice
        logger.info("DTLS %s failed: %s", "client" if self.is_client else "server", error)
        if send_alert and error.alert is not None:
            self._send_alert(AlertLevel.FATAL, AlertDescription(error.alert))
        if self._trace is not None:
            self._trace.note(self._now, "dtls", "handshake failed", str(error))
        self._finish(State.FAILED, error, by_peer=False)

    def _finish(self, state: State, error: WebrtcSecureError | None, *, by_peer: bool) -> None:
        self.state = state
        self.error = error
        self._retransmit_at = None
        self._deadline = self._first_flight_deadline = None
        self._flight = None
        self._early_records = []
        self._events.append(ConnectionClosed(error, by_peer))

    # --- trace (only called when a Trace was given) -----------------------------------------

    def _trace_flight(self, now: float, datagrams: list[bytes], retransmission: bool) -> None:
        assert self._trace is not None and self._flight is not None
        from webrtc_secure.trace import message_name

        protected = [
            message_name(item.msg_type)
            for item in self._flight
            if item.epoch > 0 and item.content_type == _HANDSHAKE
        ]
        self._trace.dtls_sent(now, datagrams, protected, retransmission=retransmission)

    def _trace_timer(self, now: float) -> None:
        assert self._trace is not None
        self._trace.note(
            now,
            "dtls",
            "retransmission timer fired",
            f"after {self._timeout:g} s, flight {self.stats.flights_sent} resent "
            f"(retransmission {self._flight_retransmissions + 1})",
        )

    def _trace_complete(self) -> None:
        assert self._trace is not None
        suite = self.cipher_suite
        profile = self.srtp_profile
        details = [
            self.version_name or "?",
            suite.name if suite is not None else "?",
            self.group or "?",
            f"SRTP {profile.name}" if profile else "no SRTP",
        ]
        if self._v13 is None:
            details.append(
                "extended master secret" if self._handshake.extended_master_secret else "no EMS"
            )
        fingerprints = self._handshake.config.remote_fingerprints
        der = self.peer_certificate
        if fingerprints and der is not None:
            matched = next((fp for fp in fingerprints if fp.matches(der)), None)
            check = f"{matched.algorithm} fingerprint matched" if matched else "no fingerprint"
        elif self._handshake.config.verify_peer is not None:
            check = "verify_peer accepted the certificate"
        else:
            check = "peer NOT authenticated (insecure_skip_fingerprint_check)"
        self._trace.note(self._now, "dtls", "handshake complete", ", ".join(details))
        self._trace.note(self._now, "dtls", "fingerprint check", check)

    def _trace_engine13(self, engine: Dtls13) -> None:
        from webrtc_secure.trace import instrument13

        assert self._trace is not None
        instrument13(engine, self._trace)
