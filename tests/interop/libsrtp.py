"""libsrtp through pylibsrtp, as the tests and benchmarks compare against it."""

from __future__ import annotations

from pylibsrtp import Policy, Session

from webrtc_secure.srtp import Profile

LIBSRTP_PROFILE = {
    Profile.AES128_CM_HMAC_SHA1_80: Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    Profile.AES128_CM_HMAC_SHA1_32: Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    Profile.AEAD_AES_128_GCM: Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    Profile.AEAD_AES_256_GCM: Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}


def libsrtp_session(profile: Profile, key: bytes, salt: bytes, outbound: bool) -> Session:
    """A libsrtp session for any SSRC in one direction (like an SrtpContext half)."""
    return Session(
        policy=Policy(
            key=key + salt,
            ssrc_type=Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND,
            srtp_profile=LIBSRTP_PROFILE[profile],
        )
    )
