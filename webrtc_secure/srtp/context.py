"""SrtpContext: protect and unprotect RTP and RTCP under one master key (RFC 3711,
RFC 7714).

Outbound and inbound per-SSRC state are kept apart, so one context can encrypt toward
a peer and decrypt what that peer encrypted with the same keys (libsrtp's "any
outbound" and "any inbound" streams). Inbound state changes only after a packet
authenticated: a forged or replayed packet leaves no trace (no ROC advance, no replay
slot, no new stream).

The per-packet methods are written for speed (they are the media path): the common
case (plain 12-octet header, next sequence number of a known stream) is decided with
one comparison against the sequence number the stream expects (the stream itself from
a slot that holds the last one the general path used, before the per-SSRC dicts), the
IV base with the ROC already in and the ROC octets are cached on the stream, the
per-key packet limits are paid in advance (see _Outbound), and everything else takes a
slower, fully general path. ``benchmarks/srtp.py`` measures them against libsrtp.
"""

from __future__ import annotations

import hmac
import logging
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import CipherContext
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC

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
# SRTCP indices paid for at a time from the per-key budget (see _Outbound): small
# next to 2^31, big enough that asking again is rare.
RTCP_LEASE = 1 << 10
_E_FLAG = 0x80000000
_ROC_ZERO = bytes(4)
# the first octet of an RTP packet with nothing beyond the fixed header and payload
# (V=2, no padding, extension or CSRC): its statistics need no parsing
_PLAIN_FIRST = 0x80

_seq_ssrc = struct.Struct("!H4xI").unpack_from
_first_seq_ssrc = struct.Struct("!BxH4xI").unpack_from
_first_ssrc = struct.Struct("!B3xI").unpack_from
_u32 = struct.Struct("!I")
_pack_u32 = _u32.pack
_unpack_u32 = _u32.unpack_from
_compare = hmac.compare_digest
_join = b"".join


class _RtpState:
    """SRTP progress on one SSRC, shaped for the in-order fast paths.

    ``next_seq`` is the sequence number the fast path takes next: the one after the
    highest index's, 65536 after 65535, so the packet that wraps goes the general way
    (it moves the ROC). ``iv_roc`` is the IV base with the ROC of the highest index
    already in, so the fast path XORs in only the sequence number, and ``roc_bytes`` is
    that ROC as it enters the HMAC. ``highest`` itself is derived.

    The stream also counts what it carried (RTP only, for the statistics: RFC 3550's
    packet and octet counts): ``packets``, ``octets`` (whole RTP packets, header and
    padding in) and ``extra`` (header octets beyond the fixed 12, and padding). They
    live here because every packet already touches the stream: counting them costs no
    lookup of its own.
    """

    __slots__ = (
        "extra",
        "iv_roc",
        "next_seq",
        "octets",
        "packets",
        "roc",
        "roc_bytes",
        "rtp_base",
        "window",
    )

    def __init__(self, rtp_base: int, window: int) -> None:
        self.rtp_base = rtp_base  # SSRC-dependent part of the RTP IV
        self.roc = 0
        self.next_seq = 0  # highest -1: nothing yet; seq 0 would be index 0
        self.iv_roc = rtp_base
        self.roc_bytes = _ROC_ZERO
        self.window = ReplayWindow(window)
        self.packets = self.octets = self.extra = 0

    @property
    def highest(self) -> int:
        """Highest packet index (ROC << 16 | SEQ), -1 before the first packet."""
        return (self.roc << 16) + self.next_seq - 1

    def advance(self, index: int, iv_shift: int) -> None:
        """Make ``index`` (above the current highest) the highest; ``iv_shift`` is how
        far the transform shifts the index into its IV."""
        roc = index >> 16
        if roc != self.roc:
            self.roc = roc
            self.roc_bytes = _pack_u32(roc)
            self.iv_roc = self.rtp_base ^ (roc << 16 << iv_shift)
        self.next_seq = (index & 0xFFFF) + 1


