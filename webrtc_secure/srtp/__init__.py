"""SRTP and SRTCP (RFC 3711, RFC 7714): sans-I/O packet protection."""

from webrtc_secure.srtp.profiles import DEFAULT_PROFILES, Profile

__all__ = ["DEFAULT_PROFILES", "Profile"]
