"""aiortc on the other end: media sources, a frame-counting sink, and an SDP-string peer.

Everything here speaks plain SDP strings, so it can face Chromium (through
:class:`~tests.browser.server.PageServer`), another aiortc, or ``SecurePeer``.

* :class:`SineAudioTrack` / :class:`PatternVideoTrack`: paced synthetic sources.
* :class:`FrameCounter`: consumes a received track and counts decoded frames.
* :class:`AiortcPeer`: one ``RTCPeerConnection`` that offers or answers, sends its own
  tracks or echoes what it receives, and counts what it decodes.

aiortc's default configuration adds a public STUN server; :func:`rtc_configuration`
never does, so nothing here talks to anything but the candidates in the SDP.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

logger = logging.getLogger(__name__)

AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
AUDIO_SAMPLES = int(AUDIO_RATE * AUDIO_PTIME)


def rtc_configuration() -> RTCConfiguration:
    """No ICE servers at all: host candidates only (aiortc would otherwise add STUN)."""
    return RTCConfiguration(iceServers=[])


class SineAudioTrack(MediaStreamTrack):
    """48 kHz mono s16 sine (440 Hz by default) in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, frequency: int = 440, amplitude: float = 0.3) -> None:
        super().__init__()
        # One second holds a whole number of periods for an integer frequency, so a
        # one-second table loops without a click.
        peak = int(32767 * amplitude)
        table = array.array("h", (
            int(peak * math.sin(2 * math.pi * frequency * i / AUDIO_RATE))
            for i in range(AUDIO_RATE)))
        self._table = table.tobytes() * 2
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += AUDIO_SAMPLES
            wait = self._start + self._pts / AUDIO_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        offset = (self._pts % AUDIO_RATE) * 2
        frame = AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(self._table[offset: offset + AUDIO_SAMPLES * 2])
        frame.pts = self._pts
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


