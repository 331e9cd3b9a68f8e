"""SecurePeer over DTLS 1.3 when the client's Finished is overtaken: a DTLS 1.3 client
is connected once it sent its Finished (RFC 9147 5.8.4), so its SCTP packets and media
may reach the server before that flight does. The server holds the DTLS records until
the Finished is verified (nothing dropped, no SCTP retransmission needed); media that
arrives before the server has SRTP keys is dropped and counted, as the server's own
first media is under DTLS 1.2 (the client is keyed last there)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from webrtc_secure import PeerState, SecurePeer

HOST = ["127.0.0.1"]
#: how long the client's epoch-2 datagrams (its final flight) are held back
HOLD = 0.05


def _rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + bytes(160)


def _delay_final_flight(peer: SecurePeer, held: list[bytes], overtaking: list[bytes]) -> None:
    """Every DTLS 1.3 epoch-2 record datagram the peer sends (its Certificate,
    CertificateVerify and Finished) leaves ``HOLD`` seconds late; everything else,
    epoch-3 data included, at once (``overtaking``: the epoch-3 ones sent while a
    held datagram was still waiting)."""
    real = peer._send_datagram
    loop = asyncio.get_running_loop()
    waiting = 0

    def release(data: bytes) -> None:
        nonlocal waiting
        waiting -= 1
        real(data)

    def send(data: bytes) -> None:
        nonlocal waiting
        if data and data[0] & 0xE3 == 0x22:  # unified header, epoch bits 2
            held.append(data)
            waiting += 1
            loop.call_later(HOLD, release, data)
        else:
            if waiting and data and data[0] & 0xE3 == 0x23:
                overtaking.append(data)
            real(data)

    peer._send_datagram = send  # type: ignore[method-assign]


@pytest.mark.parametrize("snap", [True, False], ids=["snap", "init"])
async def test_data_overtaking_the_client_finished_is_held_not_dropped(snap: bool) -> None:
    a = SecurePeer(host_addresses=HOST, use_ice=False, snap=snap)
    b = SecurePeer(host_addresses=HOST, use_ice=False, snap=snap)
    got: list[bytes] = []
    opened = asyncio.Event()
    ca = a.create_data_channel("t", negotiated=True, id=0)
    cb = b.create_data_channel("t", negotiated=True, id=0)
    ca.on("message", got.append)
    cb.on("open", opened.set)
    held: list[bytes] = []
    overtaking: list[bytes] = []
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        _delay_final_flight(b, held, overtaking)  # the answerer is the DTLS client (actpass offer)
        server_connect = asyncio.ensure_future(a.connect(answer))
        await b.connect(offer)
        # the client returns from connect() while its Finished is still held back:
        # what it sends now reaches the server first
        assert b.state == PeerState.CONNECTED and a.state != PeerState.CONNECTED
        assert b.stats()["dtls"]["role"] == "client"
        b.send_rtp(_rtp(1))  # before the server has SRTP keys: dropped and counted
        if snap:
            cb.send(b"first")  # SNAP: the association is up at once, DATA goes now
        await server_connect
        assert a.stats()["dtls"]["version"] == "DTLS 1.3" and held
        # SCTP (the INIT, or SNAP's first DATA) left before the Finished did
        assert overtaking
        await asyncio.wait_for(opened.wait(), 5)
        if not snap:
            cb.send(b"first")
        await asyncio.wait_for(_until(lambda: got == [b"first"]), 5)
        # SCTP over DTLS records that overtook the Finished were held, not dropped
        server = a.stats()
        assert server["dtls"]["dropped_epoch"] == 0
        assert server["dtls"]["dropped_authentication"] == 0
        # the RTP packet that overtook the Finished found no SRTP keys yet
        assert server["dropped"] == {"media_before_keys": 1}
        assert a.state == b.state == PeerState.CONNECTED
    finally:
        await a.close()
        await b.close()


async def _until(predicate: object) -> None:
    assert callable(predicate)
    while not predicate():
        await asyncio.sleep(0.005)