class _Outbound(_RtpState):
    """What we send on one SSRC.

    RFC 3711 9.2 caps the packets one master key protects (2^48 SRTP, 2^31 SRTCP),
    over all SSRCs. Rather than update a shared counter per packet, the context pays
    in advance: an SRTP stream in the context's ``_open`` map has the rest of its ROC
    (``65536 - next_seq`` packets) paid for, so the fast path takes only streams from
    that map, and an SRTCP stream has ``rtcp_limit_e - rtcp_e`` indices paid for.

    SRTCP is counted in E || index words (E = 1, as every packet we send carries it),
    with ``rtcp_base_e`` the IV base with that E bit XORed in, so the word goes into
    the packet and the IV as it is.
    """

    __slots__ = ("rtcp_base_e", "rtcp_e", "rtcp_limit_e")

    def __init__(self, rtp_base: int, rtcp_base_e: int, window: int) -> None:
        # an index protected twice would reuse keystream: the window refuses it, as
        # libsrtp does
        super().__init__(rtp_base, window)
        self.rtcp_base_e = rtcp_base_e
        self.rtcp_e = _E_FLAG  # E || the last SRTCP index sent; the first one is 1
        self.rtcp_limit_e = _E_FLAG  # E || the last SRTCP index paid for

    @property
    def rtcp_index(self) -> int:
        """The last SRTCP index sent (0 before the first packet)."""
        return self.rtcp_e - _E_FLAG

    @rtcp_index.setter
    def rtcp_index(self, index: int) -> None:
        self.rtcp_e = _E_FLAG + index


