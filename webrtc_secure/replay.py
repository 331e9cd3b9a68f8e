"""Sliding-window replay detection (RFC 3711 3.3.2, RFC 6347 4.1.2.6).

SRTP (48-bit packet index ROC||SEQ), SRTCP (31-bit index) and the DTLS record layer
(48-bit sequence number per epoch) all share this detector. The check and the
update are separate on purpose: a receiver checks before the (expensive)
authentication, and commits the index only after the packet authenticated, so a
forged packet never consumes a window slot.
"""

from __future__ import annotations

DEFAULT_WINDOW = 128


class ReplayWindow:
    """Tracks which indices at or below the highest one seen were already received."""

    __slots__ = ("_bitmap", "_highest", "_mask", "size")

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size < 1:
            raise ValueError("replay window size must be at least 1")
        self.size = size
        self._mask = (1 << size) - 1
        self._highest = -1  # no index seen yet
        # bit i set <=> index (highest - i) was received
        self._bitmap = 0

    @property
    def highest(self) -> int:
        """Highest index committed so far, or -1 before the first one."""
        return self._highest

    def is_fresh(self, index: int) -> bool:
        """True when ``index`` was never committed and is not too old to judge."""
        if index > self._highest:
            return True
        delta = self._highest - index
        if delta >= self.size:
            return False
        return not (self._bitmap >> delta) & 1

    def commit(self, index: int) -> None:
        """Mark ``index`` received. Call only after the packet authenticated."""
        if index > self._highest:
            shift = index - self._highest
            self._bitmap = ((self._bitmap << shift) | 1) & self._mask if shift < self.size else 1
            self._highest = index
        else:
            delta = self._highest - index
            if delta < self.size:
                self._bitmap |= 1 << delta
