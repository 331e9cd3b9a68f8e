"""``SecurePeer(trace=True)`` and ``peer.trace()``: one trace for ICE, DTLS, SCTP and
DCEP of a real connection between two peers on loopback (issue 15)."""

from __future__ import annotations

import asyncio

import pytest

from tests.test_datachannel_peer import Pair, _theirs, _wait_for
from webrtc_secure import SecurePeer
from webrtc_secure.trace import Trace


def _whats(trace: Trace, layer: str, direction: str) -> list[str]:
    return [e.what for e in trace.entries if e.layer == layer and e.direction == direction]


@pytest.mark.parametrize("snap", [False, True], ids=["init-exchange", "snap"])
async def test_peer_trace_covers_ice_dtls_sctp_dcep(snap: bool) -> None:
    pair = Pair(trace=True, snap=snap)
    try:
        channel = pair.create("a", "chat")
        await pair.connect()
        await _wait_for(lambda: sorted(pair.ready) == ["a", "b"])
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "chat")
        await _wait_for(lambda: not channel._awaiting_ack)  # the ACK came back
        a, b = pair.a.trace(), pair.b.trace()
        assert a is not None and b is not None
        ice = [e for e in a.entries if e.layer == "ice"]
        assert len(ice) == 1 and "nominated 127.0.0.1:" in ice[0].details
        assert "RTT" in ice[0].details
        # DTLS: each side received exactly the messages the other sent
        assert a.messages("send") == b.messages("recv")
        assert b.messages("send") == a.messages("recv")
        assert "Finished" in a.messages("send") and "Finished" in b.messages("send")
        assert any(e.what == "handshake complete" for e in a.entries)
        # SCTP control chunks, each one sent by one side and received by the other
        sent = sorted(_whats(a, "sctp", "send") + _whats(b, "sctp", "send"))
        received = sorted(_whats(a, "sctp", "recv") + _whats(b, "sctp", "recv"))
        if snap:
            assert sent == received == []
            assert any(e.what == "SNAP" for e in a.entries)
        else:
            assert sent == received
            assert {"INIT", "INIT ACK", "COOKIE ECHO", "COOKIE ACK"} <= set(sent)
        assert _whats(a, "dcep", "send") == ["DATA_CHANNEL_OPEN"]
        assert _whats(b, "dcep", "recv") == ["DATA_CHANNEL_OPEN"]
        assert _whats(b, "dcep", "send") == ["DATA_CHANNEL_ACK"]
        assert _whats(a, "dcep", "recv") == ["DATA_CHANNEL_ACK"]
        assert "'chat'" in next(e for e in a.entries if e.layer == "dcep").details
        # application data is not traced
        before = len(a.entries) + len(b.entries)
        for i in range(20):
            channel.send(f"m{i}")
        await _wait_for(lambda: len(pair.inbox(theirs).messages) == 20)
        assert len(a.entries) + len(b.entries) == before
        times = [e.time for e in a.entries]
        assert times == sorted(times) and times[0] == 0.0
        # the drawing: one self-contained file
        assert "sequenceDiagram" in a.to_mermaid()
        assert a.to_html().count("<tr") == len(a.entries) + 1
    finally:
        await pair.close()


async def test_trace_is_off_by_default() -> None:
    peer = SecurePeer(host_addresses=["127.0.0.1"])
    assert peer.trace() is None
    await peer.close()
    await asyncio.sleep(0)
