"""SecurePeer's per-packet media path: the send fast path and its typed errors, the ICE
receive fast path under a peer, and the direct dispatch of "rtp"/"rtcp" to handlers
(which must behave as pyee's emit does, and fall back to it)."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from webrtc_secure import PeerState, SecurePeer, ice
from webrtc_secure.errors import ConnectionClosed, PacketTooLarge
from webrtc_secure.peer import MAX_DATAGRAM

pytestmark = pytest.mark.both_loops

HOST = ["127.0.0.1"]


def _rtp(seq: int, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes([seq % 256]) * 40


def _rtcp(ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHI", 0x80, 200, 6, ssrc) + bytes(20)


async def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)


async def _connected_pair(use_ice: bool = True) -> tuple[SecurePeer, SecurePeer]:
    a = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    b = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 20)
    return a, b


@pytest.fixture
async def peers() -> AsyncIterator[list[SecurePeer]]:
    opened: list[SecurePeer] = []
    yield opened
    for peer in opened:
        await peer.close()


@pytest.mark.parametrize("use_ice", [True, False], ids=["ice", "udp"])
async def test_send_raises_connection_closed_before_connect_and_after_close(
    use_ice: bool, peers: list[SecurePeer]
) -> None:
    a = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    b = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    peers += [a, b]
    for send, packet in ((a.send_rtp, _rtp(1)), (a.send_rtcp, _rtcp())):
        with pytest.raises(ConnectionClosed):
            send(packet)  # a new peer
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    with pytest.raises(ConnectionClosed):
        a.send_rtp(_rtp(1))  # described, not connected
    await asyncio.gather(a.connect(answer), b.connect(offer))
    a.send_rtp(_rtp(2))
    a.send_rtcp(_rtcp())
    stats = a.stats()
    assert stats["rtp_out"] == 1 and stats["rtcp_out"] == 1
    await a.close()
    for send, packet in ((a.send_rtp, _rtp(3)), (a.send_rtcp, _rtcp())):
        with pytest.raises(ConnectionClosed):
            send(packet)
    assert a.stats()["rtp_out"] == 1 and a.stats()["rtcp_out"] == 1


async def test_ice_media_takes_the_fast_paths_both_ways(peers: list[SecurePeer]) -> None:
    a, b = await _connected_pair()
    peers += [a, b]
    slow = {"a": 0, "b": 0}
    for name, peer in (("a", a), ("b", b)):
        transport = peer._transport
        assert transport is not None
        assert transport.fast_send and transport.fast_receive  # type: ignore[attr-defined]
        original = peer._ice.data_received

        def counted(data: bytes, component: int, name: str = name, f: Any = original) -> None:
            slow[name] += 1
            f(data, component)

        peer._ice.data_received = counted
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    a.on("rtp", got_a.append)
    b.on("rtp", got_b.append)
    b.on("rtcp", got_b.append)
    for i in range(10):
        a.send_rtp(_rtp(i))
        b.send_rtp(_rtp(i, 0x5678))
    a.send_rtcp(_rtcp())
    # a data channel beside: SCTP rides on DTLS, which the ICE fast path hands over too
    # b listens before a opens the channel: on uvloop b's "datachannel" event can come
    # before a's wait_open() returns
    messages: list[str | bytes] = []
    b.on("datachannel", lambda theirs: theirs.on("message", messages.append))
    channel = a.create_data_channel("data channel too")
    await asyncio.wait_for(channel.wait_open(), 5)
    channel.send(b"data channel too")
    await _wait_for(lambda: len(got_b) == 11 and len(got_a) == 10 and bool(messages))
    assert messages == [b"data channel too"]
    assert got_b[:10] == [_rtp(i) for i in range(10)] and got_b[10] == _rtcp()
    assert got_a == [_rtp(i, 0x5678) for i in range(10)]
    assert slow == {"a": 0, "b": 0}
    assert a.stats()["datagrams_out"] >= 12 and b.stats()["rtp_in"] == 10


async def test_sends_while_the_ice_transport_goes_away_are_dropped_then_refused(
    peers: list[SecurePeer],
) -> None:
    a, b = await _connected_pair()
    peers += [a, b]
    closed = asyncio.Event()
    a.on("closed", closed.set)
    await a._ice.close()  # what consent expiry does under a connected peer
    assert a._transport is not None and not a._transport.fast_send  # type: ignore[attr-defined]
    a.send_rtp(_rtp(1))  # still connected until the loss is seen: dropped, no error
    await asyncio.wait_for(closed.wait(), 5)
    assert a.state == PeerState.CLOSED
    with pytest.raises(ConnectionClosed):
        a.send_rtp(_rtp(2))


@pytest.fixture(params=[True, False], ids=["direct", "emit"])
def dispatch(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def _media_pair(peers: list[SecurePeer], direct: bool) -> tuple[SecurePeer, SecurePeer]:
    a, b = await _connected_pair(use_ice=False)
    peers += [a, b]
    assert b._direct_dispatch, "pyee's registry changed: rtp/rtcp go through emit()"
    b._direct_dispatch = direct
    return a, b


async def test_handlers_added_removed_and_once(peers: list[SecurePeer], dispatch: bool) -> None:
    a, b = await _media_pair(peers, dispatch)
    first: list[bytes] = []
    second: list[bytes] = []
    once: list[bytes] = []
    b.on("rtp", first.append)
    b.once("rtp", once.append)

    def adds_another(packet: bytes) -> None:
        if not second:
            b.on("rtp", second.append)  # added while dispatching: from the next packet

    b.on("rtp", adds_another)
    a.send_rtp(_rtp(1))
    await _wait_for(lambda: len(first) == 1)
    assert once == [_rtp(1)] and second == []
    a.send_rtp(_rtp(2))
    await _wait_for(lambda: len(first) == 2)
    assert once == [_rtp(1)] and second == [_rtp(2)]
    b.remove_listener("rtp", first.append)
    b.remove_listener("rtp", adds_another)
    a.send_rtp(_rtp(3))
    await _wait_for(lambda: len(second) == 2)
    assert first == [_rtp(1), _rtp(2)]
    b.remove_all_listeners("rtp")
    a.send_rtp(_rtp(4))
    a.send_rtcp(_rtcp())  # no rtcp handler at all: nothing happens
    await _wait_for(lambda: b.stats()["rtp_in"] == 4 and b.stats()["rtcp_in"] == 1)
    assert second == [_rtp(2), _rtp(3)]


async def test_rtcp_handler_added_after_media_flowed(
    peers: list[SecurePeer], dispatch: bool
) -> None:
    """The handler snapshot of each event is taken again after any registry change."""
    a, b = await _media_pair(peers, dispatch)
    rtp: list[bytes] = []
    rtcp: list[bytes] = []
    b.on("rtp", rtp.append)
    a.send_rtp(_rtp(1))
    a.send_rtcp(_rtcp())  # no rtcp handler yet
    await _wait_for(lambda: len(rtp) == 1 and b.stats()["rtcp_in"] == 1)
    b.on("rtcp", rtcp.append)
    a.send_rtcp(_rtcp())
    a.send_rtp(_rtp(2))
    await _wait_for(lambda: len(rtcp) == 1 and len(rtp) == 2)
    assert rtcp == [_rtcp()] and rtp == [_rtp(1), _rtp(2)]


async def test_oversized_rtp_takes_no_srtp_index(peers: list[SecurePeer]) -> None:
    a, b = await _media_pair(peers, True)
    got: list[bytes] = []
    b.on("rtp", got.append)
    header = _rtp(1)[:12]
    with pytest.raises(PacketTooLarge):
        a.send_rtp(header + bytes(MAX_DATAGRAM))
    # the same sequence number still goes out once: the refused packet used no index
    a.send_rtp(_rtp(1))
    await _wait_for(lambda: got == [_rtp(1)])
    report = a.get_stats()
    assert [(s.ssrc, s.packets_sent) for s in report.outbound_rtp] == [(0x1234, 1)]


async def test_async_handler_runs_and_its_failure_is_an_error_event(
    peers: list[SecurePeer], dispatch: bool
) -> None:
    a, b = await _media_pair(peers, dispatch)
    handled: list[bytes] = []
    errors: list[BaseException] = []
    b.on("error", errors.append)

    async def slow_handler(packet: bytes) -> None:
        await asyncio.sleep(0)
        handled.append(packet)
        if packet == _rtp(1):
            raise ValueError("async handler bug")

    b.on("rtp", slow_handler)
    a.send_rtp(_rtp(1))
    a.send_rtp(_rtp(2))
    await _wait_for(lambda: len(handled) == 2)
    await b.wait_for_complete()  # pyee tracks the scheduled handlers
    assert handled == [_rtp(1), _rtp(2)]
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    assert b.state == PeerState.CONNECTED


async def test_raising_handler_is_logged_reported_and_reception_goes_on(
    peers: list[SecurePeer], dispatch: bool, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await _media_pair(peers, dispatch)
    received: list[bytes] = []
    also: list[bytes] = []

    def fragile(packet: bytes) -> None:
        received.append(packet)
        if packet == _rtp(1):
            raise RuntimeError("user handler bug")

    b.on("rtcp", fragile)
    b.on("rtp", fragile)
    b.on("rtp", also.append)
    with caplog.at_level(logging.ERROR, logger="webrtc_secure.peer"):
        a.send_rtp(_rtp(1))
        a.send_rtp(_rtp(2))
        await _wait_for(lambda: len(received) == 2)
    # the direct dispatch still runs the later handler; pyee's emit stops at the
    # exception when nobody listens for "error"
    assert also == ([_rtp(1), _rtp(2)] if dispatch else [_rtp(2)])
    assert any("handler for 'rtp' raised" in r.getMessage() for r in caplog.records)
    assert b.state == PeerState.CONNECTED
    a.send_rtcp(_rtcp())  # the other event, same handler
    await _wait_for(lambda: len(received) == 3)


async def test_raising_handler_with_an_error_listener(
    peers: list[SecurePeer], dispatch: bool
) -> None:
    a, b = await _media_pair(peers, dispatch)
    errors: list[BaseException] = []
    b.on("error", errors.append)

    def broken(packet: bytes) -> None:
        raise RuntimeError("user handler bug")

    b.on("rtp", broken)
    a.send_rtp(_rtp(1))
    a.send_rtp(_rtp(2))
    await _wait_for(lambda: len(errors) == 2)
    assert all(isinstance(e, RuntimeError) for e in errors)
    assert b.stats()["rtp_in"] == 2 and b.state == PeerState.CONNECTED


@pytest.mark.asyncio(loop_factories=["asyncio"])  # max_size is asyncio's attribute
async def test_plain_udp_peer_reads_into_the_small_buffer(peers: list[SecurePeer]) -> None:
    a = SecurePeer(host_addresses=HOST, use_ice=False)
    peers.append(a)
    await a.create_offer()
    assert getattr(a._transport, "max_size", None) == ice.RECEIVE_BUFFER
