"""SecurePeer against headless Chromium (BoringSSL DTLS, libsrtp, its own ICE), inside a
loopback-only network namespace, in both offer/answer directions.

The page (``examples/browser``) sends its fake camera and microphone to
``examples/browser_echo.py``'s :class:`SecurePeerEcho`, which echoes every RTP packet
back re-protected with its own keys under the SSRCs of its own description. Asserted
from the page's getStats(): DTLS connected with the suite and SRTP profile our side
negotiated, echoed video decoded, echoed audio received, the page's data channel
pings echoed; on our side: no authentication failures. Our ``get_stats()`` is held
against the page's getStats(): the same transport members, and per SSRC each way the
same packets, payload bytes and header bytes up to what was in flight between reads.
Screenshots go to ``artifacts/browser/``.

Keyframe requests are proven, not hoped for: the echo withholds the first part of the
echoed video, the first keyframe included, so the page can only ever decode the echo
once its PLI (about our SSRC) has come back to its own encoder as our PLI (about its
SSRC) and a new keyframe has been echoed. The page's sender counts that PLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import webrtc_secure.peer as peer_module
from examples.browser_echo import SecurePeerEcho
from tests.browser.cdp import Chromium
from tests.browser.netns import run_in_loopback_netns
from tests.browser.session import ARTIFACTS, browser_session, video_playing
from webrtc_secure import SessionDescription
from webrtc_secure.dtls import keys13

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[1]

#: echoed video withheld from the first video packet on (Chromium's fake camera runs
#: at 15 fps here, so this drops its first keyframe and about nine frames after it)
BLACKOUT_SECONDS = 0.6

#: per-kind RTP counters the shared page summary leaves out (keyframes, PLI, NACK)
VIDEO_RTP_STATS_JS = """(async () => {
  const out = {inbound: null, outbound: null};
  (await harness.pc.getStats()).forEach((s) => {
    if (s.kind !== 'video') return;
    const pick = (...names) => Object.fromEntries(names.map((n) => [n, s[n]]));
    if (s.type === 'inbound-rtp') {
      out.inbound = pick('ssrc', 'pliCount', 'firCount', 'nackCount', 'keyFramesDecoded',
                         'framesDecoded', 'packetsLost', 'packetsReceived');
    } else if (s.type === 'outbound-rtp') {
      out.outbound = pick('ssrc', 'pliCount', 'firCount', 'nackCount', 'keyFramesEncoded',
                          'framesEncoded', 'packetsSent');
    }
  });
  return out;
})()"""

#: what the page's getStats() says of RTP per SSRC, its transport and certificates: the
#: other side of what our get_stats() reports (compared in _compare_with_page)
STATS_SHAPE_JS = """(async () => {
  const out = {outbound: [], inbound: [], transport: null, certificates: {}};
  (await harness.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' || s.type === 'inbound-rtp') {
      const sent = s.type === 'outbound-rtp';
      (sent ? out.outbound : out.inbound).push({
        ssrc: s.ssrc, kind: s.kind,
        packets: sent ? s.packetsSent : s.packetsReceived,
        bytes: sent ? s.bytesSent : s.bytesReceived,
        headerBytes: sent ? s.headerBytesSent : s.headerBytesReceived,
      });
    } else if (s.type === 'transport') {
      out.transport = {
        dtlsState: s.dtlsState, tlsVersion: s.tlsVersion, dtlsCipher: s.dtlsCipher,
        srtpCipher: s.srtpCipher, dtlsRole: s.dtlsRole,
        localCertificateId: s.localCertificateId, remoteCertificateId: s.remoteCertificateId,
      };
    } else if (s.type === 'certificate') {
      out.certificates[s.id] = {fingerprint: s.fingerprint,
                                fingerprintAlgorithm: s.fingerprintAlgorithm};
    }
  });
  return out;
})()"""

#: packets one side may have sent and the other not yet counted between the two
#: getStats() reads (about 50 audio packets/s, and CDP round trips take milliseconds)
IN_FLIGHT_PACKETS = 25


def _compare_with_page(
    before: dict[str, Any], page: dict[str, Any], after: dict[str, Any]
) -> list[str]:
    """Our get_stats().to_dict() read ``before`` and ``after`` the page's getStats():
    the transport must agree member by member, each SSRC the page sent must be counted
    by us (packets, payload bytes and header bytes: RFC 3550 6.4.1 on both sides), and
    each SSRC we sent, by the page. Returns a line per compared stream."""
    ours = {e["type"]: e for e in before.values() if e["type"] in ("transport",)}
    transport, theirs = ours["transport"], page["transport"]
    for member in ("dtlsState", "tlsVersion", "dtlsCipher", "srtpCipher"):
        assert transport[member] == theirs[member], member
    assert {transport["dtlsRole"], theirs["dtlsRole"]} == {"client", "server"}
    # each side's remote certificate is the other's local one
    certificates = page["certificates"]
    assert (
        before[transport["remoteCertificateId"]]["fingerprint"]
        == (certificates[theirs["localCertificateId"]]["fingerprint"])
    )
    assert (
        before[transport["localCertificateId"]]["fingerprint"]
        == (certificates[theirs["remoteCertificateId"]]["fingerprint"])
    )

    def streams(report: dict[str, Any], kind: str) -> dict[int, dict[str, Any]]:
        return {e["ssrc"]: e for e in report.values() if e["type"] == kind}

    lines = []
    # the page's senders -> our receivers: we read first, so the page is ahead
    received = streams(before, "inbound-rtp")
    page_ssrcs = {sent["ssrc"] for sent in page["outbound"]}
    # an SSRC the page has no outbound-rtp for is RTX (retransmissions, padding; none
    # on this lossless path so far): how libwebrtc's media SSRC counts those is not
    # pinned down here, so then video gets only an upper bound
    rtx = any(ssrc not in page_ssrcs for ssrc in received)
    for sent in page["outbound"]:
        got = received.get(sent["ssrc"])
        assert got is not None, f"page sent SSRC {sent['ssrc']} we never counted"
        lines.append(f"{sent['kind']} {sent['ssrc']}: page sent {sent}, we received {got}")
        assert got["kind"] == sent["kind"]
        if rtx and sent["kind"] == "video":
            assert got["packetsReceived"] <= sent["packets"]
            continue
        behind = sent["packets"] - got["packetsReceived"]
        assert 0 <= behind <= IN_FLIGHT_PACKETS, lines[-1]
        if behind == 0:
            assert got["bytesReceived"] == sent["bytes"], lines[-1]
            assert got["headerBytesReceived"] == sent["headerBytes"], lines[-1]
        else:
            assert 0 <= sent["bytes"] - got["bytesReceived"] <= behind * 1200, lines[-1]
            assert 0 <= sent["headerBytes"] - got["headerBytesReceived"] <= behind * 1200
    # our senders -> the page's receivers: we read again after, so we are ahead
    sent_by_us = streams(after, "outbound-rtp")
    for got in page["inbound"]:
        ours_sent = sent_by_us.get(got["ssrc"])
        assert ours_sent is not None, f"page received SSRC {got['ssrc']} we never sent"
        lines.append(f"{got['kind']} {got['ssrc']}: we sent {ours_sent}, page received {got}")
        assert ours_sent["kind"] == got["kind"]
        behind = ours_sent["packetsSent"] - got["packets"]
        assert 0 <= behind <= IN_FLIGHT_PACKETS, lines[-1]
        if behind == 0:
            assert ours_sent["bytesSent"] == got["bytes"], lines[-1]
            assert ours_sent["headerBytesSent"] == got["headerBytes"], lines[-1]
    return lines


class KeyframeStarvedEcho(SecurePeerEcho):
    """The example's echo, minus the first :data:`BLACKOUT_SECONDS` of echoed video."""

    def __init__(self) -> None:
        super().__init__()
        self.blackout_until: float | None = None
        self.withheld = 0

    def _on_rtp(self, packet: bytes) -> None:
        if self.kinds.get(packet[1] & 0x7F) == "video":
            now = time.monotonic()
            if self.blackout_until is None:
                self.blackout_until = now + BLACKOUT_SECONDS
            if now < self.blackout_until:
                self.withheld += 1
                return
        super()._on_rtp(packet)


