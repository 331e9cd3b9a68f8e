"""SegmentSender (Linux UDP segmentation offload) against one sendto per datagram, on
loopback sockets: the receiver must get the same datagrams, octet for octet and in
the same order, whatever the lengths in a batch (runs of one length, a shorter one
closing a run, longer ones, singles, more than a run may hold); a transport that
holds queued datagrams, a full socket buffer or a kernel that refuses the offload
sends through the transport, in order; and the sender's descriptor is its own.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest

from webrtc_secure.udp_gso import MAX_RUN_OCTETS, MAX_SEGMENTS, SegmentSender

pytestmark = [
    pytest.mark.both_loops,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's UDP_SEGMENT"),
]


def _batches() -> list[list[bytes]]:
    def run(size: int, count: int, tag: int) -> list[bytes]:
        return [bytes([tag, i % 256]) + bytes([i % 251]) * (size - 2) for i in range(count)]

    return [
        run(1185, 5, 1),  # a full burst
        run(1185, 4, 2) + run(300, 1, 3),  # a shorter last one closes the run
        run(1185, 2, 4) + run(60, 1, 5) + run(1185, 3, 6),  # a short one in the middle
        run(60, 1, 7) + run(1185, 3, 8),  # a short one first
        run(900, 2, 9) + run(1185, 2, 10),  # a longer one starts a new run
        run(1185, 1, 11),  # alone
        run(1100, MAX_SEGMENTS + 7, 12),  # more than one run holds (octets)
        run(200, MAX_SEGMENTS + 3, 13),  # more than one run holds (segments)
        [b"\x17a", b"\x17b", b"\x17c"],  # tiny ones
        run(1185, 3, 14) + run(40, 2, 15),  # two short ones: the second starts a run
    ]


async def _endpoint(
    handler: Callable[[bytes], None] | None = None,
) -> tuple[asyncio.DatagramTransport, Any]:
    loop = asyncio.get_running_loop()

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if handler is not None:
                handler(data)

    transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    return transport, transport.get_extra_info("sockname")


async def _received(
    send: Callable[[asyncio.DatagramTransport, Any, list[bytes]], None], batches: list[list[bytes]]
) -> list[bytes]:
    got: list[bytes] = []
    receiver, address = await _endpoint(got.append)
    sock = receiver.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sender, _ = await _endpoint()
    try:
        total = 0
        for batch in batches:
            send(sender, address, batch)
            total += len(batch)
            for _ in range(200):
                if len(got) >= total:
                    break
                await asyncio.sleep(0.005)
        return got
    finally:
        sender.close()
        receiver.close()


def _refuse(datagram: bytes, exc: OSError) -> None:
    raise AssertionError(f"refused {len(datagram)} octets: {exc}")


async def test_the_receiver_gets_what_sendto_would_deliver() -> None:
    batches = _batches()
    runs = []

    def one_at_a_time(
        transport: asyncio.DatagramTransport, address: Any, batch: list[bytes]
    ) -> None:
        for datagram in batch:
            transport.sendto(datagram, address)

    def segmented(transport: asyncio.DatagramTransport, address: Any, batch: list[bytes]) -> None:
        sender = SegmentSender.for_path(transport.sendto, address)
        assert sender is not None
        try:
            sender.send(batch, _refuse)
            runs.append(sender.runs)
            assert sender.enabled
        finally:
            sender.close()

    expected = await _received(one_at_a_time, batches)
    assert expected == [d for batch in batches for d in batch]
    assert await _received(segmented, batches) == expected
    # runs of two or more went in one system call each: the burst in one, the
    # batches over a run's limits in several
    assert runs[0] == 1 and runs[1] == 1 and runs[5] == 0
    assert runs[6] == -(-len(batches[6]) // (MAX_RUN_OCTETS // 1100))
    assert runs[7] == 2


async def test_queued_datagrams_are_not_overtaken() -> None:
    """While the transport holds datagrams (its buffer is not empty), the batch goes
    through the transport's sendto, behind them."""
    sender_transport, _ = await _endpoint()
    try:
        sent: list[bytes] = []
        sender = SegmentSender.for_path(sender_transport.sendto, ("127.0.0.1", 9))
        assert sender is not None
        sender._buffered = lambda: 1200  # what the transport holds
        sender._sendto = lambda data, addr: sent.append(data)
        batch = [bytes([i]) * 1000 for i in range(4)]
        sender.send(batch, _refuse)
        assert sent == batch and sender.runs == 0
        sender.close()
    finally:
        sender_transport.close()


@pytest.mark.parametrize(
    ("error", "stays_on"),
    [
        (OSError(errno.EIO, "no checksum offload"), False),
        (OSError(errno.EINVAL, "invalid"), False),
        (BlockingIOError(errno.EAGAIN, "full"), True),
        (OSError(errno.ENOBUFS, "no buffer space"), True),
    ],
)
async def test_a_refused_run_goes_through_the_transport(error: OSError, stays_on: bool) -> None:
    sender_transport, _ = await _endpoint()
    try:
        sender = SegmentSender.for_path(sender_transport.sendto, ("127.0.0.1", 9))
        assert sender is not None
        sent: list[bytes] = []
        sender._sendto = lambda data, addr: sent.append(data)

        class _Refusing:
            def sendmsg(self, *args: object) -> int:
                raise error

            def close(self) -> None:
                pass

        real = sender._socket
        assert real is not None
        sender._socket = _Refusing()  # type: ignore[assignment]
        batch = [bytes([i]) * 500 for i in range(3)]
        sender.send(batch, _refuse)
        assert sent == batch and sender.runs == 0
        assert sender.enabled is stays_on
        real.close()
    finally:
        sender_transport.close()


async def test_sendto_refusals_are_reported_and_the_rest_still_go() -> None:
    sender_transport, _ = await _endpoint()
    try:
        sender = SegmentSender.for_path(sender_transport.sendto, ("127.0.0.1", 9))
        assert sender is not None
        sender.enabled = False
        sent: list[bytes] = []
        refused: list[bytes] = []

        def sendto(data: bytes, addr: Any) -> None:
            if data[0] == 1:
                raise OSError(errno.EPERM, "filtered")
            sent.append(data)

        sender._sendto = sendto
        batch = [bytes([i]) * 10 for i in range(3)]
        sender.send(batch, lambda datagram, exc: refused.append(datagram))
        assert sent == [batch[0], batch[2]] and refused == [batch[1]]
        sender.close()
    finally:
        sender_transport.close()


async def test_only_a_udp_transports_own_sendto_gets_a_sender() -> None:
    transport, _ = await _endpoint()
    try:

        def other(data: bytes, addr: Any) -> None:
            pass

        assert SegmentSender.for_path(other, ("127.0.0.1", 9)) is None
        sender = SegmentSender.for_path(transport.sendto, ("127.0.0.1", 9))
        assert sender is not None
        # its own descriptor: closing it leaves the transport's socket working
        sock = transport.get_extra_info("socket")
        assert sender._socket is not None and sender._socket.fileno() != sock.fileno()
        sender.close()
        sender.close()  # idempotent
        assert not sender.enabled
        got: list[bytes] = []
        receiver, address = await _endpoint(got.append)
        transport.sendto(b"\x17still", address)
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.005)
        assert got == [b"\x17still"]
        receiver.close()
    finally:
        transport.close()
