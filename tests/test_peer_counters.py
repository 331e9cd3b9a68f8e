"""The peer's datagram and RTP counters against what really crossed its edges.

The media fast paths leave the counting of SRTP packets to their SRTP streams
(``PeerStats``' docstring): ``stats()`` and ``get_stats()`` add the streams' counts to
the peer's own. These tests record every datagram that reaches the peer's receive
entry (what the per-datagram counter used to count, first thing) and every datagram
it hands to its path's sendto, then check that the totals are exactly those, through
a mix of everything the paths see: SRTP, SRTCP, DTLS (SCTP), a replayed and a forged
SRTP packet (dropped and counted), and an RTP packet sent while there is no path.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from webrtc_secure import SecurePeer

HOST = ["127.0.0.1"]

pytestmark = pytest.mark.both_loops


def _rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + bytes([seq & 0xFF]) * 160


def _rtcp() -> bytes:
    # a receiver report with no report blocks
    return struct.pack("!BBHI", 0x80, 201, 1, 0x1234)


async def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def peers() -> AsyncIterator[list[SecurePeer]]:
    opened: list[SecurePeer] = []
    yield opened
    for peer in opened:
        await peer.close()


@pytest.mark.parametrize("use_ice", [True, False], ids=["ice", "udp"])
async def test_totals_are_what_crossed_the_edges(peers: list[SecurePeer], use_ice: bool) -> None:
    a = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    b = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    peers += [a, b]
    arrived: list[int] = []
    real_receive = b._datagram_received
    real_ice_receive = b._ice_datagram_received
    # over ICE the nominated pair's socket calls _ice_datagram_received (which hands
    # what is not SRTP on to _datagram_received); before the hook, aioice's queue
    # and the gate call _datagram_received: each datagram is counted once
    within_ice = [False]

    def receive(data: bytes, addr: Any = None) -> None:
        if not within_ice[0]:
            arrived.append(len(data))
        real_receive(data, addr)

    def ice_receive(data: bytes, addr: Any) -> None:
        if data and data[0] > 3:  # STUN goes to aioice, not into the peer
            arrived.append(len(data))
        within_ice[0] = True
        try:
            real_ice_receive(data, addr)
        finally:
            within_ice[0] = False

    # the protocol takes the peer's receive entries when the transport is made
    b._datagram_received = receive  # type: ignore[method-assign]
    b._ice_datagram_received = ice_receive  # type: ignore[method-assign]
    delivered: list[bytes] = []
    b.on("rtp", delivered.append)
    channel_a = a.create_data_channel("x", negotiated=True, id=0)
    channel_b = b.create_data_channel("x", negotiated=True, id=0)
    messages: list[object] = []
    channel_b.on("message", messages.append)
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.gather(a.connect(answer), b.connect(offer))
    await asyncio.gather(channel_a.wait_open(), channel_b.wait_open())

    real_send = a._sendto
    assert real_send is not None
    before = a.stats()
    before_report = a.get_stats()
    sent: list[bytes] = []

    def send(data: bytes) -> None:
        sent.append(data)
        real_send(data)

    a._sendto = send
    # over ICE, send_rtp calls the nominated pair's socket itself (the send fast path)
    path = a._send_path
    assert (path is not None) == use_ice

    def send_to(data: bytes, addr: Any) -> None:
        assert path is not None and addr == path[1]
        sent.append(data)
        path[0](data, addr)

    if path is not None:
        a._send_path = (send_to, path[1])
    fast_path = a._send_path
    for seq in range(1, 21):
        a.send_rtp(_rtp(seq))
    a.send_rtcp(_rtcp())
    channel_a.send(b"hello")
    srtp_packets = [d for d in sent if 128 <= d[0] < 192 and not 64 <= d[1] & 0x7F <= 95]
    assert len(srtp_packets) == 20
    # a replay and a forgery, past the sender's counters: the receiver counts and drops
    replayed = srtp_packets[3]
    forged = bytearray(srtp_packets[5])
    forged[2:4] = (100).to_bytes(2, "big")  # a fresh index, so the tag decides
    real_send(replayed)
    real_send(bytes(forged))
    # protected while there is no path: counted as RTP sent, not as a datagram
    a._sendto = a._send_path = None
    a.send_rtp(_rtp(21))
    a._sendto, a._send_path = send, fast_path
    await _wait_for(lambda: len(delivered) == 20 and messages == [b"hello"])
    await asyncio.sleep(0.1)  # what else was on its way (SCTP's SACK) is in

    after = a.stats()
    assert after["datagrams_out"] - before["datagrams_out"] == len(sent)
    assert after["rtp_out"] - before["rtp_out"] == 21
    report = a.get_stats()
    assert report.transport.packets_sent == after["datagrams_out"]
    sent_bytes = report.transport.bytes_sent - before_report.transport.bytes_sent
    assert sent_bytes == sum(len(d) for d in sent)

    stats = b.stats()
    assert stats["datagrams_in"] == len(arrived)
    assert stats["rtp_in"] == 20
    assert stats["dropped"].get("rtp_ReplayDetected") == 1
    assert stats["dropped"].get("rtp_AuthenticationFailed") == 1
    report_b = b.get_stats()
    assert report_b.transport.packets_received == len(arrived)
    assert report_b.transport.bytes_received == sum(arrived)
    if use_ice:
        assert report_b.candidate_pair is not None
        assert report_b.candidate_pair.bytes_received == sum(arrived)
    assert [s.packets_received for s in report_b.inbound_rtp] == [20]


async def test_a_datagram_the_socket_refuses_is_logged_and_not_counted(
    peers: list[SecurePeer], caplog: pytest.LogCaptureFixture
) -> None:
    """The DTLS transport's batches through the ICE send path (``_send_datagrams``):
    a batch of one (a round trip's flush, sent without the batch's loop) and a batch of
    three whose middle datagram the socket refuses: each refusal is logged as the DTLS
    transport logs it and not counted; what went is counted, datagrams and octets."""
    a = SecurePeer(host_addresses=HOST)
    b = SecurePeer(host_addresses=HOST)
    peers += [a, b]
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.gather(a.connect(answer), b.connect(offer))
    path = a._send_path
    assert path is not None
    went: list[bytes] = []

    def sendto(data: bytes, addr: Any) -> None:
        assert addr == path[1]
        if data.startswith(b"\x17refuse"):
            raise ConnectionRefusedError(111, "refused")
        went.append(data)

    a._send_path = (sendto, path[1])
    a._segments_due = False  # (no offload: the batch goes one sendto at a time)
    try:
        before = a.get_stats().transport
        with caplog.at_level("WARNING", logger="webrtc_secure.peer"):
            a._send_datagrams([b"\x17one"])
            a._send_datagrams([b"\x17refuse one"])
            a._send_datagrams([b"\x17two", b"\x17refuse two", b"\x17three"])
        after = a.get_stats().transport
    finally:
        a._send_path = path
    assert went == [b"\x17one", b"\x17two", b"\x17three"]
    assert after.packets_sent - before.packets_sent == 3
    assert after.bytes_sent - before.bytes_sent == sum(map(len, went))
    refusals = [r for r in caplog.records if r.getMessage().startswith("DTLS send failed")]
    assert len(refusals) == 2
