"""Batched reads on the nominated pair's asyncio socket (``ice.batch_reads``).

asyncio's selector datagram transport reads one datagram per readiness callback; on
the nominated pair ours reads up to ``ice.MAX_BATCH``. These tests check that every
datagram of a batch still goes through the same per-datagram path (the fast path's
source check, the connection's gate for STUN), in the socket's order, and that a batch
is bounded. To see exactly what one callback does, the transport's socket is replaced
by :class:`QueuedSocket`, whose ``recvfrom`` hands out a prepared queue and then raises
``BlockingIOError`` as an empty non-blocking socket does.
"""

from __future__ import annotations

import asyncio
import socket
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

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        self.reads += 1
        if not self.queued:
            raise BlockingIOError
        data, addr = self.queued.pop(0)
        return data[:size], addr

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


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
    stacks: list[Stack],
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
    fake = QueuedSocket(transport._sock, list(queued))
    real, transport._sock = transport._sock, fake
    try:
        before = stack.a.dropped["unexpected_source"]
        _registered_reader(transport)()
    finally:
        transport._sock = real
    assert stack.ra.received == [b"\x16one", b"\x80two", b"\x16three", b"\x17four", b"\x16five"]
    assert stack.a.dropped["unexpected_source"] == before + 1
    assert fake.queued == [] and fake.reads == len(queued) + 1
    assert stack.slow["a"] == 0  # none went through aioice's queue


@pytest.mark.asyncio(loop_factories=["asyncio"])  # asyncio's selector transport
async def test_a_batch_is_bounded(stacks: list[Stack]) -> None:
    """More than MAX_BATCH queued: one callback reads MAX_BATCH, the next the rest,
    so one busy socket cannot hold the loop."""
    stack = await _connected()
    stacks.append(stack)
    transport: Any = _nominated_protocol(stack.a).transport
    pair = stack.a.nominated_pair
    assert pair is not None
    total = ice.MAX_BATCH + 5
    data = [b"\x16" + i.to_bytes(2, "big") for i in range(total)]
    fake = QueuedSocket(transport._sock, [(d, pair.remote_addr) for d in data])
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
    stacks: list[Stack],
) -> None:
    """A STUN datagram in a batch takes the connection's gate (aioice here: it is
    not a consent check), the DTLS around it our protocol; a datagram whose handler
    closes the transport ends the batch, as asyncio's reader would read no more."""
    stack, transport, remote = await _connected_path(stacks)
    garbage_stun = b"\x00\x01\x00\x00" + bytes(4)  # too short for aioice: its parse fails
    fake = QueuedSocket(
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
async def test_a_pause_from_a_handler_ends_the_batch(stacks: list[Stack]) -> None:
    """The batch reads the transport's flags after each datagram (what ``is_reading``
    reads): a handler that pauses reading ends the batch there, as asyncio's reader
    would read no more; resuming puts the batch reader back."""
    stack, transport, remote = await _connected_path(stacks)
    reader = _registered_reader(transport)
    fake = QueuedSocket(transport._sock, [(b"\x16a", remote), (b"\x16b", remote)])

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
