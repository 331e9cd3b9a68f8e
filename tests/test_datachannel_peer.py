"""Data channels between two SecurePeers on loopback (ICE or plain UDP): our DCEP and
channel layer over the real SCTP association over our DTLS.

Channels opened by each side and before/after connect(), negotiated channels, every
PPID (string, binary, empty) and 256 KiB messages, unordered with maxRetransmits 0,
close from either side (RFC 8831 6.7), max-message-size both ways, buffered amount,
stats, data-only peers and a peer that refuses data channels.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from webrtc_secure import (
    ChannelMessageTooLarge,
    ConfigurationError,
    DataChannel,
    InvalidChannelState,
    PeerState,
    SecurePeer,
    SessionDescription,
    SetupRole,
)

HOST = ["127.0.0.1"]


async def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


class Inbox:
    """What one channel heard."""

    def __init__(self, channel: DataChannel) -> None:
        self.channel = channel
        self.messages: list[str | bytes] = []
        self.events: list[str] = []
        channel.on("message", self.messages.append)
        for name in ("open", "close", "bufferedamountlow"):
            channel.on(name, lambda name=name: self.events.append(name))
        channel.on("error", lambda error: self.events.append(f"error:{error!r}"))


class Pair:
    """Two peers, what each was told of remote channels, connected on demand."""

    def __init__(self, *, use_ice: bool = True, **options: Any) -> None:
        self.a = SecurePeer(host_addresses=HOST, use_ice=use_ice, **options)
        self.b = SecurePeer(host_addresses=HOST, use_ice=use_ice, **options)
        self.remote: dict[str, list[DataChannel]] = {"a": [], "b": []}
        self.inboxes: dict[int, Inbox] = {}
        self.ready: list[str] = []
        for name, peer in (("a", self.a), ("b", self.b)):
            peer.on("datachannel", lambda channel, name=name: self._adopt(name, channel))
            peer.on("datachannel-ready", lambda name=name: self.ready.append(name))

    def _adopt(self, name: str, channel: DataChannel) -> None:
        self.remote[name].append(channel)
        self.inboxes[id(channel)] = Inbox(channel)

    def create(self, side: str, label: str, **options: Any) -> DataChannel:
        """A channel on peer ``side``, heard from its creation on."""
        channel = (self.a if side == "a" else self.b).create_data_channel(label, **options)
        self.inbox(channel)
        return channel

    def inbox(self, channel: DataChannel) -> Inbox:
        if id(channel) not in self.inboxes:
            self.inboxes[id(channel)] = Inbox(channel)
        return self.inboxes[id(channel)]

    async def connect(
        self,
        offer_setup: SetupRole | None = None,
        tamper_answer: Callable[[SessionDescription], SessionDescription] | None = None,
    ) -> None:
        offer = await self.a.create_offer()
        if offer_setup is not None:
            offer = dataclasses.replace(offer, setup=offer_setup)
        answer = await self.b.create_answer(offer)
        if tamper_answer is not None:
            answer = tamper_answer(answer)
        await asyncio.gather(self.a.connect(answer), self.b.connect(offer))

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()


async def _theirs(pair: Pair, side: str, label: str) -> DataChannel:
    await _wait_for(lambda: any(c.label == label for c in pair.remote[side]))
    return next(c for c in pair.remote[side] if c.label == label)


MESSAGES: list[str | bytes] = ["hello", "héllo wörld ✓", b"\x00\x01\xff", "", b"", "x" * 2000]


@pytest.mark.parametrize("use_ice", [True, False], ids=["ice", "udp"])
@pytest.mark.parametrize("offer_setup", [None, SetupRole.ACTIVE], ids=["actpass", "active"])
async def test_channels_opened_by_each_side(use_ice: bool, offer_setup: SetupRole | None) -> None:
    pair = Pair(use_ice=use_ice)
    try:
        mine = pair.create("a", "from-a", protocol="chat")  # before connect
        assert mine.ready_state == "connecting" and mine.id is None
        inbox_a = pair.inbox(mine)
        await pair.connect(offer_setup)
        await asyncio.wait_for(mine.wait_open(), 10)
        assert sorted(pair.ready) == ["a", "b"]  # datachannel-ready: SCTP is up
        late = pair.create("b", "from-b", ordered=False, max_packet_life_time=3000)
        await asyncio.wait_for(late.wait_open(), 10)
        a_is_client = pair.a.stats()["dtls"]["role"] == "client"
        assert a_is_client is (offer_setup is SetupRole.ACTIVE)
        # RFC 8832 6: even ids for the DTLS client, odd for the server
        assert mine.id is not None and late.id is not None
        assert mine.id % 2 == (0 if a_is_client else 1)
        assert late.id % 2 == (1 if a_is_client else 0)

        theirs_b = await _theirs(pair, "b", "from-a")
        theirs_a = await _theirs(pair, "a", "from-b")
        assert (theirs_b.id, theirs_b.protocol, theirs_b.ordered) == (mine.id, "chat", True)
        assert (theirs_a.id, theirs_a.ordered, theirs_a.max_packet_life_time) == (
            late.id,
            False,
            3000,
        )
        assert theirs_a.max_retransmits is None
        for message in MESSAGES:
            mine.send(message)
            late.send(message)
        await _wait_for(lambda: len(pair.inbox(theirs_b).messages) == len(MESSAGES))
        await _wait_for(lambda: len(pair.inbox(theirs_a).messages) == len(MESSAGES))
        assert pair.inbox(theirs_b).messages == MESSAGES  # types kept: str vs bytes
        assert sorted(map(repr, pair.inbox(theirs_a).messages)) == sorted(map(repr, MESSAGES))
        # and back on the same channel
        theirs_b.send(b"reply")
        await _wait_for(lambda: inbox_a.messages == [b"reply"])
        assert inbox_a.events[:1] == ["open"]
        assert pair.inbox(theirs_b).events[:1] == ["open"]
    finally:
        await pair.close()


async def test_negotiated_channels_need_no_dcep() -> None:
    pair = Pair()
    try:
        a_side = pair.create("a", "agreed", negotiated=True, id=7)
        b_side = pair.create("b", "agreed", negotiated=True, id=7)
        await pair.connect()
        await asyncio.gather(a_side.wait_open(), b_side.wait_open())
        a_side.send("to b")
        b_side.send(b"to a")
        await _wait_for(lambda: pair.inbox(b_side).messages == ["to b"])
        await _wait_for(lambda: pair.inbox(a_side).messages == [b"to a"])
        assert pair.remote == {"a": [], "b": []}  # nothing announced: no DCEP OPEN
        # after connect too, and with an id of the "wrong" parity
        second_a = pair.create("a", "second", negotiated=True, id=10)
        second_b = pair.create("b", "second", negotiated=True, id=10)
        await asyncio.gather(second_a.wait_open(), second_b.wait_open())
        second_b.send("late")
        await _wait_for(lambda: pair.inbox(second_a).messages == ["late"])
    finally:
        await pair.close()


@pytest.mark.parametrize("kind", [str, bytes])
async def test_256_kib_messages_both_ways(kind: type) -> None:
    pair = Pair()
    try:
        channel = pair.create("a", "big")
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "big")
        size = 262144
        payload: str | bytes = "€" * (size // 3) + "a" if kind is str else bytes(
            i % 251 for i in range(size)
        )
        assert len(payload.encode() if isinstance(payload, str) else payload) <= size
        channel.send(payload)
        theirs.send(payload)
        await _wait_for(lambda: len(pair.inbox(theirs).messages) == 1, 30)
        await _wait_for(lambda: len(pair.inbox(channel).messages) == 1, 30)
        assert pair.inbox(theirs).messages[0] == payload
        assert pair.inbox(channel).messages[0] == payload
        with pytest.raises(ChannelMessageTooLarge):
            channel.send(bytes(size + 1))
    finally:
        await pair.close()


async def test_unordered_without_retransmissions() -> None:
    pair = Pair()
    try:
        channel = pair.create("a", "live", ordered=False, max_retransmits=0)
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "live")
        assert (theirs.ordered, theirs.max_retransmits) == (False, 0)
        sent = [f"n{i}" for i in range(200)]
        for message in sent:
            channel.send(message)
        # loopback loses nothing; the order may differ
        await _wait_for(lambda: len(pair.inbox(theirs).messages) == len(sent))
        assert sorted(pair.inbox(theirs).messages) == sorted(sent)  # type: ignore[type-var]
    finally:
        await pair.close()


@pytest.mark.parametrize("closer", ["opener", "other"])
async def test_close_from_either_side(closer: str) -> None:
    pair = Pair()
    try:
        channel = pair.create("a", "short")
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "short")
        first_id = channel.id
        ours_in, theirs_in = pair.inbox(channel), pair.inbox(theirs)
        (channel if closer == "opener" else theirs).close()
        await _wait_for(lambda: "close" in ours_in.events and "close" in theirs_in.events)
        assert channel.ready_state == theirs.ready_state == "closed"
        with pytest.raises(InvalidChannelState):
            channel.send("gone")
        # both resets done: the stream id is free again, and the peers stay connected
        again = pair.create("a", "again")
        await again.wait_open()
        assert again.id == first_id
        theirs_again = await _theirs(pair, "b", "again")
        again.send("works")
        await _wait_for(lambda: pair.inbox(theirs_again).messages == ["works"])
        assert pair.a.state == pair.b.state == PeerState.CONNECTED
    finally:
        await pair.close()


async def test_remote_max_message_size_is_honoured_both_ways() -> None:
    pair = Pair()

    def small(answer: SessionDescription) -> SessionDescription:
        section = answer.data_section
        assert section is not None
        section.max_message_size = 1000
        return answer

    try:
        channel = pair.create("a", "sized")
        await pair.connect(tamper_answer=small)
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "sized")
        channel.send(bytes(1000))
        with pytest.raises(ChannelMessageTooLarge):
            channel.send(bytes(1001))  # a read b's (tampered) limit: nothing queued
        await _wait_for(lambda: len(pair.inbox(theirs).messages) == 1)
        # b advertises 262144 but was told nothing smaller about a: a larger message
        # than b accepts is refused there and counted, never delivered
        theirs.send(bytes(70000))  # a's limit is 262144: fine
        await _wait_for(lambda: len(pair.inbox(channel).messages) == 1)
    finally:
        await pair.close()


@pytest.mark.parametrize("ordered", [False, True], ids=["unordered", "ordered"])
async def test_inbound_message_above_our_limit_is_refused_and_counted(ordered: bool) -> None:
    pair = Pair()

    def generous(answer: SessionDescription) -> SessionDescription:
        # a is told b accepts anything: a sends more than b's 262144
        section = answer.data_section
        assert section is not None
        section.max_message_size = 0
        return answer

    try:
        channel = pair.create("a", "flood", ordered=ordered)
        await pair.connect(tamper_answer=generous)
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "flood")
        channel.send(bytes(262144 + 4096))
        channel.send(b"small one after")
        await _wait_for(lambda: pair.inbox(theirs).messages == [b"small one after"], 10)
        stats = pair.b.stats()
        # refused by b's association while reassembling (bounded), counted there
        assert stats["sctp"]["dropped"].get("message_refused") == 1, stats["sctp"]
    finally:
        await pair.close()


async def test_buffered_amount_drain_and_low_event() -> None:
    pair = Pair()
    try:
        channel = pair.create("a", "bulk")
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "bulk")
        channel.buffered_amount_low_threshold = 65536
        for _ in range(16):
            channel.send(bytes(65536))
        assert channel.buffered_amount > 65536
        await asyncio.wait_for(channel.drain(), 30)
        assert channel.buffered_amount <= 65536
        assert "bufferedamountlow" in pair.inbox(channel).events
        await _wait_for(lambda: len(pair.inbox(theirs).messages) == 16, 30)
    finally:
        await pair.close()


async def test_stats_report_channels_and_association() -> None:
    pair = Pair()
    try:
        channel = pair.create("a", "counted", protocol="p")
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "counted")
        channel.send(b"12345")
        channel.send("678")
        await _wait_for(lambda: len(pair.inbox(theirs).messages) == 2)
        a_stats, b_stats = pair.a.stats(), pair.b.stats()
        [entry] = a_stats["datachannels"]
        assert entry["label"] == "counted" and entry["id"] == channel.id
        assert entry["state"] == "open" and entry["protocol"] == "p"
        assert (entry["messages_sent"], entry["bytes_sent"]) == (2, 8)
        [remote_entry] = b_stats["datachannels"]
        assert (remote_entry["messages_received"], remote_entry["bytes_received"]) == (2, 8)
        assert a_stats["messages_out"] == 2 and b_stats["messages_in"] == 2
        assert a_stats["sctp"]["state"] == "established"
        assert a_stats["sctp"]["messages_out"] >= 3  # the DCEP OPEN, then ours
    finally:
        await pair.close()


async def test_data_only_peers() -> None:
    pair = Pair(media_kinds=())
    try:
        channel = pair.create("a", "only data")
        await pair.connect()
        offer = pair.a.local_description
        assert offer is not None and [m.kind for m in offer.media] == ["application"]
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "only data")
        channel.send("x")
        await _wait_for(lambda: pair.inbox(theirs).messages == ["x"])
    finally:
        await pair.close()


async def test_peer_close_closes_channels_on_both_sides() -> None:
    pair = Pair()
    try:
        channel = pair.create("a", "bye")
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "bye")
        await pair.a.close()
        await _wait_for(lambda: "close" in pair.inbox(theirs).events)
        await _wait_for(lambda: "close" in pair.inbox(channel).events)
        assert channel.ready_state == theirs.ready_state == "closed"
        with pytest.raises(InvalidChannelState):
            pair.a.create_data_channel("after close")
    finally:
        await pair.close()


async def test_answer_without_data_channel_leaves_channels_connecting() -> None:
    pair = Pair()
    pair.b.data_channel = False
    try:
        channel = pair.create("a", "nobody")
        await pair.connect()
        answer_sdp = pair.b.local_description
        assert answer_sdp is not None and answer_sdp.data_section is None
        await asyncio.sleep(0.2)
        assert channel.ready_state == "connecting" and pair.ready == []
        assert "sctp" not in pair.a.stats()
    finally:
        await pair.close()
    assert channel.ready_state == "closed"


async def test_a_raising_message_handler_does_not_stop_reception() -> None:
    pair = Pair()
    try:
        channel = pair.create("a", "fragile")
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "fragile")
        errors: list[BaseException] = []
        theirs.on("error", errors.append)

        def boom(message: object) -> None:
            if message == "boom":
                raise RuntimeError("user handler bug")

        theirs.on("message", boom)
        channel.send("boom")
        channel.send("after")
        await _wait_for(lambda: pair.inbox(theirs).messages == ["boom", "after"])
        assert [type(e) for e in errors] == [RuntimeError]
        assert pair.b.state == PeerState.CONNECTED
    finally:
        await pair.close()


@pytest.mark.parametrize("answerer_snap", [True, False], ids=["snap", "answerer-without-snap"])
async def test_snap_skips_the_init_exchange(
    answerer_snap: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNAP: both descriptions carry a=sctp-init, and no INIT is ever sent; when the
    answerer does not take part, its answer has none and both ends run the INIT
    exchange."""
    from webrtc_secure.sctp import Association

    inits: list[object] = []
    real_connect = Association.connect

    def counting_connect(self: Association, now: float) -> None:
        inits.append(self)
        real_connect(self, now)

    monkeypatch.setattr(Association, "connect", counting_connect)
    pair = Pair()
    pair.b.snap = answerer_snap
    try:
        channel = pair.create("a", "snap")
        await pair.connect()
        offer, answer = pair.a.local_description, pair.b.local_description
        assert offer is not None and answer is not None
        assert offer.sctp_init is not None
        assert (answer.sctp_init is not None) is answerer_snap
        await asyncio.wait_for(channel.wait_open(), 10)
        theirs = await _theirs(pair, "b", "snap")
        channel.send("over SNAP" if answerer_snap else "over INIT")
        await _wait_for(lambda: len(pair.inbox(theirs).messages) == 1)
        assert len(inits) == (0 if answerer_snap else 2)
        assert pair.a.stats()["sctp"]["state"] == "established"
    finally:
        await pair.close()


