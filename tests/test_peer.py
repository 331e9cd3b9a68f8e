"""SecurePeer end to end on loopback: ICE (aioice) and plain UDP, both offer/answer
directions, data (a negotiated data channel) and media both ways, tampering, loss,
timeouts and teardown. tests/test_datachannel_peer.py covers the data channels."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import random
import struct
from collections.abc import Callable
from typing import Any

import pytest

from webrtc_secure import (
    Certificate,
    Fingerprint,
    FingerprintMismatch,
    HandshakeTimeout,
    IceError,
    PeerState,
    SdpError,
    SecurePeer,
    SessionDescription,
    SetupRole,
)
from webrtc_secure.errors import ConnectionClosed, InvalidChannelState
from webrtc_secure.srtp import Profile

pytestmark = pytest.mark.both_loops

HOST = ["127.0.0.1"]


def _rtp(seq: int, ssrc: int = 0xABCD) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes([seq % 256]) * 160


def _rtcp(ssrc: int = 0xABCD) -> bytes:
    return struct.pack("!BBHI", 0x80, 200, 6, ssrc) + bytes(20)


async def _connect(
    offerer: SecurePeer,
    answerer: SecurePeer,
    tamper: Callable[[SessionDescription], SessionDescription] | None = None,
    tamper_offer: Callable[[SessionDescription], SessionDescription] | None = None,
) -> list[BaseException | None]:
    offer = await offerer.create_offer()
    delivered_offer = tamper_offer(offer) if tamper_offer else offer
    answer = await answerer.create_answer(delivered_offer)
    delivered_answer = tamper(answer) if tamper else answer
    results = await asyncio.gather(
        offerer.connect(delivered_answer),
        answerer.connect(delivered_offer),
        return_exceptions=True,
    )
    return [r if isinstance(r, BaseException) else None for r in results]


class Collector:
    """What one peer received; ``channel`` is a negotiated data channel (id 0) that both
    sides create before connect()."""

    def __init__(self, peer: SecurePeer) -> None:
        self.messages: list[str | bytes] = []
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.closed = asyncio.Event()
        self.states: list[str] = []
        self.channel = peer.create_data_channel("test", negotiated=True, id=0)
        self.channel.on("message", self.messages.append)
        peer.on("rtp", self.rtp.append)
        peer.on("rtcp", self.rtcp.append)
        peer.on("closed", self.closed.set)
        peer.on("state", self.states.append)


async def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("use_ice", [True, False], ids=["ice", "udp"])
@pytest.mark.parametrize("offer_setup", ["actpass", "active", "passive"])
async def test_data_and_media_both_ways(use_ice: bool, offer_setup: str) -> None:
    a = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    b = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    ca, cb = Collector(a), Collector(b)
    ready: list[Profile] = []
    a.on("media-ready", ready.append)

    def setup(offer: SessionDescription) -> SessionDescription:
        return dataclasses.replace(offer, setup=SetupRole(offer_setup))

    try:
        errors = await _connect(a, b, tamper_offer=setup if offer_setup != "actpass" else None)
        assert errors == [None, None]
        assert a.state == b.state == PeerState.CONNECTED
        roles = {a.stats()["dtls"]["role"], b.stats()["dtls"]["role"]}
        assert roles == {"client", "server"}
        # the answerer is the DTLS client unless the offer insisted on being active
        assert b.stats()["dtls"]["role"] == ("server" if offer_setup == "active" else "client")
        assert ready and ready[0] == a.srtp_profile
        await asyncio.wait_for(asyncio.gather(ca.channel.wait_open(), cb.channel.wait_open()), 5)
        for i in range(5):
            ca.channel.send(b"a%d" % i)
            cb.channel.send(b"b%d" % i)
            a.send_rtp(_rtp(i, 0x1111))
            b.send_rtp(_rtp(i, 0x2222))
        a.send_rtcp(_rtcp(0x1111))
        b.send_rtcp(_rtcp(0x2222))
        await _wait_for(
            lambda: (
                len(cb.messages) == 5
                and len(ca.messages) == 5
                and len(cb.rtp) == 5
                and len(ca.rtp) == 5
                and ca.rtcp
                and cb.rtcp
            )
        )
        assert cb.messages == [b"a%d" % i for i in range(5)]
        assert ca.rtp == [_rtp(i, 0x2222) for i in range(5)]
        assert cb.rtcp == [_rtcp(0x1111)]
        stats = a.stats()
        assert stats["dropped"] == {} and stats["rtp_in"] == 5
        assert stats["ice_seconds"] is not None and stats["dtls_seconds"] is not None
        assert ca.states[:3] == ["checking", "connecting", "connected"]
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("use_ice", [True, False], ids=["ice", "udp"])
async def test_close_from_either_side_is_seen_by_the_other(use_ice: bool) -> None:
    for closer_index in (0, 1):
        peers = [SecurePeer(host_addresses=HOST, use_ice=use_ice) for _ in range(2)]
        collectors = [Collector(p) for p in peers]
        assert await _connect(*peers) == [None, None]
        closer, other = peers[closer_index], peers[1 - closer_index]
        await closer.close()
        await asyncio.wait_for(collectors[1 - closer_index].closed.wait(), 5)
        assert other.state == PeerState.CLOSED and closer.state == PeerState.CLOSED
        with pytest.raises(InvalidChannelState):
            collectors[1 - closer_index].channel.send(b"too late")
        assert collectors[1 - closer_index].channel.ready_state == "closed"
        await other.close()


def _third_party_fingerprint(description: SessionDescription) -> SessionDescription:
    mallory = Certificate.generate()
    return dataclasses.replace(
        description, fingerprints=[Fingerprint.parse(f"sha-256 {mallory.fingerprint()}")]
    )


@pytest.mark.parametrize("versions", [("1.3", "1.2"), ("1.2",)], ids=["dtls13", "dtls12"])
@pytest.mark.parametrize("tampered", ["offer", "answer", "both"])
async def test_tampered_fingerprint_fails_both_sides_and_delivers_nothing(
    tampered: str, versions: tuple[str, ...]
) -> None:
    a = SecurePeer(host_addresses=HOST, dtls_versions=versions)
    b = SecurePeer(host_addresses=HOST, dtls_versions=versions)
    ca, cb = Collector(a), Collector(b)
    emitted: list[BaseException] = []
    b.on("error", emitted.append)
    try:
        errors = await _connect(
            a,
            b,
            tamper=_third_party_fingerprint if tampered in ("answer", "both") else None,
            tamper_offer=_third_party_fingerprint if tampered in ("offer", "both") else None,
        )
        if tampered == "answer" and versions[0] == "1.3":
            # the offerer (DTLS server) refuses the answerer's certificate. A DTLS 1.3
            # client is connected once it sent its Finished (RFC 9147 5.8.4), so its
            # connect() may return first; the server's bad_certificate then fails it
            # with the error DTLS 1.2 raises from connect(), as an "error" event
            await asyncio.wait_for(cb.closed.wait(), 5)
            assert errors[1] is None or isinstance(errors[1], FingerprintMismatch), errors
            if errors[1] is None:
                assert len(emitted) == 1 and isinstance(emitted[0], FingerprintMismatch)
                assert cb.states[-2:] == ["connected", "failed"]
            errors = [errors[0], errors[1] or emitted[0]]
        assert all(isinstance(e, FingerprintMismatch) for e in errors), errors
        assert a.state == b.state == PeerState.FAILED
        assert not (ca.messages or ca.rtp or cb.messages or cb.rtp)
        with pytest.raises(InvalidChannelState):
            ca.channel.send(b"x")
        assert ca.channel.ready_state == "closed"
        with pytest.raises(ConnectionClosed):
            a.send_rtp(_rtp(1))
        with pytest.raises(ConnectionClosed):
            b.send_rtp(_rtp(1))
    finally:
        await a.close()
        await b.close()


async def test_description_without_fingerprint_is_refused() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    try:
        offer = await a.create_offer()
        with pytest.raises(SdpError):
            stripped = dataclasses.replace(offer, fingerprints=[])
            await b.create_answer(stripped)
    finally:
        await a.close()
        await b.close()


async def test_connection_comes_up_through_a_lossy_reordering_path() -> None:
    rng = random.Random(7)
    a = SecurePeer(host_addresses=HOST, use_ice=False, retransmit_timeout=0.05)
    b = SecurePeer(host_addresses=HOST, use_ice=False, retransmit_timeout=0.05)
    loop = asyncio.get_running_loop()
    dropped = 0

    def lossy(peer: SecurePeer) -> None:
        real = peer._send_datagram

        def send(data: bytes) -> None:
            nonlocal dropped
            if rng.random() < 0.3:
                dropped += 1
                return
            loop.call_later(rng.uniform(0, 0.02), real, data)  # reorders

        peer._send_datagram = send  # type: ignore[method-assign]

    lossy(a)
    lossy(b)
    try:
        assert await _connect(a, b) == [None, None]
        assert dropped > 0
        assert a.stats()["dtls"]["retransmissions"] + b.stats()["dtls"]["retransmissions"] > 0
    finally:
        await a.close()
        await b.close()


async def test_handshake_timeout_when_the_remote_never_answers() -> None:
    a = SecurePeer(
        host_addresses=HOST, use_ice=False, handshake_timeout=0.5, retransmit_timeout=0.1
    )
    b = SecurePeer(host_addresses=HOST, use_ice=False)
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)  # b never calls connect(): silence
        with pytest.raises(HandshakeTimeout):
            await a.connect(answer)
        assert a.state == PeerState.FAILED
    finally:
        await a.close()
        await b.close()


async def test_ice_timeout_when_the_remote_never_answers() -> None:
    a = SecurePeer(host_addresses=HOST, ice_timeout=1.0)
    b = SecurePeer(host_addresses=HOST)
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        await b.close()  # b's sockets are gone: no connectivity check succeeds
        with pytest.raises(IceError):
            await a.connect(answer)
        assert a.state == PeerState.FAILED
    finally:
        await a.close()


async def test_peer_that_vanishes_leaves_us_able_to_send_and_close() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    ca, _ = Collector(a), Collector(b)
    assert await _connect(a, b) == [None, None]
    await asyncio.wait_for(ca.channel.wait_open(), 5)
    # b disappears without a close_notify
    assert b._transport is not None
    b._transport.close()
    await b._ice.close()
    ca.channel.send(b"into the void")
    a.send_rtp(_rtp(1))
    await asyncio.wait_for(a.close(), 5)
    assert a.state == PeerState.CLOSED
    b._closing = True  # its transport is already gone; nothing left to close


async def test_async_context_manager_closes() -> None:
    async with SecurePeer(host_addresses=HOST) as a, SecurePeer(host_addresses=HOST) as b:
        assert await _connect(a, b) == [None, None]
    assert a.state == b.state == PeerState.CLOSED


async def test_description_round_trips_through_sdp_and_json() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    try:
        offer = await a.create_offer()
        via_sdp = SessionDescription.from_sdp(offer.to_sdp(), "offer")
        answer = await b.create_answer(via_sdp)
        via_json = SessionDescription.from_json(answer.to_json())
        results: list[Any] = await asyncio.gather(a.connect(via_json), b.connect(via_sdp))
        assert results == [None, None]
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("use_ice", [True, False], ids=["ice", "udp"])
async def test_first_message_after_handshake_is_delivered_in_connected_state(
    use_ice: bool,
) -> None:
    """The DTLS client's handshake completes while the server's first data may already
    be in the same datagram batch: handlers must see a connected, keyed peer."""
    for _ in range(5):
        a = SecurePeer(host_addresses=HOST, use_ice=use_ice)
        b = SecurePeer(host_addresses=HOST, use_ice=use_ice)
        echoes: list[str | bytes] = []
        ca, cb = Collector(a), Collector(b)
        cb.channel.on("message", cb.channel.send)  # echo from inside the handler
        ca.channel.on("message", echoes.append)
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        await asyncio.gather(a.connect(answer), b.connect(offer))
        await asyncio.wait_for(ca.channel.wait_open(), 5)
        ca.channel.send(b"first")
        await _wait_for(lambda echoes=echoes: echoes == [b"first"])
        await a.close()
        await b.close()


async def test_a_raising_handler_does_not_stop_reception() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    received: list[str | bytes] = []
    errors: list[BaseException] = []
    ca, cb = Collector(a), Collector(b)

    def fragile(data: str | bytes) -> None:
        received.append(data)
        if data == b"boom":
            raise RuntimeError("user handler bug")

    cb.channel.on("message", fragile)
    cb.channel.on("error", errors.append)
    try:
        assert await _connect(a, b) == [None, None]
        await asyncio.wait_for(ca.channel.wait_open(), 5)
        ca.channel.send(b"boom")
        ca.channel.send(b"after")
        await _wait_for(lambda: received == [b"boom", b"after"])
        assert isinstance(errors[0], RuntimeError)
        assert b.state == PeerState.CONNECTED
    finally:
        await a.close()
        await b.close()


def _ice_idle(peer: SecurePeer) -> bool:
    """No task of the peer's ICE connection is still running."""
    connection = peer._ice
    assert connection is not None
    tasks = [connection.checks_task, connection._query_consent_task]
    tasks += [pair.task for pair in connection._check_list]
    return all(task is None or task.done() for task in tasks)


