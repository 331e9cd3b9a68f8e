"""Trickle ICE against headless Chromium, both offer/answer directions, inside a
loopback-only network namespace (see ``tests/browser``).

Neither description carries a candidate: Chromium's comes from ``createOffer()`` /
``createAnswer()`` (before gathering), ours from ``trickle=True``. Every candidate
crosses as the browser's ``RTCIceCandidateInit`` JSON: Chromium's ``onicecandidate``
into ``SecurePeer.add_ice_candidate()``, our ``"icecandidate"`` events into
``pc.addIceCandidate()``, each side ending with end-of-candidates. Asserted: both sides
connected (ICE, DTLS with our fingerprint check, SRTP: Chromium counts the RTP we
send), and the pair Chromium nominated joins a candidate it trickled to us with one we
trickled to it.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from typing import Any

import pytest

from tests.browser.cdp import Chromium
from tests.browser.netns import run_in_loopback_netns
from tests.browser.server import PageServer
from tests.browser.session import ARTIFACTS
from webrtc_secure import IceCandidate, PeerState, SecurePeer, SessionDescription

pytestmark = pytest.mark.interop

#: the page's side: one RTCPeerConnection whose candidates queue up for Python. The
#: (fake) microphone matters: without a media permission Chromium gathers no host
#: candidates at all (its IP handling policy), and there would be nothing to trickle.
SETUP_JS = """(async () => {
  const t = {candidates: [], pc: new RTCPeerConnection({iceServers: []})};
  t.pc.onicecandidate = (e) => t.candidates.push(e.candidate ? e.candidate.toJSON() : null);
  window.t = t;
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  t.track = stream.getAudioTracks()[0];
  return true;
})()"""

OFFER_JS = """(async () => {
  t.pc.addTrack(t.track);
  const offer = await t.pc.createOffer();
  await t.pc.setLocalDescription(offer);
  return {type: offer.type, sdp: offer.sdp};
})()"""

ANSWER_JS = """(async (offer) => {
  await t.pc.setRemoteDescription(offer);
  t.pc.getTransceivers()[0].sender.replaceTrack(t.track);
  const answer = await t.pc.createAnswer();
  await t.pc.setLocalDescription(answer);
  return {type: answer.type, sdp: answer.sdp};
})"""

STATE_JS = """(async () => {
  const pc = t.pc, out = {connection: pc.connectionState, ice: pc.iceConnectionState,
                          pair: null, dtls: null, packetsReceived: 0};
  const stats = await pc.getStats();
  const byId = new Map();
  stats.forEach((s) => byId.set(s.id, s));
  stats.forEach((s) => {
    if (s.type === 'transport') {
      out.dtls = s.dtlsState;
      const pair = byId.get(s.selectedCandidatePairId);
      if (pair) {
        const side = (c) => ({address: c.address, port: c.port, protocol: c.protocol});
        out.pair = {state: pair.state, nominated: pair.nominated,
                    local: side(byId.get(pair.localCandidateId)),
                    remote: side(byId.get(pair.remoteCandidateId))};
      }
    }
    if (s.type === 'inbound-rtp') out.packetsReceived += s.packetsReceived || 0;
  });
  return out;
})()"""


class _NoSignaling:
    """The page server's handler; this test signals through the DevTools pipe instead."""

    async def answer(self, offer_sdp: str) -> str:
        raise AssertionError("not used")

    async def offer(self) -> str:
        raise AssertionError("not used")

    async def accept_answer(self, answer_sdp: str) -> None:
        raise AssertionError("not used")


def _address(candidate: dict[str, Any] | IceCandidate) -> tuple[str, int, str]:
    text = candidate.candidate if isinstance(candidate, IceCandidate) else candidate["candidate"]
    bits = text.split()
    return bits[4], int(bits[5]), bits[2].lower()


