"""SecurePeer against aiortc (OpenSSL DTLS, libsrtp SRTP, aioice ICE), both offer/answer
directions, audio both ways, inside a loopback-only network namespace.

aiortc never gathers 127.0.0.1, so the namespace also carries 127.0.0.2, which it does;
our peer binds 127.0.0.1 explicitly. Nothing leaves the namespace.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from typing import Any

import pytest

from tests.browser.aiortc_peer import AiortcPeer
from tests.browser.netns import run_in_loopback_netns
from webrtc_secure import PeerState, SecurePeer, SessionDescription

pytestmark = pytest.mark.interop

#: a 20 ms Opus frame that decodes to silence (TOC 0xf8: CELT fullband 20 ms, mono)
OPUS_SILENCE = b"\xf8\xff\xfe"


def _audio(description: SessionDescription) -> Any:
    return next(m for m in description.media if m.kind == "audio" and not m.rejected)


async def _exchange_audio(
    peer: SecurePeer, theirs: AiortcPeer, local: SessionDescription, remote: SessionDescription
) -> dict[str, Any]:
    received: list[bytes] = []
    peer.on("rtp", received.append)
    audio_local, audio_remote = _audio(local), _audio(remote)
    codec = audio_local.codecs[0]
    assert codec.name.lower() == "opus", codec
    # aiortc sends its sine track: wait for a second of it
    for _ in range(200):
        if len(received) >= 40:
            break
        await asyncio.sleep(0.02)
    assert len(received) >= 40, f"only {len(received)} RTP packets from aiortc"
    headers = [struct.unpack_from("!BBHII", p) for p in received]
    assert all(h[0] >> 6 == 2 for h in headers)
    assert {h[1] & 0x7F for h in headers} == {codec.payload_type}
    # one stream, under the SSRC aiortc announced in its description
    assert {h[4] for h in headers} == {s.ssrc for s in audio_remote.ssrcs}
    seqs = [h[2] for h in headers]
    stamps = [h[3] for h in headers]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    # timestamps advance (modulo 2^32: the random start may wrap)
    assert all(0 < (b - a) % 2**32 < 2**31 for a, b in itertools.pairwise(stamps))
    # we send 50 Opus frames, 20 ms apart, under the SSRC our description announced
    ssrc = audio_local.ssrcs[0].ssrc
    for i in range(50):
        peer.send_rtp(
            struct.pack("!BBHII", 0x80, codec.payload_type, 1000 + i, i * 960, ssrc) + OPUS_SILENCE
        )
        await asyncio.sleep(0.02)
    frames = await theirs.wait_frames("audio", 10, timeout=10)
    stats = peer.stats()
    assert stats["dtls"]["dropped_authentication"] == 0
    assert not any("AuthenticationFailed" in k for k in stats["dropped"])
    return {
        "frames_decoded_by_aiortc": frames,
        "rtp_from_aiortc": len(received),
        "dtls": stats["dtls"],
        "ice_ms": 1e3 * stats["ice_seconds"],
        "dtls_ms": 1e3 * stats["dtls_seconds"],
        "aiortc": theirs.dtls_info(),
    }


def test_aiortc_offers_securepeer_answers() -> None:
    async def scenario() -> dict[str, Any]:
        theirs = AiortcPeer(send_audio=True, send_video=False)
        peer = SecurePeer(host_addresses=["127.0.0.1"])
        try:
            offer = SessionDescription.from_sdp(await theirs.offer(), "offer")
            answer = await peer.create_answer(offer)
            await theirs.accept_answer(answer.to_sdp())
            await asyncio.wait_for(peer.connect(offer), 15)
            await theirs.wait_connected(10)
            return await _exchange_audio(peer, theirs, answer, offer)
        finally:
            await peer.close()
            await theirs.close()

    report = run_in_loopback_netns(scenario, timeout=60)
    assert report["dtls"]["role"] == "client"  # we answered actpass with active
    assert report["aiortc"]["role"] in ("server", None)
    assert report["frames_decoded_by_aiortc"] >= 10
    print("aiortc offers:", report)


def test_securepeer_offers_aiortc_answers() -> None:
    async def scenario() -> dict[str, Any]:
        theirs = AiortcPeer(send_audio=True, send_video=False)
        peer = SecurePeer(host_addresses=["127.0.0.1"])
        try:
            offer = await peer.create_offer()
            answer = SessionDescription.from_sdp(await theirs.answer(offer.to_sdp()), "answer")
            await asyncio.wait_for(peer.connect(answer), 15)
            await theirs.wait_connected(10)
            assert peer.state == PeerState.CONNECTED
            return await _exchange_audio(peer, theirs, offer, answer)
        finally:
            await peer.close()
            await theirs.close()

    report = run_in_loopback_netns(scenario, timeout=60)
    assert report["dtls"]["role"] == "server"  # aiortc answered active
    assert report["frames_decoded_by_aiortc"] >= 10
    print("SecurePeer offers:", report)
