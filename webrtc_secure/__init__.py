"""webrtc_secure: WebRTC's security layer (DTLS 1.2, DTLS-SRTP, SRTP/SRTCP) and data
channels (SCTP over DTLS, DCEP) on asyncio."""

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.datachannel import DataChannel, Priority, ReadyState
from webrtc_secure.description import SessionDescription, SetupRole
from webrtc_secure.errors import (
    AlertReceived,
    AuthenticationFailed,
    CertificateError,
    ChannelIdInUse,
    ChannelMessageTooLarge,
    ConfigurationError,
    ConnectionClosed,
    DataChannelError,
    DtlsError,
    FingerprintMismatch,
    FirstFlightTimeout,
    HandshakeFailure,
    HandshakeTimeout,
    IceError,
    InvalidChannelParameters,
    InvalidChannelState,
    InvalidStateError,
    KeyLifetimeExceeded,
    MalformedDcepMessage,
    MalformedPacket,
    PacketTooLarge,
    ReplayDetected,
    SdpError,
    SrtpError,
    StreamLimitExceeded,
    WebrtcSecureError,
)
from webrtc_secure.ice import IceCandidate
from webrtc_secure.peer import PeerState, SecurePeer
from webrtc_secure.stats import PeerStatsReport

__all__ = [
    "AlertReceived",
    "AuthenticationFailed",
    "Certificate",
    "CertificateError",
    "ChannelIdInUse",
    "ChannelMessageTooLarge",
    "ConfigurationError",
    "ConnectionClosed",
    "DataChannel",
    "DataChannelError",
    "DtlsError",
    "Fingerprint",
    "FingerprintMismatch",
    "FirstFlightTimeout",
    "HandshakeFailure",
    "HandshakeTimeout",
    "IceCandidate",
    "IceError",
    "InvalidChannelParameters",
    "InvalidChannelState",
    "InvalidStateError",
    "KeyLifetimeExceeded",
    "MalformedDcepMessage",
    "MalformedPacket",
    "PacketTooLarge",
    "PeerState",
    "PeerStatsReport",
    "Priority",
    "ReadyState",
    "ReplayDetected",
    "SdpError",
    "SecurePeer",
    "SessionDescription",
    "SetupRole",
    "SrtpError",
    "StreamLimitExceeded",
    "WebrtcSecureError",
]
__version__ = "0.1.0"