@pytest.mark.parametrize("offerer_is_dtls_client", [False, True], ids=["answerer", "offerer"])
async def test_ice_proceeds_on_nomination_and_keeps_aioice_running_until_close(
    offerer_is_dtls_client: bool,
) -> None:
    """Both roles: connect() goes on once ICE has a nominated pair (the check list
    outcome), aioice's own connect() ends in its supervised task and starts consent
    freshness (RFC 7675), and close() leaves no task and no unretrieved exception."""
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    ca, cb = Collector(a), Collector(b)
    nominated_at_handshake: list[bool] = []
    for peer in (a, b):

        def on_state(state: str, peer: SecurePeer = peer) -> None:
            if state == "connecting":  # ICE is done, DTLS starts now
                assert peer._ice is not None
                nominated_at_handshake.append(peer._ice.nominated_pair is not None)

        peer.on("state", on_state)

    def active(offer: SessionDescription) -> SessionDescription:
        return dataclasses.replace(offer, setup=SetupRole.ACTIVE)

    try:
        tamper = active if offerer_is_dtls_client else None
        assert await _connect(a, b, tamper_offer=tamper) == [None, None]
        assert nominated_at_handshake == [True, True]
        assert a.stats()["dtls"]["role"] == ("client" if offerer_is_dtls_client else "server")
        for peer in (a, b):
            assert peer._ice is not None and peer._ice.checks_task is not None
            await asyncio.wait_for(asyncio.wait([peer._ice.checks_task]), 5)
            assert peer._ice.checks_task.exception() is None
            consent = peer._ice._query_consent_task
            assert consent is not None and not consent.done()
        await asyncio.wait_for(ca.channel.wait_open(), 5)
        ca.channel.send(b"after ICE settled")
        await _wait_for(lambda: cb.messages == [b"after ICE settled"])
    finally:
        await a.close()
        await b.close()
        loop.set_exception_handler(None)
    assert _ice_idle(a) and _ice_idle(b)
    assert loop_errors == []


