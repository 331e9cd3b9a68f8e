"""IceDatagramTransport's fast paths over a nominated aioice pair, and their fallbacks.

The fast paths lean on aioice internals (the ``_nominated`` dict, the host
``StunProtocol`` and its ``datagram_received``) and on asyncio's private ``max_size``.
These tests fail when one of them changes, while the transport itself falls back to
aioice's public path: ``test_fast_paths_are_active`` names what broke.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aioice
import aioice.ice
import aioice.stun
import pytest

from tests.test_ice import _pair, _until
from webrtc_secure import ice, loops

pytestmark = pytest.mark.both_loops

DTLS = b"\x16\xfe\xfd" + bytes(20)  # first byte 22: DTLS (RFC 7983)
LARGEST_UDP_IPV4 = 65507  # 65535 - 20 (IPv4 header) - 8 (UDP header)


class Recorder(asyncio.DatagramProtocol):
    """Our side of the transport: what it received, and whether it was told of loss."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Exception | None] = []
        self.raise_on: bytes | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        if data == self.raise_on:
            raise RuntimeError("handler bug")

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


class Stack:
    """Two connected IceConnections, each with an IceDatagramTransport on top."""

    def __init__(self, a: ice.IceConnection, b: ice.IceConnection) -> None:
        self.a, self.b = a, b
        self.ra, self.rb = Recorder(), Recorder()
        self.ta: ice.IceDatagramTransport | None = None
        self.tb: ice.IceDatagramTransport | None = None
        #: datagrams that went through aioice's receive queue (slow path)
        self.slow: dict[str, int] = {"a": 0, "b": 0}
        for name, connection in (("a", a), ("b", b)):
            original = connection._queue.put_nowait

            def counted(item: Any, name: str = name, f: Any = original) -> None:
                if item is not None:  # None: aioice's close signal
                    self.slow[name] += 1
                f(item)

            connection._queue.put_nowait = counted  # type: ignore[method-assign]

    def open(self) -> None:
        self.ta = ice.IceDatagramTransport(self.a, self.ra)
        self.tb = ice.IceDatagramTransport(self.b, self.rb)

    async def close(self) -> None:
        for transport in (self.ta, self.tb):
            if transport is not None:
                transport.close()
        for connection in (self.a, self.b):
            await connection.close()


async def _connected(
    before_open: Callable[[Stack], Awaitable[None]] | None = None,
) -> Stack:
    a, b = await _pair()
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
    stack = Stack(a, b)
    if before_open is not None:
        await before_open(stack)
    stack.open()
    return stack


@pytest.fixture
async def stacks() -> AsyncIterator[list[Stack]]:
    opened: list[Stack] = []
    yield opened
    for stack in opened:
        await stack.close()


def _nominated_protocol(connection: ice.IceConnection) -> aioice.ice.StunProtocol:
    pair = connection.nominated_pair
    assert pair is not None
    return pair.protocol


async def test_fast_paths_are_active(stacks: list[Stack]) -> None:
    """What the fast paths need from aioice and asyncio is still there."""
    stack = await _connected()
    stacks.append(stack)
    for connection, transport in ((stack.a, stack.ta), (stack.b, stack.tb)):
        assert transport is not None
        assert connection.tracks_nomination, "aioice replaced its _nominated dict"
        protocol = _nominated_protocol(connection)
        assert type(protocol) is aioice.ice.StunProtocol, "aioice's host protocol changed"
        assert transport.fast_send and transport.fast_receive
        # our wrapper, on this instance only, over the connection's source gate
        assert vars(protocol)["datagram_received"] is not connection.gate(protocol)
        assert connection.gate(protocol) is not None
        if loops.running_loop_name() == "asyncio":
            assert protocol.transport.max_size == ice.RECEIVE_BUFFER  # type: ignore[attr-defined]
        else:
            # uvloop reads into one loop-wide buffer and copies each datagram out at its
            # own size: no per-datagram buffer to shrink (ice.limit_receive_buffer)
            assert not hasattr(protocol.transport, "max_size")


