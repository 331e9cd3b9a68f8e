"""Association extensions against itself: PR-SCTP (FORWARD-TSN / I-FORWARD-TSN,
RFC 3758 / 8260) and stream reset (RFC 6525) as RFC 8831 uses them to close data
channels."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.sctp_pair import capture, chunk_types, config, healthy, make_pair
from webrtc_secure.errors import InvalidAssociationState, StreamResetPending
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
