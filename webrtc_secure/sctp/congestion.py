"""Congestion control of one SCTP path (RFC 9260 7.2).

cwnd, ssthresh and partial_bytes_acked with slow start, congestion avoidance, the
reaction to a T3-rtx expiry and fast recovery. Byte counts are user data bytes, the
same unit the peer's a_rwnd uses.
"""

from __future__ import annotations

from dataclasses import dataclass


def initial_cwnd(mtu: int) -> int:
    """RFC 9260 7.2.1: min(4*MTU, max(2*MTU, 4404))."""
    return min(4 * mtu, max(2 * mtu, 4404))


@dataclass(slots=True)
class CongestionControl:
    """cwnd / ssthresh / partial_bytes_acked and the fast recovery state."""

    mtu: int
    cwnd: int = 0
    ssthresh: int = 1 << 31
    partial_bytes_acked: int = 0
    fast_recovery_exit: int | None = None  # unwrapped TSN ending fast recovery

    def __post_init__(self) -> None:
        if self.cwnd == 0:
            self.cwnd = initial_cwnd(self.mtu)

    @property
    def in_fast_recovery(self) -> bool:
        return self.fast_recovery_exit is not None

    def on_ack(self, bytes_acked: int, cum_advanced: bool, flight_before: int) -> None:
        """A SACK newly acknowledged ``bytes_acked``; ``flight_before`` is the flight
        size before it (the window counts as used when it was within one MTU)."""
        # (in_fast_recovery and min() inline: once per SACK)
        if bytes_acked <= 0 or not cum_advanced or self.fast_recovery_exit is not None:
            return
        mtu = self.mtu
        fully_used = flight_before + mtu > self.cwnd
        if self.cwnd <= self.ssthresh:
            # Slow start (7.2.1): grow by at most one MTU per SACK.
            if fully_used:
                self.cwnd += bytes_acked if bytes_acked < mtu else mtu
            return
        # Congestion avoidance (7.2.2): one MTU per window of acknowledged bytes.
        self.partial_bytes_acked += bytes_acked
        if self.partial_bytes_acked >= self.cwnd and fully_used:
            self.partial_bytes_acked -= self.cwnd
            self.cwnd += self.mtu

    def on_all_acked(self) -> None:
        self.partial_bytes_acked = 0

    def on_cumulative(self, cumulative_unwrapped: int) -> None:
        """Leave fast recovery once the cumulative ack reaches its exit point."""
        if self.fast_recovery_exit is not None and cumulative_unwrapped >= self.fast_recovery_exit:
            self.fast_recovery_exit = None

    def on_fast_retransmit(self, highest_outstanding: int) -> None:
        """7.2.4: halve once per recovery episode."""
        if self.in_fast_recovery:
            return
        self.ssthresh = max(self.cwnd // 2, 4 * self.mtu)
        self.cwnd = self.ssthresh
        self.partial_bytes_acked = 0
        self.fast_recovery_exit = highest_outstanding

    def on_timeout(self) -> None:
        """7.2.3: T3-rtx expired: back to one MTU, slow start again."""
        self.ssthresh = max(self.cwnd // 2, 4 * self.mtu)
        self.cwnd = self.mtu
        self.partial_bytes_acked = 0
        self.fast_recovery_exit = None
