"""PR-SCTP (RFC 3758, RFC 8260) under loss: partially reliable messages never stall
a stream and are never sent past their limit.

A partially reliable message abandoned after some of its fragments were acknowledged,
with the rest never given a TSN, used to leave its stream stuck: no (I-)FORWARD-TSN
named it (none of its chunks lay between the cumulative TSN and the advanced ack
point), so the receiver kept its fragments and its ordered stream waited at that
SSN / MID for good, reliable messages behind it included (found by dcengine7,
reproduced by prfix7). The sender now gives such a message an abandoned end-fragment
placeholder TSN (RetransmitQueue._end_placeholder), so the ack point passes it and
the FORWARD-TSN names its stream and sequence number.

The transfers below are seeded; the seeds listed are the ones that stalled before the
fix (DATA and I-DATA, streams mixing reliable and PR messages, and streams carrying
only PR messages, the WebRTC case). Each run also reads the sender's DATA chunks off
the wire and checks the limits: a chunk of a ``max_retransmits=k`` message goes out at
most k + 1 times, and no chunk of a message with a lifetime goes out after it ended.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from tests.sctp_pair import Pair, config, healthy, make_pair
from webrtc_secure.sctp.chunks import ChunkType, DataChunk, IDataChunk
from webrtc_secure.sctp.packet import parse_packet
from webrtc_secure.sctp.parameters import SupportedExtensionsParameter
from webrtc_secure.sctp.rto import RtoEstimator
from webrtc_secure.sctp.send_queue import Outbox, OutgoingMessage, RetransmitQueue

SIZES = (1, 300, 1200, 5000, 70000)
COUNT = 40
LIFETIME = 0.15  # seconds: long enough for some messages to make it, short for others


@dataclass
class _Sent:
    """One message as the test sent it."""

    stream: int
    data: bytes
    partial: bool
    ordered: bool
    expires_at: float | None = None

    @property
    def tag(self) -> bytes:
        return self.data[:4]  # distinct per message: side and index


@dataclass
class _Transmissions:
    """A sender's DATA / I-DATA chunks as they left, read off the wire."""

    times: dict[int, list[float]] = field(default_factory=dict)  # TSN -> when sent
    # TSN -> (message key or None, first fragment's tag or None)
    fragments: dict[int, tuple[object, bytes | None]] = field(default_factory=dict)

    def record(self, chunk: DataChunk | IDataChunk, now: float) -> None:
        self.times.setdefault(chunk.tsn, []).append(now)
        tag = chunk.user_data[:4] if chunk.beginning else None
        # I-DATA: fragments of one message share (stream, unordered, MID)
        key = (
            (chunk.stream_id, chunk.unordered, chunk.mid) if isinstance(chunk, IDataChunk) else None
        )
        self.fragments.setdefault(chunk.tsn, (key, tag))

    def message_of(self) -> dict[int, bytes]:
        """TSN -> the tag of the message its fragment belongs to. I-DATA by message
        key; DATA by TSN runs: a message's fragments carry consecutive TSNs from its
        first (RFC 9260 6.9), and an abandoned one's run ends where its unsent rest
        would have been."""
        tags = {key: tag for key, tag in self.fragments.values() if key is not None and tag}
        owner: dict[int, bytes] = {}
        current, previous = b"", None
        for tsn in sorted(self.fragments):
            key, tag = self.fragments[tsn]
            if key is not None:
                owner[tsn] = tags.get(key, b"")
                continue
            if tag is not None:
                current = tag
            elif previous is None or tsn != previous + 1:
                current = b""  # a gap: not the continuation of the last message
            owner[tsn] = current
            previous = tsn
        return owner


def _watch(pair: Pair, sender: str) -> _Transmissions:
    """Record the DATA chunks ``sender`` ("a" or "b") puts on the link."""
    seen = _Transmissions()
    original = pair.sim.send
    direction = "a->b" if sender == "a" else "b->a"

    def send(where: str, datagram: bytes) -> None:
        if where == direction:
            for chunk in parse_packet(datagram, allow_zero_checksum=True).chunks:
                if isinstance(chunk, (DataChunk, IDataChunk)):
                    seen.record(chunk, pair.now)
        original(where, datagram)

    pair.sim.send = send  # type: ignore[method-assign]
    return seen


