"""ICE (aioice) behind an ``asyncio.DatagramTransport`` face.

SecurePeer's protocol stack only knows ``DatagramProtocol``/``DatagramTransport``, so
the same SecureProtocol runs over a plain UDP socket or over a nominated ICE pair.

:class:`IceConnection` is an aioice ``Connection`` whose ``connect()`` returns as soon
as the check list completes (every component has a nominated pair), instead of after
the 20 ms pacing sleep (RFC 8445's Ta) that was pending when the pair got nominated.
aioice's own ``connect()`` keeps running in a task that this class supervises: it
still paces checks while the check list runs, cancels the remaining checks and starts
consent freshness (RFC 7675) at its end, exactly as it would for a direct caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aioice
import aioice.ice

from webrtc_secure.errors import IceError

logger = logging.getLogger(__name__)

COMPONENT = 1


class _CheckListStateQueue(asyncio.Queue[int]):
    """aioice's queue of check list outcomes, which also tells us at once.

    aioice reports completion and failure (``ICE_COMPLETED``/``ICE_FAILED``) only by
    ``put_nowait`` on this queue, which its ``connect()`` reads after its pacing loop;
    ``close()`` puts ``ICE_FAILED`` on it too. ``Queue.put`` ends in ``put_nowait``.
    """

    def __init__(self, on_put: Callable[[int], None]) -> None:
        super().__init__()
        self._on_put = on_put

    def put_nowait(self, item: int) -> None:
        super().put_nowait(item)
        self._on_put(item)


class IceConnection(aioice.Connection):
    """An aioice Connection whose ``connect()`` proceeds once a pair is nominated.

    It relies on one aioice internal, the ``_check_list_state`` queue. Should aioice
    stop using it, ``connect()`` still works, only as late as aioice's own (and
    ``tests/test_ice.py`` fails). ``close()`` cancels the supervised checks task before
    aioice closes the sockets: otherwise the task, still in its pacing sleep, would
    start consent freshness on a closed connection, a task nobody ever stops.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the queue is still empty here: replacing it loses nothing
        self._check_list_state = _CheckListStateQueue(self._check_list_settled)
        self._outcome: int | None = None
        self._outcome_waiter: asyncio.Future[None] | None = None
        #: aioice's connect(), running from our connect() until its own end
        self.checks_task: asyncio.Task[None] | None = None

    @property
    def nominated_pair(self) -> aioice.ice.CandidatePair | None:
        """The nominated pair of our one component, or None."""
        return self._nominated.get(COMPONENT)

    def _check_list_settled(self, outcome: int) -> None:
        if self._outcome is None:
            self._outcome = outcome
        self._wake()

    def _wake(self) -> None:
        waiter = self._outcome_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def connect(self) -> None:
        """Run the checks; return once every component has a nominated pair.

        Raises ConnectionError when the check list fails or the connection closes
        first, like aioice's ``connect()``. Cancelling this call cancels the checks.
        """
        if self.checks_task is not None:
            raise ConnectionError("connect() was already called")
        loop = asyncio.get_running_loop()
        # one future, woken by the outcome or by the end of the checks task, awaited
        # directly: we resume in the loop iteration after the nomination
        waiter = self._outcome_waiter = loop.create_future()
        if self._outcome is not None:  # closed before connect()
            waiter.set_result(None)
        task = self.checks_task = loop.create_task(super().connect())
        task.add_done_callback(self._checks_done)
        try:
            await waiter
        except asyncio.CancelledError:
            task.cancel()
            raise
        if self._outcome == aioice.ice.ICE_COMPLETED and self.nominated_pair is not None:
            logger.debug("ICE nominated %s; the checks task ends on its own", self.nominated_pair)
            return
        if not task.done():
            # failed or closed: aioice's connect() raises ConnectionError after its
            # current pacing sleep, and _checks_done retrieves it then
            raise ConnectionError("ICE negotiation failed")
        if task.cancelled():
            raise ConnectionError("ICE connection closed during the checks")
        error = task.exception()
        if error is not None:
            raise error
        # aioice returned without reporting through the queue: trust its own result

    def _checks_done(self, task: asyncio.Task[None]) -> None:
        """Retrieve the checks task's outcome, so that none is ever left unretrieved,
        and wake connect() if the task ended before reporting an outcome."""
        self._wake()
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            logger.debug("ICE checks finished; consent freshness started")
        elif isinstance(error, ConnectionError):
            logger.debug("ICE checks ended: %s", error)
        else:  # a bug in aioice or here: never silent
            logger.error("ICE checks task failed", exc_info=error)

    async def close(self) -> None:
        """Stop the checks task (if still running), then close as aioice does."""
        task = self.checks_task
        if task is not None and not task.done():
            task.cancel()
            # asyncio.wait does not raise the task's CancelledError, only ours
            await asyncio.wait((task,))
        await super().close()


