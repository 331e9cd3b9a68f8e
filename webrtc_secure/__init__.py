"""webrtc_secure: WebRTC's security layer (DTLS 1.2, DTLS-SRTP, SRTP/SRTCP) on asyncio."""

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.description import SessionDescription, SetupRole
from webrtc_secure.errors import (
    AlertReceived,
    AuthenticationFailed,
    CertificateError,
    ConfigurationError,
    ConnectionClosed,
    DtlsError,
    FingerprintMismatch,
    FirstFlightTimeout,
    HandshakeFailure,
    HandshakeTimeout,
    IceError,
    InvalidStateError,
    KeyLifetimeExceeded,
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

__all__ = [
    "AlertReceived",
    "AuthenticationFailed",
    "Certificate",
    "CertificateError",
    "ConfigurationError",
    "ConnectionClosed",
    "DtlsError",
    "Fingerprint",
    "FingerprintMismatch",
    "FirstFlightTimeout",
    "HandshakeFailure",
    "HandshakeTimeout",
    "IceCandidate",
    "IceError",
    "InvalidStateError",
    "KeyLifetimeExceeded",
    "MalformedPacket",
    "PacketTooLarge",
    "PeerState",
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
