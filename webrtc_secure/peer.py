"""SecurePeer: an awaitable, authenticated and encrypted WebRTC peer connection.

``await peer.connect(remote)`` runs ICE (aioice), the DTLS handshake (our engine,
role from ``a=setup``), the certificate fingerprint check, and keys SRTP from the
DTLS exporter (RFC 5764 4.2); then the SCTP association (RFC 8261) that carries the
data channels starts over DTLS. Everything after that is channels and events::

    peer.create_data_channel("chat")   a DataChannel (opens once SCTP is up)
    peer.on("datachannel", ...)        a DataChannel the remote opened
    peer.on("datachannel-ready")       the SCTP association is established
    peer.on("rtp", ...)                authenticated, decrypted RTP packets
    peer.on("rtcp", ...)               authenticated, decrypted RTCP packets

Inbound datagrams are demultiplexed on their first byte (RFC 7983) by
:class:`SecureProtocol`, which runs unchanged over a plain UDP socket or over an
ICE connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import ipaddress
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from pyee.asyncio import AsyncIOEventEmitter

from webrtc_secure import ice
from webrtc_secure.certificate import Certificate, fingerprint_of_der
from webrtc_secure.datachannel import ChannelManager, DataChannel, Priority
from webrtc_secure.demux import PacketKind, classify
from webrtc_secure.description import (
    SessionDescription,
    SetupRole,
    create_answer,
    create_offer,
    is_dtls_client,
)
from webrtc_secure.dispatch import Returning, SnapshotDispatch, registry_readable, run_handlers
from webrtc_secure.dtls import AlertDescription, DtlsConnection
from webrtc_secure.dtls.connection import (
    DEFAULT_DTLS_VERSIONS,
    DEFAULT_MAX_RETRANSMIT_TIMEOUT,
    parse_dtls_versions,
)
from webrtc_secure.dtls_transport import DtlsTransport
from webrtc_secure.errors import (
    AlertReceived,
    ConfigurationError,
    ConnectionClosed,
    DtlsError,
    FingerprintMismatch,
    IceError,
    InvalidChannelState,
    InvalidStateError,
    MalformedPacket,
    PacketTooLarge,
    SdpError,
    WebrtcSecureError,
)
from webrtc_secure.ice import IceCandidate
from webrtc_secure.sctp import Association, AssociationConfig
from webrtc_secure.sctp_transport import SctpTransport
from webrtc_secure.sdp import MAX_CANDIDATES
from webrtc_secure.srtp import DEFAULT_PROFILES, Profile, SrtpContext, SrtpSession
from webrtc_secure.stats import (
    LOCAL_CANDIDATE_ID,
    LOCAL_CERTIFICATE_ID,
    PAIR_ID,
    REMOTE_CANDIDATE_ID,
    REMOTE_CERTIFICATE_ID,
    TRANSPORT_ID,
    CandidatePairStats,
    CertificateStats,
    DataChannelStats,
    IceCandidateStats,
    InboundRtpStreamStats,
    OutboundRtpStreamStats,
    PeerStatsReport,
    TransportStats,
    dtls_cipher_name,
)
from webrtc_secure.trace import Trace
from webrtc_secure.udp_gso import SegmentSender

logger = logging.getLogger(__name__)

DTLS_SRTP_LABEL = "EXTRACTOR-dtls_srtp"
#: DTLS datagrams kept while connect() has not started the engine yet
MAX_EARLY_DTLS = 16
#: DTLS record header (13) plus the largest AEAD expansion of our suites (GCM: 8-byte
#: explicit nonce + 16-byte tag): what an SCTP packet leaves of the datagram MTU
DTLS_RECORD_OVERHEAD = 13 + 24
#: the pyee methods that change its registry of handlers (see SecurePeer._media_handlers)
_PYEE_HOOKS = ("_add_event_handler", "_remove_listener", "remove_all_listeners")
#: how long ``close()`` waits by default for the SCTP SHUTDOWN sequence (RFC 9260 9.2:
#: what the channels still buffer is sent and acknowledged first) before it sends
#: close_notify anyway; a few round trips with retransmissions on a real path, and a
#: bound so that an unresponsive remote cannot hold close() up
SCTP_CLOSE_TIMEOUT = 3.0


class PeerState(str, Enum):
    NEW = "new"
    CHECKING = "checking"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(slots=True)
class PeerStats:
    """Counters a user or a test can read through ``peer.stats()``.

    The SRTP packets of the media path's fast paths (authenticated on receive,
    protected on send) are not counted here: their SRTP streams count them anyway
    (packets and octets per SSRC), and :meth:`SecurePeer._traffic` adds those to
    these fields for ``stats()`` and ``get_stats()``. Two fewer objects per packet
    each way, on the path where a 1000-pair fleet spends its time (cold caches).
    """

    datagrams_in: int = 0
    datagrams_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    rtcp_in: int = 0
    rtcp_out: int = 0
    ice_seconds: float | None = None
    dtls_seconds: float | None = None
    connect_seconds: float | None = None
    #: from the DTLS handshake's end to the SCTP association's establishment
    sctp_seconds: float | None = None
    #: octets of the datagrams counted in datagrams_in / datagrams_out
    bytes_in: int = 0
    bytes_out: int = 0
    #: RTP packets protected (so counted by their SRTP stream) but not sent: no path
    rtp_unsent: int = 0
    rtp_unsent_bytes: int = 0
    # per SSRC packets and octets: the SRTP streams count them (get_stats reads them)


class _Traffic(NamedTuple):
    """What :meth:`SecurePeer._traffic` adds up."""

    datagrams_in: int
    bytes_in: int
    datagrams_out: int
    bytes_out: int
    rtp_in: int
    rtp_out: int


class SecureProtocol(asyncio.DatagramProtocol):
    """RFC 7983 demultiplexer: DTLS to the DTLS engine, SRTP/SRTCP to the SRTP session."""

    def __init__(self, peer: SecurePeer) -> None:
        self.peer = peer
        # the transport looks datagram_received up on the protocol for every datagram
        # (and the ICE receive fast path takes it once): the peer's own method, bound
        # here, saves a Python call per packet
        self.datagram_received = peer._datagram_received  # type: ignore[method-assign]
        #: ICE's receive fast path hooks the peer's own method (ice.ReceivePath)
        self.ice_receiver = peer._ice_receiver

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.peer._datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("transport error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer._transport_lost(exc)


class SecurePeer(SnapshotDispatch):
    """One secure peer connection. See the module docstring for the flow.

    Events (pyee: ``peer.on(event, handler)``; a handler that raises is logged and
    reported as ``error``, and the peer carries on; an ``async def`` handler is
    scheduled):

    ===================== ================================ ===============================
    event                 arguments                        when
    ===================== ================================ ===============================
    ``state``             the new state, a ``PeerState``   every change: ``checking``,
                          value (str)                      ``connecting``, ``connected``,
                                                           ``closed``, ``failed``
    ``icecandidate``      ``IceCandidate``, then ``None``  ``trickle=True`` only: each local
                                                           candidate, after
                                                           ``create_offer()`` /
                                                           ``create_answer()`` returned;
                                                           ``None`` is end-of-candidates
    ``datachannel-ready`` none                             the SCTP association is
                                                           established: channels open
    ``datachannel``       ``DataChannel``                  a channel the remote opened
    ``media-ready``       ``Profile`` (SRTP profile)       connected with SRTP keys (not
                                                           when no profile was negotiated)
    ``rtp``               ``bytes``: one RTP packet        each authenticated, decrypted
                                                           RTP packet
    ``rtcp``              ``bytes``: one RTCP compound     each authenticated, decrypted
                                                           RTCP packet
    ``error``             the exception                    ``connect()`` failed (it raises
                                                           the same), the connection failed
                                                           once up, a handler raised, or
                                                           trickle gathering failed; only
                                                           emitted when someone listens
    ``closed``            none                             once, after ``close()``, the
                                                           peer's close_notify, a fatal
                                                           error or the path's loss
    ===================== ================================ ===============================

    Limits (each refused at construction with ConfigurationError): ``mtu`` an int from
    150 (the DTLS handshake's minimum) to 65,507 (one UDP datagram); ``ice_timeout`` a
    positive number of seconds, ``handshake_timeout`` and ``first_flight_timeout`` one
    or None; ``retransmit_timeout`` above 0 and at most 3 s, or None; ``replay_window``
    1 to 32,768 packets; ``host_addresses`` a non-empty list of IP address literals
    (not 0.0.0.0, ::, multicast), or None; ``media_kinds`` "audio"/"video" entries;
    ``srtp_profiles`` distinct ``Profile`` values (empty: no SRTP); ``ice_servers`` at
    most one ``stun:host:port`` and one ``turn:[user:password@]host:port``;
    ``certificate`` a ``Certificate`` or None. A description is taken once
    (``create_offer()`` or ``create_answer()``, no renegotiation) and ``connect()``
    runs once: anything else is InvalidStateError and changes nothing. Descriptions
    given as text or dicts that do not parse, or of the wrong type, are SdpError;
    ``send_rtp()``/``send_rtcp()`` refuse non-bytes (MalformedPacket) and packets that
    would exceed one UDP datagram once protected (PacketTooLarge).

    Every timeout of ``connect()``, in the order they can strike:

    - ``ice_timeout`` (30 s): ICE must nominate a pair within it, else ``IceError``.
    - ``first_flight_timeout`` (30 s, ``None`` for none): after ICE, the peer's first
      DTLS flight must arrive within it, else ``FirstFlightTimeout`` (a
      ``HandshakeTimeout``). As the DTLS server that is the ClientHello of a remote
      side that never started its handshake (never called connect()); as the client,
      an answer to our hello. 30 s covers a browser client's hello retransmissions
      (libwebrtc: from 50 ms, doubling) and our own client's 12 (about 27 s).
    - the retransmission timer: each flight is resent after ``retransmit_timeout``
      seconds, doubling up to 3 s. ``None`` (the default) derives it from the
      round-trip time ICE measured on the nominated pair, 1.5 x RTT within
      [100 ms, 3 s] (RFC 9147 5.8.2), or 400 ms without ICE.
    - 12 retransmissions: a flight unanswered through 12 of them (about 27 s from a
      100 ms start) fails the handshake with ``HandshakeTimeout``.
    - ICE consent (RFC 7675): if the path stops answering (about 30 s of silence),
      aioice closes it and ``connect()`` fails with ``IceError``.
    - ``handshake_timeout`` (600 s, ``None`` for none): a wall-clock backstop on the
      whole DTLS handshake, far above the bounds above so that a live but lossy path
      is never cut short; ``HandshakeTimeout``.

    Data channels: offers carry a data channel m-line unless ``data_channel`` is false
    (``media_kinds=()`` with it: a data-only offer), and answers accept the offer's.
    When both descriptions have one, the SCTP association starts right after the DTLS
    handshake (``connect()`` does not wait for it); ``datachannel-ready`` fires once it
    is established and channels created earlier open then.

    Statistics: :meth:`get_stats` returns a typed
    :class:`~webrtc_secure.stats.PeerStatsReport` in the shape of the browser's
    ``getStats()`` (transport with DTLS state, version, suite, SRTP profile, role and
    certificate fingerprints; the selected candidate pair with its RTT and bytes; RTP
    per SSRC each way; data channels) plus ``drops`` by reason from every layer;
    ``report.to_dict()`` is the W3C camelCase form.
    :meth:`stats` is the older flat dict, kept for existing code.

    Tracing: ``trace=True`` records what ICE, DTLS, SCTP and DCEP did during the
    connection's setup and teardown (never per packet of data); :meth:`trace` returns
    the :class:`~webrtc_secure.trace.Trace`, which draws itself as a sequence diagram.
    """

    # The media path's attributes are slots: a packet reads them from a peer that is
    # cold whenever many peers take turns, and a slot is one load from the object
    # itself, where a __dict__ entry (the peer has more attributes than CPython shares
    # keys for) costs a hash probe into a table of its own. Everything else stays in
    # the __dict__ that pyee's emitter brings.
    __slots__ = (
        "_ice_dropped",
        "_ice_host",
        "_ice_port",
        "_ice_stun",
        "_rtcp_handlers",
        "_rtp_handlers",
        "_rtp_room",
        "_segments",
        "_segments_due",
        "_send_path",
        "_sendto",
        "_srtp_in",
        "_srtp_out",
        "_udp_remote",
    )

    def __init__(
        self,
        *,
        certificate: Certificate | None = None,
        ice_servers: Sequence[str] | None = None,
        srtp_profiles: Sequence[Profile] = DEFAULT_PROFILES,
        mtu: int = 1200,
        handshake_timeout: float | None = 600.0,
        ice_timeout: float = 30.0,
        retransmit_timeout: float | None = None,
        first_flight_timeout: float | None = 30.0,
        replay_window: int = 128,
        host_addresses: list[str] | None = None,
        use_ice: bool = True,
        media_kinds: Sequence[str] = ("audio",),
        data_channel: bool = True,
        snap: bool = True,
        dtls_versions: Sequence[int | str] = DEFAULT_DTLS_VERSIONS,
        trace: bool = False,
    ) -> None:
        _check_options(
            certificate=certificate,
            ice_servers=ice_servers,
            srtp_profiles=srtp_profiles,
            mtu=mtu,
            handshake_timeout=handshake_timeout,
            ice_timeout=ice_timeout,
            retransmit_timeout=retransmit_timeout,
            first_flight_timeout=first_flight_timeout,
            replay_window=replay_window,
            host_addresses=host_addresses,
            use_ice=use_ice,
            media_kinds=media_kinds,
        )
        super().__init__()
        # The media path's attributes (slots, see __slots__) first.
        #: the session's local and remote SRTP contexts (None exactly when _srtp is),
        #: whose protect and unprotect the media path calls as methods (no bound method
        #: object to load per packet), and the largest RTP packet send_rtp takes
        self._srtp_out: SrtpContext | None = None
        self._srtp_in: SrtpContext | None = None
        self._rtp_room = 0
        #: the ICE transport's send fast path (the nominated pair's socket sendto and
        #: remote address, ice.IceDatagramTransport.send_path), or None: send_rtp
        #: then goes through _sendto
        self._send_path: ice.SendPath | None = None
        #: beside the send fast path's socket, the DTLS flushes' runs of datagrams in
        #: one system call each (Linux's UDP segmentation offload), or None; made on
        #: the first flush of two or more datagrams over a path (it holds a file
        #: descriptor of its own: a peer that never sends such a flush, e.g. media
        #: only, keeps none), while _segments_due says one may be made
        self._segments: SegmentSender | None = None
        self._segments_due = False
        #: where _send_datagram hands a datagram: the ICE transport's sendto, or
        #: _udp_sendto; None until the path is known and from its loss on
        self._sendto: Callable[[bytes], None] | None = None
        self._udp_remote: tuple[str, int] | None = None
        #: the ICE receive fast path's checks while it has this peer's
        #: _ice_datagram_received on the nominated pair's socket (_ice_receiver), else
        #: None: the remote host and port, where STUN goes, the drop counter
        self._ice_port: int | None = None
        self._ice_host: str | None = None
        self._ice_stun: Callable[[bytes, Any], None] | None = None
        self._ice_dropped: Counter[str] | None = None
        #: the "rtp" and "rtcp" handlers as the media path calls them, a snapshot of
        #: pyee's registry taken on the first packet after any change to it (None:
        #: take it again)
        self._rtp_handlers: tuple[Callable[[bytes], object], ...] | None = None
        self._rtcp_handlers: tuple[Callable[[bytes], object], ...] | None = None
        #: DTLS versions we speak, preferred first (default 1.3 with the
        #: X25519MLKEM768 hybrid, and 1.2 for peers that lack 1.3)
        self.dtls_versions = parse_dtls_versions(dtls_versions)
        self.certificate = certificate or Certificate.generate()
        self.srtp_profiles = tuple(srtp_profiles)
        self.mtu = mtu
        self.handshake_timeout = handshake_timeout
        self.ice_timeout = ice_timeout
        self.retransmit_timeout = retransmit_timeout
        self.first_flight_timeout = first_flight_timeout
        self.replay_window = replay_window
        self.host_addresses = host_addresses
        #: False: one plain UDP socket on host_addresses[0], no ICE checks (testing,
        #: servers with a known address); the same SecureProtocol runs on top
        self.use_ice = use_ice
        #: m-lines of our offers ("audio", "video"); answers mirror the offer instead
        self.media_kinds = tuple(media_kinds)
        #: offer (and accept) a data channel m-line; with media_kinds=(): data only
        self.data_channel = data_channel
        self._channels = ChannelManager(
            now=_loop_time,
            flush=self._sctp_service,
            call_soon=_call_soon,
            on_datachannel=self._on_remote_channel,
        )
        #: SNAP (draft-hancke-tsvwg-snap): offer our INIT in a=sctp-init and skip the
        #: INIT exchange when the remote's description has one too
        self.snap = snap
        #: trace=True: what ICE, DTLS, SCTP and DCEP did, for peer.trace()
        self._trace = Trace("local", "remote") if trace else None
        self._channels.trace = self._trace
        self._association: Association | None = None
        self._sctp: SctpTransport | None = None
        #: done once the association has closed (SHUTDOWN complete, ABORT, DTLS gone)
        self._sctp_closed: asyncio.Future[None] | None = None
        self._sctp_started = 0.0
        self._remote: SessionDescription | None = None
        self._udp_candidate: Any = None
        #: DTLS datagrams (and their source) that arrived before the engine existed
        self._early_dtls: list[tuple[bytes, Any]] = []
        self._ice_servers = list(ice_servers or [])
        self._state = PeerState.NEW
        self._stats = PeerStats()
        self._ice: Any = None  # aioice.Connection, created on first description
        self._transport: asyncio.DatagramTransport | None = None
        self._dtls: DtlsTransport | None = None
        #: set once connected and keyed, None again from teardown on: send_rtp and
        #: send_rtcp test only this (no state comparison per packet)
        self._srtp: SrtpSession | None = None
        #: the same session from keying on, kept after teardown: get_stats() reads
        #: its per-SSRC counts
        self._srtp_counted: SrtpSession | None = None
        self._local: SessionDescription | None = None
        self._controlling: bool | None = None
        self._closing = False
        self._connect_started = self._ice_done = 0.0
        self._shutdown_task: asyncio.Future[None] | None = None
        self._shutdown_done: asyncio.Future[None] | None = None
        #: create_offer()/create_answer() is under way; connect() was called
        self._describing = self._connect_called = False
        #: the offer create_answer() answered (connect() must be given the same one)
        self._answered: SessionDescription | None = None
        #: trickle ICE: the task that gathers and announces our candidates
        #: (trickle=True); remote candidates that came before the ICE checks took the
        #: description's; whether they now go straight to ICE; whether the remote's
        #: list has ended (a=end-of-candidates, no trickle support, or a None)
        self._gathering: asyncio.Task[None] | None = None
        self._trickled_in: list[tuple[str | None, Any]] = []
        self._trickle_direct = False
        self._remote_ended = False
        self._remote_candidates = 0
        #: pyee (>= 11) keeps {event: {key: handler to call}} in _events, changes it
        #: only through _add_event_handler, _remove_listener and remove_all_listeners,
        #: and runs a handler with _emit_run; the media dispatch relies on all of it,
        #: else uses emit()
        self._direct = registry_readable(self) and all(
            callable(getattr(AsyncIOEventEmitter, name, None)) for name in _PYEE_HOOKS
        )

    # --- state and stats ----------------------------------------------------------------

    def trace(self) -> Trace | None:
        """What this peer did, or None unless built with ``SecurePeer(trace=True)``.

        The :class:`~webrtc_secure.trace.Trace` holds the ICE summary (pairs checked,
        the nominated pair and its RTT), every DTLS handshake datagram (records,
        epochs, sequence numbers, fragments, sizes), retransmissions and the timer
        that fired, alerts, the negotiated parameters and the fingerprint check, the
        SCTP control chunks and DCEP OPEN/ACK, with times relative to the first
        entry. Draw it with ``peer.trace().write("handshake.html")`` (or ``.svg``,
        ``.mmd``, ``.md``). Off by default: an untraced peer records nothing and
        pays nothing, and a traced one only on handshake and control paths.
        """
        return self._trace

    @property
    def state(self) -> PeerState:
        return self._state

    @property
    def local_description(self) -> SessionDescription | None:
        return self._local

    @property
    def srtp_profile(self) -> Profile | None:
        return self._dtls.connection.srtp_profile if self._dtls else None

    def stats(self) -> dict[str, Any]:
        """The legacy flat view (a dict): datagrams, drops by reason, media, DTLS and
        timings, data channels and SCTP. :meth:`get_stats` is the typed report."""
        s = self._stats
        traffic = self._traffic()
        dropped = dict(s.dropped)
        if self._ice is not None:
            # what the ICE layer refused (wrong or unvalidated source, early overflow,
            # suppressed STUN errors): never reached the counters above
            for reason, count in self._ice.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + count
        out: dict[str, Any] = {
            "state": self._state.value,
            "datagrams_in": traffic.datagrams_in,
            "datagrams_out": traffic.datagrams_out,
            "dropped": dropped,
            "rtp_in": traffic.rtp_in,
            "rtp_out": traffic.rtp_out,
            "rtcp_in": s.rtcp_in,
            "rtcp_out": s.rtcp_out,
            "ice_seconds": s.ice_seconds,
            "dtls_seconds": s.dtls_seconds,
            "connect_seconds": s.connect_seconds,
            "sctp_seconds": s.sctp_seconds,
        }
        if self._dtls is not None:
            conn = self._dtls.connection
            d = conn.stats
            out["dtls"] = {
                "role": "client" if conn.is_client else "server",
                "cipher_suite": conn.cipher_suite.name if conn.cipher_suite else None,
                "version": conn.version_name,
                "group": conn.group,
                "srtp_profile": conn.srtp_profile.name if conn.srtp_profile else None,
                "flights_sent": d.flights_sent,
                "retransmissions": d.retransmissions,
                "initial_retransmit_timeout": conn.initial_retransmit_timeout,
                "dropped_authentication": d.dropped_authentication,
                "dropped_replay": d.dropped_replay,
                "dropped_malformed": d.dropped_malformed,
                "dropped_epoch": d.dropped_epoch,
                "dropped_fragments": d.dropped_fragments,
                "dropped_unexpected_handshake": d.dropped_unexpected_handshake,
                "renegotiations_refused": d.renegotiations_refused,
            }
        channels = self._channels.stats()
        out["datachannels"] = channels["channels"]
        out["messages_in"] = sum(c["messages_received"] for c in channels["channels"])
        out["messages_out"] = sum(c["messages_sent"] for c in channels["channels"])
        out["datachannel_dropped"] = channels["dropped"]
        if self._sctp is not None:
            out["sctp"] = _association_stats(self._sctp)
        return out

    def get_stats(self) -> PeerStatsReport:
        """A typed snapshot in the shape of the browser's ``getStats()`` (see
        :mod:`webrtc_secure.stats`): the transport (DTLS state, version, suite, SRTP
        profile, role, certificates), the selected candidate pair (RTT, bytes), RTP per
        SSRC in each direction, the data channels, and ``drops`` by reason (this peer's,
        the ICE layer's, the DTLS engine's, the data channels' and SCTP's).
        ``report.to_dict()`` is the W3C camelCase form."""
        s = self._stats
        traffic = self._traffic()
        conn = self._dtls.connection if self._dtls is not None else None
        suite = conn.cipher_suite if conn is not None else None
        profile = conn.srtp_profile if conn is not None else None
        remote_der = conn.peer_certificate if conn is not None else None
        local_certificate = _certificate_stats(LOCAL_CERTIFICATE_ID, self.certificate.der)
        remote_certificate = (
            _certificate_stats(REMOTE_CERTIFICATE_ID, remote_der) if remote_der else None
        )
        pair = self._ice.nominated_pair if self._ice is not None else None
        pair_stats = local = remote = None
        if pair is not None:
            pair_stats = CandidatePairStats(
                id=PAIR_ID,
                local_candidate_id=LOCAL_CANDIDATE_ID,
                remote_candidate_id=REMOTE_CANDIDATE_ID,
                state="succeeded",
                nominated=True,
                current_round_trip_time=ice.latest_round_trip_time(self._ice),
                bytes_sent=traffic.bytes_out,
                bytes_received=traffic.bytes_in,
                packets_sent=traffic.datagrams_out,
                packets_received=traffic.datagrams_in,
            )
            local = _candidate_stats(LOCAL_CANDIDATE_ID, pair.local_candidate, False)
            remote = _candidate_stats(REMOTE_CANDIDATE_ID, pair.remote_candidate, True)
        transport = TransportStats(
            id=TRANSPORT_ID,
            dtls_state=_DTLS_STATES[conn.state.value] if conn is not None else "new",
            dtls_role=("client" if conn.is_client else "server") if conn is not None else None,
            # the negotiated version's code point, as browsers show it ("FEFC" DTLS 1.3)
            tls_version=f"{conn.version:04X}" if conn is not None and conn.version else None,
            dtls_cipher=dtls_cipher_name(suite.name) if suite is not None else None,
            srtp_cipher=f"SRTP_{profile.name}" if profile is not None else None,
            local_certificate_id=LOCAL_CERTIFICATE_ID,
            remote_certificate_id=REMOTE_CERTIFICATE_ID if remote_certificate else None,
            selected_candidate_pair_id=PAIR_ID if pair_stats is not None else None,
            bytes_sent=traffic.bytes_out,
            bytes_received=traffic.bytes_in,
            packets_sent=traffic.datagrams_out,
            packets_received=traffic.datagrams_in,
        )
        # the session counts RTP per SSRC; what it counted outlives close()
        srtp = self._srtp_counted
        inbound_kinds = _ssrc_kinds(self._remote)
        inbound = []
        in_counts = srtp.remote.inbound_rtp_counts() if srtp is not None else {}
        for ssrc, (packets, octets, extra, first) in sorted(in_counts.items()):
            header = 12 * packets + extra
            highest = srtp.remote.highest_index(ssrc) if srtp is not None else None
            inbound.append(
                InboundRtpStreamStats(
                    id=f"IT01A{ssrc}",
                    ssrc=ssrc,
                    kind=inbound_kinds.get(ssrc),
                    packets_received=packets,
                    bytes_received=octets - header,
                    header_bytes_received=header,
                    # RFC 3550 A.3: expected (first to highest index) minus received
                    packets_lost=(
                        highest - first + 1 - packets
                        if highest is not None and first >= 0
                        else None
                    ),
                )
            )
        outbound_kinds = _ssrc_kinds(self._local)
        outbound = []
        out_counts = srtp.local.outbound_rtp_counts() if srtp is not None else {}
        for ssrc, (packets, octets, extra) in sorted(out_counts.items()):
            header = 12 * packets + extra
            outbound.append(
                OutboundRtpStreamStats(
                    id=f"OT01A{ssrc}",
                    ssrc=ssrc,
                    kind=outbound_kinds.get(ssrc),
                    packets_sent=packets,
                    bytes_sent=octets - header,
                    header_bytes_sent=header,
                )
            )
        channels = self._channels.stats()
        data_channels = tuple(
            DataChannelStats(
                id=f"D{index}",
                label=c["label"],
                protocol=c["protocol"],
                data_channel_identifier=c["id"],
                state=c["state"],
                messages_sent=c["messages_sent"],
                bytes_sent=c["bytes_sent"],
                messages_received=c["messages_received"],
                bytes_received=c["bytes_received"],
            )
            for index, c in enumerate(channels["channels"])
        )
        drops: Counter[str] = Counter(s.dropped)
        if self._ice is not None:
            drops.update(self._ice.dropped)
        if conn is not None:
            d = conn.stats
            drops.update(
                {
                    "dtls_authentication": d.dropped_authentication,
                    "dtls_replay": d.dropped_replay,
                    "dtls_malformed": d.dropped_malformed,
                    "dtls_epoch": d.dropped_epoch,
                    "dtls_fragments": d.dropped_fragments,
                    "dtls_unexpected_handshake": d.dropped_unexpected_handshake,
                }
            )
        drops.update({f"datachannel_{k}": v for k, v in channels["dropped"].items()})
        if self._sctp is not None:
            sctp_dropped = self._sctp.association.stats.dropped
            drops.update({f"sctp_{k}": v for k, v in sctp_dropped.items()})
        return PeerStatsReport(
            timestamp=time.time() * 1000.0,
            state=self._state.value,
            transport=transport,
            local_certificate=local_certificate,
            remote_certificate=remote_certificate,
            candidate_pair=pair_stats,
            local_candidate=local,
            remote_candidate=remote,
            inbound_rtp=tuple(inbound),
            outbound_rtp=tuple(outbound),
            data_channels=data_channels,
            drops={k: v for k, v in drops.items() if v},
        )

    def _traffic(self) -> _Traffic:
        """The datagram, octet and RTP totals: the peer's counters (:class:`PeerStats`)
        plus the SRTP packets of the fast paths, which their SRTP streams counted
        (octets of RTP, so each packet's tag is added back), less what send_rtp
        protected without a path to send it on."""
        s = self._stats
        rtp_in = rtp_out = octets_in = octets_out = tag = 0
        srtp = self._srtp_counted
        if srtp is not None:
            tag = srtp.rtp_overhead
            for packets, octets, _, _ in srtp.remote.inbound_rtp_counts().values():
                rtp_in += packets
                octets_in += octets
            for packets, octets, _ in srtp.local.outbound_rtp_counts().values():
                rtp_out += packets
                octets_out += octets
        return _Traffic(
            datagrams_in=s.datagrams_in + rtp_in,
            bytes_in=s.bytes_in + octets_in + tag * rtp_in,
            datagrams_out=s.datagrams_out + rtp_out - s.rtp_unsent,
            bytes_out=s.bytes_out + octets_out + tag * rtp_out - s.rtp_unsent_bytes,
            rtp_in=rtp_in,
            rtp_out=rtp_out,
        )

    def _set_state(self, state: PeerState) -> None:
        if state != self._state:
            logger.debug("peer state %s -> %s", self._state.value, state.value)
            self._state = state
            self.emit("state", state.value)

    # --- signaling -----------------------------------------------------------------------

    async def create_offer(self, *, trickle: bool = False) -> SessionDescription:
        """Gather candidates and describe this peer as the offerer (actpass, controlling).

        ``trickle=True`` returns at once, before gathering: the offer carries no
        candidates (``a=ice-options:trickle``, no ``a=end-of-candidates``), and each
        local candidate follows as an ``"icecandidate"`` event, then ``None`` (needs
        ICE: ConfigurationError with ``use_ice=False``).

        Once per peer (no renegotiation): a second or concurrent call, or one after
        ``create_answer()`` or on a closed peer, raises InvalidStateError and changes
        nothing.
        """
        self._begin_describing("create_offer", trickle)
        try:
            await self._ensure_transport(controlling=True, trickle=trickle)
            self._check_open("create_offer")
            self._local = _trickled(self._describe("offer", SetupRole.ACTPASS), trickle)
        finally:
            self._describing = False
        return self._local

    async def create_answer(
        self,
        remote_offer: SessionDescription | str | bytes | Mapping[str, Any],
        *,
        trickle: bool = False,
    ) -> SessionDescription:
        """Answer an offer: ICE-controlled, DTLS role chosen as browsers do.

        ``remote_offer`` is a SessionDescription, its SDP text, or the browser's
        ``{"type": "offer", "sdp": ...}`` as JSON text or a dict; anything else, or an
        answer, raises SdpError. ``trickle`` as for ``create_offer()``. Once per peer,
        like ``create_offer()`` (InvalidStateError).
        """
        remote_offer = _as_description(remote_offer, "offer", "create_answer()")
        self._begin_describing("create_answer", trickle)
        try:
            await self._ensure_transport(controlling=False, trickle=trickle)
            self._check_open("create_answer")
            setup = SetupRole.answer_to(remote_offer.setup)
            self._local = _trickled(self._describe("answer", setup, remote_offer), trickle)
            self._answered = remote_offer
            self._remote_ended = _candidates_complete(remote_offer)
        finally:
            self._describing = False
        return self._local

    def _check_open(self, what: str) -> None:
        if self._closing or self._state in (PeerState.CLOSED, PeerState.FAILED):
            raise InvalidStateError(f"{what}() on a {self._state.value} peer")

    def _begin_describing(self, what: str, trickle: bool) -> None:
        """Refuse a description in the wrong state, before anything changes."""
        if trickle and not self.use_ice:
            raise ConfigurationError(
                "trickle=True needs ICE: plain UDP (use_ice=False) has one candidate, "
                "which goes in the description"
            )
        self._check_open(what)
        if self._describing:
            raise InvalidStateError(
                f"{what}() while create_offer() or create_answer() is still under way"
            )
        if self._local is not None:
            raise InvalidStateError(
                f"{what}(): this peer already made its {self._local.type} "
                "(renegotiation is not supported: use a new SecurePeer)"
            )
        self._describing = True

    async def _ensure_transport(self, controlling: bool, trickle: bool = False) -> None:
        if self._ice is not None or self._transport is not None:
            return
        self._controlling = controlling
        if self.use_ice:
            self._ice = ice.create_ice_connection(
                controlling=controlling, ice_servers=self._ice_servers
            )
            if trickle:
                # runs once the caller has its description: the candidates follow it
                self._gathering = asyncio.ensure_future(self._gather_and_announce())
                self._gathering.add_done_callback(self._gathering_done)
                return
            await ice.gather_candidates(self._ice, self.host_addresses)
            return
        host = (self.host_addresses or ["127.0.0.1"])[0]
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: SecureProtocol(self), local_addr=(host, 0)
            )
        except OSError as exc:  # e.g. an address no interface of this host has
            raise IceError(f"could not bind a UDP socket on {host}: {exc.strerror}") from None
        self._transport = transport
        ice.limit_receive_buffer(transport)
        # read what the socket holds per wakeup, as the ICE path does, so the SCTP
        # transport's coalesced flush has several packets to share (asyncio only)
        ice.batch_reads(transport)
        self._udp_candidate = ice.host_candidate(transport.get_extra_info("sockname"))

    async def _gather_and_announce(self) -> None:
        """trickle=True: gather, then one "icecandidate" event per local candidate and
        a final ``None`` (end-of-candidates)."""
        connection = self._ice
        assert connection is not None
        await ice.gather_candidates(connection, self.host_addresses)
        if self._closing:
            return
        mid, index = _transport_mid(self._local)
        for candidate in connection.local_candidates:
            self._deliver(
                "icecandidate",
                IceCandidate.from_aioice(
                    candidate,
                    sdp_mid=mid,
                    sdp_mline_index=index,
                    username_fragment=connection.local_username,
                ),
            )
        self._deliver("icecandidate", None)

    def _gathering_done(self, task: asyncio.Task[None]) -> None:
        # connect() re-raises a gathering failure (and reports it); this retrieves it,
        # and reports it for a peer whose connect() has not started yet
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning("gathering candidates failed: %s", error)
            if not self._closing and not self._connect_called:
                self._emit_error(error)

    async def add_ice_candidate(
        self, candidate: IceCandidate | Mapping[str, Any] | str | bytes | None
    ) -> None:
        """Add a candidate the remote side trickled, or end its list.

        ``candidate`` is what the other side's ``"icecandidate"`` event (or a browser's
        ``onicecandidate``) gave: an :class:`IceCandidate`, the browser's
        ``RTCIceCandidateInit`` dict ``{"candidate": "candidate:...", "sdpMid": ...,
        "sdpMLineIndex": ...}`` or its JSON, or the ``candidate:...`` text. ``None``,
        JSON ``null`` or an empty ``candidate`` is end-of-candidates: once ICE has
        tried every pair it may then report failure (without it, ``ice_timeout``
        bounds the wait); a repeated end is ignored.

        Allowed from ``create_offer()``/``create_answer()`` on; candidates that come
        before ``connect()`` has handed the description's to ICE wait for it (at most
        MAX_CANDIDATES, 128, in all). TCP candidates are accepted and ignored (aioice
        speaks UDP). Raises SdpError for a malformed candidate, an ``sdpMid`` or
        ``sdpMLineIndex`` the session does not have, or a ``usernameFragment`` not
        the remote description's; InvalidStateError before a description, after
        end-of-candidates, on a closed peer, or without ICE (``use_ice=False``).
        """
        self._check_open("add_ice_candidate")
        if not self.use_ice:
            raise InvalidStateError(
                "add_ice_candidate() needs ICE: plain UDP (use_ice=False) takes the remote "
                "address from the description"
            )
        connection = self._ice
        if connection is None:
            raise InvalidStateError("add_ice_candidate() before create_offer() or create_answer()")
        parsed = IceCandidate.coerce(candidate)
        if self._remote_ended:
            if parsed is None:
                return
            raise InvalidStateError(
                "a candidate after end-of-candidates (the remote description said "
                "a=end-of-candidates or did not offer trickle, or None was added)"
            )
        if parsed is None:
            self._remote_ended = True
            if self._trickle_direct:
                await ice.add_remote_candidates(connection, (), end_of_candidates=True)
            return
        self._check_candidate_target(parsed)
        if self._remote_candidates >= MAX_CANDIDATES:
            raise SdpError(f"more than {MAX_CANDIDATES} trickled candidates")
        self._remote_candidates += 1
        remote = parsed.to_aioice()
        if self._trickle_direct:
            await ice.add_remote_candidates(connection, (remote,))
        else:
            self._trickled_in.append((parsed.username_fragment, remote))

    def _check_candidate_target(self, candidate: IceCandidate) -> None:
        """The m-line and ICE generation a trickled candidate names must be ours."""
        local = self._local
        if local is not None:
            if candidate.sdp_mid is not None:
                if candidate.sdp_mid not in local.mids:
                    raise SdpError(
                        f"candidate for sdpMid {candidate.sdp_mid!r}: the session's mids "
                        f"are {local.mids}"
                    )
            elif candidate.sdp_mline_index is not None and candidate.sdp_mline_index >= len(
                local.media
            ):
                raise SdpError(
                    f"candidate for sdpMLineIndex {candidate.sdp_mline_index}: the session "
                    f"has {len(local.media)} m-lines"
                )
        remote = self._answered  # the offerer learns the remote ufrag in connect()
        fragment = candidate.username_fragment
        if remote is not None and fragment is not None and fragment != remote.ice_ufrag:
            raise SdpError(
                f"candidate for ICE ufrag {fragment!r}, the remote description's is "
                f"{remote.ice_ufrag!r}"
            )

    async def _hand_over_candidates(self, remote: SessionDescription) -> None:
        """The description's candidates and those trickled so far to ICE; from then on
        add_ice_candidate() goes straight to ICE. Trickled ones that arrive meanwhile
        are taken in the same loop, so ICE sees every candidate before an end."""
        connection = self._ice
        assert connection is not None
        if _candidates_complete(remote):
            self._remote_ended = True
        batch = list(remote.candidates)
        while True:
            for fragment, candidate in self._trickled_in:
                if fragment is not None and fragment != remote.ice_ufrag:
                    # the offerer could not check it on arrival: another ICE generation
                    self._stats.dropped["stale_ice_candidate"] += 1
                else:
                    batch.append(candidate)
            self._trickled_in.clear()
            if not batch:
                break
            await ice.add_remote_candidates(connection, batch)
            batch = []
        self._trickle_direct = True
        if self._remote_ended:
            await ice.add_remote_candidates(connection, (), end_of_candidates=True)

    def _describe(
        self, kind: str, setup: SetupRole, remote: SessionDescription | None = None
    ) -> SessionDescription:
        if self._ice is not None:
            ufrag, pwd = self._ice.local_username, self._ice.local_password
            candidates = list(self._ice.local_candidates)
        else:
            # plain UDP still writes ICE credentials: SDP parsers require them
            ufrag, pwd = secrets.token_hex(4), secrets.token_hex(12)
            candidates = [self._udp_candidate]
        fingerprints = self.certificate.fingerprints()
        # SNAP: our INIT chunk travels in the description, so the association (its tag
        # and initial TSN) exists from the first description on
        sctp_init = None
        if self.data_channel and self.snap:
            sctp_init = self._ensure_association().snap_init()
        if kind == "offer":
            return create_offer(
                ice_ufrag=ufrag,
                ice_pwd=pwd,
                fingerprints=fingerprints,
                candidates=candidates,
                setup=setup,
                kinds=self.media_kinds,
                data_channel=self.data_channel,
                max_message_size=self._channels.local_max_message_size,
                sctp_init=sctp_init,
            )
        assert remote is not None
        return create_answer(
            remote,
            ice_ufrag=ufrag,
            ice_pwd=pwd,
            fingerprints=fingerprints,
            candidates=candidates,
            setup=setup,
            data_channel=self.data_channel,
            max_message_size=self._channels.local_max_message_size,
            sctp_init=sctp_init,
        )

    # --- connect -------------------------------------------------------------------------

    async def connect(self, remote: SessionDescription | str | bytes | Mapping[str, Any]) -> None:
        """ICE, then DTLS, then the fingerprint check, then SRTP keys.

        ``remote`` is the other side's description: on the offerer its answer, on the
        answerer the offer it answered. A SessionDescription, its SDP text, or the
        browser's ``{"type": ..., "sdp": ...}`` as JSON text or a dict; anything else
        raises SdpError, and so does a description of the wrong type.

        Raises IceError, HandshakeTimeout, FingerprintMismatch, HandshakeFailure or
        AlertReceived (all WebrtcSecureError) and leaves the peer ``failed``. Called
        before ``create_offer()``/``create_answer()`` has returned, a second time
        (also while the first call runs), or on a closed peer, it raises
        InvalidStateError and the peer goes on as it was.
        """
        self._check_open("connect")
        if self._connect_called:
            raise InvalidStateError(
                f"connect() was already called (the peer is {self._state.value}); "
                "a peer connects once"
            )
        if self._local is None:
            raise InvalidStateError("create an offer or answer before connect()")
        remote = self._remote_for_connect(remote)
        self._connect_called = True
        _require_fingerprint(remote)
        self._remote = remote
        started = time.monotonic()
        try:
            self._set_state(PeerState.CHECKING)
            if self.use_ice:
                await self._connect_ice(remote)
                if self._trace is not None:
                    self._trace_ice()
            else:
                self._udp_remote = ice.first_udp_address(remote.candidates)
                self._sendto = self._udp_sendto
            ice_done = time.monotonic()
            self._stats.ice_seconds = ice_done - started
            self._set_state(PeerState.CONNECTING)
            is_client = is_dtls_client(self._local.setup, remote.setup)
            self._connect_started, self._ice_done = started, ice_done
            await self._handshake(is_client, remote)
        except AlertReceived as exc:
            refused = _refused_certificate(exc)
            if refused is not None:
                await self._fail(refused)
                raise refused from exc
            await self._fail(exc)
            raise
        except (WebrtcSecureError, asyncio.CancelledError) as exc:
            await self._fail(exc if isinstance(exc, WebrtcSecureError) else None)
            raise

    def _remote_for_connect(
        self, remote: SessionDescription | str | bytes | Mapping[str, Any]
    ) -> SessionDescription:
        assert self._local is not None
        expected = "answer" if self._local.type == "offer" else "offer"
        description = _as_description(remote, expected, "connect()")
        answered = self._answered
        if answered is not None and (
            description.ice_ufrag != answered.ice_ufrag
            or description.ice_pwd != answered.ice_pwd
            or description.fingerprints != answered.fingerprints
        ):
            raise SdpError(
                "connect() on the answerer takes the offer that create_answer() answered; "
                "this one has other ICE credentials or fingerprints"
            )
        return description

    def _on_handshake_complete(self) -> None:
        """Runs inside the engine's event dispatch, before any data that arrived with
        the peer's last flight is delivered: by then we must be connected and keyed."""
        assert self._dtls is not None
        now = time.monotonic()
        self._stats.dtls_seconds = now - self._ice_done
        self._stats.connect_seconds = now - self._connect_started
        self._set_state(PeerState.CONNECTED)
        profile = self.srtp_profile
        if profile is not None:
            material = self._dtls.connection.export_keying_material(
                DTLS_SRTP_LABEL, profile.keying_material_length
            )
            srtp = self._srtp = self._srtp_counted = SrtpSession.from_keying_material(
                material,
                profile,
                self._dtls.connection.is_client,
                replay_window=self.replay_window,
            )
            self._srtp_out, self._srtp_in = srtp.local, srtp.remote
            self._rtp_room = MAX_DATAGRAM - srtp.rtp_overhead
        if profile is not None:
            self._deliver("media-ready", profile)
        self._start_sctp()

    # --- data channels ------------------------------------------------------------------

    def create_data_channel(
        self,
        label: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
        protocol: str = "",
        negotiated: bool = False,
        id: int | None = None,
        priority: int = Priority.LOW,
    ) -> DataChannel:
        """A new data channel, as ``RTCPeerConnection.createDataChannel``.

        ``max_packet_life_time`` is in milliseconds; give it or ``max_retransmits``, not
        both. A ``negotiated`` channel has its ``id`` agreed out of band and sends no
        DCEP. Channels created before ``connect()`` open once the association is up.
        Raises InvalidChannelParameters, ChannelIdInUse, or InvalidChannelState when the
        peer is closed.
        """
        if self._closing or self._state in (PeerState.CLOSED, PeerState.FAILED):
            raise InvalidChannelState("the peer connection is closed")
        return self._channels.create_data_channel(
            label,
            ordered=ordered,
            max_retransmits=max_retransmits,
            max_packet_life_time=max_packet_life_time,
            protocol=protocol,
            negotiated=negotiated,
            id=id,
            priority=priority,
        )

    @property
    def data_channels(self) -> list[DataChannel]:
        """Open or opening channels of either side."""
        return self._channels.channels

    def _start_sctp(self) -> None:
        """After the DTLS handshake: the SCTP association over DTLS application data."""
        assert self._dtls is not None
        remote, local = self._remote, self._local
        if remote is None or local is None:
            return
        remote_port, local_port = remote.sctp_port, local.sctp_port
        remote_max = remote.max_message_size
        if remote_port is None or local_port is None or remote_max is None:
            logger.debug("no data channel m-line negotiated: no SCTP association")
            return
        self._channels.remote_max_message_size = remote_max
        association = self._ensure_association()
        # the ports and the remote's limit are known only now (the offerer's
        # association was built for its offer); no packet has used the config yet
        association.config = dataclasses.replace(
            association.config,
            local_port=local_port,
            remote_port=remote_port,
            remote_max_message_size=remote_max,
        )
        self._sctp = SctpTransport(
            association,
            self._dtls.send,
            self._channels,
            on_established=self._on_sctp_established,
            on_closed=self._on_sctp_closed,
            send_many=self._dtls.send_many,
        )
        self._sctp_closed = asyncio.get_running_loop().create_future()
        # DTLS application data is SCTP from now on (RFC 8261; _on_application_data
        # would only forward it): one call fewer per record, and _sctp is never
        # unset again
        self._dtls.on_data = self._sctp.datagram_received
        # the transport's clock (the loop's time, bound) and its service, with no
        # frame of ours in between: both are called for every message sent
        self._channels.attach(
            association,
            is_dtls_client=self._dtls.connection.is_client,
            now=self._sctp.now,
            flush=self._sctp.service,
        )
        self._sctp_started = time.monotonic()
        remote_init = remote.sctp_init
        if self.snap and local.sctp_init is not None and remote_init is not None:
            # SNAP: both descriptions carry an INIT, so no INIT / COOKIE round trips
            self._sctp.start_snap(remote_init)
        else:
            # both sides send INIT (RFC 8841 9.3); the association resolves the collision
            self._sctp.connect()

    def _ensure_association(self) -> Association:
        if self._association is None:
            self._association = Association(
                AssociationConfig(
                    max_packet_size=self.mtu - DTLS_RECORD_OVERHEAD,
                    max_message_size=self._channels.local_max_message_size,
                )
            )
            self._association.trace = self._trace
        return self._association

    def _on_sctp_established(self) -> None:
        self._stats.sctp_seconds = time.monotonic() - self._sctp_started
        self._deliver("datachannel-ready")

    def _on_sctp_closed(self, error: WebrtcSecureError | None) -> None:
        if self._sctp_closed is not None and not self._sctp_closed.done():
            self._sctp_closed.set_result(None)

    def _sctp_service(self) -> None:
        if self._sctp is not None:
            self._sctp.service()

    def _on_remote_channel(self, channel: DataChannel) -> None:
        self._deliver("datachannel", channel)

    def _deliver(self, event: str, *args: Any) -> None:
        """Emit to the user's handlers; a handler that raises is logged and reported as
        an "error" event, and never tears down the transport or the engine."""
        try:
            self.emit(event, *args)
        except Exception as exc:
            logger.exception("handler for %r raised", event)
            self._emit_error(exc)

    def _trace_ice(self) -> None:
        assert self._trace is not None
        self._trace.note(_loop_time(), "ice", "ICE connected", _ice_summary(self._ice))

    async def _connect_ice(self, remote: SessionDescription) -> None:
        if self._gathering is not None:
            await self._gathering  # trickle=True: ICE needs our candidates first

        async def checks() -> ice.IceDatagramTransport:
            await self._hand_over_candidates(remote)
            return await ice.connect_ice(
                self._ice,
                remote.ice_ufrag,
                remote.ice_pwd,
                (),  # handed over already, and the list may stay open for trickling
                lambda: SecureProtocol(self),
                end_of_candidates=False,
            )

        try:
            self._transport = await asyncio.wait_for(checks(), self.ice_timeout)
        except asyncio.TimeoutError:
            raise IceError(f"ICE did not connect within {self.ice_timeout:g} s") from None
        if not self._transport.is_closing():  # ICE may have closed under us already
            self._sendto = self._transport.sendto
            self._transport.send_path(self._set_send_path)

    def _set_send_path(self, path: ice.SendPath | None) -> None:
        path = self._send_path = path if self._sendto is not None else None
        self._drop_segments()
        # a sender for the new path comes with its first flush of several datagrams
        self._segments_due = path is not None

    def _drop_send_path(self) -> None:
        """No send path any more (the transport is gone or closing)."""
        self._sendto = self._send_path = None
        self._drop_segments()

    def _drop_segments(self) -> None:
        self._segments_due = False
        segments = self._segments
        if segments is not None:
            self._segments = None
            segments.close()

    def _make_segments(self) -> SegmentSender | None:
        """The segmentation sender for the send path (once per path: None when its
        transport has no UDP socket to use, or off this platform)."""
        self._segments_due = False
        path = self._send_path
        if path is not None:
            sendto, remote = path
            self._segments = SegmentSender.for_path(
                sendto, remote, transport=ice.sending_transport(sendto)
            )
        return self._segments

    async def _handshake(self, is_client: bool, remote: SessionDescription) -> None:
        connection = DtlsConnection(
            is_client,
            self.certificate,
            srtp_profiles=self.srtp_profiles,
            mtu=self.mtu,
            cookies=False,  # ICE connectivity checks already proved the path
            remote_fingerprints=remote.fingerprints,
            # the path's RTT as ICE measured it sets the retransmission timer (None
            # without ICE, or when no check of the pair was timed: the engine's default)
            round_trip_time=ice.round_trip_time(self._ice) if self._ice is not None else None,
            initial_retransmit_timeout=self.retransmit_timeout,
            handshake_timeout=self.handshake_timeout,
            first_flight_timeout=self.first_flight_timeout,
            dtls_versions=self.dtls_versions,
            trace=self._trace,
        )
        self._dtls = DtlsTransport(
            connection,
            self._send_datagram,
            send_batch=self._send_datagrams,
            on_data=self._on_application_data,
            on_closed=self._on_dtls_closed,
            on_handshake=self._on_handshake_complete,
        )
        early, self._early_dtls = self._early_dtls, []
        for datagram, addr in early:  # the peer's hello may beat our own connect() call
            # plain UDP learnt the remote address only in connect(): what came before
            # from elsewhere is dropped now (ICE's gate checked the source already)
            if self._udp_remote is not None and addr != self._udp_remote:
                self._stats.dropped["unexpected_source"] += 1
                continue
            self._dtls.datagram_received(datagram)
        # the engine enforces handshake_timeout itself (HandshakeTimeout with its reason);
        # the transport's bound only catches an engine that failed to
        bound = None if self.handshake_timeout is None else self.handshake_timeout + 1.0
        await self._dtls.handshake(bound)

    # --- data path ----------------------------------------------------------------------
    #
    # Per packet, the media path is straight-line code on the peer: from the socket
    # (over ICE the nominated pair's socket calls _ice_datagram_received, which makes
    # the ICE wrapper's checks itself) to the user's "rtp" handler, datagram_received
    # -> _datagram_received -> SRTP unprotect -> the handlers, and from send_rtp to the
    # socket, SRTP protect -> the transport's sendto. No demultiplexer call, event
    # emitter or stats object is built per packet: the first octets are compared
    # inline (RFC 7983, RFC 5761), the counters are ints, and the handlers are a tuple
    # taken from pyee's registry once per change to it.

    def send_rtp(self, packet: bytes) -> None:
        """Protect an RTP packet with SRTP and send it.

        Raises ConnectionClosed unless the peer is connected with SRTP keys;
        MalformedPacket for anything but the bytes of an RTP packet (bytes or
        bytearray); PacketTooLarge when the protected packet would exceed one UDP
        datagram (:data:`MAX_DATAGRAM` octets); KeyLifetimeExceeded or
        StreamLimitExceeded from the SRTP context."""
        local = self._srtp_out
        if local is None:
            raise ConnectionClosed("media is not ready (no SRTP keys)")
        try:
            # refused before protect(): a packet never sent takes no SRTP index
            if len(packet) > self._rtp_room:
                raise PacketTooLarge(
                    f"RTP packet of {len(packet)} octets exceeds one UDP datagram once protected"
                )
            # counted on its SRTP stream: rtp_out, datagrams_out and bytes_out (_traffic)
            protected = local.protect(packet)
        except TypeError:
            _check_packet_type(packet, "send_rtp")
            raise
        # best effort, as UDP: a datagram with no path is dropped
        path = self._send_path
        if path is not None:
            # the ICE transport's sendto without the call into it
            path[0](protected, path[1])
            return
        sendto = self._sendto
        if sendto is not None:
            sendto(protected)
        else:
            stats = self._stats
            stats.rtp_unsent += 1
            stats.rtp_unsent_bytes += len(protected)

    def send_rtcp(self, packet: bytes) -> None:
        """Protect an RTCP packet with SRTCP and send it.

        Raises ConnectionClosed unless the peer is connected with SRTP keys, and
        MalformedPacket or PacketTooLarge as :meth:`send_rtp` does."""
        srtp = self._srtp
        if srtp is None:
            raise ConnectionClosed("media is not ready (no SRTP keys)")
        try:
            protected = srtp.protect_rtcp(packet)
        except TypeError:
            _check_packet_type(packet, "send_rtcp")
            raise
        if len(protected) > MAX_DATAGRAM:
            raise PacketTooLarge(
                f"RTCP packet of {len(packet)} octets exceeds one UDP datagram once protected"
            )
        self._send_datagram(protected)
        self._stats.rtcp_out += 1

    def _send_datagram(self, data: bytes) -> None:
        # best effort, as UDP: a datagram with no path (not yet, or no longer) is dropped
        # (send_rtp has its own copy of these lines); the ICE transport's send fast
        # path called directly, as send_rtp does
        path = self._send_path
        if path is not None:
            path[0](data, path[1])
        else:
            sendto = self._sendto
            if sendto is None:
                return
            sendto(data)
        stats = self._stats
        stats.datagrams_out += 1
        stats.bytes_out += len(data)

    def _send_datagrams(self, datagrams: list[bytes]) -> None:
        """:meth:`_send_datagram` for each of ``datagrams``, in order (the DTLS
        transport's ``send_batch``: the records of one flush, e.g. a flush of SCTP
        packets). With the ICE send fast path, the socket's ``sendto`` is called
        straight from here (or, for runs of datagrams of one length, the segmentation
        offload sends each run in one system call: :mod:`webrtc_secure.udp_gso`) and
        the counters move once per batch; a datagram the socket refuses (OSError) is
        logged as the DTLS transport logs it, not counted, and the rest still go."""
        path = self._send_path
        if path is None:
            for datagram in datagrams:
                try:
                    self._send_datagram(datagram)
                except OSError as exc:  # as DtlsTransport's own loop
                    logger.warning("DTLS send failed: %s", exc)
            return
        stats = self._stats
        count = len(datagrams)
        if count == 1:
            # one record (a round trip's flush): _send_datagram's lines, without the
            # batch's sum() and the loop
            datagram = datagrams[0]
            try:
                path[0](datagram, path[1])
            except OSError as exc:
                logger.warning("DTLS send failed: %s", exc)
                return
            stats.datagrams_out += 1
            stats.bytes_out += len(datagram)
            return
        # counted up front (sum and len run in C) and taken back for a refusal
        stats.datagrams_out += count
        stats.bytes_out += sum(map(len, datagrams))
        if count > 1:
            segments = self._segments
            if segments is None and self._segments_due:
                segments = self._make_segments()
            if segments is not None:
                segments.send(datagrams, self._send_refused)
                return
        sendto, remote = path
        for datagram in datagrams:
            try:
                sendto(datagram, remote)
            except OSError as exc:
                self._send_refused(datagram, exc)

    def _send_refused(self, datagram: bytes, exc: OSError) -> None:
        """A datagram of a batch the socket refused: logged, and not counted."""
        logger.warning("DTLS send failed: %s", exc)
        stats = self._stats
        stats.datagrams_out -= 1
        stats.bytes_out -= len(datagram)

    def _udp_sendto(self, data: bytes) -> None:
        transport = self._transport
        # a closed socket would report every later send as an error
        if transport is not None and not transport.is_closing():
            transport.sendto(data, self._udp_remote)

    def _datagram_received(self, data: bytes, addr: Any = None) -> None:
        # only plain UDP knows its remote address (ICE: aioice owns the 5-tuple)
        if self._udp_remote is not None and addr != self._udp_remote:
            stats = self._stats
            stats.datagrams_in += 1
            stats.bytes_in += len(data)
            stats.dropped["unexpected_source"] += 1
            return
        # SRTP first, decided inline as classify() would: first octet 128..191 (RFC
        # 7983) and the second without the marker bit not 64..95 (RFC 5761: RTCP)
        if len(data) > 1 and 127 < data[0] < 192 and not 64 <= data[1] & 0x7F <= 95:
            remote = self._srtp_in
            if remote is None:
                stats = self._stats
                stats.datagrams_in += 1
                stats.bytes_in += len(data)
                stats.dropped["media_before_keys"] += 1
                return
            try:
                packet = remote.unprotect(data)
            except WebrtcSecureError as exc:
                # authentication, replay or parse failure: counted, never delivered
                stats = self._stats
                stats.datagrams_in += 1
                stats.bytes_in += len(data)
                stats.dropped[f"rtp_{type(exc).__name__}"] += 1
                return
            # counted on its SRTP stream: rtp_in, datagrams_in and bytes_in (_traffic)
            handlers = self._rtp_handlers
            if handlers is None:
                handlers = self._rtp_handlers = self._media_handlers("rtp")
            for handler in handlers:
                try:
                    result = handler(packet)
                except Exception as exc:
                    self._handler_failed("rtp", exc)
                    continue
                if result is not None:
                    self._emit_run(Returning(result), (), {})
            return
        stats = self._stats
        stats.datagrams_in += 1
        stats.bytes_in += len(data)
        if data and 19 < data[0] < 64:
            # DTLS (RFC 7983: first octet 20..63), as classify() would say, decided
            # inline: one per SCTP packet once the data channel runs
            dtls = self._dtls
            if dtls is not None:
                dtls.datagram_received(data)
                return
            kind = PacketKind.DTLS
        else:
            kind = classify(data)
        if kind is PacketKind.RTCP:
            self._rtcp_received(data)
        elif kind is PacketKind.DTLS:
            if self._dtls is not None:
                self._dtls.datagram_received(data)
            elif len(self._early_dtls) < MAX_EARLY_DTLS:
                self._early_dtls.append((data, addr))
            else:
                stats.dropped["dtls_before_handshake"] += 1
        else:
            stats.dropped[f"unknown_{kind.name.lower()}"] += 1

    def _ice_datagram_received(self, data: bytes, addr: Any) -> None:
        """What ICE's receive fast path puts on the nominated pair's socket (see
        :meth:`_ice_receiver`): the checks of the transport's wrapper, made here, then
        SRTP, and DTLS once its transport exists, straight through (the same lines as
        :meth:`_datagram_received`'s; a call between them would cost what this method
        saves) and everything else to :meth:`_datagram_received`."""
        # STUN (RFC 7983: first octet 0..3) and anything empty to the socket's gate
        # (aioice, consent); the rest only from the pair's remote address (this socket
        # is its local half of the 5-tuple)
        if not data or data[0] < 4:
            self._ice_stun(data, addr)  # type: ignore[misc]
            return
        if addr[1] != self._ice_port or addr[0] != self._ice_host:
            self._ice_dropped["unexpected_source"] += 1  # type: ignore[index]
            return
        try:
            first = data[0]
            if 127 < first < 192 and len(data) > 1 and not 64 <= data[1] & 0x7F <= 95:
                remote = self._srtp_in
                if remote is not None:
                    try:
                        packet = remote.unprotect(data)
                    except WebrtcSecureError as exc:
                        stats = self._stats
                        stats.datagrams_in += 1
                        stats.bytes_in += len(data)
                        stats.dropped[f"rtp_{type(exc).__name__}"] += 1
                        return
                    handlers = self._rtp_handlers
                    if handlers is None:
                        handlers = self._rtp_handlers = self._media_handlers("rtp")
                    for handler in handlers:
                        try:
                            result = handler(packet)
                        except Exception as exc:
                            self._handler_failed("rtp", exc)
                            continue
                        if result is not None:
                            self._emit_run(Returning(result), (), {})
                    return
            elif 19 < first < 64:
                # DTLS (RFC 7983: 20..63), the rest of _datagram_received's lines
                # for it: one datagram per SCTP packet once the data channel runs
                dtls = self._dtls
                if dtls is not None:
                    stats = self._stats
                    stats.datagrams_in += 1
                    stats.bytes_in += len(data)
                    dtls.datagram_received(data)
                    return
            self._datagram_received(data, addr)
        except Exception:
            # a bug above us must not reach the loop's reader callback (uvloop closes
            # the transport on an exception from datagram_received)
            logger.exception("datagram handler failed; datagram dropped")

    def _ice_receiver(self, path: ice.ReceivePath | None) -> Callable[[bytes, Any], None]:
        """What ICE's receive fast path puts on the nominated pair's socket: this
        peer's own :meth:`_ice_datagram_received`, told the checks it must make there
        (``path``: the pair's remote host and port, where STUN goes, the connection's
        drop counter), or None when the hook comes off (the gate checks again)."""
        if path is None:
            self._ice_port = self._ice_host = self._ice_stun = self._ice_dropped = None
        else:
            self._ice_host, self._ice_port, self._ice_stun, self._ice_dropped = path
        return self._ice_datagram_received

    def _rtcp_received(self, data: bytes) -> None:
        """An SRTCP packet (RTCP is rare next to RTP: the general way)."""
        srtp = self._srtp
        if srtp is None:
            self._stats.dropped["media_before_keys"] += 1
            return
        try:
            packet = srtp.unprotect_rtcp(data)
        except WebrtcSecureError as exc:
            # authentication, replay or parse failure: counted, never delivered
            self._stats.dropped[f"rtcp_{type(exc).__name__}"] += 1
            return
        self._stats.rtcp_in += 1
        self._deliver_media("rtcp", packet)

    def _deliver_media(self, event: str, packet: bytes) -> None:
        """``_deliver`` for the per-packet events ("rtp", "rtcp"), without pyee's
        ``emit``: the handlers as :meth:`_media_handlers` snapshots them."""
        if event == "rtp":
            handlers = self._rtp_handlers
            if handlers is None:
                handlers = self._rtp_handlers = self._media_handlers(event)
        else:
            handlers = self._rtcp_handlers
            if handlers is None:
                handlers = self._rtcp_handlers = self._media_handlers(event)
        run_handlers(self, handlers, packet, functools.partial(self._handler_failed, event))

    def _media_handlers(self, event: str) -> tuple[Callable[[bytes], object], ...]:
        """What the media path calls for ``event``: pyee's handlers as its registry
        holds them now (the callable it runs, e.g. a ``once`` wrapper that removes
        itself), or, where pyee keeps them differently, one callable that goes through
        ``emit``.

        ``emit`` takes a lock, builds an empty default dict and a list, and runs each
        handler through a wrapper: about 2 us per packet, more than the rest of the
        delivery. The snapshot is taken again after any change to the registry (see
        :meth:`_add_event_handler`), so a handler added or removed while packets flow,
        or from within a handler, takes effect from the next packet. A handler that
        raises is logged and reported as an "error" event, as by ``_deliver``; one that
        returns an awaitable (an ``async def`` handler) is handed to pyee's own runner,
        which schedules it and reports its failure as "error".
        """
        if not self._direct:
            return (functools.partial(self._deliver, event),)
        handlers = self._events.get(event)
        return tuple(handlers.values()) if handlers else ()

    def _handler_failed(self, event: str, exc: Exception) -> None:
        logger.exception("handler for %r raised", event, exc_info=exc)
        self._emit_error(exc)

    def _drop_handler_snapshots(self) -> None:
        self._rtp_handlers = self._rtcp_handlers = None

    def _on_application_data(self, data: bytes) -> None:
        # DTLS application data is SCTP (RFC 8261); nothing else rides on it
        if self._sctp is None:
            self._stats.dropped["application_data_without_sctp"] += 1
            return
        self._sctp.datagram_received(data)

    # --- teardown -----------------------------------------------------------------------

    def _on_dtls_closed(self, error: WebrtcSecureError | None) -> None:
        if self._sctp is not None:
            self._sctp.abort(error)
        if self._closing or self._state in (PeerState.CLOSED, PeerState.FAILED):
            return
        if self._state != PeerState.CONNECTED:
            return  # connect() sees the error through the handshake and fails
        if error is not None:
            # a DTLS 1.3 client is connected once it sent its Finished: a server that
            # refuses our certificate says so afterwards, with the error connect()
            # raises for it under DTLS 1.2
            if isinstance(error, AlertReceived):
                error = _refused_certificate(error) or error
            self._emit_error(error)
        self._shutdown_task = asyncio.ensure_future(
            self._shutdown(PeerState.FAILED if error else PeerState.CLOSED)
        )

    def _transport_lost(self, exc: Exception | None) -> None:
        self._drop_send_path()
        if self._closing or self._state in (PeerState.CLOSED, PeerState.FAILED):
            return
        logger.info("transport lost: %s", exc)
        if self._state == PeerState.CONNECTING and self._dtls is not None:
            # e.g. ICE consent expired (RFC 7675): no retransmission can get through now
            self._dtls.abort(
                IceError(f"the ICE transport closed during the DTLS handshake ({exc})")
            )
        elif self._state == PeerState.CONNECTED:
            self._shutdown_task = asyncio.ensure_future(self._shutdown(PeerState.CLOSED))

    def _emit_error(self, error: BaseException) -> None:
        # pyee raises an unhandled "error" event: only emit when someone listens
        if self.listeners("error"):
            with contextlib.suppress(Exception):
                self.emit("error", error)

    async def _fail(self, error: WebrtcSecureError | None) -> None:
        if error is not None:
            logger.warning("peer connection failed: %s: %s", type(error).__name__, error)
            self._emit_error(error)
        await self._shutdown(PeerState.FAILED)

    async def close(self, *, timeout: float = SCTP_CLOSE_TIMEOUT) -> None:
        """Close gracefully: the SCTP SHUTDOWN, then close_notify, then ICE. Idempotent.

        With data channels, the association's SHUTDOWN sequence (RFC 9260 9.2) runs
        first: every message already accepted by ``channel.send()`` is sent and
        acknowledged by the remote before SHUTDOWN / SHUTDOWN ACK / SHUTDOWN COMPLETE,
        so messages sent just before ``close()`` are not lost. ``timeout`` (seconds,
        default :data:`SCTP_CLOSE_TIMEOUT`, 3 s) bounds that wait: past it, or at once
        with ``timeout=0``, what is still unacknowledged is dropped and the DTLS
        close_notify goes out anyway. For larger backlogs on slow paths, await
        ``channel.drain()`` before ``close()``. A close started by the remote's
        close_notify, a fatal error or the loss of the path does not wait: there is
        no path left for the SHUTDOWN.
        """
        if not _is_number(timeout) or timeout < 0:
            raise ConfigurationError("close(timeout=...) must be a number of seconds >= 0")
        await self._shutdown(PeerState.CLOSED, sctp_linger=float(timeout))

    async def _shutdown(self, final: PeerState, *, sctp_linger: float = 0.0) -> None:
        if self._closing:
            # another shutdown (e.g. the peer's close_notify) is under way: wait for it
            if self._shutdown_done is not None:
                await asyncio.shield(self._shutdown_done)
            return
        self._closing = True
        self._shutdown_done = asyncio.get_running_loop().create_future()
        try:
            await self._teardown(final, sctp_linger)
        finally:
            self._shutdown_done.set_result(None)

    async def _teardown(self, final: PeerState, sctp_linger: float) -> None:
        if self._sctp is not None:
            # SHUTDOWN (and, with a linger, its completion) before close_notify
            await self._shutdown_sctp(self._sctp, sctp_linger)
        if self._dtls is not None:
            self._dtls.close()  # close_notify goes out before the transport closes
        if self._sctp is not None:
            self._sctp.abort(None)
        self._channels.association_closed(None)  # channels never started close too
        self._srtp = self._srtp_out = self._srtp_in = None
        self._drop_send_path()
        if self._transport is not None:
            self._transport.close()
        if self._ice is not None:
            with contextlib.suppress(Exception):
                await self._ice.close()
        self._set_state(final)
        self.emit("closed")

    async def _shutdown_sctp(self, sctp: SctpTransport, linger: float) -> None:
        """Start the SHUTDOWN sequence; wait up to ``linger`` seconds for it to end."""
        sctp.shutdown()
        sctp.service()  # a SHUTDOWN before establishment closes at once: report it
        done = self._sctp_closed
        if linger <= 0 or done is None or done.done() or self._sendto is None:
            return  # no wait asked, nothing to wait for, or no path to shut down over
        try:
            await asyncio.wait_for(asyncio.shield(done), linger)
        except asyncio.TimeoutError:
            logger.info(
                "the SCTP SHUTDOWN did not complete within %g s; closing DTLS anyway", linger
            )

    async def __aenter__(self) -> SecurePeer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _refused_certificate(alert: AlertReceived) -> FingerprintMismatch | None:
    """The peer's bad_certificate as what it means in WebRTC: the peer hashed our
    certificate and found another fingerprint in its copy of our description, the
    same man-in-the-middle seen from there."""
    if alert.alert != AlertDescription.BAD_CERTIFICATE:
        return None
    mismatch = FingerprintMismatch(
        "the peer refused our certificate (bad_certificate): the description "
        "it received does not carry our fingerprint",
        alert.alert,
    )
    mismatch.__cause__ = alert
    return mismatch


