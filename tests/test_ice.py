"""IceConnection: connect() proceeds on nomination while aioice's own connect() runs on
in a supervised task (pacing, consent freshness), and nothing is leaked or unretrieved.

The tests assert the mechanism, never a duration: a test subclass whose pacing loop
never ends proves that connect() does not wait for aioice's connect() to return.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import aioice
import aioice.ice
import aioice.stun
import pytest

from webrtc_secure import ice

pytestmark = pytest.mark.both_loops

HOST = ["127.0.0.1"]


class EndlessPacing(ice.IceConnection):
    """aioice's connect() never leaves its pacing loop, so it never returns."""

    def _check_periodic(self) -> bool:
        super()._check_periodic()
        return True


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the loop's exception handler, e.g. 'Task exception was never
    retrieved' (logged, not warned, so filterwarnings=error would not see it)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)


async def _pair(
    a_cls: type[ice.IceConnection] = ice.IceConnection,
    b_cls: type[ice.IceConnection] = ice.IceConnection,
    more_for_a: Callable[[str], Any] | None = None,
) -> tuple[ice.IceConnection, ice.IceConnection]:
    """Two gathered connections on loopback, each knowing the other's credentials and
    candidates (end-of-candidates signalled): a controlling, b controlled.
    ``more_for_a(password)`` returns further remote candidates for a."""
    a, b = a_cls(ice_controlling=True), b_cls(ice_controlling=False)
    for connection in (a, b):
        await ice.gather_candidates(connection, HOST)
    for local, remote in ((a, b), (b, a)):
        local.remote_username = remote.local_username
        local.remote_password = remote.local_password
        candidates = list(remote.local_candidates)
        if local is a and more_for_a is not None:
            candidates += await more_for_a(remote.local_password)
        for candidate in candidates:
            await local.add_remote_candidate(candidate)
        await local.add_remote_candidate(None)
    return a, b


async def _until(predicate: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), 10)


@pytest.fixture
async def closing() -> AsyncIterator[list[ice.IceConnection]]:
    """Connections appended here are closed after the test, whatever happened."""
    connections: list[ice.IceConnection] = []
    yield connections
    for connection in connections:
        await connection.close()


def _idle(connection: ice.IceConnection) -> bool:
    """No task of this connection is left running."""
    tasks = [connection.checks_task, connection._query_consent_task]
    tasks += [pair.task for pair in connection._check_list]
    return all(task is None or task.done() for task in tasks)


async def _connect_and_observe(connection: ice.IceConnection) -> dict[str, Any]:
    """connect(), and what was true the moment it returned."""
    await connection.connect()
    assert connection.checks_task is not None
    return {
        "pair": connection.nominated_pair,
        "outcome": connection._outcome,
        "checks_task_done": connection.checks_task.done(),
    }


async def test_connect_returns_nominated_while_aioice_connect_has_not_returned(
    closing: list[ice.IceConnection], loop_errors: list[dict[str, Any]]
) -> None:
    a, b = await _pair(EndlessPacing, EndlessPacing)
    closing += [a, b]
    seen = await asyncio.wait_for(
        asyncio.gather(_connect_and_observe(a), _connect_and_observe(b)), 10
    )
    for observed in seen:
        assert observed["pair"] is not None
        assert observed["outcome"] == aioice.ice.ICE_COMPLETED
        assert not observed["checks_task_done"]  # aioice's connect() can never return
    assert a.nominated_pair is not None and b.nominated_pair is not None
    assert a.nominated_pair.remote_addr == b.nominated_pair.local_addr
    # the nominated pair carries data both ways at once
    await a.send(b"\x16ping")
    assert await asyncio.wait_for(b.recv(), 5) == b"\x16ping"
    await b.send(b"\x16pong")
    assert await asyncio.wait_for(a.recv(), 5) == b"\x16pong"
    # close() stops the checks task that would otherwise run forever
    for connection in (a, b):
        await connection.close()
        assert connection.checks_task is not None and connection.checks_task.cancelled()
        assert _idle(connection)
    assert loop_errors == []


@pytest.mark.parametrize("first", ["controlling", "controlled"])
async def test_aioice_connect_finishes_in_its_task_and_starts_consent_freshness(
    first: str, closing: list[ice.IceConnection], loop_errors: list[dict[str, Any]]
) -> None:
    a, b = await _pair()
    closing += [a, b]
    # either side may start first: its checks reach the other before that one's
    # connect(), which answers them and keeps them as early checks
    order = (a, b) if first == "controlling" else (b, a)
    started = asyncio.ensure_future(order[0].connect())
    await _until(lambda: bool(order[1]._early_checks))
    await asyncio.wait_for(asyncio.gather(started, order[1].connect()), 10)
    assert a.nominated_pair is not None and b.nominated_pair is not None
    tasks = [a.checks_task, b.checks_task]
    assert all(task is not None for task in tasks)
    await asyncio.wait_for(asyncio.wait([t for t in tasks if t is not None]), 10)
    for connection in (a, b):
        assert connection.checks_task is not None
        assert connection.checks_task.exception() is None  # aioice's connect() succeeded
        # RFC 7675: aioice starts consent freshness at the end of its connect()
        consent = connection._query_consent_task
        assert consent is not None and not consent.done()
        # its pacing loop ended and the checks it would cancel are gone
        assert all(pair.task is None or pair.task.done() for pair in connection._check_list)
    for connection in (a, b):
        await connection.close()
        assert _idle(connection)
    assert loop_errors == []


async def test_close_right_after_connect_leaves_no_task_behind(
    loop_errors: list[dict[str, Any]],
) -> None:
    a, b = await _pair()
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
    # the checks tasks may still be in their pacing sleep: close() must stop them
    # before they start consent freshness on closed sockets
    await a.close()
    await b.close()
    for connection in (a, b):
        assert _idle(connection)
        consent = connection._query_consent_task
        assert consent is None or consent.done()
    del a, b
    gc.collect()
    assert loop_errors == []


