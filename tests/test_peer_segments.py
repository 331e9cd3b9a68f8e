"""SecurePeer sends a DTLS flush's runs of datagrams with the UDP segmentation offload
(webrtc_secure.udp_gso) beside ICE's send fast path: a data channel stream arrives
whole and in order with it, as without it, and the peer counts the same datagrams and
octets as the DTLS connection sent; the sender comes with the first flush of several
datagrams (a peer that sends none keeps no descriptor for it), follows the send path
(a new path, a new sender; no path, none) and closes its descriptor with the peer.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest

from webrtc_secure import DataChannel, SecurePeer

pytestmark = [
    pytest.mark.both_loops,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's UDP_SEGMENT"),
]

HOST = ["127.0.0.1"]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SecurePeer, SecurePeer, DataChannel, DataChannel]]:
    a = SecurePeer(host_addresses=HOST)
    b = SecurePeer(host_addresses=HOST)
    remote: asyncio.Future[DataChannel] = asyncio.get_running_loop().create_future()
    b.on("datachannel", lambda channel: remote.done() or remote.set_result(channel))
    channel = a.create_data_channel("bulk")
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 10)
    await asyncio.wait_for(channel.wait_open(), 10)
    theirs = await asyncio.wait_for(remote, 10)
    yield a, b, channel, theirs
    await a.close()
    await b.close()


async def _stream(channel: DataChannel, theirs: DataChannel, tag: int) -> list[bytes]:
    got: list[bytes] = []
    theirs.on("message", got.append)
    sent = [bytes([tag, i % 256]) + bytes([i % 253]) * (1000 + 37 * i % 4000) for i in range(300)]
    for message in sent:
        channel.send(message)
        if channel.buffered_amount > 256 * 1024:
            await asyncio.wait_for(channel.drain(), 10)

    async def all_in() -> None:
        while len(got) < len(sent):
            await asyncio.sleep(0.005)

    await asyncio.wait_for(all_in(), 20)
    theirs.remove_listener("message", got.append)
    assert got == sent
    return got


async def test_a_stream_with_and_without_the_offload(
    pair: tuple[SecurePeer, SecurePeer, DataChannel, DataChannel],
) -> None:
    a, _b, channel, theirs = pair
    assert a._dtls is not None
    dtls_sent = a._dtls.connection.stats.datagrams_sent
    before = a.stats()
    await _stream(channel, theirs, 1)
    segments = a._segments
    assert segments is not None and segments.enabled
    assert segments.runs > 0  # flushes of full packets went in one system call each
    after = a.stats()
    # what the peer counts as sent is what DTLS handed it: nothing lost or doubled
    assert (
        after["datagrams_out"] - before["datagrams_out"]
        == a._dtls.connection.stats.datagrams_sent - dtls_sent
    )
    # the same stream one sendto at a time
    a._segments = None
    await _stream(channel, theirs, 2)
    assert segments.runs > 0
    a._segments = segments


async def test_the_sender_follows_the_send_path(
    pair: tuple[SecurePeer, SecurePeer, DataChannel, DataChannel],
) -> None:
    a, _b, _channel, _theirs = pair
    path = a._send_path
    assert path is not None
    # the handshake and the channel's opening sent no flush of several datagrams
    assert a._segments is None and a._segments_due
    a._send_datagrams([])  # none: nothing made
    assert a._segments is None and a._segments_due
    first = a._make_segments()
    assert first is not None and a._segments is first and not a._segments_due
    a._set_send_path(path)  # a (re)bound pair: the old sender closed, a new one due
    assert a._segments is None and a._segments_due
    assert not first.enabled and first._socket is None
    second = a._make_segments()
    assert second is not None and second is not first
    a._set_send_path(None)
    assert a._segments is None and not a._segments_due and not second.enabled
    assert a._make_segments() is None  # no path: none
    a._set_send_path(path)
    third = a._make_segments()
    assert third is not None
    await a.close()
    assert a._segments is None and third._socket is None and not a._segments_due
