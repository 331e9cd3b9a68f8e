"""SrtpContext: protect and unprotect RTP and RTCP under one master key (RFC 3711,
RFC 7714).

Outbound and inbound per-SSRC state are kept apart, so one context can encrypt toward
a peer and decrypt what that peer encrypted with the same keys (libsrtp's "any
outbound" and "any inbound" streams). Inbound state changes only after a packet
authenticated: a forged or replayed packet leaves no trace (no ROC advance, no replay
slot, no new stream).

The per-packet methods are written for speed (they are the media path): the common
case (plain 12-octet header, next sequence number of a known stream) is decided with a
few integer operations, per-SSRC IV parts and the ROC octets are cached on the stream,
and everything else takes a slower, fully general path.
"""

from __future__ import annotations

import hmac
import logging
import struct
from typing import Any

from cryptography.exceptions import InvalidTag

from webrtc_secure.errors import (
    AuthenticationFailed,
    KeyLifetimeExceeded,
    MalformedPacket,
    ReplayDetected,
    StreamLimitExceeded,
)
from webrtc_secure.replay import DEFAULT_WINDOW, ReplayWindow
from webrtc_secure.srtp.kdf import SessionKeys, derive_session_keys
from webrtc_secure.srtp.profiles import Profile
from webrtc_secure.srtp.rtp import RTCP_HEADER, RTP_FIXED_HEADER, check_rtcp, rtp_header_length
from webrtc_secure.srtp.transforms import AesCmHmac, AesGcm

logger = logging.getLogger(__name__)

MAX_SRTP_PACKETS = 1 << 48
MAX_SRTCP_INDEX = (1 << 31) - 1
MAX_SRTCP_PACKETS = 1 << 31
MAX_ROC = (1 << 32) - 1
DEFAULT_MAX_REMOTE_STREAMS = 1024
_E_FLAG = 0x80000000
_ROC_ZERO = bytes(4)

_seq_ssrc = struct.Struct("!H4xI").unpack_from
_first_seq_ssrc = struct.Struct("!BxH4xI").unpack_from
_first_ssrc = struct.Struct("!B3xI").unpack_from
_u32 = struct.Struct("!I")
_pack_u32 = _u32.pack
_unpack_u32 = _u32.unpack_from
_compare = hmac.compare_digest
_join = b"".join


class _Outbound:
    """What we send on one SSRC."""

    __slots__ = ("highest", "roc_bytes", "rtcp_base", "rtcp_index", "rtp_base", "window")

    def __init__(self, rtp_base: int, rtcp_base: int, window: int) -> None:
        self.highest = -1  # highest packet index sent (ROC << 16 | SEQ)
        self.roc_bytes = _ROC_ZERO  # ROC of ``highest``, as it enters the HMAC
        self.rtp_base = rtp_base  # SSRC-dependent part of the RTP IV
        self.rtcp_base = rtcp_base
        self.rtcp_index = 0  # last SRTCP index sent; the first one is 1
        # an index protected twice would reuse keystream: refused like libsrtp does
        self.window = ReplayWindow(window)


class _Inbound:
    """What we accepted from one remote SSRC (created only after authentication)."""

    __slots__ = (
        "highest",
        "roc_bytes",
        "rtcp_base",
        "rtcp_highest",
        "rtcp_window",
        "rtp_base",
        "window",
    )

    def __init__(self, rtp_base: int, rtcp_base: int, window: int) -> None:
        self.highest = -1
        self.roc_bytes = _ROC_ZERO
        self.rtp_base = rtp_base
        self.rtcp_base = rtcp_base
        self.window = ReplayWindow(window)
        self.rtcp_highest = -1  # highest SRTCP index accepted; the window may lag behind
        self.rtcp_window = ReplayWindow(window)


def estimate_index(highest: int, seq: int) -> int:
    """RFC 3711 Appendix A: the packet index of ``seq`` given the highest index seen.

    The first packet of a stream (``highest`` -1) gets ROC 0, whatever its sequence
    number. The result is negative when the packet would predate ROC 0.
    """
    if highest < 0:
        return seq
    roc, s_l = highest >> 16, highest & 0xFFFF
    if s_l < 0x8000:
        v = roc - 1 if seq - s_l > 0x8000 else roc
    else:
        v = roc + 1 if s_l - 0x8000 > seq else roc
    return (v << 16) | seq


