"""webrtc_secure's peer as a data channel end: SecurePeer running :class:`ChannelAgent`.

The same ``SignalingHandler`` face as :class:`tests.browser.aiortc_datachannel.AiortcChannelPeer`
(``offer`` / ``answer`` / ``accept_answer`` with SDP strings), so a test swaps one for
the other and a failure with ours but not with aiortc is ours. ``connect()`` runs in a
task started once both descriptions are known; ``wait_connected`` awaits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from tests.browser.dc_agent import ChannelAgent
from webrtc_secure import SecurePeer, SessionDescription


class OursChannelPeer:
    """A :class:`SecurePeer` (bound to 127.0.0.1) that plays the data channel script."""

    def __init__(self, prefix: str = "ours", **peer_options: Any) -> None:
        peer_options.setdefault("host_addresses", ["127.0.0.1"])
        # the wire checks (tests/browser/sctp_wire.py) decrypt DTLS 1.2 records from the
        # key log; data channels over DTLS 1.3 with Chromium are what
        # tests/test_interop_chromium.py's "chat" channel runs
        peer_options.setdefault("dtls_versions", ("1.2",))
        self.peer = SecurePeer(**peer_options)
        self.agent = ChannelAgent(prefix)
        self.connect_task: asyncio.Task[None] | None = None
        self.marks: dict[str, float] = {}
        self.peer.on("datachannel", self.agent.adopt_theirs)
        self.peer.on("datachannel-ready",
                     lambda *_: self.marks.setdefault("datachannel-ready", time.monotonic()))

    def open_channels(self) -> None:
        self.agent.adopt_own(
            self.peer.create_data_channel(self.agent.reliable, protocol="interop"))
        self.agent.adopt_own(self.peer.create_data_channel(
            self.agent.unordered, ordered=False, max_retransmits=0))

    def _connect(self, remote: SessionDescription) -> None:
        self.marks["connect"] = time.monotonic()
        self.connect_task = asyncio.ensure_future(self.peer.connect(remote))

    async def offer(self) -> str:
        self.open_channels()
        return (await self.peer.create_offer()).to_sdp()

    async def accept_answer(self, answer_sdp: str) -> None:
        self._connect(SessionDescription.from_sdp(answer_sdp, "answer"))

    async def answer(self, offer_sdp: str) -> str:
        offer = SessionDescription.from_sdp(offer_sdp, "offer")
        answer = await self.peer.create_answer(offer)
        self.open_channels()
        self._connect(offer)
        return answer.to_sdp()

    async def wait_connected(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.connect_task is None:
            if time.monotonic() > deadline:
                raise TimeoutError("connect() was never started (no signaling)")
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.shield(self.connect_task), deadline - time.monotonic())

    def sctp_info(self) -> dict[str, Any]:
        """The association's counters from ``peer.stats()`` (state, extensions, drops)."""
        stats = self.peer.stats()
        return {"sctp_seconds": stats.get("sctp_seconds"), **(stats.get("sctp") or {})}

    async def close(self) -> None:
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
            with contextlib.suppress(BaseException):
                await self.connect_task
        await self.peer.close()
