"""SRTP/SRTCP packets per second, ours next to libsrtp (pylibsrtp) in the same run.

Each row times protect or unprotect of a batch of distinct packets (libsrtp refuses to
protect a sequence number twice), best of a few rounds, and reports the ratio
ours/libsrtp in packets per second (>= 1.0 means we are at least as fast).

The "floor" rows bound what any pure-Python AES-CM + HMAC-SHA1 implementation on
``cryptography`` can reach: they time only the crypto calls one packet needs (re-aim
the CTR context, encrypt, copy the keyed HMAC, update, finalize), with nothing else,
next to libsrtp's whole per-packet cost in the same run. A second floor adds the
unavoidable bytes work (IV, header/payload split, assembling the output). A floor
ratio near 1.0 means the goal cannot be met with these primitives: parsing, stream
state and replay checks come on top.
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
from webrtc_secure.srtp.kdf import derive_session_keys
from webrtc_secure.srtp.transforms import AesCmHmac


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


def _cm_floors(profile: Profile, key: bytes, salt: bytes) -> dict[str, Factory]:
    """The AES-CM floors, built on the very primitives :class:`SrtpContext` uses."""
    keys = derive_session_keys(profile, key, salt)
    cm = AesCmHmac(keys.rtp_key, keys.rtp_salt, keys.rtp_auth_key, profile.srtp_tag_length)
    ctr, mac, tag_length = cm.ctr, cm.mac, cm.tag_length
    iv = cm.iv(0x5EED, 1)  # the IV's value does not change the cost
    roc = bytes(4)
    join = b"".join

    def crypto_calls() -> Callable[[bytes], bytes]:
        def floor(packet: bytes) -> bytes:
            ctr.reset_nonce(iv)
            ctr.update(packet)
            m = mac.copy()
            m.update(packet)
            return m.finalize()

        return floor

    def with_bytes_work() -> Callable[[bytes], bytes]:
        def floor(packet: bytes) -> bytes:
            ctr.reset_nonce((cm.salt_int ^ (1 << 16)).to_bytes(16, "big"))
            header = packet[:12]
            payload = ctr.update(packet[12:])
            m = mac.copy()
            m.update(join((header, payload, roc)))
            return join((header, payload, m.finalize()[:tag_length]))

        return floor

    return {"crypto calls only": crypto_calls, "crypto calls + bytes work": with_bytes_work}


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
            if profile is Profile.AES128_CM_HMAC_SHA1_80:
                lib_protect = cases["protect"][2]
                for what, floor in _cm_floors(profile, key, salt).items():
                    floor_rate, ref_rate = _best_rates(floor, lib_protect, rtp, rounds)
                    rows.append(
                        {
                            "benchmark": f"srtp floor: {what}, AES-CM protect {size} B (packets/s)",
                            "ours": floor_rate,
                            "reference": ref_rate,
                            "ratio": floor_rate / ref_rate,
                            "goal": "",
                            "reference_name": "pylibsrtp, whole protect",
                        }
                    )
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(
            f"{row['benchmark']:60s} {row['ours']:10.0f} {row['reference']:10.0f} "
            f"{row['ratio']:.2f}"
        )
