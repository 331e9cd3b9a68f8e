"""One browser session: page server + headless Chromium + packet sniffer, torn down safely.

Must run inside :func:`tests.browser.netns.run_in_loopback_netns` (the browser and the
Python peer then share a loopback-only network)::

    async with browser_session(peer, mode="offer") as session:
        stats = await session.wait_stats(media_flowing, timeout=20)
        await session.screenshot(ARTIFACTS / "offer.png")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.browser.capture import HandshakeSniffer
from tests.browser.cdp import Chromium, Page
from tests.browser.server import PageServer, SignalingHandler

logger = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"

Mode = Literal["offer", "answer"]


def media_flowing(stats: dict[str, Any], min_frames: int = 1) -> bool:
    """DTLS connected, remote video decoded and remote audio packets received."""
    transport = stats.get("transport") or {}
    video = (stats.get("inbound") or {}).get("video") or {}
    audio = (stats.get("inbound") or {}).get("audio") or {}
    return (transport.get("dtlsState") == "connected"
            and (video.get("framesDecoded") or 0) >= min_frames
            and (audio.get("packetsReceived") or 0) > 0)


def video_playing(stats: dict[str, Any], min_frames: int = 10) -> bool:
    """:func:`media_flowing` with enough frames that the <video> element shows a picture."""
    video = stats.get("video") or {}
    return (media_flowing(stats, min_frames) and (video.get("width") or 0) > 0
            and (video.get("currentTime") or 0) > 0)


class BrowserSessionError(AssertionError):
    """The page never reached the expected state; the message carries the diagnostics."""


@dataclass
class BrowserSession:
    """Live handles plus what was observed; ``timings`` are seconds since the start."""

    mode: Mode
    server: PageServer
    browser: Chromium
    page: Page
    sniffer: HandshakeSniffer | None
    started: float
    start_reply: dict[str, Any] = field(default_factory=dict)
    last_stats: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.timings[name] = round(time.monotonic() - self.started, 3)

    @property
    def browser_sdp(self) -> str:
        """The SDP Chromium produced (its offer in ``offer`` mode, else its answer)."""
        return str(self.start_reply.get("localSdp", ""))

    async def stats(self) -> dict[str, Any]:
        value = await self.page.evaluate("stats()")
        self.last_stats = value if isinstance(value, dict) else {}
        return self.last_stats

    async def wait_stats(self, predicate: Callable[[dict[str, Any]], bool],
                         timeout: float = 20.0, interval: float = 0.2) -> dict[str, Any]:
        """Poll ``window.stats()`` until ``predicate`` holds; fail with diagnostics."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats()
            if predicate(stats):
                return stats
            if stats.get("state") == "failed" or time.monotonic() > deadline:
                raise BrowserSessionError(await self.diagnostics(
                    f"page did not satisfy {getattr(predicate, '__name__', predicate)}"))
            await asyncio.sleep(interval)

    async def screenshot(self, path: Path) -> Path:
        return await self.page.screenshot(path)

    async def diagnostics(self, headline: str) -> str:
        page_log: Any = None
        with contextlib.suppress(Exception):
            page_log = await self.page.evaluate("harness.log", timeout=3.0)
        return "\n".join([
            headline,
            f"last stats: {json.dumps(self.last_stats, indent=1)}",
            f"page log: {page_log}",
            f"console: {self.page.console[-30:]}",
            f"server requests: {self.server.requests}",
            f"chromium log: {self.browser.log_path}",
        ])


@contextlib.asynccontextmanager
async def browser_session(handler: SignalingHandler, *, mode: Mode, sniff: bool = True,
                          start_timeout: float = 20.0,
                          log_name: str | None = None, page_dir: Path | None = None,
                          page_name: str = "",
                          extra_flags: tuple[str, ...] = ()) -> AsyncIterator[BrowserSession]:
    """Serve the page for ``handler``, open it in Chromium and run ``start(mode)``.

    ``page_dir``/``page_name`` serve another page with the same ``start(mode)`` contract (the
    data channel page in ``tests/browser/datachannel``); ``extra_flags`` go to Chromium
    (e.g. ``--force-fieldtrials=...``).

    Yields once signaling is done (Chromium has both descriptions); media may still be
    connecting. Everything (browser process group, server, sniffer) is closed on exit.
    """
    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sniffer = HandshakeSniffer().start() if sniff else None
    try:
        server_args: dict[str, Any] = {} if page_dir is None else {"page_dir": page_dir}
        async with PageServer(handler, **server_args) as server, Chromium(
                extra_flags=extra_flags,
                log_path=ARTIFACTS / f"chromium-{log_name or mode}.log") as browser:
            page = await browser.new_page()
            session = BrowserSession(mode, server, browser, page, sniffer, started)
            session.mark("browser_ready")
            await page.navigate(f"{server.url}/{page_name}?mode={mode}")
            session.mark("page_loaded")
            try:
                reply = await page.evaluate(f"start({json.dumps(mode)})",
                                            timeout=start_timeout)
            except Exception as exc:
                raise BrowserSessionError(
                    await session.diagnostics(f"start({mode}) failed: {exc}")) from exc
            session.start_reply = reply if isinstance(reply, dict) else {}
            session.mark("signaled")
            yield session
    finally:
        if sniffer is not None:
            sniffer.stop()
