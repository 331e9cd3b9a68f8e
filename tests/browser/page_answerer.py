"""Our SecurePeer as the answering end of a headless Chromium data-channel page under
test (tests/browser/datachannel), shared by the Chromium interop tests under loss.

The page offers; :class:`PageAnswerer` answers over DTLS 1.2 (so a capture can be
decrypted with our key log), opens the channels it was given and records what arrives
on every channel, ours and the page's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import Any

from webrtc_secure import SecurePeer, SessionDescription

PAGE_DIR = Path(__file__).resolve().parent / "datachannel"
#: dcSCTP offers I-DATA (RFC 8260) only with this field trial
#: (``enable_message_interleaving`` in webrtc's media/sctp/dcsctp_transport.cc)
IDATA_FLAG = "--force-fieldtrials=WebRTC-DataChannelMessageInterleaving/Enabled/"


def pattern(length: int, seed: int) -> bytes:
    """The page's pattern(length, seed): byte i is (i * 31 + seed) & 0xff."""
    period = bytes((i * 31 + seed) & 0xFF for i in range(256))
    return (period * (length // 256 + 1))[:length]


def describe(data: bytes) -> dict[str, Any]:
    """What the page records of a binary message it received."""
    return {"type": "binary", "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class PageAnswerer:
    """The page server's signaling handler: answers the page's offer and opens
    ``ours`` (label -> the page's channel options: ``maxRetransmits``,
    ``maxPacketLifeTime``); records what arrives on every channel."""

    def __init__(self, ours: dict[str, dict[str, Any]]) -> None:
        self.ours = ours
        self.peer = SecurePeer(host_addresses=["127.0.0.1"], dtls_versions=("1.2",))
        self.channels: dict[str, Any] = {}
        self.received: dict[str, list[bytes]] = {}
        self.opened: dict[str, asyncio.Event] = {}
        self.connect_task: asyncio.Task[None] | None = None
        self.peer.on("datachannel", self._adopt)

    def _adopt(self, channel: Any) -> None:
        label = channel.label
        self.channels[label] = channel
        self.received[label] = []
        event = self.opened.setdefault(label, asyncio.Event())
        if channel.ready_state == "open":
            event.set()
        channel.on("open", event.set)

        def on_message(message: bytes | str) -> None:
            self.received[label].append(message.encode() if isinstance(message, str) else message)

        channel.on("message", on_message)

    async def answer(self, offer_sdp: str) -> str:
        offer = SessionDescription.from_sdp(offer_sdp, "offer")
        answer = await self.peer.create_answer(offer)
        for label, options in self.ours.items():
            channel = self.peer.create_data_channel(
                label,
                max_retransmits=options.get("maxRetransmits"),
                max_packet_life_time=options.get("maxPacketLifeTime"),
            )
            self._adopt(channel)
        self.connect_task = asyncio.ensure_future(self.peer.connect(offer))
        return answer.to_sdp()

    async def offer(self) -> str:
        raise AssertionError("this test runs with the page offering")

    async def accept_answer(self, answer_sdp: str) -> None:
        raise AssertionError("this test runs with the page offering")

    async def wait_open(self, labels: Any, timeout: float) -> None:
        for label in labels:
            event = self.opened.setdefault(label, asyncio.Event())
            await asyncio.wait_for(event.wait(), timeout)

    def ends_with(self, label: str, last: bytes) -> bool:
        """Whether the last message received on ``label`` is ``last``."""
        got = self.received.get(label)
        return got is not None and bool(got) and got[-1] == last

    async def close(self) -> None:
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
            with contextlib.suppress(BaseException):
                await self.connect_task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.peer.close(), 5)