def _tls_suite_name(ours: str) -> str:
    """Our suite enum name in the IANA spelling getStats() uses."""
    return re.sub(r"^(ECDHE_(?:ECDSA|RSA))_", r"TLS_\1_WITH_", ours)


def _sdp_summary(sdp: str) -> dict[str, Any]:
    """What a description offers, in a few lines: setup, fingerprint, codecs, extras."""
    description = SessionDescription.from_sdp(
        sdp, "offer" if "a=setup:actpass" in sdp else "answer"
    )
    return {
        "setup": description.setup.value,
        "fingerprints": [f.algorithm for f in description.fingerprints],
        "candidates": len(description.candidates),
        "media": [
            {
                "kind": m.kind,
                "mid": m.mid,
                "codecs": [f"{c.payload_type} {c.name}/{c.clock_rate}" for c in m.codecs],
                "extensions": len(m.extensions),
                "ssrcs": [s.ssrc for s in m.ssrcs],
            }
            for m in description.media
        ],
    }


def _hello_summary(hello: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "msg",
        "legacy_version",
        "supported_versions",
        "cipher_suites",
        "cipher_suite",
        "use_srtp",
        "supported_groups",
        "key_shares",
        "extensions",
        "records",
        "length",
    )
    return {k: hello[k] for k in keep if k in hello}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["offer", "answer"], ids=["chromium-offers", "securepeer-offers"])
