"""Batched reads on the nominated pair's asyncio socket (``ice.batch_reads``).

asyncio's selector datagram transport reads one datagram per readiness callback; on
the nominated pair ours reads up to ``ice.MAX_BATCH``. These tests check that every
datagram of a batch still goes through the same per-datagram path (the fast path's
source check, the connection's gate for STUN), in the socket's order, and that a batch
is bounded. To see exactly what one callback does, the transport's socket is replaced
by :class:`QueuedSocket`, whose ``recvfrom`` hands out a prepared queue and then raises
``BlockingIOError`` as an empty non-blocking socket does, and whose ``ioctl`` answers
FIONREAD (asked after the first datagram: is another queued?) from the same queue, as
Linux answers it for a UDP socket (the real answer is checked too).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.test_ice_fastpath import Stack, _connected, _nominated_protocol
from webrtc_secure import ice, loops

pytestmark = pytest.mark.both_loops


class QueuedSocket:
    """A socket whose receive queue is a list; everything else is the real socket's."""

    def __init__(self, real: socket.socket, queued: list[tuple[bytes, Any]]) -> None:
        self.real = real
        self.queued = queued
        self.reads = 0  # recvfrom calls, the one that found the queue empty included
        self.asked = 0  # FIONREAD questions

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        self.reads += 1
        if not self.queued:
            raise BlockingIOError
        data, addr = self.queued.pop(0)
        return data[:size], addr

    def ioctl(self, fd: int, request: int, answer: bytearray) -> int:
        """``ice._ioctl`` for this socket: FIONREAD as Linux answers it for UDP, the
        next datagram's length (0 for none, and for an empty one)."""
        assert fd == self.real.fileno() and request == ice._FIONREAD
        self.asked += 1
        size = len(self.queued[0][0]) if self.queued else 0
        answer[:] = size.to_bytes(4, sys.byteorder)
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def queued_socket(monkeypatch: pytest.MonkeyPatch) -> Callable[..., QueuedSocket]:
    """Makes a QueuedSocket whose FIONREAD answers the batch reader (``ice._ioctl``)."""

    def make(real: socket.socket, queued: list[tuple[bytes, Any]]) -> QueuedSocket:
        fake = QueuedSocket(real, queued)
        monkeypatch.setattr(ice, "_ioctl", fake.ioctl)
        return fake

    return make


@pytest.fixture
async def stacks() -> AsyncIterator[list[Stack]]:
    opened: list[Stack] = []
    yield opened
    for stack in opened:
        await stack.close()


async def _connected_path(stacks: list[Stack]) -> tuple[Stack, Any, Any]:
    """A connected pair (closed by the ``stacks`` fixture), the transport of a's
    nominated protocol and the remote address of the nominated pair."""
    stack = await _connected()
    stacks.append(stack)
    protocol = _nominated_protocol(stack.a)
    pair = stack.a.nominated_pair
    assert pair is not None
    return stack, protocol.transport, pair.remote_addr


def _registered_reader(transport: Any) -> Callable[[], None]:
    """The callback the loop runs when the transport's socket is readable."""
    loop = asyncio.get_running_loop()
    key = loop._selector.get_key(transport._sock_fd)  # type: ignore[attr-defined]
    reader, _writer = key.data
    return reader._callback  # type: ignore[no-any-return]


@pytest.mark.asyncio(loop_factories=["asyncio"])  # asyncio's selector transport
async def test_one_callback_delivers_the_queued_datagrams_in_order_through_the_gate(
    stacks: list[Stack], queued_socket: Callable[..., QueuedSocket]
) -> None:
    """Six datagrams queued on a's nominated socket: one callback reads them all,
    in order; the one from another address is dropped and counted, the rest reach the
    protocol; the seventh read finds the socket empty and ends the batch."""
    stack, transport, remote = await _connected_path(stacks)
    stranger = ("127.0.0.1", 9)  # another source: the fast path's check drops it
    queued = [
        (b"\x16one", remote),
        (b"\x80two", remote),
        (b"\x16from a stranger", stranger),
        (b"\x16three", remote),
        (b"\x17four", remote),
        (b"\x16five", remote),
    ]
    fake = queued_socket(transport._sock, list(queued))
    real, transport._sock = transport._sock, fake
    try:
        before = stack.a.dropped["unexpected_source"]
        _registered_reader(transport)()
    finally:
        transport._sock = real
    assert stack.ra.received == [b"\x16one", b"\x80two", b"\x16three", b"\x17four", b"\x16five"]
    assert stack.a.dropped["unexpected_source"] == before + 1
    assert fake.queued == [] and fake.reads == len(queued) + 1
    assert fake.asked == 1  # asked once, after the first: then read until empty
    assert stack.slow["a"] == 0  # none went through aioice's queue


