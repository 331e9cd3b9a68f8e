"""SecurePeer against headless Chromium (BoringSSL DTLS, libsrtp, its own ICE), in a
loopback-only network namespace, both offer/answer directions.

The page sends its fake camera and microphone to our peer, which echoes every RTP packet
back, re-protected with its own keys under the SSRCs of its own description, and turns
the browser's keyframe requests (PLI/FIR about our echo) into PLIs for the browser's own
sender. The page's getStats() must show the echoed video decoding.
"""

from __future__ import annotations

from typing import Any

import pytest

from examples.browser_echo import SecurePeerEcho
from tests.browser.netns import run_in_loopback_netns
from tests.browser.session import ARTIFACTS, browser_session, video_playing

pytestmark = pytest.mark.interop


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["offer", "answer"], ids=["chromium-offers", "securepeer-offers"])
def test_chromium_plays_video_echoed_by_securepeer(mode: str) -> None:
    async def scenario() -> dict[str, Any]:
        echo = SecurePeerEcho()
        try:
            async with browser_session(
                echo,
                mode=mode,  # type: ignore[arg-type]
                log_name=f"securepeer-{mode}",
            ) as session:
                stats = await session.wait_stats(video_playing, timeout=25)
                await session.screenshot(ARTIFACTS / f"securepeer-echo-{mode}.png")
                assert echo.connect_task is not None
                await echo.connect_task
                return {
                    "page": stats,
                    "ours": echo.peer.stats(),
                    "echoed": dict(echo.echoed),
                    "keyframe_requests": echo.keyframe_requests,
                    "client_hellos": session.sniffer.client_hellos() if session.sniffer else [],
                    "server_hellos": session.sniffer.server_hellos() if session.sniffer else [],
                }
        finally:
            await echo.close()

    report = run_in_loopback_netns(scenario, timeout=80)
    page, ours = report["page"], report["ours"]
    assert page["transport"]["dtlsState"] == "connected"
    assert page["inbound"]["video"]["framesDecoded"] >= 10
    assert page["inbound"]["audio"]["packetsReceived"] > 0
    assert report["echoed"]["video"] > 0 and report["echoed"]["audio"] > 0
    assert ours["dtls"]["dropped_authentication"] == 0
    assert not any("AuthenticationFailed" in k for k in ours["dropped"])
    # Chromium offered actpass: we answered active and are the DTLS client, and when
    # we offer, Chromium answers active and we are the server
    assert ours["dtls"]["role"] == ("client" if mode == "offer" else "server")
    print(
        f"chromium {mode}: ours={ours} page_transport={page['transport']} "
        f"keyframe_requests={report['keyframe_requests']}"
    )
    for hello in report["client_hellos"] + report["server_hellos"]:
        print({k: v for k, v in hello.items() if k not in ("raw", "datagrams")})
    # whoever was the DTLS client, the version answered is DTLS 1.2
    assert report["server_hellos"]
    assert all(h["legacy_version"] == "DTLS 1.2" for h in report["server_hellos"])
