"""SecurePeer's own receive method on the nominated pair's socket (ice_receiver).

ICE's receive fast path puts ``SecurePeer._ice_datagram_received`` itself on the
nominated pair's host socket, and the peer makes the checks the transport's wrapper
makes for other protocols: STUN (and anything empty) goes to the socket's gate,
anything else only from the pair's remote address, the rest counted as
``unexpected_source`` by the ICE connection. These tests pin that it is the same:
what the wrapper would drop is dropped and counted, STUN still reaches aioice, a bug
above the peer is logged and the socket keeps working, and the checks come off with
the hook.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioice.stun
import pytest

from webrtc_secure import PeerState, SecurePeer

pytestmark = pytest.mark.both_loops


def _rtp(seq: int, ssrc: int = 0x77) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + b"m" * 100


@pytest.fixture
async def peers() -> AsyncIterator[tuple[SecurePeer, SecurePeer]]:
    a = SecurePeer(host_addresses=["127.0.0.1"])
    b = SecurePeer(host_addresses=["127.0.0.1"])
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 10)
    yield a, b
    await a.close()
    await b.close()


@pytest.fixture
def attacker() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _nominated(peer: SecurePeer) -> Any:
    assert peer._ice is not None
    pair = peer._ice.nominated_pair
    assert pair is not None
    return pair


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), timeout)


async def _media_flows(a: SecurePeer, b: SecurePeer, seq: int) -> None:
    got: list[bytes] = []
    b.on("rtp", got.append)
    try:
        a.send_rtp(_rtp(seq))
        await _until(lambda: got == [_rtp(seq)])
    finally:
        b.remove_listener("rtp", got.append)


async def test_the_peers_own_method_is_on_the_socket(
    peers: tuple[SecurePeer, SecurePeer],
) -> None:
    a, b = peers
    for peer in (a, b):
        installed = vars(_nominated(peer).protocol)["datagram_received"]
        assert installed.__self__ is peer
        assert installed.__func__ is SecurePeer._ice_datagram_received
        assert (peer._ice_host, peer._ice_port) == _nominated(peer).remote_addr
    await _media_flows(a, b, 1)
    await _media_flows(b, a, 1)


async def test_other_sources_are_dropped_and_counted_by_ice(
    peers: tuple[SecurePeer, SecurePeer], attacker: socket.socket
) -> None:
    """SRTP-, DTLS- and unknown-looking datagrams from another port: none reaches the
    peer (its counters do not move), each is counted by the ICE connection."""
    a, b = peers
    target = _nominated(b).protocol.transport.get_extra_info("sockname")[:2]
    assert b._ice is not None
    before = b._ice.dropped["unexpected_source"]
    counters = b.stats()
    got: list[bytes] = []
    b.on("rtp", got.append)
    for datagram in (_rtp(5), b"\x16\xfe\xfd" + bytes(20), b"\x40junk", b"\xffjunk"):
        attacker.sendto(datagram, target)
    ice = b._ice
    await _until(lambda: ice.dropped["unexpected_source"] == before + 4)
    assert got == []
    after = b.stats()
    assert after["datagrams_in"] == counters["datagrams_in"]
    # stats() reports the ICE connection's drops with the peer's own: only these four
    expected = dict(counters["dropped"])
    expected["unexpected_source"] = expected.get("unexpected_source", 0) + 4
    assert after["dropped"] == expected
    await _media_flows(a, b, 2)


async def test_stun_from_anyone_still_reaches_aioice(
    peers: tuple[SecurePeer, SecurePeer], attacker: socket.socket
) -> None:
    """An unauthenticated Binding request from elsewhere goes to the gate and aioice (as
    through the transport's wrapper): not counted as a wrong source; aioice refuses it
    (its answer would be larger, so our amplification rule suppresses it)."""
    a, b = peers
    assert b._ice is not None
    target = _nominated(b).protocol.transport.get_extra_info("sockname")[:2]
    before = dict(b._ice.dropped)
    request = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST
    )
    attacker.sendto(bytes(request), target)
    ice = b._ice
    await _until(lambda: ice.dropped != before)
    assert ice.dropped["unexpected_source"] == before.get("unexpected_source", 0)
    assert ice.dropped["stun_error_suppressed"] == before.get("stun_error_suppressed", 0) + 1
    await _media_flows(a, b, 3)


async def test_a_bug_above_the_peer_is_logged_and_the_socket_keeps_working(
    peers: tuple[SecurePeer, SecurePeer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = peers
    remote = b._srtp_in

    class Broken:
        def unprotect(self, data: bytes) -> bytes:
            raise RuntimeError("bug")

    b._srtp_in = Broken()  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="webrtc_secure.peer"):
        a.send_rtp(_rtp(4))
        await _until(lambda: "datagram handler failed" in caplog.text)
    b._srtp_in = remote
    await _media_flows(a, b, 5)
    assert b.state == PeerState.CONNECTED


async def test_the_checks_come_off_with_the_hook(peers: tuple[SecurePeer, SecurePeer]) -> None:
    a, _ = peers
    protocol = _nominated(a).protocol
    transport = a._transport
    assert transport is not None
    transport.close()
    assert vars(protocol).get("datagram_received") != a._ice_datagram_received
    assert a._ice_port is a._ice_host is a._ice_stun is a._ice_dropped is None
