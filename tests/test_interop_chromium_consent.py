"""ICE consent freshness (RFC 7675) against headless Chromium, both ICE roles: our
minimal STUN codec (webrtc_secure/stun.py) answers Chromium's checks on the nominated
pair, and Chromium answers the checks our codec builds. Chromium verifies
MESSAGE-INTEGRITY and FINGERPRINT of what we send and drops what fails them, so its
getStats() counting our responses and answering our requests is the proof that the
bytes are right; our counters prove that the fast path, not aioice, did the work.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from examples.browser_echo import SecurePeerEcho
from tests.browser.netns import run_in_loopback_netns
from tests.browser.session import browser_session, media_flowing

pytestmark = pytest.mark.interop

#: the page's selected candidate pair, as its getStats() counts STUN on it
PAIR_STATS_JS = """(async () => {
  let out = null;
  const report = await harness.pc.getStats();
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const p = report.get(s.selectedCandidatePairId);
      out = {state: p.state, nominated: p.nominated, requestsSent: p.requestsSent,
             responsesReceived: p.responsesReceived, requestsReceived: p.requestsReceived,
             responsesSent: p.responsesSent, consentRequestsSent: p.consentRequestsSent};
    }
  });
  return out;
})()"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["offer", "answer"], ids=["chromium-offers", "securepeer-offers"])
def test_consent_checks_both_ways_with_chromium(mode: str) -> None:
    async def scenario() -> dict[str, Any]:
        echo = SecurePeerEcho()
        try:
            async with browser_session(
                echo, mode=mode, sniff=False  # type: ignore[arg-type]
            ) as session:
                await echo.connected(timeout=15)
                await session.wait_stats(media_flowing, timeout=20)
                connection = echo.peer._ice
                assert connection is not None
                start = await session.page.evaluate(PAIR_STATS_JS)
                checks = connection.consent_checks
                # our first check goes 4..6 s after consent freshness starts;
                # Chromium pings the selected pair every few seconds
                for _ in range(300):
                    if checks["answered"] >= 2 and checks["answered_here"] >= 2:
                        break
                    await asyncio.sleep(0.05)
                end = await session.page.evaluate(PAIR_STATS_JS)
                return {
                    "start": start,
                    "end": end,
                    "checks": dict(checks),
                    "dropped": dict(connection.dropped),
                    "controlling": connection.ice_controlling,
                    "closed": connection.consent_expired,
                }
        finally:
            await echo.close()

    report = run_in_loopback_netns(scenario, timeout=50)
    print(f"\n[chromium consent, page mode {mode}] {report}")
    checks, start, end = report["checks"], report["start"], report["end"]
    assert report["controlling"] is (mode == "answer")  # the offerer controls
    # Chromium answered the requests our codec built, and nothing went unanswered
    assert checks["answered"] >= 2 and checks.get("unanswered", 0) == 0
    assert end["requestsReceived"] - start["requestsReceived"] >= checks["answered"]
    # our codec answered Chromium's checks, and Chromium took the answers (it counts
    # only responses that pass its integrity and fingerprint checks)
    assert checks["answered_here"] >= 2
    pinged = end["requestsSent"] - start["requestsSent"]
    answered = end["responsesReceived"] - start["responsesReceived"]
    assert pinged >= 2 and answered >= pinged - 1  # one may still be in flight
    assert end["responsesSent"] - start["responsesSent"] >= checks["answered"]
    assert end["state"] == "succeeded" and not report["closed"]
    # nothing of it was dropped or refused on our side
    assert report["dropped"] == {}
