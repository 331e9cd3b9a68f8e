"""RtoEstimator.observe against RFC 6298 2.2-2.4 written out plainly: the inlined,
call-free form must give the same SRTT, RTTVAR and RTO, float for float."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_secure.sctp.rto import ALPHA, BETA, CLOCK_GRANULARITY, RtoEstimator


def _reference(
    samples: list[float], rto_initial: float, rto_min: float, rto_max: float
) -> list[tuple[float | None, float, float]]:
    """SRTT, RTTVAR, RTO after each sample, per RFC 6298 (negative samples ignored)."""
    srtt: float | None = None
    rttvar = 0.0
    rto = rto_initial
    out = []
    for rtt in samples:
        if rtt >= 0:
            if srtt is None:
                srtt, rttvar = rtt, rtt / 2
            else:
                rttvar = (1 - BETA) * rttvar + BETA * abs(srtt - rtt)
                srtt = (1 - ALPHA) * srtt + ALPHA * rtt
            rto = min(rto_max, max(rto_min, srtt + max(CLOCK_GRANULARITY, 4 * rttvar)))
        out.append((srtt, rttvar, rto))
    return out


@settings(max_examples=300, deadline=None)
@given(
    samples=st.lists(
        st.one_of(
            st.floats(min_value=0.0, max_value=120.0),
            st.floats(min_value=0.0, max_value=0.002),  # around the clock granularity
            st.just(-0.001),  # a clock going backwards: ignored
        ),
        max_size=40,
    ),
    bounds=st.sampled_from([(1.0, 0.4, 60.0), (1.0, 0.2, 10.0), (0.01, 0.001, 0.05)]),
)
def test_observe_matches_rfc6298(
    samples: list[float], bounds: tuple[float, float, float]
) -> None:
    rto_initial, rto_min, rto_max = bounds
    estimator = RtoEstimator(rto_initial=rto_initial, rto_min=rto_min, rto_max=rto_max)
    seen = []
    for rtt in samples:
        estimator.observe(rtt)
        seen.append((estimator.srtt, estimator.rttvar, estimator.rto))
    assert seen == _reference(samples, rto_initial, rto_min, rto_max)


def test_observe_clamps_both_ways() -> None:
    estimator = RtoEstimator(rto_initial=1.0, rto_min=0.4, rto_max=2.0)
    estimator.observe(0.0)
    assert estimator.rto == 0.4  # SRTT 0 + G: below the floor
    estimator = RtoEstimator(rto_initial=1.0, rto_min=0.4, rto_max=2.0)
    estimator.observe(30.0)
    assert estimator.rto == 2.0  # 30 + 4 * 15: above the ceiling
