"""SrtpContext: protect and unprotect RTP and RTCP under one master key (RFC 3711,
RFC 7714).

Outbound and inbound per-SSRC state are kept apart, so one context can encrypt toward
a peer and decrypt what that peer encrypted with the same keys (libsrtp's "any
outbound" and "any inbound" streams). Inbound state changes only after a packet
authenticated: a forged or replayed packet leaves no trace.
"""

from __future__ import annotations

import hmac
import struct

from webrtc_secure.errors import (
    AuthenticationFailed,
    KeyLifetimeExceeded,
    MalformedPacket,
    ReplayDetected,
    StreamLimitExceeded,
)
from webrtc_secure.replay import DEFAULT_WINDOW, ReplayWindow
from webrtc_secure.srtp.kdf import derive_session_keys
from webrtc_secure.srtp.profiles import Profile
from webrtc_secure.srtp.rtp import RTCP_HEADER, check_rtcp, rtp_header_length
from webrtc_secure.srtp.transforms import AesCmHmac, AesGcm

MAX_SRTP_PACKETS = 1 << 48
MAX_SRTCP_INDEX = (1 << 31) - 1
MAX_ROC = (1 << 32) - 1
DEFAULT_MAX_REMOTE_STREAMS = 1024
_E_FLAG = 0x80000000


class _Outbound:
    __slots__ = ("highest", "rtcp_index")

    def __init__(self) -> None:
        self.highest = -1  # highest packet index sent (ROC << 16 | SEQ)
        self.rtcp_index = 0


class _Inbound:
    __slots__ = ("highest", "rtcp_window", "window")

    def __init__(self, window: int) -> None:
        self.highest = -1
        self.window = ReplayWindow(window)
        self.rtcp_window = ReplayWindow(window)


def estimate_index(highest: int, seq: int) -> int:
    """RFC 3711 Appendix A: the packet index of ``seq`` given the highest index seen.

    The first packet of a stream gets ROC 0, whatever its sequence number.
    """
    if highest < 0:
        return seq
    roc, s_l = highest >> 16, highest & 0xFFFF
    if s_l < 0x8000:
        v = roc - 1 if seq - s_l > 0x8000 else roc
    else:
        v = roc + 1 if s_l - 0x8000 > seq else roc
    return (v << 16) | seq  # negative when the packet predates the stream's first ROC


