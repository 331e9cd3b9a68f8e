"""``ReceiveQueue.receive_interleaved`` (the association's fast path for I-DATA)
against ``ReceiveQueue.receive_chunk`` (the general path): two queues built alike take
the same generated fragments, one through each, and after every fragment must return
the same verdict and hold the same state (TSN tracker, duplicates to report, partial
messages, ordered delivery state, stored and buffered counts, refusals, messages
ready), including duplicates, TSNs behind the cumulative one or out of the window,
full buffers, repeated or inconsistent fragment numbers, messages too large, messages
already delivered, and serial number wrap.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.sctp.chunks import FLAG_BEGINNING, FLAG_ENDING, FLAG_UNORDERED
from webrtc_secure.sctp.receive_queue import ReceiveQueue, Verdict


def _state(queue: ReceiveQueue) -> Any:
    tracker = queue.tracker
    return (
        tracker.cumulative,
        tracker.cumulative_unwrapped,
        sorted(tracker._above),
        list(tracker._duplicates),
        queue.buffered,
        queue.stored,
        queue.dropped_messages,
        {
            key: (dict(p.fragments), p.ppid, p.last_fsn, p.size, p.refused, p.count)
            for key, p in queue._partials.items()
        },
        {
            sid: (s.next_seq, None if s.waiting is None else dict(s.waiting))
            for sid, s in queue._streams.items()
        },
        list(queue._ready),
    )


# (TSN offset from the initial TSN, stream, MID, flags (U, B, E), PPID or FSN, octets,
# how the fast queue takes it: 0 receive_interleaved with bytes, 1 with a view of a
# packet, 2 receive_chunk: the association's general path may add fragments to a
# message whose others the fast path kept as views)
fragment = st.tuples(
    st.one_of(st.integers(-3, 40), st.sampled_from((1 << 31, 70000, -(1 << 31)))),
    st.integers(0, 2),
    st.one_of(st.integers(0, 4), st.just(0xFFFFFFFF)),
    st.integers(0, 7),
    st.integers(0, 5),
    st.integers(0, 60),
    st.sampled_from((0, 1, 1, 1, 2)),
)


@settings(max_examples=300, deadline=None)
@given(
    initial=st.sampled_from((0, 1000, 0xFFFFFFF0, 0xFFFFFFFF)),
    window=st.sampled_from((100, 400, 1 << 20)),
    max_message_size=st.sampled_from((50, 150, 262144)),
    max_stored=st.sampled_from((4, 20000)),
    max_tsn_window=st.sampled_from((30, 65536)),
    fragments=st.lists(fragment, max_size=60),
)
def test_receive_interleaved_is_receive_chunk(
    initial: int,
    window: int,
    max_message_size: int,
    max_stored: int,
    max_tsn_window: int,
    fragments: list[tuple[int, int, int, int, int, int, int]],
) -> None:
    def queue() -> ReceiveQueue:
        return ReceiveQueue(
            initial,
            interleaving=True,
            window=window,
            max_message_size=max_message_size,
            max_tsn_window=max_tsn_window,
            max_stored=max_stored,
        )

    fast, general = queue(), queue()
    for offset, stream_id, mid, flags, last, size, how in fragments:
        tsn = (initial + offset) & 0xFFFFFFFF
        data = bytes([offset & 0xFF]) * size
        beginning = flags & FLAG_BEGINNING != 0
        fields = (
            tsn,
            stream_id,
            mid,
            last if beginning else 0,
            data,
            flags & FLAG_UNORDERED != 0,
            beginning,
            flags & FLAG_ENDING != 0,
            0 if beginning else last,
        )
        if how == 2:
            verdict = fast.receive_chunk(*fields)
        elif how == 1:
            packet = b"\xee" * 32 + data + b"\xee" * 3
            view = memoryview(packet)[32 : 32 + size]
            verdict = fast.receive_interleaved(tsn, stream_id, mid, last, view, flags)
        else:
            verdict = fast.receive_interleaved(tsn, stream_id, mid, last, data, flags)
        expected = general.receive_chunk(*fields)
        assert verdict is expected
        assert _state(fast) == _state(general)
    messages = fast.pop_messages()
    assert messages == general.pop_messages()
    assert all(type(m.data) is bytes for m in messages)


def test_in_order_fragments_of_a_large_message_are_delivered_whole() -> None:
    """The common case, spelled out: 58 fragments in order, one message."""
    queue = ReceiveQueue(7, interleaving=True)
    pieces = [bytes([i]) * 1124 for i in range(58)]
    for fsn, piece in enumerate(pieces):
        flags = (FLAG_BEGINNING if fsn == 0 else 0) | (FLAG_ENDING if fsn == 57 else 0)
        verdict = queue.receive_interleaved(7 + fsn, 0, 0, 53 if fsn == 0 else fsn, piece, flags)
        assert verdict is Verdict.ACCEPTED
    (message,) = queue.pop_messages()
    assert (message.stream_id, message.ppid, message.data) == (0, 53, b"".join(pieces))
    assert queue.buffered == queue.stored == 0 and not queue._partials
    assert queue.tracker.cumulative == 7 + 57


def _view(data: bytes) -> memoryview:
    """``data`` as the fast path passes user data: a view into a packet."""
    return memoryview(b"\xee" * 20 + data + b"\xee" * 3)[20 : 20 + len(data)]


def test_fragments_kept_as_views_make_a_message_of_bytes() -> None:
    """The fast path keeps fragments as views of packets; the general path (a chunk
    bundled with a control chunk, say) may bring a message's other fragments."""
    for count in (1, 2, 3):
        for general in (False, True):
            queue = ReceiveQueue(100, interleaving=True)
            flags = FLAG_BEGINNING | (FLAG_ENDING if count == 1 else 0)
            verdict = queue.receive_interleaved(100, 1, 0, 53, _view(b"first"), flags)
            assert verdict is Verdict.ACCEPTED
            for fsn in range(1, count):
                piece, ending = b"-%d" % fsn, fsn == count - 1
                if general:
                    verdict = queue.receive_chunk(
                        100 + fsn, 1, 0, 0, piece, False, False, ending, fsn
                    )
                else:
                    verdict = queue.receive_interleaved(
                        100 + fsn, 1, 0, fsn, _view(piece), FLAG_ENDING if ending else 0
                    )
                assert verdict is Verdict.ACCEPTED
            (message,) = queue.pop_messages()
            assert type(message.data) is bytes
            assert message.data == b"first" + b"".join(b"-%d" % i for i in range(1, count))


def test_a_new_partial_message_has_every_field_the_dataclass_gives() -> None:
    """receive_interleaved sets a new _Partial's slots one by one instead of calling its
    __init__: after a first fragment every field the dataclass declares must hold what
    the constructor and receive_chunk's steps make of it (a field added to _Partial
    without a line there fails here)."""
    fast, general = ReceiveQueue(5, interleaving=True), ReceiveQueue(5, interleaving=True)
    assert fast.receive_interleaved(5, 1, 0, 51, b"head", FLAG_BEGINNING) is Verdict.ACCEPTED
    assert general.receive_chunk(5, 1, 0, 51, b"head", False, True, False, 0) is Verdict.ACCEPTED
    (got,) = fast._partials.values()
    (want,) = general._partials.values()
    for field in dataclasses.fields(want):
        assert getattr(got, field.name) == getattr(want, field.name), field.name
