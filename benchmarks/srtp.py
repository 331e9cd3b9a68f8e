"""SRTP/SRTCP packets per second, ours next to libsrtp (pylibsrtp) in the same run.

Each row times protect or unprotect of a batch of distinct packets (libsrtp refuses to
protect a sequence number twice) and reports the ratio ours/libsrtp in packets per
second (>= 1.0 means we are at least as fast).

The machines are shared, and their speed changes by up to 2x from one second to the
next as other processes come and go. So within a pass the two sides alternate every
few hundred packets (CPU time per side, summed), which puts both under the same
conditions; every row gets one pass per round, the rounds running over all rows in
turn; and a row reports the pass with the median ratio, which a change of speed in the
middle of a pass cannot drag along.

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

Factory = Callable[[], Callable[[bytes], bytes]]
CHUNK = 200  # packets per turn: about a millisecond


def _paired_pass(
    ours: Factory, reference: Factory, chunks: list[list[bytes]]
) -> tuple[float, float]:
    """Packets per CPU second of each side over all ``chunks``, fresh state, the two
    taking turns chunk by chunk (and turns at going first).

    CPU time of this process, not wall time: time spent descheduled says nothing about
    either implementation.
    """
    sides = (ours(), reference())
    spent = [0.0, 0.0]
    clock = time.process_time
    for turn, chunk in enumerate(chunks):
        for side in (turn & 1, 1 - (turn & 1)):
            fn = sides[side]
            start = clock()
            for p in chunk:
                fn(p)
            spent[side] += clock() - start
    n = sum(len(chunk) for chunk in chunks)
    return n / spent[0], n / spent[1]


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


def _packets(size: int, count: int) -> tuple[list[bytes], list[bytes]]:
    """``count`` distinct RTP and RTCP packets with ``size`` octets of payload."""
    rtp = [
        struct.pack("!BBHII", 0x80, 111, i & 0xFFFF, i * 960, 0x5EED) + os.urandom(size)
        for i in range(count)
    ]
    rtcp = [
        struct.pack("!BBHI", 0x80, 200, (size + 4) // 4, 0x5EED) + os.urandom(size)
        for _ in range(count)
    ]
    return rtp, rtcp


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 2000 if quick else 6000
    passes = 3 if quick else 10
    plain = {size: _packets(size, count) for size in (160, 1200)}
    # (row, packets, ours, reference): every row of the table, measured below
    rows_to_measure: list[tuple[dict[str, Any], list[bytes], Factory, Factory]] = []
    for profile in Profile:
        key, salt = os.urandom(profile.key_length), os.urandom(profile.salt_length)
        for size, (rtp, rtcp) in plain.items():
            lib_tx = libsrtp_session(profile, key, salt, True)
            srtp = [lib_tx.protect(p) for p in rtp]
            srtcp = [lib_tx.protect_rtcp(p) for p in rtcp]
            cases = _cases(profile, key, salt, rtp, srtp, rtcp, srtcp)
            for operation, (packets, ours, reference) in cases.items():
                row = {
                    "benchmark": f"srtp {operation} {profile.name} {size} B (packets/s)",
                    "goal": ">= 1.0" if size == 1200 else "",
                    "reference_name": "pylibsrtp",
                }
                rows_to_measure.append((row, packets, ours, reference))
            if profile is Profile.AES128_CM_HMAC_SHA1_80:
                lib_protect = cases["protect"][2]
                for what, floor in _cm_floors(profile, key, salt).items():
                    row = {
                        "benchmark": f"srtp floor: {what}, AES-CM protect {size} B (packets/s)",
                        "goal": "",
                        "reference_name": "pylibsrtp, whole protect",
                    }
                    rows_to_measure.append((row, rtp, floor, lib_protect))
    chunked = {
        id(packets): [packets[i : i + CHUNK] for i in range(0, len(packets), CHUNK)]
        for _row, packets, _ours, _ref in rows_to_measure
    }
    samples: list[list[tuple[float, float]]] = [[] for _ in rows_to_measure]
    for _ in range(passes):
        for (_row, packets, ours, reference), row_samples in zip(
            rows_to_measure, samples, strict=True
        ):
            row_samples.append(_paired_pass(ours, reference, chunked[id(packets)]))
    rows: list[dict[str, Any]] = []
    for measured, row_samples in zip(rows_to_measure, samples, strict=True):
        ours_rate, ref_rate = sorted(row_samples, key=lambda s: s[0] / s[1])[len(row_samples) // 2]
        row = measured[0]
        row.update(ours=ours_rate, reference=ref_rate, ratio=ours_rate / ref_rate)
        rows.append(row)
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(
            f"{row['benchmark']:60s} {row['ours']:10.0f} {row['reference']:10.0f} "
            f"{row['ratio']:.2f}"
        )