class _ErrorResponder(asyncio.DatagramProtocol):
    """A STUN endpoint that refuses every check with an authenticated 403, which
    fails the pair at once (RFC 8445 7.2.5.2.4: unrecoverable error response)."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.requests = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = aioice.stun.parse_message(data)
        if request.message_class != aioice.stun.Class.REQUEST:
            return
        self.requests += 1
        response = aioice.stun.Message(
            message_method=request.message_method,
            message_class=aioice.stun.Class.ERROR,
            transaction_id=request.transaction_id,
        )
        response.attributes["ERROR-CODE"] = (403, "Forbidden")
        response.add_message_integrity(self.password)
        assert self.transport is not None
        self.transport.sendto(bytes(response), addr)


async def _error_responder(password: str) -> tuple[asyncio.DatagramTransport, _ErrorResponder]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _ErrorResponder(password), local_addr=("127.0.0.1", 0)
    )
    return transport, protocol


def _candidate_at(transport: asyncio.DatagramTransport, priority: int) -> aioice.Candidate:
    host, port = transport.get_extra_info("sockname")[:2]
    return aioice.Candidate(
        foundation="refuser",
        component=ice.COMPONENT,
        transport="udp",
        priority=priority,
        host=host,
        port=port,
        type="host",
    )


@pytest.mark.parametrize("connection_cls", [ice.IceConnection, EndlessPacing])
async def test_failed_check_list_fails_connect_and_the_task_error_is_retrieved(
    connection_cls: type[ice.IceConnection], loop_errors: list[dict[str, Any]]
) -> None:
    a = connection_cls(ice_controlling=True)
    await ice.gather_candidates(a, HOST)
    a.remote_username, a.remote_password = "remoteufrag", "remotepasswordremotepass"
    transport, refuser = await _error_responder(a.remote_password)
    try:
        await a.add_remote_candidate(_candidate_at(transport, 2**31))
        await a.add_remote_candidate(None)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(a.connect(), 10)
        assert refuser.requests >= 1
        # the failure came from the check list outcome: with EndlessPacing aioice's
        # connect() could not have raised it
        assert a._outcome == aioice.ice.ICE_FAILED
        task = a.checks_task
        assert task is not None
        if connection_cls is ice.IceConnection:
            # aioice's connect() raises too, after its pacing sleep: retrieved by us
            await asyncio.wait_for(asyncio.wait([task]), 10)
            assert isinstance(task.exception(), ConnectionError)
        await a.close()
        assert _idle(a)
    finally:
        transport.close()
    del a, task
    gc.collect()
    assert loop_errors == []


async def test_connect_without_any_candidate_pair_fails_through_the_task(
    loop_errors: list[dict[str, Any]],
) -> None:
    a = ice.IceConnection(ice_controlling=True)
    await ice.gather_candidates(a, HOST)  # IPv4 only
    a.remote_username, a.remote_password = "remoteufrag", "remotepasswordremotepass"
    v6 = aioice.Candidate(
        foundation="v6",
        component=ice.COMPONENT,
        transport="udp",
        priority=1000,
        host="::1",
        port=9,
        type="host",
    )
    await a.add_remote_candidate(v6)
    await a.add_remote_candidate(None)
    # aioice's connect() raises without reporting through the check list: connect()
    # learns it from the end of the task
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(a.connect(), 10)
    assert a.checks_task is not None and a.checks_task.done()
    await a.close()
    del a
    gc.collect()
    assert loop_errors == []


async def test_cancelling_connect_cancels_the_checks(
    loop_errors: list[dict[str, Any]],
) -> None:
    a = ice.IceConnection(ice_controlling=True)
    await ice.gather_candidates(a, HOST)
    a.remote_username, a.remote_password = "remoteufrag", "remotepasswordremotepass"
    loop = asyncio.get_running_loop()
    # a socket that reads and never answers: the check keeps retransmitting
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        await a.add_remote_candidate(_candidate_at(silent, 1000))
        await a.add_remote_candidate(None)
        connecting = asyncio.ensure_future(a.connect())
        await _until(lambda: bool(a._check_list) and a._check_list[0].task is not None)
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        assert a.checks_task is not None
        await asyncio.wait([a.checks_task])
        assert a.checks_task.cancelled()
        await a.close()
        assert _idle(a)
    finally:
        silent.close()
    assert loop_errors == []


async def test_checks_are_still_paced_past_a_pair_that_fails(
    closing: list[ice.IceConnection],
) -> None:
    """The best pair is refused; aioice's pacing (not a triggered check: b has not
    called connect(), it only answers) starts the next pair, which gets nominated."""
    refusers: list[tuple[asyncio.DatagramTransport, _ErrorResponder]] = []

    async def refuser_first(password: str) -> list[aioice.Candidate]:
        refusers.append(await _error_responder(password))
        return [_candidate_at(refusers[0][0], 2**31 - 1)]

    a, b = await _pair(more_for_a=refuser_first)
    closing += [a, b]
    transport, refuser = refusers[0]
    try:
        # the refuser's pair is checked first: its candidate has the higher priority
        assert a._check_list[0].remote_addr == transport.get_extra_info("sockname")[:2]
        await asyncio.wait_for(a.connect(), 10)
        assert refuser.requests >= 1
        pair = a.nominated_pair
        assert pair is not None
        b_candidate = b.local_candidates[0]
        assert pair.remote_addr == (b_candidate.host, b_candidate.port)
        await asyncio.wait_for(b.connect(), 10)  # b's early checks hold the nomination
        assert b.nominated_pair is not None
    finally:
        transport.close()
