"""SRTP and SRTCP (RFC 3711, RFC 7714): sans-I/O packet protection."""

from webrtc_secure.srtp.context import SrtpContext
from webrtc_secure.srtp.profiles import DEFAULT_PROFILES, Profile
from webrtc_secure.srtp.session import SrtpSession

__all__ = ["DEFAULT_PROFILES", "Profile", "SrtpContext", "SrtpSession"]
