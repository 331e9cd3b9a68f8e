"""Headless Chromium driven over the DevTools protocol on ``--remote-debugging-pipe``.

Stdlib only: Chromium reads NUL-terminated JSON commands on its fd 3 and writes replies
and events on its fd 4, so there is no port to pick, no websocket and no extra dependency.
The browser runs in its own process group and is always killed on exit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Flags for a root, headless, offline Chromium with fake media devices.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
    "--window-size=800,600",
)


class CdpError(RuntimeError):
    """A DevTools command failed, timed out, or the browser went away."""


def find_chromium() -> str:
    """Path of the Chromium binary; fails loudly with the install hint."""
    # Debian's /usr/bin/chromium is a shell wrapper; the real binary keeps the pid ours.
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise CdpError("Chromium not found: apt-get update && apt-get install -y chromium")


def _high_fd(fd: int) -> int:
    """Duplicate ``fd`` above the low numbers so the fd-3/fd-4 remap cannot collide."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)
    os.close(fd)
    return new


class _PipeReader(asyncio.Protocol):
    def __init__(self, browser: Chromium) -> None:
        self._browser = browser
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\0")
            if end < 0:
                return
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._browser._dispatch(json.loads(raw))

    def connection_lost(self, exc: Exception | None) -> None:
        self._browser._lost(exc)


@dataclass
class Page:
    """One tab, attached with a flat session."""

    browser: Chromium
    target_id: str
    session_id: str
    console: list[str] = field(default_factory=list)

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   timeout: float = 10.0) -> dict[str, Any]:
        return await self.browser.send(method, params, session_id=self.session_id,
                                       timeout=timeout)

    async def navigate(self, url: str, timeout: float = 10.0) -> None:
        """Load ``url`` and wait for its load event."""
        loaded = self.browser.wait_event("Page.loadEventFired", self.session_id)
        reply = await self.send("Page.navigate", {"url": url}, timeout=timeout)
        if "errorText" in reply:
            raise CdpError(f"navigation to {url} failed: {reply['errorText']}")
        await asyncio.wait_for(loaded, timeout)

    async def evaluate(self, expression: str, timeout: float = 10.0) -> Any:
        """Evaluate JS (promises awaited) and return its JSON value; JS errors raise."""
        reply = await self.send("Runtime.evaluate", {
            "expression": expression,
            "awaitPromise": True,
            "returnByValue": True,
            "timeout": int(timeout * 1000),
        }, timeout=timeout + 1.0)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"JS error in {expression!r}: {text}")
        return reply["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport to ``path``."""
        reply = await self.send("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(reply["data"]))
        return path


class Chromium:
    """A headless Chromium process and its DevTools pipe.

    Use as ``async with Chromium() as browser: page = await browser.new_page(url)``.
    ``log_path`` receives the browser's stdout/stderr (useful when WebRTC misbehaves).
    """

    def __init__(self, *, extra_flags: tuple[str, ...] = (), log_path: Path | None = None,
                 binary: str | None = None) -> None:
        self.binary = binary or find_chromium()
        self.extra_flags = extra_flags
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self._pages: dict[str, Page] = {}
        self._reader: asyncio.ReadTransport | None = None
        self._writer: asyncio.WriteTransport | None = None
        self._closed_error: CdpError | None = None

    async def __aenter__(self) -> Chromium:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Launch the browser and open the DevTools pipe (cleans up if that fails)."""
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, to_browser_w = (_high_fd(fd) for fd in os.pipe())
        from_browser_r, from_browser_w = (_high_fd(fd) for fd in os.pipe())
        argv = [self.binary, *CHROMIUM_FLAGS, *self.extra_flags,
                f"--user-data-dir={self._profile.name}", "--remote-debugging-pipe",
                "about:blank"]
        # bash (dash cannot name fds above 9) wires our pipe ends to fds 3/4, which
        # --remote-debugging-pipe expects, then execs: the Popen pid is the browser and no
        # preexec_fn has to run in a threaded process.
        script = f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- ' \
                 f'{from_browser_w}>&-'
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                ["/bin/bash", "-c", script, "chromium-launcher", *argv],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(to_browser_r, from_browser_w), start_new_session=True,
            )
        finally:
            os.close(to_browser_r)
            os.close(from_browser_w)
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        reader, _ = await loop.connect_read_pipe(
            lambda: _PipeReader(self), os.fdopen(from_browser_r, "rb", buffering=0))
        writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(to_browser_w, "wb", buffering=0))
        self._reader, self._writer = reader, writer
        await self.send("Target.setDiscoverTargets", {"discover": False}, timeout=15.0)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(CdpError(str(message["error"])))
                else:
                    future.set_result(message.get("result", {}))
            return
        method = message.get("method", "")
        session = message.get("sessionId")
        params = message.get("params", {})
        page = self._pages.get(session or "")
        if page is not None:
            if method == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", "")))
                                for a in params.get("args", []))
                page.console.append(f"console.{params.get('type')}: {args}")
            elif method == "Runtime.exceptionThrown":
                page.console.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                # failed loads and network errors (only after ``Log.enable``)
                entry = params["entry"]
                page.console.append(f"log.error: {entry.get('text')} {entry.get('url', '')}")
        for waiter in list(self._waiters):
            name, want_session, future = waiter
            if name == method and want_session in (None, session) and not future.done():
                future.set_result(params)
                self._waiters.remove(waiter)

    def _lost(self, exc: Exception | None) -> None:
        self._closed_error = CdpError(f"browser pipe closed ({exc})")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._closed_error)
        self._pending.clear()

    def wait_event(self, method: str, session_id: str | None = None
                   ) -> asyncio.Future[dict[str, Any]]:
        """A future for the next ``method`` event (register it before triggering)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, session_id, future))
        return future

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   session_id: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send one DevTools command and wait for its result."""
        if self._closed_error is not None:
            raise self._closed_error
        if self._writer is None:
            raise CdpError("browser not started")
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self._writer.write(json.dumps(message).encode() + b"\0")
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(msg_id, None)
            raise CdpError(f"{method} timed out after {timeout}s") from None

    async def version(self) -> dict[str, Any]:
        return await self.send("Browser.getVersion")

    async def new_page(self, url: str | None = None, timeout: float = 10.0) -> Page:
        """Open a tab, attach to it, enable Page/Runtime events, optionally navigate."""
        created = await self.send("Target.createTarget", {"url": "about:blank"})
        target_id = created["targetId"]
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target_id, "flatten": True})
        page = Page(self, target_id, attached["sessionId"])
        self._pages[page.session_id] = page
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        if url is not None:
            await page.navigate(url, timeout=timeout)
        return page

    async def close(self) -> None:
        """Close politely, then kill the whole process group; always reaps."""
        if self._writer is not None and self._closed_error is None:
            with contextlib.suppress(CdpError, OSError):
                await self.send("Browser.close", timeout=3.0)
        process = self.process
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=3.0)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5.0)
        for transport in (self._writer, self._reader):
            if transport is not None:
                transport.close()
        self._writer = self._reader = None
        # Let the transports' close callbacks run so their pipes are really closed.
        await asyncio.sleep(0)
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None