class PatternVideoTrack(VideoStreamTrack):
    """320x240 frames at aiortc's 30 fps pacing: grey field with a bar sweeping across.

    Motion makes a frozen picture obvious in a screenshot and keeps the encoder honest.
    """

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self._index = 0

    async def recv(self) -> VideoFrame:  # type: ignore[override]
        pts, time_base = await self.next_timestamp()
        width, height = self.width, self.height
        bar_x = (self._index * 4) % width
        bar_w = max(8, width // 10)
        row = bytearray([90]) * width
        row[bar_x: bar_x + bar_w] = bytes([235]) * len(row[bar_x: bar_x + bar_w])
        frame = VideoFrame(width=width, height=height, format="yuv420p")
        luma = frame.planes[0]
        luma.update(bytes(row).ljust(luma.line_size, b"\0") * height)
        for plane, value in ((frame.planes[1], 80), (frame.planes[2], 200)):
            plane.update(bytes([value]) * (plane.line_size * (height // 2)))
        frame.pts = pts
        frame.time_base = time_base
        self._index += 1
        return frame


@dataclass
class FrameCounter:
    """Reads a received track until it ends, counting decoded frames.

    ``peak`` is the largest absolute audio sample seen (s16), proving audio is not silence.
    """

    kind: str
    frames: int = 0
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    peak: int = 0
    first_frame_at: float | None = None
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, track: MediaStreamTrack) -> FrameCounter:
        self._task = asyncio.ensure_future(self._consume(track))
        return self

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames += 1
            if self.first_frame_at is None:
                self.first_frame_at = time.monotonic()
            if isinstance(frame, VideoFrame):
                self.width, self.height = frame.width, frame.height
            elif isinstance(frame, AudioFrame):
                self.sample_rate = frame.sample_rate
                if frame.format.name == "s16":
                    samples = array.array("h", bytes(frame.planes[0]))
                    if samples:
                        self.peak = max(self.peak, max(samples), -min(samples))
            self._changed.set()

    async def wait_frames(self, count: int, timeout: float) -> int:
        """Wait until at least ``count`` frames were decoded; returns the count."""
        deadline = time.monotonic() + timeout
        while self.frames < count:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.kind}: {self.frames}/{count} frames in {timeout}s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.frames

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "frames": self.frames, "width": self.width,
                "height": self.height, "sample_rate": self.sample_rate, "peak": self.peak}


class AiortcPeer:
    """An aiortc ``RTCPeerConnection`` behind SDP strings (a ``SignalingHandler``).

    ``echo=True``: when answering, send each received track straight back (through a
    :class:`MediaRelay`, so it is also counted). Otherwise it sends
    :class:`SineAudioTrack` and/or :class:`PatternVideoTrack`. Every received track is
    counted by a :class:`FrameCounter` in ``counters[kind]``.
    """

    def __init__(self, *, send_audio: bool = True, send_video: bool = True,
                 echo: bool = False) -> None:
        self.pc = RTCPeerConnection(configuration=rtc_configuration())
        self.send_audio = send_audio
        self.send_video = send_video
        self.echo = echo
        self.relay = MediaRelay()
        self.counters: dict[str, FrameCounter] = {}
        self.local_tracks: list[MediaStreamTrack] = []
        self._connected = asyncio.Event()
        self._failed = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            state = self.pc.connectionState
            logger.info("aiortc connection state: %s", state)
            if state == "connected":
                self._connected.set()
            elif state in ("failed", "closed"):
                self._failed.set()

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            logger.info("aiortc received %s track", track.kind)
            source = self.relay.subscribe(track) if self.echo else track
            self.counters[track.kind] = FrameCounter(track.kind).start(source)

    def _own_track(self, kind: str) -> MediaStreamTrack | None:
        if kind == "audio" and self.send_audio:
            track: MediaStreamTrack = SineAudioTrack()
        elif kind == "video" and self.send_video:
            track = PatternVideoTrack()
        else:
            return None
        self.local_tracks.append(track)
        return track

    async def offer(self) -> str:
        """Offer one sendrecv audio and one sendrecv video m-line (fully gathered)."""
        for kind in ("audio", "video"):
            track = self._own_track(kind)
            self.pc.addTransceiver(track if track is not None else kind,
                                   direction="sendrecv" if track else "recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    async def answer(self, offer_sdp: str) -> str:
        """Answer an offer, attaching echo or synthetic tracks per m-line (gathered)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in self.pc.getTransceivers():
            self._attach(transceiver)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def _attach(self, transceiver: RTCRtpTransceiver) -> None:
        if self.echo:
            received = transceiver.receiver.track
            track: MediaStreamTrack | None = (
                self.relay.subscribe(received) if received is not None else None)
        else:
            track = self._own_track(transceiver.kind)
        if track is not None:
            transceiver.sender.replaceTrack(track)
            transceiver.direction = "sendrecv"

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait for connectionState ``connected``; raise if it fails first."""
        connected = asyncio.ensure_future(self._connected.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({connected, failed}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (connected, failed):
                waiter.cancel()
            await asyncio.gather(connected, failed, return_exceptions=True)
        if self._connected.is_set():
            return
        raise ConnectionError(f"aiortc did not connect (state {self.pc.connectionState})")

    async def wait_frames(self, kind: str, count: int, timeout: float = 10.0) -> int:
        """Wait for a ``kind`` track to arrive and decode ``count`` frames."""
        deadline = time.monotonic() + timeout
        while kind not in self.counters:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind} track arrived within {timeout}s")
            await asyncio.sleep(0.05)
        return await self.counters[kind].wait_frames(count, deadline - time.monotonic())

    def dtls_info(self) -> dict[str, Any]:
        """What aiortc's OpenSSL negotiated (private aiortc attributes, best effort)."""
        for transceiver in self.pc.getTransceivers():
            transport = transceiver.sender.transport
            ssl = getattr(transport, "_ssl", None)
            if transport is None or ssl is None:
                continue
            profile = ssl.get_selected_srtp_profile()
            return {
                "state": transport.state,
                "role": getattr(transport, "_role", None),
                "version": ssl.get_protocol_version_name(),
                "cipher": ssl.get_cipher_name(),
                "srtp_profile": profile.decode() if profile else None,
            }
        return {}

    async def close(self) -> None:
        for counter in self.counters.values():
            await counter.stop()
        await self.pc.close()
        for track in self.local_tracks:
            track.stop()
