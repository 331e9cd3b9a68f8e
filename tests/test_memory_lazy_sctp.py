"""SCTP and data-channel structures that an idle association never uses are made on
first use (memory per peer, issue 14): none exists on a fresh association, and once
used they behave as before (events in order, turn-taking between streams, the closed
channels kept for stats)."""

from __future__ import annotations

from tests.sctp_pair import make_pair
from tests.test_datachannel_manager import Harness
from webrtc_secure.sctp.association import Association
from webrtc_secure.sctp.events import MessageReceived


def test_fresh_association_allocates_no_event_or_turn_queue() -> None:
    association = Association()
    assert association._events is None and association._outbox._turns is None
    assert association.next_event() is None
    # every attribute __init__ sets is a slot: no instance dict is made
    assert vars(association) == {}


def test_events_and_turns_made_on_first_use_keep_their_order() -> None:
    pair = make_pair(3)
    assert pair.connect()
    assert pair.a._outbox._turns is None  # connecting queued no message
    now = pair.now
    for i in range(6):
        pair.a.send(i % 3, 51, bytes([i]) * (200 + i), now)  # three streams take turns
    assert pair.a._outbox._turns is not None
    pair.run_until(lambda: len(pair.messages("b")) == 6)
    received = pair.messages("b")
    for stream in range(3):
        data = [m.data for m in received if m.stream_id == stream]
        assert data == [bytes([i]) * (200 + i) for i in range(stream, 6, 3)]
    assert all(isinstance(m, MessageReceived) for m in received)
    assert pair.b.next_event() is None  # the pump took every event, in order
    # every attribute the queues set through a transfer is a slot
    for association in (pair.a, pair.b):
        assert vars(association) == {}
        assert association._retransmit is not None and association._receive is not None
        for part in (
            association._outbox,
            association._retransmit,
            association._receive,
            association._receive.tracker,
        ):
            assert vars(part) == {}, type(part).__name__


def test_closed_channels_kept_for_stats_once_one_closes() -> None:
    h = Harness()
    h.up()
    assert h.manager._closed is None
    channel = h.manager.create_data_channel("first")
    assert [e["label"] for e in h.manager.stats()["channels"]] == ["first"]
    channel.close()
    h.manager.outgoing_streams_reset([channel.id or 0])
    h.manager.incoming_streams_reset([channel.id or 0])
    h.run_deferred()
    h.manager.create_data_channel("second")
    stats = h.manager.stats()
    assert [(e["label"], e["state"]) for e in stats["channels"]] == [
        ("first", "closed"),
        ("second", "open"),
    ]
    assert h.manager.closed_total == 1
