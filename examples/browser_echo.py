"""Browser echo: a web page sends its camera and microphone to a SecurePeer, which
echoes every RTP packet back re-protected with its own keys, and the page plays the
echo next to the local picture. The page also opens a data channel ("chat") and
pings on it; the peer echoes every message on the channel it came on.

    python examples/browser_echo.py                 # the page offers, we answer
    python examples/browser_echo.py --mode answer   # we offer, the page answers

then open the printed URL. The page (``examples/browser``) and its HTTP signaling
endpoint are served on 127.0.0.1 by :mod:`examples.page_server`. The peer gathers only
on 127.0.0.1, so the browser must offer loopback candidates, not mDNS names or LAN
addresses. Chromium::

    chromium --allow-loopback-in-peer-connection \\
        --disable-features=WebRtcHideLocalIpsWithMdns \\
        --use-fake-device-for-media-stream --use-fake-ui-for-media-stream \\
        http://127.0.0.1:8080/?autostart=1

(the last two flags use a test pattern and a beep instead of a camera and a
microphone, without a permission prompt; drop them to use real devices). Only
Chromium is tested; other browsers need their own loopback-candidate settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import struct
import sys
from collections import Counter
from pathlib import Path

from webrtc_secure import DataChannel, SecurePeer, SessionDescription, WebrtcSecureError
from webrtc_secure.srtp import DEFAULT_PROFILES, Profile

logger = logging.getLogger("browser_echo")

RTCP_RTPFB, RTCP_PSFB = 205, 206
NACK = 1  # RTPFB FMT
PLI, FIR = 1, 4  # PSFB FMT

BROWSER_FLAGS = (
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)


def keyframe_request(sender_ssrc: int, media_ssrc: int) -> bytes:
    """An RTCP Picture Loss Indication (RFC 4585 6.3.1): 12 octets, no FCI."""
    return struct.pack("!BBHII", 0x80 | PLI, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


class SecurePeerEcho:
    """Signaling handler (SDP strings in and out) around a SecurePeer that echoes media.

    * RTP: each packet goes back unchanged except for its SSRC, which becomes the one
      our own description announced for the packet's kind (kind from the payload type,
      which is unique per m-line in both directions). The browser's sequence numbers and
      timestamps are kept, so its jitter buffer and NACK logic see a plain stream.
    * RTCP: the browser's keyframe requests about our echo (PLI, or FIR, both PSFB)
      become a PLI from our video SSRC to the browser's own video sender, whose next
      keyframe we then echo. NACKs are counted but not forwarded: no RTX is negotiated,
      so a plain retransmission would reuse an SRTP index, which SRTP refuses on both
      sides. Sender and receiver reports are ours to make, not the browser's to echo.
    """

    def __init__(
        self, host: str = "127.0.0.1", srtp_profiles: tuple[Profile, ...] = DEFAULT_PROFILES
    ) -> None:
        self.peer = SecurePeer(
            host_addresses=[host], media_kinds=("audio", "video"), srtp_profiles=srtp_profiles
        )
        self.local: SessionDescription | None = None
        self.remote: SessionDescription | None = None
        self.kinds: dict[int, str] = {}  # payload type -> kind
        self.our_ssrc: dict[str, int] = {}  # kind -> SSRC in our description
        self.their_ssrc: dict[str, int] = {}  # kind -> SSRC the browser sends with
        self.echoed: Counter[str] = Counter({"audio": 0, "video": 0})
        self.not_echoed: Counter[str] = Counter()
        self.rtcp_seen: Counter[str] = Counter()
        self.keyframe_requests = 0  # PLI/FIR from the browser's receiver
        self.keyframe_requests_forwarded = 0  # PLIs we sent to the browser's sender
        self.connect_task: asyncio.Task[None] | None = None
        self.signaled = asyncio.Event()
        self.messages_echoed = 0
        self.peer.on("rtp", self._on_rtp)
        self.peer.on("rtcp", self._on_rtcp)
        self.peer.on("datachannel", self._on_datachannel)

    # --- signaling (the page server's SignalingHandler) ---------------------------------

    async def answer(self, offer_sdp: str) -> str:
        offer = SessionDescription.from_sdp(offer_sdp, "offer")
        answer = await self.peer.create_answer(offer)
        self._learn(answer, offer)
        return answer.to_sdp()

    async def offer(self) -> str:
        offer = await self.peer.create_offer()
        self.local = offer
        return offer.to_sdp()

    async def accept_answer(self, answer_sdp: str) -> None:
        assert self.local is not None, "offer() first"
        self._learn(self.local, SessionDescription.from_sdp(answer_sdp, "answer"))

    def _learn(self, local: SessionDescription, remote: SessionDescription) -> None:
        self.local, self.remote = local, remote
        for media in local.media:
            if media.rejected:
                continue
            for codec in media.codecs:
                self.kinds[codec.payload_type] = media.kind
            if media.ssrcs:
                self.our_ssrc[media.kind] = media.ssrcs[0].ssrc
        for media in remote.media:
            if media.ssrcs and not media.rejected:
                self.their_ssrc.setdefault(media.kind, media.ssrcs[0].ssrc)
        # signaling returns now; ICE and DTLS run while the browser applies our SDP
        self.connect_task = asyncio.ensure_future(self.peer.connect(remote))
        self.signaled.set()

    async def connected(self, timeout: float = 20.0) -> None:
        """Wait until ICE and DTLS are done (raises what ``connect`` raised)."""
        await asyncio.wait_for(self.signaled.wait(), timeout)
        assert self.connect_task is not None
        await asyncio.wait_for(asyncio.shield(self.connect_task), timeout)

    # --- data channels ------------------------------------------------------------------

    def _on_datachannel(self, channel: DataChannel) -> None:
        def echo(message: str | bytes) -> None:
            try:
                channel.send(message)
            except WebrtcSecureError as exc:  # closing: the echo just skips it
                self.not_echoed[f"message_{type(exc).__name__}"] += 1
                return
            self.messages_echoed += 1

        channel.on("message", echo)

    # --- media --------------------------------------------------------------------------

    def _on_rtp(self, packet: bytes) -> None:
        kind = self.kinds.get(packet[1] & 0x7F)
        ssrc = self.our_ssrc.get(kind) if kind is not None else None
        if kind is None or ssrc is None:
            self.not_echoed[f"payload_type_{packet[1] & 0x7F}"] += 1
            return
        self.their_ssrc[kind] = int.from_bytes(packet[8:12], "big")
        try:
            self.peer.send_rtp(packet[:8] + ssrc.to_bytes(4, "big") + packet[12:])
        except WebrtcSecureError as exc:
            # e.g. closing, or an index SRTP will not reuse: the echo just skips it
            self.not_echoed[type(exc).__name__] += 1
            return
        self.echoed[kind] += 1

    def _on_rtcp(self, compound: bytes) -> None:
        offset = 0
        while offset + 4 <= len(compound):
            first, packet_type, words = struct.unpack_from("!BBH", compound, offset)
            end = offset + 4 * (words + 1)
            if end > len(compound):
                break
            fmt = first & 0x1F
            if packet_type == RTCP_PSFB and fmt in (PLI, FIR) and end - offset >= 12:
                self.rtcp_seen["pli" if fmt == PLI else "fir"] += 1
                self._forward_keyframe_request()
            elif packet_type == RTCP_RTPFB and fmt == NACK:
                self.rtcp_seen["nack"] += 1
            else:
                self.rtcp_seen[str(packet_type)] += 1
            offset = end

    def _forward_keyframe_request(self) -> None:
        self.keyframe_requests += 1
        target = self.their_ssrc.get("video")
        sender = self.our_ssrc.get("video")
        if target is None or sender is None:
            return
        try:
            self.peer.send_rtcp(keyframe_request(sender, target))
        except WebrtcSecureError:
            return
        self.keyframe_requests_forwarded += 1

    async def close(self) -> None:
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
        await self.peer.close()
        if self.connect_task is not None:
            await asyncio.gather(self.connect_task, return_exceptions=True)


class EchoService:
    """The by-hand demo's signaling handler: a fresh :class:`SecurePeerEcho` for every
    page load (a reload starts a new session and closes the previous one)."""

    def __init__(self) -> None:
        self.current: SecurePeerEcho | None = None
        self._reporter: asyncio.Task[None] | None = None

    async def _fresh(self) -> SecurePeerEcho:
        await self.close()
        self.current = SecurePeerEcho()
        self._reporter = asyncio.ensure_future(_report(self.current))
        return self.current

    async def answer(self, offer_sdp: str) -> str:
        return await (await self._fresh()).answer(offer_sdp)

    async def offer(self) -> str:
        return await (await self._fresh()).offer()

    async def accept_answer(self, answer_sdp: str) -> None:
        if self.current is None:
            raise RuntimeError("no offer to answer: POST /server-offer first")
        await self.current.accept_answer(answer_sdp)

    async def close(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            await asyncio.gather(self._reporter, return_exceptions=True)
            self._reporter = None
        if self.current is not None:
            await self.current.close()
            self.current = None


async def _report(echo: SecurePeerEcho) -> None:
    """Print how the session connected, then what it echoes, every five seconds."""
    try:
        await echo.connected(timeout=60)
    except (WebrtcSecureError, asyncio.TimeoutError) as exc:
        print(f"session failed: {type(exc).__name__}: {exc}", flush=True)
        return
    stats = echo.peer.stats()
    dtls = stats["dtls"]
    print(
        f"connected: {dtls['cipher_suite']}, {dtls['srtp_profile']}, we are DTLS "
        f"{dtls['role']}, ICE {1e3 * stats['ice_seconds']:.0f} ms, "
        f"DTLS {1e3 * stats['dtls_seconds']:.0f} ms",
        flush=True,
    )
    while True:
        await asyncio.sleep(5)
        print(
            f"echoed {dict(echo.echoed)} and {echo.messages_echoed} messages, keyframe requests "
            f"{echo.keyframe_requests_forwarded}/{echo.keyframe_requests} forwarded, "
            f"dropped {echo.peer.stats()['dropped']}",
            flush=True,
        )


async def main(mode: str, port: int) -> None:
    # run as a script, only examples/ is on sys.path: the page server is examples.page_server
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from examples.page_server import PageServer

    service = EchoService()
    async with PageServer(service, port=port) as server:
        url = f"{server.url}/?mode={mode}&autostart=1"
        print(f"open {url}", flush=True)
        print(f"e.g. chromium {' '.join(BROWSER_FLAGS)} '{url}'", flush=True)
        print("Ctrl-C to stop", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await service.close()


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
