"""The interop harness itself: page server, hello decoder, aiortc peers, headless Chromium.

The browser cases run Chromium and an aiortc peer together in a private loopback-only
network namespace (see tests/browser/netns.py) and assert from the page's getStats():
DTLS connected, remote video decoded, remote audio received, in both offer/answer
directions. They need root and Debian's ``chromium`` package; without them they fail.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.aiortc_peer import AiortcPeer
from tests.browser.capture import HandshakeSniffer
from tests.browser.netns import (
    AIOICE_LOOPBACK,
    current_namespace,
    pids_in_namespace,
    run_in_loopback_netns,
)
from tests.browser.rtp_peer import AiortcRtpPeer
from tests.browser.sdp_media import (
    SdpMediaError,
    TransportParams,
    media_answer,
    media_offer,
    parse_media,
    rewrite_ssrc,
)
from tests.browser.server import PageServer
from tests.browser.session import (
    ARTIFACTS,
    BrowserSession,
    BrowserSessionError,
    browser_session,
    video_playing,
)
from webrtc_secure.certificate import Certificate
from webrtc_secure.dtls import DtlsConnection

FIXTURES = Path(__file__).resolve().parent / "browser"


# --- page server -------------------------------------------------------------------


class _FakeHandler:
    def __init__(self) -> None:
        self.accepted: list[str] = []

    async def answer(self, offer_sdp: str) -> str:
        return "answer-to:" + offer_sdp

    async def offer(self) -> str:
        return "server-offer"

    async def accept_answer(self, answer_sdp: str) -> None:
        self.accepted.append(answer_sdp)


async def _http(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
                     "\r\n\r\n".encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


async def test_page_server_serves_page_and_routes_signaling() -> None:
    handler = _FakeHandler()
    async with PageServer(handler) as server:
        status, page = await _http(server.port, "GET", "/?mode=offer")
        assert status == 200 and b"<video" in page and b"echo.js" in page
        status, script = await _http(server.port, "GET", "/echo.js")
        assert status == 200 and b"window.stats = stats" in script
        assert (await _http(server.port, "GET", "/../pyproject.toml"))[0] == 404
        assert (await _http(server.port, "GET", "/.hidden"))[0] == 404
        assert (await _http(server.port, "PUT", "/offer"))[0] == 405
        assert (await _http(server.port, "POST", "/offer", b"not json"))[0] == 400
        bad_type = json.dumps({"type": "answer", "sdp": "x"}).encode()
        assert (await _http(server.port, "POST", "/offer", bad_type))[0] == 400

        offer = json.dumps({"type": "offer", "sdp": "v=0 offer"}).encode()
        status, body = await _http(server.port, "POST", "/offer", offer)
        assert status == 200
        assert json.loads(body) == {"type": "answer", "sdp": "answer-to:v=0 offer"}

        status, body = await _http(server.port, "POST", "/server-offer", b"{}")
        assert json.loads(body) == {"type": "offer", "sdp": "server-offer"}
        answer = json.dumps({"type": "answer", "sdp": "v=0 answer"}).encode()
        assert (await _http(server.port, "POST", "/server-answer", answer))[0] == 204
        assert handler.accepted == ["v=0 answer"]
        assert server.offers == ["v=0 offer"] and server.answers == ["v=0 answer"]


# --- DTLS hello decoder on the recorded Chromium ClientHello -------------------------


def test_recorded_chromium_client_hello_decodes() -> None:
    fixture = json.loads((FIXTURES / "chromium_client_hello.json").read_text())
    sniffer = HandshakeSniffer()
    for datagram in fixture["datagrams"]:
        sniffer.feed(bytes.fromhex(datagram))
    [hello] = sniffer.client_hellos()
    hello.pop("raw_datagrams")
    assert {k: v for k, v in hello.items() if k not in ("src", "dst")} == fixture["decoded"]
    # What a DTLS 1.2 server must cope with from this browser:
    assert hello["datagrams"] == 2  # one ClientHello spread over two datagrams
    assert hello["legacy_version"] == "DTLS 1.2"
    assert "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" in hello["cipher_suites"]
    assert "extended_master_secret" in hello["extensions"]
    assert set(hello["use_srtp"]) >= {"SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AEAD_AES_128_GCM"}


def test_our_dtls_server_answers_chromium_client_hello() -> None:
    """The engine copes with Chromium's real 2-datagram, DTLS-1.3-capable ClientHello:
    with 1.3 enabled (the default) it answers 1.3 (a cookie HelloRetryRequest first
    when asked for cookies), with 1.2 only a 1.2 ServerHello (a HelloVerifyRequest)."""
    fixture = json.loads((FIXTURES / "chromium_client_hello.json").read_text())
    for versions in (("1.3", "1.2"), ("1.2",)):
        for cookies in (True, False):
            # the recorded hello carries no certificate: pin one that is never presented
            server = DtlsConnection(
                False,
                Certificate.generate(),
                cookies=cookies,
                remote_fingerprints=Certificate.generate().fingerprints(),
                dtls_versions=versions,
            )
            for datagram in fixture["datagrams"]:
                server.receive_datagram(bytes.fromhex(datagram), 0.0, addr=("127.0.0.1", 5000))
            replies = server.datagrams_to_send(0.0)
            assert server.error is None and replies
            sniffer = HandshakeSniffer()
            for reply in replies:
                sniffer.feed(reply)
            if cookies and versions == ("1.2",):
                # HelloVerifyRequest: handshake type 3 in the first record
                assert replies[0][0] == 22 and replies[0][13] == 3
                continue
            [hello] = sniffer.server_hellos()
            assert hello["legacy_version"] == "DTLS 1.2"
            if versions == ("1.2",):
                assert hello["cipher_suite"] in fixture["decoded"]["cipher_suites"]
                assert hello["use_srtp"][0] in fixture["decoded"]["use_srtp"]
                assert "extended_master_secret" in hello["extensions"]
                assert "supported_versions" not in hello["extensions"]
                continue
            assert hello["supported_versions"] == ["DTLS 1.3"]
            assert hello["cipher_suite"] == "TLS_AES_128_GCM_SHA256"
            if cookies:
                # a HelloRetryRequest: only the cookie is asked for (the hybrid share
                # Chromium sent is the one we prefer), in one small datagram
                assert sorted(hello["extensions"]) == ["cookie", "supported_versions"]
                assert len(replies) == 1
            else:
                assert sorted(hello["extensions"]) == ["key_share", "supported_versions"]
                assert server.group == "X25519MLKEM768"


def test_recorded_chromium_offer_fixture_is_a_dtls_srtp_offer() -> None:
    sdp = (FIXTURES / "chromium_offer.sdp").read_text()
    lines = sdp.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("m=")] == ["m=audio",
                                                                          "m=video"]
    assert all("UDP/TLS/RTP/SAVPF" in line for line in lines if line.startswith("m="))
    assert {line for line in lines if line.startswith("a=setup:")} == {"a=setup:actpass"}
    assert any(line.startswith("a=fingerprint:sha-256 ") for line in lines)
    assert any(" 127.0.0.1 " in line and "typ host" in line for line in lines
               if line.startswith("a=candidate:"))


# --- SDP glue for RTP-level peers ----------------------------------------------------


def _our_transport(setup: str) -> TransportParams:
    return TransportParams("uFrg", "p" * 22, "sha-256 " + ":".join(["AB"] * 32), setup,
                           ["1 1 udp 2130706431 127.0.0.2 40000 typ host"])


def test_media_answer_mirrors_chromium_offer() -> None:
    offer = (FIXTURES / "chromium_offer.sdp").read_text()
    offered = parse_media(offer)
    assert [(m.kind, m.mid, m.payload_type()) for m in offered] == [
        ("audio", "0", 111), ("video", "1", 96)]
    remote = TransportParams.from_sdp(offer)
    assert remote.setup == "actpass" and remote.fingerprint.startswith("sha-256 ")

    answer = media_answer(offer, _our_transport("active"), {"audio": 11, "video": 22})
    assert answer.endswith("\r\n")
    answered = parse_media(answer)
    assert [(m.kind, m.mid, list(m.rtpmap), m.ssrcs, m.direction) for m in answered] == [
        ("audio", "0", [111], [11], "sendrecv"), ("video", "1", [96], [22], "sendrecv")]
    assert "a=group:BUNDLE 0 1" in answer
    assert TransportParams.from_sdp(answer) == _our_transport("active")
    assert answered[0].extmap == {"urn:ietf:params:rtp-hdrext:sdes:mid": 4}
    with pytest.raises(SdpMediaError):
        media_answer(offer, _our_transport("actpass"), {})
    with pytest.raises(SdpMediaError):
        TransportParams.from_sdp("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")


def test_media_offer_and_ssrc_rewrite() -> None:
    offer = media_offer(_our_transport("actpass"), {"audio": 1, "video": 2})
    assert [(m.kind, m.payload_type(), m.ssrcs) for m in parse_media(offer)] == [
        ("audio", 111, [1]), ("video", 96, [2])]
    packet = bytes([0x80, 96]) + bytes(6) + (7).to_bytes(4, "big") + b"payload"
    assert rewrite_ssrc(packet, 0xDEADBEEF) == packet[:8] + bytes.fromhex("deadbeef") + \
        b"payload"
    with pytest.raises(SdpMediaError):
        rewrite_ssrc(b"short", 1)


# --- aiortc against aiortc, inside the namespace -------------------------------------


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_aiortc_peers_exchange_media_in_loopback_namespace() -> None:
    host_ns = current_namespace()

    async def scenario() -> dict[str, Any]:
        sender, echo = AiortcPeer(), AiortcPeer(echo=True)
        try:
            offer = await sender.offer()
            await sender.accept_answer(await echo.answer(offer))
            await sender.wait_connected()
            for kind in ("audio", "video"):
                await echo.wait_frames(kind, 5)
                await sender.wait_frames(kind, 5)  # our own media, echoed back
            return {"ns": current_namespace(), "offer": offer,
                    "sender": {k: c.summary() for k, c in sender.counters.items()},
                    "dtls": sender.dtls_info()}
        finally:
            await sender.close()
            await echo.close()

    result = run_in_loopback_netns(scenario, timeout=30)
    assert result["ns"] != host_ns
    assert f" {AIOICE_LOOPBACK} " in result["offer"]
    assert result["sender"]["video"]["width"] == 320
    assert result["sender"]["audio"]["peak"] > 1000  # the sine survived the round trip
    assert result["dtls"]["state"] == "connected" and result["dtls"]["version"] == "DTLSv1.2"


# --- headless Chromium against aiortc ------------------------------------------------


def _assert_media_both_ways(stats: dict[str, Any], peer: AiortcPeer) -> None:
    transport = stats["transport"]
    assert transport["dtlsState"] == "connected"
    assert transport["tlsVersion"] == "FEFD"  # DTLS 1.2 on the wire
    assert transport["dtlsCipher"] and transport["srtpCipher"]
    assert stats["inbound"]["video"]["framesDecoded"] > 0
    assert stats["inbound"]["audio"]["packetsReceived"] > 0
    pair = stats["candidatePair"]
    assert pair["state"] == "succeeded"
    assert pair["local"]["address"].startswith("127.")
    assert pair["remote"]["address"].startswith("127.")
    assert peer.counters["video"].frames > 0 and peer.counters["video"].width > 0
    assert peer.counters["audio"].frames > 0


def _save(name: str, session: BrowserSession, stats: dict[str, Any],
          peer: AiortcPeer) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.sdp").write_text(session.browser_sdp)
    report = {"stats": stats, "timings": session.timings, "aiortc_dtls": peer.dtls_info(),
              "aiortc_received": {k: c.summary() for k, c in peer.counters.items()},
              "hellos": session.sniffer.hellos if session.sniffer else []}
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(report, indent=1))


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_chromium_offers_aiortc_echoes() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], str, float]:
        peer = AiortcPeer(echo=True)
        try:
            async with browser_session(peer, mode="offer") as session:
                stats = await session.wait_stats(video_playing, timeout=20)
                await session.screenshot(ARTIFACTS / "chromium-offers.png")
                await peer.wait_frames("video", 1)
                await peer.wait_frames("audio", 1)
                _assert_media_both_ways(stats, peer)
                _save("chromium-offers", session, stats, peer)
                session.mark("done")
                return stats, peer.dtls_info(), session.browser_sdp, session.timings["done"]
        finally:
            await peer.close()

    stats, aiortc_dtls, offer, _elapsed = run_in_loopback_netns(scenario, timeout=45)
    assert "a=setup:actpass" in offer and "m=video" in offer
    # Chromium offered actpass, so aiortc answered active: aiortc is the DTLS client.
    assert stats["transport"]["dtlsRole"] == "server"
    assert aiortc_dtls["role"] == "client"
    assert (ARTIFACTS / "chromium-offers.png").stat().st_size > 5000


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_aiortc_offers_chromium_answers() -> None:
    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        peer = AiortcPeer()  # sends its own sine + moving bar, counts Chromium's media
        try:
            async with browser_session(peer, mode="answer") as session:
                stats = await session.wait_stats(video_playing, timeout=20)
                await session.screenshot(ARTIFACTS / "chromium-answers.png")
                await peer.wait_frames("video", 1)
                await peer.wait_frames("audio", 1)
                _assert_media_both_ways(stats, peer)
                _save("chromium-answers", session, stats, peer)
                assert session.sniffer is not None
                return stats, session.sniffer.client_hellos(), session.browser_sdp
        finally:
            await peer.close()

    stats, client_hellos, answer = run_in_loopback_netns(scenario, timeout=45)
    assert "a=setup:active" in answer
    assert stats["transport"]["dtlsRole"] == "client"
    # Chromium's own ClientHello went through the sniffer: the facts our server relies on.
    [hello] = [h for h in client_hellos if h["src"].startswith("127.0.0.1:")]
    assert hello["legacy_version"] == "DTLS 1.2"
    assert "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" in hello["cipher_suites"]
    assert "extended_master_secret" in hello["extensions"]
    assert "SRTP_AES128_CM_HMAC_SHA1_80" in hello["use_srtp"]


# --- headless Chromium against an RTP-level peer (what SecurePeer will be) -------------


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["offer", "answer"])
def test_chromium_decodes_rtp_echo_from_rtp_level_peer(mode: str) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, int], dict[str, object]]:
        peer = AiortcRtpPeer(echo=True)
        try:
            async with browser_session(peer, mode=mode,  # type: ignore[arg-type]
                                       log_name=f"rtp-{mode}") as session:
                stats = await session.wait_stats(video_playing, timeout=20)
                await session.screenshot(ARTIFACTS / f"rtp-echo-{mode}.png")
                return stats, dict(peer.sent), peer.dtls_info()
        finally:
            await peer.close()

    stats, echoed, dtls = run_in_loopback_netns(scenario, timeout=45)
    assert stats["transport"]["dtlsState"] == "connected"
    assert stats["transport"]["dtlsRole"] == ("server" if mode == "offer" else "client")
    assert stats["inbound"]["video"]["framesDecoded"] >= 10
    assert stats["inbound"]["audio"]["packetsReceived"] > 0
    assert echoed["video"] > 0 and echoed["audio"] > 0
    assert dtls["state"] == "connected"


class _BrokenHandler(_FakeHandler):
    async def answer(self, offer_sdp: str) -> str:
        raise RuntimeError("peer exploded")


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_failed_signaling_reports_and_leaves_no_browser() -> None:
    async def scenario() -> tuple[str, list[int]]:
        with pytest.raises(BrowserSessionError) as caught:
            async with browser_session(_BrokenHandler(), mode="offer", sniff=False,
                                       log_name="broken") as _session:
                raise AssertionError("start() should have failed")
        return str(caught.value), pids_in_namespace(current_namespace())

    message, leftovers = run_in_loopback_netns(scenario, timeout=30)
    assert "HTTP 500" in message and "peer exploded" in message
    assert "'POST /offer'" in message and "last stats:" in message
    assert leftovers == []  # the browser's whole process group is gone
