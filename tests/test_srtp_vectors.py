"""SRTP/SRTCP known answers: RFC 3711 B.2/B.3, RFC 6188, RFC 7714 16-17, and whole
packets from libsrtp's and pion's test suites (tests/vectors)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.conftest import load_vector
from webrtc_secure.errors import ReplayDetected
from webrtc_secure.srtp import Profile, SrtpContext
from webrtc_secure.srtp.kdf import SessionKeys, derive, derive_session_keys
from webrtc_secure.srtp.transforms import AesCmHmac, AesGcm


def test_rfc3711_b2_keystream() -> None:
    v = load_vector("rfc3711_b2_aes_cm_keystream.json")
    key = bytes.fromhex(v["session_key"])
    salt = bytes.fromhex(v["session_salt_14"])
    cm = AesCmHmac(key, salt, b"", 10)
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    for block in v["blocks"]:
        assert ecb.update(bytes.fromhex(block["counter"])).hex() == block["keystream"]
    # SSRC, ROC and SEQ zero: the IV is the shifted salt, the "offset" of B.2
    iv = cm.iv(ssrc=0, index=0)
    assert iv.hex() == v["offset_iv"]
    # the whole segment from that one IV, so blocks 0xFEFF..0xFF01 are checked too
    stream = cm.xor_keystream(iv, bytes(v["keystream_segment_length_octets"]))
    for block in v["blocks"]:
        at = 16 * block["block_index"]
        assert stream[at : at + 16].hex() == block["keystream"]


def test_rfc3711_b3_key_derivation() -> None:
    v = load_vector("rfc3711_b3_key_derivation.json")["rfc3711_b3"]
    key, salt = bytes.fromhex(v["master_key"]), bytes.fromhex(v["master_salt"])
    assert derive(key, salt, 0, 16).hex() == v["cipher_key"]
    assert derive(key, salt, 2, 14).hex() == v["cipher_salt"]
    assert derive(key, salt, 1, 94).hex() == v["auth_key_94_octets"]
    srtcp = v["not_in_rfc_derived_srtcp_keys"]
    keys = derive_session_keys(Profile.AES128_CM_HMAC_SHA1_80, key, salt)
    assert keys.rtcp_key.hex() == srtcp["srtcp_cipher_key_label_03"]
    assert keys.rtcp_auth_key.hex() == srtcp["srtcp_auth_key_label_04_20"]
    assert keys.rtcp_salt.hex() == srtcp["srtcp_salt_label_05"]


def test_rfc6188_aes256_prf() -> None:
    v = load_vector("rfc3711_b3_key_derivation.json")["rfc6188_7_2_aes256_prf"]
    key, salt = bytes.fromhex(v["master_key"]), bytes.fromhex(v["master_salt"])
    assert derive(key, salt, 0, 32).hex() == v["cipher_key"]
    assert derive(key, salt, 2, 14).hex() == v["cipher_salt"]
    assert derive(key, salt, 1, 20).hex() == v["auth_key_20"]


def test_gcm_twelve_octet_master_salt_is_padded() -> None:
    entry = load_vector("rfc3711_b3_key_derivation.json")["gcm_12_octet_master_salt_not_in_rfc"]
    v = entry[0] if isinstance(entry, list) else entry
    keys = derive_session_keys(
        Profile.AEAD_AES_128_GCM, bytes.fromhex(v["master_key"]), bytes.fromhex(v["master_salt"])
    )
    d = v["derived"]
    assert keys.rtp_key.hex() == d["srtp_encryption_key"]
    assert keys.rtp_salt.hex() == d["srtp_salt"]
    assert keys.rtcp_key.hex() == d["srtcp_encryption_key"]
    assert keys.rtcp_salt.hex() == d["srtcp_salt"]


@pytest.mark.parametrize("index", [0, 1])
def test_rfc7714_gcm_examples(index: int) -> None:
    v = load_vector("rfc7714_aes_gcm.json")["vectors"][index]
    profile = Profile.AEAD_AES_128_GCM if index == 0 else Profile.AEAD_AES_256_GCM
    key, salt = bytes.fromhex(v["session_encryption_key"]), bytes.fromhex(v["session_salt"])
    gcm = AesGcm(key, salt)
    rtp = v["rtp"]
    ssrc, roc, seq = int(rtp["ssrc"], 16), rtp["roc"], int(rtp["seq"], 16)
    assert gcm.iv(ssrc, (roc << 16) | seq).hex() == rtp["iv"]
    plain = bytes.fromhex(rtp["plaintext_packet"])
    assert gcm.seal(bytes.fromhex(rtp["iv"]), b"", plain).hex() == rtp["tag_only_tag"]
    # the whole context, given the RFC's session keys, protects and unprotects
    keys = SessionKeys(key, salt, b"", key, salt, b"")
    sender = SrtpContext.from_session_keys(profile, keys)
    receiver = SrtpContext.from_session_keys(profile, keys)
    assert sender.protect(plain).hex() == rtp["protected_packet"]
    assert receiver.unprotect(bytes.fromhex(rtp["protected_packet"])) == plain

    rtcp = v["rtcp"]
    rtcp_ssrc, rtcp_index = int(rtcp["ssrc"], 16), int(rtcp["srtcp_index"], 16)
    assert gcm.iv(rtcp_ssrc, rtcp_index).hex() == rtcp["iv"]
    rtcp_plain = bytes.fromhex(rtcp["plaintext_packet"])
    sender.protect_rtcp(rtcp_plain)  # creates the stream at index 1
    sender._outbound[rtcp_ssrc].rtcp_index = rtcp_index - 1
    assert sender.protect_rtcp(rtcp_plain).hex() == rtcp["protected_packet_e1"]
    # our receiver opens both the E=1 and the E=0 (tag only) forms
    for packet in (rtcp["protected_packet_e1"], rtcp["protected_packet_e0_tag_only"]):
        fresh = SrtpContext.from_session_keys(profile, keys)
        assert fresh.unprotect_rtcp(bytes.fromhex(packet)) == rtcp_plain
        with pytest.raises(ReplayDetected):
            fresh.unprotect_rtcp(bytes.fromhex(packet))
    with pytest.raises(TypeError):
        SrtpContext.from_session_keys(profile, keys, window=3)


def _vectors() -> list[Any]:
    return list(load_vector("srtp_packet_vectors.json")["vectors"])


@pytest.mark.parametrize("v", _vectors(), ids=lambda v: f"{v['source'][:12]}-{v['profile']}")
def test_whole_packets_from_libsrtp_and_pion(v: Any) -> None:
    profile = Profile(int(v["dtls_srtp_profile_id"], 16))
    key, salt = bytes.fromhex(v["master_key"]), bytes.fromhex(v["master_salt"])
    sender, receiver = SrtpContext(profile, key, salt), SrtpContext(profile, key, salt)
    keys = derive_session_keys(profile, key, salt)
    expected = v["session_keys"]
    assert keys.rtp_key.hex() == expected["srtp_encryption_key"]
    assert keys.rtp_salt.hex() == expected["srtp_salt"]
    assert keys.rtcp_key.hex() == expected["srtcp_encryption_key"]
    assert keys.rtcp_salt.hex() == expected["srtcp_salt"]
    assert keys.rtp_auth_key.hex() == expected.get("srtp_auth_key", "")
    assert keys.rtcp_auth_key.hex() == expected.get("srtcp_auth_key", "")
    for kind, protect, unprotect in (
        ("rtp", sender.protect, receiver.unprotect),
        ("rtcp", sender.protect_rtcp, receiver.unprotect_rtcp),
    ):
        if kind not in v:
            continue
        plain, protected = bytes.fromhex(v[kind]["plaintext"]), bytes.fromhex(v[kind]["protected"])
        assert protect(plain) == protected
        assert unprotect(protected) == plain
