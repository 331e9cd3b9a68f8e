"""DtlsConnection.receive_application_data (the content handed back instead of queued)
against receive_datagram, and DtlsTransport's use of it: the transport skips
datagrams_to_send / next_event / get_timer for such a record, so these tests check that
the connection really had nothing queued then, and that the transport arms and cancels
its retransmission timer exactly where the general path (every record serviced in full,
as before the fast hand-off) does: during the handshake, while a KeyUpdate waits for its
ACK (with data arriving on the fast path meanwhile), when the ACK comes, and on close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.dtls_pair import cert, drain_events, pins
from tests.test_dtls13_fastpaths import _CONNECTION_OPS, _apply, _pair13
from tests.test_dtls_fastpaths import _OPS, _datagrams, _deterministic_pair
from webrtc_secure.dtls import ApplicationData, DtlsConnection, State
from webrtc_secure.dtls_transport import DtlsTransport, loop_clock

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _snapshot(conn: DtlsConnection) -> tuple[Any, ...]:
    return (conn.stats, conn.state, conn.get_timer())


def _receive_both_ways(
    fast: DtlsConnection, general: DtlsConnection, fast_datagram: bytes, general_datagram: bytes
) -> tuple[list[bytes], list[bytes], bool]:
    """One datagram into each twin: ``fast`` by receive_application_data, ``general`` by
    receive_datagram. Returns both data sequences and whether the content was handed
    back (checking that nothing was queued then)."""
    timer_before = fast.get_timer()
    content = fast.receive_application_data(fast_datagram, 1.0)
    if content is not None:
        # the promise the transport relies on: nothing to send, no event, same timer
        assert fast.next_event() is None
        assert fast.datagrams_to_send(1.0) == []
        assert fast.get_timer() == timer_before
    general.receive_datagram(general_datagram, 1.0)
    fast_data = [] if content is None else [content]
    fast_events = drain_events(fast)
    general_events = drain_events(general)
    fast_data += [e.data for e in fast_events if isinstance(e, ApplicationData)]
    general_data = [e.data for e in general_events if isinstance(e, ApplicationData)]
    # the other events (a close, an alert's outcome) are the same too
    assert [repr(e) for e in fast_events if not isinstance(e, ApplicationData)] == [
        repr(e) for e in general_events if not isinstance(e, ApplicationData)
    ]
    return fast_data, general_data, content is not None


@SETTINGS
@given(ops=_OPS)
def test_dtls12_handed_back_content_matches_receive_datagram(ops: list[tuple[Any, ...]]) -> None:
    """DTLS 1.2, deterministic keys: the same datagrams, the same data in the same
    order, the same counters, state, answers and timer."""
    client, fast = _deterministic_pair()
    client2, general = _deterministic_pair()
    handed = 0
    for fast_datagram, general_datagram in zip(
        _datagrams(client, ops), _datagrams(client2, ops), strict=True
    ):
        assert fast_datagram == general_datagram  # the pairs' keys are the same
        fast_data, general_data, was_handed = _receive_both_ways(
            fast, general, fast_datagram, general_datagram
        )
        handed += was_handed
        assert fast_data == general_data
        assert _snapshot(fast) == _snapshot(general)
        assert fast.datagrams_to_send(1.0) == general.datagrams_to_send(1.0)
    if ops[0][0] == "send":
        assert handed, "the content was never handed back"


@SETTINGS
@given(ops=_CONNECTION_OPS)
def test_dtls13_handed_back_content_matches_receive_datagram(ops: list[tuple[Any, ...]]) -> None:
    """DTLS 1.3 (two pairs with their own keys, key-independent tampering; KeyUpdate
    round trips in between): the same data, counters, state, timer and datagram
    count."""
    fast_client, fast_server = _pair13()
    general_client, general_server = _pair13()
    fast_datagrams = _apply(fast_client, fast_server, ops)
    general_datagrams = _apply(general_client, general_server, ops)
    handed = 0
    for (to, fast_datagram), (_, general_datagram) in zip(
        fast_datagrams, general_datagrams, strict=True
    ):
        if to == "flush":
            # the rest of a KeyUpdate exchange, both pairs the same way (general)
            for client, server in ((fast_client, fast_server), (general_client, general_server)):
                for _ in range(4):
                    for a, b in ((server, client), (client, server)):
                        for d in a.datagrams_to_send(1.0):
                            b.receive_datagram(d, 1.0)
            assert drain_events(fast_server) == drain_events(general_server)
            continue
        fast_data, general_data, was_handed = _receive_both_ways(
            fast_server, general_server, fast_datagram, general_datagram
        )
        handed += was_handed
        assert fast_data == general_data
        assert fast_server.stats == general_server.stats
        assert fast_server.state == general_server.state
        assert (fast_server.get_timer() is None) == (general_server.get_timer() is None)
        assert len(fast_server.datagrams_to_send(1.0)) == len(general_server.datagrams_to_send(1.0))
    if ops[0][0] == "send":
        assert handed, "the content was never handed back"


def test_content_waits_behind_a_queued_event() -> None:
    """A record that arrives while something is queued is queued behind it (order),
    not handed back."""
    client, server = _pair13()
    client.send(b"first")
    client.send(b"second")
    first, second = client.datagrams_to_send(1.0)
    server.receive_datagram(first, 1.0)  # queued as an event, not drained
    assert server.receive_application_data(second, 1.0) is None
    assert [e.data for e in drain_events(server)] == [b"first", b"second"]  # type: ignore[attr-defined]
    client.send(b"third")
    (third,) = client.datagrams_to_send(1.0)
    assert server.receive_application_data(third, 1.0) == b"third"


def test_content_waits_behind_a_queued_datagram() -> None:
    """Under DTLS 1.2 and 1.3: with a datagram of ours waiting (here an unsent
    record), a received record's content is queued, so the owner's full service
    sends that datagram before handing the data on."""
    for client, server in (_deterministic_pair(), _pair13()):
        server.send(b"waiting")
        client.send(b"data")
        (datagram,) = client.datagrams_to_send(1.0)
        assert server.receive_application_data(datagram, 1.0) is None
        assert len(server.datagrams_to_send(1.0)) == 1
        assert [e.data for e in drain_events(server)] == [b"data"]  # type: ignore[attr-defined]


def test_get_timer_inline_matches_the_engine() -> None:
    """The connected DTLS 1.3 get_timer (inline) is the engine's min of its timers."""
    client, _server = _pair13()
    engine = client._v13
    assert engine is not None
    for rtx, ack in ((None, None), (5.0, None), (None, 3.0), (5.0, 3.0), (2.0, 3.0), (4.0, 4.0)):
        engine._rtx_at, engine._ack_at = rtx, ack
        assert client.get_timer() == engine.get_timer() == client._get_timer13()
    engine._rtx_at = 2.0
    engine.failed = True
    assert client.get_timer() is None


