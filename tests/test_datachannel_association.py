"""Channels over two real SCTP associations, sans-I/O: a fake clock, packets handed
across directly, a seeded share of them lost. No asyncio, no DTLS: what the channel
layer and the association do together (DCEP open/ack, PPIDs, ordering, partial
reliability, the RFC 8831 6.7 close, id reuse) at 0 %, 10 % and 20 % loss.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from webrtc_secure.datachannel import ChannelManager, DataChannel
from webrtc_secure.sctp import Association, AssociationConfig
from webrtc_secure.sctp_transport import deliver_event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0


class End:
    """One side: association + channel manager, events handed over after every input."""

    def __init__(self, name: str, clock: Clock, rng: random.Random, *, client: bool) -> None:
        self.name = name
        self.clock = clock
        self.association = Association(
            AssociationConfig(random=lambda n: rng.getrandbits(8 * n).to_bytes(n, "big"))
        )
        self.deferred: list[Callable[[], None]] = []
        self.announced: list[DataChannel] = []
        self.received: dict[str, list[str | bytes]] = {}
        self.closed: list[str] = []
        self.manager = ChannelManager(
            now=lambda: clock.now,
            flush=lambda: None,  # the pump collects packets itself
            call_soon=self.deferred.append,
            on_datachannel=self._adopt,
        )
        self.manager.attach(self.association, is_dtls_client=client)

    def _adopt(self, channel: DataChannel) -> None:
        self.announced.append(channel)
        self.watch(channel)

    def watch(self, channel: DataChannel) -> DataChannel:
        inbox = self.received.setdefault(channel.label, [])
        channel.on("message", inbox.append)
        channel.on("close", lambda: self.closed.append(channel.label))
        return channel

    def create(self, label: str, **options: object) -> DataChannel:
        return self.watch(self.manager.create_data_channel(label, **options))  # type: ignore[arg-type]

    def pump(self) -> None:
        while (event := self.association.next_event()) is not None:
            deliver_event(self.manager, event)
        while self.deferred:
            self.deferred.pop(0)()


class Network:
    def __init__(self, loss: float, seed: int) -> None:
        self.clock = Clock()
        self.rng = random.Random(seed)
        self.loss = loss
        self.a = End("a", self.clock, self.rng, client=True)
        self.b = End("b", self.clock, self.rng, client=False)
        self.lost = 0

    def run(self, until: Callable[[], bool], limit: int = 200_000) -> None:
        ends = (self.a, self.b)
        for _ in range(limit):
            if until():
                return
            moved = False
            for source, target in ((self.a, self.b), (self.b, self.a)):
                for packet in source.association.datagrams_to_send(self.clock.now):
                    moved = True
                    if self.rng.random() < self.loss:
                        self.lost += 1
                        continue
                    target.association.receive_datagram(packet, self.clock.now)
                    target.pump()
            for end in ends:
                end.pump()
            if moved:
                continue
            timers = [t for end in ends if (t := end.association.get_timer()) is not None]
            if not timers:
                break
            self.clock.now = max(self.clock.now, min(timers))
            for end in ends:
                timer = end.association.get_timer()
                if timer is not None and timer <= self.clock.now:
                    end.association.handle_timer(self.clock.now)
                    end.pump()
        assert until(), "the condition never came true"

    def connect(self) -> None:
        for end in (self.a, self.b):
            end.association.connect(self.clock.now)  # both send INIT: a collision
        self.run(lambda: self.a.manager.established and self.b.manager.established)


@pytest.mark.parametrize("loss", [0.0, 0.1, 0.2])
@pytest.mark.parametrize("seed", [1, 2])
def test_channels_open_carry_and_close_under_loss(loss: float, seed: int) -> None:
    net = Network(loss, seed)
    ordered = net.a.create("ordered", protocol="p")
    # a lifetime well above what RTO backoff at 20 % loss costs (tens of fake seconds)
    timed = net.b.create("timed", ordered=False, max_packet_life_time=600_000)
    negotiated_a = net.a.create("neg", negotiated=True, id=9)
    negotiated_b = net.b.create("neg", negotiated=True, id=9)
    net.connect()
    net.run(lambda: len(net.a.announced) == 1 and len(net.b.announced) == 1)
    assert (ordered.id, timed.id) == (0, 1)  # client even, server odd
    theirs_ordered, theirs_timed = net.b.announced[0], net.a.announced[0]
    assert (theirs_ordered.label, theirs_ordered.protocol) == ("ordered", "p")
    assert (theirs_timed.ordered, theirs_timed.max_packet_life_time) == (False, 600_000)

    sent: list[str | bytes] = []
    for i in range(60):
        message: str | bytes = f"m{i}" if i % 3 else bytes([i]) * (i * 97)
        sent.append(message)
        ordered.send(message)
        timed.send(message)
        negotiated_b.send(message)
    net.run(
        lambda: len(net.b.received["ordered"]) == 60
        and len(net.a.received["timed"]) == 60
        and len(net.a.received["neg"]) == 60
    )
    assert net.b.received["ordered"] == sent  # reliable, ordered: exactly, in order
    assert net.a.received["neg"] == sent
    # unordered with a long lifetime: everything, any order
    assert sorted(map(repr, net.a.received["timed"])) == sorted(map(repr, sent))
    # acknowledged: the opener no longer sends ordered-only
    assert not ordered._awaiting_ack and not timed._awaiting_ack

    # close from the remote end of "ordered": both see close, the id comes free
    theirs_ordered.close()
    net.run(lambda: "ordered" in net.a.closed and "ordered" in net.b.closed)
    assert ordered.ready_state == theirs_ordered.ready_state == "closed"
    again = net.a.create("again")
    assert again.id == 0
    net.run(lambda: any(c.label == "again" for c in net.b.announced))
    again.send("after reuse")
    net.run(lambda: net.b.received.get("again") == ["after reuse"])
    # the other channels were untouched
    negotiated_a.send(b"still")
    net.run(lambda: net.b.received["neg"] == [b"still"])
    assert net.a.manager.dropped == net.b.manager.dropped == {}
    if loss:
        assert net.lost > 0


def test_unordered_without_retransmissions_loses_but_never_stalls() -> None:
    net = Network(0.2, 5)
    lossy = net.a.create("lossy", ordered=False, max_retransmits=0)
    reliable = net.a.create("reliable")
    net.connect()
    net.run(lambda: len(net.b.announced) == 2)
    # the ACK must be in before unordered sends go out unordered
    net.run(lambda: not lossy._awaiting_ack and not reliable._awaiting_ack)
    for i in range(200):
        lossy.send(f"l{i}")
        reliable.send(f"r{i}")
    net.run(lambda: len(net.b.received["reliable"]) == 200)
    net.run(lambda: net.a.association.buffered_amount(lossy.id or 0) == 0)
    got = net.b.received["lossy"]
    assert net.b.received["reliable"] == [f"r{i}" for i in range(200)]
    assert len(set(got)) == len(got) and set(got) <= {f"l{i}" for i in range(200)}
    assert len(got) < 200  # 20 % loss and no retransmission: some never arrive
    assert net.a.association.stats.abandoned_messages > 0


def test_both_ends_close_the_same_channel_at_once() -> None:
    net = Network(0.0, 3)
    mine = net.a.create("both")
    net.connect()
    net.run(lambda: len(net.b.announced) == 1)
    theirs = net.b.announced[0]
    mine.close()
    theirs.close()
    net.run(lambda: net.a.closed == ["both"] and net.b.closed == ["both"])
    assert net.a.manager.channels == [] and net.b.manager.channels == []
