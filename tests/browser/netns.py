"""Run a coroutine inside a fresh network namespace that has only loopback.

Linux network namespaces belong to a thread, not to a process: ``unshare(CLONE_NEWNET)``
called from a worker thread moves only that thread. Every socket the thread opens, every
thread it starts (asyncio's default executor) and every process it forks (Chromium, ``ip``)
lives in the new namespace, while the pytest process around it keeps the host's. So one
test can run an HTTP page server, a Python WebRTC peer and a headless browser that see
nothing but ``lo``, and still assert in-process. The namespace disappears with the last
thread or process in it.

Needs root (CAP_SYS_ADMIN) and ``ip`` from iproute2.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLONE_NEWNET = 0x40000000

#: aioice never offers 127.0.0.1 as a host candidate (it filters that literal address), so
#: an aioice-based peer in a loopback-only namespace needs another loopback address.
AIOICE_LOOPBACK = "127.0.0.2"


class NamespaceError(RuntimeError):
    """The loopback-only network namespace could not be set up."""


def _run_ip(*args: str) -> None:
    ip = shutil.which("ip")
    if ip is None:
        raise NamespaceError("`ip` not found: apt-get install -y iproute2")
    done = subprocess.run([ip, *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise NamespaceError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def enter_loopback_namespace() -> str:
    """Move the calling thread into a new network namespace with only ``lo`` up.

    The namespace gets ``127.0.0.1/8``, ``::1``, the extra address :data:`AIOICE_LOOPBACK`
    and a default route over ``lo`` (Chromium picks its host candidate address from the
    default route). Returns the namespace id (``net:[inode]``).
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)} (need root)")
    _run_ip("link", "set", "lo", "up")
    _run_ip("addr", "add", f"{AIOICE_LOOPBACK}/8", "dev", "lo")
    _run_ip("route", "add", "default", "dev", "lo", "src", "127.0.0.1")
    return current_namespace()


def current_namespace() -> str:
    """The network namespace id of the calling thread, e.g. ``net:[4026532177]``."""
    return os.readlink(f"/proc/self/task/{threading.get_native_id()}/ns/net")


def pids_in_namespace(ns_id: str) -> list[int]:
    """Processes (other than ourselves) whose network namespace is ``ns_id``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.readlink(entry / "ns" / "net") == ns_id:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_namespace_processes(ns_id: str) -> list[int]:
    """SIGKILL every process left in our private namespace; returns their pids.

    Only processes we started can be in a namespace we created, so this is a precise
    last line of defence against stray browser helpers, not a broad kill.
    """
    pids = pids_in_namespace(ns_id)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def run_in_loopback_netns(
    main: Callable[[], Awaitable[T]], *, timeout: float = 60.0
) -> T:
    """Run ``asyncio.run(main())`` in a worker thread inside a loopback-only namespace.

    Blocks the caller (use it from a synchronous test). The coroutine's result is returned
    and its exception re-raised here. ``timeout`` bounds the whole run: past it the
    coroutine is cancelled, and if the thread still does not finish, :class:`TimeoutError`
    is raised. Any process still in the namespace afterwards is killed.
    """
    result: list[T] = []
    error: list[BaseException] = []
    ns_holder: list[str] = []
    loop_holder: list[asyncio.AbstractEventLoop] = []
    task_holder: list[asyncio.Task[T]] = []

    async def guarded() -> T:
        loop_holder.append(asyncio.get_running_loop())
        task = asyncio.ensure_future(main())
        task_holder.append(task)  # type: ignore[arg-type]
        return await asyncio.wait_for(task, timeout)

    def worker() -> None:
        try:
            ns_holder.append(enter_loopback_namespace())
            result.append(asyncio.run(guarded()))
        except BaseException as exc:
            error.append(exc)
        finally:
            if ns_holder:
                stray = kill_namespace_processes(ns_holder[0])
                if stray:
                    logger.warning("killed stray processes in test namespace: %s", stray)

    thread = threading.Thread(target=worker, name="loopback-netns", daemon=True)
    thread.start()
    thread.join(timeout + 15.0)
    if thread.is_alive():
        if ns_holder:
            kill_namespace_processes(ns_holder[0])
        if loop_holder and task_holder:
            loop_holder[0].call_soon_threadsafe(task_holder[0].cancel)
        thread.join(10.0)
        raise TimeoutError(f"loopback namespace run did not finish within {timeout + 15.0}s")
    if error:
        raise error[0]
    return result[0]