async def _trickle(mode: str) -> dict[str, Any]:
    peer = SecurePeer(host_addresses=["127.0.0.1"])
    ours: asyncio.Queue[IceCandidate | None] = asyncio.Queue()
    peer.on("icecandidate", ours.put_nowait)
    sent: list[IceCandidate | None] = []
    received: list[dict[str, Any] | None] = []
    log_path = ARTIFACTS / f"chromium-trickle-{mode}.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    connect: asyncio.Future[None] | None = None
    try:
        # the page server's origin (http://127.0.0.1) is a secure context: getUserMedia
        async with PageServer(_NoSignaling()) as server, Chromium(log_path=log_path) as browser:
            page = await browser.new_page()
            await page.navigate(f"{server.url}/")
            await page.evaluate(SETUP_JS)
            if mode == "chromium-offers":
                offer = await page.evaluate(OFFER_JS)
                answer = await peer.create_answer(offer, trickle=True)
                await page.evaluate(f"t.pc.setRemoteDescription({answer.to_json()})")
                remote_sdp = offer["sdp"]
                connect = asyncio.ensure_future(peer.connect(offer))
            else:
                our_offer = await peer.create_offer(trickle=True)
                browser_answer = await page.evaluate(f"{ANSWER_JS}({our_offer.to_json()})")
                remote_sdp = browser_answer["sdp"]
                connect = asyncio.ensure_future(peer.connect(browser_answer))
            local_sdp = peer.local_description.to_sdp() if peer.local_description else ""
            # pump both ways until both lists ended and both sides are connected
            deadline = time.monotonic() + 20
            state: dict[str, Any] = {}
            while time.monotonic() < deadline:
                while not ours.empty():
                    candidate = ours.get_nowait()
                    sent.append(candidate)
                    argument = candidate.to_json() if candidate is not None else ""
                    await page.evaluate(f"t.pc.addIceCandidate({argument})")
                fresh = await page.evaluate(f"t.candidates.slice({len(received)})")
                for item in fresh:
                    received.append(item)
                    await peer.add_ice_candidate(item)
                state = await page.evaluate(STATE_JS)
                if (
                    connect.done()
                    and state["connection"] == "connected"
                    and sent[-1:] == [None]
                    and received[-1:] == [None]
                ):
                    break
                await asyncio.sleep(0.05)
            await asyncio.wait_for(asyncio.shield(connect), 5)
            # SRTP both ends agree on: Chromium counts what we protect
            media = peer.local_description.media[0] if peer.local_description else None
            assert media is not None and media.ssrcs and media.codecs
            ssrc, payload_type = media.ssrcs[0].ssrc, media.codecs[0].payload_type
            for seq in range(40):
                header = struct.pack("!BBHII", 0x80, payload_type, seq, seq * 960, ssrc)
                peer.send_rtp(header + bytes([0xF8, 0xFF, 0xFE]))
                await asyncio.sleep(0.01)
            for _ in range(40):
                state = await page.evaluate(STATE_JS)
                if state["packetsReceived"] > 0:
                    break
                await asyncio.sleep(0.1)
            return {
                "state": state,
                "ours": peer.state.value,
                "stats": peer.stats(),
                # what our ICE agent holds: Chromium's trickled candidate as signalled
                # (type host), not only learnt from its checks (prflx)
                "ice_remote": [
                    (c.host, c.port, c.type) for c in peer._ice.remote_candidates
                ],
                "sent": [c.to_dict() if c else None for c in sent],
                "received": received,
                "local_sdp": local_sdp,
                "remote_sdp": remote_sdp,
            }
    finally:
        if connect is not None and not connect.done():
            connect.cancel()
        await peer.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["chromium-offers", "securepeer-offers"])
def test_chromium_and_securepeer_trickle_candidates_both_ways(mode: str) -> None:
    report = run_in_loopback_netns(lambda: _trickle(mode), timeout=50)
    state, sent, received = report["state"], report["sent"], report["received"]
    print(f"\n[chromium trickle, {mode}] page: {json.dumps(state)}")
    print(f"  we trickled: {json.dumps(sent)}")
    print(f"  chromium trickled: {json.dumps(received)}")
    # no candidate in either description: everything came by trickle
    for sdp, kind in ((report["local_sdp"], "answer"), (report["remote_sdp"], "offer")):
        if mode == "securepeer-offers":
            kind = "offer" if kind == "answer" else "answer"
        assert SessionDescription.from_sdp(sdp, kind).candidates == []
        assert "a=candidate:" not in sdp
    # both lists ended with end-of-candidates, after at least one candidate
    assert sent[-1] is None and sent[:-1] and None not in sent[:-1]
    assert received[-1] is None and received[:-1]
    assert all(c["sdpMid"] == "0" for c in sent[:-1])
    # connected on both sides, DTLS and SRTP included
    assert report["ours"] == PeerState.CONNECTED.value
    assert state["connection"] == "connected" and state["dtls"] == "connected"
    assert state["packetsReceived"] > 0
    # the nominated pair joins a candidate each side trickled to the other
    pair = state["pair"]
    assert pair is not None and pair["state"] == "succeeded"
    ours = {_address(c) for c in sent[:-1]}
    theirs = {_address(c) for c in received if c is not None}
    assert (pair["remote"]["address"], pair["remote"]["port"], "udp") in ours
    local = pair["local"]
    assert (local["address"], local["port"], local["protocol"]) in theirs
    assert (local["address"], local["port"], "host") in {tuple(c) for c in report["ice_remote"]}