class _Inbound(_RtpState):
    """What we accepted from one remote SSRC (created only after authentication).

    SRTCP progress is kept as ``rtcp_next``, the E || index word the next in-order
    encrypted packet carries, so the fast path compares the received word as it is,
    without masking the E flag off; ``rtcp_base_e`` is the SRTCP IV base with that E
    bit XORed in, so the word also goes into the IV as it is.
    """

    __slots__ = ("first_index", "rtcp_base_e", "rtcp_next", "rtcp_window")

    def __init__(self, rtp_base: int, rtcp_base_e: int, window: int) -> None:
        super().__init__(rtp_base, window)
        self.rtcp_base_e = rtcp_base_e
        self.rtcp_next = _E_FLAG  # E = 1, index 0: nothing accepted yet
        self.rtcp_window = ReplayWindow(window)
        #: the SRTP index of the first RTP packet accepted (0 when the in-order path
        #: took it: a stream an SRTCP packet created expects index 0 first)
        self.first_index = 0

    @property
    def rtcp_highest(self) -> int:
        """Highest SRTCP index accepted, -1 before the first; the window may lag."""
        return self.rtcp_next - _E_FLAG - 1


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

    ``SrtpContext(...)`` returns an instance of one private subclass per transform
    (AES-CM + HMAC-SHA1 or AES-GCM), so each per-packet method is straight-line code:
    no "which profile" branch, no optional attributes, the keyed primitives one
    attribute load away.

    Not thread-safe: every call may change per-stream state, so use a context from one
    thread (or one event loop) at a time.
    """

    # slots: a packet loads these from an object that is cold whenever many
    # contexts take turns; in the object itself they share its cache lines
    __slots__ = (
        "_hot_in",
        "_hot_in_ssrc",
        "_hot_out",
        "_hot_out_ssrc",
        "_inbound",
        "_open",
        "_outbound",
        "_rtcp",
        "_rtcp_left",
        "_rtp",
        "_rtp_left",
        "_srtcp_tag",
        "_srtp_tag",
        "max_remote_streams",
        "profile",
        "replay_window",
    )

    profile: Profile
    replay_window: int
    max_remote_streams: int

    def __new__(cls, profile: Profile, *args: Any, **kwargs: Any) -> SrtpContext:
        if cls is SrtpContext:
            cls = _AesGcmContext if Profile(profile).is_aead else _AesCmContext
        return object.__new__(cls)

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
        self = cls.__new__(cls, profile)
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
        self._outbound: dict[int, _Outbound] = {}
        # the outbound streams whose rest of the ROC is paid for (see _Outbound)
        self._open: dict[int, _Outbound] = {}
        self._inbound: dict[int, _Inbound] = {}
        # the stream the RTP fast paths look at before the dicts (the last one the
        # general path opened, or committed a packet on), and its SSRC (-1: none): a
        # packet of it costs no dict lookup. The outbound one is always in _open (it
        # leaves the slot when it leaves _open); inbound streams never go
        self._hot_out_ssrc = self._hot_in_ssrc = -1
        self._hot_out: _Outbound | None = None
        self._hot_in: _Inbound | None = None
        # RFC 3711 9.2 limits per master key, over all SSRCs: what is neither sent nor
        # paid in advance by a stream (see _Outbound)
        self._rtp_left = MAX_SRTP_PACKETS
        self._rtcp_left = MAX_SRTCP_PACKETS
        self._setup_transforms(keys)

    def _setup_transforms(self, keys: SessionKeys) -> None:
        """Key the primitives (each subclass its own)."""
        raise NotImplementedError

    @property
    def remote_stream_count(self) -> int:
        """Remote SSRCs with state (each created by an authenticated packet)."""
        return len(self._inbound)

    @property
    def local_stream_count(self) -> int:
        """Local SSRCs we protected packets for."""
        return len(self._outbound)

    def highest_index(self, ssrc: int) -> int | None:
        """The highest SRTP packet index (ROC << 16 | SEQ) authenticated on the remote
        SSRC ``ssrc``, or None before its first RTP packet."""
        stream = self._inbound.get(ssrc)
        if stream is None:
            return None
        highest = stream.highest
        return highest if highest >= 0 else None

    def inbound_rtp_counts(self) -> dict[int, tuple[int, int, int, int]]:
        """Per remote SSRC that delivered RTP: (packets, octets, header and padding
        octets beyond the fixed 12, SRTP index of the first packet), counting only
        packets that authenticated."""
        return {
            ssrc: (s.packets, s.octets, s.extra, s.first_index)
            for ssrc, s in self._inbound.items()
            if s.packets
        }

    def outbound_rtp_counts(self) -> dict[int, tuple[int, int, int]]:
        """Per local SSRC that sent RTP: (packets, octets, header and padding octets
        beyond the fixed 12), as :meth:`protect` returned them."""
        return {
            ssrc: (s.packets, s.octets, s.extra) for ssrc, s in self._outbound.items() if s.packets
        }

    @property
    def packets_protected(self) -> int:
        """SRTP packets protected under this master key (limit 2^48)."""
        paid = sum(0x10000 - s.next_seq for s in self._open.values())
        return MAX_SRTP_PACKETS - self._rtp_left - paid

    @property
    def rtcp_packets_protected(self) -> int:
        """SRTCP packets protected under this master key (limit 2^31)."""
        paid = sum(max(0, s.rtcp_limit_e - s.rtcp_e) for s in self._outbound.values())
        return MAX_SRTCP_PACKETS - self._rtcp_left - paid

    # --- the per-packet API (implemented by the subclasses) ---------------------------

    def protect(self, rtp: bytes) -> bytes:
        """RTP -> SRTP; raises MalformedPacket, ReplayDetected (the index was already
        protected: that would reuse keystream) or KeyLifetimeExceeded."""
        raise NotImplementedError

    def unprotect(self, srtp: bytes) -> bytes:
        """SRTP -> RTP; raises MalformedPacket, AuthenticationFailed, ReplayDetected,
        StreamLimitExceeded or KeyLifetimeExceeded, and leaves no state behind when it
        does."""
        raise NotImplementedError

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """RTCP -> SRTCP (always encrypted, E = 1); raises MalformedPacket or
        KeyLifetimeExceeded once the stream's 31-bit index is used up."""
        raise NotImplementedError

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """SRTCP -> RTCP (E = 0 packets are authenticated only); same failures and the
        same no-trace guarantee as :meth:`unprotect`."""
        raise NotImplementedError

    # --- shared bookkeeping, off the in-order fast paths ------------------------------

    #: how far the SRTP index is shifted into the IV (16 for AES-CM, 0 for GCM)
    _rtp_iv_shift: int
    #: the SRTCP E flag as it enters the IV's XOR term (see _Inbound)
    _rtcp_e_in_iv: int

    #: the keyed RTP and RTCP transforms (set by the subclass's _setup_transforms)
    _rtp: AesCmHmac | AesGcm
    _rtcp: AesCmHmac | AesGcm

    def _iv_bases(self, ssrc: int) -> tuple[int, int]:
        """The SSRC-dependent parts of the RTP and RTCP IVs."""
        return self._rtp.iv_base(ssrc), self._rtcp.iv_base(ssrc)

    def _next_rtcp_send(self, rtcp: bytes) -> tuple[_Outbound, int]:
        """The outbound stream of an RTCP packet and its next E || index word (leased
        from the key's budget when the stream's lease is used up); checks the header."""
        try:
            first, ssrc = _first_ssrc(rtcp)
        except struct.error:
            raise MalformedPacket(f"RTCP packet of {len(rtcp)} octets is too short") from None
        if first >> 6 != 2:
            check_rtcp(rtcp)
        stream = self._outbound.get(ssrc)
        if stream is None:
            stream = self._new_outbound(ssrc)
        e_index = stream.rtcp_e + 1  # E || index; libsrtp and pion send index 1 first
        if e_index > stream.rtcp_limit_e:
            self._lease_rtcp(stream)
        stream.rtcp_e = e_index
        return stream, e_index

    def _new_outbound(self, ssrc: int) -> _Outbound:
        rtp_base, rtcp_base = self._iv_bases(ssrc)
        stream = _Outbound(rtp_base, rtcp_base ^ self._rtcp_e_in_iv, self.replay_window)
        self._outbound[ssrc] = stream
        return stream

    def _outbound_index(self, ssrc: int, seq: int) -> tuple[int, int]:
        """The IV (as an integer) and index of an outbound packet the fast path did not
        take; commits it.

        The packet is charged to the key's budget, after giving back what the stream
        had paid in advance; then the rest of the (new) ROC is paid for again, when the
        budget allows, so the stream's next in-order packets take the fast path.
        """
        stream = self._outbound.get(ssrc)
        if stream is None:
            stream = self._new_outbound(ssrc)
        highest = stream.highest
        index = estimate_index(highest, seq)
        if index < 0:
            raise ReplayDetected(f"SRTP seq {seq} lies before this stream's first packet")
        if index >> 16 > MAX_ROC:
            raise KeyLifetimeExceeded("SRTP rollover counter exhausted for this master key")
        _catch_up(stream.window, highest)
        if not stream.window.is_fresh(index):
            raise ReplayDetected(f"SRTP index {index} already protected or too old")
        if self._open.pop(ssrc, None) is not None:
            self._rtp_left += 0x10000 - stream.next_seq
            if ssrc == self._hot_out_ssrc:
                self._hot_out_ssrc, self._hot_out = -1, None
        if not self._rtp_left:
            self._reclaim_leases()
            if not self._rtp_left:
                raise KeyLifetimeExceeded("SRTP master key protected its maximum packet count")
        self._rtp_left -= 1
        stream.window.commit(index)
        if index > highest:
            stream.advance(index, self._rtp_iv_shift)
        rest = 0x10000 - stream.next_seq
        if rest <= self._rtp_left:
            self._rtp_left -= rest
            self._open[ssrc] = stream
            self._hot_out_ssrc, self._hot_out = ssrc, stream
        return stream.rtp_base ^ (index << self._rtp_iv_shift), index

    def _lease_rtcp(self, stream: _Outbound) -> None:
        """Pay ``stream``'s next SRTCP indices in advance from the key's budget, or
        raise KeyLifetimeExceeded (the 31-bit index never wraps)."""
        room = MAX_SRTCP_INDEX - stream.rtcp_index
        if room > 0 and not self._rtcp_left:
            self._reclaim_leases()
        grant = min(room, self._rtcp_left, RTCP_LEASE)
        if grant <= 0:
            raise KeyLifetimeExceeded("SRTCP master key protected its maximum packet count")
        self._rtcp_left -= grant
        stream.rtcp_limit_e = stream.rtcp_e + grant

    def _reclaim_leases(self) -> None:
        """Give what every stream paid in advance back to the key's budget (it ran
        out)."""
        for s in self._open.values():
            self._rtp_left += 0x10000 - s.next_seq
        self._open.clear()
        self._hot_out_ssrc, self._hot_out = -1, None
        for s in self._outbound.values():
            self._rtcp_left += max(0, s.rtcp_limit_e - s.rtcp_e)
            s.rtcp_limit_e = s.rtcp_e

    def _check_stream_limit(self) -> None:
        """Refuse a packet that would create a remote stream beyond the bound."""
        if len(self._inbound) >= self.max_remote_streams:
            raise StreamLimitExceeded(
                f"context already tracks {self.max_remote_streams} remote SSRCs"
            )

    def _new_inbound(self, ssrc: int) -> _Inbound:
        rtp_base, rtcp_base = self._iv_bases(ssrc)
        stream = _Inbound(rtp_base, rtcp_base ^ self._rtcp_e_in_iv, self.replay_window)
        self._inbound[ssrc] = stream
        logger.debug("new remote SRTP stream ssrc=%#010x (%d tracked)", ssrc, len(self._inbound))
        return stream

    def _inbound_index(self, stream: _Inbound | None, ssrc: int, seq: int) -> tuple[int, int]:
        """The IV (as an integer) and index of an inbound packet the fast path did not
        take; checks only (raises ReplayDetected, KeyLifetimeExceeded or
        StreamLimitExceeded)."""
        if stream is None:
            self._check_stream_limit()
            index = seq  # a stream's first packet has ROC 0
            base = self._iv_bases(ssrc)[0]
        else:
            index = estimate_index(stream.highest, seq)
            if index < 0:
                raise ReplayDetected(f"SRTP seq {seq} lies before this stream's first packet")
            if index >> 16 > MAX_ROC:
                raise KeyLifetimeExceeded("SRTP rollover counter exhausted for this master key")
            _catch_up(stream.window, stream.highest)
            if not stream.window.is_fresh(index):
                raise ReplayDetected(f"SRTP index {index} replayed or too old")
            base = stream.rtp_base
        return base ^ (index << self._rtp_iv_shift), index

    def _commit_rtp(self, stream: _Inbound | None, ssrc: int, index: int) -> _Inbound:
        """Record an authenticated SRTP packet that was not simply the next one; the
        stream (created for it when new)."""
        if stream is None:
            stream = self._new_inbound(ssrc)
        if not stream.packets:
            stream.first_index = index
        self._hot_in_ssrc, self._hot_in = ssrc, stream
        stream.window.commit(index)
        if index > stream.highest:
            stream.advance(index, self._rtp_iv_shift)
        return stream

    def _rtcp_base_checked(self, stream: _Inbound | None, ssrc: int, e_index: int) -> int:
        """The E-adjusted SRTCP IV base for a packet the fast path did not take, once
        the replay or stream-limit check passed (it raises otherwise)."""
        if stream is None:
            self._check_stream_limit()
            return self._iv_bases(ssrc)[1] ^ self._rtcp_e_in_iv
        _catch_up(stream.rtcp_window, stream.rtcp_highest)
        index = e_index & MAX_SRTCP_INDEX
        if not stream.rtcp_window.is_fresh(index):
            raise ReplayDetected(f"SRTCP index {index} replayed or too old")
        return stream.rtcp_base_e

    def _commit_rtcp(self, stream: _Inbound | None, ssrc: int, index: int) -> None:
        """Record an authenticated SRTCP packet that was not simply the next one."""
        if stream is None:
            stream = self._new_inbound(ssrc)
        stream.rtcp_window.commit(index)
        if index > stream.rtcp_highest:
            stream.rtcp_next = _E_FLAG + index + 1