def _ice_summary(connection: Any) -> str:
    """Pairs checked, the nominated pair and its round-trip time (for the trace)."""
    check_list = list(getattr(connection, "_check_list", ()))
    succeeded = sum(1 for p in check_list if getattr(p.state, "name", "") == "SUCCEEDED")
    parts = [f"{len(check_list)} pairs, {succeeded} succeeded"]
    pair = getattr(connection, "nominated_pair", None)
    if pair is not None:
        local, remote = pair.local_candidate, pair.remote_candidate
        parts.append(
            f"nominated {local.host}:{local.port} ({local.type}) -> "
            f"{remote.host}:{remote.port} ({remote.type})"
        )
        rtt = ice.round_trip_time(connection)
        parts.append(f"RTT {rtt * 1000:.1f} ms" if rtt is not None else "RTT not measured")
    return ", ".join(parts)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _call_soon(callback: Callable[[], None]) -> None:
    asyncio.get_running_loop().call_soon(callback)


def _association_stats(sctp: SctpTransport) -> dict[str, Any]:
    """The association's counters as plain values."""
    stats = sctp.association.stats
    association = sctp.association
    out: dict[str, Any] = {
        "state": association.state.name.lower(),
        "interleaving": association.interleaving,
        "zero_checksum": association.zero_checksum,
    }
    for name in getattr(stats, "__dataclass_fields__", {}):
        value = getattr(stats, name)
        out[name] = dict(value) if isinstance(value, Counter) else value
    return out


