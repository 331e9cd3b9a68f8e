"""Typed statistics in the shape of the browser's ``RTCPeerConnection.getStats()``.

``peer.get_stats()`` returns a :class:`PeerStatsReport`: frozen dataclasses named after
the W3C webrtc-stats dictionaries (``RTCTransportStats``, ``RTCIceCandidatePairStats``,
``RTCInboundRtpStreamStats``, ...), with snake_case attributes. ``to_dict()`` on each
gives the W3C camelCase form, and :meth:`PeerStatsReport.to_dict` the whole report as
``getStats()`` has it (a map from id to stats object, each with ``id``, ``type`` and
``timestamp``), so the two can be compared field by field. Only what this stack
measures is reported: a W3C member we cannot compute honestly is absent rather than
invented. What the browser has no member for (datagrams refused, by reason) is in
:attr:`PeerStatsReport.drops`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: the ids the report's entries use (one transport, one pair, one certificate each side)
TRANSPORT_ID = "T01"
PAIR_ID = "CP01"
LOCAL_CANDIDATE_ID = "I-local"
REMOTE_CANDIDATE_ID = "I-remote"
LOCAL_CERTIFICATE_ID = "CF-local"
REMOTE_CERTIFICATE_ID = "CF-remote"


def _drop_none(out: dict[str, Any]) -> dict[str, Any]:
    """W3C members are absent, not null, when there is no value."""
    return {k: v for k, v in out.items() if v is not None}


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(counts.items())))


@dataclass(frozen=True, slots=True)
class CertificateStats:
    """``RTCCertificateStats``: one side's DTLS certificate."""

    id: str
    fingerprint: str  # colon-separated upper-case hex, as in a=fingerprint
    fingerprint_algorithm: str  # "sha-256"
    base64_certificate: str  # DER, base64

    def to_dict(self, timestamp: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "certificate",
            "timestamp": timestamp,
            "fingerprint": self.fingerprint,
            "fingerprintAlgorithm": self.fingerprint_algorithm,
            "base64Certificate": self.base64_certificate,
        }


@dataclass(frozen=True, slots=True)
class IceCandidateStats:
    """``RTCIceCandidateStats``: one end of the selected candidate pair."""

    id: str
    is_remote: bool
    address: str
    port: int
    protocol: str  # "udp"
    candidate_type: str  # "host", "srflx", "prflx", "relay"
    priority: int
    foundation: str

    def to_dict(self, timestamp: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "remote-candidate" if self.is_remote else "local-candidate",
            "timestamp": timestamp,
            "transportId": TRANSPORT_ID,
            "address": self.address,
            "port": self.port,
            "protocol": self.protocol,
            "candidateType": self.candidate_type,
            "priority": self.priority,
            "foundation": self.foundation,
        }


@dataclass(frozen=True, slots=True)
class CandidatePairStats:
    """``RTCIceCandidatePairStats`` of the selected (nominated) pair.

    The byte and packet counters are the transport's (what the peer sent and received
    over ICE after the checks, STUN excluded): a peer uses one pair, and a renomination,
    which aioice does not do on its own, would not reset them.
    """

    id: str
    local_candidate_id: str
    remote_candidate_id: str
    state: str  # "succeeded" once nominated
    nominated: bool
    #: seconds; the latest STUN transaction on the pair (connectivity or consent check)
    current_round_trip_time: float | None
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int

    def to_dict(self, timestamp: float) -> dict[str, Any]:
        return _drop_none(
            {
                "id": self.id,
                "type": "candidate-pair",
                "timestamp": timestamp,
                "transportId": TRANSPORT_ID,
                "localCandidateId": self.local_candidate_id,
                "remoteCandidateId": self.remote_candidate_id,
                "state": self.state,
                "nominated": self.nominated,
                "currentRoundTripTime": self.current_round_trip_time,
                "bytesSent": self.bytes_sent,
                "bytesReceived": self.bytes_received,
                "packetsSent": self.packets_sent,
                "packetsReceived": self.packets_received,
            }
        )


