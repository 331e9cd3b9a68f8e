"""The trace of a handshake with headless Chromium against the wire (issue 15).

A raw ``AF_PACKET`` capture on ``lo`` inside the test's own loopback-only network
namespace (tests/browser/capture.py's sniffer, extended to keep every DTLS datagram)
sees what really crossed the wire. Every datagram our ``SecurePeer(trace=True)`` lists
must be on the wire byte for byte (same digest), in the same order per direction, and
every unprotected DTLS datagram on the wire (hellos, HelloRetryRequest) must be in our
trace. The negotiated parameters the trace notes must be those Chromium's getStats()
reports.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest

import examples.browser_echo as browser_echo
from tests.browser.capture import HandshakeSniffer
from tests.browser.netns import run_in_loopback_netns
from tests.browser.session import browser_session
from webrtc_secure import SecurePeer

pytestmark = pytest.mark.interop


@dataclass
class DtlsCapture(HandshakeSniffer):
    """The hello sniffer, also keeping every DTLS datagram (RFC 7983: 20..63)."""

    wire: list[tuple[tuple[Any, ...], bytes]] = field(default_factory=list)

    def feed(self, payload: bytes, flow: tuple[Any, ...] = ("?", 0, "?", 0)) -> None:
        if payload and 20 <= payload[0] <= 63:
            self.wire.append((flow, payload))
        super().feed(payload, flow)


def _digest(datagram: bytes) -> str:
    return hashlib.blake2s(datagram, digest_size=8).hexdigest()


def _tls_suite_name(ours: str) -> str:
    return ours if ours.startswith("TLS_") else f"TLS_{ours.replace('_AES', '_WITH_AES', 1)}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["offer", "answer"], ids=["chromium-offers", "securepeer-offers"])
def test_chromium_handshake_trace_matches_the_wire(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser_echo, "SecurePeer", functools.partial(SecurePeer, trace=True))

    async def scenario() -> dict[str, Any]:
        capture = DtlsCapture().start()
        echo = browser_echo.SecurePeerEcho()
        try:
            async with browser_session(echo, mode=mode, sniff=False) as session:  # type: ignore[arg-type]
                await echo.connected(timeout=15)
                page = await session.wait_stats(
                    lambda st: st.get("transport", {}).get("dtlsState") == "connected",
                    timeout=15,
                )
                await asyncio.sleep(0.5)  # the last ACKs of DTLS 1.3
                trace = echo.peer.trace()
                assert trace is not None
                return {
                    "transport": page["transport"],
                    "entries": [
                        (e.direction, e.layer, e.what, e.details, e.digest) for e in trace.entries
                    ],
                    "wire": [(list(flow), payload.hex()) for flow, payload in capture.wire],
                    "mermaid": trace.to_mermaid(),
                }
        finally:
            capture.stop()
            await echo.close()

    report = run_in_loopback_netns(scenario, timeout=50)
    print(f"\n[chromium, page mode {mode}]\n{report['mermaid']}")
    entries = report["entries"]
    wire = [(tuple(flow), bytes.fromhex(payload)) for flow, payload in report["wire"]]
    # (a record the connected DTLS 1.3 engine opened later, e.g. an ACK, is traced as
    # that record alone: it has no datagram digest)
    dtls = [e for e in entries if e[1] == "dtls" and e[0] in ("send", "recv") and e[4]]
    assert dtls, "nothing traced"
    # which flow is ours: the one our first traced datagram went out on
    first_sent = next(e[4] for e in dtls if e[0] == "send")
    ours = next(flow for flow, payload in wire if _digest(payload) == first_sent)
    ours_addr = ours[:2]
    on_wire = {
        "send": [_digest(p) for flow, p in wire if flow[:2] == ours_addr],
        "recv": [_digest(p) for flow, p in wire if flow[2:4] == ours_addr],
    }
    for direction in ("send", "recv"):
        traced = [e[4] for e in dtls if e[0] == direction]
        # every datagram the trace lists crossed the wire, byte for byte, in this order
        positions = [on_wire[direction].index(d) for d in traced]
        assert positions == sorted(positions), direction
    # every unprotected DTLS datagram on the wire (epoch 0: hellos, HelloRetryRequest,
    # DTLS 1.2 flights) is in our trace
    traced_all = {e[4] for e in dtls}
    # (only our flow: Chromium's DNS queries in the namespace can start with 21 too)
    ours_wire = [p for flow, p in wire if ours_addr in (flow[:2], flow[2:4])]
    plaintext = [p for p in ours_wire if p[0] in (21, 22) and p[3:5] == b"\x00\x00"]
    assert plaintext and all(_digest(p) in traced_all for p in plaintext)
    # the negotiated parameters in the trace are those Chromium reports
    [complete] = [e[3] for e in entries if e[2] == "handshake complete"]
    transport = report["transport"]
    version = {"FEFC": "DTLS 1.3", "FEFD": "DTLS 1.2"}[transport["tlsVersion"]]
    assert complete.startswith(version + ", ")
    suite = complete.split(", ")[1]
    assert transport["dtlsCipher"] == _tls_suite_name(suite)
    assert f"SRTP {transport['srtpCipher'].removeprefix('SRTP_')}" in complete
    [check] = [e[3] for e in entries if e[2] == "fingerprint check"]
    assert check == "sha-256 fingerprint matched"
    # ICE summary, DCEP of the page's "chat" channel, and the SCTP start (SNAP or INIT)
    assert any(e[1] == "ice" and "nominated" in e[3] for e in entries)
    assert any(e[1] == "dcep" and e[2] == "DATA_CHANNEL_OPEN" for e in entries)
