"""End-to-end connection setup over loopback ICE: two SecurePeers next to two aiortc
RTCPeerConnections, in the same process run, interleaved, medians over N runs.

What one run measures, for both stacks alike:

- Before the clock: certificates made, local candidates gathered on 127.0.0.1 only
  (asserted), the offer created and applied on the answerer, the answer created. No
  side pays for gathering or for key generation.
- The clock starts, then the offerer gets the answer as SDP text and both sides start
  ICE and DTLS. Ours: ``SessionDescription.from_sdp(answer)`` and both ``connect()``
  calls run concurrently. aiortc: the answerer's ``setLocalDescription(answer)`` and
  the offerer's ``setRemoteDescription(answer)``, which start both its ICE transports
  in tasks (aiortc's equivalent of connect()).
- "ICE part" ends when the later of the two peers has its nominated pair (ours: the
  "connecting" state that connect() enters after ICE; aiortc: iceConnectionState
  "completed"; both stacks share one event loop, so the later peer's mark can come
  after the other peer already built its first DTLS flight). "DTLS part" is the rest:
  from there to the end of the run (datachannel-ready for ours).
- The run ends when the later of the two peers is ready. Ours: "datachannel-ready"
  (DTLS established, application data can flow) and "media-ready" (SRTP keyed) are
  separate rows. aiortc: connectionState "connected", which its DTLS transport reaches
  only after keying SRTP, so it is the reference of both rows. (An aiortc data channel
  would add an SCTP association and DCEP on top; we carry messages in DTLS records, so
  the DTLS moment is the conservative reference.) The per-peer medians (offerer,
  answerer) are in the JSON rows.

Two DTLS role setups, each with the offerer ICE-controlling: the answerer as DTLS
client (``a=setup:actpass`` answered ``active``, what browsers do) and the offerer as
DTLS client (the offer says ``a=setup:active``; for aiortc the offer's SDP text is
rewritten the same way before the answerer applies it). Roles are asserted.

Runs alternate which stack goes first, after one warm-up of each, with a
``gc.collect()`` before every run, so that load from other processes on a shared
machine hits both alike. Nothing leaves loopback: our peers bind
``host_addresses=["127.0.0.1"]``; aiortc gets ``iceServers=[]`` (no STUN) and, during
its runs only, ``aioice.ice.get_host_addresses`` answers 127.0.0.1 (aioice never
gathers loopback itself). Every local candidate of both stacks is checked to be
127.0.0.1 before the clock starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from loopback import LOOPBACK, aioice_loopback

from webrtc_secure import SecurePeer, SessionDescription, SetupRole

#: one run may not take longer than this (a lost datagram costs a 1 s retransmission)
RUN_TIMEOUT = 15.0
#: (row label, whether the offerer is the DTLS client)
ROLE_SETUPS = (("answerer DTLS client", False), ("offerer DTLS client", True))


def _split(start: float, ice_done: list[float], ready: dict[str, float]) -> dict[str, float]:
    """Milliseconds: the run (later peer ready), its ICE part (later peer's nominated
    pair) and the DTLS part (the rest)."""
    ice = max(ice_done) - start
    out = {key: 1e3 * (max(marks) - start) for key, marks in _by_event(ready).items()}
    out["ice"] = 1e3 * ice
    out["dtls"] = out["data"] - out["ice"]
    for name, mark in ready.items():
        out[name] = 1e3 * (mark - start)
    return out


def _by_event(ready: dict[str, float]) -> dict[str, list[float]]:
    events: dict[str, list[float]] = {}
    for name, mark in ready.items():
        events.setdefault(name.split("-")[1], []).append(mark)
    return events


async def _ours_once(offerer_client: bool) -> dict[str, float]:
    a = SecurePeer(host_addresses=[LOOPBACK])
    b = SecurePeer(host_addresses=[LOOPBACK])
    ready: dict[str, float] = {}
    ice_done: list[float] = []
    for name, peer in (("offerer", a), ("answerer", b)):
        peer.on("datachannel-ready", lambda n=name: ready.setdefault(f"{n}-data", _now()))
        peer.on("media-ready", lambda _p, n=name: ready.setdefault(f"{n}-media", _now()))
        peer.on("state", lambda s: ice_done.append(_now()) if s == "connecting" else None)
    try:
        offer = await a.create_offer()
        if offerer_client:
            offer = dataclasses.replace(offer, setup=SetupRole.ACTIVE)
        answer_sdp = (await b.create_answer(offer)).to_sdp()
        for description in (offer, SessionDescription.from_sdp(answer_sdp, "answer")):
            _assert_loopback(c.host for c in description.candidates)
        start = _now()
        answer = SessionDescription.from_sdp(answer_sdp, "answer")
        await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), RUN_TIMEOUT)
        assert a.stats()["dtls"]["role"] == ("client" if offerer_client else "server")
        out = _split(start, ice_done, ready)
        out["retransmissions"] = a.stats()["dtls"]["retransmissions"]
        out["retransmissions"] += b.stats()["dtls"]["retransmissions"]
        return out
    finally:
        await a.close()
        await b.close()


async def _aiortc_once(offerer_client: bool) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    config = RTCConfiguration(iceServers=[])
    offerer, answerer = RTCPeerConnection(config), RTCPeerConnection(config)
    ready: dict[str, float] = {}
    ice_done: list[float] = []
    connected = [loop.create_future(), loop.create_future()]

    def watch(name: str, pc: RTCPeerConnection, done: asyncio.Future[None]) -> None:
        @pc.on("connectionstatechange")
        def _connection() -> None:
            if pc.connectionState == "connected" and not done.done():
                ready[f"{name}-data"] = ready[f"{name}-media"] = _now()
                done.set_result(None)

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            if pc.iceConnectionState == "completed":
                ice_done.append(_now())

    watch("offerer", offerer, connected[0])
    watch("answerer", answerer, connected[1])
    try:
        offerer.addTransceiver("audio")
        await offerer.setLocalDescription(await offerer.createOffer())
        offer = offerer.localDescription
        if offerer_client:
            sdp = offer.sdp.replace("a=setup:actpass", "a=setup:active")
            offer = RTCSessionDescription(sdp=sdp, type="offer")
        await answerer.setRemoteDescription(offer)
        answer = await answerer.createAnswer()
        for pc in (offerer, answerer):
            for transceiver in pc.getTransceivers():
                gatherer = transceiver.receiver.transport.transport.iceGatherer
                await gatherer.gather()  # before the clock, as ours
                _assert_loopback(c.ip for c in gatherer.getLocalCandidates())
        # nothing may have started ICE early (aiortc connects from a task it schedules
        # in every set*Description, which finds no local candidates before gathering)
        assert offerer.iceConnectionState == answerer.iceConnectionState == "new"
        start = _now()
        await answerer.setLocalDescription(answer)
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(asyncio.gather(*connected), RUN_TIMEOUT)
        role = offerer.getTransceivers()[0].receiver.transport._role
        assert role == ("client" if offerer_client else "server"), role
        return _split(start, ice_done, ready)
    finally:
        await offerer.close()
        await answerer.close()


def _now() -> float:
    return time.perf_counter()


def _assert_loopback(hosts: Any) -> None:
    hosts = list(hosts)
    if not hosts or any(host != LOOPBACK for host in hosts):
        raise AssertionError(f"the benchmark must stay on loopback, got candidates {hosts}")


async def _run_pair(first_ours: bool, offerer_client: bool) -> tuple[dict[str, float], ...]:
    async def ours() -> dict[str, float]:
        gc.collect()
        return await _ours_once(offerer_client)

    async def theirs() -> dict[str, float]:
        gc.collect()
        with aioice_loopback():
            return await _aiortc_once(offerer_client)

    if first_ours:
        return await ours(), await theirs()
    reference = await theirs()
    return await ours(), reference


async def _measure(runs: int) -> dict[bool, tuple[list[dict[str, float]], list[dict[str, float]]]]:
    results: dict[bool, tuple[list[dict[str, float]], list[dict[str, float]]]] = {}
    for _, offerer_client in ROLE_SETUPS:
        await _run_pair(True, offerer_client)  # warm-up: imports, first-use caches
        ours: list[dict[str, float]] = []
        theirs: list[dict[str, float]] = []
        for i in range(runs):
            mine, reference = await _run_pair(i % 2 == 0, offerer_client)
            ours.append(mine)
            theirs.append(reference)
        results[offerer_client] = (ours, theirs)
    return results


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def _span(samples: list[dict[str, float]], key: str) -> list[float]:
    return [min(s[key] for s in samples), max(s[key] for s in samples)]


def run(quick: bool = False) -> list[dict[str, Any]]:
    runs = 10 if quick else 40
    results = asyncio.run(_measure(runs))
    rows: list[dict[str, Any]] = []
    for label, offerer_client in ROLE_SETUPS:
        ours, theirs = results[offerer_client]
        for key, event in (("data", "datachannel-ready"), ("media", "media-ready")):
            value, reference = _median(ours, key), _median(theirs, key)
            rows.append(
                {
                    "benchmark": f"peer connect() -> {event} ms "
                    f"(loopback ICE, {label}, median of {runs})",
                    "ours": value,
                    "reference": reference,
                    "ratio": value / reference,
                    "goal": "<= 0.5",
                    "reference_name": "aiortc connected",
                    "ours_min_max": _span(ours, key),
                    "reference_min_max": _span(theirs, key),
                    "ours_per_peer": {
                        peer: _median(ours, f"{peer}-{key}") for peer in ("offerer", "answerer")
                    },
                    "reference_per_peer": {
                        peer: _median(theirs, f"{peer}-{key}") for peer in ("offerer", "answerer")
                    },
                }
            )
        for key, part in (("ice", "ICE"), ("dtls", "DTLS + SRTP keys")):
            value, reference = _median(ours, key), _median(theirs, key)
            rows.append(
                {
                    "benchmark": f"peer {part} part of connect ms ({label}, median of {runs})",
                    "ours": value,
                    "reference": reference,
                    "ratio": value / reference,
                    "goal": "",
                    "reference_name": "aiortc",
                }
            )
        retransmitting = sum(1 for s in ours if s["retransmissions"])
        if retransmitting:
            print(
                f"peer ({label}): {retransmitting} of {runs} runs retransmitted a DTLS flight",
                file=sys.stderr,
            )
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