class _AesCmContext(SrtpContext):
    """AES128_CM_HMAC_SHA1_80 / _32: AES-CM encryption, truncated HMAC-SHA1."""

    __slots__ = ("_rtcp_ctr", "_rtcp_mac", "_rtp_ctr", "_rtp_mac")

    _rtp_iv_shift = 16  # the index enters the IV shifted by 16 (RFC 3711 4.1.1)
    _rtcp_e_in_iv = _E_FLAG << 16

    def _setup_transforms(self, keys: SessionKeys) -> None:
        self._rtp = AesCmHmac(keys.rtp_key, keys.rtp_salt, keys.rtp_auth_key, self._srtp_tag)
        # SRTCP is keyed on first use (transforms module notes): None until then
        self._rtcp = AesCmHmac(
            keys.rtcp_key, keys.rtcp_salt, keys.rtcp_auth_key, self._srtcp_tag, lazy=True
        )
        # the primitives themselves, one attribute load away on the hot path
        self._rtp_ctr = self._rtp.ctr
        self._rtp_mac = self._rtp.mac
        self._rtcp_ctr: CipherContext | None = None  # both once keyed (_key_rtcp)
        self._rtcp_mac: HMAC | None = None

    def _key_rtcp(self) -> tuple[CipherContext, HMAC]:
        """The first SRTCP packet either way: key the SRTCP primitives."""
        rtcp = self._rtcp.keyed()
        assert isinstance(rtcp, AesCmHmac)
        self._rtcp_ctr = rtcp.ctr
        self._rtcp_mac = rtcp.mac
        return rtcp.ctr, rtcp.mac

    def protect(self, rtp: bytes) -> bytes:
        try:
            first, seq, ssrc = _first_seq_ssrc(rtp)
        except struct.error:
            raise MalformedPacket(f"RTP packet of {len(rtp)} octets is too short") from None
        # version 2 without CSRCs or extension: the 12-octet header needs no more parsing
        header_length = RTP_FIXED_HEADER if first & 0xDF == 0x80 else rtp_header_length(rtp)
        stream = self._hot_out if ssrc == self._hot_out_ssrc else self._open.get(ssrc)
        if stream is not None and seq == stream.next_seq:  # next in order, paid for
            stream.next_seq = seq + 1
            iv = stream.iv_roc ^ (seq << 16)
            roc_bytes = stream.roc_bytes
        else:
            iv, index = self._outbound_index(ssrc, seq)
            roc_bytes = _pack_u32(index >> 16)
            stream = self._outbound[ssrc]
        ctr = self._rtp_ctr
        ctr.reset_nonce(iv.to_bytes(16, "big"))
        header = rtp[:header_length]
        payload = ctr.update(rtp[header_length:])
        mac = self._rtp_mac.copy()
        # one join and one update: fewer calls than "header + payload" and an update more
        mac.update(_join((header, payload, roc_bytes)))
        stream.packets += 1
        stream.octets += len(rtp)
        if first != _PLAIN_FIRST:
            stream.extra += _extra_octets(rtp, header_length)
        return _join((header, payload, mac.finalize()[: self._srtp_tag]))

    def unprotect(self, srtp: bytes) -> bytes:
        tag_length = self._srtp_tag
        end = len(srtp) - tag_length
        if end >= RTP_FIXED_HEADER and srtp[0] & 0xDF == 0x80:
            header_length = RTP_FIXED_HEADER
        else:
            header_length = rtp_header_length(srtp)
            if end < header_length:
                raise MalformedPacket("SRTP packet shorter than header and tag")
        seq, ssrc = _seq_ssrc(srtp, 2)
        stream = self._hot_in if ssrc == self._hot_in_ssrc else self._inbound.get(ssrc)
        if stream is not None and seq == stream.next_seq:  # next in order: fresh
            iv = stream.iv_roc ^ (seq << 16)
            roc_bytes = stream.roc_bytes
            in_order = True
        else:
            iv, index = self._inbound_index(stream, ssrc, seq)
            roc_bytes = _pack_u32(index >> 16)
            in_order = False
        header = srtp[:header_length]
        payload = srtp[header_length:end]
        mac = self._rtp_mac.copy()
        mac.update(_join((header, payload, roc_bytes)))
        if not _compare(mac.finalize()[:tag_length], srtp[end:]):
            raise AuthenticationFailed("SRTP authentication tag does not verify")
        ctr = self._rtp_ctr
        ctr.reset_nonce(iv.to_bytes(16, "big"))
        rtp = header + ctr.update(payload)
        # authenticated: now, and only now, the stream state may change
        if in_order:
            stream.next_seq = seq + 1  # type: ignore[union-attr]
        else:
            stream = self._commit_rtp(stream, ssrc, index)
        stream.packets += 1  # type: ignore[union-attr]
        stream.octets += len(rtp)  # type: ignore[union-attr]
        if rtp[0] != _PLAIN_FIRST:
            stream.extra += _extra_octets(rtp, header_length)  # type: ignore[union-attr]
        return rtp

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        stream, e_index = self._next_rtcp_send(rtcp)
        ctr, mac = self._rtcp_ctr, self._rtcp_mac
        if ctr is None or mac is None:
            ctr, mac = self._key_rtcp()
        ctr.reset_nonce((stream.rtcp_base_e ^ (e_index << 16)).to_bytes(16, "big"))
        e_index_bytes = _pack_u32(e_index)
        body = _join((rtcp[:RTCP_HEADER], ctr.update(rtcp[RTCP_HEADER:]), e_index_bytes))
        mac = mac.copy()
        mac.update(body)
        return body + mac.finalize()[: self._srtcp_tag]

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        tag_length = self._srtcp_tag
        end = len(srtcp) - tag_length  # header | ciphertext | E+index | tag
        e_index_at = end - 4
        if e_index_at < RTCP_HEADER:
            check_rtcp(srtcp)
            raise MalformedPacket("SRTCP packet shorter than header, index and tag")
        first, ssrc = _first_ssrc(srtcp)
        if first >> 6 != 2:
            check_rtcp(srtcp)
        (e_index,) = _unpack_u32(srtcp, e_index_at)
        stream = self._inbound.get(ssrc)
        if stream is not None and e_index == stream.rtcp_next:
            # encrypted and the next index: fresh by definition
            iv = stream.rtcp_base_e ^ (e_index << 16)
            in_order = True
        else:
            base_e = self._rtcp_base_checked(stream, ssrc, e_index)
            iv = base_e ^ ((e_index | _E_FLAG) << 16)
            in_order = False
        ctr, mac = self._rtcp_ctr, self._rtcp_mac
        if ctr is None or mac is None:
            ctr, mac = self._key_rtcp()
        mac = mac.copy()
        mac.update(srtcp[:end])
        if not _compare(mac.finalize()[:tag_length], srtcp[end:]):
            raise AuthenticationFailed("SRTCP authentication tag does not verify")
        if in_order or e_index & _E_FLAG:
            ctr.reset_nonce(iv.to_bytes(16, "big"))
            rtcp = srtcp[:RTCP_HEADER] + ctr.update(srtcp[RTCP_HEADER:e_index_at])
        else:
            rtcp = srtcp[:e_index_at]
        if in_order:
            stream.rtcp_next = e_index + 1  # type: ignore[union-attr]
            return rtcp
        self._commit_rtcp(stream, ssrc, e_index & MAX_SRTCP_INDEX)
        return rtcp


