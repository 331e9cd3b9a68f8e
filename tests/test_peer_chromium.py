"""SecurePeer against headless Chromium (BoringSSL DTLS, libsrtp, its own ICE), in a
loopback-only network namespace, both offer/answer directions.

The page sends its fake camera and microphone to our peer, which echoes every RTP packet
back, re-protected with its own keys under the SSRCs of its own description, and turns
the browser's keyframe requests (PLI/FIR about our echo) into PLIs for the browser's own
sender. The page's getStats() must show the echoed video decoding.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from tests.browser.netns import run_in_loopback_netns
from tests.browser.session import ARTIFACTS, browser_session, video_playing
from webrtc_secure import SecurePeer, SessionDescription

pytestmark = pytest.mark.interop

RTCP_PSFB = 206
PLI, FIR = 1, 4


class SecurePeerEcho:
    """A SignalingHandler (SDP strings in and out) around SecurePeer that echoes media."""

    def __init__(self) -> None:
        self.peer = SecurePeer(host_addresses=["127.0.0.1"], media_kinds=("audio", "video"))
        self.kinds: dict[int, str] = {}  # payload type -> kind
        self.our_ssrc: dict[str, int] = {}  # kind -> SSRC in our description
        self.their_ssrc: dict[str, int] = {}  # kind -> SSRC the browser sends with
        self.echoed: dict[str, int] = {"audio": 0, "video": 0}
        self.keyframe_requests = 0
        self.connect_task: asyncio.Task[None] | None = None
        self.peer.on("rtp", self._on_rtp)
        self.peer.on("rtcp", self._on_rtcp)

    def _learn(self, ours: SessionDescription) -> None:
        for media in ours.media:
            if media.rejected:
                continue
            for codec in media.codecs:
                self.kinds[codec.payload_type] = media.kind
            if media.ssrcs:
                self.our_ssrc[media.kind] = media.ssrcs[0].ssrc

    def _start(self, remote: SessionDescription) -> None:
        self.connect_task = asyncio.ensure_future(self.peer.connect(remote))

    async def answer(self, offer_sdp: str) -> str:
        offer = SessionDescription.from_sdp(offer_sdp, "offer")
        answer = await self.peer.create_answer(offer)
        self._learn(answer)
        self._start(offer)
        return answer.to_sdp()

    async def offer(self) -> str:
        offer = await self.peer.create_offer()
        self._learn(offer)
        return offer.to_sdp()

    async def accept_answer(self, answer_sdp: str) -> None:
        self._start(SessionDescription.from_sdp(answer_sdp, "answer"))

    def _on_rtp(self, packet: bytes) -> None:
        kind = self.kinds.get(packet[1] & 0x7F)
        if kind is None or kind not in self.our_ssrc:
            return
        self.their_ssrc[kind] = int.from_bytes(packet[8:12], "big")
        echo = packet[:8] + self.our_ssrc[kind].to_bytes(4, "big") + packet[12:]
        self.peer.send_rtp(echo)
        self.echoed[kind] += 1

    def _on_rtcp(self, compound: bytes) -> None:
        """Forward keyframe requests about our echo to the browser's video sender."""
        offset = 0
        while offset + 12 <= len(compound):
            first, packet_type, words = struct.unpack_from("!BBH", compound, offset)
            if packet_type == RTCP_PSFB and first & 0x1F in (PLI, FIR):
                self.keyframe_requests += 1
                target = self.their_ssrc.get("video")
                sender = self.our_ssrc.get("video")
                if target is not None and sender is not None:
                    self.peer.send_rtcp(
                        struct.pack("!BBHII", 0x80 | PLI, RTCP_PSFB, 2, sender, target)
                    )
            offset += 4 * (words + 1)

    async def close(self) -> None:
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
        await self.peer.close()
        if self.connect_task is not None:
            await asyncio.gather(self.connect_task, return_exceptions=True)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["offer", "answer"], ids=["chromium-offers", "securepeer-offers"])
def test_chromium_plays_video_echoed_by_securepeer(mode: str) -> None:
    async def scenario() -> dict[str, Any]:
        echo = SecurePeerEcho()
        try:
            async with browser_session(
                echo,
                mode=mode,  # type: ignore[arg-type]
                log_name=f"securepeer-{mode}",
            ) as session:
                stats = await session.wait_stats(video_playing, timeout=25)
                await session.screenshot(ARTIFACTS / f"securepeer-echo-{mode}.png")
                assert echo.connect_task is not None
                await echo.connect_task
                return {
                    "page": stats,
                    "ours": echo.peer.stats(),
                    "echoed": dict(echo.echoed),
                    "keyframe_requests": echo.keyframe_requests,
                    "client_hellos": session.sniffer.client_hellos() if session.sniffer else [],
                    "server_hellos": session.sniffer.server_hellos() if session.sniffer else [],
                }
        finally:
            await echo.close()

    report = run_in_loopback_netns(scenario, timeout=80)
    page, ours = report["page"], report["ours"]
    assert page["transport"]["dtlsState"] == "connected"
    assert page["inbound"]["video"]["framesDecoded"] >= 10
    assert page["inbound"]["audio"]["packetsReceived"] > 0
    assert report["echoed"]["video"] > 0 and report["echoed"]["audio"] > 0
    assert ours["dtls"]["dropped_authentication"] == 0
    assert not any("AuthenticationFailed" in k for k in ours["dropped"])
    # Chromium offered actpass: we answered active and are the DTLS client, and when
    # we offer, Chromium answers active and we are the server
    assert ours["dtls"]["role"] == ("client" if mode == "offer" else "server")
    print(
        f"chromium {mode}: ours={ours} page_transport={page['transport']} "
        f"keyframe_requests={report['keyframe_requests']}"
    )
    for hello in report["client_hellos"] + report["server_hellos"]:
        print({k: v for k, v in hello.items() if k not in ("raw", "datagrams")})
    # whoever was the DTLS client, the version answered is DTLS 1.2
    assert report["server_hellos"]
    assert all(h["legacy_version"] == "DTLS 1.2" for h in report["server_hellos"])
