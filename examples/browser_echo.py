"""Browser echo: a web page sends its camera and microphone to a SecurePeer, which
echoes every RTP packet back re-protected with its own keys, and the page plays the
echo.

    python examples/browser_echo.py            # then open the printed URL
    python examples/browser_echo.py --mode answer   # our peer makes the offer

The page and the HTTP signaling endpoint are served on 127.0.0.1. The peer gathers only
on 127.0.0.1, so the browser must offer loopback candidates: start Chromium with
``--allow-loopback-in-peer-connection --disable-features=WebRtcHideLocalIpsWithMdns``
(add ``--use-fake-device-for-media-stream --use-fake-ui-for-media-stream`` to use a
test pattern instead of a camera).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import struct
import sys
from pathlib import Path

from webrtc_secure import SecurePeer, SessionDescription

RTCP_PSFB = 206
PLI, FIR = 1, 4


class SecurePeerEcho:
    """Signaling handler (SDP strings in and out) around a SecurePeer that echoes media.

    Each RTP packet goes back under the SSRC our own description announced for its kind
    (kind from the payload type); the browser's keyframe requests about our echo (PLI or
    FIR) become a PLI toward the browser's own video sender, whose keyframes we echo.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.peer = SecurePeer(host_addresses=[host], media_kinds=("audio", "video"))
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
        self.peer.send_rtp(packet[:8] + self.our_ssrc[kind].to_bytes(4, "big") + packet[12:])
        self.echoed[kind] += 1

    def _on_rtcp(self, compound: bytes) -> None:
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


async def main(mode: str, port: int) -> None:
    # the page and its stdlib HTTP server are shared with the browser interop tests
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.browser.server import PageServer

    echo = SecurePeerEcho()
    async with PageServer(echo, port=port) as server:
        print(
            f"open {server.url}/?mode={mode}&autostart=1 in Chromium (see the module "
            "docstring for the flags); Ctrl-C to stop",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await echo.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode",
        choices=["offer", "answer"],
        default="offer",
        help="offer: the page offers (default); answer: our peer offers",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("-v", "--verbose", action="store_true")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO if arguments.verbose else logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(arguments.mode, arguments.port))
