"""Our Association against aiortc's RTCSctpTransport (its own SCTP implementation),
packets passed in memory: aiortc sits on a stand-in for its DTLS transport, our engine
is driven by a small asyncio loop on the real clock. Nothing touches the network.

Checks: the association comes up although both ends send INIT (aiortc always does,
RFC 8841 9.3), extensions we offer and aiortc lacks (I-DATA, zero checksum) stay off,
aiortc's data channel opens through DCEP (answered by hand here, RFC 8832), messages
of every size flow both ways intact and in order, aiortc's close (an outgoing stream
reset) reaches us as IncomingStreamsReset and our reset closes aiortc's channel, and
aiortc's stop() (ABORT) ends the association with a typed error.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.sctp_pair import config, healthy
from webrtc_secure.errors import AssociationAborted
from webrtc_secure.sctp.association import Association
from webrtc_secure.sctp.events import (
    AssociationClosed,
    AssociationEstablished,
    IncomingStreamsReset,
    MessageReceived,
    OutgoingStreamsReset,
)

aiortc = pytest.importorskip("aiortc")
from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters  # noqa: E402
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport  # noqa: E402

pytestmark = pytest.mark.interop

PPID_DCEP = 50
PPID_STRING = 51
PPID_BINARY = 53
DCEP_OPEN = 0x03
DCEP_ACK = 0x02


class FakeDtls:
    """What RTCSctpTransport uses of RTCDtlsTransport."""

    def __init__(self, role: str, deliver: Any) -> None:
        self.state = "connected"
        self._role = role
        self._deliver = deliver
        self.receiver: Any = None

    def _register_data_receiver(self, receiver: Any) -> None:
        self.receiver = receiver

    def _unregister_data_receiver(self, receiver: Any) -> None:
        self.receiver = None

    async def _send_data(self, data: bytes) -> None:
        self._deliver(data)


class Driver:
    """Runs our Association on the event loop: packets in, packets out, timers."""

    def __init__(self, assoc: Association, dtls: FakeDtls) -> None:
        self.assoc = assoc
        self.dtls = dtls
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.events: list[Any] = []
        self.changed = asyncio.Event()
        self.task = asyncio.ensure_future(self._run())

    def now(self) -> float:
        return self.loop.time()

    async def flush(self) -> None:
        for packet in self.assoc.datagrams_to_send(self.now()):
            if self.dtls.receiver is not None:
                await self.dtls.receiver._handle_data(packet)
        while (event := self.assoc.next_event()) is not None:
            self.events.append(event)
            self.on_event(event)
            self.changed.set()
        for packet in self.assoc.datagrams_to_send(self.now()):
            if self.dtls.receiver is not None:
                await self.dtls.receiver._handle_data(packet)

    def on_event(self, event: Any) -> None:
        # Minimal DCEP: acknowledge every DATA_CHANNEL_OPEN on its stream.
        if (
            isinstance(event, MessageReceived)
            and event.ppid == PPID_DCEP
            and event.data[:1] == bytes([DCEP_OPEN])
        ):
            self.assoc.send(event.stream_id, PPID_DCEP, bytes([DCEP_ACK]), self.now())

    async def _run(self) -> None:
        while True:
            timer = self.assoc.get_timer()
            timeout = None if timer is None else max(0.0, timer - self.now())
            try:
                data = await asyncio.wait_for(self.inbox.get(), timeout)
            except asyncio.TimeoutError:
                self.assoc.handle_timer(self.now())
            else:
                self.assoc.receive_datagram(data, self.now())
            await self.flush()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def _setup(role: str) -> tuple[Driver, RTCSctpTransport]:
    ours = Association(config(7, remote_max_message_size=65536))
    holder: dict[str, Driver] = {}
    dtls = FakeDtls(role, lambda data: holder["d"].inbox.put_nowait(data))
    driver = Driver(ours, dtls)
    holder["d"] = driver
    theirs = RTCSctpTransport(dtls)  # type: ignore[arg-type]
    ours.connect(driver.now())
    await driver.flush()
    await theirs.start(RTCSctpCapabilities(maxMessageSize=262144), 5000)
    await driver.wait_for(lambda: bool(driver.of(AssociationEstablished)))
    return driver, theirs


@pytest.mark.parametrize("role", ["client", "server"])
async def test_messages_both_ways_and_close_with_aiortc(role: str) -> None:
    driver, theirs = await _setup(role)
    ours = driver.assoc
    try:
        assert not ours.interleaving and not ours.zero_checksum
        channel = RTCDataChannel(theirs, RTCDataChannelParameters(label="chat"))
        opened = asyncio.Event()
        received: list[bytes | str] = []
        channel.on("open", opened.set)
        channel.on("message", received.append)
        await asyncio.wait_for(opened.wait(), 10)
        sid = channel.id
        assert sid is not None and sid % 2 == (0 if role == "client" else 1)
        [open_msg] = [m for m in driver.of(MessageReceived) if m.ppid == PPID_DCEP]
        assert open_msg.stream_id == sid

        rng = random.Random(3)
        sizes = [1, 2, 100, 1100, 1200, 5000, 20000, 65536] + [
            rng.randint(1, 30000) for _ in range(40)
        ]
        payloads = [rng.randbytes(n) for n in sizes]
        for p in payloads:
            channel.send(p)
        channel.send("text ünïcode")

        def from_aiortc() -> list[MessageReceived]:
            return [m for m in driver.of(MessageReceived) if m.ppid != PPID_DCEP]

        await driver.wait_for(lambda: len(from_aiortc()) == len(payloads) + 1, 20)
        got = from_aiortc()
        assert [m.data for m in got[:-1]] == payloads
        assert {m.ppid for m in got[:-1]} == {PPID_BINARY}
        assert (got[-1].ppid, got[-1].data) == (PPID_STRING, "text ünïcode".encode())

        # Echo everything back on the same stream.
        for m in got:
            ours.send(sid, m.ppid, m.data, driver.now())
        await driver.flush()
        for _ in range(400):
            if len(received) == len(got):
                break
            await asyncio.sleep(0.01)
        assert received[:-1] == payloads and received[-1] == "text ünïcode"

        # aiortc closes: its outgoing reset reaches us; we answer with ours.
        channel.close()
        await driver.wait_for(lambda: bool(driver.of(IncomingStreamsReset)))
        assert driver.of(IncomingStreamsReset) == [IncomingStreamsReset((sid,))]
        ours.reset_streams([sid], driver.now())
        await driver.flush()
        await driver.wait_for(lambda: bool(driver.of(OutgoingStreamsReset)))
        for _ in range(200):
            if channel.readyState == "closed":
                break
            await asyncio.sleep(0.01)
        assert channel.readyState == "closed"
        assert healthy(ours)
        # Nothing aiortc sent was refused (a second INIT-ACK of the collision may be).
        assert set(ours.stats.dropped) <= {"init_ack_unexpected"}
        assert not ours.stats.error_causes
    finally:
        await theirs.stop()
        await driver.wait_for(lambda: bool(driver.of(AssociationClosed)))
        driver.task.cancel()
    [closed] = driver.of(AssociationClosed)
    assert isinstance(closed.error, AssociationAborted)


async def test_aiortc_opens_a_channel_we_then_reset() -> None:
    driver, theirs = await _setup("client")
    ours = driver.assoc
    try:
        channel = RTCDataChannel(
            theirs, RTCDataChannelParameters(label="x", ordered=False, maxRetransmits=0)
        )
        opened = asyncio.Event()
        closed = asyncio.Event()
        channel.on("open", opened.set)
        channel.on("close", closed.set)
        await asyncio.wait_for(opened.wait(), 10)
        sid = channel.id
        assert sid is not None
        channel.send(b"unordered, unreliable")
        await driver.wait_for(
            lambda: any(m.data == b"unordered, unreliable" for m in driver.of(MessageReceived))
        )
        # We close first: aiortc resets its side in answer, then its channel is closed.
        ours.reset_streams([sid], driver.now())
        await driver.flush()
        await asyncio.wait_for(closed.wait(), 10)
        await driver.wait_for(lambda: bool(driver.of(OutgoingStreamsReset)))
        await driver.wait_for(lambda: bool(driver.of(IncomingStreamsReset)))
        assert healthy(ours)
    finally:
        await theirs.stop()
        driver.task.cancel()