def _run(
    seed: int,
    *,
    interleaving: bool,
    pr_stream: bool = False,
    lifetime: bool = False,
    loss: float = 0.1,
) -> None:
    pair = make_pair(
        seed,
        a=config(9, interleaving=interleaving, remote_max_message_size=0),
        b=config(10, interleaving=interleaving, remote_max_message_size=0),
        loss=loss,
        reorder=0.2,
        duplicate=0.05,
        delay=0.01,
        jitter=0.005,
    )
    assert pair.connect(both=True)
    wire = {"a": _watch(pair, "a"), "b": _watch(pair, "b")}
    rng = random.Random(seed)
    sent: dict[str, list[_Sent]] = {"a": [], "b": []}
    for side, assoc in (("a", pair.a), ("b", pair.b)):
        for i in range(COUNT):
            size = rng.choice(SIZES)
            # Distinct payloads: the index and side in the first octets, then filler.
            data = (f"{side}{i:03d}".encode() + rng.randbytes(size))[: max(size, 4)]
            stream = i % 3
            # Mixed: every fifth message PR on any stream; pr_stream: stream 1 all PR
            # (the WebRTC case, one channel = one stream with one reliability).
            pr = stream == 1 if pr_stream else i % 5 == 1
            ordered = i % 4 != 0
            message = _Sent(stream, data, pr, ordered)
            if pr and lifetime:
                message.expires_at = pair.now + LIFETIME
            sent[side].append(message)
            assoc.send(
                stream,
                51,
                data,
                pair.now,
                ordered=ordered,
                max_retransmits=0 if pr and not lifetime else None,
                lifetime=LIFETIME if pr and lifetime else None,
            )
    pair.run_until(lambda: False, 600.0)
    assert healthy(pair.a) and healthy(pair.b)

    checked = 0
    for sender, receiver in (("a", "b"), ("b", "a")):
        got = pair.messages(receiver)
        counts: dict[bytes, int] = {}
        for m in got:
            counts[m.data] = counts.get(m.data, 0) + 1
        # Every message arrives at most once, intact (payloads are distinct).
        assert all(c == 1 for c in counts.values()), "duplicate delivery"
        known = {m.data for m in sent[sender]}
        assert set(counts) <= known, "corrupted or foreign message delivered"
        # Every reliable message is delivered.
        missing = [m.tag for m in sent[sender] if not m.partial and m.data not in counts]
        assert not missing, f"{sender}->{receiver}: reliable messages never delivered: {missing}"
        # Ordered messages of a stream arrive in send order.
        for stream in range(3):
            order = [m.data for m in sent[sender] if m.stream == stream and m.ordered]
            seen = [m.data for m in got if m.stream_id == stream and m.data in set(order)]
            assert seen == [d for d in order if d in counts]
        checked += _check_limits(sender, sent[sender], wire[sender])
    assert checked, "no partially reliable chunk was seen on the wire"
    for assoc in (pair.a, pair.b):
        queue = assoc._receive
        assert queue is not None
        assert queue.stored == 0, "fragments left stored after the transfer"
        # nothing left to send or to report: the streams are not waiting on anything
        assert assoc._retransmit is not None and assoc._retransmit.outstanding == 0


def _check_limits(sender: str, messages: list[_Sent], wire: _Transmissions) -> int:
    """No chunk of a PR message went out past its limit (sender ``sender``); returns
    how many PR chunks were checked."""
    by_tag = {m.tag: m for m in messages}
    owner = wire.message_of()
    checked = 0
    for tsn, times in wire.times.items():
        message = by_tag.get(owner[tsn])
        assert message is not None, f"{sender}: TSN {tsn} carries no known message"
        if not message.partial:
            continue
        checked += 1
        if message.expires_at is None:  # max_retransmits=0: one transmission, no more
            assert len(times) == 1, f"{sender}: PR TSN {tsn} sent {len(times)} times"
        else:
            late = [t for t in times if t > message.expires_at]
            assert not late, f"{sender}: TSN {tsn} sent {late[0] - message.expires_at:.3f} s late"
    return checked


@pytest.mark.parametrize("interleaving", [False, True], ids=["DATA", "I-DATA"])
def test_message_abandoned_with_an_unsent_rest_is_named_in_the_forward_tsn(
    interleaving: bool,
) -> None:
    """The fix on its own: the first fragment is acknowledged, the rest never sent; the
    abandoned message gets a placeholder end fragment and the FORWARD-TSN names it."""
    outbox = Outbox(interleaving=interleaving)
    rq = RetransmitQueue(1000, mtu=1200, peer_rwnd=1 << 20, rto=RtoEstimator())
    for _ in range(3):  # reliable messages first: the PR one gets sequence number 3
        outbox.push(OutgoingMessage(4, 53, b"r" * 10))
    message = OutgoingMessage(4, 51, b"p" * 3000, max_retransmits=0)
    outbox.push(message)
    now = 0.0
    for _ in range(4):  # the three reliable messages and the PR message's first piece
        cut = outbox.cut(1000, now)
        assert cut is not None
        rq.send_piece(*cut, now)
    assert message.seq == 3 and message.offset == 1000
    first = rq.last_assigned_tsn
    assert rq.on_sack(first, 1 << 20, (), now).cumulative_advanced
    assert not rq.chunks and not rq.forward_tsn_needed

    rq.abandon(message)  # e.g. its lifetime ended while its rest was queued
    outbox.abandon(message)
    placeholder = rq.chunks[rq.cumulative_unwrapped + 1]
    assert placeholder.tsn == (first + 1) & 0xFFFFFFFF  # right after its sent fragments
    assert placeholder.abandoned and placeholder.ending and not placeholder.in_flight
    assert placeholder.transmissions == 0 and rq.flight_size == 0
    assert outbox.cut(1000, now) is None and outbox.total == 0  # the rest is dropped
    assert rq.forward_tsn(interleaving=interleaving) == (placeholder.tsn, ((4, False, 3),))
    rq.abandon(message)  # again (a later T3 or SACK): no second placeholder
    assert rq.outstanding == 1 and rq.abandoned_count == 1
    # the peer's SACK for the FORWARD-TSN's new cumulative TSN clears it
    assert rq.on_sack(placeholder.tsn, 1 << 20, (), now).cumulative_advanced
    assert rq.outstanding == 0 and not rq.forward_tsn_needed