async def test_close_right_after_connect_stops_the_ice_checks_task() -> None:
    """The checks task may still be in aioice's pacing sleep when the user closes."""
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    try:
        assert await _connect(a, b) == [None, None]
    finally:
        await a.close()
        await b.close()
        loop.set_exception_handler(None)
    for peer in (a, b):
        assert _ice_idle(peer)
        assert peer._ice is not None
        consent = peer._ice._query_consent_task
        assert consent is None or consent.done()
    assert loop_errors == []


async def test_ice_failure_without_candidate_pairs_is_an_ice_error() -> None:
    """aioice's connect() fails before any check (nothing to pair with): connect()
    learns it from the end of the supervised task and raises IceError."""
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)

    def ipv6_only(answer: SessionDescription) -> SessionDescription:
        candidates = [copy.copy(c) for c in answer.candidates]
        for candidate in candidates:
            candidate.host = "::1"  # our host candidates are IPv4: no pair forms
        return dataclasses.replace(answer, candidates=candidates)

    try:
        offer = await a.create_offer()
        answer = ipv6_only(await b.create_answer(offer))
        with pytest.raises(IceError):
            await asyncio.wait_for(a.connect(answer), 10)
        assert a.state == PeerState.FAILED
    finally:
        await a.close()
        await b.close()
        loop.set_exception_handler(None)
    assert _ice_idle(a)
    assert loop_errors == []
