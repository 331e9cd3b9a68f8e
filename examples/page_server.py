"""A tiny stdlib asyncio HTTP server: the browser echo page plus JSON signaling.

Routes (all JSON bodies are ``{"type": ..., "sdp": ...}`` like RTCSessionDescription):

* ``GET /`` and ``GET /<file>``: files of the page directory (``examples/browser``).
* ``POST /offer``: the page offers; the handler answers (``SignalingHandler.answer``).
* ``POST /server-offer``: the handler offers (``SignalingHandler.offer``).
* ``POST /server-answer``: the page answers that offer (``SignalingHandler.accept_answer``).

The handler is any object with those three coroutines: ``examples/browser_echo.py``
puts a SecurePeer behind it, the interop tests (through ``tests.browser.server``, which
re-exports this module) put aiortc or SecurePeer behind it. Requests and responses are
small; every connection is closed after one response. Loopback use only: there is no
authentication, and nothing here is meant to face a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).resolve().parent / "browser"
MAX_BODY = 256 * 1024
REQUEST_TIMEOUT = 10.0


class SignalingHandler(Protocol):
    """The Python-side peer as the page server sees it: SDP strings in and out."""

    async def answer(self, offer_sdp: str) -> str:
        """Apply the page's offer and return the (fully gathered) answer SDP."""

    async def offer(self) -> str:
        """Create an offer for the page to answer (fully gathered)."""

    async def accept_answer(self, answer_sdp: str) -> None:
        """Apply the page's answer to our earlier offer."""


class HttpError(Exception):
    """Maps to an HTTP error response."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


@dataclass
class PageServer:
    """Serves the page directory and routes signaling to ``handler``.

    ``offers`` / ``answers`` keep every SDP seen from the page, for assertions and fixtures.
    """

    handler: SignalingHandler
    host: str = "127.0.0.1"
    port: int = 0
    page_dir: Path = PAGE_DIR
    offers: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> PageServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("page server on %s", self.url)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> PageServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, ctype, body = await asyncio.wait_for(self._handle(reader), REQUEST_TIMEOUT)
        except HttpError as exc:
            status, ctype, body = exc.status, "text/plain", exc.reason.encode()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return
        except Exception as exc:
            logger.exception("signaling handler failed")
            status, ctype, body = 500, "text/plain", f"{type(exc).__name__}: {exc}".encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        parts = request_line.split()
        if len(parts) != 3:
            raise HttpError(400, "bad request line")
        method, target, _version = parts
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or "0")
        if length < 0 or length > MAX_BODY:
            raise HttpError(413, "body too large")
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        self.requests.append(f"{method} {path}")
        if method == "GET":
            return self._static(path)
        if method != "POST":
            raise HttpError(405, "method not allowed")
        if path == "/offer":
            offer = _sdp_of(body, "offer")
            self.offers.append(offer)
            answer = await self.handler.answer(offer)
            return _json({"type": "answer", "sdp": answer})
        if path == "/server-offer":
            return _json({"type": "offer", "sdp": await self.handler.offer()})
        if path == "/server-answer":
            answer = _sdp_of(body, "answer")
            self.answers.append(answer)
            await self.handler.accept_answer(answer)
            return 204, "text/plain", b""
        raise HttpError(404, "no such endpoint")

    def _static(self, path: str) -> tuple[int, str, bytes]:
        name = "echo.html" if path in ("/", "") else path.lstrip("/")
        # Only plain file names inside the page directory: no traversal, no subfolders.
        if "/" in name or "\\" in name or name.startswith("."):
            raise HttpError(404, "not found")
        file = self.page_dir / name
        if not file.is_file():
            raise HttpError(404, "not found")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        return 200, ctype, file.read_bytes()


def _sdp_of(body: bytes, want_type: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise HttpError(400, f"body is not JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("type") != want_type
        or not isinstance(data.get("sdp"), str)
    ):
        raise HttpError(400, f"expected {{type: {want_type}, sdp: string}}")
    sdp: str = data["sdp"]
    return sdp


def _json(data: dict[str, Any]) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(data).encode()