@pytest.mark.asyncio(loop_factories=["asyncio"])  # asyncio's selector transport
async def test_one_queued_datagram_is_read_without_a_read_that_fails(
    stacks: list[Stack], queued_socket: Callable[..., QueuedSocket]
) -> None:
    """The round trip's case: one datagram queued. It is read and delivered, FIONREAD
    says nothing more is queued, and the batch ends there, with no second recvfrom
    (which would find the socket empty and raise). A datagram queued later is read by
    the next callback."""
    stack, transport, remote = await _connected_path(stacks)
    fake = queued_socket(transport._sock, [(b"\x16one", remote)])
    real, transport._sock = transport._sock, fake
    try:
        reader = _registered_reader(transport)
        reader()
        assert stack.ra.received == [b"\x16one"]
        assert (fake.reads, fake.asked) == (1, 1)
        fake.queued.append((b"\x16two", remote))
        reader()
    finally:
        transport._sock = real
    assert stack.ra.received == [b"\x16one", b"\x16two"]
    assert (fake.reads, fake.asked) == (2, 2)


@pytest.mark.skipif(ice._ioctl is None, reason="no fcntl.ioctl on this platform")
def test_fionread_is_the_next_datagram_length_on_a_udp_socket() -> None:
    """What the batch reader rests on, asked of a real loopback UDP socket: FIONREAD
    answers 0 when nothing is queued and the next datagram's length otherwise, and 0
    for an empty datagram next in the queue (the reader then leaves it for the next
    readiness callback: the socket is still readable)."""
    assert ice._ioctl is not None
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(1.0)
        answer = bytearray(4)

        def queued() -> int:
            ice._ioctl(receiver.fileno(), ice._FIONREAD, answer)  # type: ignore[misc]
            return int.from_bytes(answer, sys.byteorder)

        assert queued() == 0 and bytes(answer) == ice._NOTHING_QUEUED
        sender.sendto(b"12345", receiver.getsockname())
        sender.sendto(b"", receiver.getsockname())
        sender.sendto(b"xy", receiver.getsockname())
        assert receiver.recv(0, socket.MSG_PEEK) == b""  # (waits for the first)
        assert queued() == 5
        assert receiver.recv(100) == b"12345"
        assert queued() == 0  # the empty one is next: reads as nothing queued
        assert receiver.recv(100) == b""
        assert queued() == 2
        assert receiver.recv(100) == b"xy"
        assert queued() == 0
    finally:
        receiver.close()
        sender.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])  # asyncio's selector transport
async def test_a_batch_is_bounded(
    stacks: list[Stack], queued_socket: Callable[..., QueuedSocket]
) -> None:
    """More than MAX_BATCH queued: one callback reads MAX_BATCH, the next the rest,
    so one busy socket cannot hold the loop."""
    stack = await _connected()
    stacks.append(stack)
    transport: Any = _nominated_protocol(stack.a).transport
    pair = stack.a.nominated_pair
    assert pair is not None
    total = ice.MAX_BATCH + 5
    data = [b"\x16" + i.to_bytes(2, "big") for i in range(total)]
    fake = queued_socket(transport._sock, [(d, pair.remote_addr) for d in data])
    real, transport._sock = transport._sock, fake
    try:
        reader = _registered_reader(transport)
        reader()
        assert stack.ra.received == data[: ice.MAX_BATCH]
        assert fake.reads == ice.MAX_BATCH  # stopped at the bound, not at an empty socket
        reader()
        assert stack.ra.received == data
    finally:
        transport._sock = real


@pytest.mark.asyncio(loop_factories=["asyncio"])  # asyncio's selector transport
async def test_stun_in_a_batch_still_goes_to_aioice_and_a_close_ends_the_batch(
    stacks: list[Stack], queued_socket: Callable[..., QueuedSocket]
) -> None:
    """A STUN datagram in a batch takes the connection's gate (aioice here: it is
    not a consent check), the DTLS around it our protocol; a datagram whose handler
    closes the transport ends the batch, as asyncio's reader would read no more."""
    stack, transport, remote = await _connected_path(stacks)
    garbage_stun = b"\x00\x01\x00\x00" + bytes(4)  # too short for aioice: its parse fails
    fake = queued_socket(
        transport._sock,
        [(b"\x16a", remote), (garbage_stun, remote), (b"\x16b", remote)],
    )

    class ClosingList(list[bytes]):
        """The protocol's record, which closes the socket's transport at b"\x16b"."""

        def append(self, data: bytes) -> None:
            super().append(data)
            if data == b"\x16b":
                transport.close()

    stack.ra.received = ClosingList()
    fake.queued.append((b"\x16never", remote))
    unverifiable = stack.a.dropped["unverifiable"]
    real, transport._sock = transport._sock, fake
    try:
        _registered_reader(transport)()
    finally:
        transport._sock = real
    # aioice could not parse it and handed it on without a source: counted, dropped
    assert stack.a.dropped["unverifiable"] == unverifiable + 1
    assert stack.ra.received == [b"\x16a", b"\x16b"]
    assert fake.queued == [(b"\x16never", remote)]  # not read after the close