class SrtpContext:
    """SRTP/SRTCP protection for all SSRCs under one master key and salt."""

    def __init__(
        self,
        profile: Profile,
        master_key: bytes,
        master_salt: bytes,
        *,
        replay_window: int = DEFAULT_WINDOW,
        max_remote_streams: int = DEFAULT_MAX_REMOTE_STREAMS,
    ) -> None:
        self.profile = Profile(profile)
        # plain attributes: enum properties cost a call per packet
        self._srtp_tag = self.profile.srtp_tag_length
        self._srtcp_tag = self.profile.srtcp_tag_length
        keys = derive_session_keys(self.profile, master_key, master_salt)
        self._aead = self.profile.is_aead
        self._rtp_cm: AesCmHmac | None = None
        self._rtcp_cm: AesCmHmac | None = None
        self._rtp_gcm: AesGcm | None = None
        self._rtcp_gcm: AesGcm | None = None
        if self._aead:
            self._rtp_gcm = AesGcm(keys.rtp_key, keys.rtp_salt)
            self._rtcp_gcm = AesGcm(keys.rtcp_key, keys.rtcp_salt)
        else:
            self._rtp_cm = AesCmHmac(
                keys.rtp_key, keys.rtp_salt, keys.rtp_auth_key, self.profile.srtp_tag_length
            )
            self._rtcp_cm = AesCmHmac(
                keys.rtcp_key, keys.rtcp_salt, keys.rtcp_auth_key, self.profile.srtcp_tag_length
            )
        self.replay_window = replay_window
        self.max_remote_streams = max_remote_streams
        self._outbound: dict[int, _Outbound] = {}
        self._inbound: dict[int, _Inbound] = {}
        self._rtp_packets = 0  # protected under this master key (RFC 3711 9.2)

    # --- RTP ------------------------------------------------------------------------------

    def protect(self, rtp: bytes) -> bytes:
        """RTP -> SRTP."""
        header_length = rtp_header_length(rtp)
        seq, ssrc = struct.unpack_from("!H4xI", rtp, 2)
        stream = self._outbound.get(ssrc)
        if stream is None:
            stream = self._outbound[ssrc] = _Outbound()
        index = estimate_index(stream.highest, seq)
        if index < 0:
            index = seq  # a sender that goes backwards past its start keeps ROC 0
        if index >> 16 > MAX_ROC or self._rtp_packets >= MAX_SRTP_PACKETS:
            raise KeyLifetimeExceeded("SRTP master key protected its maximum packet count")
        self._rtp_packets += 1
        if index > stream.highest:
            stream.highest = index
        header = rtp[:header_length]
        gcm = self._rtp_gcm
        if gcm is not None:
            iv = (gcm.salt_int ^ (ssrc << 48) ^ index).to_bytes(12, "big")
            return header + gcm.seal(iv, memoryview(rtp)[header_length:], header)
        cm = self._rtp_cm
        assert cm is not None
        body = header + cm.xor_keystream(
            cm.salt_int ^ (ssrc << 64) ^ (index << 16), memoryview(rtp)[header_length:]
        )
        return body + cm.tag(body, (index >> 16).to_bytes(4, "big"))

    def unprotect(self, srtp: bytes) -> bytes:
        """SRTP -> RTP; raises MalformedPacket, AuthenticationFailed, ReplayDetected or
        StreamLimitExceeded, and leaves no state behind when it does."""
        header_length = rtp_header_length(srtp)
        tag_length = self._srtp_tag
        if len(srtp) < header_length + tag_length:
            raise MalformedPacket("SRTP packet shorter than header and tag")
        seq, ssrc = struct.unpack_from("!H4xI", srtp, 2)
        stream = self._inbound.get(ssrc)
        if stream is None and len(self._inbound) >= self.max_remote_streams:
            raise StreamLimitExceeded(
                f"context already tracks {self.max_remote_streams} remote SSRCs"
            )
        highest = stream.highest if stream is not None else -1
        index = estimate_index(highest, seq)
        if index < 0 or (stream is not None and not stream.window.is_fresh(index)):
            raise ReplayDetected(f"SRTP packet index {index} replayed or too old")
        header = srtp[:header_length]
        gcm = self._rtp_gcm
        if gcm is not None:
            # RFC 7714 8.1: 00 00 || SSRC || ROC || SEQ, XOR the 96-bit session salt
            iv = (gcm.salt_int ^ (ssrc << 48) ^ index).to_bytes(12, "big")
            payload = gcm.open(iv, memoryview(srtp)[header_length:], header)
        else:
            cm = self._rtp_cm
            assert cm is not None
            body, tag = srtp[:-tag_length], srtp[-tag_length:]
            if not hmac.compare_digest(cm.tag(body, (index >> 16).to_bytes(4, "big")), tag):
                raise AuthenticationFailed("SRTP authentication tag does not verify")
            payload = cm.xor_keystream(
                cm.salt_int ^ (ssrc << 64) ^ (index << 16), body[header_length:]
            )
        # authenticated: now, and only now, the stream state may change
        if stream is None:
            stream = self._inbound[ssrc] = _Inbound(self.replay_window)
        stream.window.commit(index)
        if index > stream.highest:
            stream.highest = index
        return header + payload

    @staticmethod
    def _gcm_rtp_iv(salt: int, ssrc: int, index: int) -> bytes:
        # RFC 7714 8.1: 00 00 || SSRC || ROC || SEQ, XOR the 96-bit session salt
        return (salt ^ (ssrc << 48) ^ index).to_bytes(12, "big")

    # --- RTCP -----------------------------------------------------------------------------

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """RTCP -> SRTCP (always encrypted, E = 1)."""
        check_rtcp(rtcp)
        ssrc = int.from_bytes(rtcp[4:8], "big")
        stream = self._outbound.get(ssrc)
        if stream is None:
            stream = self._outbound[ssrc] = _Outbound()
        if stream.rtcp_index >= MAX_SRTCP_INDEX:
            raise KeyLifetimeExceeded("SRTCP index space exhausted for this master key")
        stream.rtcp_index += 1  # libsrtp and pion send index 1 first
        index = stream.rtcp_index
        e_index = (_E_FLAG | index).to_bytes(4, "big")
        header, payload = rtcp[:RTCP_HEADER], rtcp[RTCP_HEADER:]
        if self._rtcp_gcm is not None:
            iv = self._gcm_rtcp_iv(self._rtcp_gcm.salt_int, ssrc, index)
            return header + self._rtcp_gcm.seal(iv, payload, header + e_index) + e_index
        cm = self._rtcp_cm
        assert cm is not None
        body = header + cm.xor_keystream(cm.salt_int ^ (ssrc << 64) ^ (index << 16), payload)
        body += e_index
        return body + cm.tag(body)

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """SRTCP -> RTCP (E = 0 packets are authenticated only)."""
        check_rtcp(srtcp)
        tag_length = self._srtcp_tag
        if len(srtcp) < RTCP_HEADER + 4 + tag_length:
            raise MalformedPacket("SRTCP packet shorter than header, index and tag")
        ssrc = int.from_bytes(srtcp[4:8], "big")
        stream = self._inbound.get(ssrc)
        if stream is None and len(self._inbound) >= self.max_remote_streams:
            raise StreamLimitExceeded(
                f"context already tracks {self.max_remote_streams} remote SSRCs"
            )
        header = srtcp[:RTCP_HEADER]
        if self._rtcp_gcm is not None:
            e_index_bytes = srtcp[-4:]
            sealed = srtcp[RTCP_HEADER:-4]
        else:
            e_index_bytes = srtcp[-4 - tag_length : -tag_length]
            sealed = srtcp[RTCP_HEADER : -4 - tag_length]
        e_index = int.from_bytes(e_index_bytes, "big")
        encrypted, index = bool(e_index & _E_FLAG), e_index & MAX_SRTCP_INDEX
        if stream is not None and not stream.rtcp_window.is_fresh(index):
            raise ReplayDetected(f"SRTCP index {index} replayed or too old")
        if self._rtcp_gcm is not None:
            iv = self._gcm_rtcp_iv(self._rtcp_gcm.salt_int, ssrc, index)
            if encrypted:
                payload = self._rtcp_gcm.open(iv, sealed, header + e_index_bytes)
            else:
                # RFC 7714 9.2: unencrypted SRTCP authenticates the whole packet as AAD
                payload, tag = sealed[:-16], sealed[-16:]
                self._rtcp_gcm.open(iv, tag, header + payload + e_index_bytes)
        else:
            cm = self._rtcp_cm
            assert cm is not None
            if not hmac.compare_digest(cm.tag(srtcp[:-tag_length]), srtcp[-tag_length:]):
                raise AuthenticationFailed("SRTCP authentication tag does not verify")
            payload = (
                cm.xor_keystream(cm.salt_int ^ (ssrc << 64) ^ (index << 16), sealed)
                if encrypted
                else sealed
            )
        if stream is None:
            stream = self._inbound[ssrc] = _Inbound(self.replay_window)
        stream.rtcp_window.commit(index)
        return header + payload

    @staticmethod
    def _gcm_rtcp_iv(salt: int, ssrc: int, index: int) -> bytes:
        # RFC 7714 9.1: 00 00 || SSRC || 00 00 || 0 || index(31), XOR the session salt
        return (salt ^ (ssrc << 48) ^ index).to_bytes(12, "big")

    @property
    def remote_stream_count(self) -> int:
        return len(self._inbound)