def create_ice_connection(*, controlling: bool, ice_servers: Sequence[str] = ()) -> IceConnection:
    """An aioice Connection; ``ice_servers`` are ``stun:host:port`` or ``turn:host:port``
    URLs (TURN credentials as ``turn:user:password@host:port``)."""
    stun: tuple[str, int] | None = None
    turn: tuple[str, int] | None = None
    turn_user = turn_password = None
    for url in ice_servers:
        scheme, _, rest = url.partition(":")
        credentials, _, hostport = rest.rpartition("@")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise IceError(f"ICE server URL must be scheme:host:port, not {url!r}")
        if scheme == "stun":
            stun = (host, int(port))
        elif scheme == "turn":
            turn = (host, int(port))
            turn_user, _, turn_password = credentials.partition(":")
        else:
            raise IceError(f"unsupported ICE server scheme {scheme!r}")
    return IceConnection(
        ice_controlling=controlling,
        components=1,
        stun_server=stun,
        turn_server=turn,
        turn_username=turn_user,
        turn_password=turn_password,
    )


def host_candidate(sockname: tuple[Any, ...]) -> Any:
    """A host candidate for a plain UDP socket (used without ICE checks)."""
    host, port = sockname[0], sockname[1]
    return aioice.Candidate(
        foundation=aioice.candidate.candidate_foundation("host", "udp", host),
        component=COMPONENT,
        transport="udp",
        priority=aioice.candidate.candidate_priority(COMPONENT, "host"),
        host=host,
        port=port,
        type="host",
    )


def first_udp_address(candidates: Sequence[Any]) -> tuple[str, int]:
    """Where to send without ICE: the remote's first UDP candidate."""
    for candidate in candidates:
        if candidate.transport.lower() == "udp" and candidate.port:
            return (candidate.host, candidate.port)
    raise IceError("the remote description has no UDP candidate")


async def gather_candidates(connection: IceConnection, host_addresses: list[str] | None) -> None:
    """Gather local candidates: aioice's own choice, or exactly ``host_addresses``.

    aioice never gathers loopback addresses itself; its public
    ``get_component_candidates`` binds any address we name, after which the
    connection is marked as gathered (aioice keeps that flag private).
    """
    if host_addresses is None:
        await connection.gather_candidates()
        return
    candidates = await connection.get_component_candidates(COMPONENT, list(host_addresses))
    if not candidates:
        raise IceError(f"could not bind any of {host_addresses}")
    connection._local_candidates_start = True
    connection._local_candidates += candidates
    connection._local_candidates_end = True


async def connect_ice(
    connection: IceConnection,
    remote_ufrag: str,
    remote_pwd: str,
    remote_candidates: Sequence[Any],
    protocol_factory: Callable[[], asyncio.DatagramProtocol],
) -> IceDatagramTransport:
    """Run the ICE checks and return a transport bound to the nominated pair."""
    connection.remote_username = remote_ufrag
    connection.remote_password = remote_pwd
    for candidate in remote_candidates:
        if candidate.transport.lower() == "udp":
            await connection.add_remote_candidate(candidate)
    await connection.add_remote_candidate(None)
    try:
        await connection.connect()
    except ConnectionError as exc:
        raise IceError(f"ICE failed: {exc}") from None
    transport = IceDatagramTransport(connection, protocol_factory())
    return transport


class IceDatagramTransport(asyncio.DatagramTransport):
    """A nominated ICE pair seen as a connected datagram transport."""

    def __init__(self, connection: IceConnection, protocol: asyncio.DatagramProtocol) -> None:
        super().__init__()
        self._connection = connection
        self._protocol = protocol
        self._closing = False
        self._send_tasks: set[asyncio.Task[None]] = set()
        protocol.connection_made(self)
        self._reader = asyncio.ensure_future(self._read_loop())

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        pair = self._connection._nominated.get(COMPONENT)
        if name == "peername" and pair is not None:
            return pair.remote_addr
        if name == "sockname" and pair is not None:
            return pair.protocol.transport.get_extra_info("sockname")
        return default

    def is_closing(self) -> bool:
        return self._closing

    def sendto(self, data: bytes, addr: Any = None) -> None:  # type: ignore[override]
        if self._closing:
            return
        pair = self._connection._nominated.get(COMPONENT)
        if pair is None:
            return
        transport = getattr(pair.protocol, "transport", None)
        if type(pair.protocol) is aioice.ice.StunProtocol and transport is not None:
            # host and server-reflexive pairs: aioice's send() is only this sendto, and
            # going through it would cost a task per datagram
            transport.sendto(data, pair.remote_addr)
            return
        task = asyncio.ensure_future(self._connection.sendto(data, COMPONENT))
        self._send_tasks.add(task)
        task.add_done_callback(self._send_done)

    def _send_done(self, task: asyncio.Task[None]) -> None:
        # datagrams are best effort, but a failed send must not end up as "Task
        # exception was never retrieved" (e.g. ConnectionError once ICE closed)
        self._send_tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.debug("ICE send failed: %s", error)

    async def _read_loop(self) -> None:
        error: Exception | None = None
        try:
            while True:
                data = await self._connection.recv()
                try:
                    self._protocol.datagram_received(data, self.get_extra_info("peername"))
                except Exception:
                    # a bug above us must not silently stop all reception
                    logger.exception("datagram handler failed; datagram dropped")
        except ConnectionError as exc:
            error = exc
        except asyncio.CancelledError:
            pass
        finally:
            closing = self._closing
            self._closing = True
            if not closing:
                self._protocol.connection_lost(error)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._reader.cancel()
        for task in self._send_tasks:
            task.cancel()
        self._protocol.connection_lost(None)

    def abort(self) -> None:
        self.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
