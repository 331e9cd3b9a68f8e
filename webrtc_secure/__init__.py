"""webrtc_secure: WebRTC's security layer (DTLS 1.2, DTLS-SRTP, SRTP/SRTCP) on asyncio."""

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.errors import (
    AuthenticationFailed,
    CertificateError,
    DtlsError,
    FingerprintMismatch,
    MalformedPacket,
    ReplayDetected,
    SdpError,
    WebrtcSecureError,
)

__all__ = [
    "AuthenticationFailed",
    "Certificate",
    "CertificateError",
    "DtlsError",
    "Fingerprint",
    "FingerprintMismatch",
    "MalformedPacket",
    "ReplayDetected",
    "SdpError",
    "WebrtcSecureError",
]
__version__ = "0.1.0"