#: our DTLS engine's states as RTCDtlsTransportState names them
_DTLS_STATES = {
    "new": "new",
    "handshaking": "connecting",
    "connected": "connected",
    "closed": "closed",
    "failed": "failed",
}


def _certificate_stats(stats_id: str, der: bytes) -> CertificateStats:
    return CertificateStats(
        id=stats_id,
        fingerprint=fingerprint_of_der(der, "sha-256"),
        fingerprint_algorithm="sha-256",
        base64_certificate=base64.b64encode(der).decode("ascii"),
    )


def _candidate_stats(stats_id: str, candidate: Any, is_remote: bool) -> IceCandidateStats:
    """An aioice Candidate as RTCIceCandidateStats."""
    return IceCandidateStats(
        id=stats_id,
        is_remote=is_remote,
        address=candidate.host,
        port=candidate.port,
        protocol=candidate.transport.lower(),
        candidate_type=candidate.type,
        priority=candidate.priority,
        foundation=candidate.foundation,
    )


def _ssrc_kinds(description: SessionDescription | None) -> dict[int, str]:
    """SSRC -> "audio"/"video" from a description's a=ssrc lines."""
    if description is None:
        return {}
    return {s.ssrc: m.kind for m in description.media for s in m.ssrcs}


def _require_fingerprint(description: SessionDescription) -> None:
    if not description.fingerprints:
        raise SdpError("remote description has no a=fingerprint: refusing an unauthenticated peer")


