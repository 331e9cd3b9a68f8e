"""An RTP-level DTLS-SRTP peer shaped like ``SecurePeer``, built from aiortc's ORTC parts.

``SecurePeer`` deals in transports and RTP packets, not decoded media. This stand-in does
the same with aiortc's ``RTCIceGatherer`` / ``RTCIceTransport`` / ``RTCDtlsTransport``
(OpenSSL DTLS, libsrtp) so the browser harness can prove today what SecurePeer will need:
full media SDP wrapped around bare transport parameters (:mod:`tests.browser.sdp_media`)
and an RTP-packet echo (each received packet sent back on our own SSRC) that Chromium
decodes. Swapping in SecurePeer means providing the same four coroutines and the same
``on_rtp`` -> ``send_rtp`` echo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from aiortc import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
)
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from tests.browser.sdp_media import (
    TransportParams,
    media_answer,
    media_offer,
    new_ssrcs,
    parse_media,
    rewrite_ssrc,
)

logger = logging.getLogger(__name__)


def rtp_payload_type(packet: bytes) -> int:
    return packet[1] & 0x7F


class _RawDtlsTransport(RTCDtlsTransport):
    """Hands decrypted RTP/RTCP to the owner instead of aiortc's RTP receivers."""

    def __init__(self, ice: RTCIceTransport, certificate: RTCCertificate,
                 owner: AiortcRtpPeer) -> None:
        super().__init__(ice, [certificate])
        self._owner = owner

    async def _handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        await self._owner._on_rtp(data)

    async def _handle_rtcp_data(self, data: bytes) -> None:
        self._owner.rtcp_received += 1


class AiortcRtpPeer:
    """RTP-level peer behind SDP strings (a ``SignalingHandler``) that echoes RTP.

    Every received RTP packet is counted per kind (by payload type from the negotiated
    SDP) and, with ``echo=True``, sent back with its SSRC replaced by ours for that kind.
    """

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.gatherer = RTCIceGatherer(iceServers=[])
        self.ice = RTCIceTransport(self.gatherer)
        self.certificate = RTCCertificate.generateCertificate()
        self.dtls = _RawDtlsTransport(self.ice, self.certificate, self)
        self.ssrcs = new_ssrcs()
        self.received: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.rtcp_received = 0
        self.payload_kinds: dict[int, str] = {}
        self.connected = asyncio.Event()
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _local(self, setup: str) -> TransportParams:
        await self.gatherer.gather()
        ice = self.gatherer.getLocalParameters()
        fingerprint = next(f for f in self.dtls.getLocalParameters().fingerprints
                           if f.algorithm == "sha-256")
        return TransportParams(
            ice_ufrag=str(ice.usernameFragment), ice_pwd=str(ice.password),
            fingerprint=f"{fingerprint.algorithm} {fingerprint.value}", setup=setup,
            candidates=[candidate_to_sdp(c) for c in self.gatherer.getLocalCandidates()])

    def _learn_payload_types(self, sdp: str) -> None:
        for media in parse_media(sdp):
            pt = media.payload_type()
            if pt is not None:
                self.payload_kinds[pt] = media.kind

    async def answer(self, offer_sdp: str) -> str:
        remote = TransportParams.from_sdp(offer_sdp)
        self._learn_payload_types(offer_sdp)
        local = await self._local("active")
        answer = media_answer(offer_sdp, local, self.ssrcs)
        self._start(remote, dtls_role="client")
        return answer

    async def offer(self) -> str:
        self.ice._connection.ice_controlling = True
        local = await self._local("actpass")
        offer = media_offer(local, self.ssrcs)
        self._learn_payload_types(offer)
        return offer

    async def accept_answer(self, answer_sdp: str) -> None:
        remote = TransportParams.from_sdp(answer_sdp)
        self._start(remote, dtls_role="server" if remote.setup == "active" else "client")

    def _start(self, remote: TransportParams, dtls_role: str) -> None:
        self._task = asyncio.ensure_future(self._connect(remote, dtls_role))

    async def _connect(self, remote: TransportParams, dtls_role: str) -> None:
        try:
            for value in remote.candidates:
                candidate = candidate_from_sdp(value)
                if candidate.protocol.lower() == "udp":
                    await self.ice.addRemoteCandidate(candidate)
            await self.ice.addRemoteCandidate(None)
            await self.ice.start(RTCIceParameters(usernameFragment=remote.ice_ufrag,
                                                  password=remote.ice_pwd,
                                                  iceLite=remote.ice_lite))
            algorithm, _, value = remote.fingerprint.partition(" ")
            self.dtls._set_role(dtls_role)
            await self.dtls.start(RTCDtlsParameters(
                fingerprints=[RTCDtlsFingerprint(algorithm=algorithm, value=value)]))
            self.connected.set()
        except Exception as exc:
            logger.warning("RTP peer failed to connect: %r", exc)
            self.error = exc

    async def _on_rtp(self, packet: bytes) -> None:
        kind = self.payload_kinds.get(rtp_payload_type(packet))
        if kind is None:
            return
        self.received[kind] += 1
        if self.echo:
            await self.send_rtp(rewrite_ssrc(packet, self.ssrcs[kind]))
            self.sent[kind] += 1

    async def send_rtp(self, packet: bytes) -> None:
        await self.dtls._send_rtp(packet)

    async def wait_packets(self, kind: str, count: int, timeout: float = 10.0) -> int:
        """Wait until ``count`` RTP packets of ``kind`` arrived (fails on connect error)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.received[kind] < count:
            if self.error is not None:
                raise ConnectionError(f"RTP peer failed: {self.error!r}")
            if loop.time() > deadline:
                raise TimeoutError(f"{kind}: {self.received[kind]}/{count} RTP packets")
            await asyncio.sleep(0.05)
        return self.received[kind]

    def dtls_info(self) -> dict[str, object]:
        ssl = getattr(self.dtls, "_ssl", None)
        if ssl is None:
            return {"state": self.dtls.state}
        profile = ssl.get_selected_srtp_profile()
        return {"state": self.dtls.state, "role": self.dtls._role,
                "version": ssl.get_protocol_version_name(), "cipher": ssl.get_cipher_name(),
                "srtp_profile": profile.decode() if profile else None}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.dtls.stop()
        await self.ice.stop()
