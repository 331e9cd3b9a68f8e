"""Echo peers: the answerer echoes data channel messages and RTP; the offerer measures
round trips.

Signaling is one JSON line each way over a loopback TCP socket (the answerer
listens), or copy-paste through stdin/stdout. Used by ``examples/echo_peer.py``,
``python -m webrtc_secure echo`` and ``make demo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from webrtc_secure.datachannel import DataChannel
from webrtc_secure.description import SessionDescription
from webrtc_secure.peer import SecurePeer

logger = logging.getLogger(__name__)

RTP_PAYLOAD_TYPE = 0  # PCMU
RTP_PAYLOAD_OCTETS = 160  # 20 ms of 8 kHz audio
RTP_CLOCK_STEP = 160


@dataclass
class EchoReport:
    """What the offerer measured."""

    messages_sent: int = 0
    messages_echoed: int = 0
    rtp_sent: int = 0
    rtp_echoed: int = 0
    message_rtt_ms: list[float] = field(default_factory=list)
    rtp_rtt_ms: list[float] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    local_fingerprint: str = ""
    remote_fingerprint: str = ""
    channel: str = "n/a"

    @property
    def ok(self) -> bool:
        return self.messages_echoed == self.messages_sent and self.rtp_echoed == self.rtp_sent

    def summary(self) -> str:
        s = self.stats
        dtls = s.get("dtls", {})

        def pct(values: list[float], q: float) -> str:
            if not values:
                return "n/a"
            ordered = sorted(values)
            return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.2f} ms"

        lost_msgs = self.messages_sent - self.messages_echoed
        lost_rtp = self.rtp_sent - self.rtp_echoed
        lines = [
            "webrtc_secure echo demo",
            f"  ICE connected in        {1e3 * (s.get('ice_seconds') or 0):.1f} ms",
            f"  DTLS handshake in       {1e3 * (s.get('dtls_seconds') or 0):.1f} ms "
            f"({dtls.get('role')}, {dtls.get('flights_sent')} flights, "
            f"{dtls.get('retransmissions')} retransmissions)",
            f"  SCTP association in     {1e3 * (s.get('sctp_seconds') or 0):.1f} ms "
            f"(datachannel-ready)",
            f"  DTLS version            {dtls.get('version')} ({dtls.get('group')})",
            f"  cipher suite            {dtls.get('cipher_suite')}",
            f"  SRTP profile            {dtls.get('srtp_profile')}",
            f"  local fingerprint       sha-256 {self.local_fingerprint}",
            f"  remote fingerprint      sha-256 {self.remote_fingerprint} (verified in handshake)",
            f"  data channel            {self.channel}",
            f"  messages echoed         {self.messages_echoed}/{self.messages_sent}"
            f"  rtt p50 {pct(self.message_rtt_ms, 0.5)}  p99 {pct(self.message_rtt_ms, 0.99)}",
            f"  RTP packets echoed      {self.rtp_echoed}/{self.rtp_sent}"
            f"  rtt p50 {pct(self.rtp_rtt_ms, 0.5)}  p99 {pct(self.rtp_rtt_ms, 0.99)}",
            f"  loss                    messages {lost_msgs}, RTP {lost_rtp}",
            f"  dropped (auth/replay)   {s.get('dropped', {}) or 'none'}",
            f"  result                  {'OK: every echo came back' if self.ok else 'FAILED'}",
        ]
        return "\n".join(lines)


def rtp_packet(seq: int, ssrc: int, timestamp: int, payload: bytes) -> bytes:
    """A minimal RTP packet (version 2, no CSRC, no extension)."""
    return (
        struct.pack("!BBHII", 0x80, RTP_PAYLOAD_TYPE, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
        + payload
    )


# --- signaling --------------------------------------------------------------------------


class Signaling:
    """One JSON description each way: TCP on loopback, or stdin/stdout copy-paste."""

    def __init__(self, mode: str, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.mode = mode
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None

    async def open(self, listen: bool) -> None:
        if self.mode != "tcp":
            return
        if listen:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                if self._reader is None:
                    self._reader, self._writer = r, w
                    ready.set_result(None)
                else:
                    w.close()

            self._server = await asyncio.start_server(on_client, self.host, self.port)
            print(
                f"answerer: signaling on tcp {self.host}:{self.port}", file=sys.stderr, flush=True
            )
            await ready
        else:
            for _ in range(100):  # the answerer may still be starting
                try:
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
                    return
                except OSError:
                    await asyncio.sleep(0.05)
            raise ConnectionError(f"no answerer at {self.host}:{self.port}")

    async def send(self, description: SessionDescription) -> None:
        text = description.to_json()
        if self.mode == "tcp":
            assert self._writer is not None
            self._writer.write(text.encode() + b"\n")
            await self._writer.drain()
        else:
            print(f"paste this into the other peer:\n{text}\n", flush=True)

    async def receive(self) -> SessionDescription:
        if self.mode == "tcp":
            assert self._reader is not None
            line = await self._reader.readline()
        else:
            print("paste the other peer's description (one line):", flush=True)
            line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.readline)
        if not line:
            raise ConnectionError("signaling channel closed")
        return SessionDescription.from_json(line.decode())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# --- roles ------------------------------------------------------------------------------


async def run_answerer(signaling: Signaling, host_addresses: list[str] | None) -> int:
    """Answer one offer and echo messages and RTP until the offerer closes."""
    await signaling.open(listen=True)
    async with SecurePeer(host_addresses=host_addresses) as peer:
        closed = asyncio.Event()

        def on_datachannel(channel: DataChannel) -> None:
            channel.on("message", channel.send)  # echo on the channel it came on

        peer.on("datachannel", on_datachannel)
        peer.on("rtp", lambda packet: peer.send_rtp(packet))
        peer.on("rtcp", lambda packet: peer.send_rtcp(packet))
        peer.on("closed", lambda: closed.set())
        offer = await signaling.receive()
        answer = await peer.create_answer(offer)
        await signaling.send(answer)
        await peer.connect(offer)
        print(
            f"answerer: connected ({peer.stats()['dtls']['cipher_suite']}, "
            f"{peer.srtp_profile.name if peer.srtp_profile else 'no SRTP'})",
            file=sys.stderr,
            flush=True,
        )
        await closed.wait()
    await signaling.close()
    return 0


async def run_offerer(
    signaling: Signaling,
    host_addresses: list[str] | None,
    count: int,
    interval: float,
    timeout: float = 10.0,
) -> EchoReport:
    """Connect, send ``count`` messages and RTP packets, and check every echo."""
    await signaling.open(listen=False)
    report = EchoReport()
    async with SecurePeer(host_addresses=host_addresses) as peer:
        sent_at: dict[bytes, float] = {}
        rtp_sent_at: dict[int, float] = {}
        all_back = asyncio.Event()

        def check_done() -> None:
            if report.messages_echoed == count and report.rtp_echoed == count:
                all_back.set()

        def on_message(data: str | bytes) -> None:
            start = sent_at.pop(data if isinstance(data, bytes) else data.encode(), None)
            if start is not None:
                report.messages_echoed += 1
                report.message_rtt_ms.append(1e3 * (time.perf_counter() - start))
                check_done()

        def on_rtp(packet: bytes) -> None:
            seq = struct.unpack_from("!H", packet, 2)[0]
            start = rtp_sent_at.pop(seq, None)
            if start is not None:
                report.rtp_echoed += 1
                report.rtp_rtt_ms.append(1e3 * (time.perf_counter() - start))
                check_done()

        # created before connect(): it opens as soon as the SCTP association is up
        channel = peer.create_data_channel("echo", protocol="json")
        channel.on("message", on_message)
        peer.on("rtp", on_rtp)
        offer = await peer.create_offer()
        await signaling.send(offer)
        answer = await signaling.receive()
        await peer.connect(answer)
        report.local_fingerprint = peer.certificate.fingerprint()
        report.remote_fingerprint = str(answer.fingerprints[-1]).split(" ", 1)[1]
        await asyncio.wait_for(channel.wait_open(), timeout)
        sctp = peer.stats().get("sctp", {})
        report.channel = (
            f"{channel.label!r} id {channel.id} ({channel.protocol}, reliable, ordered) over "
            f"SCTP {'I-DATA' if sctp.get('interleaving') else 'DATA'}"
        )
        ssrc = int.from_bytes(os.urandom(4), "big")
        payload = bytes(RTP_PAYLOAD_OCTETS)
        for i in range(count):
            message = json.dumps({"n": i, "pad": "x" * 64})
            sent_at[message.encode()] = time.perf_counter()
            channel.send(message)
            report.messages_sent += 1
            rtp_sent_at[i] = time.perf_counter()
            peer.send_rtp(rtp_packet(i, ssrc, i * RTP_CLOCK_STEP, payload))
            report.rtp_sent += 1
            await asyncio.sleep(interval)
        try:
            await asyncio.wait_for(all_back.wait(), timeout)
        except asyncio.TimeoutError:
            logger.warning("not every echo came back within %.0f s", timeout)
        report.stats = peer.stats()
    await signaling.close()
    return report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
