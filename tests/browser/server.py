"""The page server of the browser harness, which lives with the example it serves.

:mod:`examples.page_server` holds the code (``examples/browser_echo.py`` runs it by
hand, so it must not import from ``tests/``); this module keeps the harness's import
path and public names.
"""

from __future__ import annotations

from examples.page_server import (
    MAX_BODY,
    PAGE_DIR,
    REQUEST_TIMEOUT,
    HttpError,
    PageServer,
    SignalingHandler,
)

__all__ = [
    "MAX_BODY",
    "PAGE_DIR",
    "REQUEST_TIMEOUT",
    "HttpError",
    "PageServer",
    "SignalingHandler",
]
