"""SctpTransport, the asyncio shell of the association, between two real SecurePeers on
loopback: where a message and its answer go within one loop iteration.

A DATA chunk that arrives for an open channel reaches the ``message`` handlers while
the datagram that carried it is being handled (no deferral to a later iteration); what
a handler sends leaves before that handling returns, in one packet with the SACK the
arrival made due; several sends of one handler share that packet; a send from a task
(outside any handler) leaves before ``send()`` returns. These are statements about
order and packets, not about time: nothing here measures a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from webrtc_secure import DataChannel, SecurePeer
from webrtc_secure.sctp.chunks import ChunkType
from webrtc_secure.sctp.packet import parse_packet

HOST = ["127.0.0.1"]

pytestmark = pytest.mark.both_loops
DATA_TYPES = {ChunkType.DATA, ChunkType.I_DATA}


class Wire:
    """Watches one peer: the SCTP packets it sends (before DTLS protects them) and
    whether a datagram is being handled at the time."""

    def __init__(self, peer: SecurePeer, use_ice: bool) -> None:
        self.peer = peer
        self.receiving = 0  # > 0 while the peer's datagram handler runs
        self.log: list[tuple[str, Any]] = []
        # over ICE the nominated pair's socket calls peer._ice_datagram_received
        # (taken from the peer when ICE hooks the socket, after this), which hands
        # DTLS to the DTLS transport itself; plain UDP's protocol calls
        # peer._datagram_received
        name = "_ice_datagram_received" if use_ice else "_datagram_received"
        received = getattr(peer, name)

        def datagram_received(data: bytes, addr: Any = None) -> None:
            self.receiving += 1
            self.log.append(("datagram in", len(data)))
            try:
                received(data, addr)
            finally:
                self.receiving -= 1
                self.log.append(("datagram done", None))

        # called for every datagram (an instance attribute over the method)
        setattr(peer, name, datagram_received)

    def watch_sctp(self) -> None:
        sctp = self.peer._sctp
        assert sctp is not None
        send = sctp._send
        send_many = sctp._send_many

        def log(packet: bytes) -> None:
            chunks = parse_packet(packet, allow_zero_checksum=True).chunks
            self.log.append(("packet out", (tuple(c.type for c in chunks), self.receiving)))

        def sctp_send(packet: bytes) -> None:
            log(packet)
            send(packet)

        def sctp_send_many(packets: list[bytes]) -> int:
            # the peer's transport hands a flush's packets to DTLS in one call
            assert send_many is not None
            for packet in packets:
                log(packet)
            return send_many(packets)

        sctp._send = sctp_send
        if send_many is not None:
            sctp._send_many = sctp_send_many

    def packets(self) -> list[tuple[tuple[int, ...], int]]:
        return [value for what, value in self.log if what == "packet out"]


async def _open_pair(
    use_ice: bool,
) -> tuple[SecurePeer, SecurePeer, DataChannel, DataChannel, Wire, Wire]:
    a = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    b = SecurePeer(host_addresses=HOST, use_ice=use_ice)
    wire_a, wire_b = Wire(a, use_ice), Wire(b, use_ice)
    remote: asyncio.Future[DataChannel] = asyncio.get_running_loop().create_future()
    b.on("datachannel", lambda channel: remote.done() or remote.set_result(channel))
    channel = a.create_data_channel("rtt")
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 10)
    await asyncio.wait_for(channel.wait_open(), 10)
    theirs = await asyncio.wait_for(remote, 10)
    await asyncio.wait_for(theirs.wait_open(), 10)
    await _quiet(a, b)
    wire_a.watch_sctp()
    wire_b.watch_sctp()
    return a, b, channel, theirs, wire_a, wire_b


async def _quiet(a: SecurePeer, b: SecurePeer) -> None:
    """Until nothing is in flight either way (DCEP acknowledged, SACKs sent)."""

    def idle(peer: SecurePeer) -> bool:
        sctp = peer._sctp
        assert sctp is not None
        retransmit = sctp.association._retransmit
        return retransmit is not None and retransmit.flight_size == 0

    async def poll() -> None:
        while not (idle(a) and idle(b)):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 10)


async def _until(predicate: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), 10)


@pytest.mark.parametrize("use_ice", [True, False], ids=["ice", "udp"])
async def test_echo_leaves_while_the_message_datagram_is_handled(use_ice: bool) -> None:
    a, b, channel, theirs, wire_a, wire_b = await _open_pair(use_ice)
    try:
        seen: list[tuple[bytes, int]] = []

        def echo(message: bytes) -> None:
            seen.append((message, wire_b.receiving))
            theirs.send(message)

        theirs.on("message", echo)
        echoes: list[bytes] = []
        channel.on("message", echoes.append)
        for i in range(3):
            channel.send(bytes([i]) * 100)
            # the send from this task left before send() returned: one packet of DATA
            assert wire_a.packets()[-1][0][-1] in DATA_TYPES
            await _until(lambda i=i: len(echoes) == i + 1)
        assert echoes == [bytes([i]) * 100 for i in range(3)]
        # delivered while B handled the datagram that carried it ...
        assert [depth for _, depth in seen] == [1, 1, 1]
        # ... and answered before that handling returned: one packet per echo, with the
        # SACK of the message's DATA chunk in front of the echo's DATA chunk
        echo_packets = [p for p in wire_b.packets() if set(p[0]) & DATA_TYPES]
        assert len(echo_packets) == 3
        for types, depth in echo_packets:
            assert depth == 1
            assert types[0] == ChunkType.SACK and types[-1] in DATA_TYPES
        # nothing else went out from B in between (no separate SACK packet)
        assert len(wire_b.packets()) == 3
    finally:
        await a.close()
        await b.close()


async def test_sends_of_one_handler_share_one_packet_with_the_sack() -> None:
    a, b, channel, theirs, _wire_a, wire_b = await _open_pair(use_ice=True)
    try:

        def answer_three(message: bytes) -> None:
            for i in range(3):
                theirs.send(message + bytes([i]))

        theirs.on("message", answer_three)
        answers: list[bytes] = []
        channel.on("message", answers.append)
        channel.send(b"q" * 50)
        await _until(lambda: len(answers) == 3)
        assert answers == [b"q" * 50 + bytes([i]) for i in range(3)]
        (types, depth), *rest = wire_b.packets()
        assert rest == []
        assert depth == 1
        assert types[0] == ChunkType.SACK
        assert len([t for t in types if t in DATA_TYPES]) == 3
    finally:
        await a.close()
        await b.close()


async def test_a_large_answer_from_a_handler_still_leaves_whole() -> None:
    """A handler's send larger than one packet: all of it within the cwnd leaves during
    the handling, the rest on SACKs; the remote gets it intact."""
    a, b, channel, theirs, _wire_a, wire_b = await _open_pair(use_ice=False)
    try:
        big = bytes(range(256)) * 256  # 64 KiB
        theirs.on("message", lambda message: theirs.send(big))
        answers: list[bytes] = []
        channel.on("message", answers.append)
        channel.send(b"go")
        await _until(lambda: len(answers) == 1)
        assert answers == [big]
        first, *_ = wire_b.packets()
        assert first[1] == 1 and first[0][0] == ChunkType.SACK
    finally:
        await a.close()
        await b.close()


async def _held_packets(sctp_a: Any, channel: DataChannel, count: int) -> list[bytes]:
    """``count`` 100-octet messages from A, one packet each, held instead of sent."""
    held: list[bytes] = []
    forward, forward_many = sctp_a._send, sctp_a._send_many
    sctp_a._send = held.append  # A's packets wait here instead of going out
    sctp_a._send_many = None  # (one packet at a time, through _send)
    for i in range(count):
        channel.send(bytes([i]) * 100)
    sctp_a._send, sctp_a._send_many = forward, forward_many
    assert len(held) == count  # a send from a task leaves at once: one packet each
    return held


@pytest.mark.parametrize(
    ("coalesce", "count", "during_expected", "sacks_expected"),
    [(True, 3, 0, 1), (True, 8, 2, 2), (False, 3, 1, 2), (False, 8, 4, 4)],
    ids=["coalesced-3", "coalesced-8", "immediate-3", "immediate-8"],
)
async def test_packets_read_in_one_iteration_are_acknowledged_together(
    coalesce: bool, count: int, during_expected: int, sacks_expected: int
) -> None:
    """DATA packets handed to B in one callback, as uvloop does when it reads several
    datagrams of a socket in one iteration. Coalesced: a SACK leaves during the
    callback only every ``max_packets_per_sack`` (4) packets, and one SACK for the
    rest follows in the same iteration's queue (3 packets: none during, one after;
    8: two during, none after). Immediate (``coalesce=False``): a SACK every second
    packet during the callback (the third packet's waits for the delayed-ack timer).
    The messages delivered are the same either way."""
    a, b, channel, theirs, _wire_a, wire_b = await _open_pair(use_ice=False)
    sctp_a, sctp_b = a._sctp, b._sctp
    assert sctp_a is not None and sctp_b is not None
    try:
        sctp_b.coalesce = coalesce
        assert sctp_b.max_packets_per_sack == 4  # the default
        held = await _held_packets(sctp_a, channel, count)
        got: list[bytes] = []
        theirs.on("message", got.append)
        during: list[int] = []

        def deliver_all() -> None:
            for packet in held:
                sctp_b.datagram_received(packet)
            during.append(len(wire_b.packets()))

        asyncio.get_running_loop().call_soon(deliver_all)
        await _until(lambda: len(got) == count)
        assert got == [bytes([i]) * 100 for i in range(count)]  # all in the callback
        await _until(lambda: sctp_a.association._retransmit is not None
                     and sctp_a.association._retransmit.flight_size == 0)
        sacks = [types for types, _ in wire_b.packets()]
        assert all(types == (ChunkType.SACK,) for types in sacks)
        assert during == [during_expected] and len(sacks) == sacks_expected
    finally:
        await a.close()
        await b.close()


async def test_a_batch_with_a_gap_is_acknowledged_at_once_per_packet() -> None:
    """Coalescing never holds back the SACKs that report a gap (RFC 9260 6.7): the
    sender's fast retransmit counts one report per SACK. Packets 1, 3 and 4 of four
    arrive in one callback: packet 1 waits for the batch's flush, packets 3 and 4 each
    send a SACK with a gap block at once. Packet 2 then arrives alone and its SACK
    (no gaps left) acknowledges all four."""
    a, b, channel, theirs, _wire_a, _wire_b = await _open_pair(use_ice=False)
    sctp_a, sctp_b = a._sctp, b._sctp
    assert sctp_a is not None and sctp_b is not None
    sent: list[bytes] = []
    watched = sctp_b._send_many
    assert watched is not None

    def keep(packets: list[bytes]) -> int:
        sent.extend(packets)
        return watched(packets)

    sctp_b._send_many = keep
    try:
        held = await _held_packets(sctp_a, channel, 4)
        got: list[bytes] = []
        theirs.on("message", got.append)
        during: list[int] = []

        def deliver_with_a_gap() -> None:
            for packet in (held[0], held[2], held[3]):
                sctp_b.datagram_received(packet)
            during.append(len(sent))

        asyncio.get_running_loop().call_soon(deliver_with_a_gap)
        await _until(lambda: bool(during))
        assert during == [2]
        gap_blocks = [
            len(chunk.gap_blocks)
            for packet in sent
            for chunk in parse_packet(packet, allow_zero_checksum=True).chunks
        ]
        assert gap_blocks == [1, 1]
        asyncio.get_running_loop().call_soon(sctp_b.datagram_received, held[1])
        await _until(lambda: len(got) == 4)
        assert got == [bytes([i]) * 100 for i in range(4)]
        await _until(lambda: sctp_a.association._retransmit is not None
                     and sctp_a.association._retransmit.flight_size == 0)
    finally:
        await a.close()
        await b.close()


async def test_a_queued_flush_after_the_path_closed_sends_nothing() -> None:
    """Two DATA packets make a SACK due at B, queued for later in the iteration; the
    DTLS path goes away (abort) before it runs: nothing leaves."""
    a, b, channel, theirs, _wire_a, wire_b = await _open_pair(use_ice=False)
    sctp_a, sctp_b = a._sctp, b._sctp
    assert sctp_a is not None and sctp_b is not None
    try:
        sctp_b.coalesce = True  # the default
        held: list[bytes] = []
        forward, forward_many = sctp_a._send, sctp_a._send_many
        sctp_a._send = held.append
        sctp_a._send_many = None  # (one packet at a time, through _send)
        channel.send(b"x" * 10)
        channel.send(b"y" * 10)
        sctp_a._send, sctp_a._send_many = forward, forward_many
        got: list[bytes] = []
        theirs.on("message", got.append)
        queued: list[bool] = []

        def deliver_then_abort() -> None:
            for packet in held:
                sctp_b.datagram_received(packet)
            queued.append(sctp_b._deferred is not None)
            sctp_b.abort(None)

        asyncio.get_running_loop().call_soon(deliver_then_abort)
        await _until(lambda: bool(queued))
        for _ in range(3):
            await asyncio.sleep(0)
        assert got == [b"x" * 10, b"y" * 10]
        assert queued == [True]
        assert wire_b.packets() == []
    finally:
        await a.close()
        await b.close()


async def test_coalescing_is_on_by_default_on_both_loops() -> None:
    """uvloop reads up to 32 datagrams of a socket per iteration, and so does the ICE
    transport on asyncio's loop (``ice.batch_reads``): coalescing on by default."""
    a, b, _channel, _theirs, _wire_a, _wire_b = await _open_pair(use_ice=False)
    try:
        for peer in (a, b):
            assert peer._sctp is not None
            assert peer._sctp.coalesce is True
    finally:
        await a.close()
        await b.close()


async def test_a_flush_goes_to_dtls_in_one_call_as_one_record_per_packet() -> None:
    """The transport hands a flush's packets to ``DtlsTransport.send_many``: each
    becomes one record, in order; once DTLS is closed, each is refused and counted
    (no exception reaches the association's flush)."""
    a, b, channel, _theirs, wire_a, _wire_b = await _open_pair(use_ice=False)
    try:
        dtls_a, dtls_b = a._dtls, b._dtls
        assert dtls_a is not None and dtls_b is not None
        sctp_a = a._sctp
        assert sctp_a is not None and sctp_a._send_many is not None

        def one_by_one(packet: bytes) -> None:
            raise AssertionError("a packet went through _send, not send_many")

        sctp_a._send = one_by_one
        channel.send(b"m")
        assert [types for types, _ in wire_a.packets()][-1][-1] in DATA_TYPES
        await _quiet(a, b)
        records: list[bytes] = []
        dtls_b.on_data = records.append  # B's records come here instead of to SCTP
        sent_before = dtls_a.connection.stats.datagrams_sent
        assert dtls_a.send_many([b"one", b"two", b"three"]) == 0
        assert dtls_a.connection.stats.datagrams_sent == sent_before + 3
        await _until(lambda: len(records) == 3)
        assert records == [b"one", b"two", b"three"]
        dtls_a.connection.close()
        assert dtls_a.send_many([b"four", b"five"]) == 2
    finally:
        await a.close()
        await b.close()


async def test_a_send_from_a_bufferedamountlow_handler_leaves_before_send_returns() -> None:
    """A flush raises BufferedAmountLow; the service hands it out and flushes again
    only when the association has something to send then: a handler that sends from
    there makes it, and its message leaves before the outer send() returns."""
    a, b, channel, theirs, wire_a, _wire_b = await _open_pair(use_ice=True)
    try:
        more = [b"second"]

        def low() -> None:
            if more:
                channel.send(more.pop())

        channel.on("bufferedamountlow", low)
        got: list[bytes] = []
        theirs.on("message", got.append)
        before = len(wire_a.packets())
        channel.send(b"first")
        data_packets = [t for t, _ in wire_a.packets()[before:] if set(t) & DATA_TYPES]
        assert len(data_packets) == 2  # "first", then "second" from the handler
        assert channel.buffered_amount == 0
        await _until(lambda: len(got) == 2)
        assert got == [b"first", b"second"]
    finally:
        await a.close()
        await b.close()


async def test_a_packet_nobody_answers_arms_the_timer_for_its_delayed_sack() -> None:
    """One DATA packet with no answer: its SACK is delayed (RFC 9260 6.2), the queued
    flush finds nothing to send and arms the timer, and the SACK leaves on it."""
    a, b, channel, theirs, _wire_a, wire_b = await _open_pair(use_ice=False)
    sctp_a, sctp_b = a._sctp, b._sctp
    assert sctp_a is not None and sctp_b is not None
    try:
        got: list[bytes] = []
        theirs.on("message", got.append)
        channel.send(b"lonely")
        await _until(lambda: got == [b"lonely"] and sctp_b._deferred is None)
        assert wire_b.packets() == []  # no SACK yet: delayed
        assert sctp_b.association.get_timer() is not None
        assert sctp_b._timer is not None and sctp_b._timer_when is not None
        assert sctp_b._timer_when <= sctp_b.association.get_timer()  # type: ignore[operator]
        await _quiet(a, b)  # A's flight drains: the SACK went, on the timer
        assert [types for types, _ in wire_b.packets()] == [(ChunkType.SACK,)]
    finally:
        await a.close()
        await b.close()
