"""The association's FORWARD-TSN counters (``AssociationStats.forward_tsn_out`` and
``forward_tsn_in``, copied into ``SecurePeer.stats()["sctp"]``), checked against the
packets themselves.

Two associations on the simulated link of tests/netsim.py (20 % loss and some
duplication both ways) each send partially reliable messages (``max_retransmits=0``)
and reliable ones, in DATA mode and in I-DATA mode. Every datagram put on the link
and every one the link delivered is decoded here: an association's ``forward_tsn_out``
must equal the FORWARD-TSN chunks of its kind it put on the link (and no chunk of the
other kind may appear), its ``forward_tsn_in`` the ones the link delivered to it
(duplicates included: a stale FORWARD-TSN is applied again, harmlessly). Loss makes
the two differ, so neither counter can pass by copying the other. Reliable traffic
alone sends none, and refused FORWARD-TSNs (of the other kind, out of the window)
count as drops, not as received.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.sctp_pair import Pair, capture, config, healthy, make_pair
from webrtc_secure.peer import _association_stats
from webrtc_secure.sctp.chunks import Chunk, ForwardTsnChunk, IForwardTsnChunk
from webrtc_secure.sctp.packet import Packet, parse_packet, serialize_packet
from webrtc_secure.sctp_transport import SctpTransport

KINDS = {False: ForwardTsnChunk, True: IForwardTsnChunk}


def _delivered(pair: Pair) -> list[tuple[str, bytes]]:
    """Record every datagram the link delivers from now on: (direction, bytes)."""
    seen: list[tuple[str, bytes]] = []
    original = pair.sim.due

    def due(now: float) -> list[tuple[str, bytes]]:
        out = original(now)
        seen.extend(out)
        return out

    pair.sim.due = due  # type: ignore[method-assign]
    return seen


def _count(datagrams: list[tuple[str, bytes]], direction: str, kind: type) -> int:
    return sum(
        isinstance(chunk, kind)
        for d, data in datagrams
        if d == direction
        for chunk in parse_packet(data, allow_zero_checksum=True).chunks
    )


def _lossy_pair(seed: int, interleaving: bool) -> Pair:
    pair = make_pair(
        seed,
        a=config(seed * 2 + 1, interleaving=interleaving),
        b=config(seed * 2 + 2, interleaving=interleaving),
        loss=0.2,
        duplicate=0.05,
        reorder=0.1,
    )
    assert pair.connect()
    assert pair.a.interleaving is interleaving and pair.b.interleaving is interleaving
    return pair


def _settled(pair: Pair, reliable: int) -> bool:
    """Both reliable streams complete and nothing outstanding either way."""
    return all(
        len([m for m in pair.messages(side) if m.stream_id == 2]) == reliable
        and assoc._retransmit is not None
        and assoc._retransmit.outstanding == 0
        and not assoc._retransmit.forward_tsn_needed
        for side, assoc in (("b", pair.a), ("a", pair.b))
    )


@pytest.mark.parametrize("interleaving", [False, True])
def test_forward_tsn_counters_match_the_wire_both_ways(interleaving: bool) -> None:
    pair = _lossy_pair(31, interleaving)
    sent = capture(pair)
    delivered = _delivered(pair)
    reliable = 40
    for i in range(150):
        for assoc in (pair.a, pair.b):
            size = 100 + (i * 397) % 3000  # some span several packets
            assoc.send(1, 51, bytes([i % 256]) * size, pair.now, max_retransmits=0)
            if i < reliable:
                assoc.send(2, 51, bytes([i]) * 60, pair.now)
    assert pair.run_until(lambda: _settled(pair, reliable), 300)

    kind, other = KINDS[interleaving], KINDS[not interleaving]
    #: per side: (chunks it put on the link, forward_tsn_out, chunks the link delivered
    #: to it, forward_tsn_in)
    counts = {}
    for side, assoc, out, back in (("a", pair.a, "a->b", "b->a"), ("b", pair.b, "b->a", "a->b")):
        put = _count(sent, out, kind)
        got = _count(delivered, back, kind)
        counts[side] = (put, assoc.stats.forward_tsn_out, got, assoc.stats.forward_tsn_in)
        assert assoc.stats.abandoned_messages > 0
        assert put > 0 and assoc.stats.forward_tsn_out == put, counts
        assert got > 0 and assoc.stats.forward_tsn_in == got, counts
        assert _count(sent, out, other) == 0, counts
        assert not any(k.startswith("forward_tsn") for k in assoc.stats.dropped)
        assert healthy(assoc)
    # loss took some on the way: what one side received is not what the other sent
    _, a_sent, _, a_in = counts["a"]
    _, b_sent, _, b_in = counts["b"]
    assert (b_in, a_in) != (a_sent, b_sent), counts
    name = "I-FORWARD-TSN" if interleaving else "FORWARD-TSN"
    print(f"\n{name} (sent on the link, out, delivered, in): {counts}")


@pytest.mark.parametrize("interleaving", [False, True])
def test_reliable_traffic_under_loss_sends_no_forward_tsn(interleaving: bool) -> None:
    pair = _lossy_pair(32, interleaving)
    sent = capture(pair)
    for i in range(60):
        pair.a.send(2, 51, bytes([i]) * 1500, pair.now)
        pair.b.send(2, 51, bytes([i]) * 700, pair.now)
    assert pair.run_until(lambda: _settled(pair, 60), 300)
    assert pair.a.stats.retransmissions > 0 and pair.b.stats.retransmissions > 0
    for assoc in (pair.a, pair.b):
        assert assoc.stats.forward_tsn_out == assoc.stats.forward_tsn_in == 0
    assert _count(sent, "a->b", Chunk) > 0
    for kind in KINDS.values():
        assert _count(sent, "a->b", kind) == _count(sent, "b->a", kind) == 0


def _packet(tag: int, *chunks: Chunk) -> bytes:
    return serialize_packet(Packet(5000, 5000, tag, tuple(chunks)))


@pytest.mark.parametrize("interleaving", [False, True])
def test_refused_forward_tsns_are_drops_not_received(interleaving: bool) -> None:
    pair = make_pair(
        33, a=config(1, interleaving=interleaving), b=config(2, interleaving=interleaving)
    )
    assert pair.connect()
    b = pair.b
    receive = b._receive
    assert receive is not None
    tag, cum = b._local_tag, receive.cumulative_tsn
    kind, other = KINDS[interleaving], KINDS[not interleaving]

    def chunk(cls: type, tsn: int) -> Chunk:
        tsn &= 0xFFFFFFFF
        if cls is IForwardTsnChunk:
            return IForwardTsnChunk(tsn, ((0, False, 0),))
        return ForwardTsnChunk(tsn, ((0, 0),))

    b.receive_datagram(_packet(tag, chunk(other, cum)), pair.now)
    b.receive_datagram(_packet(tag, chunk(kind, cum + (1 << 24))), pair.now)
    assert b.stats.dropped["forward_tsn_wrong_kind"] == 1
    assert b.stats.dropped["forward_tsn_out_of_window"] == 1
    assert b.stats.forward_tsn_in == 0
    # one of the right kind, in the window (stale: nothing to skip), is received
    b.receive_datagram(_packet(tag, chunk(kind, cum)), pair.now)
    assert b.stats.forward_tsn_in == 1
    assert receive.cumulative_tsn == cum
    assert healthy(b)


def test_peer_stats_copy_the_counters() -> None:
    """``SecurePeer.stats()["sctp"]`` is built by ``_association_stats`` from every
    field of the association's stats: the counters appear there with their values."""
    pair = _lossy_pair(34, False)
    for i in range(40):
        pair.a.send(1, 51, bytes([i]) * 900, pair.now, max_retransmits=0)
    rq = pair.a._retransmit
    assert rq is not None
    assert pair.run_until(lambda: rq.outstanding == 0 and not rq.forward_tsn_needed, 120)
    assert pair.a.stats.forward_tsn_out > 0 and pair.b.stats.forward_tsn_in > 0
    for assoc in (pair.a, pair.b):
        transport = cast(SctpTransport, SimpleNamespace(association=assoc))
        flat: dict[str, Any] = _association_stats(transport)
        assert flat["forward_tsn_out"] == assoc.stats.forward_tsn_out
        assert flat["forward_tsn_in"] == assoc.stats.forward_tsn_in
