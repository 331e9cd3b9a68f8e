"""DTLS-SRTP protection profiles (RFC 5764 4.1.2, RFC 7714 14.2).

One table: the ``use_srtp`` id and the key, salt and tag lengths of each profile.
The ids 0x0003/0x0004 are deliberately absent: IANA never assigned them and stacks
disagree on what they mean.
"""

from __future__ import annotations

from webrtc_secure.errors import ConfigurationError
from webrtc_secure.named_enum import NamedIntEnum


class Profile(NamedIntEnum):
    """The SRTP protection profiles this library speaks, by their use_srtp id."""

    AES128_CM_HMAC_SHA1_80 = 0x0001
    AES128_CM_HMAC_SHA1_32 = 0x0002
    AEAD_AES_128_GCM = 0x0007
    AEAD_AES_256_GCM = 0x0008

    @property
    def rfc_name(self) -> str:
        """The registry name (RFC 5764 4.1.2, RFC 7714 14.2): ``SRTP_AES128_CM_HMAC_SHA1_80``."""
        return f"SRTP_{self.name}"

    @property
    def openssl_name(self) -> str:
        """The name OpenSSL's ``-use_srtp`` takes: ``SRTP_AES128_CM_SHA1_80``."""
        return f"SRTP_{self.name.replace('_HMAC_SHA1', '_SHA1')}"

    @property
    def key_length(self) -> int:
        """Master (and session) encryption key length in octets."""
        return 32 if self is Profile.AEAD_AES_256_GCM else 16

    @property
    def salt_length(self) -> int:
        """Master salt length in octets: 14 for AES-CM, 12 for GCM."""
        return 12 if self.is_aead else 14

    @property
    def is_aead(self) -> bool:
        """True for the AES-GCM profiles of RFC 7714."""
        return self in (Profile.AEAD_AES_128_GCM, Profile.AEAD_AES_256_GCM)

    @property
    def srtp_tag_length(self) -> int:
        """Authentication tag length appended to SRTP packets."""
        if self.is_aead:
            return 16
        return 4 if self is Profile.AES128_CM_HMAC_SHA1_32 else 10

    @property
    def srtcp_tag_length(self) -> int:
        """Tag length for SRTCP: 10 for both HMAC profiles (RFC 5764 4.1.2)."""
        return 16 if self.is_aead else 10

    @property
    def keying_material_length(self) -> int:
        """Octets to export for this profile: two keys and two salts (RFC 5764 4.2)."""
        return 2 * (self.key_length + self.salt_length)


#: Profiles offered by default, in order of preference (GCM first, then CM_80 which
#: every browser supports).
DEFAULT_PROFILES: tuple[Profile, ...] = (
    Profile.AEAD_AES_128_GCM,
    Profile.AEAD_AES_256_GCM,
    Profile.AES128_CM_HMAC_SHA1_80,
    Profile.AES128_CM_HMAC_SHA1_32,
)


def parse_profile(text: str) -> Profile:
    """A profile from any of its names, case-insensitively.

    Accepts the enum name this library prints (``AEAD_AES_128_GCM``), the RFC name
    (``SRTP_AES128_CM_HMAC_SHA1_80``) and OpenSSL's (``SRTP_AES128_CM_SHA1_80``), with or
    without the ``SRTP_`` prefix. Raises ConfigurationError naming the valid spellings.
    """
    key = text.strip().upper()
    for profile in Profile:
        if key in (profile.name, profile.rfc_name, profile.openssl_name, profile.openssl_name[5:]):
            return profile
    known = ", ".join(
        p.rfc_name if p.rfc_name == p.openssl_name else f"{p.rfc_name} ({p.openssl_name})"
        for p in Profile
    )
    raise ConfigurationError(f"unknown SRTP profile {text!r}; known: {known}")


def parse_profiles(text: str) -> list[Profile]:
    """A colon- or comma-separated preference list of profile names (see parse_profile)."""
    names = [name for name in text.replace(",", ":").split(":") if name.strip()]
    if not names:
        raise ConfigurationError("the SRTP profile list is empty")
    profiles = [parse_profile(name) for name in names]
    if len(set(profiles)) != len(profiles):
        raise ConfigurationError(f"an SRTP profile appears twice in {text!r}")
    return profiles