class _AesGcmContext(SrtpContext):
    """AEAD_AES_128_GCM / AEAD_AES_256_GCM (RFC 7714)."""

    __slots__ = ("_rtcp_aead", "_rtp_aead")

    _rtp_iv_shift = 0
    _rtcp_e_in_iv = _E_FLAG

    def _setup_transforms(self, keys: SessionKeys) -> None:
        self._rtp = AesGcm(keys.rtp_key, keys.rtp_salt)
        # SRTCP is keyed on first use (transforms module notes): None until then
        self._rtcp = AesGcm(keys.rtcp_key, keys.rtcp_salt, lazy=True)
        self._rtp_aead = self._rtp.aead
        self._rtcp_aead: AESGCM | None = None

    def _key_rtcp(self) -> AESGCM:
        """The first SRTCP packet either way: key the SRTCP AEAD."""
        rtcp = self._rtcp.keyed()
        assert isinstance(rtcp, AesGcm)
        aead = self._rtcp_aead = rtcp.aead
        return aead

    def protect(self, rtp: bytes) -> bytes:
        try:
            first, seq, ssrc = _first_seq_ssrc(rtp)
        except struct.error:
            raise MalformedPacket(f"RTP packet of {len(rtp)} octets is too short") from None
        header_length = RTP_FIXED_HEADER if first & 0xDF == 0x80 else rtp_header_length(rtp)
        stream = self._hot_out if ssrc == self._hot_out_ssrc else self._open.get(ssrc)
        if stream is not None and seq == stream.next_seq:  # next in order, paid for
            stream.next_seq = seq + 1
            iv = stream.iv_roc ^ seq
        else:
            iv = self._outbound_index(ssrc, seq)[0]
            stream = self._outbound[ssrc]
        header = rtp[:header_length]
        srtp = header + self._rtp_aead.encrypt(iv.to_bytes(12, "big"), rtp[header_length:], header)
        stream.packets += 1
        stream.octets += len(rtp)
        if first != _PLAIN_FIRST:
            stream.extra += _extra_octets(rtp, header_length)
        return srtp

    def unprotect(self, srtp: bytes) -> bytes:
        n = len(srtp)
        if n >= RTP_FIXED_HEADER + 16 and srtp[0] & 0xDF == 0x80:
            header_length = RTP_FIXED_HEADER
        else:
            header_length = rtp_header_length(srtp)
            if n < header_length + 16:
                raise MalformedPacket("SRTP packet shorter than header and tag")
        seq, ssrc = _seq_ssrc(srtp, 2)
        header = srtp[:header_length]
        stream = self._hot_in if ssrc == self._hot_in_ssrc else self._inbound.get(ssrc)
        if stream is not None and seq == stream.next_seq:  # next in order: fresh
            try:
                rtp = header + self._rtp_aead.decrypt(
                    (stream.iv_roc ^ seq).to_bytes(12, "big"), srtp[header_length:], header
                )
            except InvalidTag:
                raise AuthenticationFailed("SRTP AEAD tag does not verify") from None
            # authenticated: now, and only now, the stream state may change
            stream.next_seq = seq + 1
        else:
            iv, index = self._inbound_index(stream, ssrc, seq)
            try:
                rtp = header + self._rtp_aead.decrypt(
                    iv.to_bytes(12, "big"), srtp[header_length:], header
                )
            except InvalidTag:
                raise AuthenticationFailed("SRTP AEAD tag does not verify") from None
            stream = self._commit_rtp(stream, ssrc, index)
        stream.packets += 1
        stream.octets += n - 16
        if srtp[0] != _PLAIN_FIRST:
            stream.extra += _extra_octets(rtp, header_length)
        return rtp

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        stream, e_index = self._next_rtcp_send(rtcp)
        e_index_bytes = _pack_u32(e_index)
        header = rtcp[:RTCP_HEADER]
        iv = (stream.rtcp_base_e ^ e_index).to_bytes(12, "big")
        aead = self._rtcp_aead
        if aead is None:
            aead = self._key_rtcp()
        sealed = aead.encrypt(iv, rtcp[RTCP_HEADER:], header + e_index_bytes)
        return _join((header, sealed, e_index_bytes))

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        e_index_at = len(srtcp) - 4  # header | ciphertext+tag | E+index
        if e_index_at < RTCP_HEADER + 16:
            check_rtcp(srtcp)
            raise MalformedPacket("SRTCP packet shorter than header, index and tag")
        first, ssrc = _first_ssrc(srtcp)
        if first >> 6 != 2:
            check_rtcp(srtcp)
        (e_index,) = _unpack_u32(srtcp, e_index_at)  # cheaper than int.from_bytes
        e_index_bytes = srtcp[e_index_at:]
        stream = self._inbound.get(ssrc)
        if stream is not None and e_index == stream.rtcp_next:
            # encrypted and the next index: fresh by definition
            iv = (stream.rtcp_base_e ^ e_index).to_bytes(12, "big")
            in_order = True
        else:
            base_e = self._rtcp_base_checked(stream, ssrc, e_index)
            iv = (base_e ^ (e_index | _E_FLAG)).to_bytes(12, "big")
            in_order = False
        aead = self._rtcp_aead
        if aead is None:
            aead = self._key_rtcp()
        try:
            if in_order or e_index & _E_FLAG:
                header = srtcp[:RTCP_HEADER]
                rtcp = header + aead.decrypt(
                    iv, srtcp[RTCP_HEADER:e_index_at], header + e_index_bytes
                )
            else:
                # RFC 7714 9.2: unencrypted SRTCP is all AAD, the plaintext empty
                rtcp = srtcp[: e_index_at - 16]
                aead.decrypt(iv, srtcp[e_index_at - 16 : e_index_at], rtcp + e_index_bytes)
        except InvalidTag:
            raise AuthenticationFailed("SRTCP AEAD tag does not verify") from None
        if in_order:
            stream.rtcp_next = e_index + 1  # type: ignore[union-attr]
            return rtcp
        self._commit_rtcp(stream, ssrc, e_index & MAX_SRTCP_INDEX)
        return rtcp


def _extra_octets(rtp: bytes, header_length: int) -> int:
    """Octets of an RTP packet beyond its fixed 12-octet header and its payload: CSRCs,
    header extension and padding (a padding count larger than what follows the header
    is clamped, as the payload then counts as empty)."""
    extra = header_length - RTP_FIXED_HEADER
    if rtp[0] & 0x20 and len(rtp) > header_length:
        extra += min(rtp[-1], len(rtp) - header_length)
    return extra


def _catch_up(window: ReplayWindow, highest: int) -> None:
    """Bring a lazily kept window up to ``highest``.

    The in-order fast paths only move the stream's highest (saving a method call per
    packet), which is sound because they accept exactly ``highest + 1``: every index
    between the window's own highest and the stream's was accepted, in order.
    Out-of-order packets, the only ones that need the bitmap, mark them first.
    """
    index = max(window.highest + 1, highest - window.size + 1)
    while index <= highest:
        window.commit(index)
        index += 1
