"""DTLS 1.2 (RFC 6347) as a sans-I/O engine; :class:`DtlsConnection` is its face."""

from webrtc_secure.dtls.connection import DtlsConnection, DtlsStats, State
from webrtc_secure.dtls.cookies import CookieFactory
from webrtc_secure.dtls.events import ApplicationData, ConnectionClosed, Event, HandshakeComplete
from webrtc_secure.dtls.messages import AlertDescription
from webrtc_secure.dtls.suites import CipherSuite, NamedGroup, SignatureScheme

__all__ = [
    "AlertDescription",
    "ApplicationData",
    "CipherSuite",
    "ConnectionClosed",
    "CookieFactory",
    "DtlsConnection",
    "DtlsStats",
    "Event",
    "HandshakeComplete",
    "NamedGroup",
    "SignatureScheme",
    "State",
]
