"""Association extensions against itself: PR-SCTP (FORWARD-TSN / I-FORWARD-TSN,
RFC 3758 / 8260) and stream reset (RFC 6525) as RFC 8831 uses them to close data
channels."""

from __future__ import annotations

import base64
from collections import Counter

import pytest

from tests.sctp_pair import capture, chunk_types, config, healthy, make_pair
from webrtc_secure.errors import (
    InvalidAssociationState,
    MalformedSctpPacket,
    StreamResetPending,
)
from webrtc_secure.sctp.association import Association
from webrtc_secure.sctp.events import IncomingStreamsReset, MessageReceived, OutgoingStreamsReset
from webrtc_secure.sctp.packet import parse_packet


def _transmissions(seen: list[tuple[str, bytes]]) -> Counter[int]:
    """How often each DATA / I-DATA TSN went on the wire from a to b."""
    count: Counter[int] = Counter()
    for direction, data in seen:
        if direction != "a->b":
            continue
        for chunk in parse_packet(data, allow_zero_checksum=True).chunks:
            tsn = getattr(chunk, "tsn", None)
            if tsn is not None:
                count[tsn] += 1
    return count


@pytest.mark.parametrize("interleaving", [False, True])
@pytest.mark.parametrize("ordered", [False, True])
def test_max_retransmits_zero_never_retransmits_and_never_stalls(
    interleaving: bool, ordered: bool
) -> None:
    pair = make_pair(
        21,
        a=config(1, interleaving=interleaving),
        b=config(2, interleaving=interleaving),
        loss=0.2,
        reorder=0.1,
    )
    assert pair.connect()
    seen = capture(pair)
    sent = [bytes([i % 256]) * (100 + i) for i in range(200)]
    reliable = [bytes([i % 256]) * 50 for i in range(50)]
    for m in sent:
        pair.a.send(1, 51, m, pair.now, ordered=ordered, max_retransmits=0)
    for m in reliable:
        pair.a.send(2, 51, m, pair.now)
    assert pair.run_until(
        lambda: (
            len([m for m in pair.messages("b") if m.stream_id == 2]) == len(reliable)
            and pair.a._retransmit is not None
            and pair.a._retransmit.outstanding == 0
        ),
        300,
    )
    # Nothing on the partially reliable stream was sent twice.
    per_tsn = _transmissions(seen)
    pr_tsns = {
        c.tsn
        for d, data in seen
        if d == "a->b"
        for c in parse_packet(data, allow_zero_checksum=True).chunks
        if getattr(c, "stream_id", None) == 1
    }
    assert pr_tsns and all(per_tsn[t] == 1 for t in pr_tsns)
    got = [m.data for m in pair.messages("b") if m.stream_id == 1]
    assert 0 < len(got) < len(sent)  # some lost for good at 20 % loss
    assert len(set(got)) == len(got) and set(got) <= set(sent)
    if ordered:
        assert got == [m for m in sent if m in set(got)]  # still in order
    assert [m.data for m in pair.messages("b") if m.stream_id == 2] == reliable
    assert pair.a.stats.abandoned_messages > 0
    kinds = chunk_types(seen, "a->b")
    assert ("IForwardTsnChunk" if interleaving else "ForwardTsnChunk") in kinds
    assert healthy(pair.a) and healthy(pair.b)


def test_lifetime_expiry_skips_old_messages_and_others_flow() -> None:
    pair = make_pair(22, a=config(1, interleaving=False), b=config(2, interleaving=False))
    assert pair.connect()
    # The path goes dark for 3 s: everything sent then is older than its lifetime.
    start = pair.now
    for link in pair.sim.links:
        pair.sim.links[link] = type(pair.sim.links[link])(
            delay=0.01, blackhole=(start, start + 3.0)
        )
    for i in range(20):
        pair.a.send(4, 51, bytes([i]) * 3000, pair.now, lifetime=0.5)
    pair.pump.run_for(3.5)
    pair.a.send(4, 51, b"fresh", pair.now, lifetime=10.0)
    pair.a.send(5, 51, b"reliable", pair.now)
    assert pair.run_until(lambda: len(pair.messages("b")) == 2, 60)
    assert sorted(m.data for m in pair.messages("b")) == [b"fresh", b"reliable"]
    assert pair.a.stats.abandoned_messages >= 1


@pytest.mark.parametrize("loss", [0.0, 0.2])
def test_stream_reset_closes_after_queued_data_and_allows_reuse(loss: float) -> None:
    pair = make_pair(23, loss=loss, reorder=0.1)
    assert pair.connect()
    for i in range(30):
        pair.a.send(3, 51, bytes([i]) * 1500, pair.now)
    pair.a.reset_streams([3], pair.now)
    with pytest.raises(StreamResetPending):
        pair.a.send(3, 51, b"no", pair.now)
    assert pair.run_until(lambda: bool(pair.events("a", OutgoingStreamsReset)), 120)
    assert pair.events("a", OutgoingStreamsReset) == [OutgoingStreamsReset((3,))]
    events_b = [
        e for e in pair.pump.b.events if isinstance(e, MessageReceived | IncomingStreamsReset)
    ]
    # Every message sent before the reset arrives before the reset is reported.
    assert events_b[-1] == IncomingStreamsReset((3,))
    assert [e.data for e in events_b[:-1]] == [bytes([i]) * 1500 for i in range(30)]
    # The stream starts again at sequence number 0.
    pair.a.send(3, 51, b"again", pair.now)
    assert pair.run_until(lambda: pair.messages("b")[-1].data == b"again", 60)
    assert healthy(pair.a) and healthy(pair.b)


