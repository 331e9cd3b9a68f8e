"""SRTP/SRTCP packets per second, ours next to libsrtp (pylibsrtp) in the same run.

Each row times protect or unprotect of a batch of distinct packets (libsrtp refuses to
protect a sequence number twice), best of a few rounds, and reports the ratio
ours/libsrtp in packets per second (>= 1.0 means we are at least as fast).
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the repository root, so the benchmark shares the tests' libsrtp helper
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.interop.libsrtp import libsrtp_session
from webrtc_secure.srtp import Profile, SrtpContext


def _rate(make: Callable[[], Callable[[bytes], bytes]], packets: list[bytes]) -> float:
    """Packets per CPU second of one pass over ``packets`` with fresh state.

    CPU time of this process, not wall time: the machines are shared, and time spent
    descheduled says nothing about either implementation.
    """
    fn = make()
    start = time.process_time()
    for p in packets:
        fn(p)
    return len(packets) / (time.process_time() - start)


def _best_rates(
    ours: Callable[[], Callable[[bytes], bytes]],
    reference: Callable[[], Callable[[bytes], bytes]],
    packets: list[bytes],
    rounds: int,
) -> tuple[float, float]:
    """Best of ``rounds`` for each, the two interleaved so that load from other
    processes on a shared machine hits both sides alike."""
    best_ours = best_ref = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, _rate(ours, packets))
        best_ref = max(best_ref, _rate(reference, packets))
    return best_ours, best_ref


Factory = Callable[[], Callable[[bytes], bytes]]


def _cases(
    profile: Profile,
    key: bytes,
    salt: bytes,
    rtp: list[bytes],
    srtp: list[bytes],
    rtcp: list[bytes],
    srtcp: list[bytes],
) -> dict[str, tuple[list[bytes], Factory, Factory]]:
    """Per operation: its input packets, and factories for ours and libsrtp's function."""

    def ours(name: str) -> Factory:
        return lambda: getattr(SrtpContext(profile, key, salt), name)  # type: ignore[no-any-return]

    def lib(name: str, outbound: bool) -> Factory:
        return lambda: getattr(libsrtp_session(profile, key, salt, outbound), name)  # type: ignore[no-any-return]

    return {
        "protect": (rtp, ours("protect"), lib("protect", True)),
        "unprotect": (srtp, ours("unprotect"), lib("unprotect", False)),
        "protect_rtcp": (rtcp, ours("protect_rtcp"), lib("protect_rtcp", True)),
        "unprotect_rtcp": (srtcp, ours("unprotect_rtcp"), lib("unprotect_rtcp", False)),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 3000 if quick else 20000
    rounds = 3 if quick else 5
    rows: list[dict[str, Any]] = []
    for profile in Profile:
        key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
        for size in (160, 1200):
            rtp = [
                struct.pack("!BBHII", 0x80, 111, i & 0xFFFF, i * 960, 0x5EED) + os.urandom(size)
                for i in range(count)
            ]
            rtcp = [
                struct.pack("!BBHI", 0x80, 200, (size + 4) // 4, 0x5EED) + os.urandom(size)
                for _ in range(count)
            ]
            lib_tx = libsrtp_session(profile, key, salt, True)
            srtp = [lib_tx.protect(p) for p in rtp]
            srtcp = [lib_tx.protect_rtcp(p) for p in rtcp]
            cases = _cases(profile, key, salt, rtp, srtp, rtcp, srtcp)
            for operation, (packets, ours, reference) in cases.items():
                ours_rate, ref_rate = _best_rates(ours, reference, packets, rounds)
                rows.append(
                    {
                        "benchmark": f"srtp {operation} {profile.name} {size} B (packets/s)",
                        "ours": ours_rate,
                        "reference": ref_rate,
                        "ratio": ours_rate / ref_rate,
                        "goal": ">= 1.0" if size == 1200 else "",
                        "reference_name": "pylibsrtp",
                    }
                )
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(
            f"{row['benchmark']:60s} {row['ours']:10.0f} {row['reference']:10.0f} "
            f"{row['ratio']:.2f}"
        )