async def test_unusable_remote_sctp_init_fails_the_channels_not_the_peer() -> None:
    pair = Pair()

    def forged(answer: SessionDescription) -> SessionDescription:
        section = answer.data_section
        assert section is not None and section.sctp_init is not None
        section.sctp_init = bytes([3, 0, 0, 32]) + bytes(28)  # a SACK chunk, not INIT
        return answer

    try:
        channel = pair.create("a", "doomed")
        await pair.connect(tamper_answer=forged)
        await _wait_for(lambda: "close" in pair.inbox(channel).events)
        assert any(e.startswith("error:") for e in pair.inbox(channel).events)
        assert channel.ready_state == "closed"
        assert pair.a.state == PeerState.CONNECTED  # media and DTLS are unaffected
    finally:
        await pair.close()


async def test_garbage_application_data_is_counted_and_the_channels_go_on() -> None:
    """DTLS application data that is not SCTP (or SCTP for other ports) is dropped by
    the association and counted; nothing reaches a channel and nothing breaks."""
    pair = Pair()
    try:
        channel = pair.create("a", "sturdy")
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "sturdy")
        dtls = pair.a._dtls
        assert dtls is not None
        for junk in (b"\x00", b"not an sctp packet at all", bytes(12), bytes(2000)):
            dtls.send(junk)
        channel.send("still fine")
        await _wait_for(lambda: pair.inbox(theirs).messages == ["still fine"])
        dropped = pair.b.stats()["sctp"]["dropped"]
        assert sum(dropped.values()) >= 4, dropped
        assert pair.b.stats()["datachannel_dropped"] == {}
    finally:
        await pair.close()


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_messages_sent_just_before_close_arrive(ordered: bool) -> None:
    """close() runs the SCTP SHUTDOWN before close_notify: 3 MiB still buffered in the
    channel (far beyond one congestion window) reach the other side, then its channel
    closes without an error."""
    pair = Pair()
    try:
        channel = pair.create("a", "last words", ordered=ordered)
        await pair.connect()
        await channel.wait_open()
        theirs = await _theirs(pair, "b", "last words")
        sent: list[str | bytes] = [bytes([i]) * 65536 for i in range(48)] + ["the end"]
        for message in sent:
            channel.send(message)
        assert channel.buffered_amount > 1_000_000  # still queued when close() starts
        await asyncio.wait_for(pair.a.close(), 30)
        inbox = pair.inbox(theirs)
        await _wait_for(lambda: "close" in inbox.events)
        if ordered:
            assert inbox.messages == sent
        else:
            assert sorted(map(repr, inbox.messages)) == sorted(map(repr, sent))
        assert not [e for e in inbox.events if e.startswith("error")], inbox.events
        assert pair.a.state == PeerState.CLOSED
        await _wait_for(lambda: pair.b.state == PeerState.CLOSED)  # close_notify came
    finally:
        await pair.close()


