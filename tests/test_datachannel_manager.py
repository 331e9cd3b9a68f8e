"""ChannelManager and DataChannel against a recording stand-in for the association.

The stand-in only records what the channels ask of the association (sends, resets,
thresholds) and reports a settable buffered amount; it is a unit-test double for the
channel logic (stream ids, DCEP, PPIDs, sizes, the close handshake). The real
association and real peers are exercised in tests/test_datachannel_peer.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from webrtc_secure.datachannel import (
    ChannelManager,
    ChannelType,
    DataChannel,
    DataChannelAck,
    DataChannelOpen,
    Ppid,
    parse_dcep,
)
from webrtc_secure.errors import (
    ChannelIdInUse,
    ChannelMessageTooLarge,
    InvalidChannelParameters,
    InvalidChannelState,
    WebrtcSecureError,
)


@dataclass
class Sent:
    stream_id: int
    ppid: int
    data: bytes
    ordered: bool
    max_retransmits: int | None
    lifetime: float | None


@dataclass
class RecordingAssociation:
    sent: list[Sent] = field(default_factory=list)
    resets: list[tuple[int, ...]] = field(default_factory=list)
    thresholds: dict[int, int] = field(default_factory=dict)
    buffered: dict[int, int] = field(default_factory=dict)
    fail_sends: bool = False

    def send(
        self,
        stream_id: int,
        ppid: int,
        data: bytes,
        now: float,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        lifetime: float | None = None,
    ) -> None:
        if self.fail_sends:
            raise WebrtcSecureError("send buffer full")
        self.sent.append(Sent(stream_id, ppid, data, ordered, max_retransmits, lifetime))

    def buffered_amount(self, stream_id: int) -> int:
        return self.buffered.get(stream_id, 0)

    def set_buffered_amount_low_threshold(self, stream_id: int, threshold: int) -> None:
        self.thresholds[stream_id] = threshold

    def reset_streams(self, stream_ids: Sequence[int], now: float) -> None:
        self.resets.append(tuple(stream_ids))


class Harness:
    def __init__(self, *, remote_max: int = 65536, local_max: int = 262144) -> None:
        self.assoc = RecordingAssociation()
        self.deferred: list[Callable[[], None]] = []
        self.announced: list[DataChannel] = []
        self.flushes = 0
        self.manager = ChannelManager(
            now=lambda: 1.0,
            flush=self._flush,
            call_soon=self.deferred.append,
            on_datachannel=self.announced.append,
            local_max_message_size=local_max,
            remote_max_message_size=remote_max,
        )

    def _flush(self) -> None:
        self.flushes += 1

    def run_deferred(self) -> None:
        while self.deferred:
            self.deferred.pop(0)()

    def up(self, *, client: bool = True) -> None:
        self.manager.attach(self.assoc, is_dtls_client=client)
        self.manager.association_established()
        self.run_deferred()


def events(channel: DataChannel) -> list[tuple[str, Any]]:
    log: list[tuple[str, Any]] = []
    for name in ("open", "close", "bufferedamountlow"):
        channel.on(name, lambda name=name: log.append((name, None)))
    channel.on("message", lambda value: log.append(("message", value)))
    channel.on("error", lambda error: log.append(("error", error)))
    return log


def test_channel_before_connect_opens_when_association_is_up() -> None:
    h = Harness()
    channel = h.manager.create_data_channel("chat", protocol="json")
    log = events(channel)
    assert channel.ready_state == "connecting" and channel.id is None
    with pytest.raises(InvalidChannelState):
        channel.send("too early")
    h.manager.attach(h.assoc, is_dtls_client=True)
    assert channel.id == 0 and h.assoc.sent == []
    h.manager.association_established()
    assert channel.ready_state == "open"
    assert log == []  # the open event is deferred, as a browser queues a task
    h.run_deferred()
    assert log == [("open", None)]
    [open_message] = h.assoc.sent
    assert (open_message.stream_id, open_message.ppid, open_message.ordered) == (0, 50, True)
    message = parse_dcep(open_message.data)
    assert message == DataChannelOpen(ChannelType.RELIABLE, 256, 0, "chat", "json")


@pytest.mark.parametrize(("client", "ids"), [(True, [0, 2, 4]), (False, [1, 3, 5])])
def test_stream_ids_follow_the_dtls_role(client: bool, ids: list[int]) -> None:
    h = Harness()
    first = h.manager.create_data_channel("a")
    h.up(client=client)
    later = [h.manager.create_data_channel(label) for label in "bc"]
    assert [first.id, *(c.id for c in later)] == ids


def test_closed_id_is_reused_only_after_both_resets() -> None:
    h = Harness()
    h.up(client=True)
    a = h.manager.create_data_channel("a")
    a.close()
    assert h.manager.create_data_channel("b").id == 2  # 0 still closing
    h.manager.outgoing_streams_reset([0])
    h.manager.incoming_streams_reset([0])
    assert a.ready_state == "closed"
    assert h.manager.create_data_channel("c").id == 0


def test_every_channel_type_in_the_open_message_and_sends() -> None:
    h = Harness()
    h.up()
    unordered = h.manager.create_data_channel("u", ordered=False, max_retransmits=0)
    timed = h.manager.create_data_channel("t", max_packet_life_time=1500)
    kinds = [parse_dcep(s.data) for s in h.assoc.sent]
    assert [k.channel_type for k in kinds if isinstance(k, DataChannelOpen)] == [
        ChannelType.PARTIAL_RELIABLE_REXMIT_UNORDERED,
        ChannelType.PARTIAL_RELIABLE_TIMED,
    ]
    h.assoc.sent.clear()
    unordered.send(b"before ack")  # RFC 8832 6: ordered until the ACK
    h.manager.message_received(unordered.id or 0, Ppid.DCEP, b"\x02")
    unordered.send(b"after ack")
    timed.send("t")
    first, second, third = h.assoc.sent
    assert (first.ordered, first.max_retransmits) == (True, 0)
    assert (second.ordered, second.max_retransmits) == (False, 0)
    assert (third.ordered, third.lifetime, third.max_retransmits) == (True, 1.5, None)


def test_ppids_for_strings_binary_and_empty_messages() -> None:
    h = Harness()
    h.up()
    channel = h.manager.create_data_channel("x")
    h.assoc.sent.clear()
    channel.send("héllo")
    channel.send(b"\x00\x01")
    channel.send("")
    channel.send(b"")
    channel.send(bytearray(b"ba"))
    assert [(s.ppid, s.data) for s in h.assoc.sent] == [
        (51, "héllo".encode()),
        (53, b"\x00\x01"),
        (56, b"\x00"),
        (57, b"\x00"),
        (53, b"ba"),
    ]
    stats = channel.stats()
    assert (stats["messages_sent"], stats["bytes_sent"]) == (5, 6 + 2 + 2)
    with pytest.raises(TypeError):
        channel.send(12)  # type: ignore[arg-type]


def test_received_ppids_become_str_and_bytes() -> None:
    h = Harness()
    h.up()
    channel = h.manager.create_data_channel("x", negotiated=True, id=7)
    log = events(channel)
    h.run_deferred()
    for ppid, data in [
        (51, "héllo".encode()),
        (53, b"\x01"),
        (56, b"\x00"),
        (57, b"\x00"),
        (54, b"par"),  # deprecated partial string, completed by the next 51
        (51, b"tial"),
        (52, b"\x01"),  # deprecated partial binary, completed by the next 53
        (53, b"\x02"),
        (99, b"unknown"),
        (51, b"\xff\xfe"),
    ]:
        h.manager.message_received(7, ppid, data)
    messages = [value for name, value in log if name == "message"]
    assert messages == ["héllo", b"\x01", "", b"", "partial", b"\x01\x02"]
    assert h.manager.dropped == {"unknown_ppid": 1, "invalid_utf8": 1}
    assert channel.stats()["messages_received"] == 6


def test_negotiated_channels_send_no_dcep() -> None:
    h = Harness()
    a = h.manager.create_data_channel("n", negotiated=True, id=5)
    h.up(client=True)  # an odd id on the client is fine when negotiated
    assert a.ready_state == "open" and a.id == 5
    assert h.assoc.sent == []
    a.send("x")
    assert h.assoc.sent[0].ordered is True
    with pytest.raises(ChannelIdInUse):
        h.manager.create_data_channel("again", negotiated=True, id=5)
    # a DCEP OPEN on the negotiated channel's stream is refused, counted
    h.manager.message_received(
        5, Ppid.DCEP, DataChannelOpen(ChannelType.RELIABLE, 0, 0, "", "").serialize()
    )
    assert h.manager.dropped["dcep_open_on_used_stream"] == 1


def test_remote_open_announces_channel_and_acks() -> None:
    h = Harness()
    h.up(client=True)
    opening = DataChannelOpen(ChannelType.PARTIAL_RELIABLE_TIMED_UNORDERED, 512, 250, "rc", "p")
    h.manager.message_received(1, Ppid.DCEP, opening.serialize())
    [channel] = h.announced
    assert (channel.id, channel.label, channel.protocol) == (1, "rc", "p")
    assert (channel.ordered, channel.max_packet_life_time, channel.max_retransmits) == (
        False,
        250,
        None,
    )
    assert channel.ready_state == "open" and channel.priority == 512
    log = events(channel)  # registered inside the announcement: still hears "open"
    h.run_deferred()
    assert log == [("open", None)]
    [ack] = h.assoc.sent
    assert (ack.stream_id, ack.ppid, parse_dcep(ack.data)) == (1, 50, DataChannelAck())
    channel.send(b"x")  # the remote side never waits for an ACK: unordered at once
    assert h.assoc.sent[-1].ordered is False


@pytest.mark.parametrize(
    ("stream_id", "data", "reason"),
    [
        (0, DataChannelOpen(ChannelType.RELIABLE, 0, 0, "", "").serialize(), "wrong_parity"),
        (65535, DataChannelOpen(ChannelType.RELIABLE, 0, 0, "", "").serialize(), "wrong_parity"),
        (1, b"\x03\x00", "dcep_malformed"),
        (1, b"\x07", "dcep_malformed"),
        (1, b"\x02", "unexpected_ack"),
    ],
)
def test_bad_dcep_is_counted_never_raised(stream_id: int, data: bytes, reason: str) -> None:
    h = Harness()
    h.up(client=True)
    h.manager.message_received(stream_id, Ppid.DCEP, data)
    assert h.announced == []
    assert any(reason in key for key in h.manager.dropped)


def test_open_before_established_and_data_without_channel_are_dropped() -> None:
    h = Harness()
    h.manager.attach(h.assoc, is_dtls_client=True)
    h.manager.message_received(
        1, Ppid.DCEP, DataChannelOpen(ChannelType.RELIABLE, 0, 0, "", "").serialize()
    )
    h.manager.association_established()
    h.manager.message_received(9, Ppid.STRING, b"nobody")
    assert h.manager.dropped == {"dcep_open_before_established": 1, "no_channel": 1}


def test_max_message_size_checked_before_anything_is_queued() -> None:
    h = Harness(remote_max=1000)
    h.up()
    channel = h.manager.create_data_channel("x")
    h.assoc.sent.clear()
    channel.send(b"x" * 1000)
    with pytest.raises(ChannelMessageTooLarge):
        channel.send(b"x" * 1001)
    with pytest.raises(ChannelMessageTooLarge):
        channel.send("é" * 501)  # 1002 bytes of UTF-8
    assert len(h.assoc.sent) == 1
    assert channel.stats()["messages_sent"] == 1


def test_zero_remote_max_message_size_means_no_limit() -> None:
    h = Harness(remote_max=0)
    h.up()
    channel = h.manager.create_data_channel("x")
    channel.send(b"x" * 1_000_000)
    assert len(h.assoc.sent[-1].data) == 1_000_000


def test_inbound_messages_above_our_limit_are_refused_and_counted() -> None:
    h = Harness(local_max=100)
    h.up()
    channel = h.manager.create_data_channel("x", negotiated=True, id=0)
    log = events(channel)
    h.manager.message_received(0, Ppid.BINARY, b"y" * 101)
    # partial pieces are bounded too: the whole message is dropped once it grows too big
    for _ in range(3):
        h.manager.message_received(0, Ppid.BINARY_PARTIAL, b"z" * 40)
    h.manager.message_received(0, Ppid.BINARY, b"end")
    h.manager.message_received(0, Ppid.BINARY, b"fine")
    h.run_deferred()
    assert [v for name, v in log if name == "message"] == [b"fine"]
    assert h.manager.dropped == {"message_too_large": 1, "partial_message_too_large": 1}
    assert channel._partial == []


def test_close_from_this_side() -> None:
    h = Harness()
    h.up()
    channel = h.manager.create_data_channel("x")
    log = events(channel)
    channel.close()
    assert channel.ready_state == "closing"
    assert h.assoc.resets == [(0,)]
    with pytest.raises(InvalidChannelState):
        channel.send("closing")
    channel.close()  # idempotent
    assert h.assoc.resets == [(0,)]
    h.manager.outgoing_streams_reset([0])
    assert channel.ready_state == "closing"  # the remote has not reset its side yet
    h.manager.message_received(0, Ppid.STRING, b"still flowing in")
    h.manager.incoming_streams_reset([0])
    assert channel.ready_state == "closed"
    h.run_deferred()
    assert log == [("open", None), ("message", "still flowing in"), ("close", None)]
    assert h.assoc.resets == [(0,)]  # the incoming reset needs no second request


def test_close_from_the_remote_side() -> None:
    h = Harness()
    h.up(client=False)
    channel = h.manager.create_data_channel("x")
    log = events(channel)
    h.run_deferred()
    h.manager.incoming_streams_reset([1, 4242])  # 4242: no channel, ignored
    assert channel.ready_state == "closing"
    assert h.assoc.resets == [(1,)]  # RFC 8831 6.7: we reset ours in turn
    h.manager.outgoing_streams_reset([1])
    assert channel.ready_state == "closed"
    h.run_deferred()
    assert log == [("open", None), ("close", None)]


def test_close_before_connect_is_immediate() -> None:
    h = Harness()
    channel = h.manager.create_data_channel("x")
    channel.close()
    assert channel.ready_state == "closed"
    h.up()
    assert h.assoc.sent == [] and h.manager.channels == []


def test_association_failure_closes_every_channel_with_error() -> None:
    h = Harness()
    h.up()
    a = h.manager.create_data_channel("a")
    b = h.manager.create_data_channel("b")
    log = events(a)
    h.run_deferred()
    failure = WebrtcSecureError("association aborted")
    h.manager.association_closed(failure)
    assert (a.ready_state, b.ready_state) == ("closed", "closed")
    h.run_deferred()
    assert log == [("open", None), ("error", failure), ("close", None)]
    with pytest.raises(InvalidChannelState):
        h.manager.create_data_channel("late")


def test_open_send_failure_closes_the_channel() -> None:
    h = Harness()
    h.up()
    h.assoc.fail_sends = True
    channel = h.manager.create_data_channel("x")
    assert channel.ready_state == "closed"


def test_buffered_amount_and_threshold() -> None:
    h = Harness()
    channel = h.manager.create_data_channel("x")
    channel.buffered_amount_low_threshold = 100
    assert channel.buffered_amount == 0
    h.up()
    assert h.assoc.thresholds == {0: 100}  # handed over once the id is known
    h.assoc.buffered[0] = 5000
    assert channel.buffered_amount == 5000
    channel.buffered_amount_low_threshold = 10
    assert h.assoc.thresholds == {0: 10}
    h.run_deferred()
    log = events(channel)
    h.manager.buffered_amount_low(0)  # only the DCEP OPEN was queued: not the user's
    assert log == []
    channel.send(b"x" * 5000)
    h.manager.buffered_amount_low(0)
    h.manager.buffered_amount_low(0)  # once per send burst
    h.manager.buffered_amount_low(99)  # no channel: ignored
    assert log == [("bufferedamountlow", None)]
    with pytest.raises(InvalidChannelParameters):
        channel.buffered_amount_low_threshold = -1


@pytest.mark.parametrize("direct", [True, False])
def test_buffered_amount_low_without_listener(direct: bool) -> None:
    """With nobody listening, the event is skipped instead of emitted (the peer's
    per-message path): a listener added later hears only the next burst's, as with
    ``emit``, whether the registry is read directly or not."""
    h = Harness()
    channel = h.manager.create_data_channel("x")
    channel._direct_dispatch = direct
    h.up()
    heard: list[str] = []
    channel.send(b"x")
    h.manager.buffered_amount_low(0)  # nobody listens: nothing called, burst consumed
    channel.on("message", lambda _value: heard.append("message"))  # another event
    h.manager.buffered_amount_low(0)  # same burst: still nothing
    channel.on("bufferedamountlow", lambda: heard.append("low"))
    assert heard == []
    channel.send(b"y")
    h.manager.buffered_amount_low(0)
    assert heard == ["low"]


async def test_wait_open_and_drain() -> None:
    h = Harness()
    channel = h.manager.create_data_channel("x")
    h.manager.attach(h.assoc, is_dtls_client=True)
    waiter = asyncio.ensure_future(channel.wait_open())
    await asyncio.sleep(0)
    assert not waiter.done()
    h.manager.association_established()
    await asyncio.wait_for(waiter, 1)
    h.assoc.buffered[0] = 10
    drained = asyncio.ensure_future(channel.drain())
    await asyncio.sleep(0)
    assert not drained.done()
    h.assoc.buffered[0] = 0
    h.manager.buffered_amount_low(0)  # wakes drain() even without a user event
    await asyncio.wait_for(drained, 1)
    h.assoc.buffered[0] = 10
    stuck = asyncio.ensure_future(channel.drain())
    await asyncio.sleep(0)
    h.manager.association_closed(None)
    with pytest.raises(InvalidChannelState):
        await asyncio.wait_for(stuck, 1)
    never = h.manager.channels
    assert never == []
    closed = Harness().manager.create_data_channel("y")
    closed.close()
    with pytest.raises(InvalidChannelState):
        await closed.wait_open()


def test_handler_errors_stay_in_the_channel() -> None:
    h = Harness()
    h.up()
    channel = h.manager.create_data_channel("x", negotiated=True, id=0)
    errors: list[BaseException] = []
    channel.on("error", errors.append)

    def boom(value: object) -> None:
        raise RuntimeError("handler bug")

    channel.on("message", boom)
    h.manager.message_received(0, Ppid.STRING, b"x")
    h.run_deferred()
    assert [type(e) for e in errors] == [RuntimeError]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retransmits": 1, "max_packet_life_time": 1},
        {"negotiated": True},
        {"id": 65535, "negotiated": True},
        {"id": -1, "negotiated": True},
        {"max_retransmits": -1},
        {"max_packet_life_time": 2**32},
        {"max_retransmits": True},
        {"protocol": "p" * 65536},
        {"priority": 70000},
    ],
)
def test_invalid_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidChannelParameters):
        Harness().manager.create_data_channel("x", **kwargs)


def test_stats() -> None:
    h = Harness()
    h.up()
    channel = h.manager.create_data_channel("s")
    channel.send(b"abc")
    stats = h.manager.stats()
    assert stats["opened_local"] == 1
    [entry] = stats["channels"]
    assert entry["label"] == "s" and entry["id"] == 0 and entry["state"] == "open"
    assert (entry["messages_sent"], entry["bytes_sent"]) == (1, 3)


def test_remote_open_close_loop_keeps_memory_bounded() -> None:
    h = Harness()
    h.up(client=True)
    opening = DataChannelOpen(ChannelType.RELIABLE, 0, 0, "churn", "").serialize()
    for _ in range(500):
        h.manager.message_received(1, Ppid.DCEP, opening)
        h.manager.incoming_streams_reset([1])  # the remote closes; we reset ours
        h.manager.outgoing_streams_reset([1])
        h.run_deferred()
    assert h.manager.opened_remote == 500 and h.manager.closed_total == 500
    stats = h.manager.stats()
    assert len(stats["channels"]) == 64 and h.manager.channels == []
    assert all(entry["state"] == "closed" for entry in stats["channels"])


# --- "message" without pyee's emit (direct dispatch) behaves as emit ----------------------


@pytest.fixture(params=[True, False], ids=["direct", "emit"])
def dispatch(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _channel(dispatch: bool) -> tuple[Harness, DataChannel]:
    h = Harness()
    h.up()
    channel = h.manager.create_data_channel("x", negotiated=True, id=0)
    h.run_deferred()
    assert channel._direct_dispatch, "pyee's registry changed: messages go through emit()"
    channel._direct_dispatch = dispatch
    return h, channel


def test_message_handlers_added_removed_and_once(dispatch: bool) -> None:
    h, channel = _channel(dispatch)
    first: list[object] = []
    second: list[object] = []
    once: list[object] = []
    channel.on("message", first.append)
    channel.once("message", once.append)

    def adds_another(value: object) -> None:
        if not second:
            channel.on("message", second.append)  # added while dispatching: next message

    channel.on("message", adds_another)
    h.manager.message_received(0, Ppid.BINARY, b"1")
    assert first == once == [b"1"] and second == []
    h.manager.message_received(0, Ppid.STRING, b"2")
    assert first == [b"1", "2"] and once == [b"1"] and second == ["2"]
    channel.remove_listener("message", first.append)
    channel.remove_listener("message", adds_another)
    h.manager.message_received(0, Ppid.BINARY, b"3")
    assert first == [b"1", "2"] and second == ["2", b"3"]
    channel.remove_all_listeners("message")
    h.manager.message_received(0, Ppid.BINARY, b"4")  # nobody listens: nothing happens
    assert channel.stats()["messages_received"] == 4


def test_a_raising_message_handler_is_an_error_event_and_the_others_run(dispatch: bool) -> None:
    h, channel = _channel(dispatch)
    errors: list[BaseException] = []
    after: list[object] = []
    channel.on("error", errors.append)

    def boom(value: object) -> None:
        raise RuntimeError("handler bug")

    channel.on("message", boom)
    channel.on("message", after.append)
    h.manager.message_received(0, Ppid.BINARY, b"x")
    assert [type(e) for e in errors] == [RuntimeError]
    assert after == [b"x"]


async def test_async_message_handler_runs_and_its_failure_is_an_error_event(
    dispatch: bool,
) -> None:
    h, channel = _channel(dispatch)
    handled: list[object] = []
    errors: list[BaseException] = []
    channel.on("error", errors.append)

    async def slow_handler(value: object) -> None:
        await asyncio.sleep(0)
        handled.append(value)
        if value == b"1":
            raise ValueError("async handler bug")

    channel.on("message", slow_handler)
    h.manager.message_received(0, Ppid.BINARY, b"1")
    h.manager.message_received(0, Ppid.BINARY, b"2")
    await channel.wait_for_complete()  # pyee tracks the scheduled handlers
    assert handled == [b"1", b"2"]
    assert [type(e) for e in errors] == [ValueError]


def test_switching_dispatch_on_a_receiving_channel_takes_effect_at_once() -> None:
    """The direct path keeps a snapshot of the handlers; turning it off (or on) after
    messages flowed drops it, and both ways deliver the same values."""
    h, channel = _channel(True)
    got: list[object] = []
    channel.on("message", got.append)
    h.manager.message_received(0, Ppid.BINARY, b"1")
    assert channel._message_handlers is not None  # the snapshot the next message uses
    channel._direct_dispatch = False
    assert channel._message_handlers is None
    h.manager.message_received(0, Ppid.STRING, b"2")
    assert channel._message_handlers is None  # emit() path: no snapshot taken
    channel._direct_dispatch = True
    h.manager.message_received(0, Ppid.BINARY, b"3")
    assert got == [b"1", "2", b"3"]


def test_a_once_handler_on_the_direct_path_hears_one_message() -> None:
    h, channel = _channel(True)
    once: list[object] = []
    always: list[object] = []
    channel.once("message", once.append)
    channel.on("message", always.append)
    for data in (b"a", b"b", b"c"):
        h.manager.message_received(0, Ppid.BINARY, data)
    assert once == [b"a"] and always == [b"a", b"b", b"c"]
    assert channel.listeners("message") == [always.append]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ordered": False},
        {"max_retransmits": 0},
        {"max_packet_life_time": 1500},
        {"ordered": False, "max_retransmits": 3},
    ],
)
def test_send_passes_the_channels_reliability_to_the_association(kwargs: dict[str, Any]) -> None:
    """A reliable ordered channel sends with the association's defaults (no keywords);
    every other kind passes its own: what the association records is the same."""
    h = Harness()
    h.up()
    channel = h.manager.create_data_channel("r", negotiated=True, id=0, **kwargs)
    h.run_deferred()
    channel.send(b"x")
    channel.send("y")
    lifetime = kwargs.get("max_packet_life_time")
    expected = (
        kwargs.get("ordered", True),
        kwargs.get("max_retransmits"),
        None if lifetime is None else lifetime / 1000.0,
    )
    assert [(s.ordered, s.max_retransmits, s.lifetime) for s in h.assoc.sent] == [expected] * 2
    assert [(s.ppid, s.data) for s in h.assoc.sent] == [(Ppid.BINARY, b"x"), (Ppid.STRING, b"y")]
    assert channel._reliable_ordered == (kwargs == {})


def test_buffered_amount_in_every_state() -> None:
    """The open channel's short path and the general one agree: the association's
    count while the channel is registered, 0 before and after."""
    h = Harness()
    channel = h.manager.create_data_channel("b")
    assert channel.buffered_amount == 0  # no association yet
    h.up()
    assert channel.ready_state == "open" and channel.id is not None
    h.assoc.buffered[channel.id] = 1234
    assert channel.buffered_amount == 1234
    channel.close()
    assert channel.ready_state == "closing" and channel.buffered_amount == 1234
    h.manager.incoming_streams_reset([channel.id])
    h.manager.outgoing_streams_reset([channel.id])
    h.run_deferred()
    assert channel.ready_state == "closed" and channel.buffered_amount == 0
