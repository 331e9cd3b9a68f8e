"""The receive side of an association: which TSNs arrived, what to put in a SACK,
reassembly of fragmented messages and per-stream delivery order.

Pure bookkeeping, no wire format: the association turns DATA / I-DATA chunks into
:class:`InboundFragment` and FORWARD-TSN / I-FORWARD-TSN into :meth:`ReceiveQueue.skip`
calls, and reads SACK fields back (cumulative TSN, gap blocks, duplicates).

Every structure is bounded: TSNs more than ``max_tsn_window`` past the cumulative TSN
are refused, stored bytes may not pass the receive window, and the number of stored
fragments and waiting messages is capped, so a hostile peer cannot make memory grow
without bound (dropped chunks are not acknowledged; an honest sender retransmits).

Non-interleaved DATA (RFC 9260 6.9) reassembles by TSN: the fragments of one message
carry consecutive TSNs from the B to the E fragment. TSNs are *unwrapped* to plain
integers relative to the cumulative TSN, so sorted lists and ``bisect`` find the run
around a new fragment in O(log n). I-DATA (RFC 8260) reassembles by (stream, U flag,
MID) and fragment sequence number, which is what lets messages interleave.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field

from .chunks import FLAG_BEGINNING, FLAG_ENDING, FLAG_UNORDERED
from .events import MessageReceived, message_received
from .serial import add16, add32, diff16, diff32

_new_object = object.__new__

DEFAULT_MAX_TSN_WINDOW = 65536
DEFAULT_MAX_STORED = 20000
MAX_REPORTED_DUPLICATES = 32


@dataclass(slots=True)  # not frozen: one per chunk received, and frozen __init__ is slow
class InboundFragment:
    """One received DATA or I-DATA chunk, as far as reassembly cares.

    ``seq`` is the SSN (DATA, 16 bits) or the MID (I-DATA, 32 bits); ``fsn`` is only
    meaningful for I-DATA middle/last fragments, ``ppid`` on a first fragment.
    """

    tsn: int
    stream_id: int
    seq: int
    ppid: int
    data: bytes
    unordered: bool = False
    beginning: bool = True
    ending: bool = True
    fsn: int = 0


class Verdict(enum.Enum):
    """What :meth:`ReceiveQueue.receive` did with a fragment."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # TSN already received: report it in the SACK
    OUT_OF_WINDOW = "out_of_window"  # too far ahead: dropped, not acknowledged
    BUFFER_FULL = "buffer_full"  # no room: dropped, not acknowledged
    INVALID = "invalid"  # empty user data or a repeated fragment number


# Members as module constants: the receive path returns one per chunk, and a member
# looked up on the Enum class costs more than a global.
_ACCEPTED = Verdict.ACCEPTED
_DUPLICATE = Verdict.DUPLICATE
_INVALID = Verdict.INVALID

#: One reassembled user message ready for the application (stream_id, ppid, data):
#: the association's MessageReceived event itself, so that a message is one object
#: from reassembly to the application (built by ``message_received``).
Message = MessageReceived