async def test_close_is_bounded_when_the_remote_never_answers_the_shutdown() -> None:
    """A remote whose association hears nothing (so never acknowledges nor answers
    SHUTDOWN) holds close() up for its timeout only; DTLS and ICE still close."""
    pair = Pair()
    try:
        channel = pair.create("a", "void")
        await pair.connect()
        await channel.wait_open()
        dtls_b = pair.b._dtls
        assert dtls_b is not None and pair.b._sctp is not None
        deaf: list[bytes] = []
        # what DTLS hands up (SCTP packets) goes nowhere
        dtls_b.on_data = deaf.append
        channel.send(bytes(200_000))
        await asyncio.wait_for(pair.a.close(timeout=0.2), 10)
        assert pair.a.state == PeerState.CLOSED and channel.ready_state == "closed"
        assert deaf  # the data (and SHUTDOWN retries) went out and were ignored
        await _wait_for(lambda: pair.b.state == PeerState.CLOSED)  # close_notify still sent
    finally:
        await pair.close()


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1", True])
async def test_close_timeout_is_validated(timeout: Any) -> None:
    peer = SecurePeer(host_addresses=HOST)
    try:
        with pytest.raises(ConfigurationError):
            await peer.close(timeout=timeout)
        assert peer.state == PeerState.NEW
    finally:
        await peer.close()
