"""SRTP key derivation (RFC 3711 4.3, key derivation rate 0; RFC 6188 for AES-256;
RFC 7714 for the GCM profiles' 12-octet salts)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from webrtc_secure.srtp.profiles import Profile

LABEL_RTP_ENCRYPTION = 0x00
LABEL_RTP_AUTH = 0x01
LABEL_RTP_SALT = 0x02
LABEL_RTCP_ENCRYPTION = 0x03
LABEL_RTCP_AUTH = 0x04
LABEL_RTCP_SALT = 0x05

AUTH_KEY_LENGTH = 20  # HMAC-SHA1 key for the AES-CM profiles
_KDF_SALT_LENGTH = 14


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """One session key: AES-CM keystream under the master key at x = (label << 48) XOR salt.

    The AES-CM PRF takes a 112-bit salt; the GCM profiles' 96-bit master salt is padded
    with two zero octets on the right (RFC 7714 11).
    """
    salt = master_salt.ljust(_KDF_SALT_LENGTH, b"\x00")
    x = int.from_bytes(salt, "big") ^ (label << 48)
    iv = (x << 16).to_bytes(16, "big")
    encryptor = Cipher(algorithms.AES(master_key), modes.CTR(iv)).encryptor()
    return encryptor.update(bytes(length)) + encryptor.finalize()


@dataclass(frozen=True)
class SessionKeys:
    """Session keys of one direction (RTP and RTCP) for one master key."""

    rtp_key: bytes
    rtp_salt: bytes
    rtp_auth_key: bytes
    rtcp_key: bytes
    rtcp_salt: bytes
    rtcp_auth_key: bytes


def derive_session_keys(profile: Profile, master_key: bytes, master_salt: bytes) -> SessionKeys:
    """All six session keys (auth keys empty for the AEAD profiles)."""
    if len(master_key) != profile.key_length:
        raise ValueError(f"{profile.name} needs a {profile.key_length}-octet master key")
    if len(master_salt) != profile.salt_length:
        raise ValueError(f"{profile.name} needs a {profile.salt_length}-octet master salt")
    k, s = profile.key_length, profile.salt_length
    auth = 0 if profile.is_aead else AUTH_KEY_LENGTH
    return SessionKeys(
        rtp_key=derive(master_key, master_salt, LABEL_RTP_ENCRYPTION, k),
        rtp_salt=derive(master_key, master_salt, LABEL_RTP_SALT, s),
        rtp_auth_key=derive(master_key, master_salt, LABEL_RTP_AUTH, auth) if auth else b"",
        rtcp_key=derive(master_key, master_salt, LABEL_RTCP_ENCRYPTION, k),
        rtcp_salt=derive(master_key, master_salt, LABEL_RTCP_SALT, s),
        rtcp_auth_key=derive(master_key, master_salt, LABEL_RTCP_AUTH, auth) if auth else b"",
    )
