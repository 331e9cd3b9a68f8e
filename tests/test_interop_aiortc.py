"""SecurePeer against aiortc (OpenSSL DTLS, libsrtp SRTP, aioice ICE), both offer/answer
directions, so each side is DTLS client once and server once, with the default SRTP
profile list and with AES128_CM_HMAC_SHA1_80 alone (together these reach every profile
aiortc speaks). Only SDP text passes between the two (``to_sdp`` / ``from_sdp``).

Audio both ways: aiortc's sine track reaches us as well-formed RTP of the negotiated
payload type; aiortc decodes the Opus frames we build by hand, sent every 20 ms under
the SSRC of our description. RTCP both ways: aiortc's sender reports reach us, and our
sender report (with a reception report about aiortc's stream) shows up in aiortc's
getStats(), so libsrtp authenticated our SRTCP too.

Runs in a loopback-only network namespace: aioice never gathers 127.0.0.1, so the
namespace also carries 127.0.0.2, which aiortc gathers; our peer binds 127.0.0.1
explicitly. Nothing leaves the namespace.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
from typing import Any

import pytest

from tests.browser.aiortc_peer import AiortcPeer
from tests.browser.netns import run_in_loopback_netns
from webrtc_secure import PeerState, SecurePeer, SessionDescription
from webrtc_secure.description import MediaSection
from webrtc_secure.srtp import DEFAULT_PROFILES, Profile

pytestmark = [pytest.mark.interop, pytest.mark.both_loops]

#: one 20 ms Opus frame (TOC 0xf8: CELT fullband, 20 ms, mono, one frame) of silence
OPUS_SILENCE = b"\xf8\xff\xfe"
OPUS_FRAME_TICKS = 960  # 20 ms at 48 kHz
FRAMES_SENT = 50
RTCP_SR = 200

PROFILES = {
    "default-profiles": DEFAULT_PROFILES,
    "aes-cm-80-only": (Profile.AES128_CM_HMAC_SHA1_80,),
}


def _audio(description: SessionDescription) -> MediaSection:
    return next(m for m in description.media if m.kind == "audio" and not m.rejected)


def _sender_report(
    ssrc: int, rtp_timestamp: int, packets: int, octets: int, reportee: int, highest_seq: int
) -> bytes:
    """An RTCP SR (RFC 3550 6.4.1) with one reception report block about ``reportee``."""
    ntp = int((time.time() + 2_208_988_800) * 2**32)
    sender_info = struct.pack("!IQIII", ssrc, ntp, rtp_timestamp, packets, octets)
    # fraction lost 0, cumulative lost 0, highest sequence, jitter 0, no LSR/DLSR
    block = struct.pack("!IIIIII", reportee, 0, highest_seq, 0, 0, 0)
    body = sender_info + block
    return struct.pack("!BBH", 0x80 | 1, RTCP_SR, len(body) // 4) + body


def _rtcp_types(compound: bytes) -> list[tuple[int, int]]:
    """(packet type, first SSRC) of each packet in a compound RTCP packet."""
    found, offset = [], 0
    while offset + 8 <= len(compound):
        _, packet_type, words = struct.unpack_from("!BBH", compound, offset)
        found.append((packet_type, struct.unpack_from("!I", compound, offset + 4)[0]))
        offset += 4 * (words + 1)
    return found


async def _stats_of(theirs: AiortcPeer) -> list[dict[str, Any]]:
    report = await theirs.pc.getStats()
    return [vars(stat) | {"type": stat.type} for stat in report.values()]


async def _exchange(
    peer: SecurePeer,
    theirs: AiortcPeer,
    local: SessionDescription,
    remote: SessionDescription,
    answer: SessionDescription,
    received: list[bytes],
    rtcp: list[bytes],
) -> dict[str, Any]:
    ours, their_audio = _audio(local), _audio(remote)
    codec = _audio(answer).codecs[0]  # the answer names the negotiated codec first
    assert codec.name.lower() == "opus", codec
    their_ssrcs = {s.ssrc for s in their_audio.ssrcs}

    # aiortc's sine track: a second of it
    for _ in range(250):
        if len(received) >= 40:
            break
        await asyncio.sleep(0.02)
    assert len(received) >= 40, f"only {len(received)} RTP packets from aiortc"
    first_bytes, markers_pt, seqs, stamps, ssrcs = zip(
        *(struct.unpack_from("!BBHII", p) for p in received), strict=True
    )
    assert {b >> 6 for b in first_bytes} == {2}
    assert {b & 0x7F for b in markers_pt} == {codec.payload_type}
    assert set(ssrcs) <= their_ssrcs and len(set(ssrcs)) == 1
    assert all((b - a) % 2**16 == 1 for a, b in itertools.pairwise(seqs))
    # timestamps advance in whole 20 ms frames (modulo 2^32: the random start may wrap)
    steps = [(b - a) % 2**32 for a, b in itertools.pairwise(stamps)]
    assert all(0 < s < 2**31 and s % OPUS_FRAME_TICKS == 0 for s in steps), steps
    assert all(len(p) > 12 for p in received)

    # ours: Opus frames every 20 ms under the SSRC of our description, then an SR
    ssrc = ours.ssrcs[0].ssrc
    start = time.monotonic()
    for i in range(FRAMES_SENT):
        header = struct.pack(
            "!BBHII", 0x80, codec.payload_type, 1000 + i, i * OPUS_FRAME_TICKS, ssrc
        )
        peer.send_rtp(header + OPUS_SILENCE)
        await asyncio.sleep(max(0.0, start + 0.02 * (i + 1) - time.monotonic()))
    peer.send_rtcp(
        _sender_report(
            ssrc,
            FRAMES_SENT * OPUS_FRAME_TICKS,
            FRAMES_SENT,
            FRAMES_SENT * len(OPUS_SILENCE),
            ssrcs[0],
            seqs[-1],
        )
    )
    frames = await theirs.wait_frames("audio", 10, timeout=10)

    # aiortc's view: our stream counted, our SR and report block accepted
    deadline = time.monotonic() + 5
    while True:
        stats = await _stats_of(theirs)
        by_type = {s["type"]: s for s in stats if s.get("ssrc") == ssrc}
        sr_from_aiortc = [t for p in rtcp for t in _rtcp_types(p) if t[0] == RTCP_SR]
        done = {"inbound-rtp", "remote-outbound-rtp", "remote-inbound-rtp"} <= set(by_type)
        if (done and sr_from_aiortc) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    return {
        "rtp_from_aiortc": len(received),
        "ssrc_of_aiortc": ssrcs[0],
        "sr_from_aiortc": sr_from_aiortc,
        "frames_decoded_by_aiortc": frames,
        "aiortc_stats": by_type,
        "ours": peer.stats(),
        "our_ssrc": ssrc,
        "aiortc_dtls": theirs.dtls_info(),
    }


def _listening_peer(
    profiles: tuple[Profile, ...],
) -> tuple[SecurePeer, list[bytes], list[bytes]]:
    """A SecurePeer that records RTP and RTCP from the start: aiortc may send its first
    packet in the same moment ``connect()`` returns, before ``_exchange`` runs."""
    peer = SecurePeer(host_addresses=["127.0.0.1"], srtp_profiles=profiles)
    received: list[bytes] = []
    rtcp: list[bytes] = []
    peer.on("rtp", received.append)
    peer.on("rtcp", rtcp.append)
    return peer, received, rtcp


async def _aiortc_offers(profiles: tuple[Profile, ...]) -> dict[str, Any]:
    theirs = AiortcPeer(send_audio=True, send_video=False)
    peer, received, rtcp = _listening_peer(profiles)
    try:
        offer = SessionDescription.from_sdp(await theirs.offer(), "offer")
        answer = await peer.create_answer(offer)
        await theirs.accept_answer(answer.to_sdp())
        await asyncio.wait_for(peer.connect(offer), 15)
        await theirs.wait_connected(10)
        return await _exchange(peer, theirs, answer, offer, answer, received, rtcp)
    finally:
        await peer.close()
        await theirs.close()


async def _securepeer_offers(profiles: tuple[Profile, ...]) -> dict[str, Any]:
    theirs = AiortcPeer(send_audio=True, send_video=False)
    peer, received, rtcp = _listening_peer(profiles)
    try:
        offer = await peer.create_offer()
        answer = SessionDescription.from_sdp(await theirs.answer(offer.to_sdp()), "answer")
        await asyncio.wait_for(peer.connect(answer), 15)
        await theirs.wait_connected(10)
        assert peer.state == PeerState.CONNECTED
        return await _exchange(peer, theirs, offer, answer, answer, received, rtcp)
    finally:
        await peer.close()
        await theirs.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("profiles", list(PROFILES))
@pytest.mark.parametrize("offerer", ["aiortc-offers", "securepeer-offers"])
def test_securepeer_and_aiortc_exchange_audio(offerer: str, profiles: str) -> None:
    scenario = _aiortc_offers if offerer == "aiortc-offers" else _securepeer_offers
    report = run_in_loopback_netns(lambda: scenario(PROFILES[profiles]), timeout=45)
    ours, dtls, theirs = report["ours"], report["ours"]["dtls"], report["aiortc_dtls"]
    aiortc_stats = report["aiortc_stats"]
    print(
        f"\n[aiortc, {offerer}, {profiles}] we are DTLS {dtls['role']}: "
        f"{dtls['cipher_suite']}, {dtls['srtp_profile']}; ICE {1e3 * ours['ice_seconds']:.1f}"
        f" ms, DTLS {1e3 * ours['dtls_seconds']:.1f} ms; aiortc says {theirs}; "
        f"rtp from aiortc {report['rtp_from_aiortc']}, aiortc decoded "
        f"{report['frames_decoded_by_aiortc']} of our {FRAMES_SENT} frames; "
        f"ours dropped {ours['dropped']}"
    )

    # roles: aiortc offers actpass and we answer active; we offer actpass and aiortc
    # answers active. Both sides agree on version, suite and profile.
    assert dtls["role"] == ("client" if offerer == "aiortc-offers" else "server")
    assert theirs["role"] == ("server" if offerer == "aiortc-offers" else "client")
    assert theirs["state"] == "connected"
    assert theirs["version"] == "DTLSv1.2"
    assert theirs["cipher"] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert dtls["cipher_suite"] == "ECDHE_ECDSA_AES_128_GCM_SHA256"
    assert theirs["srtp_profile"] == "SRTP_" + dtls["srtp_profile"].replace("HMAC_", "")
    assert Profile[dtls["srtp_profile"]] in PROFILES[profiles]
    # nothing failed authentication or replay on our side, and every packet arrived
    assert dtls["dropped_authentication"] == 0
    assert not any("AuthenticationFailed" in k or "Replay" in k for k in ours["dropped"])
    assert ours["rtp_in"] == report["rtp_from_aiortc"] > 0
    assert ours["rtcp_in"] >= 1
    assert report["sr_from_aiortc"], "no sender report from aiortc"
    assert {ssrc for _, ssrc in report["sr_from_aiortc"]} == {report["ssrc_of_aiortc"]}
    # aiortc decoded our hand-built Opus and counted every packet under our SSRC
    assert report["frames_decoded_by_aiortc"] >= 10
    assert aiortc_stats["inbound-rtp"]["packetsReceived"] == FRAMES_SENT
    # libsrtp authenticated our SRTCP: both halves of our SR reached their owners
    assert aiortc_stats["remote-outbound-rtp"]["packetsSent"] == FRAMES_SENT
    assert aiortc_stats["remote-inbound-rtp"]["packetsLost"] == 0
