"""The README's Python examples run as printed.

Each ```python block of README.md is taken from the file at test time and executed:
the "Using it" example against an in-process signaling stand-in whose answerer is a
second SecurePeer on loopback (it echoes channel messages and records what arrived),
the sans-I/O DTLS example as is, and the trickle ICE snippet wrapped in a coroutine
with a stand-in that relays candidates both ways. An edit that breaks an example (a
renamed method, a wrong argument) fails here, not in a reader's terminal.
"""

from __future__ import annotations

import asyncio
import re
import struct
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from webrtc_secure import DataChannel, IceCandidate, PeerState, SecurePeer

README = Path(__file__).resolve().parent.parent / "README.md"
RTP = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234) + b"x" * 100


def _python_block(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [block] = [b for b in blocks if containing in b]
    return str(block)


def test_the_readme_has_the_examples_this_file_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 3  # a new example needs a test here
    for marker in ("async def main(signaling)", "DtlsConnection(True", "trickle=True"):
        _python_block(marker)


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


class Answerer:
    """The signaling stand-in of "Using it": ``exchange(offer)`` has a second peer
    answer it and connect; that peer echoes every channel message and keeps what it
    heard."""

    def __init__(self) -> None:
        self.peer = SecurePeer(host_addresses=["127.0.0.1"])
        self.heard: list[tuple[str, str | bytes]] = []
        self.rtp: list[bytes] = []
        self.connecting: asyncio.Future[None] | None = None
        self.peer.on("datachannel", self._adopt)
        self.peer.on("rtp", self.rtp.append)

    def _adopt(self, channel: DataChannel) -> None:
        def echo(message: str | bytes) -> None:
            self.heard.append((channel.label, message))
            if channel.ready_state == "open":
                channel.send(message)

        channel.on("message", echo)

    async def exchange(self, offer: Any) -> Any:
        answer = await self.peer.create_answer(offer)
        self.connecting = asyncio.ensure_future(self.peer.connect(offer))
        return answer


async def test_using_it_example(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"rtp_packet": RTP}
    exec(_python_block("async def main(signaling)"), namespace)
    answerer = Answerer()
    try:
        await asyncio.wait_for(namespace["main"](answerer), 30)
        assert answerer.connecting is not None
        await asyncio.wait_for(answerer.connecting, 10)
        # main() left its `async with`: close() delivered the channel's message and
        # the RTP packet before close_notify, which then closed the answerer too
        await _until(lambda: answerer.peer.state == PeerState.CLOSED)
        assert answerer.heard == [("chat", "hello")]
        assert answerer.rtp == [RTP]
    finally:
        await answerer.peer.close()


def test_sans_io_example(capsys: pytest.CaptureFixture[str]) -> None:
    exec(_python_block("DtlsConnection(True"), {})  # its last line asserts equal keys
    assert capsys.readouterr().out.startswith("HandshakeComplete(")


class TrickleSignaling:
    """The trickle snippet's stand-in: the answering peer trickles too; candidates are
    relayed both ways as the JSON the snippet sends, "null" ending each list."""

    def __init__(self) -> None:
        self.peer = SecurePeer(host_addresses=["127.0.0.1"])
        self.answered = asyncio.Event()
        self.to_offerer: asyncio.Queue[str] = asyncio.Queue()
        self.relayed: list[asyncio.Future[None]] = []
        self.sent: list[str] = []
        self.connecting: asyncio.Future[None] | None = None
        self.peer.on(
            "icecandidate",
            lambda c: self.to_offerer.put_nowait(c.to_json() if c else "null"),
        )

    def send(self, message: str) -> None:
        """The offerer's candidate (or "null"), to the answerer once it has answered."""
        self.sent.append(message)

        async def relay() -> None:
            await self.answered.wait()
            await self.peer.add_ice_candidate(message)

        self.relayed.append(asyncio.ensure_future(relay()))

    async def exchange(self, offer_json: str) -> str:
        answer = await self.peer.create_answer(offer_json, trickle=True)
        self.answered.set()
        self.connecting = asyncio.ensure_future(self.peer.connect(offer_json))
        return answer.to_json()

    async def candidates(self) -> AsyncIterator[str]:
        while (message := await self.to_offerer.get()) != "null":
            yield message
        yield message


async def test_trickle_example() -> None:
    body = _python_block("trickle=True")
    source = "async def snippet(peer, signaling):\n" + textwrap.indent(body, "    ")
    namespace: dict[str, Any] = {"asyncio": asyncio}
    exec(source, namespace)
    signaling = TrickleSignaling()
    peer = SecurePeer(host_addresses=["127.0.0.1"])
    try:
        await asyncio.wait_for(namespace["snippet"](peer, signaling), 30)
        assert signaling.connecting is not None
        await asyncio.wait_for(signaling.connecting, 10)
        await asyncio.wait_for(asyncio.gather(*signaling.relayed), 10)
        assert peer.state == signaling.peer.state == PeerState.CONNECTED
        assert signaling.sent[-1] == "null"
        assert all(IceCandidate.coerce(m) is not None for m in signaling.sent[:-1])
        assert len(signaling.sent) >= 2  # at least one candidate trickled
    finally:
        await peer.close()
        await signaling.peer.close()
