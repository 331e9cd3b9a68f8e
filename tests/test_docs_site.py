"""The documentation site: it builds with warnings as errors, and renders offline.

The build runs here (the same command as ``make docs``, into a temporary directory, so
the test always sees the current sources). Then headless Chromium, inside a
loopback-only network namespace where any CDN or font request would fail, opens the
home page and the DTLS guide page from a loopback HTTP server and checks that each
shows its title, logs no console error or failed request, and that the guide's
Mermaid handshake diagram became an SVG sequence diagram (mermaid.js is vendored into
the site by the build). Screenshots go to ``artifacts/docs/``.

Needs the docs extra and ``npm ci`` in docs/ (``make test`` installs both), root and
Debian's ``chromium``.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.browser.cdp import Chromium, Page
from tests.browser.netns import run_in_loopback_netns

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "docs"

#: JS: what the test reads from a page once its scripts have run
_PAGE_STATE = """(async () => {
  const deadline = Date.now() + 15000;
  const pending = () => document.querySelectorAll('pre.mermaid:not([data-processed])').length;
  while (pending() > 0 && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 100));
  }
  const diagrams = [...document.querySelectorAll('.mermaid')].map(el => {
    const svg = el.querySelector('svg');
    return {
      svg: svg !== null,
      kind: svg ? svg.getAttribute('aria-roledescription') : null,
      text: svg ? svg.textContent : el.textContent,
      height: svg ? svg.getBoundingClientRect().height : 0,
    };
  });
  return {
    title: document.title,
    h1: (document.querySelector('h1') || {}).textContent || '',
    bodyText: document.body.innerText.length,
    diagrams,
    resources: performance.getEntriesByType('resource').map(r => r.name),
  };
})()"""


def _build_site(out: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, f"docs build failed:\n{result.stdout}\n{result.stderr}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


async def _open(browser: Chromium, url: str, shot: Path) -> tuple[dict[str, Any], list[str]]:
    page: Page = await browser.new_page()
    await page.send("Log.enable")
    await page.navigate(url, timeout=20.0)
    state = await page.evaluate(_PAGE_STATE, timeout=20.0)
    await page.screenshot(shot)
    # console.log/info/debug lines are chatter (sphinxcontrib-mermaid announces itself);
    # errors, warnings, uncaught exceptions and failed loads are what the test refuses
    problems = [line for line in page.console if not line.startswith(_CHATTER)]
    return state, problems


_CHATTER = ("console.log:", "console.info:", "console.debug:")


@pytest.mark.slow
def test_docs_build_and_render_in_chromium(tmp_path: Path) -> None:
    site = tmp_path / "html"
    _build_site(site)
    assert (site / "_static" / "mermaid" / "mermaid.esm.min.mjs").is_file()

    async def main() -> dict[str, tuple[dict[str, Any], list[str]]]:
        handler = functools.partial(_QuietHandler, directory=str(site))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            async with Chromium(extra_flags=("--window-size=1280,1400",)) as browser:
                return {
                    "home": await _open(browser, f"{base}/index.html",
                                        ARTIFACTS / "home.png"),
                    "guide": await _open(browser, f"{base}/guide/dtls.html",
                                         ARTIFACTS / "guide-dtls.png"),
                }
        finally:
            server.shutdown()
            server.server_close()
            await asyncio.sleep(0)

    pages = run_in_loopback_netns(main, timeout=90.0)

    home, home_console = pages["home"]
    assert home["title"].startswith("webrtc_secure"), home["title"]
    assert "webrtc_secure" in home["h1"]
    assert home["bodyText"] > 500
    assert home_console == []

    guide, guide_console = pages["guide"]
    assert "DTLS" in guide["title"], guide["title"]
    assert guide_console == [], guide_console
    assert guide["diagrams"], "the DTLS guide shows no diagram"
    for diagram in guide["diagrams"]:
        assert diagram["svg"], f"Mermaid text was not rendered: {diagram['text'][:200]}"
        assert diagram["kind"] == "sequence"
        assert "Syntax error" not in diagram["text"]
        assert diagram["height"] > 200
    handshake = guide["diagrams"][0]["text"]
    for message in ("HelloVerifyRequest", "ServerHelloDone", "Finished (encrypted)"):
        assert message in handshake
    # everything the pages loaded came from the site itself
    for state in (home, guide):
        outside = [r for r in state["resources"] if not r.startswith("http://127.0.0.1:")]
        assert outside == []
    assert any(r.endswith("/_static/mermaid/mermaid.esm.min.mjs") for r in guide["resources"])