@dataclass(frozen=True, slots=True)
class TransportStats:
    """``RTCTransportStats``: the DTLS transport (over ICE or plain UDP).

    Byte and packet counters are datagrams put on and taken off the path (DTLS, SRTP,
    SRTCP and anything refused later), not STUN.
    """

    id: str
    dtls_state: str  # "new", "connecting", "connected", "closed", "failed"
    dtls_role: str | None  # "client" or "server"
    tls_version: str | None  # the version's code point in hex, "FEFC" for DTLS 1.3, "FEFD" for 1.2
    dtls_cipher: str | None  # IANA name: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    srtp_cipher: str | None  # IANA profile name: "SRTP_AEAD_AES_128_GCM"
    local_certificate_id: str
    remote_certificate_id: str | None
    selected_candidate_pair_id: str | None
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int

    def to_dict(self, timestamp: float) -> dict[str, Any]:
        return _drop_none(
            {
                "id": self.id,
                "type": "transport",
                "timestamp": timestamp,
                "dtlsState": self.dtls_state,
                "dtlsRole": self.dtls_role,
                "tlsVersion": self.tls_version,
                "dtlsCipher": self.dtls_cipher,
                "srtpCipher": self.srtp_cipher,
                "localCertificateId": self.local_certificate_id,
                "remoteCertificateId": self.remote_certificate_id,
                "selectedCandidatePairId": self.selected_candidate_pair_id,
                "bytesSent": self.bytes_sent,
                "bytesReceived": self.bytes_received,
                "packetsSent": self.packets_sent,
                "packetsReceived": self.packets_received,
            }
        )


@dataclass(frozen=True, slots=True)
class InboundRtpStreamStats:
    """``RTCInboundRtpStreamStats`` for one remote SSRC: authenticated, decrypted RTP
    only (what failed SRTP is in the drops). ``bytes_received`` is payload octets (RFC
    3550 6.4.1: no header, no padding), ``header_bytes_received`` header and padding.
    ``kind`` is "audio"/"video" when the remote description's a=ssrc lines name the
    SSRC, else None. ``packets_lost`` is RFC 3550 A.3's cumulative count: packets
    expected from the first sequence number seen to the highest (with SRTP's
    rollover counter) minus those received."""

    id: str
    ssrc: int
    kind: str | None
    packets_received: int
    bytes_received: int
    header_bytes_received: int
    #: None once the SRTP keys are gone (after close) or before an RTP index is known
    packets_lost: int | None

    def to_dict(self, timestamp: float) -> dict[str, Any]:
        return _drop_none(
            {
                "id": self.id,
                "type": "inbound-rtp",
                "timestamp": timestamp,
                "transportId": TRANSPORT_ID,
                "ssrc": self.ssrc,
                "kind": self.kind,
                "packetsReceived": self.packets_received,
                "bytesReceived": self.bytes_received,
                "headerBytesReceived": self.header_bytes_received,
                "packetsLost": self.packets_lost,
            }
        )


@dataclass(frozen=True, slots=True)
class OutboundRtpStreamStats:
    """``RTCOutboundRtpStreamStats`` for one local SSRC: packets protected and put on
    the path by ``send_rtp()``. Bytes as for :class:`InboundRtpStreamStats`; ``kind``
    from our own description's a=ssrc lines."""

    id: str
    ssrc: int
    kind: str | None
    packets_sent: int
    bytes_sent: int
    header_bytes_sent: int

    def to_dict(self, timestamp: float) -> dict[str, Any]:
        return _drop_none(
            {
                "id": self.id,
                "type": "outbound-rtp",
                "timestamp": timestamp,
                "transportId": TRANSPORT_ID,
                "ssrc": self.ssrc,
                "kind": self.kind,
                "packetsSent": self.packets_sent,
                "bytesSent": self.bytes_sent,
                "headerBytesSent": self.header_bytes_sent,
            }
        )


@dataclass(frozen=True, slots=True)
class DataChannelStats:
    """``RTCDataChannelStats``: message counts and their payload octets."""

    id: str
    label: str
    protocol: str
    data_channel_identifier: int | None  # the SCTP stream id, once assigned
    state: str  # "connecting", "open", "closing", "closed"
    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int

    def to_dict(self, timestamp: float) -> dict[str, Any]:
        return _drop_none(
            {
                "id": self.id,
                "type": "data-channel",
                "timestamp": timestamp,
                "label": self.label,
                "protocol": self.protocol,
                "dataChannelIdentifier": self.data_channel_identifier,
                "state": self.state,
                "messagesSent": self.messages_sent,
                "bytesSent": self.bytes_sent,
                "messagesReceived": self.messages_received,
                "bytesReceived": self.bytes_received,
            }
        )


