"""SecurePeer's handshake ends when the path under it goes away, not only by timers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from webrtc_secure import IceError, PeerState, SecurePeer, SessionDescription

HOST = ["127.0.0.1"]


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


async def test_ice_closing_during_the_handshake_fails_connect_with_ice_error() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)

    async def never_handshakes(is_client: bool, remote: SessionDescription) -> None:
        await asyncio.Event().wait()

    # b answers ICE checks but never runs DTLS: a (the DTLS server, b answered active)
    # waits for a ClientHello that does not come, with no retransmission timer running
    b._handshake = never_handshakes  # type: ignore[method-assign]
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    b_connect = asyncio.ensure_future(b.connect(offer))
    a_connect = asyncio.ensure_future(a.connect(answer))
    try:
        await asyncio.wait_for(_until(lambda: a.state == PeerState.CONNECTING), 10)
        assert a._ice is not None
        # what aioice does when consent expires (RFC 7675): it closes the connection
        await a._ice.close()
        try:
            await asyncio.wait_for(a_connect, 5)
        except IceError as exc:
            assert "during the DTLS handshake" in str(exc)
        else:
            raise AssertionError("connect() returned although ICE closed")
        assert a.state == PeerState.FAILED
    finally:
        b_connect.cancel()
        await asyncio.gather(b_connect, return_exceptions=True)
        await a.close()
        await b.close()