# --- DtlsTransport: the timer is armed and cancelled where it was ----------------------------


class _Handle:
    def __init__(self, loop: _FakeLoop, when: float, callback: Callable[[], None]) -> None:
        self._loop, self._when, self.callback, self._cancelled = loop, when, callback, False

    def when(self) -> float:
        return self._when

    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            self._loop.log.append(("cancel", self._when))


class _FakeLoop:
    """The two loop calls DtlsTransport makes after construction, on a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[tuple[str, float]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> _Handle:
        self.log.append(("arm", when))
        return _Handle(self, when, callback)


class _GeneralTransport(DtlsTransport):
    """DtlsTransport as before the hand-off: every datagram serviced in full."""

    __slots__ = ()

    def datagram_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.connection.receive_datagram(data, self._loop.time())
        self._service()


def _scenario(
    transport_class: type[DtlsTransport], version: str = "1.3", *, send_batch: bool = False
) -> dict[str, Any]:
    """Handshake, data both ways, (DTLS 1.3) a KeyUpdate whose ACK is held while data
    arrives on the fast path, its timer firing, the ACK, then close; the timer log of
    the client's side and what it was at each step. ``send_batch``: the transports
    hand send_many's records to the wire in one call (as SecurePeer's do)."""

    async def go() -> dict[str, Any]:
        loop = _FakeLoop()
        wires: dict[str, list[bytes]] = {"a": [], "b": []}
        got: dict[str, list[bytes]] = {"a": [], "b": []}
        a = transport_class(
            DtlsConnection(
                True, cert("client"), remote_fingerprints=pins("server"), dtls_versions=(version,)
            ),
            wires["b"].append,  # a's datagrams go to b
            on_data=got["a"].append,
            send_batch=wires["b"].extend if send_batch else None,
        )
        b = transport_class(
            DtlsConnection(
                False,
                cert("server"),
                remote_fingerprints=pins("client"),
                dtls_versions=(version,),
                cookies=False,
            ),
            wires["a"].append,
            on_data=got["b"].append,
            send_batch=wires["a"].extend if send_batch else None,
        )
        a._loop = b._loop = loop  # type: ignore[assignment]
        a._now = b._now = loop.time  # the clock the transport bound (loop_clock)
        steps: list[tuple[str, bool, float | None]] = []

        def note(step: str) -> None:
            timer = a._timer
            steps.append((step, timer is not None, timer.when() if timer else None))
            # armed exactly when the engine has a deadline (none moved without a check)
            assert (timer is None) == (a.connection.get_timer() is None), step

        def deliver(to: str, keep: int = 0) -> int:
            """Everything on the wire to ``to`` (but the last ``keep``)."""
            target = a if to == "a" else b
            queue = wires[to]
            count = len(queue) - keep
            batch, queue[:count] = queue[:count], []
            for datagram in batch:
                target.datagram_received(datagram)
            return len(batch)

        for t in (a, b):
            t.connection.connect(loop.now)
            t._service()
        note("connect")
        for _ in range(10):
            loop.now += 0.01
            moved = deliver("b") + deliver("a")
            note("handshake")
            if not moved:
                break
        assert a.is_connected and b.is_connected
        b.send_many([b"b%d" % i for i in range(5)])
        a.send_many([b"a%d" % i for i in range(5)])
        deliver("a")
        deliver("b")
        note("data")
        assert got["a"] == [b"b%d" % i for i in range(5)]
        if version == "1.2":
            a.close()
            note("close")
            return {"log": loop.log, "steps": steps, "data": got}
        # a KeyUpdate: the timer waits for the ACK
        assert a.key_update(request_peer_update=False)
        note("key update sent")
        deliver("b")
        held = list(wires["a"])  # b's ACK, held back
        wires["a"].clear()
        loop.now += 0.01
        b.send_many([b"during%d" % i for i in range(3)])
        deliver("a")
        note("data while the KeyUpdate waits")
        assert a._timer is not None and not a._timer.cancelled()
        loop.now = a._timer.when()
        a._on_timer()  # what the loop calls at that time
        note("timer fired")
        wires["a"][:0] = held
        deliver("b")  # the retransmission's ACK goes back too
        deliver("a")
        note("ack")
        b.send_many([b"after"])
        deliver("a")
        note("after")
        a.close()
        note("close")
        return {"log": loop.log, "steps": steps, "data": got}

    return asyncio.run(go())


def test_transport_timer_is_armed_and_cancelled_as_by_the_general_path() -> None:
    fast = _scenario(DtlsTransport)
    general = _scenario(_GeneralTransport)
    assert fast == general
    steps = {step: (armed, when) for step, armed, when in fast["steps"]}
    # the client's first flight arms it; data alone leaves none; the KeyUpdate arms it
    # and data on the fast path leaves it armed; the ACK and the close cancel it
    assert fast["steps"][0][1]
    assert steps["data"] == (False, None)
    assert steps["key update sent"][0]
    assert steps["data while the KeyUpdate waits"] == steps["key update sent"]
    assert steps["ack"] == (False, None)
    assert steps["close"] == (False, None)
    assert fast["data"]["a"][-4:] == [b"during0", b"during1", b"during2", b"after"]


@pytest.mark.parametrize("state", [State.CLOSED, State.FAILED])
def test_closed_connection_hands_back_nothing(state: State) -> None:
    client, server = _pair13()
    client.send(b"late")
    (datagram,) = client.datagrams_to_send(1.0)
    server.state = state
    received = server.stats.datagrams_received
    assert server.receive_application_data(datagram, 1.0) is None
    assert server.stats.datagrams_received == received
    assert server.next_event() is None


def test_transport_timer_under_dtls12_is_as_by_the_general_path() -> None:
    fast = _scenario(DtlsTransport, "1.2")
    assert fast == _scenario(_GeneralTransport, "1.2")
    steps = {step: (armed, when) for step, armed, when in fast["steps"]}
    assert fast["steps"][0][1]  # the first flight's timer
    assert steps["data"] == steps["close"] == (False, None)
    assert fast["data"]["a"] == [b"b%d" % i for i in range(5)]


@pytest.mark.both_loops
async def test_the_shells_clock_is_the_loops_clock() -> None:
    """loop_clock: on asyncio's own loops time.monotonic itself (what their time()
    returns, one frame fewer per reading), elsewhere the loop's bound time(); either
    way it reads the clock call_at deadlines are in."""
    loop = asyncio.get_running_loop()
    clock = loop_clock(loop)
    if type(loop).time is asyncio.BaseEventLoop.time:
        assert clock is time.monotonic
    else:
        assert clock == loop.time
    first = loop.time()
    reading = clock()
    assert first <= reading <= loop.time() + 0.002  # (uvloop's clock ticks in ms)


async def test_a_loop_with_its_own_time_keeps_it() -> None:
    """A loop class whose time() is its own (not asyncio's) is read through it."""

    class Shifted(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return super().time() + 1000.0

    loop = Shifted()
    try:
        clock = loop_clock(loop)
        assert clock == loop.time and clock() > time.monotonic() + 999.0
    finally:
        loop.close()