class TsnTracker:
    """Received TSNs: the cumulative TSN, those above it, and duplicates to report."""

    # one per association for its life: slots, not an instance dict (the __dict__
    # slot stays empty unless a test sets a stand-in)
    __slots__ = (
        "__dict__",
        "_above",
        "_duplicates",
        "cumulative",
        "cumulative_unwrapped",
        "max_window",
    )

    def __init__(self, initial_tsn: int, max_window: int = DEFAULT_MAX_TSN_WINDOW) -> None:
        self.cumulative = add32(initial_tsn, -1)
        # Unwrapped value of ``cumulative``: a plain integer that only grows.
        self.cumulative_unwrapped = 1 << 32 | self.cumulative
        self.max_window = max_window
        self._above: set[int] = set()  # unwrapped TSNs received beyond the cumulative one
        self._duplicates: list[int] = []

    def unwrap(self, tsn: int) -> int:
        return self.cumulative_unwrapped + diff32(tsn, self.cumulative)

    def classify(self, tsn: int) -> Verdict:
        """Whether ``tsn`` is new, a duplicate, or too far ahead (no state change)."""
        distance = diff32(tsn, self.cumulative)
        if distance <= 0:
            return Verdict.DUPLICATE
        if distance > self.max_window:
            return Verdict.OUT_OF_WINDOW
        if self.cumulative_unwrapped + distance in self._above:
            return Verdict.DUPLICATE
        return Verdict.ACCEPTED

    def note_duplicate(self, tsn: int) -> None:
        if len(self._duplicates) < MAX_REPORTED_DUPLICATES:
            self._duplicates.append(tsn)

    def add(self, tsn: int) -> None:
        """Record a TSN :meth:`classify` called new."""
        self.add_unwrapped(self.unwrap(tsn))

    def add_unwrapped(self, unwrapped: int) -> None:
        """Record a new TSN by its unwrapped value."""
        if unwrapped == self.cumulative_unwrapped + 1 and not self._above:
            # in order with nothing above: the cumulative TSN just moves on
            self.cumulative_unwrapped = unwrapped
            self.cumulative = unwrapped & 0xFFFFFFFF
            return
        self._above.add(unwrapped)
        self._advance()

    def forward(self, new_cumulative: int) -> bool:
        """Move the cumulative TSN to ``new_cumulative`` (FORWARD-TSN). False when it
        is behind the current one (stale) or beyond the window (refused)."""
        distance = diff32(new_cumulative, self.cumulative)
        if distance <= 0 or distance > self.max_window:
            return False
        target = self.cumulative_unwrapped + distance
        self._above = {t for t in self._above if t > target}
        self.cumulative_unwrapped = target
        self.cumulative = new_cumulative
        self._advance()
        return True

    def _advance(self) -> None:
        above = self._above
        nxt = self.cumulative_unwrapped + 1
        while nxt in above:
            above.discard(nxt)
            nxt += 1
        self.cumulative_unwrapped = nxt - 1
        self.cumulative = self.cumulative_unwrapped & 0xFFFFFFFF

    @property
    def has_gaps(self) -> bool:
        return bool(self._above)

    @property
    def has_duplicates(self) -> bool:
        return bool(self._duplicates)

    @property
    def highest_unwrapped(self) -> int:
        return max(self._above) if self._above else self.cumulative_unwrapped

    def gap_blocks(self, max_blocks: int = 128) -> tuple[tuple[int, int], ...]:
        """SACK gap ack blocks: (start, end) offsets from the cumulative TSN."""
        if not self._above:
            return ()
        base = self.cumulative_unwrapped
        blocks: list[tuple[int, int]] = []
        start = end = -1
        for t in sorted(self._above):
            offset = t - base
            if offset == end + 1:
                end = offset
                continue
            if start >= 0:
                blocks.append((start, end))
                if len(blocks) == max_blocks:
                    return tuple(blocks)
            start = end = offset
        blocks.append((start, end))
        return tuple(blocks[:max_blocks])

    def take_duplicates(self) -> tuple[int, ...]:
        dups = tuple(self._duplicates)
        self._duplicates.clear()
        return dups


@dataclass(slots=True)
class _Partial:
    """An I-DATA message being reassembled."""

    fragments: dict[int, bytes | memoryview] = field(default_factory=dict)
    ppid: int = 0
    last_fsn: int | None = None
    size: int = 0
    # Refused (over max_message_size): its data is dropped, but its remaining
    # fragments are still accepted (acknowledged) and counted until all are in.
    refused: bool = False
    count: int = 0


@dataclass(eq=False, slots=True)
class _Stream:
    """Ordered delivery state of one inbound stream (small: one per open channel)."""

    next_seq: int = 0
    # Messages that arrived ahead of next_seq; None stands for a refused message
    # whose sequence number must still be passed. Created when first needed.
    waiting: dict[int, Message | None] | None = None


