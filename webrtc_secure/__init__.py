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
    HandshakeFailure,
    HandshakeTimeout,
    IceError,
    InvalidChannelParameters,
    InvalidChannelState,
    KeyLifetimeExceeded,
    MalformedDcepMessage,
    MalformedPacket,
    ReplayDetected,
    SdpError,
    SrtpError,
    StreamLimitExceeded,
    WebrtcSecureError,
)
from webrtc_secure.peer import PeerState, SecurePeer

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
    "HandshakeFailure",
    "HandshakeTimeout",
    "IceError",
    "InvalidChannelParameters",
    "InvalidChannelState",
    "KeyLifetimeExceeded",
    "MalformedDcepMessage",
    "MalformedPacket",
    "PeerState",
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
