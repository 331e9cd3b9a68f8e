"""Incoming handshake reassembly (RFC 6347 4.2.2 and 4.2.3).

Fragments may arrive in any order, overlap, repeat, or belong to messages ahead of
the one expected. Everything here is bounded: the declared message size, how many
messages ahead are buffered, and how many fragments one message may take. A fragment
that contradicts what was already received for its message (another type or length,
or different bytes in an overlap) is dropped, never merged; the first one wins.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from webrtc_secure.dtls.messages import HandshakeFragment

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024
DEFAULT_MAX_MESSAGES_AHEAD = 8
DEFAULT_MAX_FRAGMENTS_PER_MESSAGE = 512


class Message(NamedTuple):
    """A whole handshake message, with the epoch of the record(s) it came in, and its
    transcript form (header and body) when it arrived as that, unfragmented."""

    msg_type: int
    message_seq: int
    body: bytes
    epoch: int
    framed: bytes | None = None


class _Partial:
    __slots__ = ("covered", "data", "epoch", "fragments", "missing", "msg_type")

    def __init__(self, msg_type: int, length: int, epoch: int) -> None:
        self.msg_type = msg_type
        self.data = bytearray(length)
        self.covered = bytearray(length)  # 1 where data holds received octets
        self.missing = length
        self.fragments = 0
        self.epoch = epoch


#: coverage flag (0 or 1) -> byte mask (0x00 or 0xFF)
_FLAG_TO_MASK = bytes([0, 0xFF] + [0] * 254)


def _differs_where_covered(old: bytes | bytearray, new: bytes, covered: bytearray) -> bool:
    """Whether ``new`` disagrees with ``old`` at any covered position: one XOR and one
    AND over whole integers, not a loop over octets."""
    diff = int.from_bytes(old, "big") ^ int.from_bytes(new, "big")
    return bool(diff & int.from_bytes(covered.translate(_FLAG_TO_MASK), "big"))


class Reassembler:
    """Turns fragments into whole messages, delivered strictly in message_seq order."""

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_messages_ahead: int = DEFAULT_MAX_MESSAGES_AHEAD,
        max_fragments_per_message: int = DEFAULT_MAX_FRAGMENTS_PER_MESSAGE,
    ) -> None:
        self.next_seq = 0
        self.max_message_size = max_message_size
        self.max_messages_ahead = max_messages_ahead
        self.max_fragments_per_message = max_fragments_per_message
        self._partial: dict[int, _Partial] = {}
        self._whole: dict[int, Message] = {}
        self.dropped = 0

    def reset(self, next_seq: int) -> None:
        """Forget everything buffered and expect ``next_seq`` next."""
        self._partial.clear()
        self._whole.clear()
        self.next_seq = next_seq

    @property
    def buffered_bytes(self) -> int:
        return sum(len(p.data) for p in self._partial.values()) + sum(
            len(m.body) for m in self._whole.values()
        )

    @property
    def has_gap(self) -> bool:
        """Whether something of a later message than the next one is held: a fragment
        in between was lost or overtaken (DTLS 1.3 then acknowledges at once)."""
        next_seq = self.next_seq
        return any(seq > next_seq for seq in self._partial) or any(
            seq > next_seq for seq in self._whole
        )

    def add(self, fragment: HandshakeFragment, epoch: int) -> bool:
        """Store one fragment. Returns False when it was dropped (old, too far ahead,
        oversized, contradictory or over the fragment budget)."""
        return self.accept(
            fragment.msg_type,
            fragment.length,
            fragment.message_seq,
            fragment.fragment_offset,
            fragment.body,
            epoch,
        )

    def accept_in_order(
        self,
        msg_type: int,
        length: int,
        seq: int,
        fragment_offset: int,
        body: bytes,
        epoch: int,
        framed: bytes | None = None,
    ) -> Message | None:
        """:meth:`accept` then :meth:`pop_ready` in one step, for the usual case only: a
        whole message, the one expected next, with nothing else buffered. Returns that
        message, or None when the case does not apply, and then nothing was done."""
        if (
            seq != self.next_seq
            or fragment_offset
            or len(body) != length
            or length > self.max_message_size
            or self._whole
            or self._partial
        ):
            return None
        self.next_seq = seq + 1
        # tuple.__new__ builds the NamedTuple without its generated Python __new__
        return tuple.__new__(Message, (msg_type, seq, body, epoch, framed))

    def accept(
        self, msg_type: int, length: int, seq: int, fragment_offset: int, body: bytes, epoch: int
    ) -> bool:
        """:meth:`add` on the fragment's fields (no fragment object needed)."""
        if seq < self.next_seq or seq >= self.next_seq + self.max_messages_ahead:
            return False
        if length > self.max_message_size:
            return self._drop("message of %d octets exceeds the limit", length)
        fragment_length = len(body)
        end = fragment_offset + fragment_length
        if end > length:
            return self._drop("fragment past message end")
        if fragment_length == 0 and length != 0:
            return self._drop("empty fragment of a non-empty message")
        if seq in self._whole:
            return self._check_whole_repeat(msg_type, length, seq, fragment_offset, body, epoch)
        partial = self._partial.get(seq)
        if partial is None and fragment_length == length:
            # the usual case, a whole message in one fragment: no coverage bookkeeping
            self._whole[seq] = Message(msg_type, seq, body, epoch)
            return True
        if partial is None:
            partial = _Partial(msg_type, length, epoch)
            self._partial[seq] = partial
        elif partial.msg_type != msg_type or len(partial.data) != length:
            return self._drop("fragment contradicts message %d header", seq)
        elif partial.epoch != epoch:
            return self._drop("fragment of message %d in another epoch", seq)
        if partial.fragments >= self.max_fragments_per_message:
            return self._drop("too many fragments for message %d", seq)
        start = fragment_offset
        covered = partial.covered[start:end]
        already = covered.count(1)
        if already and _differs_where_covered(partial.data[start:end], body, covered):
            return self._drop("overlapping fragment with different content")
        partial.fragments += 1
        partial.data[start:end] = body
        partial.missing -= (end - start) - already
        partial.covered[start:end] = b"\x01" * (end - start)
        return True

    def _check_whole_repeat(
        self, msg_type: int, length: int, seq: int, fragment_offset: int, body: bytes, epoch: int
    ) -> bool:
        """A fragment of a message already held whole: accept only if it agrees."""
        whole = self._whole[seq]
        if (
            whole.msg_type != msg_type
            or len(whole.body) != length
            or whole.epoch != epoch
            or whole.body[fragment_offset : fragment_offset + len(body)] != body
        ):
            return self._drop("fragment contradicts message %d", seq)
        return True

    def pop_ready(self) -> Message | None:
        """The next in-order complete message, if there is one."""
        whole = self._whole.pop(self.next_seq, None)
        if whole is not None:
            self._partial.pop(self.next_seq, None)
            self.next_seq += 1
            return whole
        partial = self._partial.get(self.next_seq)
        if partial is None or partial.missing:
            return None
        del self._partial[self.next_seq]
        message = Message(partial.msg_type, self.next_seq, bytes(partial.data), partial.epoch)
        self.next_seq += 1
        return message

    def _drop(self, reason: str, *args: object) -> bool:
        self.dropped += 1
        logger.debug("dropping handshake fragment: " + reason, *args)
        return False
