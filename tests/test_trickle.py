"""Trickle ICE between SecurePeers on loopback: ``create_offer(trickle=True)`` /
``create_answer(..., trickle=True)``, the ``"icecandidate"`` event, and
``add_ice_candidate()`` with end-of-candidates; the candidate codec
(:class:`IceCandidate`) and every refusal of bad input."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest

from webrtc_secure import IceCandidate, PeerState, SecurePeer, SessionDescription
from webrtc_secure.errors import (
    ConfigurationError,
    IceError,
    InvalidStateError,
    SdpError,
)
from webrtc_secure.sdp import MAX_CANDIDATES

HOST = ["127.0.0.1"]


def _rtp(seq: int, ssrc: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes(160)


async def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


class Trickler:
    """Collects one peer's "icecandidate" events as JSON, the way a signaling channel
    would carry them, and remembers whether each came after the description."""

    def __init__(self, peer: SecurePeer) -> None:
        self.sent: list[str | None] = []
        self.events: list[IceCandidate | None] = []
        self.described = False
        self.early = 0  # events before create_offer()/create_answer() returned
        self.done = asyncio.Event()
        peer.on("icecandidate", self._on_candidate)

    def _on_candidate(self, candidate: IceCandidate | None) -> None:
        if not self.described:
            self.early += 1
        self.events.append(candidate)
        self.sent.append(candidate.to_json() if candidate is not None else None)
        if candidate is None:
            self.done.set()

    async def deliver_to(self, peer: SecurePeer) -> None:
        """Everything trickled so far, and then the rest, through JSON."""
        await self.done.wait()
        for message in self.sent:
            await peer.add_ice_candidate(json.loads(message) if message else None)


def _check_trickled_description(description: SessionDescription) -> None:
    assert description.candidates == []
    assert "trickle" in description.ice_options
    assert not description.end_of_candidates
    sdp = description.to_sdp()
    assert "a=candidate:" not in sdp and "a=end-of-candidates" not in sdp
    assert "a=ice-options:trickle" in sdp
    # and it still reads back the same from its SDP
    assert SessionDescription.from_sdp(sdp, description.type) == description


@pytest.mark.parametrize("when", ["before-connect", "during-connect"])
async def test_two_peers_trickle_to_each_other(when: str) -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    ta, tb = Trickler(a), Trickler(b)
    try:
        offer = await a.create_offer(trickle=True)
        ta.described = True
        _check_trickled_description(offer)
        answer = await b.create_answer(offer.to_sdp(), trickle=True)
        tb.described = True
        _check_trickled_description(answer)
        if when == "before-connect":
            # every candidate waits for connect() to hand it to ICE
            await asyncio.gather(ta.deliver_to(b), tb.deliver_to(a))
            await asyncio.gather(a.connect(answer.to_sdp()), b.connect(offer.to_sdp()))
        else:
            # connect() runs first; the candidates reach ICE directly, while it checks
            connecting = asyncio.gather(a.connect(answer), b.connect(offer))
            await asyncio.sleep(0.05)
            assert a.state == b.state == PeerState.CHECKING
            await asyncio.gather(ta.deliver_to(b), tb.deliver_to(a))
            await connecting
        assert a.state == b.state == PeerState.CONNECTED
        for trickler, description in ((ta, offer), (tb, answer)):
            assert trickler.early == 0  # the description always went first
            assert trickler.events[-1] is None and trickler.events.count(None) == 1
            candidates = [c for c in trickler.events if c is not None]
            assert candidates
            for candidate in candidates:
                assert candidate.sdp_mid == "0" and candidate.sdp_mline_index == 0
                assert candidate.username_fragment == description.ice_ufrag
                assert candidate.candidate.startswith("candidate:")
                assert " 127.0.0.1 " in candidate.candidate
        # media flows both ways over the path the trickled candidates made
        got_a: list[bytes] = []
        got_b: list[bytes] = []
        a.on("rtp", got_a.append)
        b.on("rtp", got_b.append)
        for seq in range(3):
            a.send_rtp(_rtp(seq, 0x1111))
            b.send_rtp(_rtp(seq, 0x2222))
        await _wait_for(lambda: len(got_a) == 3 and len(got_b) == 3)
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_a_trickling_offerer_and_a_non_trickling_answerer() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    ta, silent = Trickler(a), Trickler(b)  # b does not trickle: no events
    try:
        offer = await a.create_offer(trickle=True)
        ta.described = True
        answer = await b.create_answer(offer)  # gathered: candidates in the answer
        assert answer.candidates and answer.end_of_candidates
        assert "trickle" not in answer.ice_options
        connecting = asyncio.gather(a.connect(answer), b.connect(offer))
        await ta.deliver_to(b)
        await connecting
        assert a.state == b.state == PeerState.CONNECTED
        assert silent.events == []
        # the answer was complete: the offerer takes no candidate after it
        with pytest.raises(InvalidStateError, match="end-of-candidates"):
            await a.add_ice_candidate(ta.sent[0])
        await a.add_ice_candidate(None)  # a repeated end is no error
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_end_of_candidates_without_any_fails_ice_at_once() -> None:
    # ice_timeout far beyond the guard below: only end-of-candidates can end ICE in time
    a = SecurePeer(host_addresses=HOST, ice_timeout=120.0)
    b = SecurePeer(host_addresses=HOST, ice_timeout=120.0)
    try:
        offer = await a.create_offer(trickle=True)
        await b.create_answer(offer, trickle=True)
        connecting = asyncio.ensure_future(b.connect(offer))
        await asyncio.sleep(0.05)
        assert not connecting.done()  # waiting for candidates the offerer may trickle
        await b.add_ice_candidate({"candidate": ""})  # the browser's end-of-candidates
        with pytest.raises(IceError):
            await asyncio.wait_for(connecting, 10.0)
        assert b.state == PeerState.FAILED
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_add_ice_candidate_refuses_bad_input_with_typed_errors() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    udp = SecurePeer(host_addresses=HOST, use_ice=False)
    ta = Trickler(a)
    try:
        with pytest.raises(InvalidStateError, match="before create_offer"):
            await b.add_ice_candidate(None)
        with pytest.raises(ConfigurationError, match="needs ICE"):
            await udp.create_offer(trickle=True)
        await udp.create_offer()
        with pytest.raises(InvalidStateError, match="use_ice=False"):
            await udp.add_ice_candidate(None)
        offer = await a.create_offer(trickle=True)
        await b.create_answer(offer, trickle=True)
        await ta.done.wait()
        good = ta.events[0]
        assert good is not None
        bad: list[tuple[Any, str]] = [
            (42, "not a int"),
            ({"candidate": "candidate:garbage"}, "malformed candidate"),
            ("candidate:1 1 udp 1 127.0.0.1 99999 typ host", "port"),
            ({"candidate": good.candidate, "sdpMid": "7"}, "sdpMid"),
            ({"candidate": good.candidate, "sdpMLineIndex": 3}, "sdpMLineIndex"),
            ({"candidate": good.candidate, "sdpMid": "0", "usernameFragment": "abcd"}, "ufrag"),
            ("{not json", "not valid JSON"),
            ("x" * 5000, "too long|at most"),
            (b"\xff", "UTF-8"),
        ]
        for value, message in bad:
            with pytest.raises(SdpError, match=message):
                await b.add_ice_candidate(value)
        # the forms that are fine: the object, its dict, its JSON, the a= line, bare text
        await b.add_ice_candidate(good)
        await b.add_ice_candidate(good.to_dict())
        await b.add_ice_candidate(good.to_json())
        await b.add_ice_candidate("a=" + good.candidate)
        await b.add_ice_candidate(good.candidate)
        # a TCP candidate is accepted and ignored (aioice speaks UDP only)
        tcp = "candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active"
        await b.add_ice_candidate(tcp)
        # the bound: MAX_CANDIDATES in all
        for port in range(MAX_CANDIDATES - 6):
            await b.add_ice_candidate(f"candidate:1 1 udp 2130706431 127.0.0.1 {port + 1} typ host")
        with pytest.raises(SdpError, match="more than"):
            await b.add_ice_candidate(good)
        await b.add_ice_candidate("null")
        with pytest.raises(InvalidStateError, match="end-of-candidates"):
            await b.add_ice_candidate(good)
        await b.close()
        with pytest.raises(InvalidStateError, match="closed"):
            await b.add_ice_candidate(good)
    finally:
        await asyncio.gather(a.close(), b.close(), udp.close())


def test_ice_candidate_codec_round_trips_and_refuses_garbage() -> None:
    text = "candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ srflx raddr 0.0.0.0 rport 0"
    candidate = IceCandidate(text, "0", 0, "AbC+/dEf")
    assert IceCandidate.from_json(candidate.to_json()) == candidate
    assert IceCandidate.from_dict(candidate.to_dict()) == candidate
    assert IceCandidate.coerce(candidate.to_json().encode()) == candidate
    assert IceCandidate.from_dict({"candidate": "a=" + text}) == IceCandidate(text)
    parsed = candidate.to_aioice()
    assert (parsed.host, parsed.port, parsed.type) == ("127.0.0.1", 50000, "srflx")
    assert IceCandidate.from_aioice(parsed).candidate.split()[4:8] == text.split()[4:8]
    # browser's chromium candidate with extensions reads too
    IceCandidate(
        "candidate:1 1 udp 2122260223 127.0.0.1 41234 typ host generation 0 "
        "ufrag Wz1k network-id 1"
    )
    for end in (None, "", "null", {"candidate": ""}, {}):
        assert IceCandidate.coerce(end) is None
    for value in ("[]", "1", {"candidate": 5}, {"candidate": text, "sdpMid": 0},
                  {"candidate": text, "sdpMLineIndex": True}, {"candidate": text + "\n"},
                  "candidate:1 1 udp 1 127.0.0.1 1 typ bogus", "1 1 udp 1 127.0.0.1 1 typ host",
                  {"candidate": text, "usernameFragment": "no spaces"}):
        with pytest.raises(SdpError):
            IceCandidate.coerce(value)


async def test_trickle_gathering_failure_is_reported_and_fails_connect() -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface of this host: gathering cannot bind
    a = SecurePeer(host_addresses=["192.0.2.1"])
    b = SecurePeer(host_addresses=HOST)
    errors: list[BaseException] = []
    candidates: list[IceCandidate | None] = []
    a.on("error", errors.append)
    a.on("icecandidate", candidates.append)
    try:
        offer = await a.create_offer(trickle=True)  # returns before gathering
        await _wait_for(lambda: bool(errors))
        assert isinstance(errors[0], IceError) and candidates == []
        answer = await b.create_answer(offer)
        with pytest.raises(IceError):
            await a.connect(answer)
        assert a.state == PeerState.FAILED
    finally:
        await asyncio.gather(a.close(), b.close())