async def test_real_socket_datagrams_arrive_whole_and_in_order(stacks: list[Stack]) -> None:
    """Through the real sockets, on both loops: a burst of 200 arrives in order, and a
    stranger's datagrams among them are counted, never delivered."""
    stack = await _connected()
    stacks.append(stack)
    assert stack.tb is not None
    sockname = _nominated_protocol(stack.a).transport.get_extra_info("sockname")
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = [b"\x17" + i.to_bytes(2, "big") * 300 for i in range(200)]
    try:
        for i, data in enumerate(sent):
            stack.tb.sendto(data)
            if i % 50 == 0:
                stranger.sendto(b"\x16stranger", sockname)
        await ice_until(lambda: len(stack.ra.received) == len(sent))
        await ice_until(lambda: stack.a.dropped["unexpected_source"] == 4)
    finally:
        stranger.close()
    assert stack.ra.received == sent


async def test_an_empty_datagram_in_the_queue_does_not_stall_the_ones_behind_it(
    stacks: list[Stack],
) -> None:
    """Real sockets, both loops: an empty datagram between two (FIONREAD reads it as
    nothing queued on asyncio) is left for the next callback, which reads it (the gate
    drops it: not from the pair) and the one behind it."""
    stack = await _connected()
    stacks.append(stack)
    assert stack.tb is not None
    sockname = _nominated_protocol(stack.a).transport.get_extra_info("sockname")
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stack.tb.sendto(b"\x17first")
        stranger.sendto(b"", sockname)
        stack.tb.sendto(b"\x17second")
        await ice_until(lambda: len(stack.ra.received) == 2)
    finally:
        stranger.close()
    assert stack.ra.received == [b"\x17first", b"\x17second"]


async def ice_until(predicate: Callable[[], bool]) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_reader_is_ours_on_asyncio_only_and_unhook_gives_asyncio_its_own_back(
    stacks: list[Stack],
) -> None:
    """On asyncio the nominated socket's registered reader is the batch reader and
    closing our transport (unhook) registers asyncio's own again; uvloop's transport
    is left as it is (it reads up to 32 datagrams per iteration by itself)."""
    stack = await _connected()
    stacks.append(stack)
    assert stack.ta is not None
    transport: Any = _nominated_protocol(stack.a).transport
    if loops.running_loop_name() != "asyncio":
        assert ice.batch_reads(transport) is None
        assert not hasattr(transport, "_read_ready")
        return
    ours = _registered_reader(transport)
    assert vars(transport)["_read_ready"] is ours
    assert ice.batch_reads(transport) is None  # never twice
    stack.ta.close()
    assert "_read_ready" not in vars(transport)
    restored = _registered_reader(transport)
    assert restored is not ours
    assert restored == transport._read_ready  # asyncio's bound method


def test_batch_reads_leaves_other_transports_alone() -> None:
    class Other:  # uvloop's UDPTransport, aioice's TurnTransport, ...
        pass

    assert ice.batch_reads(Other()) is None


@pytest.mark.asyncio(loop_factories=["asyncio"])  # asyncio's selector transport
async def test_a_pause_from_a_handler_ends_the_batch(
    stacks: list[Stack], queued_socket: Callable[..., QueuedSocket]
) -> None:
    """The batch reads the transport's flags after each datagram (what ``is_reading``
    reads): a handler that pauses reading ends the batch there, as asyncio's reader
    would read no more; resuming puts the batch reader back."""
    stack, transport, remote = await _connected_path(stacks)
    reader = _registered_reader(transport)
    fake = queued_socket(transport._sock, [(b"\x16a", remote), (b"\x16b", remote)])

    class PausingList(list[bytes]):
        def append(self, data: bytes) -> None:
            super().append(data)
            if data == b"\x16a":
                transport.pause_reading()

    stack.ra.received = PausingList()
    real, transport._sock = transport._sock, fake
    try:
        reader()
    finally:
        transport._sock = real
    assert stack.ra.received == [b"\x16a"]
    assert fake.queued == [(b"\x16b", remote)] and fake.reads == 1
    transport.resume_reading()
    assert _registered_reader(transport) is reader