def _as_description(value: object, expected: str, what: str) -> SessionDescription:
    """What ``connect()`` or ``create_answer()`` was given, as a SessionDescription of
    type ``expected``; SdpError that says what to pass for anything else."""
    hint = (
        f"{what} takes the remote {expected}: a SessionDescription, its SDP text "
        f'("v=0 ..."), or {{"type": "{expected}", "sdp": "..."}} as JSON text or a dict'
    )
    if isinstance(value, SessionDescription):
        description = value
    elif isinstance(value, (str, bytes)):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise SdpError(f"the description is not UTF-8 text; {hint}") from None
        start = value.lstrip()[:2]
        if start.startswith("{"):
            description = SessionDescription.from_json(value)
        elif start == "v=":
            # SDP does not say whether it is an offer or an answer: the caller's role does
            description = SessionDescription.from_sdp(value, expected)
        else:
            raise SdpError(f"the text is neither SDP nor JSON; {hint}")
    elif isinstance(value, Mapping):
        kind, sdp = value.get("type"), value.get("sdp")
        if not isinstance(kind, str) or not isinstance(sdp, str):
            raise SdpError(f"the dict needs string fields 'type' and 'sdp'; {hint}")
        description = SessionDescription.from_sdp(sdp, kind)
    else:
        raise SdpError(f"got a {type(value).__name__}; {hint}")
    if description.type != expected:
        raise SdpError(f"{what} got an {description.type}; {hint}")
    _require_fingerprint(description)
    return description


