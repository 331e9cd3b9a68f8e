"""Scale: many concurrent SecurePeer pairs in one process, next to aiortc.

For N = 1, 10, 100 and 1000 pairs (``--quick``: 1 and 10) on loopback, each
configuration in a fresh child process (a clean RSS baseline, a clean event loop, a
hard time cap):

- setup: every peer is created (its own certificate), gathers its 127.0.0.1 candidate
  and the offer/answer is exchanged, all pairs concurrently;
- bring-up: then the clock starts and every pair's ``connect()`` runs concurrently;
  the time is until the last pair is media-ready (ICE, DTLS, fingerprint, SRTP keys).
  Pairs that raise, or are not up at the cap, are failures;
- memory per peer: RSS after every pair is up minus RSS before the first peer was
  created (after a warm-up pair came up and closed), divided by the 2N peers;
- idle: CPU and loop lag of the established fleet without media (consent checks,
  aiortc's RTCP reports);
- sustained SRTP: every peer sends RTP (160-byte payload, G.711/Opus-sized) to its
  partner at 50 packets/s for a few seconds. One pacer task sends round-robin so each
  peer keeps its own 50 pps schedule (a backlog over 100 ms is skipped, as a real-time
  source would); we count packets delivered to the partner's "rtp" handler within the
  window ("short": of the packets due, not delivered in time), loss after a drain, the
  one-way latency (a timestamp in the payload), the event-loop lag (how late a 10 ms
  ``asyncio.sleep`` probe wakes) and the process CPU time per wall second, 100 % = one
  core. Saturated rows add delivered packets per CPU second: the capacity of one core,
  whatever else the shared machine runs, and the kernel's share of that CPU time
  (``cpu_system_share``: the system calls, which SecurePeer and the bare loop pay
  alike, so the rest is where the two differ);
- knee: on the 100- and 1000-pair fleets, the number of pairs sending is stepped (25,
  doubled while within the limits, then bisected twice) while the rest stay established
  and idle; the knee is the highest offered rate still delivered <= 1 % short with loop
  lag p99 <= 20 ms (one packet interval at 50 pps). The steps are printed to stderr.

Two transports for ours: ICE (SecurePeer's default, aioice) and plain UDP
(``use_ice=False``). The reference is aiortc ``RTCPeerConnection`` pairs with one audio
transceiver: bring-up until both are "connected" and memory per peer, and for the SRTP
rows the same pacer calls aiortc's own SRTP send path (``RTCDtlsTransport._send_rtp``:
pylibsrtp, then aioice) and counts what its receive path decrypted (``_handle_rtp_data``
is replaced by a counter, so no jitter buffer or decoder runs): the same layer as ours.
aiortc gets ``iceServers=[]`` and aioice answers 127.0.0.1 as its only host address
during its runs (aioice never gathers loopback by itself): nothing leaves loopback.

The soft RLIMIT_NOFILE is raised up to the hard limit when 2N peers need more sockets.

Two things make the saturated numbers swing between runs besides the neighbours on a
shared machine, and the JSON records both. asyncio's datagram transport receives every
datagram into a fresh bytes object of ``max_size`` (256 KiB by default) and shrinks it:
while glibc serves 256 KiB with mmap, that is two page faults per packet and about a
third of the capacity; whether it does depends on the process's allocation history
(one earlier free of a larger block raises glibc's threshold). SecurePeer's media
sockets read into 64 KiB (``webrtc_secure/ice.py``), which avoids it; aiortc's keep the
default, so ``page_faults_per_packet`` says which regime its steps ran in (~2 or ~0).
And with 1000 pairs up, a full garbage collection pauses the loop for hundreds of
milliseconds, which lands in one step's lag p99 and not in the next one's.

One configuration by hand (the JSON result on stdout or in --out), e.g. profiled::

    .venv/bin/python benchmarks/scale.py --pairs 1000 --seconds 10 --knee
    py-spy record -o scale.svg -- .venv/bin/python benchmarks/scale.py --pairs 100 \
        --seconds 15 --out /tmp/scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import LOOPBACK, aioice_loopback

from webrtc_secure.loops import choose as choose_loop
from webrtc_secure.loops import run as run_loop
from webrtc_secure.loops import running_loop_name, uvloop_available
from webrtc_secure.srtp import DEFAULT_PROFILES

RATE = 50  # packets/s per peer
PAYLOAD = 160  # bytes of RTP payload (20 ms of G.711, a typical Opus frame)
PROBE_INTERVAL = 0.010  # s between loop-lag probes
MAX_BACKLOG = 0.100  # s of packets a late pacer still sends; older ones are skipped
LOSS_OK = 0.01
LAG_OK = 0.020  # one packet interval at 50 pps
FULL_SIZES = (1, 10, 100, 1000)
QUICK_SIZES = (1, 10)
KNEE_START = 25  # pairs sending in the first knee step; doubled until beyond, then bisected
KNEE_BISECTIONS = 2
AIORTC_CAP = 120.0  # s for aiortc's bring-up before we stop counting
OURS_CAP = 90.0

RTP_HEADER = struct.Struct("!BBHII")
SEND_TIME = struct.Struct("!d")
FILLER = bytes(PAYLOAD - SEND_TIME.size)
# what SRTP adds to each packet: the tag of the profile SecurePeer offers first
# (AEAD_AES_128_GCM, 16 octets), so the bare loop moves datagrams of the same size
TAG = bytes(DEFAULT_PROFILES[0].srtp_tag_length)

Sender = Callable[[bytes], "Awaitable[None] | None"]
Receiver = Callable[[bytes], None]


@dataclass
class Spec:
    """One configuration, measured in one (child) process."""

    stack: str = "ours"  # "ours", "aiortc", "bare" (the loop's ceiling) or "floor"
    pairs: int = 10
    ice: bool = True
    seconds: float = 3.0
    knee: bool = False  # after the all-pairs phase, search the knee on this fleet
    cap: float = OURS_CAP
    rate: int = RATE  # packets/s per peer
    idle_seconds: float = 6.0  # one consent-freshness interval (4-6 s) and more
    loop: str = "asyncio"  # "asyncio" or "uvloop" (webrtc_secure.loops)
    # gc.freeze() once the fleet is up: the long-lived objects of the established
    # sessions leave the collector's generations, so a full collection no longer walks
    # them (the module notes)
    freeze: bool = True


# --- the two stacks behind one face -----------------------------------------------------


class OursPair:
    """Two SecurePeers: ``a`` offers, ``b`` answers."""

    def __init__(self, ice: bool) -> None:
        from webrtc_secure import SecurePeer

        # SCALE_PEER_OPTIONS: extra SecurePeer keywords as JSON, e.g. '{"data_channel":
        # false, "dtls_versions": ["1.2"]}' (inherited by the child processes)
        extra = json.loads(os.environ.get("SCALE_PEER_OPTIONS", "{}"))
        self.a = SecurePeer(host_addresses=[LOOPBACK], use_ice=ice, **extra)
        self.b = SecurePeer(host_addresses=[LOOPBACK], use_ice=ice, **extra)
        self._offer: Any = None
        self._answer: Any = None
        self.sequence = [0, 0]  # last RTP sequence number sent by a and by b
        self._receivers: tuple[Receiver, Receiver] | None = None

    async def prepare(self) -> None:
        self._offer = await self.a.create_offer()
        self._answer = await self.b.create_answer(self._offer)

    async def connect(self) -> None:
        await asyncio.gather(self.a.connect(self._answer), self.b.connect(self._offer))

    def senders(self) -> list[Sender]:
        return [self.a.send_rtp, self.b.send_rtp]

    def set_receivers(self, for_a: Receiver, for_b: Receiver) -> None:
        # the receivers of an earlier phase go, as the other stacks' are replaced:
        # otherwise every packet of a later knee step would run them all
        if self._receivers is not None:
            self.a.remove_listener("rtp", self._receivers[0])
            self.b.remove_listener("rtp", self._receivers[1])
        self.a.on("rtp", for_a)
        self.b.on("rtp", for_b)
        self._receivers = (for_a, for_b)

    def retransmissions(self) -> int:
        total = 0
        for peer in (self.a, self.b):
            dtls = peer.stats().get("dtls")
            total += dtls["retransmissions"] if dtls else 0
        return total

    def connected(self) -> bool:
        return self.a.state.value == "connected" and self.b.state.value == "connected"

    def phases(self) -> tuple[float, float] | None:
        """The later peer's ICE and DTLS seconds (SecurePeer.stats())."""
        sa, sb = self.a.stats(), self.b.stats()
        if None in (sa["ice_seconds"], sb["ice_seconds"], sa["dtls_seconds"], sb["dtls_seconds"]):
            return None
        return max(sa["ice_seconds"], sb["ice_seconds"]), max(
            sa["dtls_seconds"], sb["dtls_seconds"]
        )

    async def close(self) -> None:
        await asyncio.gather(self.a.close(), self.b.close(), return_exceptions=True)