async def test_fast_receive_skips_aioice_and_keeps_order_with_early_data(
    stacks: list[Stack],
) -> None:
    """Data queued in aioice before the transport existed arrives first, through
    aioice's recv(); everything later skips aioice's queue."""

    async def early(stack: Stack) -> None:
        pair = stack.b.nominated_pair
        assert pair is not None
        # b sends before a's transport exists: it waits in a's aioice queue
        pair.protocol.transport.sendto(b"\x16early", pair.remote_addr)
        await _until(lambda: stack.slow["a"] == 1)

    stack = await _connected(early)
    stacks.append(stack)
    await _until(lambda: len(stack.ra.received) == 1)
    assert stack.ra.received == [b"\x16early"] and stack.slow["a"] == 1
    assert stack.tb is not None and stack.ta is not None
    for i in range(20):
        stack.tb.sendto(b"\x80\x00" + bytes([i]) * 50)  # RTP range
        stack.ta.sendto(DTLS)
    await _until(lambda: len(stack.ra.received) == 21 and len(stack.rb.received) == 20)
    assert stack.ra.received[1:] == [b"\x80\x00" + bytes([i]) * 50 for i in range(20)]
    assert stack.rb.received == [DTLS] * 20
    assert stack.slow == {"a": 1, "b": 0}  # only the early datagram went through aioice