def test_chromium_plays_video_echoed_by_securepeer(mode: str) -> None:
    async def scenario() -> dict[str, Any]:
        echo = KeyframeStarvedEcho()
        try:
            async with browser_session(
                echo,
                mode=mode,
                log_name=f"interop-securepeer-{mode}",  # type: ignore[arg-type]
            ) as session:
                await echo.connected(timeout=15)
                page = await session.wait_stats(video_playing, timeout=20)
                await session.screenshot(ARTIFACTS / f"interop-securepeer-{mode}.png")
                video = await session.page.evaluate(VIDEO_RTP_STATS_JS)
                # libwebrtc answers getStats() from a cache for 50 ms: past it, the
                # page's report is taken after our first read and before our second
                await asyncio.sleep(0.2)
                stats_before = echo.peer.get_stats().to_dict()
                stats_page = await session.page.evaluate(STATS_SHAPE_JS)
                stats_after = echo.peer.get_stats().to_dict()
                sniffer = session.sniffer
                return {
                    "page": page,
                    "video": video,
                    "ours": echo.peer.stats(),
                    "stats": (stats_before, stats_page, stats_after),
                    "echoed": dict(echo.echoed),
                    "messages_echoed": echo.messages_echoed,
                    "withheld": echo.withheld,
                    "not_echoed": dict(echo.not_echoed),
                    "rtcp_seen": dict(echo.rtcp_seen),
                    "keyframe_requests": echo.keyframe_requests,
                    "keyframe_requests_forwarded": echo.keyframe_requests_forwarded,
                    "browser_sdp": session.browser_sdp,
                    "timings": session.timings,
                    "client_hellos": sniffer.client_hellos() if sniffer else [],
                    "server_hellos": sniffer.server_hellos() if sniffer else [],
                }
        finally:
            await echo.close()

    report = run_in_loopback_netns(scenario, timeout=50)
    page, ours, video = report["page"], report["ours"], report["video"]
    transport = page["transport"]
    dtls = ours["dtls"]
    print(
        f"\n[chromium, page mode {mode}] connect: ICE {1e3 * ours['ice_seconds']:.1f} ms, "
        f"DTLS {1e3 * ours['dtls_seconds']:.1f} ms; we are DTLS {dtls['role']}: "
        f"{dtls['cipher_suite']}, {dtls['srtp_profile']}"
    )
    print(f"  page transport: {json.dumps(transport)}")
    print(f"  page video: {json.dumps(video)}")
    print(
        f"  echo: echoed {report['echoed']}, withheld {report['withheld']}, "
        f"not echoed {report['not_echoed']}, rtcp {report['rtcp_seen']}, keyframe "
        f"requests {report['keyframe_requests_forwarded']}/{report['keyframe_requests']} "
        f"forwarded; ours dropped {ours['dropped']}; page timings {report['timings']}"
    )
    print(
        f"  chromium's {'offer' if mode == 'offer' else 'answer'}: "
        f"{json.dumps(_sdp_summary(report['browser_sdp']))}"
    )
    for hello in report["client_hellos"] + report["server_hellos"]:
        print(f"  {json.dumps(_hello_summary(hello))}")

    # the page: connected over DTLS 1.3, echoed video decoding, echoed audio arriving
    assert transport["dtlsState"] == "connected"
    assert page["inbound"]["video"]["framesDecoded"] >= 10
    assert page["inbound"]["audio"]["packetsReceived"] > 0
    assert (page["video"]["width"], page["video"]["height"]) == (320, 240)
    assert transport["tlsVersion"] == "FEFC"
    # ours: DTLS 1.3 with the post-quantum hybrid (getStats() does not name the group)
    assert dtls["version"] == "DTLS 1.3"
    assert dtls["group"] == "X25519MLKEM768"
    # both ends name the same suite and profile; roles are complementary (Chromium's
    # offer is actpass and we answer active; our offer is actpass and Chromium answers
    # active)
    assert transport["dtlsCipher"] == _tls_suite_name(dtls["cipher_suite"])
    assert transport["srtpCipher"] == f"SRTP_{dtls['srtp_profile']}"
    assert dtls["role"] == ("client" if mode == "offer" else "server")
    assert transport["dtlsRole"] == ("server" if mode == "offer" else "client")
    # ours: nothing failed authentication, every packet of a known kind was echoed
    assert dtls["dropped_authentication"] == 0
    assert not any("AuthenticationFailed" in reason for reason in ours["dropped"])
    assert report["echoed"]["audio"] > 0 and report["echoed"]["video"] > 0
    assert report["not_echoed"] == {}
    # keyframes: the first one was withheld, so decoding needed the forwarded request
    assert report["withheld"] > 0
    assert video["inbound"]["pliCount"] + video["inbound"]["firCount"] >= 1
    assert report["keyframe_requests_forwarded"] >= 1
    assert video["outbound"]["pliCount"] >= 1  # our PLI reached Chromium's sender
    assert video["outbound"]["keyFramesEncoded"] >= 2
    assert video["inbound"]["keyFramesDecoded"] >= 1
    # the page's "chat" data channel beside the media: open, its pings echoed back
    chat = page["datachannel"]
    assert chat["state"] == "open" and chat["echoed"] >= 1
    assert report["messages_echoed"] >= chat["echoed"]
    [channel] = ours["datachannels"]
    assert channel["label"] == "chat" and channel["messages_received"] >= chat["echoed"]
    # get_stats() against the page's getStats(): same transport, every SSRC counted
    # on both ends, exactly up to what was in flight between the reads
    for line in _compare_with_page(*report["stats"]):
        print(f"  stats: {line}")
    # DTLS 1.3 on the wire whoever was the client: both hellos offer 1.3 and 1.2, the
    # ServerHello (legacy version 1.2 as RFC 9147 wants) selects 1.3, no HRR needed
    server_hellos, client_hellos = report["server_hellos"], report["client_hellos"]
    assert len(server_hellos) == 1 and len(client_hellos) == 1
    assert server_hellos[0]["legacy_version"] == "DTLS 1.2"
    assert server_hellos[0]["supported_versions"] == ["DTLS 1.3"]
    assert sorted(server_hellos[0]["extensions"]) == ["key_share", "supported_versions"]
    assert client_hellos[0]["supported_versions"][:2] == ["DTLS 1.3", "DTLS 1.2"]


