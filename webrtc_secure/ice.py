"""ICE (aioice) behind an ``asyncio.DatagramTransport`` face.

SecurePeer's protocol stack only knows ``DatagramProtocol``/``DatagramTransport``, so
the same SecureProtocol runs over a plain UDP socket or over a nominated ICE pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aioice

from webrtc_secure.errors import IceError

logger = logging.getLogger(__name__)

COMPONENT = 1


def create_ice_connection(*, controlling: bool, ice_servers: Sequence[str] = ()) -> Any:
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
    return aioice.Connection(
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


async def gather_candidates(connection: Any, host_addresses: list[str] | None) -> None:
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
    connection: Any,
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

    def __init__(self, connection: Any, protocol: asyncio.DatagramProtocol) -> None:
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
        task.add_done_callback(self._send_tasks.discard)

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
