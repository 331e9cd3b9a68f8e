"""SecurePeer: an awaitable, authenticated and encrypted WebRTC peer connection.

``await peer.connect(remote)`` runs ICE (aioice), the DTLS handshake (our engine,
role from ``a=setup``), the certificate fingerprint check, and keys SRTP from the
DTLS exporter (RFC 5764 4.2). Everything after that is events::

    peer.on("message", ...)   application data over DTLS (the data channel)
    peer.on("rtp", ...)       authenticated, decrypted RTP packets
    peer.on("rtcp", ...)      authenticated, decrypted RTCP packets

Inbound datagrams are demultiplexed on their first byte (RFC 7983) by
:class:`SecureProtocol`, which runs unchanged over a plain UDP socket or over an
ICE connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from webrtc_secure import ice
from webrtc_secure.certificate import Certificate
from webrtc_secure.demux import PacketKind, classify
from webrtc_secure.description import (
    SessionDescription,
    SetupRole,
    create_answer,
    create_offer,
    is_dtls_client,
)
from webrtc_secure.dtls import AlertDescription, DtlsConnection
from webrtc_secure.dtls.connection import DEFAULT_DTLS_VERSIONS, parse_dtls_versions
from webrtc_secure.dtls_transport import DtlsTransport
from webrtc_secure.errors import (
    AlertReceived,
    ConnectionClosed,
    DtlsError,
    FingerprintMismatch,
    IceError,
    SdpError,
    WebrtcSecureError,
)
from webrtc_secure.srtp import DEFAULT_PROFILES, Profile, SrtpSession

logger = logging.getLogger(__name__)

DTLS_SRTP_LABEL = "EXTRACTOR-dtls_srtp"
#: DTLS datagrams kept while connect() has not started the engine yet
MAX_EARLY_DTLS = 16


class PeerState(str, Enum):
    NEW = "new"
    CHECKING = "checking"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(slots=True)
class PeerStats:
    """Counters a user or a test can read through ``peer.stats()``."""

    datagrams_in: int = 0
    datagrams_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    rtp_in: int = 0
    rtp_out: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    ice_seconds: float | None = None
    dtls_seconds: float | None = None
    connect_seconds: float | None = None


class SecureProtocol(asyncio.DatagramProtocol):
    """RFC 7983 demultiplexer: DTLS to the DTLS engine, SRTP/SRTCP to the SRTP session."""

    def __init__(self, peer: SecurePeer) -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.peer._datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("transport error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer._transport_lost(exc)


class SecurePeer(AsyncIOEventEmitter):
    """One secure peer connection. See the module docstring for the flow.

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
    """

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
        dtls_versions: Sequence[int | str] = DEFAULT_DTLS_VERSIONS,
    ) -> None:
        super().__init__()
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
        self._udp_remote: tuple[str, int] | None = None
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
        #: where _send_datagram hands a datagram: the ICE transport's sendto, or
        #: _udp_sendto; None until the path is known and from its loss on
        self._sendto: Callable[[bytes], None] | None = None
        self._local: SessionDescription | None = None
        self._controlling: bool | None = None
        self._closing = False
        self._connect_started = self._ice_done = 0.0
        self._shutdown_task: asyncio.Future[None] | None = None
        self._shutdown_done: asyncio.Future[None] | None = None
        #: pyee (>= 11) keeps {event: {key: handler to call}} in _events and runs a
        #: handler with _emit_run; _deliver_media relies on both, else uses emit()
        self._direct_dispatch = isinstance(vars(self).get("_events"), dict) and callable(
            getattr(self, "_emit_run", None)
        )

    # --- state and stats ----------------------------------------------------------------

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
        """A snapshot of counters: datagrams, drops by reason, media, DTLS and timings."""
        s = self._stats
        dropped = dict(s.dropped)
        if self._ice is not None:
            # what the ICE layer refused (wrong or unvalidated source, early overflow,
            # suppressed STUN errors): never reached the counters above
            for reason, count in self._ice.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + count
        out: dict[str, Any] = {
            "state": self._state.value,
            "datagrams_in": s.datagrams_in,
            "datagrams_out": s.datagrams_out,
            "dropped": dropped,
            "rtp_in": s.rtp_in,
            "rtp_out": s.rtp_out,
            "rtcp_in": s.rtcp_in,
            "rtcp_out": s.rtcp_out,
            "messages_in": s.messages_in,
            "messages_out": s.messages_out,
            "ice_seconds": s.ice_seconds,
            "dtls_seconds": s.dtls_seconds,
            "connect_seconds": s.connect_seconds,
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
        return out

    def _set_state(self, state: PeerState) -> None:
        if state != self._state:
            logger.debug("peer state %s -> %s", self._state.value, state.value)
            self._state = state
            self.emit("state", state.value)

    # --- signaling -----------------------------------------------------------------------

    async def create_offer(self) -> SessionDescription:
        """Gather candidates and describe this peer as the offerer (actpass, controlling)."""
        await self._ensure_transport(controlling=True)
        self._local = self._describe("offer", SetupRole.ACTPASS)
        return self._local

    async def create_answer(self, remote_offer: SessionDescription) -> SessionDescription:
        """Answer an offer: ICE-controlled, DTLS role chosen as browsers do."""
        _require_fingerprint(remote_offer)
        await self._ensure_transport(controlling=False)
        setup = SetupRole.answer_to(remote_offer.setup)
        self._local = self._describe("answer", setup, remote_offer)
        return self._local

    async def _ensure_transport(self, controlling: bool) -> None:
        if self._ice is not None or self._transport is not None:
            return
        self._controlling = controlling
        if self.use_ice:
            self._ice = ice.create_ice_connection(
                controlling=controlling, ice_servers=self._ice_servers
            )
            await ice.gather_candidates(self._ice, self.host_addresses)
            return
        host = (self.host_addresses or ["127.0.0.1"])[0]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: SecureProtocol(self), local_addr=(host, 0)
        )
        self._transport = transport
        ice.limit_receive_buffer(transport)
        self._udp_candidate = ice.host_candidate(transport.get_extra_info("sockname"))

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
        if kind == "offer":
            return create_offer(
                ice_ufrag=ufrag,
                ice_pwd=pwd,
                fingerprints=fingerprints,
                candidates=candidates,
                setup=setup,
                kinds=self.media_kinds,
            )
        assert remote is not None
        return create_answer(
            remote,
            ice_ufrag=ufrag,
            ice_pwd=pwd,
            fingerprints=fingerprints,
            candidates=candidates,
            setup=setup,
        )

    # --- connect -------------------------------------------------------------------------

    async def connect(self, remote: SessionDescription) -> None:
        """ICE, then DTLS, then the fingerprint check, then SRTP keys.

        Raises IceError, HandshakeTimeout, FingerprintMismatch, HandshakeFailure or
        AlertReceived (all WebrtcSecureError) and leaves the peer ``failed``.
        """
        if self._local is None:
            raise SdpError("create an offer or answer before connect()")
        _require_fingerprint(remote)
        started = time.monotonic()
        try:
            self._set_state(PeerState.CHECKING)
            if self.use_ice:
                await self._connect_ice(remote)
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
            if exc.alert == AlertDescription.BAD_CERTIFICATE:
                # the peer hashed our certificate and found another fingerprint in its
                # copy of our description: the same man-in-the-middle, seen from there
                mismatch = FingerprintMismatch(
                    "the peer refused our certificate (bad_certificate): the description "
                    "it received does not carry our fingerprint",
                    exc.alert,
                )
                await self._fail(mismatch)
                raise mismatch from exc
            await self._fail(exc)
            raise
        except (WebrtcSecureError, asyncio.CancelledError) as exc:
            await self._fail(exc if isinstance(exc, WebrtcSecureError) else None)
            raise

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
            self._srtp = SrtpSession.from_keying_material(
                material,
                profile,
                self._dtls.connection.is_client,
                replay_window=self.replay_window,
            )
        self._deliver("datachannel-ready")
        if profile is not None:
            self._deliver("media-ready", profile)

    def _deliver(self, event: str, *args: Any) -> None:
        """Emit to the user's handlers; a handler that raises is logged and reported as
        an "error" event, and never tears down the transport or the engine."""
        try:
            self.emit(event, *args)
        except Exception as exc:
            logger.exception("handler for %r raised", event)
            self._emit_error(exc)

    async def _connect_ice(self, remote: SessionDescription) -> None:
        try:
            self._transport = await asyncio.wait_for(
                ice.connect_ice(
                    self._ice,
                    remote.ice_ufrag,
                    remote.ice_pwd,
                    remote.candidates,
                    lambda: SecureProtocol(self),
                ),
                self.ice_timeout,
            )
        except asyncio.TimeoutError:
            raise IceError(f"ICE did not connect within {self.ice_timeout:g} s") from None
        if not self._transport.is_closing():  # ICE may have closed under us already
            self._sendto = self._transport.sendto

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
        )
        self._dtls = DtlsTransport(
            connection,
            self._send_datagram,
            on_data=self._on_message,
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

    def send(self, data: bytes) -> None:
        """Send one message over DTLS application data."""
        if self._dtls is None or self._state != PeerState.CONNECTED:
            raise ConnectionClosed("peer is not connected")
        self._dtls.send(data)
        self._stats.messages_out += 1

    def send_rtp(self, packet: bytes) -> None:
        """Protect an RTP packet with SRTP and send it.

        Raises ConnectionClosed unless the peer is connected with SRTP keys."""
        srtp = self._srtp
        if srtp is None:
            raise ConnectionClosed("media is not ready (no SRTP keys)")
        self._send_datagram(srtp.protect(packet))
        self._stats.rtp_out += 1

    def send_rtcp(self, packet: bytes) -> None:
        """Protect an RTCP packet with SRTCP and send it.

        Raises ConnectionClosed unless the peer is connected with SRTP keys."""
        srtp = self._srtp
        if srtp is None:
            raise ConnectionClosed("media is not ready (no SRTP keys)")
        self._send_datagram(srtp.protect_rtcp(packet))
        self._stats.rtcp_out += 1

    def _send_datagram(self, data: bytes) -> None:
        # best effort, as UDP: a datagram with no path (not yet, or no longer) is dropped
        sendto = self._sendto
        if sendto is not None:
            sendto(data)
            self._stats.datagrams_out += 1

    def _udp_sendto(self, data: bytes) -> None:
        transport = self._transport
        # a closed socket would report every later send as an error
        if transport is not None and not transport.is_closing():
            transport.sendto(data, self._udp_remote)

    def _datagram_received(self, data: bytes, addr: Any = None) -> None:
        stats = self._stats
        stats.datagrams_in += 1
        # only plain UDP knows its remote address (ICE: aioice owns the 5-tuple)
        if self._udp_remote is not None and addr != self._udp_remote:
            stats.dropped["unexpected_source"] += 1
            return
        kind = classify(data)
        if kind is PacketKind.RTP or kind is PacketKind.RTCP:
            self._media_received(data, kind)
        elif kind is PacketKind.DTLS:
            if self._dtls is not None:
                self._dtls.datagram_received(data)
            elif len(self._early_dtls) < MAX_EARLY_DTLS:
                self._early_dtls.append((data, addr))
            else:
                stats.dropped["dtls_before_handshake"] += 1
        else:
            stats.dropped[f"unknown_{kind.name.lower()}"] += 1

    def _media_received(self, data: bytes, kind: PacketKind) -> None:
        srtp = self._srtp
        if srtp is None:
            self._stats.dropped["media_before_keys"] += 1
            return
        try:
            if kind is PacketKind.RTP:
                packet = srtp.unprotect(data)
                self._stats.rtp_in += 1
                event = "rtp"
            else:
                packet = srtp.unprotect_rtcp(data)
                self._stats.rtcp_in += 1
                event = "rtcp"
        except WebrtcSecureError as exc:
            # authentication, replay or parse failure: counted, never delivered
            self._stats.dropped[f"{kind.name.lower()}_{type(exc).__name__}"] += 1
            return
        self._deliver_media(event, packet)

    def _deliver_media(self, event: str, packet: bytes) -> None:
        """``_deliver`` for the per-packet events, without pyee's ``emit``.

        ``emit`` takes a lock, builds an empty default dict and a list, and runs each
        handler through a wrapper: about 2 us per packet, more than the rest of the
        delivery. This reads pyee's registry directly (a snapshot of the handlers, so
        that one may add or remove handlers, or be a ``once``). A handler that raises
        is logged and reported as an "error" event, as by ``_deliver``; one that
        returns an awaitable (an ``async def`` handler) is handed to pyee's own
        runner, which schedules it and reports its failure as "error".
        """
        if not self._direct_dispatch:
            self._deliver(event, packet)
            return
        handlers = self._events.get(event)
        if not handlers:
            return
        for handler in tuple(handlers.values()):
            try:
                result = handler(packet)
            except Exception as exc:
                logger.exception("handler for %r raised", event)
                self._emit_error(exc)
                continue
            if result is not None:
                self._emit_run(_Returning(result), (), {})

    def _on_message(self, data: bytes) -> None:
        self._stats.messages_in += 1
        self._deliver("message", data)

    # --- teardown -----------------------------------------------------------------------

    def _on_dtls_closed(self, error: WebrtcSecureError | None) -> None:
        if self._closing or self._state in (PeerState.CLOSED, PeerState.FAILED):
            return
        if self._state != PeerState.CONNECTED:
            return  # connect() sees the error through the handshake and fails
        if error is not None:
            self._emit_error(error)
        self._shutdown_task = asyncio.ensure_future(
            self._shutdown(PeerState.FAILED if error else PeerState.CLOSED)
        )

    def _transport_lost(self, exc: Exception | None) -> None:
        self._sendto = None
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

    async def close(self) -> None:
        """Send close_notify, close ICE and cancel every task. Idempotent."""
        await self._shutdown(PeerState.CLOSED)

    async def _shutdown(self, final: PeerState) -> None:
        if self._closing:
            # another shutdown (e.g. the peer's close_notify) is under way: wait for it
            if self._shutdown_done is not None:
                await asyncio.shield(self._shutdown_done)
            return
        self._closing = True
        self._shutdown_done = asyncio.get_running_loop().create_future()
        try:
            await self._teardown(final)
        finally:
            self._shutdown_done.set_result(None)

    async def _teardown(self, final: PeerState) -> None:
        if self._dtls is not None:
            self._dtls.close()  # close_notify goes out before the transport closes
        self._srtp = self._sendto = None
        if self._transport is not None:
            self._transport.close()
        if self._ice is not None:
            with contextlib.suppress(Exception):
                await self._ice.close()
        self._set_state(final)
        self.emit("closed")

    async def __aenter__(self) -> SecurePeer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _Returning:
    """A callable that returns what a handler already returned, for pyee's runner."""

    __slots__ = ("result",)

    def __init__(self, result: object) -> None:
        self.result = result

    def __call__(self) -> object:
        return self.result


def _require_fingerprint(description: SessionDescription) -> None:
    if not description.fingerprints:
        raise SdpError("remote description has no a=fingerprint: refusing an unauthenticated peer")


__all__ = ["DTLS_SRTP_LABEL", "DtlsError", "PeerState", "SecurePeer", "SecureProtocol"]