def _keylog(path: Path) -> dict[tuple[str, str], str]:
    """{(label, client random): secret} of an NSS key log (empty if absent)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            out[(parts[0], parts[1].lower())] = parts[2].lower()
    return out


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["offer", "answer"], ids=["chromium-offers", "securepeer-offers"])
def test_chromium_dtls13_hello_retry_key_update_and_key_log(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DTLS 1.3 with Chromium beyond the default path. Our engine accepts only
    secp256r1, which Chromium supports but sends no share for: as server we ask for it
    with a HelloRetryRequest; as client our hello carries just that share. After the
    handshake, our KeyUpdate with update_requested makes Chromium update its keys
    too (both directions reach epoch 4) while the echoed video keeps decoding. Our
    SSLKEYLOGFILE holds the handshake's secrets, and its EXPORTER_SECRET reproduces
    the DTLS-SRTP keys Chromium's media was protected with. (Chromium was given
    SSLKEYLOGFILE too, but its WebRTC DTLS does not write it: only its network stack
    does, so there is nothing of the DTLS handshake to compare from that side.)"""
    ours_log, chromium_log = tmp_path / "ours.keys", tmp_path / "chromium.keys"
    real = peer_module.DtlsConnection

    def connection(*args: Any, **kwargs: Any) -> Any:
        return real(*args, groups13=[0x0017], keylog_file=str(ours_log), **kwargs)

    monkeypatch.setattr(peer_module, "DtlsConnection", connection)
    # inherited by the Chromium process only: our engine logs to ours_log
    monkeypatch.setenv("SSLKEYLOGFILE", str(chromium_log))

    async def scenario() -> dict[str, Any]:
        echo = SecurePeerEcho()
        try:
            async with browser_session(
                echo,
                mode=mode,
                log_name=f"interop-dtls13-{mode}",  # type: ignore[arg-type]
            ) as session:
                await echo.connected(timeout=15)
                before = await session.wait_stats(video_playing, timeout=20)
                assert echo.peer._dtls is not None
                conn = echo.peer._dtls.connection
                engine = conn._v13
                assert engine is not None
                epochs_before = (engine.write_epoch, engine.read_epoch)
                assert echo.peer._dtls.key_update(request_peer_update=True)
                deadline = time.monotonic() + 10
                while (engine.write_epoch, engine.read_epoch) != (4, 4):
                    assert time.monotonic() < deadline, (engine.write_epoch, engine.read_epoch)
                    await asyncio.sleep(0.05)
                frames = before["inbound"]["video"]["framesDecoded"]
                after = await session.wait_stats(
                    lambda st: st["inbound"]["video"]["framesDecoded"] >= frames + 15,
                    timeout=20,
                )
                sniffer = session.sniffer
                return {
                    "ours": echo.peer.stats(),
                    "epochs_before": epochs_before,
                    "epochs_after": (engine.write_epoch, engine.read_epoch),
                    "key_updates": (engine.key_updates_sent, engine.key_updates_received),
                    "client_random": engine.client_random.hex(),
                    "srtp_material": conn.export_keying_material("EXTRACTOR-dtls_srtp", 60).hex(),
                    "page_after": after,
                    "frames_before": frames,
                    "client_hellos": sniffer.client_hellos() if sniffer else [],
                    "server_hellos": sniffer.server_hellos() if sniffer else [],
                    "state": echo.peer.state.value,
                }
        finally:
            await echo.close()

    report = run_in_loopback_netns(scenario, timeout=80)
    dtls = report["ours"]["dtls"]
    print(
        f"\n[chromium dtls13, page mode {mode}] {dtls['version']} {dtls['group']} "
        f"{dtls['cipher_suite']}; epochs {report['epochs_before']} -> {report['epochs_after']}, "
        f"KeyUpdates sent/received {report['key_updates']}; frames "
        f"{report['frames_before']} -> {report['page_after']['inbound']['video']['framesDecoded']}"
    )
    for hello in report["client_hellos"] + report["server_hellos"]:
        print(f"  {json.dumps(_hello_summary(hello))}")
    assert dtls["version"] == "DTLS 1.3" and dtls["group"] == "SECP256R1"
    assert report["page_after"]["transport"]["tlsVersion"] == "FEFC"
    assert report["epochs_before"] == (3, 3) and report["epochs_after"] == (4, 4)
    # ours with update_requested, then Chromium's own in answer
    assert report["key_updates"] == (1, 1)
    assert dtls["dropped_authentication"] == 0
    server_hellos, client_hellos = report["server_hellos"], report["client_hellos"]
    if mode == "answer":
        # we are the server: HelloRetryRequest (key_share secp256r1 + cookie), then
        # Chromium's second hello with the one share asked for
        assert len(server_hellos) == 2 and len(client_hellos) == 2
        assert "cookie" in server_hellos[0]["extensions"]
        assert client_hellos[1]["key_shares"] == ["secp256r1(65B)"]
    else:
        assert len(server_hellos) == 1 and len(client_hellos) == 1
    # our key log: the five TLS 1.3 secrets under our client random, the exporter
    # secret the one the SRTP keys that Chromium's media used came from
    ours = _keylog(ours_log)
    random_hex = report["client_random"]
    labels = [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ]
    assert all((label, random_hex) in ours for label in labels), sorted(ours)
    exported = keys13.export_keying_material(
        "sha256",
        bytes.fromhex(ours[("EXPORTER_SECRET", random_hex)]),
        b"EXTRACTOR-dtls_srtp",
        None,
        60,
    )
    assert exported.hex() == report["srtp_material"]
    theirs = _keylog(chromium_log)
    print(
        f"  Chromium's key log: {len(theirs)} lines, "
        f"{sum(r == random_hex for _, r in theirs)} for our DTLS handshake"
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", [[], ["--mode", "answer"]], ids=["page-offers", "page-answers"])
def test_browser_echo_script_as_documented(args: list[str]) -> None:
    """``python examples/browser_echo.py`` as the README runs it (both ``--mode``s),
    opened by Chromium: the echoed video plays and the page's data channel pings come
    back."""

    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # run alone, no other test made it
    name = "-".join(["script", *args[1:]])

    async def scenario() -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "examples" / "browser_echo.py"),
            "--port",
            "0",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        output: list[str] = []
        try:
            assert process.stdout is not None
            first = await asyncio.wait_for(process.stdout.readline(), 15)
            output.append(first.decode())
            match = re.match(r"open (http://127\.0\.0\.1:\d+/\S+)", output[0])
            assert match, output
            async with Chromium(log_path=ARTIFACTS / f"chromium-interop-{name}.log") as browser:
                page = await browser.new_page()
                await page.navigate(match.group(1))
                deadline = time.monotonic() + 20
                while True:
                    stats = await page.evaluate("stats()")
                    chat_echoed = stats["datachannel"].get("echoed", 0) >= 1
                    if (video_playing(stats) and chat_echoed) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                await page.screenshot(ARTIFACTS / f"interop-securepeer-{name}.png")
                # the script reports how it connected once DTLS is up
                while not any(line.startswith("connected:") for line in output):
                    line = await asyncio.wait_for(process.stdout.readline(), 10)
                    assert line, output
                    output.append(line.decode())
            return {"stats": stats, "output": output}
        finally:
            if process.returncode is None:
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()

    report = run_in_loopback_netns(scenario, timeout=50)
    print("\n[script] " + "".join(report["output"]).strip().replace("\n", "\n[script] "))
    stats = report["stats"]
    assert video_playing(stats), stats
    assert stats["inbound"]["audio"]["packetsReceived"] > 0
    assert stats["datachannel"]["state"] == "open" and stats["datachannel"]["echoed"] >= 1
    assert any(line.startswith("connected: TLS_AES_") for line in report["output"])
