"""Keep aiortc on loopback in the benchmarks that compare against it.

aioice never gathers 127.0.0.1 (it skips loopback by design), so aiortc, which gathers
through aioice, would find no candidate on a loopback-only benchmark. During aiortc's
runs only, :func:`aioice_loopback` makes aioice's host-address lookup answer
127.0.0.1. Our own peers bind it explicitly through ``host_addresses``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aioice.ice

LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def aioice_loopback() -> Iterator[None]:
    """aioice gathers exactly 127.0.0.1 (no IPv6) inside the block."""
    original = aioice.ice.get_host_addresses

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [LOOPBACK] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
