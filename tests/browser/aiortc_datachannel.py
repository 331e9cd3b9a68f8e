"""aiortc as a data channel end: an SDP-string peer running :class:`ChannelAgent`.

:class:`AiortcChannelPeer` is a ``SignalingHandler`` (``offer`` / ``answer`` /
``accept_answer``), so it can face the browser page through the page server, another
aiortc, or webrtc_secure's peer. It opens ``<prefix>-reliable`` (protocol "interop") and
``<prefix>-unordered`` (unordered, maxRetransmits 0) and echoes on the other end's
channels. No ICE servers: host candidates only.

:func:`aiortc_keylog` makes every DTLS context aiortc creates write the NSS key log
(CLIENT_RANDOM lines) through OpenSSL's keylog callback, so a capture of aiortc's
traffic can be decrypted (see :mod:`tests.browser.sctp_wire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription, rtcdtlstransport

from tests.browser.aiortc_peer import rtc_configuration
from tests.browser.dc_agent import ChannelAgent

logger = logging.getLogger(__name__)


class AiortcChannelPeer:
    """One aiortc ``RTCPeerConnection`` that plays the data channel script."""

    def __init__(self, prefix: str = "aiortc") -> None:
        self.pc = RTCPeerConnection(configuration=rtc_configuration())
        self.agent = ChannelAgent(prefix)
        self._connected = asyncio.Event()
        self._failed = asyncio.Event()

        @self.pc.on("datachannel")
        def _on_datachannel(channel: Any) -> None:
            self.agent.adopt_theirs(channel)

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            state = self.pc.connectionState
            if state == "connected":
                self._connected.set()
            elif state in ("failed", "closed"):
                self._failed.set()

    def open_channels(self) -> None:
        self.agent.adopt_own(self.pc.createDataChannel(self.agent.reliable, protocol="interop"))
        self.agent.adopt_own(
            self.pc.createDataChannel(self.agent.unordered, ordered=False, maxRetransmits=0))

    async def offer(self) -> str:
        self.open_channels()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        self.open_channels()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(self._connected.wait()),
             asyncio.ensure_future(self._failed.wait())],
            timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        if not self._connected.is_set():
            raise ConnectionError(f"aiortc did not connect ({self.pc.connectionState})")

    def sctp_info(self) -> dict[str, Any]:
        """aiortc's association facts (private attributes, best effort)."""
        sctp = self.pc.sctp
        if sctp is None:
            return {}
        state = getattr(sctp, "_association_state", None)
        return {
            "state": getattr(state, "name", None),
            "max_message_size": getattr(sctp, "_remote_max_message_size", None),
            "remote_extensions": list(getattr(sctp, "_remote_extensions", [])),
            "remote_partial_reliability": getattr(sctp, "_remote_partial_reliability", None),
            "is_server": getattr(sctp, "is_server", None),
        }

    async def close(self) -> None:
        await self.pc.close()


@contextlib.contextmanager
def aiortc_keylog(path: Path) -> Iterator[None]:
    """aiortc's DTLS contexts created inside the block log their secrets to ``path``."""
    original = rtcdtlstransport.RTCCertificate._create_ssl_context

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx = original(self, *args, **kwargs)

        def write(_conn: Any, line: bytes) -> None:
            with open(path, "ab") as f:
                f.write(line + b"\n")

        ctx.set_keylog_callback(write)
        return ctx

    rtcdtlstransport.RTCCertificate._create_ssl_context = create
    try:
        yield
    finally:
        rtcdtlstransport.RTCCertificate._create_ssl_context = original