def _candidates_complete(description: SessionDescription) -> bool:
    """Whether a remote description's candidates are all there is: it says
    a=end-of-candidates, or it does not support trickle (RFC 8840 4.1.2: no
    a=ice-options:trickle), so nothing will be trickled after it."""
    return description.end_of_candidates or "trickle" not in description.ice_options


def _trickled(description: SessionDescription, trickle: bool) -> SessionDescription:
    """Our description as a trickling peer sends it: no candidates (the events carry
    them), a=ice-options:trickle, no a=end-of-candidates."""
    if not trickle:
        return description
    options = list(description.ice_options)
    if "trickle" not in options:
        options.append("trickle")
    return dataclasses.replace(
        description, candidates=[], end_of_candidates=False, ice_options=options
    )


def _transport_mid(description: SessionDescription | None) -> tuple[str | None, int | None]:
    """sdpMid and sdpMLineIndex of the m-line that carries the transport (the BUNDLE
    tag), for the candidates we trickle; (None, None) with no m-line."""
    section = description.transport_section if description is not None else None
    if description is None or section is None:
        return None, None
    return section.mid, description.media.index(section)


def _check_packet_type(packet: object, what: str) -> None:
    """Turn a protect() TypeError caused by the caller's argument into MalformedPacket."""
    if not isinstance(packet, (bytes, bytearray)):
        raise MalformedPacket(
            f"{what}() takes the packet as bytes or bytearray, not {type(packet).__name__}"
        )