@dataclass(frozen=True, slots=True)
class PeerStatsReport:
    """A snapshot of one peer: ``peer.get_stats()``.

    ``timestamp`` is milliseconds since the Unix epoch, as ``getStats()`` has it.
    ``drops`` counts every datagram, packet or message refused, by reason: the peer's
    own (``unexpected_source``, ``media_before_keys``, ``rtp_AuthenticationFailed``,
    ...), the ICE layer's (``unvalidated_source``, ``early_overflow``, ...), the DTLS
    engine's (``dtls_authentication``, ``dtls_replay``, ``dtls_malformed``,
    ``dtls_epoch``, ``dtls_fragments``, ``dtls_unexpected_handshake``) and the data
    channels' (``datachannel_`` and their reason). Zero counts are left out.
    """

    timestamp: float
    #: the peer's state ("new", "checking", "connecting", "connected", ...)
    state: str
    transport: TransportStats
    local_certificate: CertificateStats
    remote_certificate: CertificateStats | None
    candidate_pair: CandidatePairStats | None
    local_candidate: IceCandidateStats | None
    remote_candidate: IceCandidateStats | None
    inbound_rtp: tuple[InboundRtpStreamStats, ...]
    outbound_rtp: tuple[OutboundRtpStreamStats, ...]
    data_channels: tuple[DataChannelStats, ...]
    drops: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "drops", _frozen_counts(self.drops))

    def inbound(self, ssrc: int) -> InboundRtpStreamStats | None:
        """The inbound stream of ``ssrc``, or None."""
        return next((s for s in self.inbound_rtp if s.ssrc == ssrc), None)

    def outbound(self, ssrc: int) -> OutboundRtpStreamStats | None:
        """The outbound stream of ``ssrc``, or None."""
        return next((s for s in self.outbound_rtp if s.ssrc == ssrc), None)

    def entries(
        self,
    ) -> tuple[
        TransportStats
        | CertificateStats
        | CandidatePairStats
        | IceCandidateStats
        | InboundRtpStreamStats
        | OutboundRtpStreamStats
        | DataChannelStats,
        ...,
    ]:
        """Every stats object of the report, as ``getStats()`` would list them."""
        optional = (
            self.remote_certificate,
            self.candidate_pair,
            self.local_candidate,
            self.remote_candidate,
        )
        return (
            self.transport,
            self.local_certificate,
            *(entry for entry in optional if entry is not None),
            *self.inbound_rtp,
            *self.outbound_rtp,
            *self.data_channels,
        )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The W3C shape: ``{id: {"id", "type", "timestamp", camelCase members}}``
        (``getStats()``'s map; in a browser, ``Object.fromEntries(report)``)."""
        return {entry.id: entry.to_dict(self.timestamp) for entry in self.entries()}


def dtls_cipher_name(suite_name: str) -> str:
    """Our suite enum name (``ECDHE_ECDSA_AES_128_GCM_SHA256``) in the IANA spelling
    ``getStats()`` uses (``TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256``). A name that is
    already IANA's (DTLS 1.3's ``TLS_AES_128_GCM_SHA256``) is returned as it is."""
    if suite_name.startswith("TLS_"):
        return suite_name
    kex, auth, rest = suite_name.split("_", 2)
    return f"TLS_{kex}_{auth}_WITH_{rest}"


def rtp_sizes(packet: bytes) -> tuple[int, int]:
    """(header octets, padding octets) of an RTP packet that SRTP already parsed, so at
    least its fixed header, CSRCs and extension are there; a padding count larger than
    what follows the header is clamped (the payload counts as empty)."""
    first = packet[0]
    header = 12 + 4 * (first & 0x0F)
    if first & 0x10 and len(packet) >= header + 4:
        header += 4 + 4 * int.from_bytes(packet[header + 2 : header + 4], "big")
    header = min(header, len(packet))
    padding = min(packet[-1], len(packet) - header) if first & 0x20 and len(packet) > header else 0
    return header, padding