async def test_consent_freshness_holds_on_the_wrapped_protocols_without_aioice(
    stacks: list[Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consent checks (RFC 7675) run through the wrapped protocols both ways: each
    side's checks are answered by the other's receive path (ice.py's minimal STUN
    codec), without aioice's request handling, and the answers renew consent. Were
    either lost, consent would expire after CONSENT_FAILURES intervals."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.02)
    stack = await _connected()
    stacks.append(stack)
    requests = {"a": 0, "b": 0}
    for name, connection in (("a", stack.a), ("b", stack.b)):
        original = connection.request_received

        def counted(*args: Any, name: str = name, f: Any = original) -> None:
            requests[name] += 1
            f(*args)

        connection.request_received = counted  # type: ignore[method-assign,assignment]
    # aioice's connect() ends in its task and starts consent freshness there
    for connection in (stack.a, stack.b):
        assert connection.checks_task is not None
        await asyncio.wait_for(asyncio.wait([connection.checks_task]), 10)
    before = dict(requests)  # connectivity checks, before consent freshness started
    enough = 3 * aioice.ice.CONSENT_FAILURES
    await _until(
        lambda: min(c.consent_checks["answered"] for c in (stack.a, stack.b)) >= enough
    )
    assert requests == before  # no consent check reached aioice's request handling
    for connection, other in ((stack.a, stack.b), (stack.b, stack.a)):
        consent = connection._query_consent_task
        assert consent is not None and not consent.done(), "consent expired"
        # every answer came from the other side's fast path
        assert other.consent_checks["answered_here"] >= connection.consent_checks["answered"]
        assert connection.consent_confirmed is not None
    assert stack.ra.lost == stack.rb.lost == []
    assert stack.slow == {"a": 0, "b": 0}  # STUN never counts as data
    # media still flows on the same sockets
    assert stack.ta is not None
    stack.ta.sendto(DTLS)
    await _until(lambda: stack.rb.received == [DTLS])


async def test_largest_udp_datagram_arrives_whole(stacks: list[Stack]) -> None:
    """The 64 KiB receive buffer still holds the largest UDP payload over IPv4."""
    stack = await _connected()
    stacks.append(stack)
    assert stack.tb is not None and stack.tb.fast_send
    big = b"\x80\x00" + bytes(LARGEST_UDP_IPV4 - 2)
    stack.tb.sendto(big)
    await _until(lambda: bool(stack.ra.received))
    assert [len(d) for d in stack.ra.received] == [LARGEST_UDP_IPV4]
    assert stack.ra.received[0] == big and stack.slow["a"] == 0


@pytest.mark.asyncio(loop_factories=["asyncio"])  # max_size is asyncio's attribute
async def test_plain_udp_transport_buffer_holds_the_largest_datagram() -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: recorder, local_addr=("127.0.0.1", 0)
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert ice.limit_receive_buffer(transport)
        assert not ice.limit_receive_buffer(transport)  # already small enough
        sender.sendto(bytes(LARGEST_UDP_IPV4), transport.get_extra_info("sockname"))
        await _until(lambda: bool(recorder.received))
        assert [len(d) for d in recorder.received] == [LARGEST_UDP_IPV4]
    finally:
        sender.close()
        transport.close()


def test_receive_buffer_left_alone_without_asyncio_max_size() -> None:
    class Other:  # e.g. uvloop's transports, which have no max_size
        pass

    class ReadOnly:
        @property
        def max_size(self) -> int:
            return 1 << 18

    assert not ice.limit_receive_buffer(Other())
    assert not ice.limit_receive_buffer(ReadOnly())


async def test_a_raising_protocol_does_not_stop_the_fast_path(
    stacks: list[Stack], caplog: pytest.LogCaptureFixture
) -> None:
    stack = await _connected()
    stacks.append(stack)
    stack.ra.raise_on = b"\x16boom"
    assert stack.tb is not None
    with caplog.at_level(logging.ERROR, logger="webrtc_secure.ice"):
        stack.tb.sendto(b"\x16boom")
        stack.tb.sendto(b"\x16after")
        await _until(lambda: len(stack.ra.received) == 2)
    assert stack.ra.received == [b"\x16boom", b"\x16after"]
    assert any("datagram handler failed" in r.getMessage() for r in caplog.records)


async def test_without_nomination_tracking_everything_takes_the_gate_path(
    stacks: list[Stack], caplog: pytest.LogCaptureFixture
) -> None:
    """Should aioice replace its _nominated dict, the transport neither caches a pair
    nor wraps a protocol, and data still flows both ways through the connection's
    gate (which reads the nominated pair from whatever dict aioice keeps)."""

    async def plain_dict(stack: Stack) -> None:
        for connection in (stack.a, stack.b):
            connection._nominated = dict(connection._nominated)

    with caplog.at_level(logging.WARNING, logger="webrtc_secure.ice"):
        stack = await _connected(plain_dict)
    stacks.append(stack)
    assert any("fast paths off" in r.getMessage() for r in caplog.records)
    assert stack.ta is not None and stack.tb is not None
    for transport, connection in ((stack.ta, stack.a), (stack.tb, stack.b)):
        assert not transport.fast_send and not transport.fast_receive
        protocol = _nominated_protocol(connection)
        assert vars(protocol)["datagram_received"] is connection.gate(protocol)
    stack.ta.sendto(DTLS)
    stack.tb.sendto(b"\x80\x00rtp")
    await _until(lambda: stack.rb.received == [DTLS] and stack.ra.received == [b"\x80\x00rtp"])
    assert stack.slow == {"a": 0, "b": 0}


async def test_protocol_already_wrapped_keeps_the_gate_path(stacks: list[Stack]) -> None:
    """Someone else's wrapper over the gate: not replaced by the fast path; what it
    passes on still goes through the gate's source check."""

    async def wrapped(stack: Stack) -> None:
        protocol = _nominated_protocol(stack.a)
        gate = protocol.datagram_received

        def theirs(data: bytes, addr: Any) -> None:
            gate(data, addr)

        protocol.datagram_received = theirs  # type: ignore[method-assign,assignment]

    stack = await _connected(wrapped)
    stacks.append(stack)
    assert stack.ta is not None and stack.tb is not None
    assert stack.ta.fast_send and not stack.ta.fast_receive
    assert stack.tb.fast_receive
    stack.tb.sendto(DTLS)
    await _until(lambda: stack.ra.received == [DTLS])
    assert stack.slow["a"] == 0


def test_only_host_stun_protocols_on_a_socket_transport_are_wrapped() -> None:
    """TURN-relayed pairs (aioice's TurnTransport, a relay candidate) and anything
    that is not aioice's own StunProtocol keep aioice's receive path."""

    class Socketish(asyncio.BaseTransport):
        pass

    def protocol(kind: str, transport: object, cls: Any = aioice.ice.StunProtocol) -> Any:
        stun = cls.__new__(cls)  # no event loop needed for the attributes we look at
        stun.local_candidate = aioice.Candidate(
            foundation="f",
            component=1,
            transport="udp",
            priority=1,
            host="127.0.0.1",
            port=9,
            type=kind,
        )
        stun.transport = transport
        return stun

    class Derived(aioice.ice.StunProtocol):
        pass

    assert ice._hookable(protocol("host", Socketish()))
    assert not ice._hookable(protocol("relay", Socketish()))
    assert not ice._hookable(protocol("host", object()))  # TurnTransport is no transport
    turn_like = aioice.turn.TurnTransport.__new__(aioice.turn.TurnTransport)
    assert not ice._hookable(protocol("host", turn_like))
    assert not ice._hookable(protocol("host", Socketish(), Derived))


async def test_data_on_a_socket_that_is_not_the_nominated_one_is_dropped(
    stacks: list[Stack],
) -> None:
    """A second host socket of a: not the nominated 5-tuple, so its non-STUN datagrams
    are counted and dropped, never queued or delivered."""
    a, b = await _pair()
    extra = await a.get_component_candidates(ice.COMPONENT, ["127.0.0.1"])
    assert extra
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
    stack = Stack(a, b)
    stack.open()
    stacks.append(stack)
    nominated = _nominated_protocol(a)
    other = next(p for p in a._protocols if p is not nominated)
    assert vars(other)["datagram_received"] is a.gate(other)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"\x16elsewhere", other.transport.get_extra_info("sockname"))
        await _until(lambda: a.dropped["unexpected_source"] == 1)
    finally:
        sender.close()
    assert stack.ra.received == [] and stack.slow["a"] == 0


async def test_a_new_nominated_pair_rebinds_both_fast_paths(stacks: list[Stack]) -> None:
    """A renomination (aioice sets _nominated again) moves the cached send target and
    the receive wrapper; clearing the dict (aioice's close) turns both off."""
    a, b = await _pair()
    extra = await a.get_component_candidates(ice.COMPONENT, ["127.0.0.1"])
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
    stack = Stack(a, b)
    stack.open()
    stacks.append(stack)
    assert stack.ta is not None and stack.tb is not None
    first = a.nominated_pair
    assert first is not None
    other = next(p for p in a._protocols if p.local_candidate is extra[0])
    # b learns a's new address as a peer-reflexive candidate when a sends from it
    listener = Recorder()
    loop = asyncio.get_running_loop()
    sink, _ = await loop.create_datagram_endpoint(lambda: listener, local_addr=("127.0.0.1", 0))
    try:
        host, port = sink.get_extra_info("sockname")[:2]
        remote = aioice.Candidate(
            foundation="sink",
            component=1,
            transport="udp",
            priority=1,
            host=host,
            port=port,
            type="host",
        )
        a._nominated[ice.COMPONENT] = aioice.ice.CandidatePair(other, remote)
        assert vars(first.protocol)["datagram_received"] is a.gate(first.protocol)  # restored
        assert "datagram_received" in vars(other)
        stack.ta.sendto(DTLS)
        await _until(lambda: listener.received == [DTLS])
        sink.sendto(b"\x16from sink", other.transport.get_extra_info("sockname"))
        await _until(lambda: stack.ra.received == [b"\x16from sink"])
        assert stack.slow["a"] == 0
        # the old pair is no longer the path: b's datagrams on either socket are dropped
        assert stack.tb.fast_send
        stack.tb.sendto(b"\x16old pair")
        pair_b = stack.b.nominated_pair
        assert pair_b is not None
        pair_b.protocol.transport.sendto(b"\x16old", other.transport.get_extra_info("sockname"))
        await _until(lambda: a.dropped["unexpected_source"] == 2)
        assert stack.ra.received == [b"\x16from sink"]
        a._nominated.clear()
        assert not stack.ta.fast_send and not stack.ta.fast_receive
        assert vars(other)["datagram_received"] is a.gate(other)
        stack.ta.sendto(DTLS)  # no pair: dropped, no error
    finally:
        sink.close()


async def test_close_unwraps_and_aioice_close_is_seen_as_loss(stacks: list[Stack]) -> None:
    stack = await _connected()
    stacks.append(stack)
    assert stack.ta is not None and stack.tb is not None
    protocol_a = _nominated_protocol(stack.a)
    stack.ta.close()
    assert stack.ta.is_closing() and not stack.ta.fast_send and not stack.ta.fast_receive
    assert vars(protocol_a)["datagram_received"] is stack.a.gate(protocol_a)  # the gate again
    assert stack.a.nomination_watchers == []
    assert stack.ra.lost == [None]
    stack.ta.sendto(DTLS)  # after close: nothing, no error
    # aioice closing under b (what consent expiry does) ends b's transport
    protocol_b = _nominated_protocol(stack.b)
    await stack.b.close()
    await asyncio.wait_for(stack.tb.wait_closed(), 5)
    assert len(stack.rb.lost) == 1 and isinstance(stack.rb.lost[0], ConnectionError)
    assert vars(protocol_b).get("datagram_received") in (None, stack.b.gate(protocol_b))
    assert stack.b.nomination_watchers == []


async def test_close_leaves_a_wrapper_that_is_not_ours(stacks: list[Stack]) -> None:
    stack = await _connected()
    stacks.append(stack)
    assert stack.ta is not None
    protocol = _nominated_protocol(stack.a)

    def someone_elses(data: bytes, addr: Any) -> None:
        pass

    protocol.datagram_received = someone_elses  # type: ignore[method-assign,assignment]
    stack.ta.close()
    assert vars(protocol).get("datagram_received") is someone_elses


async def test_send_path_follows_the_nominated_pair_and_ends_with_close(
    stacks: list[Stack],
) -> None:
    """send_path tells its listener the (sendto, address) that sendto() itself uses,
    at once and at every change: a renomination, the pair's loss, close."""
    a, b = await _pair()
    extra = await a.get_component_candidates(ice.COMPONENT, ["127.0.0.1"])
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
    stack = Stack(a, b)
    stack.open()
    stacks.append(stack)
    assert stack.ta is not None and stack.tb is not None
    told: list[ice.SendPath | None] = []
    stack.tb.send_path(told.append)
    pair_b = b.nominated_pair
    assert pair_b is not None and len(told) == 1 and told[0] is not None
    sendto, remote = told[0]
    assert remote == pair_b.remote_addr
    sendto(DTLS, remote)  # what stack.tb.sendto(DTLS) sends
    await _until(lambda: stack.ra.received == [DTLS])
    # a renomination on a's side: the listener hears of the new socket and address
    seen: list[ice.SendPath | None] = []
    stack.ta.send_path(seen.append)
    other = next(p for p in a._protocols if p.local_candidate is extra[0])
    pair_a = a.nominated_pair
    assert pair_a is not None
    a._nominated[ice.COMPONENT] = aioice.ice.CandidatePair(other, pair_a.remote_candidate)
    assert len(seen) == 2 and seen[1] is not None
    assert seen[1][1] == pair_a.remote_addr and ice.sending_transport(seen[1][0]) is other.transport
    a._nominated.clear()
    assert seen[-1] is None  # no pair: no fast path
    stack.tb.close()
    assert told[-1] is None


class BlockingSocket:
    """A socket double for asyncio's transport: records what ``sendto`` sent, raises
    ``BlockingIOError`` while ``blocked`` and ``error`` when it is set; everything
    else is the real socket's."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.sent: list[tuple[bytes, Any]] = []
        self.blocked = False
        self.error: OSError | None = None

    def sendto(self, data: bytes, addr: Any) -> int:
        if self.error is not None:
            raise self.error
        if self.blocked:
            raise BlockingIOError
        self.sent.append((bytes(data), addr))
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.asyncio(loop_factories=["asyncio"])  # asyncio's selector transport
async def test_direct_sendto_sends_what_asyncio_would_in_the_same_order(
    stacks: list[Stack],
) -> None:
    """``ice.direct_sendto`` on asyncio's transport: the socket's own sendto while
    nothing waits in the transport; a socket that would block hands the datagram to
    asyncio's sendto, which queues it, and the datagrams after it queue behind it
    (order kept) until asyncio's writer sends them; then straight to the socket again.
    An empty datagram is not sent (asyncio's rule); a socket error reaches the
    protocol's error_received, as asyncio hands it."""
    stack = await _connected()
    stacks.append(stack)
    transport: Any = _nominated_protocol(stack.a).transport
    to = ("127.0.0.1", 9)
    fake = BlockingSocket(transport._sock)
    real, transport._sock = transport._sock, fake
    try:
        send = ice.direct_sendto(transport)
        assert send != transport.sendto and ice.sending_transport(send) is transport
        send(b"\x16one", to)
        assert fake.sent == [(b"\x16one", to)] and not transport._buffer
        fake.blocked = True
        send(b"\x16two", to)
        fake.blocked = False
        send(b"\x16three", to)  # behind "two", which waits in asyncio's queue
        assert fake.sent == [(b"\x16one", to)]
        assert list(transport._buffer) == [(b"\x16two", to), (b"\x16three", to)]
        transport._sendto_ready()  # asyncio's writer: the socket takes them now
        assert not transport._buffer
        send(b"\x16four", to)
        send(b"", to)
        sent = [data for data, _ in fake.sent]
        assert sent == [b"\x16one", b"\x16two", b"\x16three", b"\x16four"]
        errors: list[Exception] = []
        transport._protocol.error_received = errors.append
        fake.error = ConnectionRefusedError(111, "refused")
        send(b"\x16five", to)
        assert errors == [fake.error] and not transport._buffer
    finally:
        transport._sock = real
        vars(transport._protocol).pop("error_received", None)


async def test_direct_sendto_is_the_transports_own_elsewhere(stacks: list[Stack]) -> None:
    """On uvloop (its transport's sendto is C already) and for any transport but
    asyncio's selector datagram transport of an unconnected socket, the send fast path
    is the transport's own ``sendto``."""
    stack = await _connected()
    stacks.append(stack)
    transport: Any = _nominated_protocol(stack.a).transport
    send = ice.direct_sendto(transport)
    if loops.running_loop_name() == "asyncio":
        assert send != transport.sendto

        class Connected:  # a transport of another class
            def sendto(self, data: bytes, addr: Any = None) -> None:
                pass

        other = Connected()
        assert ice.direct_sendto(other) == other.sendto
    else:
        assert send == transport.sendto