class AiortcPair:
    """Two RTCPeerConnections with one audio transceiver; SRTP through aiortc's own
    RTCDtlsTransport send and receive paths (no codec, no jitter buffer)."""

    def __init__(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        config = RTCConfiguration(iceServers=[])
        self.a = RTCPeerConnection(config)
        self.b = RTCPeerConnection(config)
        self._answer: Any = None
        self.sequence = [0, 0]  # last RTP sequence number sent by a and by b
        loop = asyncio.get_running_loop()
        self._connected = [loop.create_future(), loop.create_future()]
        for pc, future in zip((self.a, self.b), self._connected, strict=True):
            pc.on("connectionstatechange", self._watcher(pc, future))

    @staticmethod
    def _watcher(pc: Any, future: asyncio.Future[None]) -> Callable[[], None]:
        def changed() -> None:
            if future.done():
                return
            if pc.connectionState == "connected":
                future.set_result(None)
            elif pc.connectionState in ("failed", "closed"):
                future.set_exception(ConnectionError(f"aiortc {pc.connectionState}"))

        return changed

    async def prepare(self) -> None:
        self.a.addTransceiver("audio")
        await self.a.setLocalDescription(await self.a.createOffer())
        await self.b.setRemoteDescription(self.a.localDescription)
        self._answer = await self.b.createAnswer()
        for transceiver in self.b.getTransceivers():
            await transceiver.receiver.transport.transport.iceGatherer.gather()

    async def connect(self) -> None:
        await self.b.setLocalDescription(self._answer)
        await self.a.setRemoteDescription(self.b.localDescription)
        await asyncio.gather(*self._connected)

    @staticmethod
    def _dtls(pc: Any) -> Any:
        return pc.getTransceivers()[0].receiver.transport

    def senders(self) -> list[Sender]:
        return [self._dtls(self.a)._send_rtp, self._dtls(self.b)._send_rtp]

    def set_receivers(self, for_a: Receiver, for_b: Receiver) -> None:
        for pc, receive in ((self.a, for_a), (self.b, for_b)):

            async def decrypted(
                data: bytes, arrival_time_ms: int, receive: Receiver = receive
            ) -> None:
                receive(data)

            # the instance attribute shadows the method _recv_next calls after unprotect
            self._dtls(pc)._handle_rtp_data = decrypted

    def retransmissions(self) -> int:
        return 0  # OpenSSL does not say

    def phases(self) -> tuple[float, float] | None:
        return None

    def connected(self) -> bool:
        return bool(self.a.connectionState == "connected" == self.b.connectionState)

    async def close(self) -> None:
        await asyncio.gather(self.a.close(), self.b.close(), return_exceptions=True)


class _BareProtocol(asyncio.DatagramProtocol):
    """A bare receiving end: hands every datagram to ``receive`` (set later)."""

    def __init__(self) -> None:
        self.receive: Receiver = _discard

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.receive(data)


def _discard(data: bytes) -> None:
    del data


class BarePair:
    """The loop's ceiling: two bare ``DatagramProtocol`` endpoints on loopback, no
    crypto, no demux, no ICE. Each sends what SecurePeer would put on the wire for the
    same RTP packet (the packet and an 80-bit authentication tag's worth of bytes), on
    the same pacer. Both sockets read into the same 64 KiB buffer as SecurePeer's
    (``ice.limit_receive_buffer``; a no-op on uvloop), so the two differ only by what
    SecurePeer does per packet."""

    def __init__(self) -> None:
        self.sequence = [0, 0]
        self._protocols = (_BareProtocol(), _BareProtocol())
        self._transports: list[asyncio.DatagramTransport] = []
        self._addresses: list[Any] = []

    async def prepare(self) -> None:
        from webrtc_secure.ice import limit_receive_buffer

        loop = asyncio.get_running_loop()
        for protocol in self._protocols:
            transport, _ = await loop.create_datagram_endpoint(
                lambda protocol=protocol: protocol,  # type: ignore[misc]
                local_addr=(LOOPBACK, 0),
            )
            limit_receive_buffer(transport)
            self._transports.append(transport)
            self._addresses.append(transport.get_extra_info("sockname"))

    async def connect(self) -> None:
        pass  # nothing to negotiate

    def senders(self) -> list[Sender]:
        (ta, tb), (aa, ab) = self._transports, self._addresses

        def a_sends(packet: bytes) -> None:
            ta.sendto(packet + TAG, ab)

        def b_sends(packet: bytes) -> None:
            tb.sendto(packet + TAG, aa)

        return [a_sends, b_sends]

    def set_receivers(self, for_a: Receiver, for_b: Receiver) -> None:
        self._protocols[0].receive, self._protocols[1].receive = for_a, for_b

    def retransmissions(self) -> int:
        return 0

    def phases(self) -> tuple[float, float] | None:
        return None

    def connected(self) -> bool:
        return all(not t.is_closing() for t in self._transports)

    async def close(self) -> None:
        for transport in self._transports:
            transport.close()


class _FloorProtocol(_BareProtocol):
    """The floor's receiving end: the least an SRTP receiver does per packet."""

    def __init__(self) -> None:
        super().__init__()
        self.aead: Any = None
        self.base = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # demux by the first octet (RFC 7983), the sequence number into the IV, one
        # AES-GCM open: no stream state, replay window, ROC or counters
        if 127 < data[0] < 192:
            (seq,) = _SEQ.unpack_from(data, 2)
            header = data[:12]
            self.receive(
                header + self.aead.decrypt((self.base ^ seq).to_bytes(12, "big"), data[12:], header)
            )


_SEQ = struct.Struct("!H")


class FloorPair(BarePair):
    """The floor of any SRTP stack in Python on ``cryptography``: the bare loop's pair
    plus one AES-GCM seal per packet sent and one open per packet received (a key per
    direction, as SRTP has, so 2000 keys are cold in turn as SecurePeer's are), with a
    first-octet demux and the sequence number as the IV's only varying part. What
    SecurePeer costs beyond this is its own work per packet: streams, replay and ROC
    checks, the source check, counters, handlers. Not a secure protocol: a bench."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        super().__init__()
        protocols = (_FloorProtocol(), _FloorProtocol())
        self._protocols = protocols
        keys = (AESGCM(os.urandom(16)), AESGCM(os.urandom(16)))
        bases = (int.from_bytes(os.urandom(12), "big"), int.from_bytes(os.urandom(12), "big"))
        # a's packets are opened by b's protocol with a's key, and the other way round
        self._seal = tuple(zip(keys, bases, strict=True))
        for protocol, key, base in zip(reversed(protocols), keys, bases, strict=True):
            protocol.aead, protocol.base = key, base

    def senders(self) -> list[Sender]:
        (ta, tb), (aa, ab) = self._transports, self._addresses
        (key_a, base_a), (key_b, base_b) = self._seal
        unpack = _SEQ.unpack_from

        def a_sends(packet: bytes) -> None:
            header = packet[:12]
            iv = (base_a ^ unpack(packet, 2)[0]).to_bytes(12, "big")
            ta.sendto(header + key_a.encrypt(iv, packet[12:], header), ab)

        def b_sends(packet: bytes) -> None:
            header = packet[:12]
            iv = (base_b ^ unpack(packet, 2)[0]).to_bytes(12, "big")
            tb.sendto(header + key_b.encrypt(iv, packet[12:], header), aa)

        return [a_sends, b_sends]


AnyPair = OursPair | AiortcPair | BarePair


def _make_pair(spec: Spec) -> AnyPair:
    if spec.stack == "bare":
        return BarePair()
    if spec.stack == "floor":
        return FloorPair()
    return OursPair(spec.ice) if spec.stack == "ours" else AiortcPair()


# --- measurements ----------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def raise_nofile(needed: int) -> dict[str, Any]:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    enough = soft == resource.RLIM_INFINITY or soft >= needed
    return {"soft": soft, "hard": hard, "needed": needed, "enough": enough}


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Fleet:
    pairs: list[AnyPair]
    up: list[AnyPair] = field(default_factory=list)
    setup_seconds: float = 0.0
    bringup_seconds: float | None = None
    connect_p50: float | None = None
    failures: Counter[str] = field(default_factory=Counter)


async def bring_up(spec: Spec) -> Fleet:
    """Create and prepare every pair concurrently, then connect all concurrently."""
    start = time.perf_counter()
    fleet = Fleet([_make_pair(spec) for _ in range(spec.pairs)])
    results = await asyncio.gather(*(p.prepare() for p in fleet.pairs), return_exceptions=True)
    ready = []
    for pair, result in zip(fleet.pairs, results, strict=True):
        if isinstance(result, BaseException):
            fleet.failures[f"prepare {type(result).__name__}"] += 1
        else:
            ready.append(pair)
    started = time.perf_counter()
    fleet.setup_seconds = started - start

    async def one(pair: AnyPair) -> float:
        await pair.connect()
        return time.perf_counter() - started

    tasks = {asyncio.ensure_future(one(p)): p for p in ready}
    done, pending = await asyncio.wait(tasks, timeout=spec.cap) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        fleet.failures[f"not up within {spec.cap:g} s"] += len(pending)
    times = []
    for task in done:
        if task.exception() is not None:
            fleet.failures[f"connect {type(task.exception()).__name__}"] += 1
        else:
            times.append(task.result())
            fleet.up.append(tasks[task])
    if times:
        fleet.bringup_seconds = max(times)
        fleet.connect_p50 = statistics.median(times)
    return fleet


@dataclass
class Traffic:
    pairs_sending: int
    seconds: float
    offered_pps: float
    sent: int
    skipped: int
    delivered_in_window: int
    delivered_total: int
    delivered_pps: float
    loss: float  # of the packets sent, never delivered (after the drain)
    shortfall: float  # of the packets due, not delivered within the window
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    cpu_percent: float
    delivered_per_cpu_s: float  # capacity that does not depend on what else the machine runs
    # asyncio reads each datagram into a fresh bytes of the transport's max_size: at the
    # default 256 KiB, glibc may serve it with mmap and fault per packet (module notes)
    page_faults_per_packet: float
    cpu_system_share: float  # of the CPU time, in the kernel (system calls)
    starved_receivers: int  # receivers that got under half their share
    send_errors: dict[str, int]  # by exception type: sends to a connection already lost
    ok: bool
    # the garbage collector during the window: the longest pause (any generation), the
    # full (generation 2) collections, and all pauses together
    gc_pause_max_ms: float = 0.0
    gc_full_collections: int = 0
    gc_pause_total_ms: float = 0.0


class GcPauses:
    """A ``gc.callbacks`` entry that times every collection."""

    def __init__(self) -> None:
        self.longest = self.total = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.total += pause
        self.longest = max(self.longest, pause)
        self.full += info.get("generation") == 2


async def traffic(
    pairs: Sequence[AnyPair], seconds: float, rate: int = RATE
) -> Traffic:
    """Every peer of ``pairs`` sends ``rate`` pps to its partner for ``seconds``."""
    senders: list[Sender] = []
    received: list[int] = []
    latencies: list[float] = []
    now = time.perf_counter
    unpack_time = SEND_TIME.unpack_from

    def receiver(index: int) -> Receiver:
        def on_rtp(packet: bytes) -> None:
            received[index] += 1
            latencies.append(now() - unpack_time(packet, 12)[0])

        return on_rtp

    for pair in pairs:
        base = len(senders)
        senders += pair.senders()
        received += [0, 0]
        # a's packets arrive at b (index base + 1) and b's at a (index base)
        pair.set_receivers(receiver(base), receiver(base + 1))
    count = len(senders)
    total_rate = rate * count
    lags: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            t = now()
            await asyncio.sleep(PROBE_INTERVAL)
            lags.append(now() - t - PROBE_INTERVAL)

    probe_task = asyncio.ensure_future(probe())
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    # continued across phases: a sender refuses to protect a sequence number twice
    sequence = [seq for pair in pairs for seq in pair.sequence]
    sent = skipped = index = 0
    send_errors: Counter[str] = Counter()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    faults0 = usage0.ru_minflt
    cpu0, start = time.process_time(), now()
    end = start + seconds
    while True:
        t = now()
        if t >= end:
            break
        due = int((t - start) * total_rate) - sent - skipped
        backlog = int(total_rate * MAX_BACKLOG) + 1
        if due > backlog:
            skipped += due - backlog
            due = backlog
        stamp = SEND_TIME.pack(t)
        for _ in range(due):
            seq = sequence[index] = sequence[index] + 1
            packet = (
                RTP_HEADER.pack(0x80, 0, seq & 0xFFFF, seq * PAYLOAD & 0xFFFFFFFF, 0x1000 + index)
                + stamp
                + FILLER
            )
            try:
                pending = senders[index](packet)
                if pending is not None:
                    await pending
            except Exception as exc:  # a connection lost meanwhile (consent expired)
                send_errors[type(exc).__name__] += 1
            index = index + 1 if index + 1 < count else 0
        sent += due
        # until the next packet is due (at most 20 ms, at least 1 ms: batches at scale)
        await asyncio.sleep(min(0.02, max(0.001, 1 / total_rate)))
    window = now() - start
    for i, pair in enumerate(pairs):
        pair.sequence = sequence[2 * i : 2 * i + 2]
    in_window = sum(received)
    cpu = time.process_time() - cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    faults = usage.ru_minflt - faults0
    # user vs kernel time: the kernel's share is mostly sendto/recvmsg on loopback,
    # what the bare loop pays as well; the user share is where our Python goes
    system_share = (usage.ru_stime - usage0.ru_stime) / cpu if cpu else 0.0
    gc.callbacks.remove(pauses)
    stop.set()
    await probe_task
    # drain: until nothing more arrives for 200 ms, at most 3 s
    last, quiet_since, drain_end = in_window, now(), now() + 3.0
    while now() < drain_end and now() - quiet_since < 0.2:
        await asyncio.sleep(0.05)
        total = sum(received)
        if total != last:
            last, quiet_since = total, now()
    delivered = sum(received)
    share = sent / count if count else 0
    lag_ms = [1e3 * lag for lag in lags]
    latency_ms = [1e3 * lat for lat in latencies]
    loss = 1 - delivered / sent if sent else 0.0
    # of the packets due by the pacer's last wake (sent or skipped), delivered in time
    behind = 1 - in_window / (sent + skipped) if sent + skipped else 0.0
    p99 = _percentile(lag_ms, 0.99)
    return Traffic(
        pairs_sending=len(pairs),
        seconds=window,
        offered_pps=total_rate,
        sent=sent,
        skipped=skipped,
        delivered_in_window=in_window,
        delivered_total=delivered,
        delivered_pps=in_window / window,
        loss=max(0.0, loss),
        shortfall=max(0.0, behind),
        lag_p50_ms=_percentile(lag_ms, 0.5),
        lag_p99_ms=p99,
        lag_max_ms=max(lag_ms) if lag_ms else None,
        latency_p50_ms=_percentile(latency_ms, 0.5),
        latency_p99_ms=_percentile(latency_ms, 0.99),
        cpu_percent=100 * cpu / window,
        delivered_per_cpu_s=in_window / cpu if cpu else 0.0,
        page_faults_per_packet=faults / in_window if in_window else 0.0,
        cpu_system_share=system_share,
        starved_receivers=sum(1 for r in received if r < share / 2),
        send_errors=dict(send_errors),
        ok=behind <= LOSS_OK and p99 is not None and p99 <= 1e3 * LAG_OK,
        gc_pause_max_ms=1e3 * pauses.longest,
        gc_full_collections=pauses.full,
        gc_pause_total_ms=1e3 * pauses.total,
    )


async def idle(seconds: float) -> dict[str, float | None]:
    """CPU and loop lag of the established fleet with no media (timers, consent, RTCP)."""
    lags: list[float] = []
    cpu0, start = time.process_time(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        await asyncio.sleep(PROBE_INTERVAL)
        lags.append(time.perf_counter() - t - PROBE_INTERVAL)
    window = time.perf_counter() - start
    lag_ms = [1e3 * lag for lag in lags]
    return {
        "cpu_percent": 100 * (time.process_time() - cpu0) / window,
        "lag_p99_ms": _percentile(lag_ms, 0.99),
    }


async def find_knee(
    up: Sequence[AnyPair], spec: Spec, everyone: Traffic
) -> list[Traffic]:
    """Pairs sending (the others stay established and idle): KNEE_START, doubled while
    within the limits, then bisected between the last step within and the first beyond
    (``everyone``, all pairs sending, is the last step)."""
    steps: list[Traffic] = []

    async def step(n: int) -> bool:
        for _ in range(2):  # a step beyond the limits is measured again before it counts
            await asyncio.sleep(0.5)  # let the previous step settle
            steps.append(await traffic(up[:n], spec.seconds, spec.rate))
            if steps[-1].ok:
                return True
        return False

    good, bad, n = 0, None, KNEE_START
    while n < len(up):
        if not await step(n):
            bad = n
            break
        good, n = n, 2 * n
    if bad is None and not everyone.ok:
        bad = len(up)
    for _ in range(KNEE_BISECTIONS if bad is not None else 0):
        middle = (good + bad) // 2  # type: ignore[operator]
        if middle in (good, bad):
            break
        if await step(middle):
            good = middle
        else:
            bad = middle
    return steps


async def measure(spec: Spec) -> dict[str, Any]:
    """Warm up, bring up the fleet, memory, traffic with all pairs, the knee steps."""
    result: dict[str, Any] = {"spec": asdict(spec)}
    # sockets: ICE and plain UDP use one per peer; headroom for the loop and the rest
    result["nofile"] = raise_nofile(2 * spec.pairs + 256)
    context = aioice_loopback() if spec.stack == "aiortc" else contextlib.nullcontext()
    with context:
        warm = await bring_up(Spec(spec.stack, 1, spec.ice, 0, False, 30.0, loop=spec.loop))
        for pair in warm.pairs:
            await pair.close()
        del warm
        gc.collect()
        rss0 = rss_bytes()
        fleet = await bring_up(spec)
        gc.collect()
        rss1 = rss_bytes()
        if spec.freeze:
            # what a long-running service does once its sessions are up (README,
            # Performance): the collector stops walking the established objects
            gc.freeze()
        result["loop"] = running_loop_name()
        result["gc_frozen_objects"] = gc.get_freeze_count()
        result["setup_s"] = fleet.setup_seconds
        result["bringup_s"] = fleet.bringup_seconds
        result["connect_p50_s"] = fleet.connect_p50
        result["up"] = len(fleet.up)
        result["failures"] = dict(fleet.failures)
        result["failed"] = sum(fleet.failures.values())
        result["retransmissions"] = sum(p.retransmissions() for p in fleet.up)
        phases = [ph for ph in (p.phases() for p in fleet.up) if ph is not None]
        if phases:
            ices, dtlss = [ph[0] for ph in phases], [ph[1] for ph in phases]
            result["ice_s_p50_max"] = [statistics.median(ices), max(ices)]
            result["dtls_s_p50_max"] = [statistics.median(dtlss), max(dtlss)]
        result["rss_baseline_mib"] = rss0 / 2**20
        result["rss_up_mib"] = rss1 / 2**20
        result["memory_per_peer_kib"] = (rss1 - rss0) / 1024 / (2 * spec.pairs)
        if fleet.up and spec.seconds > 0:
            result["idle"] = await idle(spec.idle_seconds)
            everyone = await traffic(fleet.up, spec.seconds, spec.rate)
            result["traffic"] = asdict(everyone)
            if spec.knee:
                steps = await find_knee(fleet.up, spec, everyone)
                result["knee"] = [asdict(step) for step in steps]
        if spec.freeze:
            gc.unfreeze()  # the sessions end: their objects are garbage again
        closing = [asyncio.ensure_future(p.close()) for p in fleet.pairs]
        result["lost"] = sum(1 for p in fleet.up if not p.connected())
        _, still = await asyncio.wait(closing, timeout=30.0)
        result["close_timeouts"] = len(still)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=5.0)
            # what is still pending dies with the child: counted above, not logged by
            # the thousand as "Task was destroyed but it is pending!"
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return result


# --- the section -----------------------------------------------------------------------


def _child(spec: Spec, timeout: float) -> dict[str, Any] | None:
    """Measure ``spec`` in a fresh interpreter; None if it did not finish in time."""
    command = [sys.executable, str(Path(__file__).resolve()), "--spec", json.dumps(asdict(spec))]
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, timeout=timeout, check=True, text=True
        )
    except subprocess.TimeoutExpired:
        print(f"scale: {spec} did not finish within {timeout:g} s", file=sys.stderr)
        return None
    except subprocess.CalledProcessError as exc:
        print(f"scale: {spec} failed with exit status {exc.returncode}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _row(
    benchmark: str,
    ours: float | None,
    reference: float | None = None,
    goal: str = "",
    reference_name: str = "aiortc",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "ours": ours,
        "reference": reference,
        "ratio": ours / reference if ours is not None and reference else None,
        "goal": goal,
        "reference_name": reference_name if reference is not None else "",
        **extra,
    }


def _get(result: dict[str, Any] | None, *keys: str) -> Any:
    value: Any = result
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _fleet_rows(
    label: str,
    n: int,
    ours: dict[str, Any],
    ref: dict[str, Any] | None,
    reference_expected: bool = True,
) -> list[dict[str, Any]]:
    ref_up = _get(ref, "up")
    if ref is None:
        note = ", aiortc did not finish" if reference_expected else ""
    else:
        note = f", aiortc {ref_up}/{n} up" if ref_up != n else ""
    return [
        _row(
            f"{label}: setup s ({2 * n} certificates, candidates, offer/answer)",
            ours["setup_s"],
            _get(ref, "setup_s"),
        ),
        _row(
            f"{label}: bring-up s (all connect() at once -> all media-ready{note})",
            ours["bringup_s"],
            _get(ref, "bringup_s"),
            connect_p50_s=ours["connect_p50_s"],
            retransmissions=ours["retransmissions"],
            ice_s_p50_max=ours.get("ice_s_p50_max"),
            dtls_s_p50_max=ours.get("dtls_s_p50_max"),
            reference_connect_p50_s=_get(ref, "connect_p50_s"),
        ),
        _row(
            f"{label}: pairs not up, or lost by the end"
            + ("" if ref is None else f" (aiortc: {ref['failed']} + {ref['lost']})"),
            ours["failed"] + ours["lost"],
            goal="0",
            lost=ours["lost"],
            reference_lost=_get(ref, "lost"),
            failures=ours["failures"],
            reference_failures=_get(ref, "failures"),
        ),
        _row(
            f"{label}: memory per peer KiB (RSS delta / {2 * n} peers)",
            ours["memory_per_peer_kib"],
            _get(ref, "memory_per_peer_kib"),
            rss_mib=[ours["rss_baseline_mib"], ours["rss_up_mib"]],
            reference_rss_mib=[_get(ref, "rss_baseline_mib"), _get(ref, "rss_up_mib")],
        ),
    ]


def _traffic_rows(
    label: str,
    ours: dict[str, Any],
    ref: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    offered = ours["offered_pps"]
    rows = [
        _row(
            f"{label}: SRTP delivered pps of {offered:,.0f} offered",
            ours["delivered_pps"],
            _get(ref, "delivered_pps"),
            goal=f"{offered:,.0f}",
            traffic=ours,
            reference_traffic=ref,
        )
    ]
    if not ours["ok"]:
        # saturated: what one core delivers, whatever else the shared machine runs
        rows.append(
            _row(
                f"{label}: saturated, delivered packets per CPU second",
                ours["delivered_per_cpu_s"],
                _get(ref, "delivered_per_cpu_s"),
            )
        )
    return [
        *rows,
        _row(
            f"{label}: event-loop lag p99 ms",
            ours["lag_p99_ms"],
            _get(ref, "lag_p99_ms"),
            goal=f"<= {1e3 * LAG_OK:g}",
        ),
        _row(f"{label}: CPU % of one core", ours["cpu_percent"], _get(ref, "cpu_percent")),
    ]


def knee_of(steps: Sequence[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The highest step within the limits below the lowest step beyond them, and that one.
    A rate measured twice counts as within if either run was (a neighbour's burst on a
    shared machine is not the knee)."""
    best: dict[float, dict[str, Any]] = {}
    for s in steps:
        kept = best.get(s["offered_pps"])
        if kept is None or (s["ok"], s["delivered_pps"]) > (kept["ok"], kept["delivered_pps"]):
            best[s["offered_pps"]] = s
    steps = list(best.values())
    beyond = [s for s in steps if not s["ok"]]
    bad = min(beyond, key=lambda s: s["offered_pps"]) if beyond else None
    within = [
        s for s in steps if s["ok"] and (bad is None or s["offered_pps"] < bad["offered_pps"])
    ]
    good = max(within, key=lambda s: s["offered_pps"]) if within else None
    return good, bad


def _knee_row(label: str, ours: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any]:
    """The knee of this fleet: the highest step within the limits, ours next to aiortc."""
    good, bad = knee_of([*ours.get("knee", []), ours["traffic"]])
    ref_steps = [
        *(_get(ref, "knee") or []),
        *([_get(ref, "traffic")] if _get(ref, "traffic") else []),
    ]
    ref_good, ref_bad = knee_of(ref_steps)
    note = ", aiortc: no step within" if ref_steps and ref_good is None else ""
    return _row(
        f"{label}: knee, highest offered pps within limits (pairs sending stepped{note})",
        good["offered_pps"] if good else 0,
        (ref_good["offered_pps"] if ref_good else 0) if ref_steps else None,
        goal=f"<= {100 * LOSS_OK:g} % short, lag p99 <= {1e3 * LAG_OK:g} ms",
        within=good,
        beyond=bad,
        reference_within=ref_good,
        reference_beyond=ref_bad,
    )


def _print_steps(name: str, result: dict[str, Any] | None) -> None:
    steps = [
        *(_get(result, "knee") or []),
        *([_get(result, "traffic")] if _get(result, "traffic") else []),
    ]
    if len(steps) < 2:
        return
    print(
        f"scale: {name}, steps: pairs sending, pps offered, delivered, delivered per CPU s, "
        "loss, loop lag p99 ms, latency p99 ms, CPU %, page faults per packet, within limits",
        file=sys.stderr,
    )
    for s in sorted(steps, key=lambda s: s["offered_pps"]):
        print(
            f"  {s['pairs_sending']:5d} {s['offered_pps']:8,.0f} {s['delivered_pps']:8,.0f} "
            f"{s['delivered_per_cpu_s']:8,.0f} {100 * s['loss']:5.1f}% {s['lag_p99_ms']:7.1f} "
            f"{s['latency_p99_ms'] or 0:8.1f} {s['cpu_percent']:4.0f} "
            f"{s['page_faults_per_packet']:5.2f} {s['ok']}",
            file=sys.stderr,
        )


def _idle_row(label: str, ours: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any]:
    return _row(
        f"{label}: idle (established, no media) CPU % of one core",
        _get(ours, "idle", "cpu_percent"),
        _get(ref, "idle", "cpu_percent"),
        idle=ours.get("idle"),
        reference_idle=_get(ref, "idle"),
    )


def _ceiling_rows(
    label: str,
    loop: str,
    ours: dict[str, Any] | None,
    bare: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The loop's ceiling (bare DatagramProtocols, same datagrams, same pacing) and
    SecurePeer's delivered packets per CPU second as a fraction of it, same run."""
    bare_traffic = _get(bare, "traffic")
    ours_traffic = _get(ours, "traffic")
    if bare_traffic is None:
        return [_row(f"{label}: bare {loop} loop (ceiling) did not finish", None)]
    saturated = "" if not bare_traffic["ok"] else ", not saturated"
    return [
        _row(
            f"{label}: bare {loop} loop (ceiling), delivered packets per CPU second"
            f" ({bare_traffic['delivered_pps']:,.0f} pps, CPU {bare_traffic['cpu_percent']:.0f} %"
            f"{saturated})",
            bare_traffic["delivered_per_cpu_s"],
            traffic=bare_traffic,
        ),
        _row(
            f"{label}: SecurePeer on {loop}, delivered packets per CPU second, of the ceiling",
            _get(ours_traffic, "delivered_per_cpu_s"),
            bare_traffic["delivered_per_cpu_s"],
            goal=">= 0.6",
            reference_name=f"bare {loop} loop",
        ),
    ]


def _floor_rows(
    label: str,
    ours: dict[str, Any] | None,
    floor: dict[str, Any] | None,
    ref: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The floor of a Python SRTP stack on ``cryptography`` (FloorPair: the bare loop
    plus one AES-GCM seal and open per packet), SecurePeer as a fraction of it, and
    the floor against aiortc: what the 8x-aiortc goal asks of any stack, same run."""
    floor_traffic = _get(floor, "traffic")
    if floor_traffic is None:
        return [_row(f"{label}: floor (bare loop + AES-GCM) did not finish", None)]
    return [
        _row(
            f"{label}: floor (bare uvloop loop + one AES-GCM seal and open per packet),"
            " delivered packets per CPU second",
            floor_traffic["delivered_per_cpu_s"],
            _get(ref, "traffic", "delivered_per_cpu_s"),
            reference_name="aiortc",
            traffic=floor_traffic,
        ),
        _row(
            f"{label}: SecurePeer on uvloop, delivered packets per CPU second, of the floor",
            _get(ours, "traffic", "delivered_per_cpu_s"),
            floor_traffic["delivered_per_cpu_s"],
            reference_name="floor",
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Every fleet size on asyncio next to aiortc; the fleets of 100 pairs and more
    (``--quick``: the largest) also on uvloop when it is installed, and on both loops
    the bare-loop ceiling with the same datagrams and pacing."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    seconds = 1.0 if quick else 3.0
    idle_s = 1.0 if quick else Spec.idle_seconds
    largest = max(sizes)
    uvloop = uvloop_available()
    rows: list[dict[str, Any]] = []
    for n in sizes:
        knee = not quick and n >= 100
        both_loops = n >= 100 or (quick and n == largest)
        ours = _child(
            Spec("ours", n, True, seconds, knee, idle_seconds=idle_s), OURS_CAP + 300
        )
        ref = _child(
            Spec("aiortc", n, True, seconds, knee, AIORTC_CAP, idle_seconds=idle_s),
            AIORTC_CAP + 300,
        )
        label = f"scale {n} pair{'s' if n > 1 else ''} ICE"
        if ours is None:
            rows.append(_row(f"{label}: did not finish", None))
            continue
        rows += _fleet_rows(label, n, ours, ref)
        if "traffic" not in ours:
            continue
        if n >= 100:
            rows.append(_idle_row(label, ours, ref))
        traffic_label = f"{label} x 2 x {RATE} pps"
        rows += _traffic_rows(traffic_label, ours["traffic"], _get(ref, "traffic"))
        if knee:
            rows.append(_knee_row(label, ours, ref))
            _print_steps(f"ours, {label}", ours)
            _print_steps(f"aiortc, {label}", ref)
        if not both_loops:
            continue
        bare = _child(Spec("bare", n, True, seconds, idle_seconds=0.0), OURS_CAP + 300)
        rows += _ceiling_rows(traffic_label, "asyncio", ours, bare)
        if not uvloop:
            rows.append(_row(f"{label} on uvloop: not measured (uvloop not installed)", None))
            continue
        on_uv = _child(
            Spec("ours", n, True, seconds, knee, idle_seconds=idle_s, loop="uvloop"),
            OURS_CAP + 300,
        )
        bare_uv = _child(
            Spec("bare", n, True, seconds, idle_seconds=0.0, loop="uvloop"), OURS_CAP + 300
        )
        uv_label = f"{label} on uvloop"
        if on_uv is None or "traffic" not in on_uv:
            rows.append(_row(f"{uv_label}: did not finish", None))
        else:
            rows += _fleet_rows(uv_label, n, on_uv, None, reference_expected=False)
            rows += _traffic_rows(f"{uv_label} x 2 x {RATE} pps", on_uv["traffic"], None)
            rows.append(
                _row(
                    f"{uv_label}: delivered packets per CPU second, of aiortc's (asyncio)",
                    on_uv["traffic"]["delivered_per_cpu_s"],
                    _get(ref, "traffic", "delivered_per_cpu_s"),
                    goal=">= 8",
                )
            )
            if knee:
                good, _ = knee_of([*on_uv.get("knee", []), on_uv["traffic"]])
                asyncio_good, _ = knee_of([*ours.get("knee", []), ours["traffic"]])
                rows.append(
                    _row(
                        f"{uv_label}: knee, highest offered pps within limits, of ours on asyncio",
                        good["offered_pps"] if good else 0,
                        asyncio_good["offered_pps"] if asyncio_good else None,
                        goal=">= 2x the asyncio knee before (20,000)",
                        reference_name="ours, asyncio",
                        within=good,
                    )
                )
                _print_steps(f"ours on uvloop, {label}", on_uv)
        rows += _ceiling_rows(f"{label} x 2 x {RATE} pps", "uvloop", on_uv, bare_uv)
        if n == largest:
            floor_uv = _child(
                Spec("floor", n, True, seconds, idle_seconds=0.0, loop="uvloop"), OURS_CAP + 300
            )
            rows += _floor_rows(f"{label} x 2 x {RATE} pps", on_uv, floor_uv, ref)
    # plain UDP: no ICE checks and no aioice on the data path, the largest fleet
    plain = _child(
        Spec("ours", largest, False, seconds, not quick, idle_seconds=idle_s), OURS_CAP + 300
    )
    label = f"scale {largest} pairs plain UDP"
    if plain is None:
        rows.append(_row(f"{label}: did not finish", None))
    else:
        rows += _fleet_rows(label, largest, plain, None, reference_expected=False)
        if "traffic" in plain:
            rows.append(_idle_row(label, plain, None))
            rows += _traffic_rows(f"{label} x 2 x {RATE} pps", plain["traffic"], None)
            if not quick:
                rows.append(_knee_row(label, plain, None))
                _print_steps(f"ours, {label}", plain)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", help="one configuration as JSON (what the section runs)")
    parser.add_argument(
        "--stack",
        choices=["ours", "aiortc", "bare", "floor"],
        default="ours",
        help="floor: the bare loop plus one AES-GCM seal and open per packet (FloorPair)",
    )
    parser.add_argument(
        "--loop", default=None, help="asyncio or uvloop (default: WEBRTC_SECURE_LOOP, auto)"
    )
    parser.add_argument("--no-freeze", action="store_true", help="no gc.freeze() after bring-up")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--plain", action="store_true", help="use_ice=False")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--knee", action="store_true", help="then search the knee")
    parser.add_argument("--rate", type=int, default=RATE, help="packets/s per peer")
    parser.add_argument("--out", help="write the JSON result here instead of stdout")
    parser.add_argument("--idle", type=float, default=Spec.idle_seconds, help="idle phase, s")
    args = parser.parse_args()
    if args.spec:
        spec = Spec(**json.loads(args.spec))
    else:
        cap = AIORTC_CAP if args.stack == "aiortc" else OURS_CAP
        spec = Spec(
            args.stack,
            args.pairs,
            not args.plain,
            args.seconds,
            args.knee,
            cap,
            args.rate,
            args.idle,
            choose_loop(args.loop),
            not args.no_freeze,
        )
    result = json.dumps(run_loop(measure(spec), spec.loop))
    if args.out:
        Path(args.out).write_text(result)
    else:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