#: the largest UDP payload over IPv4 (65535 - 20 - 8): no datagram we send exceeds it
MAX_DATAGRAM = 65507
#: the smallest ``mtu``: the DTLS engine cannot fit its handshake records in less
MIN_MTU = 150
#: the largest SRTP ``replay_window``: its bitmap is shifted per packet (libsrtp: 2^15 - 1)
MAX_REPLAY_WINDOW = 32768
#: what ``media_kinds`` may name: one m-line each in our offers
MEDIA_KINDS = ("audio", "video")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_options(
    *,
    certificate: object,
    ice_servers: object,
    srtp_profiles: object,
    mtu: object,
    handshake_timeout: object,
    ice_timeout: object,
    retransmit_timeout: object,
    first_flight_timeout: object,
    replay_window: object,
    host_addresses: object,
    use_ice: object,
    media_kinds: object,
) -> None:
    """SecurePeer's options within their documented limits, else ConfigurationError:
    found at construction, never as a stray ValueError or a hang in connect()."""
    if certificate is not None and not isinstance(certificate, Certificate):
        raise ConfigurationError("certificate must be a webrtc_secure.Certificate (or None)")
    if ice_servers is not None:
        if isinstance(ice_servers, (str, bytes)) or not isinstance(ice_servers, Sequence):
            raise ConfigurationError("ice_servers must be a list of URLs, e.g. ['stun:host:3478']")
        ice.ice_server_options(ice_servers)  # ConfigurationError for a bad URL
    if isinstance(srtp_profiles, (str, bytes)) or not isinstance(srtp_profiles, Sequence):
        raise ConfigurationError("srtp_profiles must be a sequence of srtp.Profile values")
    for profile in srtp_profiles:
        if not isinstance(profile, Profile):
            raise ConfigurationError(f"srtp_profiles: {profile!r} is not an srtp.Profile")
    if len(set(srtp_profiles)) != len(srtp_profiles):
        raise ConfigurationError("srtp_profiles lists a profile twice")
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not MIN_MTU <= mtu <= MAX_DATAGRAM:
        raise ConfigurationError(f"mtu must be an int from {MIN_MTU} to {MAX_DATAGRAM} octets")
    if not _is_number(ice_timeout) or ice_timeout <= 0:  # type: ignore[operator]
        raise ConfigurationError("ice_timeout must be a positive number of seconds")
    for name, value in (
        ("handshake_timeout", handshake_timeout),
        ("first_flight_timeout", first_flight_timeout),
    ):
        if value is not None and (not _is_number(value) or value <= 0):  # type: ignore[operator]
            raise ConfigurationError(f"{name} must be a positive number of seconds, or None")
    if retransmit_timeout is not None and (
        not _is_number(retransmit_timeout)
        or not 0 < retransmit_timeout <= DEFAULT_MAX_RETRANSMIT_TIMEOUT  # type: ignore[operator]
    ):
        raise ConfigurationError(
            "retransmit_timeout must be above 0 and at most "
            f"{DEFAULT_MAX_RETRANSMIT_TIMEOUT:g} s (the timer's cap), or None"
        )
    if (
        not isinstance(replay_window, int)
        or isinstance(replay_window, bool)
        or not 1 <= replay_window <= MAX_REPLAY_WINDOW
    ):
        raise ConfigurationError(f"replay_window must be an int from 1 to {MAX_REPLAY_WINDOW}")
    if host_addresses is not None:
        if isinstance(host_addresses, (str, bytes)) or not isinstance(host_addresses, Sequence):
            raise ConfigurationError(
                "host_addresses must be a list of IP addresses, e.g. ['127.0.0.1']"
            )
        if not host_addresses:
            raise ConfigurationError("host_addresses is empty: give an address, or None")
        for address in host_addresses:
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                raise ConfigurationError(
                    f"host_addresses: {address!r} is not an IP address (names are not resolved)"
                ) from None
            if parsed.is_unspecified or parsed.is_multicast:
                raise ConfigurationError(f"host_addresses: {address} cannot be a candidate")
    if not isinstance(use_ice, bool):
        raise ConfigurationError("use_ice must be True or False")
    if isinstance(media_kinds, (str, bytes)) or not isinstance(media_kinds, Sequence):
        raise ConfigurationError("media_kinds must be a sequence such as ('audio', 'video')")
    for kind in media_kinds:
        if kind not in MEDIA_KINDS:
            raise ConfigurationError(f"media_kinds: {kind!r} is not one of {MEDIA_KINDS}")


__all__ = [
    "DTLS_SRTP_LABEL",
    "SCTP_CLOSE_TIMEOUT",
    "DtlsError",
    "PeerState",
    "SecurePeer",
    "SecureProtocol",
]
