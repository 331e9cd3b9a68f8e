"""SecurePeer's public API under misuse (issue 13): calls in the wrong state, the
description in any of its signaling forms, and every refusal of bad input a typed
``webrtc_secure.errors`` exception. Loopback only."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest

from webrtc_secure import Certificate, PeerState, SecurePeer, SessionDescription
from webrtc_secure.errors import (
    ConfigurationError,
    IceError,
    InvalidStateError,
    MalformedPacket,
    PacketTooLarge,
    SdpError,
)
from webrtc_secure.peer import MAX_DATAGRAM
from webrtc_secure.srtp import Profile

HOST = ["127.0.0.1"]


def _rtp(seq: int, ssrc: int = 0x1234, payload: int = 160) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes(payload)


async def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def _connected_pair() -> tuple[SecurePeer, SecurePeer]:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.gather(a.connect(answer), b.connect(offer))
    return a, b


async def _media_still_flows(a: SecurePeer, b: SecurePeer) -> None:
    got: list[bytes] = []
    b.on("rtp", got.append)
    for seq in range(3):
        a.send_rtp(_rtp(1000 + seq))
    await _wait_for(lambda: len(got) == 3)


# --- 1. calls in the wrong state ---------------------------------------------------------


async def test_second_connect_after_success_is_refused_and_the_connection_lives_on() -> None:
    a, b = await _connected_pair()
    try:
        offer, answer = b.local_description, a.local_description
        assert offer is not None and answer is not None
        states: list[str] = []
        a.on("state", states.append)
        b.on("state", states.append)
        with pytest.raises(InvalidStateError, match="already called"):
            await a.connect(offer)  # what the offerer was once given, again
        with pytest.raises(InvalidStateError, match="already called"):
            await b.connect(answer)
        assert a.state == b.state == PeerState.CONNECTED
        assert states == []  # never moved back to checking
        await _media_still_flows(a, b)
        await _media_still_flows(b, a)
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_concurrent_connect_is_refused_and_the_first_one_completes() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        first = asyncio.ensure_future(a.connect(answer))
        await asyncio.sleep(0)  # the first call is under way (ICE checks)
        with pytest.raises(InvalidStateError):
            await a.connect(answer)
        await asyncio.gather(first, b.connect(offer))
        assert a.state == b.state == PeerState.CONNECTED
        await _media_still_flows(a, b)
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_descriptions_in_the_wrong_state_are_refused_without_changes() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    try:
        with pytest.raises(InvalidStateError, match="before connect"):
            await a.connect("v=0")
        assert a.state == PeerState.NEW
        # two at once: the second is refused while the first gathers
        first = asyncio.ensure_future(a.create_offer())
        await asyncio.sleep(0)
        with pytest.raises(InvalidStateError, match="under way"):
            await a.create_offer()
        offer = await first
        assert a.local_description is offer
        # once made, no second description (no renegotiation), on either side
        with pytest.raises(InvalidStateError, match="renegotiation"):
            await a.create_offer()
        answer = await b.create_answer(offer)
        for call in (a.create_answer(offer), b.create_answer(offer), b.create_offer()):
            with pytest.raises(InvalidStateError, match="renegotiation"):
                await call
        assert a.local_description is offer and b.local_description is answer
        # and nothing on a closed peer
        await a.close()
        for call in (a.create_offer(), a.create_answer(offer), a.connect(answer)):
            with pytest.raises(InvalidStateError, match="closed"):
                await call
        assert a.state == PeerState.CLOSED
    finally:
        await asyncio.gather(a.close(), b.close())


# --- 2. the description as SDP text, JSON text or a dict ----------------------------------


@pytest.mark.parametrize("form", ["sdp", "json", "dict", "bytes"])
async def test_connect_and_create_answer_take_sdp_or_json(form: str) -> None:
    def as_form(description: SessionDescription) -> Any:
        if form == "sdp":
            return description.to_sdp()
        if form == "json":
            return description.to_json()
        if form == "dict":
            return json.loads(description.to_json())
        return description.to_sdp().encode()

    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(as_form(offer))
        await asyncio.gather(a.connect(as_form(answer)), b.connect(as_form(offer)))
        assert a.state == b.state == PeerState.CONNECTED
        await _media_still_flows(a, b)
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_wrong_description_input_says_what_to_pass() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    other = SecurePeer(host_addresses=HOST)
    try:
        offer = await a.create_offer()
        for bad in (42, None, ["v=0"], "hello", "", b"\xff\xfe", {"sdp": offer.to_sdp()}):
            with pytest.raises(SdpError, match="takes the remote offer"):
                await b.create_answer(bad)  # type: ignore[arg-type]
        assert b.state == PeerState.NEW and b.local_description is None
        answer = await b.create_answer(offer.to_sdp())
        # the offerer's connect() takes the answer: its own offer (JSON says so) is not one
        with pytest.raises(SdpError, match="got an offer"):
            await a.connect(offer.to_json())
        with pytest.raises(SdpError, match="takes the remote answer"):
            await a.connect(12)  # type: ignore[arg-type]
        # the answerer's connect() takes the very offer it answered
        with pytest.raises(SdpError, match="create_answer"):
            await b.connect(await other.create_offer())
        assert a.state == b.state == PeerState.NEW
        # nothing was used up: the right inputs still connect
        await asyncio.gather(a.connect(answer.to_sdp()), b.connect(offer.to_sdp()))
        assert a.state == b.state == PeerState.CONNECTED
    finally:
        await asyncio.gather(a.close(), b.close(), other.close())


# --- 3. every refusal of bad input is a typed error --------------------------------------

BAD_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("mtu small", {"mtu": 10}),
    ("mtu huge", {"mtu": MAX_DATAGRAM + 1}),
    ("mtu text", {"mtu": "1200"}),
    ("handshake_timeout", {"handshake_timeout": -1}),
    ("ice_timeout", {"ice_timeout": 0}),
    ("ice_timeout nan", {"ice_timeout": float("nan")}),
    ("retransmit_timeout zero", {"retransmit_timeout": 0}),
    ("retransmit_timeout above cap", {"retransmit_timeout": 5.0}),
    ("first_flight_timeout", {"first_flight_timeout": 0}),
    ("replay_window zero", {"replay_window": 0}),
    ("replay_window huge", {"replay_window": 10**9}),
    ("host_addresses text", {"host_addresses": "127.0.0.1"}),
    ("host_addresses name", {"host_addresses": ["localhost"]}),
    ("host_addresses empty", {"host_addresses": []}),
    ("host_addresses any", {"host_addresses": ["0.0.0.0"]}),
    ("srtp_profiles names", {"srtp_profiles": ["AEAD_AES_128_GCM"]}),
    ("srtp_profiles twice", {"srtp_profiles": [Profile.AEAD_AES_128_GCM] * 2}),
    ("media_kinds text", {"media_kinds": "audio"}),
    ("media_kinds data", {"media_kinds": ("data",)}),
    ("ice_servers text", {"ice_servers": "stun:127.0.0.1:3478"}),
    ("ice_servers scheme", {"ice_servers": ["http://127.0.0.1:3478"]}),
    ("ice_servers port", {"ice_servers": ["stun:127.0.0.1:70000"]}),
    ("ice_servers two stun", {"ice_servers": ["stun:127.0.0.1:1", "stun:127.0.0.1:2"]}),
    ("certificate", {"certificate": "cert.pem"}),
    ("use_ice", {"use_ice": "no"}),
]


@pytest.mark.parametrize("options", [o for _, o in BAD_OPTIONS], ids=[n for n, _ in BAD_OPTIONS])
def test_constructor_refuses_options_outside_their_limits(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SecurePeer(**{"host_addresses": HOST, **options})


def test_constructor_accepts_the_limits_themselves() -> None:
    SecurePeer(
        host_addresses=["127.0.0.1", "::1"],
        mtu=150,
        replay_window=1,
        retransmit_timeout=3.0,
        handshake_timeout=None,
        first_flight_timeout=None,
        srtp_profiles=(),
        media_kinds=(),
        ice_servers=["stun:127.0.0.1:3478", "turn:user:pw@127.0.0.1:3478"],
        certificate=Certificate.generate(),
    )
    SecurePeer(host_addresses=HOST, mtu=MAX_DATAGRAM, replay_window=32768)


async def test_unbindable_plain_udp_address_is_an_ice_error() -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface of this host: nothing is sent anywhere
    peer = SecurePeer(host_addresses=["192.0.2.1"], use_ice=False)
    try:
        with pytest.raises(IceError):
            await peer.create_offer()
    finally:
        await peer.close()


async def test_send_rtp_and_rtcp_refuse_bad_packets_with_typed_errors() -> None:
    a, b = await _connected_pair()
    try:
        got: list[bytes] = []
        b.on("rtp", got.append)
        for send in (a.send_rtp, a.send_rtcp):
            for bad in ("text", None, 42, [0x80, 0], memoryview(_rtp(9))):
                with pytest.raises(MalformedPacket, match="takes the packet as bytes"):
                    send(bad)  # type: ignore[arg-type]
            with pytest.raises(MalformedPacket):
                send(b"\x80")
        with pytest.raises(PacketTooLarge):
            a.send_rtp(_rtp(1, payload=MAX_DATAGRAM))
        rtcp = struct.pack("!BBHI", 0x80, 200, 6, 0x1234) + bytes(20)
        with pytest.raises(PacketTooLarge):
            a.send_rtcp(rtcp + bytes(MAX_DATAGRAM))
        # none of that disturbed the stream
        a.send_rtp(bytearray(_rtp(2)))
        a.send_rtp(_rtp(3))
        await _wait_for(lambda: len(got) == 2)
        assert a.state == PeerState.CONNECTED
    finally:
        await asyncio.gather(a.close(), b.close())