class SrtpContext:
    """SRTP/SRTCP protection for all SSRCs under one master key and salt.

    ``replay_window`` is the replay window size in packets (SRTP and SRTCP each);
    ``max_remote_streams`` bounds how many remote SSRCs the context tracks, so a flood
    of packets with random SSRCs cannot grow memory. Local SSRCs are not bounded: the
    application chooses them.

    Not thread-safe: every call may change per-stream state, so use a context from one
    thread (or one event loop) at a time.
    """

    def __init__(
        self,
        profile: Profile,
        master_key: bytes,
        master_salt: bytes,
        *,
        replay_window: int = DEFAULT_WINDOW,
        max_remote_streams: int = DEFAULT_MAX_REMOTE_STREAMS,
    ) -> None:
        profile = Profile(profile)
        keys = derive_session_keys(profile, master_key, master_salt)
        self._setup(profile, keys, replay_window, max_remote_streams)

    @classmethod
    def from_session_keys(cls, profile: Profile, keys: SessionKeys, **options: Any) -> SrtpContext:
        """A context from already-derived session keys (RFC 7714's examples start there)."""
        self = cls.__new__(cls)
        self._setup(
            Profile(profile),
            keys,
            options.pop("replay_window", DEFAULT_WINDOW),
            options.pop("max_remote_streams", DEFAULT_MAX_REMOTE_STREAMS),
        )
        if options:
            raise TypeError(f"unexpected options {sorted(options)}")
        return self

    def _setup(
        self, profile: Profile, keys: SessionKeys, replay_window: int, max_remote_streams: int
    ) -> None:
        if replay_window < 1:
            raise ValueError("replay_window must be at least 1")
        if max_remote_streams < 1:
            raise ValueError("max_remote_streams must be at least 1")
        self.profile = profile
        self.replay_window = replay_window
        self.max_remote_streams = max_remote_streams
        # plain attributes: enum properties cost a call per packet
        self._srtp_tag = profile.srtp_tag_length
        self._srtcp_tag = profile.srtcp_tag_length
        self._rtp_cm: AesCmHmac | None = None
        self._rtcp_cm: AesCmHmac | None = None
        self._rtp_gcm: AesGcm | None = None
        self._rtcp_gcm: AesGcm | None = None
        self._rtp: AesCmHmac | AesGcm
        self._rtcp: AesCmHmac | AesGcm
        if profile.is_aead:
            self._rtp = self._rtp_gcm = AesGcm(keys.rtp_key, keys.rtp_salt)
            self._rtcp = self._rtcp_gcm = AesGcm(keys.rtcp_key, keys.rtcp_salt)
        else:
            self._rtp = self._rtp_cm = AesCmHmac(
                keys.rtp_key, keys.rtp_salt, keys.rtp_auth_key, self._srtp_tag
            )
            self._rtcp = self._rtcp_cm = AesCmHmac(
                keys.rtcp_key, keys.rtcp_salt, keys.rtcp_auth_key, self._srtcp_tag
            )
        self._outbound: dict[int, _Outbound] = {}
        self._inbound: dict[int, _Inbound] = {}
        # RFC 3711 9.2 limits per master key, counted over all SSRCs
        self._rtp_packets = 0
        self._rtcp_packets = 0

    @property
    def remote_stream_count(self) -> int:
        """Remote SSRCs with state (each created by an authenticated packet)."""
        return len(self._inbound)

    @property
    def local_stream_count(self) -> int:
        """Local SSRCs we protected packets for."""
        return len(self._outbound)

    @property
    def packets_protected(self) -> int:
        """SRTP packets protected under this master key (limit 2^48)."""
        return self._rtp_packets

    @property
    def rtcp_packets_protected(self) -> int:
        """SRTCP packets protected under this master key (limit 2^31)."""
        return self._rtcp_packets

    # --- RTP ------------------------------------------------------------------------

    def protect(self, rtp: bytes) -> bytes:
        """RTP -> SRTP; raises MalformedPacket, ReplayDetected (the index was already
        protected: that would reuse keystream) or KeyLifetimeExceeded."""
        try:
            first, seq, ssrc = _first_seq_ssrc(rtp)
        except struct.error:
            raise MalformedPacket(f"RTP packet of {len(rtp)} octets is too short") from None
        # version 2 without CSRCs or extension: the 12-octet header needs no more parsing
        header_length = RTP_FIXED_HEADER if first & 0xDF == 0x80 else rtp_header_length(rtp)
        stream = self._outbound.get(ssrc)
        if stream is None:
            stream = self._new_outbound(ssrc)
        if self._rtp_packets >= MAX_SRTP_PACKETS:
            raise KeyLifetimeExceeded("SRTP master key protected its maximum packet count")
        highest = stream.highest
        if seq and seq == (highest + 1) & 0xFFFF:  # next in order, no wrap
            index = stream.highest = highest + 1
            roc_bytes = stream.roc_bytes
        else:
            index = self._outbound_index(stream, seq)
            roc_bytes = _pack_u32(index >> 16)
        self._rtp_packets += 1
        cm = self._rtp_cm
        if cm is not None:
            ctr = cm.ctr
            ctr.reset_nonce((stream.rtp_base ^ (index << 16)).to_bytes(16, "big"))
            body = rtp[:header_length] + ctr.update(rtp[header_length:])
            inner = cm.inner.copy()
            inner.update(body)
            inner.update(roc_bytes)
            outer = cm.outer.copy()
            outer.update(inner.digest())
            return body + outer.digest()[: self._srtp_tag]
        gcm = self._rtp_gcm
        assert gcm is not None
        header = rtp[:header_length]
        iv = (stream.rtp_base ^ index).to_bytes(12, "big")
        return header + gcm.aead.encrypt(iv, rtp[header_length:], header)

    def _outbound_index(self, stream: _Outbound, seq: int) -> int:
        """Index of an outbound packet that is not simply the next one; commits it."""
        index = estimate_index(stream.highest, seq)
        if index < 0:
            raise ReplayDetected(f"SRTP seq {seq} lies before this stream's first packet")
        if index >> 16 > MAX_ROC:
            raise KeyLifetimeExceeded("SRTP rollover counter exhausted for this master key")
        _catch_up(stream.window, stream.highest)
        if not stream.window.is_fresh(index):
            raise ReplayDetected(f"SRTP index {index} already protected or too old")
        stream.window.commit(index)
        if index > stream.highest:
            stream.highest = index
            stream.roc_bytes = _pack_u32(index >> 16)
        return index

    def _new_outbound(self, ssrc: int) -> _Outbound:
        stream = _Outbound(self._rtp.iv_base(ssrc), self._rtcp.iv_base(ssrc), self.replay_window)
        self._outbound[ssrc] = stream
        return stream

    def unprotect(self, srtp: bytes) -> bytes:
        """SRTP -> RTP; raises MalformedPacket, AuthenticationFailed, ReplayDetected,
        StreamLimitExceeded or KeyLifetimeExceeded, and leaves no state behind when it
        does."""
        tag_length = self._srtp_tag
        n = len(srtp)
        if n >= RTP_FIXED_HEADER + tag_length and srtp[0] & 0xDF == 0x80:
            header_length = RTP_FIXED_HEADER
        else:
            header_length = rtp_header_length(srtp)
            if n < header_length + tag_length:
                raise MalformedPacket("SRTP packet shorter than header and tag")
        seq, ssrc = _seq_ssrc(srtp, 2)
        stream = self._inbound.get(ssrc)
        in_order = False
        if stream is not None:
            highest = stream.highest
            if seq and seq == (highest + 1) & 0xFFFF:  # next in order: fresh by definition
                index = highest + 1
                roc_bytes = stream.roc_bytes
                in_order = True
            else:
                index = _inbound_index(stream.window, highest, seq)
                roc_bytes = _pack_u32(index >> 16)
            base = stream.rtp_base
        else:
            if len(self._inbound) >= self.max_remote_streams:
                raise StreamLimitExceeded(
                    f"context already tracks {self.max_remote_streams} remote SSRCs"
                )
            index = seq  # a stream's first packet has ROC 0
            roc_bytes = _ROC_ZERO
            base = self._rtp.iv_base(ssrc)
        cm = self._rtp_cm
        if cm is not None:
            body = srtp[: n - tag_length]
            inner = cm.inner.copy()
            inner.update(body)
            inner.update(roc_bytes)
            outer = cm.outer.copy()
            outer.update(inner.digest())
            if not _compare(outer.digest()[:tag_length], srtp[n - tag_length :]):
                raise AuthenticationFailed("SRTP authentication tag does not verify")
            ctr = cm.ctr
            ctr.reset_nonce((base ^ (index << 16)).to_bytes(16, "big"))
            rtp = body[:header_length] + ctr.update(body[header_length:])
        else:
            gcm = self._rtp_gcm
            assert gcm is not None
            header = srtp[:header_length]
            try:
                rtp = header + gcm.aead.decrypt(
                    (base ^ index).to_bytes(12, "big"), srtp[header_length:], header
                )
            except InvalidTag:
                raise AuthenticationFailed("SRTP AEAD tag does not verify") from None
        # authenticated: now, and only now, the stream state may change
        if in_order:
            stream.highest = index  # type: ignore[union-attr]
            return rtp
        if stream is None:
            stream = self._new_inbound(ssrc)
        stream.window.commit(index)
        if index > stream.highest:
            stream.highest = index
            stream.roc_bytes = roc_bytes
        return rtp

    def _new_inbound(self, ssrc: int) -> _Inbound:
        stream = _Inbound(self._rtp.iv_base(ssrc), self._rtcp.iv_base(ssrc), self.replay_window)
        self._inbound[ssrc] = stream
        logger.debug("new remote SRTP stream ssrc=%#010x (%d tracked)", ssrc, len(self._inbound))
        return stream

    # --- RTCP -----------------------------------------------------------------------

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """RTCP -> SRTCP (always encrypted, E = 1); raises MalformedPacket or
        KeyLifetimeExceeded once the stream's 31-bit index is used up."""
        try:
            first, ssrc = _first_ssrc(rtcp)
        except struct.error:
            raise MalformedPacket(f"RTCP packet of {len(rtcp)} octets is too short") from None
        if first >> 6 != 2:
            check_rtcp(rtcp)
        stream = self._outbound.get(ssrc)
        if stream is None:
            stream = self._new_outbound(ssrc)
        index = stream.rtcp_index + 1  # libsrtp and pion send index 1 first
        if index > MAX_SRTCP_INDEX or self._rtcp_packets >= MAX_SRTCP_PACKETS:
            raise KeyLifetimeExceeded("SRTCP master key protected its maximum packet count")
        stream.rtcp_index = index
        self._rtcp_packets += 1
        e_index = _pack_u32(_E_FLAG | index)
        gcm = self._rtcp_gcm
        if gcm is not None:
            header = rtcp[:RTCP_HEADER]
            iv = (stream.rtcp_base ^ index).to_bytes(12, "big")
            sealed = gcm.aead.encrypt(iv, rtcp[RTCP_HEADER:], header + e_index)
            return _join((header, sealed, e_index))
        cm = self._rtcp_cm
        assert cm is not None
        ctr = cm.ctr
        ctr.reset_nonce((stream.rtcp_base ^ (index << 16)).to_bytes(16, "big"))
        body = _join((rtcp[:RTCP_HEADER], ctr.update(rtcp[RTCP_HEADER:]), e_index))
        inner = cm.inner.copy()
        inner.update(body)
        outer = cm.outer.copy()
        outer.update(inner.digest())
        return body + outer.digest()[: self._srtcp_tag]

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """SRTCP -> RTCP (E = 0 packets are authenticated only); same failures and the
        same no-trace guarantee as :meth:`unprotect`."""
        tag_length = self._srtcp_tag
        n = len(srtcp)
        if n < RTCP_HEADER + 4 + tag_length:
            check_rtcp(srtcp)
            raise MalformedPacket("SRTCP packet shorter than header, index and tag")
        first, ssrc = _first_ssrc(srtcp)
        if first >> 6 != 2:
            check_rtcp(srtcp)
        stream = self._inbound.get(ssrc)
        if stream is not None:
            base = stream.rtcp_base
        else:
            if len(self._inbound) >= self.max_remote_streams:
                raise StreamLimitExceeded(
                    f"context already tracks {self.max_remote_streams} remote SSRCs"
                )
            base = self._rtcp.iv_base(ssrc)
        cm = self._rtcp_cm
        # AES-CM: header | ciphertext | E+index | tag; GCM: header | ciphertext+tag | E+index
        e_index_at = n - 4 - tag_length if cm is not None else n - 4
        (e_index,) = _unpack_u32(srtcp, e_index_at)
        index = e_index & MAX_SRTCP_INDEX
        in_order = False
        if stream is not None:
            if index == stream.rtcp_highest + 1:
                in_order = True
            else:
                _catch_up(stream.rtcp_window, stream.rtcp_highest)
                if not stream.rtcp_window.is_fresh(index):
                    raise ReplayDetected(f"SRTCP index {index} replayed or too old")
        if cm is not None:
            body = srtcp[: n - tag_length]
            inner = cm.inner.copy()
            inner.update(body)
            outer = cm.outer.copy()
            outer.update(inner.digest())
            if not _compare(outer.digest()[:tag_length], srtcp[n - tag_length :]):
                raise AuthenticationFailed("SRTCP authentication tag does not verify")
            if e_index & _E_FLAG:
                ctr = cm.ctr
                ctr.reset_nonce((base ^ (index << 16)).to_bytes(16, "big"))
                rtcp = srtcp[:RTCP_HEADER] + ctr.update(srtcp[RTCP_HEADER:e_index_at])
            else:
                rtcp = srtcp[:e_index_at]
        else:
            gcm = self._rtcp_gcm
            assert gcm is not None
            iv = (base ^ index).to_bytes(12, "big")
            e_index_bytes = srtcp[e_index_at:]
            try:
                if e_index & _E_FLAG:
                    header = srtcp[:RTCP_HEADER]
                    rtcp = header + gcm.aead.decrypt(
                        iv, srtcp[RTCP_HEADER:e_index_at], header + e_index_bytes
                    )
                else:
                    # RFC 7714 9.2: unencrypted SRTCP is all AAD, the plaintext empty
                    rtcp = srtcp[: e_index_at - 16]
                    gcm.aead.decrypt(iv, srtcp[e_index_at - 16 : e_index_at], rtcp + e_index_bytes)
            except InvalidTag:
                raise AuthenticationFailed("SRTCP AEAD tag does not verify") from None
        if in_order:
            stream.rtcp_highest = index  # type: ignore[union-attr]
            return rtcp
        if stream is None:
            stream = self._new_inbound(ssrc)
        stream.rtcp_window.commit(index)
        if index > stream.rtcp_highest:
            stream.rtcp_highest = index
        return rtcp


def _inbound_index(window: ReplayWindow, highest: int, seq: int) -> int:
    """Index of an inbound packet that is not simply the next one; checks only."""
    index = estimate_index(highest, seq)
    if index < 0:
        raise ReplayDetected(f"SRTP seq {seq} lies before this stream's first packet")
    if index >> 16 > MAX_ROC:
        raise KeyLifetimeExceeded("SRTP rollover counter exhausted for this master key")
    _catch_up(window, highest)
    if not window.is_fresh(index):
        raise ReplayDetected(f"SRTP index {index} replayed or too old")
    return index


def _catch_up(window: ReplayWindow, highest: int) -> None:
    """Bring a lazily kept window up to ``highest``.

    The in-order fast paths only move the stream's ``highest`` (saving a method call
    per packet), which is sound because they accept exactly ``highest + 1``: every
    index between the window's own highest and the stream's was accepted, in order.
    Out-of-order packets, the only ones that need the bitmap, mark them first.
    """
    index = max(window.highest + 1, highest - window.size + 1)
    while index <= highest:
        window.commit(index)
        index += 1
