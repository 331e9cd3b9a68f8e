"""Retransmission timeout estimation (RFC 6298, as used by RFC 9260 6.3.1).

SRTT and RTTVAR are kept per RFC 6298 2.2/2.3 with alpha = 1/8 and beta = 1/4; the
RTO is clamped to [rto_min, rto_max]. :meth:`backoff` doubles it after a T3-rtx (or
T1/T2) expiry (RFC 9260 6.3.3 E2) until the next valid measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 0.125
BETA = 0.25
# RFC 6298 2.2: G, the clock granularity; our clock is a float, but a floor keeps
# RTO > SRTT on perfectly regular paths where RTTVAR decays to zero.
CLOCK_GRANULARITY = 0.001
# the smoothing factors' complements, computed once (observe runs once per SACK)
_KEEP_RTTVAR = 1 - BETA
_KEEP_SRTT = 1 - ALPHA


@dataclass(slots=True)
class RtoEstimator:
    """SRTT, RTTVAR and RTO of one path (SCTP over DTLS has exactly one)."""

    rto_initial: float = 1.0
    rto_min: float = 0.4
    rto_max: float = 60.0
    srtt: float | None = None
    rttvar: float = 0.0
    rto: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.rto_min <= self.rto_initial <= self.rto_max:
            raise ValueError("need 0 < rto_min <= rto_initial <= rto_max")
        if self.rto == 0.0:
            self.rto = self.rto_initial

    def observe(self, rtt: float) -> None:
        """Feed one RTT measurement (seconds) from a chunk sent exactly once (Karn)."""
        if rtt < 0:
            return
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            srtt = self.srtt
            self.rttvar = _KEEP_RTTVAR * self.rttvar + BETA * abs(srtt - rtt)
            self.srtt = _KEEP_SRTT * srtt + ALPHA * rtt
        # _clamp, inline, and max() as conditionals (once per SACK)
        spread = 4 * self.rttvar
        rto = self.srtt + (spread if spread > CLOCK_GRANULARITY else CLOCK_GRANULARITY)
        if rto > self.rto_max:
            rto = self.rto_max
        elif rto < self.rto_min:
            rto = self.rto_min
        self.rto = rto

    def backoff(self) -> None:
        """Double the RTO after a timer expiry (RFC 6298 5.5), up to rto_max."""
        self.rto = self._clamp(self.rto * 2)

    def _clamp(self, value: float) -> float:
        return min(self.rto_max, max(self.rto_min, value))