class ReceiveQueue:
    """TSN tracking, reassembly and ordered delivery for one association."""

    # one per association for its life: slots, not an instance dict (the __dict__
    # slot stays empty unless a test sets a stand-in)
    __slots__ = (
        "__dict__",
        "_begins",
        "_ends",
        "_fragments",
        "_partials",
        "_ready",
        "_sorted",
        "_streams",
        "buffered",
        "dropped_messages",
        "interleaving",
        "max_message_size",
        "max_stored",
        "stored",
        "tracker",
        "window",
    )

    def __init__(
        self,
        initial_tsn: int,
        *,
        interleaving: bool = False,
        window: int = 1 << 20,
        max_message_size: int = 262144,
        max_tsn_window: int = DEFAULT_MAX_TSN_WINDOW,
        max_stored: int = DEFAULT_MAX_STORED,
    ) -> None:
        self.tracker = TsnTracker(initial_tsn, max_tsn_window)
        self.interleaving = interleaving
        self.window = window
        self.max_message_size = max_message_size
        self.max_stored = max_stored
        self.buffered = 0  # user bytes held in fragments and waiting messages
        self.stored = 0  # fragments and waiting messages held
        self.dropped_messages = 0  # reassembled but refused (too large, inconsistent)
        self._ready: list[Message] = []
        self._streams: dict[int, _Stream] = {}  # ordered streams only, by stream id
        # Non-interleaved reassembly, keyed by unwrapped TSN.
        self._fragments: dict[int, InboundFragment] = {}
        self._sorted: list[int] = []
        self._begins: list[int] = []
        self._ends: list[int] = []
        # I-DATA reassembly: (stream, unordered, mid) -> partial message.
        self._partials: dict[tuple[int, bool, int], _Partial] = {}

    # --- SACK fields -------------------------------------------------------------

    @property
    def cumulative_tsn(self) -> int:
        return self.tracker.cumulative

    @property
    def rwnd(self) -> int:
        """Advertised receiver window: what is left of the buffer (RFC 9260 6.2)."""
        return max(0, self.window - self.buffered)

    # --- input -------------------------------------------------------------------

    def receive(self, fragment: InboundFragment) -> Verdict:
        """Take one DATA / I-DATA chunk. Only ACCEPTED and DUPLICATE are acknowledged."""
        return self.receive_chunk(
            fragment.tsn,
            fragment.stream_id,
            fragment.seq,
            fragment.ppid,
            fragment.data,
            fragment.unordered,
            fragment.beginning,
            fragment.ending,
            fragment.fsn,
        )

    def receive_chunk(
        self,
        tsn: int,
        stream_id: int,
        seq: int,
        ppid: int,
        data: bytes,
        unordered: bool,
        beginning: bool,
        ending: bool,
        fsn: int,
    ) -> Verdict:
        """:meth:`receive` from the chunk's fields (the association's path: no
        :class:`InboundFragment` unless non-interleaved reassembly stores one)."""
        if not data:
            return _INVALID
        tracker = self.tracker
        # TsnTracker.classify, inline (once per chunk received)
        distance = (tsn - tracker.cumulative) & 0xFFFFFFFF
        if distance >= 0x80000000:
            distance -= 0x100000000
        unwrapped = tracker.cumulative_unwrapped + distance
        if distance <= 0 or unwrapped in tracker._above:
            tracker.note_duplicate(tsn)
            return _DUPLICATE
        if distance > tracker.max_window:
            return Verdict.OUT_OF_WINDOW
        size = len(data)
        # RFC 9260 6.2: with no room the chunk is dropped. The next TSN in sequence
        # still gets in (up to twice the window) so that the buffer can always drain:
        # ordered delivery may be waiting for exactly that chunk.
        if (self.stored >= self.max_stored or self.buffered + size > self.window) and (
            distance != 1 or self.buffered + size > 2 * self.window
        ):
            return Verdict.BUFFER_FULL
        if self.interleaving:
            if not self._add_interleaved(
                stream_id, seq, ppid, data, unordered, beginning, ending, fsn
            ):
                return _INVALID
            if distance == 1 and not tracker._above:
                # TsnTracker.add_unwrapped's in-order case, inline (once per chunk):
                # the cumulative TSN just moves on
                tracker.cumulative_unwrapped = unwrapped
                tracker.cumulative = tsn
            else:
                tracker.add_unwrapped(unwrapped)
        else:
            tracker.add_unwrapped(unwrapped)
            self._add_by_tsn(
                unwrapped,
                InboundFragment(tsn, stream_id, seq, ppid, data, unordered, beginning, ending, fsn),
            )
        return _ACCEPTED

    def receive_interleaved(
        self, tsn: int, stream_id: int, mid: int, last: int, data: bytes | memoryview, flags: int
    ) -> Verdict:
        """:meth:`receive_chunk` for an I-DATA chunk of an interleaving queue, from the
        fields as the chunk carries them: ``last`` is the PPID on a first fragment and
        the FSN on the others, ``flags`` the chunk's flags (U, B, E). The association's
        fast path calls it once per chunk received: it is ``receive_chunk`` and
        ``_add_interleaved`` in one frame, with every check of both, in the same order
        (tests/test_sctp_receive_twins.py compares the two on generated fragments).
        ``data`` may be a view of the packet: a fragment kept for reassembly is then
        copied once, into the message (a message is always ``bytes``)."""
        if not data:
            return _INVALID
        tracker = self.tracker
        # TsnTracker.classify, inline
        distance = (tsn - tracker.cumulative) & 0xFFFFFFFF
        if distance >= 0x80000000:
            distance -= 0x100000000
        unwrapped = tracker.cumulative_unwrapped + distance
        if distance <= 0 or unwrapped in tracker._above:
            tracker.note_duplicate(tsn)
            return _DUPLICATE
        if distance > tracker.max_window:
            return Verdict.OUT_OF_WINDOW
        size = len(data)
        # RFC 9260 6.2, as in receive_chunk
        if (self.stored >= self.max_stored or self.buffered + size > self.window) and (
            distance != 1 or self.buffered + size > 2 * self.window
        ):
            return Verdict.BUFFER_FULL
        # _add_interleaved, inline
        unordered = flags & FLAG_UNORDERED != 0
        beginning = flags & FLAG_BEGINNING
        ending = flags & FLAG_ENDING
        if beginning:
            fsn = 0
            ppid = last
        else:
            fsn = last
            ppid = 0
        key = (stream_id, unordered, mid)
        partials = self._partials
        partial = partials.get(key) if partials else None
        if partial is not None and partial.refused:
            self._refused_fragment(key, partial, bool(ending), fsn)
        else:
            if not unordered:
                stream = self._streams.get(stream_id)
                # diff32(mid, stream.next_seq) < 0, inline
                if stream is not None and (mid - stream.next_seq) & 0xFFFFFFFF >= 0x80000000:
                    return _INVALID  # a message already delivered or skipped
            if partial is None:
                if beginning and ending:
                    whole = data if type(data) is bytes else bytes(data)
                    self._complete(stream_id, unordered, mid, ppid, whole)
                    fragments = None
                else:
                    # _Partial({}) without its __init__ call (once per message of
                    # several fragments): every slot set as the dataclass would
                    # (tests/test_sctp_receive_twins.py compares the two)
                    partial = _new_object(_Partial)
                    partial.fragments = fragments = {}
                    partial.ppid = 0
                    partial.last_fsn = None
                    partial.size = 0
                    partial.refused = False
                    partial.count = 0
                    partials[key] = partial
            else:
                fragments = partial.fragments
                if fsn in fragments:
                    return _INVALID  # the same fragment under another TSN: refuse it
            if partial is not None and fragments is not None:
                last_fsn = partial.last_fsn
                if ending:
                    if last_fsn is not None or (fragments and max(fragments) > fsn):
                        return _INVALID
                    partial.last_fsn = last_fsn = fsn
                elif last_fsn is not None and fsn > last_fsn:
                    return _INVALID
                if beginning:
                    partial.ppid = ppid
                fragments[fsn] = data
                partial.size += size
                self.buffered += size
                self.stored += 1
                count = len(fragments)
                if last_fsn is None or count != last_fsn + 1:
                    if partial.size > self.max_message_size:
                        self._refuse_partial(key, partial)
                else:
                    del partials[key]
                    self.buffered -= partial.size
                    self.stored -= count
                    if count == 2:
                        whole = b"".join((fragments[0], fragments[1]))
                    else:
                        whole = b"".join(map(fragments.__getitem__, range(count)))  # (in FSN order)
                    self._complete(stream_id, unordered, mid, partial.ppid, whole)
        # TsnTracker.add_unwrapped, inline
        if distance == 1 and not tracker._above:
            tracker.cumulative_unwrapped = unwrapped
            tracker.cumulative = tsn
        else:
            tracker.add_unwrapped(unwrapped)
        return _ACCEPTED

    def pop_messages(self) -> list[Message]:
        """Whole messages ready for the application, in delivery order."""
        ready, self._ready = self._ready, []
        return ready

    # --- non-interleaved reassembly ------------------------------------------------

    def _add_by_tsn(self, u: int, fragment: InboundFragment) -> None:
        self._fragments[u] = fragment
        insort(self._sorted, u)
        if fragment.beginning:
            insort(self._begins, u)
        if fragment.ending:
            insort(self._ends, u)
        self.buffered += len(fragment.data)
        self.stored += 1
        # The message around u runs from the last B at or before u to the first E at
        # or after it, provided no other E / B lies in between and no TSN is missing.
        i = bisect_right(self._begins, u)
        if i == 0:
            return
        first = self._begins[i - 1]
        j = bisect_left(self._ends, u)
        if j == len(self._ends):
            return
        last = self._ends[j]
        if j > 0 and self._ends[j - 1] >= first:
            return
        if i < len(self._begins) and self._begins[i] <= last:
            return
        lo = bisect_left(self._sorted, first)
        hi = bisect_right(self._sorted, last)
        if hi - lo != last - first + 1:
            return
        keys = self._sorted[lo:hi]
        del self._sorted[lo:hi]
        del self._begins[i - 1]
        del self._ends[j]
        parts = [self._fragments.pop(k) for k in keys]
        for part in parts:
            self.buffered -= len(part.data)
        self.stored -= len(parts)
        head = parts[0]
        consistent = all(
            p.stream_id == head.stream_id
            and p.unordered == head.unordered
            and (head.unordered or p.seq == head.seq)
            for p in parts
        )
        if not consistent:
            self.dropped_messages += 1
            return
        data = head.data if len(parts) == 1 else b"".join(p.data for p in parts)
        self._complete(head.stream_id, head.unordered, head.seq, head.ppid, data)

    # --- interleaved (I-DATA) reassembly -------------------------------------------

    def _add_interleaved(
        self,
        stream_id: int,
        seq: int,
        ppid: int,
        data: bytes,
        unordered: bool,
        beginning: bool,
        ending: bool,
        fsn: int,
    ) -> bool:
        key = (stream_id, unordered, seq)
        if beginning:
            fsn = 0
        partials = self._partials
        partial = partials.get(key) if partials else None
        if partial is not None and partial.refused:
            self._refused_fragment(key, partial, ending, fsn)
            return True
        if not unordered:
            stream = self._streams.get(stream_id)
            # diff32(seq, stream.next_seq) < 0, inline
            if stream is not None and (seq - stream.next_seq) & 0xFFFFFFFF >= 0x80000000:
                return False  # a message already delivered or skipped
        if partial is None:
            if beginning and ending:
                # a whole message in one chunk: nothing to reassemble
                self._complete(stream_id, unordered, seq, ppid, data)
                return True
            # (a dict given: no default_factory call); stored now: no check below
            # refuses a message's first fragment to arrive
            partial = partials[key] = _Partial({})
        fragments = partial.fragments
        if fsn in fragments:
            return False  # the same fragment under another TSN: refuse it
        last_fsn = partial.last_fsn
        if ending:
            if last_fsn is not None or (fragments and max(fragments) > fsn):
                return False
            partial.last_fsn = last_fsn = fsn
        elif last_fsn is not None and fsn > last_fsn:
            return False
        if beginning:
            partial.ppid = ppid
        fragments[fsn] = data
        size = len(data)
        partial.size += size
        self.buffered += size
        self.stored += 1
        count = len(fragments)
        if last_fsn is None or count != last_fsn + 1:
            if partial.size > self.max_message_size:
                self._refuse_partial(key, partial)
            return True
        del partials[key]
        self.buffered -= partial.size
        self.stored -= count
        if count == 2:  # a message a little over one packet (1200 octets): the usual case
            # (join, not +: the fast path may have kept fragments as views of packets)
            whole = b"".join((fragments[0], fragments[1]))
        else:
            whole = b"".join(map(fragments.__getitem__, range(count)))  # (in FSN order)
        self._complete(stream_id, unordered, seq, partial.ppid, whole)
        return True

    def _refuse_partial(self, key: tuple[int, bool, int], partial: _Partial) -> None:
        """Too large: free its data, keep a marker (one stored entry) that takes the
        rest of its fragments, and pass its sequence number on an ordered stream."""
        self.dropped_messages += 1
        self.buffered -= partial.size
        self.stored -= len(partial.fragments) - 1
        partial.count = len(partial.fragments)
        partial.fragments.clear()
        partial.size = 0
        partial.refused = True
        stream_id, unordered, seq = key
        if not unordered:
            self._pass_refused(stream_id, seq)
        self._refused_fragment(key, partial, False, -1, counted=True)

    def _refused_fragment(
        self,
        key: tuple[int, bool, int],
        partial: _Partial,
        ending: bool,
        fsn: int,
        *,
        counted: bool = False,
    ) -> None:
        if not counted:
            partial.count += 1
            if ending:
                partial.last_fsn = fsn
        if partial.last_fsn is not None and partial.count > partial.last_fsn:
            self._drop_partial(key)  # every fragment is in: forget the marker

    def _drop_partial(self, key: tuple[int, bool, int]) -> None:
        partial = self._partials.pop(key)
        self.buffered -= partial.size
        self.stored -= 1 if partial.refused else len(partial.fragments)

    # --- ordered delivery ----------------------------------------------------------

    def _complete(self, stream_id: int, unordered: bool, seq: int, ppid: int, data: bytes) -> None:
        if len(data) > self.max_message_size:
            self.dropped_messages += 1
            if not unordered:
                self._pass_refused(stream_id, seq)
            return
        message = message_received(stream_id, ppid, data)
        if unordered:
            self._ready.append(message)
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = _Stream()
        waiting = stream.waiting
        if seq == stream.next_seq and waiting is None:
            # in order with nothing waiting: the common case, no serial arithmetic
            self._ready.append(message)
            stream.next_seq = (seq + 1) & (0xFFFFFFFF if self.interleaving else 0xFFFF)
            return
        distance = self._seq_diff(seq, stream.next_seq)
        if distance < 0 or (waiting is not None and seq in waiting):
            self.dropped_messages += 1  # already delivered or skipped
            return
        if distance > 0:
            if waiting is None:
                waiting = stream.waiting = {}
            waiting[seq] = message
            self.buffered += len(data)
            self.stored += 1
            return
        self._ready.append(message)
        stream.next_seq = self._seq_add(seq, 1)
        self._drain(stream)

    def _pass_refused(self, stream_id: int, seq: int) -> None:
        """A refused ordered message still uses up its sequence number, or every later
        message on its stream would wait for it forever."""
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = _Stream()
        distance = self._seq_diff(seq, stream.next_seq)
        waiting = stream.waiting
        if distance < 0 or (waiting is not None and seq in waiting):
            return
        if distance > 0:
            if waiting is None:
                waiting = stream.waiting = {}
            waiting[seq] = None
            self.stored += 1
            return
        stream.next_seq = self._seq_add(seq, 1)
        self._drain(stream)

    def _drain(self, stream: _Stream) -> None:
        waiting = stream.waiting
        if waiting is None:
            return
        while stream.next_seq in waiting:
            message = waiting.pop(stream.next_seq)
            self.stored -= 1
            if message is not None:
                self.buffered -= len(message.data)
                self._ready.append(message)
            stream.next_seq = self._seq_add(stream.next_seq, 1)
        if not waiting:
            stream.waiting = None

    def _seq_diff(self, a: int, b: int) -> int:
        return diff32(a, b) if self.interleaving else diff16(a, b)

    def _seq_add(self, a: int, n: int) -> int:
        return add32(a, n) if self.interleaving else add16(a, n)

    # --- FORWARD-TSN / I-FORWARD-TSN (RFC 3758, RFC 8260) --------------------------

    def skip(self, new_cumulative_tsn: int, streams: tuple[tuple[int, bool, int], ...]) -> bool:
        """Apply a FORWARD-TSN (``streams`` = (stream, False, ssn) entries) or an
        I-FORWARD-TSN ((stream, unordered, mid) entries). False when the new
        cumulative TSN is out of the window (the chunk is then ignored); a stale one
        still applies its stream entries, which are idempotent."""
        distance = diff32(new_cumulative_tsn, self.tracker.cumulative)
        if distance > self.tracker.max_window:
            return False
        if distance > 0:
            target = self.tracker.cumulative_unwrapped + distance
            self.tracker.forward(new_cumulative_tsn)
            if not self.interleaving:
                self._discard_through(target)
        for stream_id, unordered, seq in streams:
            if self.interleaving:
                for key in [
                    k
                    for k in self._partials
                    if k[0] == stream_id and k[1] == unordered and diff32(k[2], seq) <= 0
                ]:
                    self._drop_partial(key)
            if unordered:
                continue
            stream = self._streams.get(stream_id)
            if stream is None:
                stream = self._streams[stream_id] = _Stream()
            if self._seq_diff(seq, stream.next_seq) < 0:
                continue  # already past it
            # Deliver what completed before the skipped message, then move past it.
            waiting = stream.waiting or {}
            next_seq = stream.next_seq
            for waiting_seq in sorted(
                (s for s in waiting if self._seq_diff(s, seq) <= 0),
                key=lambda s: self._seq_diff(s, next_seq),
            ):
                message = waiting.pop(waiting_seq)
                self.stored -= 1
                if message is not None:
                    self.buffered -= len(message.data)
                    self._ready.append(message)
            stream.next_seq = self._seq_add(seq, 1)
            self._drain(stream)
        return True

    def _discard_through(self, target: int) -> None:
        """Drop DATA fragments at or below the unwrapped TSN ``target``."""
        hi = bisect_right(self._sorted, target)
        for key in self._sorted[:hi]:
            part = self._fragments.pop(key)
            self.buffered -= len(part.data)
            self.stored -= 1
        del self._sorted[:hi]
        del self._begins[: bisect_right(self._begins, target)]
        del self._ends[: bisect_right(self._ends, target)]

    # --- stream reset (RFC 6525) ----------------------------------------------------

    def reset_streams(self, stream_ids: tuple[int, ...]) -> None:
        """The peer reset these outgoing streams (all when empty): sequence numbers
        restart at 0. Called once every TSN before the reset was received."""
        keys = list(self._streams) if not stream_ids else list(stream_ids)
        for key in keys:
            stream = self._streams.pop(key, None)
            if stream is not None:
                for message in (stream.waiting or {}).values():
                    self.stored -= 1
                    if message is not None:
                        self.buffered -= len(message.data)
        if self.interleaving:
            wanted = set(stream_ids)
            for partial_key in [k for k in self._partials if not wanted or k[0] in wanted]:
                self._drop_partial(partial_key)
