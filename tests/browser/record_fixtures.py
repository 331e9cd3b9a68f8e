"""Refresh the Chromium fixtures in this folder from a live run (needs root + chromium).

    .venv/bin/python -m tests.browser.record_fixtures

Writes ``chromium_offer.sdp`` (Chromium offering to an aiortc echo peer),
``chromium_answer.sdp`` (Chromium answering aiortc's offer) and
``chromium_client_hello.json`` (the UDP datagrams carrying Chromium's first DTLS
ClientHello, sent when it answers with ``a=setup:active``, plus the decoded facts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.browser.aiortc_peer import AiortcPeer
from tests.browser.netns import run_in_loopback_netns
from tests.browser.session import Mode, browser_session, media_flowing

HERE = Path(__file__).resolve().parent


async def _run(mode: Mode) -> tuple[str, list[dict[str, Any]], str]:
    peer = AiortcPeer(echo=mode == "offer")
    try:
        async with browser_session(peer, mode=mode, log_name=f"fixtures-{mode}") as session:
            await session.wait_stats(media_flowing, timeout=20)
            hellos = session.sniffer.client_hellos() if session.sniffer else []
            version = (await session.browser.version())["product"]
            return session.browser_sdp, hellos, version
    finally:
        await peer.close()


async def _record() -> dict[str, Any]:
    offer, _, version = await _run("offer")
    answer, hellos, _ = await _run("answer")
    browser_hellos = [h for h in hellos if h["src"].startswith("127.0.0.1:")]
    if not browser_hellos:
        raise RuntimeError(f"no ClientHello from Chromium captured: {hellos}")
    (HERE / "chromium_offer.sdp").write_bytes(offer.encode())
    (HERE / "chromium_answer.sdp").write_bytes(answer.encode())
    hello = dict(browser_hellos[0])
    fixture = {
        "description": "Chromium's first DTLS ClientHello (Chromium answers, DTLS client), "
                       "as the UDP payloads that carried it; 'decoded' is what "
                       "tests.browser.capture makes of them.",
        "browser": version,
        "datagrams": hello.pop("raw_datagrams"),
        "decoded": {k: v for k, v in hello.items() if k not in ("src", "dst")},
    }
    (HERE / "chromium_client_hello.json").write_text(json.dumps(fixture, indent=1) + "\n")
    return fixture


def main() -> None:
    fixture = run_in_loopback_netns(_record, timeout=90)
    print(json.dumps(fixture["decoded"], indent=1))


if __name__ == "__main__":
    main()