# Seeds that stalled before the fix (seeds 3..10 tried), with 10 % loss.
MIXED = [(4, False), (4, True), (5, True), (7, True), (10, True)]
ALL_PR = [(6, False), (10, False), (4, True), (5, True), (8, True), (9, True), (10, True)]


def _ids(cases: list[tuple[int, bool]]) -> list[str]:
    return [f"{'I-DATA' if i else 'DATA'}-{seed}" for seed, i in cases]


@pytest.mark.parametrize(("seed", "interleaving"), MIXED, ids=_ids(MIXED))
def test_reliable_and_pr_messages_on_one_stream_under_loss(seed: int, interleaving: bool) -> None:
    _run(seed, interleaving=interleaving)


@pytest.mark.parametrize(("seed", "interleaving"), ALL_PR, ids=_ids(ALL_PR))
def test_all_pr_stream_under_loss(seed: int, interleaving: bool) -> None:
    """The WebRTC case: stream 1 carries only PR messages (one channel, one reliability)."""
    _run(seed, interleaving=interleaving, pr_stream=True)


@pytest.mark.parametrize("loss", [0.0, 0.1, 0.2, 0.3])
@pytest.mark.parametrize("interleaving", [False, True], ids=["DATA", "I-DATA"])
@pytest.mark.parametrize("lifetime", [False, True], ids=["max_retransmits", "lifetime"])
@pytest.mark.parametrize("seed", [3, 6])
def test_pr_limits_hold_at_each_loss_rate(
    seed: int, lifetime: bool, interleaving: bool, loss: float
) -> None:
    """Issue 11's fault matrix for partially reliable channels: at 0-30 % loss, with
    reordering and duplication, by retransmission count and by lifetime, PR messages
    never go out past their limit and never hold up the reliable ones."""
    _run(seed, interleaving=interleaving, pr_stream=seed == 6, lifetime=lifetime, loss=loss)


@pytest.mark.parametrize("seed", [3, 4])
def test_peer_without_pr_sctp_gets_every_message_reliably(seed: int) -> None:
    """RFC 3758 3.3.1: with a peer that did not offer FORWARD-TSN nothing may be
    abandoned (it could never skip the TSNs): PR messages go reliably, those queued
    before the association was up included."""
    pair = make_pair(
        seed,
        a=config(9, remote_max_message_size=0, interleaving=False),
        b=config(10, remote_max_message_size=0, interleaving=False, zero_checksum=False),
        loss=0.1,
        reorder=0.2,
        duplicate=0.05,
        delay=0.01,
        jitter=0.005,
    )
    # b offers RE-CONFIG only: no FORWARD-TSN, no I-DATA
    only_reconfig = (SupportedExtensionsParameter((int(ChunkType.RE_CONFIG),)),)
    pair.b._capability_parameters = lambda: only_reconfig  # type: ignore[method-assign]
    rng = random.Random(seed)
    sent: list[bytes] = []

    def send(count: int) -> None:
        for i in range(count):
            data = rng.randbytes(rng.choice((1, 1200, 5000, 70000)))
            sent.append(data)
            pair.a.send(
                i % 3,
                51,
                data,
                pair.now,
                max_retransmits=0 if i % 2 else None,
                lifetime=0.05 if i % 4 == 2 else None,
            )

    send(10)  # queued while connecting
    assert pair.connect(both=True)
    assert not pair.a._forward_tsn
    send(30)
    pair.run_until(lambda: False, 600.0)
    assert sorted(m.data for m in pair.messages("b")) == sorted(sent)
    assert pair.a.stats.abandoned_messages == 0 and pair.a.stats.retransmissions > 0
    assert healthy(pair.a) and healthy(pair.b)