def test_both_sides_reset_the_same_stream() -> None:
    pair = make_pair(24)
    assert pair.connect()
    pair.a.send(9, 51, b"from a", pair.now)
    pair.b.send(9, 51, b"from b", pair.now)
    pair.a.reset_streams([9], pair.now)
    pair.b.reset_streams([9], pair.now)
    assert pair.run_until(
        lambda: (
            all(pair.events(s, OutgoingStreamsReset) for s in "ab")
            and all(pair.events(s, IncomingStreamsReset) for s in "ab")
        ),
        30,
    )
    assert [m.data for m in pair.messages("a")] == [b"from b"]
    assert [m.data for m in pair.messages("b")] == [b"from a"]


def test_reset_needs_reconfig_support() -> None:
    pair = make_pair(25)
    assert pair.connect()
    pair.a._reconfig = False  # as if the peer had not listed RE-CONFIG
    with pytest.raises(InvalidAssociationState):
        pair.a.reset_streams([1], pair.now)


# --- SNAP (draft-hancke-tsvwg-snap) ----------------------------------------------------

#: the offer's a=sctp-init from the draft's example (an INIT with Forward-TSN-Supported
#: and Supported Extensions RE-CONFIG + FORWARD-TSN; base64 without padding)
DRAFT_OFFER_INIT = "AQAAHols3R0AUAAA/////+B5ZR3AAAAEgAgABoLA"


def test_snap_establishes_without_a_handshake_packet() -> None:
    pair = make_pair(26)
    offer, answer = pair.a.snap_init(), pair.b.snap_init()
    assert pair.a.snap_init() == offer  # stable across re-offers
    assert pair.a.get_timer() is None and pair.a.datagrams_to_send(0.0) == []
    seen = capture(pair)
    pair.b.start_snap(offer, pair.now)
    pair.a.start_snap(answer, pair.now)
    assert pair.a.is_established and pair.b.is_established
    assert pair.a.interleaving and pair.a.zero_checksum
    pair.a.send(0, 51, b"first flight carries data", pair.now)
    pair.b.send(1, 51, b"and back", pair.now)
    assert pair.run_until(lambda: len(pair.messages("a")) == 1 and len(pair.messages("b")) == 1)
    kinds = chunk_types(seen)
    assert not {"InitChunk", "InitAckChunk", "CookieEchoChunk", "CookieAckChunk"} & set(kinds)
    assert [m.data for m in pair.messages("b")] == [b"first flight carries data"]
    pair.a.shutdown(pair.now)
    assert pair.run_until(pair.closed)


def test_snap_accepts_the_draft_example_and_refuses_garbage() -> None:
    remote = base64.b64decode(DRAFT_OFFER_INIT + "=" * (-len(DRAFT_OFFER_INIT) % 4))
    ours = Association(config(1))
    ours.start_snap(remote, 0.0)
    assert ours.is_established
    assert not ours.interleaving and not ours.zero_checksum  # the example offers neither
    ours.reset_streams([1], 0.0)  # RE-CONFIG was offered
    for bad in (b"", b"\x01\x00\x00\x04", remote[:20], b"\x0b\x00\x00\x04"):
        fresh = Association(config(2))
        with pytest.raises(MalformedSctpPacket):
            fresh.start_snap(bad, 0.0)
        assert not fresh.is_established
    with pytest.raises(InvalidAssociationState):
        ours.start_snap(remote, 0.0)


# --- I-DATA interleaving (RFC 8260) -----------------------------------------------------


@pytest.mark.parametrize("interleaving", [True, False])
def test_a_large_message_does_not_block_others_with_idata(interleaving: bool) -> None:
    pair = make_pair(
        27,
        a=config(1, interleaving=interleaving, remote_max_message_size=0),
        b=config(2, interleaving=interleaving),
    )
    assert pair.connect()
    big = b"B" * 250_000
    pair.a.send(1, 53, big, pair.now)
    pair.pump.run_for(0.005)  # the big message is under way
    pair.a.send(2, 51, b"small", pair.now)
    assert pair.run_until(lambda: len(pair.messages("b")) == 2)
    order = [m.stream_id for m in pair.messages("b")]
    # With I-DATA the small message overtakes the big one; with DATA it cannot.
    assert order == ([2, 1] if interleaving else [1, 2])
    assert [m.data for m in pair.messages("b") if m.stream_id == 1] == [big]
