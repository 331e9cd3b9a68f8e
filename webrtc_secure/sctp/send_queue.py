"""The send side of an association: per-stream queues, fragmentation, outstanding
TSNs, SACK processing, retransmission, congestion control and PR-SCTP abandonment.

Two pieces, both pure bookkeeping without wire format:

* :class:`Outbox` holds messages not yet (fully) handed a TSN, per stream, with the
  per-stream buffered amount, and cuts them into fragments on demand. Streams take
  turns; without I-DATA a message's fragments must carry consecutive TSNs (RFC 9260
  6.9), so a started message is finished first, with I-DATA (RFC 8260) streams take
  turns fragment by fragment and a large message no longer blocks the others.
* :class:`RetransmitQueue` assigns TSNs and keeps every chunk until the peer's
  cumulative ack passes it: SACK gap blocks, fast retransmit after three miss
  indications (7.2.4), T3-rtx (6.3.3), the RTO estimator, cwnd (7.2) and the
  peer's receive window, PR-SCTP abandonment (RFC 3758) by retransmission count or
  lifetime, and the Advanced.Peer.Ack.Point that a FORWARD-TSN announces.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .congestion import CongestionControl
from .rto import RtoEstimator
from .serial import add32, diff16, diff32

_new_object = object.__new__

# RFC 9260 6.2.1 / 7.2.4 work bounds against absurd SACKs.
MAX_GAP_BLOCKS_PROCESSED = 256


@dataclass(eq=False, slots=True)
class OutgoingMessage:
    """One user message on its way out."""

    stream_id: int
    ppid: int
    data: bytes
    ordered: bool = True
    max_retransmits: int | None = None
    expires_at: float | None = None
    seq: int | None = None  # SSN / MID, assigned when the first fragment leaves
    offset: int = 0  # bytes already cut into fragments
    next_fsn: int = 0
    abandoned: bool = False
    #: the chunks sent so far, kept for partially reliable messages only (PR-SCTP
    #: counts their transmissions and abandons them together)
    chunks: list[SentChunk] = field(default_factory=list)

    @property
    def partially_reliable(self) -> bool:
        return self.max_retransmits is not None or self.expires_at is not None

    @property
    def started(self) -> bool:
        return self.offset > 0


@dataclass(eq=False, slots=True)
class SentChunk:
    """A fragment with a TSN, kept until cumulatively acknowledged."""

    tsn: int
    unwrapped: int
    message: OutgoingMessage
    # its user data: a slice of the message's, or a view of it (the association's
    # send loop cuts views, so a fragment's octets are copied once, into its packet)
    data: bytes | memoryview
    beginning: bool
    ending: bool
    fsn: int
    first_sent: float = 0.0
    transmissions: int = 0
    acked: bool = False  # gap-acknowledged (or cumulatively, just before removal)
    abandoned: bool = False
    in_flight: bool = False
    retransmit: bool = False  # marked for retransmission
    fast: bool = False  # marked by fast retransmit (sent once regardless of cwnd)
    # 7.2.4 (5): fast-retransmitted once; no further fast retransmit until T3 expires
    fast_retransmitted: bool = False
    misses: int = 0
    size: int = 0  # octets it takes in a packet: cwnd, flight size and rwnd count these

    @property
    def stream_id(self) -> int:
        return self.message.stream_id

    @property
    def seq(self) -> int:
        assert self.message.seq is not None
        return self.message.seq

    @property
    def ppid(self) -> int:
        return self.message.ppid

    @property
    def unordered(self) -> bool:
        return not self.message.ordered


@dataclass(eq=False, slots=True)
class _OutStream:
    # None while idle: an empty deque is ~600 bytes, most of an idle channel's cost.
    queue: deque[OutgoingMessage] | None = None
    next_ssn: int = 0  # ordered SSN (DATA, 16 bits) or ordered MID (I-DATA)
    next_unordered_mid: int = 0  # I-DATA keeps a separate MID space for unordered
    buffered: int = 0
    threshold: int = 0
    paused: bool = False  # an outgoing reset is pending: no new sends


@dataclass(slots=True)  # not frozen: one per fragment sent, and frozen __init__ is slow
class Fragment:
    """What :meth:`Outbox.next_fragment` cut: a piece of ``message``."""

    message: OutgoingMessage
    data: bytes
    beginning: bool
    ending: bool
    fsn: int


class Outbox:
    """Messages waiting for their fragments to get TSNs."""

    # one per association for its life: slots, not an instance dict (the __dict__
    # slot stays empty unless a test sets a stand-in)
    __slots__ = (
        "__dict__",
        "_current",
        "_streams",
        "_turns",
        "capacity",
        "expired",
        "interleaving",
        "low",
        "total",
    )

    def __init__(self, *, interleaving: bool = False, capacity: int = 1 << 20) -> None:
        self.interleaving = interleaving
        self.capacity = capacity
        self.total = 0  # unsent bytes over all streams
        self._streams: dict[int, _OutStream] = {}
        # streams with queued messages, in turn order; made on the first message (an
        # empty deque allocates its first 64-slot block)
        self._turns: deque[int] | None = None
        self._current: OutgoingMessage | None = None  # DATA: the message being cut
        self.low: list[int] = []  # streams whose buffered amount fell to the threshold
        self.expired: list[OutgoingMessage] = []  # started messages found expired

    def _stream(self, stream_id: int) -> _OutStream:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = _OutStream()
        return stream

    def buffered_amount(self, stream_id: int) -> int:
        stream = self._streams.get(stream_id)
        return stream.buffered if stream else 0

    def set_threshold(self, stream_id: int, threshold: int) -> None:
        self._stream(stream_id).threshold = max(0, threshold)

    def is_paused(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        return bool(stream and stream.paused)

    def has_room(self, size: int) -> bool:
        return self.total + size <= self.capacity

    def push(self, message: OutgoingMessage) -> None:
        stream = self._streams.get(message.stream_id)  # _stream, inline
        if stream is None:
            stream = self._streams[message.stream_id] = _OutStream()
        if stream.queue is None:
            stream.queue = deque()
        if not stream.queue:
            turns = self._turns
            if turns is None:
                turns = self._turns = deque()
            turns.append(message.stream_id)
        stream.queue.append(message)
        stream.buffered += len(message.data)
        self.total += len(message.data)

    @property
    def empty(self) -> bool:
        return self.total == 0 and self._current is None

    def next_fragment(self, max_payload: int, now: float) -> Fragment | None:
        """Cut the next fragment of at most ``max_payload`` bytes, or None."""
        cut = self.cut(max_payload, now)
        return None if cut is None else Fragment(*cut)

    def cut(
        self, max_payload: int, now: float
    ) -> tuple[OutgoingMessage, bytes, bool, bool, int] | None:
        """:meth:`next_fragment` as a plain tuple (message, data, beginning, ending,
        fsn): the association's send loop, once per fragment sent, builds no object."""
        while True:
            # _pick, whose first test is inline (DATA: the message being cut)
            message = self._current
            if message is None:
                message = self._pick(now)
                if message is None:
                    return None
            if message.abandoned:
                self._finish(message)
                continue
            break
        stream_id = message.stream_id
        stream = self._streams[stream_id]  # a queued message's stream exists (push)
        if message.seq is None:
            if not message.ordered and self.interleaving:
                message.seq = stream.next_unordered_mid
                stream.next_unordered_mid = add32(stream.next_unordered_mid, 1)
            elif not message.ordered:
                message.seq = 0  # RFC 9260 6.6: the SSN of an unordered message is ignored
            else:
                # add32 / add16, inline (once per message)
                message.seq = seq = stream.next_ssn
                stream.next_ssn = (seq + 1) & (0xFFFFFFFF if self.interleaving else 0xFFFF)
        start = message.offset
        data = message.data
        piece = data[start : start + max_payload]
        size = len(piece)
        message.offset = offset = start + size
        ending = offset >= len(data)
        fsn = message.next_fsn
        message.next_fsn = fsn + 1
        # _consume, inline (once per fragment)
        before = stream.buffered
        stream.buffered = after = before - size
        self.total -= size
        if before > stream.threshold >= after:
            self.low.append(stream_id)
        if ending:
            self._finish(message, stream)
        elif self.interleaving:
            # Let the other streams have a turn before this message continues
            # (_rotate, inline; with one stream queued there is no other to turn to).
            turns = self._turns
            if turns and len(turns) > 1 and turns[0] == stream_id:
                turns.rotate(-1)
        else:
            self._current = message
        return message, piece, start == 0, ending, fsn

    def _pick(self, now: float) -> OutgoingMessage | None:
        if self._current is not None:
            return self._current
        while self._turns:
            stream_id = self._turns[0]
            stream = self._streams[stream_id]
            if not stream.queue:
                stream.queue = None
                self._turns.popleft()
                continue
            message = stream.queue[0]
            expired = message.expires_at is not None and now > message.expires_at
            if expired and not message.abandoned:
                # PR-SCTP: a message whose lifetime ended before (all of) it was sent.
                message.abandoned = True
                if message.started:
                    self.expired.append(message)
            if message.abandoned:
                self._finish(message)
                continue
            return message
        return None

    def _rotate(self, stream_id: int) -> None:
        if self._turns and self._turns[0] == stream_id:
            self._turns.rotate(-1)

    def _consume(self, stream: _OutStream, stream_id: int, size: int) -> None:
        before = stream.buffered
        stream.buffered -= size
        self.total -= size
        if before > stream.threshold >= stream.buffered:
            self.low.append(stream_id)

    def _finish(self, message: OutgoingMessage, stream: _OutStream | None = None) -> None:
        """Remove ``message`` (sent completely or abandoned) from its stream
        (``stream``: its _OutStream when the caller has it)."""
        if stream is None:
            stream = self._stream(message.stream_id)
        if self._current is message:
            self._current = None
        queue = stream.queue
        if queue is None:
            return
        if queue[0] is message:
            queue.popleft()
        else:
            try:
                queue.remove(message)
            except ValueError:
                return
        if not queue:
            stream.queue = None
        rest = len(message.data) - message.offset
        if rest:
            message.offset = len(message.data)
            self._consume(stream, message.stream_id, rest)
        if self._turns and self._turns[0] == message.stream_id:
            self._turns.popleft()
            if stream.queue:
                self._turns.append(message.stream_id)

    def abandon(self, message: OutgoingMessage) -> None:
        """Drop what is left of ``message`` (PR-SCTP)."""
        message.abandoned = True
        if message.offset < len(message.data):
            self._finish(message)

    def make_reliable(self) -> None:
        """Drop every queued message's PR-SCTP limits: the peer cannot skip what we
        would abandon (it did not offer FORWARD-TSN, RFC 3758 3.3.1)."""
        for stream in self._streams.values():
            for message in stream.queue or ():
                message.max_retransmits = message.expires_at = None

    # --- stream reset --------------------------------------------------------------

    def pause(self, stream_id: int) -> None:
        self._stream(stream_id).paused = True

    def drained(self, stream_id: int) -> bool:
        """No message of ``stream_id`` waits for a TSN any more."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return True
        current = self._current
        return not stream.queue and not (current is not None and current.stream_id == stream_id)

    def reset(self, stream_id: int) -> None:
        """The reset was performed: sequence numbers restart at 0, sends allowed."""
        stream = self._stream(stream_id)
        stream.next_ssn = 0
        stream.next_unordered_mid = 0
        stream.paused = False


@dataclass(slots=True)
class SackOutcome:
    """What one SACK changed."""

    accepted: bool = True
    stale: bool = False
    cumulative_advanced: bool = False
    bytes_acked: int = 0
    fast_retransmit: bool = False
    invalid_gap_blocks: int = 0
    rtt: float | None = None


class RetransmitQueue:
    """Chunks in flight or waiting for retransmission, until cumulatively acked."""

    # one per association for its life: slots, not an instance dict (the __dict__
    # slot stays empty unless a test sets a stand-in)
    __slots__ = (
        "__dict__",
        "_last_timeout",
        "_pending_retransmit",
        "abandoned_count",
        "abandoned_messages",
        "advanced_unwrapped",
        "cc",
        "chunk_header",
        "chunks",
        "cumulative_unwrapped",
        "fast_retransmits",
        "flight_size",
        "last_sent",
        "next_tsn",
        "next_unwrapped",
        "peer_rwnd",
        "retransmissions",
        "rto",
        "t3_deadline",
        "timed_outstanding",
    )

    def __init__(
        self,
        initial_tsn: int,
        *,
        mtu: int,
        peer_rwnd: int,
        rto: RtoEstimator,
        chunk_header: int = 16,
    ) -> None:
        # Flight size and cwnd count whole chunks (header and padding), not just user
        # data: otherwise a window of 4 kB would let thousands of 1-byte messages fly.
        self.chunk_header = chunk_header
        self.next_tsn = initial_tsn
        self.next_unwrapped = 1 << 32 | initial_tsn
        self.cumulative_unwrapped = self.next_unwrapped - 1  # the peer's cum ack
        self.advanced_unwrapped = self.cumulative_unwrapped  # Advanced.Peer.Ack.Point
        self.chunks: dict[int, SentChunk] = {}  # unwrapped TSN -> chunk, ascending
        # How many of ``chunks`` belong to a message with a lifetime: the owner checks
        # for expiry only when some do (a scan per send cost a third of the time).
        self.timed_outstanding = 0
        self.flight_size = 0
        self.peer_rwnd = peer_rwnd
        self.cc = CongestionControl(mtu=mtu, ssthresh=max(peer_rwnd, 4 * mtu))
        self.rto = rto
        self.t3_deadline: float | None = None
        self.retransmissions = 0
        self.fast_retransmits = 0
        self.abandoned_messages: list[OutgoingMessage] = []  # newly abandoned, for the owner
        self.abandoned_count = 0
        self._pending_retransmit = 0
        # Karn's rule extended: after a T3 expiry, a SACK may acknowledge chunks sent
        # long before only because the retransmission prompted it, so chunks sent
        # before the latest expiry give no RTT sample (otherwise each expiry feeds an
        # RTO-sized sample back into the RTO, which then only grows).
        self._last_timeout = float("-inf")
        self.last_sent: float | None = None  # when DATA last went out

    @property
    def cumulative_tsn(self) -> int:
        return self.cumulative_unwrapped & 0xFFFFFFFF

    @property
    def outstanding(self) -> int:
        return len(self.chunks)

    @property
    def has_retransmissions(self) -> bool:
        return self._pending_retransmit > 0

    @property
    def has_fast_retransmissions(self) -> bool:
        return any(c.fast and c.retransmit for c in self.chunks.values())

    @property
    def last_assigned_tsn(self) -> int:
        return add32(self.next_tsn, -1)

    def restart_after_idle(self, now: float) -> None:
        """7.2.1: after no data was sent for an RTO or more, cwnd falls back to
        max(cwnd / 2, 4 * MTU) for every RTO of silence (a burst must not use a
        window measured long ago)."""
        if self.flight_size or self.last_sent is None:
            return
        idle = now - self.last_sent
        rto = self.rto.rto
        while idle >= rto and self.cc.cwnd > 4 * self.cc.mtu:
            self.cc.cwnd = max(self.cc.cwnd // 2, 4 * self.cc.mtu)
            idle -= rto
        self.last_sent = now

    def can_send_new(self, size: int) -> bool:
        """Room in cwnd (may overshoot by less than one MTU, 6.1 B) and in the peer's
        window (one chunk may probe a zero window when nothing is in flight)."""
        if self.flight_size >= self.cc.cwnd:
            return False
        return self.flight_size == 0 or size <= self.peer_rwnd

    def send_new(self, fragment: Fragment, now: float) -> SentChunk:
        """Give ``fragment`` the next TSN and put it on the wire: what :meth:`sent`
        does for a chunk's first transmission, in one step (once per fragment: no
        retransmission state to look at)."""
        return self.send_piece(
            fragment.message,
            fragment.data,
            fragment.beginning,
            fragment.ending,
            fragment.fsn,
            now,
        )

    def send_piece(
        self,
        message: OutgoingMessage,
        data: bytes,
        beginning: bool,
        ending: bool,
        fsn: int,
        now: float,
    ) -> SentChunk:
        """:meth:`send_new` from the fields :meth:`Outbox.cut` returns."""
        unwrapped = self.next_unwrapped
        size = (self.chunk_header + len(data) + 3) & ~3
        # SentChunk(...) without its 17-argument __init__ call (once per fragment
        # sent; about a third cheaper): every slot set here, as the dataclass would
        # (tests/test_sctp_association_queues.py compares the two). First sent now,
        # transmissions 1, not acked or abandoned, in flight, no retransmission
        # marks, no misses.
        chunk = _new_object(SentChunk)
        chunk.tsn = self.next_tsn
        chunk.unwrapped = unwrapped
        chunk.message = message
        chunk.data = data
        chunk.beginning = beginning
        chunk.ending = ending
        chunk.fsn = fsn
        chunk.first_sent = now
        chunk.transmissions = 1
        chunk.acked = False
        chunk.abandoned = False
        chunk.in_flight = True
        chunk.retransmit = False
        chunk.fast = False
        chunk.fast_retransmitted = False
        chunk.misses = 0
        chunk.size = size
        self.next_tsn = (self.next_tsn + 1) & 0xFFFFFFFF
        self.next_unwrapped = unwrapped + 1
        self.chunks[unwrapped] = chunk
        if message.max_retransmits is not None or message.expires_at is not None:
            message.chunks.append(chunk)  # PR-SCTP reads a message's chunks
        if message.expires_at is not None:
            self.timed_outstanding += 1
        self.last_sent = now
        self.flight_size += size
        rwnd = self.peer_rwnd - size
        self.peer_rwnd = rwnd if rwnd > 0 else 0
        if self.t3_deadline is None:
            self.t3_deadline = now + self.rto.rto
        return chunk

    def sent(self, chunk: SentChunk, now: float) -> None:
        """``chunk`` went on the wire (first time or again)."""
        self.last_sent = now
        if chunk.transmissions == 0:
            chunk.first_sent = now
        else:
            self.retransmissions += 1
        chunk.transmissions += 1
        if chunk.retransmit:
            if chunk.fast:
                chunk.fast_retransmitted = True
            chunk.retransmit = False
            chunk.fast = False
            self._pending_retransmit -= 1
        chunk.misses = 0
        if not chunk.in_flight:
            chunk.in_flight = True
            self.flight_size += chunk.size
            self.peer_rwnd = max(0, self.peer_rwnd - chunk.size)
        if self.t3_deadline is None:
            self.t3_deadline = now + self.rto.rto

    def retransmission_candidates(self, *, fast_only: bool = False) -> list[SentChunk]:
        """Chunks marked for retransmission, lowest TSN first."""
        if not self._pending_retransmit:
            return []
        return [
            c
            for c in self.chunks.values()
            if c.retransmit and not c.abandoned and (c.fast or not fast_only)
        ]

    # --- SACK ----------------------------------------------------------------------

    def on_sack(
        self,
        cumulative_tsn: int,
        a_rwnd: int,
        gap_blocks: tuple[tuple[int, int], ...],
        now: float,
    ) -> SackOutcome:
        outcome = SackOutcome()
        # diff32(cumulative_tsn, self.cumulative_tsn), inline (once per SACK)
        distance = (cumulative_tsn - self.cumulative_unwrapped) & 0xFFFFFFFF
        if distance >= 0x80000000:
            distance -= 0x100000000
        cum = self.cumulative_unwrapped + distance
        if cum < self.cumulative_unwrapped:
            outcome.stale = True  # overtaken by a newer SACK (reordering)
            outcome.accepted = False
            return outcome
        if cum >= self.next_unwrapped:
            outcome.accepted = False  # acknowledges a TSN never sent
            return outcome
        flight_before = self.flight_size
        rtt_chunk: SentChunk | None = None
        highest_newly_acked = 0
        # Cumulatively acknowledged chunks leave the queue (_leave inline: this loop
        # runs for every chunk sent).
        pop = self.chunks.pop
        bytes_acked = 0
        flight = self.flight_size  # kept in a local through the loop
        for tsn in range(self.cumulative_unwrapped + 1, cum + 1):
            chunk = pop(tsn, None)
            if chunk is None:
                continue
            message = chunk.message
            if message.expires_at is not None:
                self.timed_outstanding -= 1
            if chunk.ending and message.chunks:
                # the whole message is acknowledged (its fragments have lower TSNs):
                # drop the message <-> chunk cycle so reference counting frees both
                message.chunks.clear()
            if not chunk.acked and not chunk.abandoned:
                bytes_acked += chunk.size
                highest_newly_acked = tsn
                if chunk.transmissions == 1:
                    rtt_chunk = chunk
            if chunk.in_flight:
                chunk.in_flight = False
                flight -= chunk.size
            if chunk.retransmit:
                chunk.retransmit = False
                self._pending_retransmit -= 1
        self.flight_size = flight
        outcome.bytes_acked = bytes_acked
        if cum > self.cumulative_unwrapped:
            outcome.cumulative_advanced = True
            self.cumulative_unwrapped = cum
            if self.advanced_unwrapped < cum:
                self.advanced_unwrapped = cum
        # Gap ack blocks, relative to the cumulative TSN. Valid blocks are merged
        # first so that each TSN is looked at once, however the blocks overlap.
        valid: list[tuple[int, int]] = []
        if gap_blocks:  # none while nothing is lost
            for index, (start, end) in enumerate(gap_blocks):
                if index >= MAX_GAP_BLOCKS_PROCESSED:
                    outcome.invalid_gap_blocks += len(gap_blocks) - index
                    break
                if not 1 <= start <= end or cum + end >= self.next_unwrapped:
                    outcome.invalid_gap_blocks += 1
                    continue
                valid.append((start, end))
            if len(valid) > 1:
                valid.sort()
            done = cum  # highest TSN already walked
            for start, end in valid:
                for tsn in range(max(cum + start, done + 1), cum + end + 1):
                    chunk = self.chunks.get(tsn)
                    if chunk is None or chunk.acked:
                        continue
                    chunk.acked = True
                    if not chunk.abandoned:
                        outcome.bytes_acked += chunk.size
                        highest_newly_acked = max(highest_newly_acked, tsn)
                        if chunk.transmissions == 1:
                            rtt_chunk = chunk  # ascending: the newest measurement wins
                    self._leave(chunk)
                done = max(done, cum + end)
        if (
            rtt_chunk is not None
            and rtt_chunk.transmissions == 1
            and rtt_chunk.first_sent > self._last_timeout
        ):
            outcome.rtt = now - rtt_chunk.first_sent
            self.rto.observe(outcome.rtt)
        # Miss indications (7.2.4, HTNA): only for chunks below the highest TSN this
        # SACK newly acknowledged; in fast recovery, a SACK that advances the
        # cumulative ack counts one for every TSN it reports missing. A chunk already
        # fast-retransmitted collects none: the SACKs sent before its retransmission
        # arrived would otherwise mark it again and again (until T3 it is resent once).
        miss_below = highest_newly_acked
        cc = self.cc
        if cc.fast_recovery_exit is not None and outcome.cumulative_advanced and valid:
            miss_below = max(miss_below, cum + max(end for _, end in valid))
        if miss_below > cum:
            # Only the TSNs between the gap blocks can be missing: walk those, not
            # every chunk in flight (a lossy window makes every SACK carry gaps).
            chunks = self.chunks
            low = cum + 1
            for start, end in (*valid, (miss_below - cum, miss_below - cum)):
                for tsn in range(low, min(cum + start, miss_below)):
                    chunk = chunks.get(tsn)
                    if (
                        chunk is None
                        or chunk.acked
                        or chunk.abandoned
                        or not chunk.in_flight
                        or chunk.fast_retransmitted
                    ):
                        continue
                    chunk.misses += 1
                    if chunk.misses == 3 and self._mark(chunk, now, fast=True):
                        outcome.fast_retransmit = True
                low = max(low, cum + end + 1)
                if low >= miss_below:
                    break
        if outcome.fast_retransmit:
            self.fast_retransmits += 1
            cc.on_fast_retransmit(self.next_unwrapped - 1)
        if cc.fast_recovery_exit is not None:
            cc.on_cumulative(cum)
        if outcome.bytes_acked:
            cc.on_ack(outcome.bytes_acked, outcome.cumulative_advanced, flight_before)
        rwnd = a_rwnd - self.flight_size
        self.peer_rwnd = rwnd if rwnd > 0 else 0
        # _advance_ack_point, unless it would stay at the cumulative ack
        following = self.chunks.get(cum + 1)
        if self.advanced_unwrapped > cum or (following is not None and following.abandoned):
            self._advance_ack_point()
        # T3-rtx rules R2 / R3 (6.3.2).
        if self.flight_size == 0 and not self._pending_retransmit:
            cc.partial_bytes_acked = 0  # cc.on_all_acked()
            if self.advanced_unwrapped <= self.cumulative_unwrapped:  # no FORWARD-TSN due
                self.t3_deadline = None
            elif self.t3_deadline is None or outcome.cumulative_advanced:
                # Only abandoned chunks remain: T3 keeps the FORWARD-TSN going.
                self.t3_deadline = now + self.rto.rto
        elif outcome.cumulative_advanced:
            self.t3_deadline = now + self.rto.rto
        elif outcome.rtt is not None and self.t3_deadline is not None:
            # A fresh measurement undid a backed-off RTO: do not wait out the old one.
            self.t3_deadline = min(self.t3_deadline, now + self.rto.rto)
        return outcome

    def _leave(self, chunk: SentChunk) -> None:
        """``chunk`` is no longer in flight nor awaiting retransmission."""
        if chunk.in_flight:
            chunk.in_flight = False
            self.flight_size -= chunk.size
        if chunk.retransmit:
            chunk.retransmit = False
            self._pending_retransmit -= 1

    def _mark(self, chunk: SentChunk, now: float, *, fast: bool) -> bool:
        """Mark for retransmission unless PR-SCTP says to give up; True if marked."""
        message = chunk.message
        if message.abandoned or self._expired(message, now):
            self._abandon(message)
            return False
        if chunk.retransmit:
            return False
        if chunk.in_flight:
            chunk.in_flight = False
            self.flight_size -= chunk.size
        chunk.retransmit = True
        chunk.fast = fast
        self._pending_retransmit += 1
        return True

    @staticmethod
    def _expired(message: OutgoingMessage, now: float) -> bool:
        if message.expires_at is not None and now > message.expires_at:
            return True
        if message.max_retransmits is not None:
            sent = max((c.transmissions for c in message.chunks), default=0)
            return sent > message.max_retransmits
        return False

    def _abandon(self, message: OutgoingMessage) -> None:
        sent = message.chunks
        if not any(c.abandoned for c in sent):
            self.abandoned_count += 1
            self.abandoned_messages.append(message)
        message.abandoned = True
        for chunk in sent:
            if not chunk.abandoned:
                chunk.abandoned = True
                self._leave(chunk)
        if sent and not sent[-1].ending:
            self._end_placeholder(message)

    def _end_placeholder(self, message: OutgoingMessage) -> None:
        """Give ``message``, abandoned before its last fragment got a TSN, one more
        TSN: an abandoned end fragment that is never sent.

        RFC 3758 3.5 / RFC 8260 2.3.1: a (I-)FORWARD-TSN must name the stream and
        sequence number of every abandoned message the peer may hold part of, and it
        names only messages with an abandoned chunk between the cumulative TSN and the
        Advanced.Peer.Ack.Point. Without this, a message whose sent fragments were all
        acknowledged has none there: the peer keeps its fragments, and its ordered
        stream waits at that sequence number for good. The placeholder sits after the
        message's sent fragments (DATA: the TSN right after them, as RFC 9260 6.9
        wants a message's TSNs consecutive; a started DATA message is finished before
        any other is cut), so the ack point passes it once they are acknowledged."""
        unwrapped = self.next_unwrapped
        chunk = SentChunk(
            tsn=self.next_tsn,
            unwrapped=unwrapped,
            message=message,
            data=b"",
            beginning=False,
            ending=True,
            fsn=message.next_fsn,
            abandoned=True,
        )
        message.next_fsn += 1
        self.next_tsn = (self.next_tsn + 1) & 0xFFFFFFFF
        self.next_unwrapped = unwrapped + 1
        self.chunks[unwrapped] = chunk
        message.chunks.append(chunk)
        if message.expires_at is not None:
            self.timed_outstanding += 1  # on_sack counts it out when it leaves

    def abandon(self, message: OutgoingMessage) -> None:
        """Abandon ``message`` (lifetime ended while part of it was still unsent)."""
        self._abandon(message)
        self._advance_ack_point()

    # --- timers ---------------------------------------------------------------------

    def on_t3_expired(self, now: float) -> None:
        """6.3.3: back off, collapse cwnd, mark everything outstanding for resending."""
        self.t3_deadline = None
        self._last_timeout = now
        self.rto.backoff()
        self.cc.on_timeout()
        for chunk in list(self.chunks.values()):
            if chunk.acked or chunk.abandoned:
                continue
            if chunk.in_flight or chunk.retransmit:
                self._mark(chunk, now, fast=False)
                chunk.fast = False
            chunk.fast_retransmitted = False
            chunk.misses = 0
        self._advance_ack_point()

    def expire(self, now: float) -> None:
        """Abandon outstanding PR-SCTP messages whose lifetime has ended."""
        for chunk in list(self.chunks.values()):
            message = chunk.message
            if (
                not chunk.abandoned
                and not chunk.acked
                and message.expires_at is not None
                and now > message.expires_at
            ):
                self._abandon(message)
        self._advance_ack_point()

    # --- PR-SCTP ---------------------------------------------------------------------

    def _advance_ack_point(self) -> None:
        point = max(self.advanced_unwrapped, self.cumulative_unwrapped)
        while True:
            chunk = self.chunks.get(point + 1)
            if chunk is None or not chunk.abandoned:
                break
            point += 1
        self.advanced_unwrapped = point

    @property
    def forward_tsn_needed(self) -> bool:
        return self.advanced_unwrapped > self.cumulative_unwrapped

    def forward_tsn(self, *, interleaving: bool) -> tuple[int, tuple[tuple[int, bool, int], ...]]:
        """New cumulative TSN and the streams to skip for a FORWARD-TSN (entries
        (stream, False, ssn), ordered messages only) or an I-FORWARD-TSN
        ((stream, unordered, mid))."""
        skipped: dict[tuple[int, bool], int] = {}
        for tsn in range(self.cumulative_unwrapped + 1, self.advanced_unwrapped + 1):
            chunk = self.chunks.get(tsn)
            if chunk is None or not chunk.abandoned:
                continue
            if chunk.unordered and not interleaving:
                continue
            key = (chunk.stream_id, chunk.unordered)
            seq = chunk.seq
            previous = skipped.get(key)
            if previous is None or (
                (diff32(seq, previous) if interleaving else diff16(seq, previous)) > 0
            ):
                skipped[key] = seq
        entries = tuple((sid, unordered, seq) for (sid, unordered), seq in skipped.items())
        return self.advanced_unwrapped & 0xFFFFFFFF, entries

    # --- stream reset ------------------------------------------------------------------

    def stream_outstanding(self, stream_id: int) -> bool:
        return any(c.stream_id == stream_id for c in self.chunks.values())
