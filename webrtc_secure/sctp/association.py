"""The SCTP association: a sans-I/O engine (RFC 9260 as profiled by RFC 8261/8831).

One association over one DTLS connection: no multihoming, no IP addresses, ports from
SDP. The face is the one every engine of the project has: ``receive_datagram(data,
now)`` takes one SCTP packet (one DTLS application-data record), ``datagrams_to_send
(now)`` hands out SCTP packets of at most ``max_packet_size`` octets, ``get_timer`` /
``handle_timer`` drive retransmission, and ``next_event`` reports what happened.

What it does:

* handshake INIT / INIT-ACK / COOKIE-ECHO / COOKIE-ACK with a stateless HMAC cookie
  (cookie.py); both ends may call ``connect`` (simultaneous INIT, RFC 9260 5.2.1);
* DATA or I-DATA (RFC 8260, when both ends offer it) with SACK (gap blocks and
  duplicates), delayed SACK (every second packet or ``delayed_ack``), bundling of
  control and data chunks up to ``max_packet_size``;
* retransmission: T1-init/cookie, T2-shutdown, T3-rtx with the RFC 6298 RTO, fast
  retransmit, cwnd per RFC 9260 7.2, Max.Burst per SACK (6.1 D), the peer's receive
  window;
* HEARTBEAT / HEARTBEAT-ACK (RTT samples), ABORT, ERROR, SHUTDOWN sequence;
* PR-SCTP (RFC 3758): FORWARD-TSN / I-FORWARD-TSN, abandonment by retransmission
  count or lifetime;
* stream reset (RFC 6525) both ways, as RFC 8831 closes data channels;
* zero checksum (RFC 9653, error detection method 1 = DTLS), per direction: we send
  checksum zero when both ends offered it, and accept it from the peer once our INIT
  or INIT-ACK offered it (RFC 9653 5.3), whether or not the peer offered it too;
* SNAP (draft-hancke-tsvwg-snap): ``snap_init`` / ``start_snap`` skip the handshake
  when both INIT chunks travelled in SDP (``a=sctp-init``).

``send`` raises MessageTooLarge, SendBufferFull, InvalidAssociationState (closing,
closed, stream outside the negotiated count, RE-CONFIG not negotiated) and its
subclass StreamResetPending; ``AssociationClosed.error`` is None (SHUTDOWN),
AssociationAborted (ABORT either way) or AssociationTimeout (retransmission limits).

Not implemented (each ends as a counted drop or a refusal, never a hang): peer restart
(RFC 9260 5.2.4 A; one association lives and dies with its DTLS connection), the peer
asking us to reset our outgoing streams or to add streams (answered "denied"; a data
channel closes by resetting its own outgoing stream), reporting unrecognized INIT
parameters back, path MTU discovery (the packet size is fixed), and an event for a
stream reset the peer refuses (logged and counted as ``reconfig_refused``; the streams
become usable again).

Every hostile or malformed input ends as a counted drop in ``stats.dropped`` (by
reason) or as a typed error in an :class:`AssociationClosed` event; nothing raises out
of ``receive_datagram`` / ``handle_timer``.

Defaults, and why:

* ``max_packet_size`` 1163: the DTLS engine's datagrams are at most 1200 octets
  (its ``mtu``), and an AES-GCM record costs 13 (header) + 8 (explicit nonce) + 16
  (tag) = 37 of them, the largest overhead of our suites (ChaCha20-Poly1305: 29).
  dcSCTP's default of 1191 is the same budget counted from a 1280-octet IPv6 path
  (-40 IPv6, -8 UDP, -37 DTLS, -4 TURN channel); our 1200 is already the UDP payload.
* ``receive_window`` 1 MiB, as aiortc (``_advertised_rwnd``) and pion
  (``initialRecvBufSize``) advertise; it bounds one association at rwnd / RTT.
* ``rto_initial`` 1 s (RFC 6298 2.1 and RFC 9260's RTO.Initial; aiortc uses 3 s);
  ``rto_min`` 0.4 s rather than RFC 9260's 1 s: a data channel is interactive, and a
  1 s floor makes every tail loss cost a second (WebRTC stacks use lower floors too);
  ``rto_max`` 60 s. Association.Max.Retrans 10 and Max.Init.Retransmits 8 (RFC 9260
  15, also aiortc's values).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import struct
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import (
    AssociationAborted,
    AssociationTimeout,
    ChecksumMismatch,
    InvalidAssociationState,
    MalformedSctpPacket,
    MessageTooLarge,
    SctpError,
    SendBufferFull,
    StreamResetPending,
)
from .chunks import (
    DATA_CHUNK_HEADER,
    DATA_HEADER_SIZE,
    FLAG_BEGINNING,
    FLAG_ENDING,
    FLAG_IMMEDIATE,
    FLAG_UNORDERED,
    IDATA_CHUNK_HEADER,
    IDATA_HEADER_SIZE,
    PADDING,
    AbortChunk,
    Chunk,
    ChunkType,
    CookieAckChunk,
    CookieEchoChunk,
    DataChunk,
    ErrorChunk,
    ForwardTsnChunk,
    HeartbeatAckChunk,
    HeartbeatChunk,
    IDataChunk,
    IForwardTsnChunk,
    InitAckChunk,
    InitChunk,
    ReconfigChunk,
    SackChunk,
    ShutdownAckChunk,
    ShutdownChunk,
    ShutdownCompleteChunk,
    UnknownChunk,
    encode_data_chunk,
    parse_chunk,
)
from .cookie import (
    FLAG_FORWARD_TSN,
    FLAG_INTERLEAVING,
    FLAG_RECONFIG,
    FLAG_ZERO_CHECKSUM,
    CookieState,
    open_cookie,
    seal_cookie,
)
from .events import (
    AssociationClosed,
    AssociationEstablished,
    BufferedAmountLow,
    Event,
    IncomingStreamsReset,
    MessageReceived,
    OutgoingStreamsReset,
)
from .packet import COMMON_HEADER_SIZE, packet_crc, parse_packet, serialize_chunks
from .parameters import (
    ErrorDetectionMethod,
    ForwardTsnSupportedParameter,
    IncomingSsnResetRequest,
    InitParameter,
    InvalidStreamIdentifierCause,
    OutgoingSsnResetRequest,
    ReconfigParameter,
    ReconfigResponse,
    ReconfigResult,
    StaleCookieCause,
    StateCookieParameter,
    SupportedExtensionsParameter,
    UnrecognizedChunkTypeCause,
    UserInitiatedAbortCause,
    ZeroChecksumAcceptableParameter,
)
from .receive_queue import ReceiveQueue, Verdict
from .rto import RtoEstimator
from .send_queue import Outbox, OutgoingMessage, RetransmitQueue, SentChunk, _OutStream
from .serial import add32, le32
from .small_path import receive_small, send_small

if TYPE_CHECKING:
    from ..trace import Trace

logger = logging.getLogger(__name__)

DTLS_RECORD_OVERHEAD = 13 + 8 + 16  # header + explicit nonce + AES-GCM tag
DEFAULT_MAX_PACKET_SIZE = 1200 - DTLS_RECORD_OVERHEAD  # 1163
MIN_PACKET_SIZE = 256
MAX_PENDING_REPLIES = 64  # stateless INIT-ACKs and OOTB answers waiting to be sent
MAX_STREAM_RESET_IDS = 2048
MAX_PENDING_CONTROL = 256


def _check_chunks(data: bytes, end: int) -> tuple[list[tuple[int, int, int, int]], bool] | None:
    """The fast receive path's pass over a packet of several chunks: each one checked
    as ``parse_chunks`` and the handlers would (only DATA, I-DATA and SACK, lengths
    that hold their fields). Returns (type, flags, start, stop) per chunk and whether
    DATA or I-DATA is among them, or None: the general path takes the packet."""
    chunks: list[tuple[int, int, int, int]] = []
    has_data = False
    pos = COMMON_HEADER_SIZE
    unpack_header = _CHUNK_HEADER.unpack_from
    while pos < end:
        if end - pos < 4:
            return None
        type_, flags, length = unpack_header(data, pos)
        stop = pos + length
        if stop > end:
            return None
        if type_ == _I_DATA:
            if length < IDATA_HEADER_SIZE:
                return None
            has_data = True
        elif type_ == _DATA:
            if length < DATA_HEADER_SIZE:
                return None
            has_data = True
        elif type_ == _SACK:
            if length < 16:
                return None
            counts = _SACK_COUNTS.unpack_from(data, pos + 12)
            if length != 16 + 4 * (counts[0] + counts[1]):
                return None
        else:
            return None
        chunks.append((type_, flags, pos, stop))
        pos = stop + ((-length) & 3)
    return chunks, has_data


class AssociationState(enum.Enum):
    """RFC 9260 4 states (CLOSED covers both "not yet" and "no more")."""

    CLOSED = "closed"
    COOKIE_WAIT = "cookie-wait"
    COOKIE_ECHOED = "cookie-echoed"
    ESTABLISHED = "established"
    SHUTDOWN_PENDING = "shutdown-pending"
    SHUTDOWN_SENT = "shutdown-sent"
    SHUTDOWN_RECEIVED = "shutdown-received"
    SHUTDOWN_ACK_SENT = "shutdown-ack-sent"


# A new fragment is cut to fill what is left of a packet only when that is at least
# this many octets of user data (or everything queued fits).
MIN_FILL = 256
_ACCEPTED = Verdict.ACCEPTED
_DUPLICATE = Verdict.DUPLICATE

# Members as module constants where a packet's path tests them: a member looked up on
# the Enum class costs several times a global's lookup (EnumType's attribute access).
_ESTABLISHED = AssociationState.ESTABLISHED
_SHUTDOWN_SENT = AssociationState.SHUTDOWN_SENT

# Tuples, not sets: ``in`` on a tuple compares by identity first, while a set hashes
# the member through Enum.__hash__, a Python-level call, several times per packet.
_DATA_STATES = (
    AssociationState.ESTABLISHED,
    AssociationState.SHUTDOWN_PENDING,
    AssociationState.SHUTDOWN_RECEIVED,
)
_RECEIVING_STATES = (
    AssociationState.ESTABLISHED,
    AssociationState.SHUTDOWN_PENDING,
    AssociationState.SHUTDOWN_SENT,
)
_SHUTDOWN_STATES = (
    AssociationState.SHUTDOWN_PENDING,
    AssociationState.SHUTDOWN_SENT,
    AssociationState.SHUTDOWN_RECEIVED,
    AssociationState.SHUTDOWN_ACK_SENT,
)
_UP_STATES = (
    AssociationState.ESTABLISHED,
    AssociationState.SHUTDOWN_PENDING,
    AssociationState.SHUTDOWN_SENT,
    AssociationState.SHUTDOWN_RECEIVED,
    AssociationState.SHUTDOWN_ACK_SENT,
)


# The receive fast path (Association._receive_fast) reads these directly.
_COMMON_HEADER = struct.Struct("!HHII")  # ports, verification tag, checksum (0 or not)
_FIRST_CHUNK = struct.Struct("!HHIIBBH")  # the common header and a chunk header after it
_CHUNK_HEADER = struct.Struct("!BBH")
_DATA_FIELDS = struct.Struct("!IHHI")  # TSN, stream, SSN, PPID
_IDATA_FIELDS = struct.Struct("!IHHII")  # TSN, stream, reserved, MID, PPID / FSN
_SACK_FIELDS = struct.Struct("!IIHH")  # cumulative TSN, a_rwnd, gap blocks, duplicates
_SACK_COUNTS = struct.Struct("!HH")
_CRC_FIELD = struct.Struct("<I")  # CRC32c, least significant byte first (packet.py)
_PLAIN_SACK = struct.Struct("!BBHIIHH")  # a SACK chunk without gap blocks or duplicates
_DATA = int(ChunkType.DATA)
_I_DATA = int(ChunkType.I_DATA)
_SACK = int(ChunkType.SACK)
_WHOLE = FLAG_BEGINNING | FLAG_ENDING
_new_object = object.__new__
#: What a packet is joined from: serialized chunks, or a DATA chunk's header, a view of
#: its user data and its padding (the send loop copies user data once, into the packet)
_Piece = bytes | memoryview


def _random_bytes(n: int) -> bytes:
    return os.urandom(n)


@dataclass(frozen=True)
class AssociationConfig:
    """Settings of one association; see the module docstring for the defaults."""

    local_port: int = 5000
    remote_port: int = 5000
    max_packet_size: int = DEFAULT_MAX_PACKET_SIZE
    max_message_size: int = 262144
    remote_max_message_size: int = 65536
    streams: int = 65535
    receive_window: int = 1 << 20
    send_buffer_size: int = 1 << 22
    rto_initial: float = 1.0
    rto_min: float = 0.4
    rto_max: float = 60.0
    max_init_retransmits: int = 8
    max_retransmits: int = 10
    heartbeat_interval: float | None = 30.0
    delayed_ack: float = 0.2
    #: RFC 9260 6.1 D: Max.Burst, the burst of new data (and T3 retransmissions) per
    #: SACK as flight size + max_burst * max_packet_size (see Association._burst_left)
    max_burst: int = 4
    interleaving: bool = True
    zero_checksum: bool = True
    cookie_lifetime: float = 60.0
    random: Callable[[int], bytes] = _random_bytes

    def __post_init__(self) -> None:
        for name in ("local_port", "remote_port"):
            if not 0 < getattr(self, name) <= 0xFFFF:
                raise ValueError(f"{name} must be in 1..65535")
        if not MIN_PACKET_SIZE <= self.max_packet_size <= 0xFFFF:
            raise ValueError(f"max_packet_size must be in {MIN_PACKET_SIZE}..65535")
        if self.max_message_size <= 0 or self.remote_max_message_size < 0:
            raise ValueError("message sizes must be positive (remote: 0 = unlimited)")
        if not 1 <= self.streams <= 65535:
            raise ValueError("streams must be in 1..65535")
        if self.receive_window < 1500 or self.send_buffer_size <= 0:
            raise ValueError("receive_window must be >= 1500 and send_buffer_size > 0")
        if not 0 < self.rto_min <= self.rto_initial <= self.rto_max:
            raise ValueError("need 0 < rto_min <= rto_initial <= rto_max")
        if self.max_init_retransmits < 0 or self.max_retransmits < 0:
            raise ValueError("retransmission limits must not be negative")
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive (None disables)")
        if not 0 < self.delayed_ack <= 0.5:
            raise ValueError("delayed_ack must be in (0, 0.5] (RFC 9260 6.2)")
        if self.max_burst < 1:
            raise ValueError("max_burst must be at least 1")
        if self.cookie_lifetime <= 0:
            raise ValueError("cookie_lifetime must be positive")


@dataclass(slots=True)
class AssociationStats:
    """Counters of one association (``dropped`` by reason)."""

    packets_in: int = 0
    packets_out: int = 0
    chunks_in: int = 0
    chunks_out: int = 0
    retransmissions: int = 0
    fast_retransmits: int = 0
    t3_expirations: int = 0
    abandoned_messages: int = 0
    #: FORWARD-TSN or I-FORWARD-TSN chunks (the kind the association negotiated)
    #: received and applied (refused ones count in ``dropped`` under ``forward_tsn_*``)
    forward_tsn_in: int = 0
    #: FORWARD-TSN or I-FORWARD-TSN chunks sent (RFC 3758 3.5, RFC 8260 2.3.1)
    forward_tsn_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    error_causes: Counter[str] = field(default_factory=Counter)  # from the peer's ERRORs
    srtt: float | None = None
    rto: float = 0.0
    cwnd: int = 0
    peer_rwnd: int = 0
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class _ResetRequest:
    """Our outstanding RE-CONFIG outgoing SSN reset request."""

    seq: int
    streams: tuple[int, ...]
    last_tsn: int
    deadline: float


class Association:
    """One SCTP association, sans-I/O (see the module docstring)."""

    # one per peer for its life: slots instead of a 50-key instance dict (about 1 KB).
    # The __dict__ slot stays empty unless something sets an attribute that is not a
    # slot (a test's stand-in method, webrtc_secure.trace's wrappers)
    __slots__ = (
        "__dict__",
        "_ack_deadline",
        "_burst_left",
        "_control",
        "_cookie",
        "_data_packets_unacked",
        "_deferred_reset",
        "_errors",
        "_event_bytes",
        "_events",
        "_finished",
        "_forward_pending",
        "_forward_tsn",
        "_hb_deadline",
        "_hb_outstanding",
        "_inbound_streams",
        "_init_chunk",
        "_local_initial_tsn",
        "_local_tag",
        "_next_request_seq",
        "_outbound_streams",
        "_outbox",
        "_peer_last_result",
        "_peer_next_request_seq",
        "_peer_tag",
        "_pending_state",
        "_random",
        "_receive",
        "_reconfig",
        "_replies",
        "_reset_request",
        "_reset_waiting",
        "_retransmit",
        "_rto",
        "_sack_now",
        "_sack_pending",
        "_secret",
        "_shutdown_chunk",
        "_stats",
        "_t1",
        "_t1_count",
        "_t1_rto",
        "_t2",
        "_t2_count",
        "accept_zero_checksum",
        "config",
        "interleaving",
        "state",
        "trace",
        "zero_checksum",
    )

    def __init__(self, config: AssociationConfig | None = None) -> None:
        #: a :class:`webrtc_secure.trace.Trace` to record control chunks into (set by
        #: the owner; None: nothing recorded, and data paths never look at it)
        self.trace: Trace | None = None
        self.config = config = config or AssociationConfig()
        self._random = config.random
        self._secret = config.random(32)
        self.state = AssociationState.CLOSED
        self._finished = False  # CLOSED after having been up (or given up)
        self._local_tag = self._random_tag()
        self._local_initial_tsn = self._random_u32()
        self._peer_tag = 0
        self._rto = RtoEstimator(config.rto_initial, config.rto_min, config.rto_max)
        self._stats = AssociationStats()
        # made on the first event: an empty deque allocates its first 64-slot block
        self._events: deque[Event] | None = None
        self._event_bytes = 0  # received message bytes not yet taken by next_event
        self._replies: list[bytes] = []  # ready packets (stateless answers, final ones)
        self._control: list[Chunk] = []  # control chunks for the next packet(s)
        self._outbox = Outbox(interleaving=False, capacity=config.send_buffer_size)
        self._retransmit: RetransmitQueue | None = None
        self._receive: ReceiveQueue | None = None
        # Negotiated.
        self.interleaving = False
        self.zero_checksum = False  # we send checksum zero (both ends offered it)
        #: the peer may send us checksum zero: our INIT or INIT-ACK offered it (RFC 9653
        #: 5.3 ties acceptance to what we sent, not to the peer's own offer)
        self.accept_zero_checksum = False
        self._forward_tsn = False
        self._reconfig = False
        self._outbound_streams = config.streams
        self._inbound_streams = config.streams
        # Handshake.
        self._init_chunk: InitChunk | None = None
        self._pending_state: CookieState | None = None  # from INIT-ACK, until COOKIE-ACK
        self._cookie: bytes | None = None
        self._t1: float | None = None
        self._t1_rto = config.rto_initial
        self._t1_count = 0
        # Shutdown.
        self._t2: float | None = None
        self._t2_count = 0
        self._shutdown_chunk: Chunk | None = None
        # Errors counted toward Association.Max.Retrans (RFC 9260 8.1).
        self._errors = 0
        # SACK.
        self._sack_pending = False
        self._sack_now = False
        self._ack_deadline: float | None = None
        self._data_packets_unacked = 0
        # Max.Burst (RFC 9260 6.1 D): "if ((flightsize + Max.Burst*MTU) < cwnd) cwnd =
        # flightsize + Max.Burst*MTU", applied, as the RFC allows, by adjusting cwnd
        # temporarily: this is that cwnd minus the flight size, the octets of DATA the
        # burst may still add. Rule B holds for it as for cwnd: a packet may start
        # while it is above zero, and that one packet may overshoot it by less than
        # its size (Linux applies the same formula per flush,
        # sctp_transport_burst_limited). The budget is set
        # by a SACK, or when nothing is in flight, and not by every call: the owner
        # asks for packets after every send, and an application writing a megabyte
        # in 1200-octet sends would otherwise put a whole cwnd on the wire at once.
        self._burst_left = 0
        # Heartbeat.
        self._hb_deadline: float | None = None
        self._hb_outstanding = False
        # PR-SCTP.
        self._forward_pending = False
        # Stream reset (RFC 6525).
        self._next_request_seq = 0
        self._reset_waiting: list[int] = []  # streams to reset, not yet requested
        self._reset_request: _ResetRequest | None = None
        self._peer_next_request_seq = 0
        self._peer_last_result: ReconfigResult | None = None
        self._deferred_reset: tuple[int, int, tuple[int, ...]] | None = None  # seq, tsn, ids

    # --- public API ------------------------------------------------------------------------------

    @property
    def stats(self) -> AssociationStats:
        s = self._stats
        s.srtt = self._rto.srtt
        s.rto = self._rto.rto
        if self._retransmit is not None:
            s.cwnd = self._retransmit.cc.cwnd
            s.peer_rwnd = self._retransmit.peer_rwnd
            s.retransmissions = self._retransmit.retransmissions
            s.fast_retransmits = self._retransmit.fast_retransmits
            s.abandoned_messages = self._retransmit.abandoned_count
        return s

    @property
    def is_established(self) -> bool:
        return self.state is _ESTABLISHED

    def connect(self, now: float) -> None:
        """Send INIT (active open). Both ends may do this; the collision resolves
        into one association (RFC 9260 5.2.1)."""
        if self.state is not AssociationState.CLOSED or self._finished:
            return
        if self._init_chunk is None:
            self._init_chunk = self._make_init()
        self.state = AssociationState.COOKIE_WAIT
        if self.trace is not None:
            self.trace.last_now = now  # the INIT below is recorded at this time
        self._t1_rto = self.config.rto_initial
        self._t1_count = 0
        self._t1 = now + self._t1_rto
        self.accept_zero_checksum = self.config.zero_checksum  # what the INIT offers
        self._send_packet_now([self._init_chunk], verification_tag=0)

    # --- SNAP (draft-hancke-tsvwg-snap): INIT chunks exchanged in SDP -------------------

    def snap_init(self) -> bytes:
        """Our INIT chunk for ``a=sctp-init`` (base64 is the SDP layer's job). No state
        changes and no timer starts; the same bytes come back on every call, as later
        offers and answers must repeat the value."""
        if self._init_chunk is None:
            self._init_chunk = self._make_init()
        return self._init_chunk.serialize()

    def start_snap(self, remote_init_chunk: bytes, now: float) -> None:
        """Establish from the peer's ``a=sctp-init`` INIT chunk and ours, without the
        INIT / COOKIE exchange (call once DTLS is up). Raises MalformedSctpPacket for
        bytes that are not one valid INIT chunk, InvalidAssociationState if this
        association already started another way."""
        if self.state is not AssociationState.CLOSED or self._finished:
            raise InvalidAssociationState(f"cannot start SNAP in state {self.state.value}")
        chunk = parse_chunk(bytes(remote_init_chunk))
        if self.trace is not None:
            self.trace.note(now, "sctp", "SNAP", "INITs exchanged in SDP, no INIT/COOKIE")
        if not isinstance(chunk, InitChunk):
            raise MalformedSctpPacket(f"a=sctp-init holds chunk type {chunk.type}, not INIT")
        if (
            chunk.initiate_tag == 0
            or chunk.outbound_streams == 0
            or chunk.inbound_streams == 0
            or chunk.a_rwnd < 1500
        ):
            raise MalformedSctpPacket(
                "a=sctp-init INIT has a zero tag, no streams or a tiny window"
            )
        self.snap_init()
        state = CookieState(
            local_tag=self._local_tag,
            peer_tag=chunk.initiate_tag,
            local_initial_tsn=self._local_initial_tsn,
            peer_initial_tsn=chunk.initial_tsn,
            peer_a_rwnd=chunk.a_rwnd,
            outbound_streams=min(self.config.streams, chunk.inbound_streams),
            inbound_streams=min(self.config.streams, chunk.outbound_streams),
            flags=self._peer_flags(chunk),
            created_at=now,
        )
        self._establish(state, now)

    def send(
        self,
        stream_id: int,
        ppid: int,
        data: bytes,
        now: float,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        lifetime: float | None = None,
    ) -> bool:
        """Queue one message. Before the association is up it waits in the queue.

        Returns whether :meth:`datagrams_to_send` now has work (or events wait): False
        when the message can only wait (cwnd, the peer's window or Max.Burst are used
        up and nothing else is due), so the owner may skip the flush that would send
        nothing; the SACK that opens the window makes the owner flush anyway. A
        streaming sender is blocked for most of its sends (1200-octet messages: every
        DATA packet left from the flush after a SACK)."""
        state = self.state
        # (ESTABLISHED first: a tuple's ``in`` that misses compares every member)
        if self._finished or (state is not _ESTABLISHED and state in _SHUTDOWN_STATES):
            raise InvalidAssociationState(f"cannot send in state {self.state.value}")
        if not 0 <= stream_id < self._outbound_streams:
            raise InvalidAssociationState(
                f"stream {stream_id} outside the {self._outbound_streams} negotiated streams"
            )
        if not 0 <= ppid <= 0xFFFFFFFF:
            raise ValueError("ppid must be a 32-bit unsigned integer")
        if not data:
            raise ValueError("SCTP cannot carry an empty message (RFC 8831 6.6: send one byte)")
        expires_at = None
        if max_retransmits is not None or lifetime is not None:  # (one test if reliable)
            if max_retransmits is not None and max_retransmits < 0:
                raise ValueError("max_retransmits must not be negative")
            if lifetime is not None and lifetime < 0:
                raise ValueError("lifetime must not be negative")
            if self._retransmit is not None and not self._forward_tsn:
                # RFC 3758 3.3.1: a peer without PR-SCTP gets no FORWARD-TSN, so nothing
                # may be abandoned (a TSN it never gets would stall the association):
                # reliable
                max_retransmits = lifetime = None
            elif lifetime is not None:
                expires_at = now + lifetime
        size = len(data)
        limit = self.config.remote_max_message_size
        if limit and size > limit:
            raise MessageTooLarge(f"{size} octets exceed the peer's maximum of {limit}")
        outbox = self._outbox
        # outbox.is_paused and outbox.has_room, inline (once per message sent)
        out_stream = outbox._streams.get(stream_id)
        if out_stream is not None and out_stream.paused:
            raise StreamResetPending(f"stream {stream_id} is being reset")
        if outbox.total + size > outbox.capacity:
            raise SendBufferFull(
                f"{size} more octets would exceed the {outbox.capacity}-octet buffer"
            )
        # OutgoingMessage(stream_id, ppid, data, ordered, max_retransmits, expires_at)
        # without its 11-argument __init__ call, and Outbox.push, inline (once per
        # message sent): every slot set as the dataclass would
        # (tests/test_sctp_association_queues.py compares the two)
        message = _new_object(OutgoingMessage)
        message.stream_id = stream_id
        message.ppid = ppid
        if type(data) is bytes:
            message.data = data
            length = size
        else:
            message.data = payload = bytes(data)
            length = len(payload)  # (a view's len counts items, not octets)
        message.ordered = ordered
        message.max_retransmits = max_retransmits
        message.expires_at = expires_at
        message.seq = None
        message.offset = 0
        message.next_fsn = 0
        message.abandoned = False
        message.chunks = []
        if out_stream is None:
            out_stream = outbox._streams[stream_id] = _OutStream()
        queue = out_stream.queue
        if queue is None:
            queue = out_stream.queue = deque()
        if not queue:
            turns = outbox._turns
            if turns is None:
                turns = outbox._turns = deque()
            turns.append(stream_id)
        queue.append(message)
        out_stream.buffered += length
        outbox.total += length
        stats = self._stats
        stats.messages_out += 1
        stats.bytes_out += size
        rq = self._retransmit
        if rq is not None and not rq.flight_size and state is _ESTABLISHED:
            return True  # what _output_due finds for new data and an empty flight
        return bool(self._events) or self._output_due()

    def buffered_amount(self, stream_id: int) -> int:
        """Octets queued on ``stream_id`` and not yet sent once."""
        # Outbox.buffered_amount, inline (asked once per message sent by a streaming
        # application)
        stream = self._outbox._streams.get(stream_id)
        return stream.buffered if stream is not None else 0

    def set_buffered_amount_low_threshold(self, stream_id: int, threshold: int) -> None:
        self._outbox.set_threshold(stream_id, threshold)

    def reset_streams(self, stream_ids: Iterable[int], now: float) -> None:
        """Reset our outgoing ``stream_ids`` (RFC 6525 5.1.2): what was queued on them
        is sent first, then the request goes out; :class:`OutgoingStreamsReset`
        reports completion. Sends on those streams raise until then."""
        ids = sorted(set(stream_ids))
        if self.state is not AssociationState.ESTABLISHED:
            raise InvalidAssociationState(f"cannot reset streams in state {self.state.value}")
        if not self._reconfig:
            raise InvalidAssociationState("the peer does not support RE-CONFIG (RFC 6525)")
        for sid in ids:
            if not 0 <= sid < self._outbound_streams:
                raise ValueError(f"stream {sid} outside the negotiated streams")
        for sid in ids:
            if sid not in self._reset_waiting and not (
                self._reset_request is not None and sid in self._reset_request.streams
            ):
                self._outbox.pause(sid)
                self._reset_waiting.append(sid)
        self._maybe_request_reset(now)

    def shutdown(self, now: float) -> None:
        """Graceful close (RFC 9260 9.2): queued data is delivered first."""
        if self.state is AssociationState.ESTABLISHED:
            self.state = AssociationState.SHUTDOWN_PENDING
            self._check_shutdown(now)
        elif self.state in (AssociationState.COOKIE_WAIT, AssociationState.COOKIE_ECHOED):
            self._close(None)

    def abort(self, reason: str, now: float) -> None:
        """Send ABORT with a User-Initiated Abort cause and close."""
        if self._finished:
            return
        if self._peer_tag:  # before INIT-ACK the peer's tag is unknown: nothing to send
            cause = UserInitiatedAbortCause(reason.encode("utf-8", "replace")[:256])
            self._send_packet_now([AbortChunk(False, (cause,))], self._peer_tag)
        self._close(AssociationAborted(f"aborted locally: {reason}"))

    def next_event(self) -> Event | None:
        events = self._events
        if not events:
            return None
        event = events.popleft()
        if isinstance(event, MessageReceived):
            self._event_bytes -= len(event.data)
        return event

    def get_timer(self) -> float | None:
        # Called after every flush (the transport re-arms its timer): one comparison per
        # deadline, no tuple to build and walk. The earliest of the delayed SACK,
        # HEARTBEAT, T3-rtx, and T1, T2 and the RE-CONFIG request's retransmission;
        # those three are None for nearly all of an association's life (handshake,
        # shutdown, a stream reset), so they are looked at after one test.
        when = self._hb_deadline
        deadline = self._ack_deadline
        if deadline is not None and (when is None or deadline < when):
            when = deadline
        rq = self._retransmit
        if rq is not None:
            deadline = rq.t3_deadline
            if deadline is not None and (when is None or deadline < when):
                when = deadline
        if self._t1 is None and self._t2 is None and self._reset_request is None:
            return when
        deadline = self._t1
        if deadline is not None and (when is None or deadline < when):
            when = deadline
        deadline = self._t2
        if deadline is not None and (when is None or deadline < when):
            when = deadline
        request = self._reset_request
        if request is not None and (when is None or request.deadline < when):
            when = request.deadline
        return when

    def handle_timer(self, now: float) -> None:
        if self.trace is not None:
            self.trace.last_now = now  # what a timer resends is recorded at this time
        try:
            self._handle_timer(now)
        except Exception:  # never out of the engine: count it, tests assert zero
            logger.exception("SCTP association: internal error in a timer")
            self._stats.dropped["internal_error"] += 1

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        """Take one SCTP packet."""
        self._stats.packets_in += 1
        if not isinstance(data, bytes):
            data = bytes(data)
        if (
            self.state is _ESTABLISHED
            # (not for a packet whose first chunk is a fragment, not a whole message:
            # most packets of a stream; receive_small would refuse it)
            and (len(data) < 14 or data[12] == _SACK or data[13] & _WHOLE == _WHOLE)
            and receive_small(self, data, now)
        ):
            return  # [SACK] + one whole message (sctp/small_path.py)
        if self._receive_fast(data, now):
            return
        try:
            packet = parse_packet(data, allow_zero_checksum=self.accept_zero_checksum)
        except ChecksumMismatch:
            self._stats.dropped["checksum"] += 1
            return
        except MalformedSctpPacket:
            self._stats.dropped["malformed"] += 1
            return
        if (
            packet.destination_port != self.config.local_port
            or packet.source_port != self.config.remote_port
        ):
            self._stats.dropped["port"] += 1
            return
        self._stats.chunks_in += len(packet.chunks)
        try:
            self._handle_packet(packet.verification_tag, packet.chunks, now)
        except Exception:  # never out of the engine: count it, tests assert zero
            logger.exception("SCTP association: internal error handling a packet")
            self._stats.dropped["internal_error"] += 1

    def _receive_fast(self, data: bytes, now: float) -> bool:
        """The packets of an established transfer, without chunk objects: only DATA or
        I-DATA and SACK chunks, our ports and tag, and a checksum that verifies (or is
        zero, RFC 9653, when negotiated). Anything else, or anything the general path
        would count as malformed or misplaced, returns False before any state changes,
        and the general path (``parse_packet``, ``_handle_packet``) takes the packet;
        both hand the chunks' fields to the same ``_data_received`` and
        ``_sack_received``, so the outcome is the same (tests/test_sctp_fastpath.py
        compares them on hostile input)."""
        end = len(data)
        if end < COMMON_HEADER_SIZE + 4 or self.state not in _UP_STATES:
            return False
        # the common header and the first chunk's header in one unpack
        source, destination, tag, checksum, type_, flags, length = _FIRST_CHUNK.unpack_from(data)
        config = self.config
        if (
            tag != self._local_tag
            or destination != config.local_port
            or source != config.remote_port
        ):
            return False
        if (checksum or not self.accept_zero_checksum) and packet_crc(
            data
        ) != _CRC_FIELD.unpack_from(data, 8)[0]:
            return False  # the general path counts the mismatch
        # Every chunk is checked as parse_chunks and the handlers would, before
        # anything is processed.
        chunks: Sequence[tuple[int, int, int, int]]
        has_data = False
        if end == COMMON_HEADER_SIZE + ((length + 3) & ~3):
            # One chunk, padded to the packet's end (a stream's DATA packets and its
            # SACKs): the loop's checks below for that one chunk, and no list.
            receive = self._receive
            if (
                type_ == _I_DATA
                and length >= IDATA_HEADER_SIZE
                and self.interleaving
                and receive is not None
                and self.state in _RECEIVING_STATES
            ):
                # One I-DATA chunk, what an interleaving association receives most:
                # the processing below for it, straight through (its rare cases, the
                # I flag and an unknown stream, go there)
                tsn, stream_id, _reserved, seq, last = _IDATA_FIELDS.unpack_from(data, 16)
                if not flags & FLAG_IMMEDIATE and stream_id < self._inbound_streams:
                    self._stats.chunks_in += 1
                    try:
                        had_gaps = bool(receive.tracker._above)
                        window = config.receive_window - self._event_bytes
                        receive.window = window if window > 0 else 0
                        # the user data sliced (a copy), not a view of the packet: a
                        # slice of ~1.1 KB costs less than a memoryview and its slice
                        # (timeit: 84 vs 144 ns), and joining bytes less than joining
                        # views (a whole message is then the slice itself)
                        verdict = receive.receive_interleaved(
                            tsn, stream_id, seq, last, data[32 : 12 + length], flags
                        )
                        if verdict is not _ACCEPTED:
                            self._chunk_not_accepted(verdict)
                        self._sack_pending = True
                        # _after_data_packet, inline (once per packet of this path)
                        if (
                            receive._ready
                            or receive.dropped_messages
                            or self._deferred_reset is not None
                        ):
                            self._deliver()
                        unacked = self._data_packets_unacked + 1
                        self._data_packets_unacked = unacked
                        state = self.state
                        if (
                            unacked >= 2
                            or had_gaps
                            or receive.tracker._above
                            or state is _SHUTDOWN_SENT
                        ):
                            self._sack_now = True
                        elif self._ack_deadline is None:
                            self._ack_deadline = now + config.delayed_ack
                        if state is not _ESTABLISHED or self._reset_waiting:
                            self._after_receive(now)
                    except Exception:  # never out of the engine: counted, as below
                        logger.exception("SCTP association: internal error handling a packet")
                        self._stats.dropped["internal_error"] += 1
                    return True
            if type_ == _I_DATA:
                if length < IDATA_HEADER_SIZE:
                    return False
                has_data = True
            elif type_ == _DATA:
                if length < DATA_HEADER_SIZE:
                    return False
                has_data = True
            elif type_ == _SACK:
                if length < 16:
                    return False
                counts = _SACK_COUNTS.unpack_from(data, COMMON_HEADER_SIZE + 12)
                if length != 16 + 4 * (counts[0] + counts[1]):
                    return False
            else:
                return False
            chunks = ((type_, flags, COMMON_HEADER_SIZE, COMMON_HEADER_SIZE + length),)
        else:
            if (
                type_ == _I_DATA
                and self.interleaving
                and self._receive is not None
                and self.state in _RECEIVING_STATES
                and self._receive_two(data, end, flags, length, now)
            ):
                return True  # two I-DATA chunks: a stream of messages a little over a packet
            checked = _check_chunks(data, end)
            if checked is None:
                return False
            chunks, has_data = checked
        if has_data and self.state not in _RECEIVING_STATES:
            return False
        self._stats.chunks_in += len(chunks)
        try:
            receive = self._receive
            # tracker.has_gaps, read directly (the properties cost a call per packet)
            had_gaps = receive is not None and bool(receive.tracker._above)
            interleaving = self.interleaving
            window = -1  # receive.window as _data_received sets it, computed once
            for type_, flags, pos, stop in chunks:
                if type_ != _SACK:  # DATA or I-DATA (the first pass let no other in)
                    interleaved = type_ == _I_DATA
                    if interleaved:
                        # I-DATA: the last field is the PPID on a first fragment, the
                        # FSN on the others (split below only where it is needed)
                        tsn, stream_id, _reserved, seq, last = _IDATA_FIELDS.unpack_from(
                            data, pos + 4
                        )
                        start = pos + 20
                    else:
                        tsn, stream_id, seq, last = _DATA_FIELDS.unpack_from(data, pos + 4)
                        start = pos + 16
                    if (
                        interleaved is not interleaving
                        or flags & FLAG_IMMEDIATE
                        or stream_id >= self._inbound_streams
                        or receive is None
                    ):
                        # the rare cases: _data_received says what becomes of them
                        user_data = data[start:stop]
                        ppid, fsn = last, 0
                        if interleaved and not flags & FLAG_BEGINNING:
                            ppid, fsn = 0, last
                        self._data_received(
                            interleaved, flags, tsn, stream_id, seq, ppid, fsn, user_data
                        )
                        continue
                    # _data_received's common case, inline (once per chunk received):
                    # the same window (queued events count against it), the same call,
                    # the same verdict handling
                    if window < 0:
                        window = self.config.receive_window - self._event_bytes
                        if window < 0:
                            window = 0
                    receive.window = window
                    if interleaved:
                        # receive_chunk and its I-DATA reassembly in one call (the user
                        # data sliced: chunks of a packet of several are small pieces,
                        # where a view costs more than the copy it saves)
                        verdict = receive.receive_interleaved(
                            tsn, stream_id, seq, last, data[start:stop], flags
                        )
                    else:  # DATA: the last field is the PPID, there is no FSN
                        verdict = receive.receive_chunk(
                            tsn,
                            stream_id,
                            seq,
                            last,
                            data[start:stop],
                            flags & FLAG_UNORDERED != 0,
                            flags & FLAG_BEGINNING != 0,
                            flags & FLAG_ENDING != 0,
                            0,
                        )
                    if verdict is not _ACCEPTED:
                        self._chunk_not_accepted(verdict)
                    self._sack_pending = True
                else:
                    cumulative, a_rwnd, ngaps, _ndups = _SACK_FIELDS.unpack_from(data, pos + 4)
                    gaps: tuple[tuple[int, int], ...] = ()
                    if ngaps:
                        values = struct.unpack_from(f"!{2 * ngaps}H", data, pos + 16)
                        gaps = tuple(zip(values[0::2], values[1::2], strict=True))
                    self._sack_received(cumulative, a_rwnd, gaps, now)
            if has_data:
                self._after_data_packet(now, had_gaps)
            if self.state is not _ESTABLISHED or self._reset_waiting:
                self._after_receive(now)  # (its own first test, inline: once per packet)
        except Exception:  # never out of the engine: count it, tests assert zero
            logger.exception("SCTP association: internal error handling a packet")
            self._stats.dropped["internal_error"] += 1
        return True

    def _receive_two(self, data: bytes, end: int, flags: int, length: int, now: float) -> bool:
        """:meth:`_receive_fast` for a packet of exactly two I-DATA chunks on an
        interleaving association (the caller checked those and a receiving state): what
        a stream of messages a little larger than a packet receives (a message's tail
        and the next one's head). The checks of ``_check_chunks`` and of the loop's
        common case for both chunks first, then the loop's steps for each, without the
        chunk list; False, before any state changes, for anything else (the loop then
        takes the packet). tests/test_sctp_fastpath.py compares it with the loop."""
        # _check_chunks for two chunks: the first holds its fields, the second starts
        # after the first's padding, holds its fields and reaches the packet's end
        # (its own padding may be missing, as there)
        if length < IDATA_HEADER_SIZE:
            return False
        second = COMMON_HEADER_SIZE + ((length + 3) & ~3)
        if end - second < 4:
            return False  # (no second chunk header: _check_chunks's answer, or one chunk)
        type2, flags2, length2 = _CHUNK_HEADER.unpack_from(data, second)
        stop2 = second + length2
        if (
            type2 != _I_DATA
            or length2 < IDATA_HEADER_SIZE
            or stop2 > end
            or second + ((length2 + 3) & ~3) < end  # a third chunk: the loop
        ):
            return False
        tsn, stream_id, _reserved, seq, last = _IDATA_FIELDS.unpack_from(data, 16)
        tsn2, stream_id2, _reserved, seq2, last2 = _IDATA_FIELDS.unpack_from(data, second + 4)
        inbound = self._inbound_streams
        if (
            flags & FLAG_IMMEDIATE
            or flags2 & FLAG_IMMEDIATE
            or stream_id >= inbound
            or stream_id2 >= inbound
        ):
            return False  # the rare cases: the loop hands them to _data_received
        self._stats.chunks_in += 2
        try:
            receive = self._receive
            assert receive is not None  # (the caller checked)
            had_gaps = bool(receive.tracker._above)
            window = self.config.receive_window - self._event_bytes
            if window < 0:
                window = 0
            receive.window = window
            verdict = receive.receive_interleaved(
                tsn, stream_id, seq, last, data[32 : COMMON_HEADER_SIZE + length], flags
            )
            if verdict is not _ACCEPTED:
                self._chunk_not_accepted(verdict)
            self._sack_pending = True
            receive.window = window
            verdict = receive.receive_interleaved(
                tsn2, stream_id2, seq2, last2, data[second + IDATA_HEADER_SIZE : stop2], flags2
            )
            if verdict is not _ACCEPTED:
                self._chunk_not_accepted(verdict)
            self._sack_pending = True
            self._after_data_packet(now, had_gaps)
            if self.state is not _ESTABLISHED or self._reset_waiting:
                self._after_receive(now)
        except Exception:  # never out of the engine: counted, as in _receive_fast
            logger.exception("SCTP association: internal error handling a packet")
            self._stats.dropped["internal_error"] += 1
        return True

    def datagrams_to_send(self, now: float) -> list[bytes]:
        try:
            if self.state is not _ESTABLISHED or not send_small(self, now):  # small_path.py
                self._produce(now)
        except Exception:  # never out of the engine: count it, tests assert zero
            logger.exception("SCTP association: internal error building packets")
            self._stats.dropped["internal_error"] += 1
        out, self._replies = self._replies, []
        self._stats.packets_out += len(out)
        return out

    # --- helpers ---------------------------------------------------------------------------------

    def _random_u32(self) -> int:
        return int.from_bytes(self._random(4), "big")

    def _random_tag(self) -> int:
        while True:
            tag = self._random_u32()
            if tag:
                return tag

    def _make_init(self) -> InitChunk:
        return InitChunk(
            initiate_tag=self._local_tag,
            a_rwnd=self.config.receive_window,
            outbound_streams=self.config.streams,
            inbound_streams=self.config.streams,
            initial_tsn=self._local_initial_tsn,
            parameters=self._capability_parameters(),
        )

    def _capability_parameters(self) -> tuple[InitParameter, ...]:
        extensions = [ChunkType.RE_CONFIG, ChunkType.FORWARD_TSN]
        if self.config.interleaving:
            extensions += [ChunkType.I_DATA, ChunkType.I_FORWARD_TSN]
        params: list[InitParameter] = [
            SupportedExtensionsParameter(tuple(int(e) for e in extensions)),
            ForwardTsnSupportedParameter(),
        ]
        if self.config.zero_checksum:
            params.append(ZeroChecksumAcceptableParameter(ErrorDetectionMethod.DTLS))
        return tuple(params)

    def _peer_flags(self, init: InitChunk | InitAckChunk) -> int:
        """What the peer's INIT / INIT-ACK offers, intersected with our config."""
        extensions: set[int] = set()
        forward = False
        zero = False
        for p in init.parameters:
            if isinstance(p, SupportedExtensionsParameter):
                extensions.update(p.chunk_types)
            elif isinstance(p, ForwardTsnSupportedParameter):
                forward = True
            elif isinstance(p, ZeroChecksumAcceptableParameter):
                zero = p.error_detection_method == ErrorDetectionMethod.DTLS
        flags = 0
        if forward or ChunkType.FORWARD_TSN in extensions:
            flags |= FLAG_FORWARD_TSN
        if ChunkType.RE_CONFIG in extensions:
            flags |= FLAG_RECONFIG
        if (
            self.config.interleaving
            and ChunkType.I_DATA in extensions
            and ChunkType.I_FORWARD_TSN in extensions
        ):
            flags |= FLAG_INTERLEAVING
        if self.config.zero_checksum and zero:
            flags |= FLAG_ZERO_CHECKSUM
        return flags

    def _send_packet_now(
        self, chunks: list[Chunk], verification_tag: int, *, checksum: bool = True
    ) -> None:
        if len(self._replies) >= MAX_PENDING_REPLIES:
            self._stats.dropped["reply_queue_full"] += 1
            return
        if self.trace is not None:
            self.trace.sctp_chunks(None, "send", chunks)
        self._replies.append(
            serialize_chunks(
                self.config.local_port,
                self.config.remote_port,
                verification_tag,
                [c.serialize() for c in chunks],
                zero_checksum=not checksum,
            )
        )
        self._stats.chunks_out += len(chunks)

    def _queue_control(self, chunk: Chunk) -> None:
        """Queue a control chunk for the next packet; answers to a flood of input
        (HEARTBEAT-ACKs, ERRORs) are capped until the caller collects packets."""
        if len(self._control) >= MAX_PENDING_CONTROL:
            self._stats.dropped["control_queue_full"] += 1
            return
        if self.trace is not None:
            self.trace.sctp_chunks(None, "send", (chunk,))
        self._control.append(chunk)

    def _emit(self, event: Event) -> None:
        events = self._events
        if events is None:
            events = self._events = deque()
        events.append(event)

    def _close(self, error: SctpError | None) -> None:
        if self._finished:
            return
        was = self.state
        self.state = AssociationState.CLOSED
        self._finished = True
        self._t1 = self._t2 = self._ack_deadline = self._hb_deadline = None
        if self._retransmit is not None:
            self._retransmit.t3_deadline = None
        self._reset_request = None
        self._control.clear()
        if error is None:
            logger.info("SCTP association closed (was %s)", was.value)
        else:
            logger.info("SCTP association closed (was %s): %s", was.value, error)
        self._emit(AssociationClosed(error))

    def _count_error(self, what: str) -> bool:
        """One more unanswered retransmission; True (and closed) past the limit."""
        self._errors += 1
        if self._errors > self.config.max_retransmits:
            # 8.1: the peer is unreachable; an ABORT (no cause) tells it, should it
            # still be listening.
            self._send_packet_now([AbortChunk(False, ())], self._peer_tag)
            self._close(AssociationTimeout(f"{what}: peer unreachable after {self._errors} tries"))
            return True
        return False

    # --- establishment ---------------------------------------------------------------------------

    def _establish(self, state: CookieState, now: float) -> None:
        """Create the TCB from the parameters both INITs agreed on."""
        cfg = self.config
        self._local_tag = state.local_tag
        self._peer_tag = state.peer_tag
        self._local_initial_tsn = state.local_initial_tsn
        self._outbound_streams = state.outbound_streams
        self._inbound_streams = state.inbound_streams
        self._forward_tsn = bool(state.flags & FLAG_FORWARD_TSN)
        self._reconfig = bool(state.flags & FLAG_RECONFIG)
        self.interleaving = bool(state.flags & FLAG_INTERLEAVING)
        self.zero_checksum = bool(state.flags & FLAG_ZERO_CHECKSUM)
        # every way here (COOKIE-ECHO, COOKIE-ACK, SNAP) followed an INIT or INIT-ACK of
        # ours, which offered zero checksum when configured to
        self.accept_zero_checksum = self.config.zero_checksum
        self._outbox.interleaving = self.interleaving
        self._receive = ReceiveQueue(
            state.peer_initial_tsn,
            interleaving=self.interleaving,
            window=cfg.receive_window,
            max_message_size=cfg.max_message_size,
        )
        self._retransmit = RetransmitQueue(
            state.local_initial_tsn,
            mtu=cfg.max_packet_size,
            peer_rwnd=state.peer_a_rwnd,
            rto=self._rto,
            chunk_header=IDATA_HEADER_SIZE if self.interleaving else DATA_HEADER_SIZE,
        )
        # RFC 6525 5.1: request sequence numbers start at the initial TSN.
        self._next_request_seq = state.local_initial_tsn
        self._peer_next_request_seq = state.peer_initial_tsn
        self._t1 = None
        self._errors = 0
        if not self._forward_tsn:
            self._outbox.make_reliable()  # queued before we knew (see send())
        self.state = AssociationState.ESTABLISHED
        if cfg.heartbeat_interval is not None:
            self._hb_deadline = now + cfg.heartbeat_interval
        logger.info(
            "SCTP association established (I-DATA %s, zero checksum %s, PR-SCTP %s)",
            self.interleaving,
            self.zero_checksum,
            self._forward_tsn,
        )
        self._emit(AssociationEstablished())

    def _handle_init(self, packet_tag: int, init: InitChunk, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (init,))
        if packet_tag != 0:
            self._stats.dropped["init_bad_tag"] += 1
            return
        if (
            init.initiate_tag == 0
            or init.outbound_streams == 0
            or init.inbound_streams == 0
            or init.a_rwnd < 1500
        ):
            self._stats.dropped["init_invalid"] += 1
            return
        if self._finished:
            self._stats.dropped["init_after_close"] += 1
            return
        local_tie = peer_tie = 0
        if self.state in (AssociationState.COOKIE_WAIT, AssociationState.COOKIE_ECHOED):
            # 5.2.1: answer with the tag and TSN of our own INIT.
            local_tag, local_tsn = self._local_tag, self._local_initial_tsn
        elif self.state is AssociationState.CLOSED:
            local_tag, local_tsn = self._random_tag(), self._random_u32()
        else:
            # 5.2.2: unexpected INIT in an established association (peer restart?):
            # new tags, ours and the peer's old ones as tie-tags. No state changes.
            local_tag, local_tsn = self._random_tag(), self._random_u32()
            local_tie, peer_tie = self._local_tag, self._peer_tag
        state = CookieState(
            local_tag=local_tag,
            peer_tag=init.initiate_tag,
            local_initial_tsn=local_tsn,
            peer_initial_tsn=init.initial_tsn,
            peer_a_rwnd=init.a_rwnd,
            outbound_streams=min(self.config.streams, init.inbound_streams),
            inbound_streams=min(self.config.streams, init.outbound_streams),
            flags=self._peer_flags(init),
            created_at=now,
            local_tie_tag=local_tie,
            peer_tie_tag=peer_tie,
        )
        ack = InitAckChunk(
            initiate_tag=local_tag,
            a_rwnd=self.config.receive_window,
            outbound_streams=self.config.streams,
            inbound_streams=self.config.streams,
            initial_tsn=local_tsn,
            parameters=(
                StateCookieParameter(seal_cookie(state, self._secret)),
                *self._capability_parameters(),
            ),
        )
        # the INIT-ACK offers zero checksum: the COOKIE-ECHO may come with one
        self.accept_zero_checksum = self.config.zero_checksum
        self._send_packet_now([ack], init.initiate_tag)

    def _handle_init_ack(self, ack: InitAckChunk, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (ack,))
        if self.state is not AssociationState.COOKIE_WAIT:
            self._stats.dropped["init_ack_unexpected"] += 1
            return
        cookie = ack.cookie
        if ack.initiate_tag == 0 or cookie is None or ack.outbound_streams == 0:
            self._stats.dropped["init_ack_invalid"] += 1
            return
        if ack.inbound_streams == 0 or ack.a_rwnd < 1500:
            self._stats.dropped["init_ack_invalid"] += 1
            return
        self._peer_tag = ack.initiate_tag
        self._cookie = cookie
        flags = self._peer_flags(ack)
        self._pending_state = CookieState(
            local_tag=self._local_tag,
            peer_tag=ack.initiate_tag,
            local_initial_tsn=self._local_initial_tsn,
            peer_initial_tsn=ack.initial_tsn,
            peer_a_rwnd=ack.a_rwnd,
            outbound_streams=min(self.config.streams, ack.inbound_streams),
            inbound_streams=min(self.config.streams, ack.outbound_streams),
            flags=flags,
            created_at=now,
        )
        # The peer may answer COOKIE-ECHO with a zero checksum once it saw our offer.
        self.zero_checksum = bool(flags & FLAG_ZERO_CHECKSUM)
        self.state = AssociationState.COOKIE_ECHOED
        self._t1_rto = self.config.rto_initial
        self._t1_count = 0
        self._t1 = now + self._t1_rto
        self._send_packet_now([CookieEchoChunk(cookie)], self._peer_tag)

    def _handle_cookie_echo(self, packet_tag: int, echo: CookieEchoChunk, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (echo,))
        state = open_cookie(echo.cookie, self._secret)
        if state is None:
            self._stats.dropped["cookie_invalid"] += 1
            return
        if packet_tag != state.local_tag:
            self._stats.dropped["cookie_bad_tag"] += 1
            return
        age = now - state.created_at
        if age > self.config.cookie_lifetime:
            self._stats.dropped["cookie_stale"] += 1
            stale = StaleCookieCause(
                min(0xFFFFFFFF, int((age - self.config.cookie_lifetime) * 1e6))
            )
            self._send_packet_now([ErrorChunk((stale,))], state.peer_tag)
            return
        if self._finished:
            self._stats.dropped["cookie_after_close"] += 1
            return
        if self.state is AssociationState.CLOSED:
            self._establish(state, now)
            self._queue_control(CookieAckChunk())
            return
        if self.state in (AssociationState.COOKIE_WAIT, AssociationState.COOKIE_ECHOED):
            # 5.2.4 B/D: the cookie answers our own INIT's tag (collision).
            if state.local_tag != self._local_tag or state.local_initial_tsn != (
                self._local_initial_tsn
            ):
                self._stats.dropped["cookie_tag_mismatch"] += 1
                return
            self._establish(state, now)
            self._queue_control(CookieAckChunk())
            return
        # Established (or shutting down).
        if state.local_tag == self._local_tag and state.peer_tag == self._peer_tag:
            # 5.2.4 D: our COOKIE-ACK was lost.
            self._queue_control(CookieAckChunk())
            return
        if state.local_tie_tag == self._local_tag and state.peer_tie_tag == self._peer_tag:
            # 5.2.4 A: the peer restarted. Not supported: one association per DTLS.
            self._stats.dropped["peer_restart"] += 1
            return
        self._stats.dropped["cookie_tag_mismatch"] += 1

    def _handle_cookie_ack(self, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (CookieAckChunk(),))
        if self.state is not AssociationState.COOKIE_ECHOED or self._pending_state is None:
            return  # a duplicate: nothing to do
        self._establish(self._pending_state, now)

    # --- packet dispatch -------------------------------------------------------------------------

    def _handle_packet(self, tag: int, chunks: tuple[Chunk, ...], now: float) -> None:
        first = chunks[0]
        if any(isinstance(c, InitChunk) for c in chunks):
            if len(chunks) != 1:
                self._stats.dropped["init_bundled"] += 1
                return
            assert isinstance(first, InitChunk)
            self._handle_init(tag, first, now)
            return
        if isinstance(first, CookieEchoChunk):
            self._handle_cookie_echo(tag, first, now)
            rest = chunks[1:]
            if not rest or self.state not in _UP_STATES or tag != self._local_tag:
                return
            chunks = rest
        elif self.state is AssociationState.CLOSED:
            self._out_of_the_blue(tag, chunks)
            return
        else:
            for chunk in chunks:
                if isinstance(chunk, AbortChunk):
                    expected = self._peer_tag if chunk.t_bit else self._local_tag
                    if tag != expected:
                        self._stats.dropped["abort_bad_tag"] += 1
                        return
                    self._handle_abort(chunk)
                    return
            if isinstance(first, ShutdownCompleteChunk):
                expected = self._peer_tag if first.t_bit else self._local_tag
                if tag != expected:
                    self._stats.dropped["bad_tag"] += 1
                    return
            elif tag != self._local_tag:
                self._stats.dropped["bad_tag"] += 1
                return
        had_data = False
        had_gaps = self._receive is not None and self._receive.tracker.has_gaps
        for chunk in chunks:
            if self.state is AssociationState.CLOSED:
                break
            if isinstance(chunk, DataChunk | IDataChunk):
                had_data = True
            if not self._handle_chunk(chunk, now):
                break
        if had_data:
            self._after_data_packet(now, had_gaps)
        self._after_receive(now)

    def _out_of_the_blue(self, tag: int, chunks: tuple[Chunk, ...]) -> None:
        """RFC 9260 8.4 for a packet while no association exists."""
        for chunk in chunks:
            if isinstance(chunk, ShutdownAckChunk):
                self._send_packet_now([ShutdownCompleteChunk(True)], tag)
                return
            if isinstance(chunk, AbortChunk | ShutdownCompleteChunk):
                return
        self._stats.dropped["out_of_the_blue"] += 1

    def _handle_chunk(self, chunk: Chunk, now: float) -> bool:
        """Process one chunk; False stops processing the rest of the packet."""
        state = self.state
        if isinstance(chunk, DataChunk | IDataChunk):
            if state not in _RECEIVING_STATES:
                self._stats.dropped["data_wrong_state"] += 1
                return True
            self._handle_data(chunk)
        elif isinstance(chunk, SackChunk):
            if state in _UP_STATES:
                self._handle_sack(chunk, now)
        elif isinstance(chunk, HeartbeatChunk):
            self._queue_control(HeartbeatAckChunk(chunk.info))
        elif isinstance(chunk, HeartbeatAckChunk):
            self._handle_heartbeat_ack(chunk, now)
        elif isinstance(chunk, InitAckChunk):
            self._handle_init_ack(chunk, now)
        elif isinstance(chunk, CookieAckChunk):
            self._handle_cookie_ack(now)
        elif isinstance(chunk, ShutdownChunk):
            self._handle_shutdown(chunk, now)
        elif isinstance(chunk, ShutdownAckChunk):
            self._handle_shutdown_ack(now)
        elif isinstance(chunk, ShutdownCompleteChunk):
            if self.trace is not None:
                self.trace.sctp_chunks(now, "recv", (chunk,))
            if state is AssociationState.SHUTDOWN_ACK_SENT:
                self._close(None)
            return False
        elif isinstance(chunk, ErrorChunk):
            self._handle_error(chunk, now)
        elif isinstance(chunk, ForwardTsnChunk | IForwardTsnChunk):
            self._handle_forward_tsn(chunk)
        elif isinstance(chunk, ReconfigChunk):
            if state in _UP_STATES:
                self._handle_reconfig(chunk, now)
        elif isinstance(chunk, UnknownChunk):
            return self._handle_unknown(chunk)
        else:  # INIT, ABORT and COOKIE-ECHO are handled per packet
            self._stats.dropped["chunk_misplaced"] += 1
        return True

    def _handle_unknown(self, chunk: UnknownChunk) -> bool:
        """RFC 9260 3.2: the upper two bits of the type say what to do."""
        action = chunk.type >> 6
        self._stats.dropped["chunk_unknown"] += 1
        if action in (1, 3) and self._peer_tag:
            self._queue_control(ErrorChunk((UnrecognizedChunkTypeCause(chunk.serialize()),)))
        return action >= 2

    def _handle_abort(self, chunk: AbortChunk) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(None, "recv", (chunk,))
        if self._finished:
            return
        causes = tuple(type(c).__name__ for c in chunk.causes)
        reason = ""
        for c in chunk.causes:
            if isinstance(c, UserInitiatedAbortCause):
                reason = c.reason.decode("utf-8", "replace")
        self._close(AssociationAborted(f"peer sent ABORT {reason}".strip(), causes))

    def _handle_error(self, chunk: ErrorChunk, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (chunk,))
        for cause in chunk.causes:
            self._stats.error_causes[type(cause).__name__] += 1
            if isinstance(cause, StaleCookieCause) and self.state is AssociationState.COOKIE_ECHOED:
                # 5.2.6: start over with a fresh INIT.
                self.state = AssociationState.CLOSED
                self._t1 = None
                self.connect(now)

    # --- DATA / SACK -----------------------------------------------------------------------------

    def _handle_data(self, chunk: DataChunk | IDataChunk) -> None:
        flags = (
            (FLAG_IMMEDIATE if chunk.immediate else 0)
            | (FLAG_UNORDERED if chunk.unordered else 0)
            | (FLAG_BEGINNING if chunk.beginning else 0)
            | (FLAG_ENDING if chunk.ending else 0)
        )
        if isinstance(chunk, IDataChunk):
            self._data_received(
                True,
                flags,
                chunk.tsn,
                chunk.stream_id,
                chunk.mid,
                chunk.ppid,
                chunk.fsn,
                chunk.user_data,
            )
        else:
            self._data_received(
                False,
                flags,
                chunk.tsn,
                chunk.stream_id,
                chunk.stream_seq,
                chunk.ppid,
                0,
                chunk.user_data,
            )

    def _data_received(
        self,
        interleaved: bool,
        flags: int,
        tsn: int,
        stream_id: int,
        seq: int,
        ppid: int,
        fsn: int,
        user_data: bytes,
    ) -> None:
        """One DATA (``interleaved`` False, ``seq`` the SSN) or I-DATA (``seq`` the MID,
        ``ppid`` on a first fragment, ``fsn`` on the others) chunk, from either path."""
        receive = self._receive
        assert receive is not None
        if interleaved is not self.interleaving:
            self._stats.dropped["data_wrong_kind"] += 1
            return
        if flags & FLAG_IMMEDIATE:
            self._sack_now = True
        if stream_id >= self._inbound_streams:
            # 6.5: acknowledge, report, discard.
            if receive.tracker.classify(tsn) is Verdict.ACCEPTED:
                receive.tracker.add(tsn)
            self._stats.dropped["data_bad_stream"] += 1
            self._queue_control(ErrorChunk((InvalidStreamIdentifierCause(stream_id),)))
            return
        # Count queued events against the window so an application that stops reading
        # stops the peer too.
        receive.window = max(0, self.config.receive_window - self._event_bytes)
        verdict = receive.receive_chunk(
            tsn,
            stream_id,
            seq,
            ppid,
            user_data,
            bool(flags & FLAG_UNORDERED),
            bool(flags & FLAG_BEGINNING),
            bool(flags & FLAG_ENDING),
            fsn,
        )
        if verdict is not _ACCEPTED:
            self._chunk_not_accepted(verdict)
        self._sack_pending = True

    def _chunk_not_accepted(self, verdict: Verdict) -> None:
        """A DATA / I-DATA chunk the receive queue did not take (every receive path):
        a duplicate makes a SACK due at once (RFC 9260 6.2), anything else is a drop
        counted by its reason."""
        if verdict is _DUPLICATE:
            self._sack_now = True
        else:
            self._stats.dropped[f"data_{verdict.value}"] += 1

    def _after_data_packet(self, now: float, had_gaps: bool) -> None:
        receive = self._receive
        if receive is None:
            return
        if receive._ready or receive.dropped_messages or self._deferred_reset is not None:
            self._deliver()  # (nothing to deliver: a message's first fragments)
        self._data_packets_unacked += 1
        # 6.7: SACK at once while gaps exist and when a packet fills them, so the
        # sender learns of losses (and their repair) without the delayed-ack wait.
        if (
            self._data_packets_unacked >= 2
            or had_gaps
            or receive.tracker._above  # has_gaps
            or self.state is _SHUTDOWN_SENT
        ):
            self._sack_now = True
        elif self._ack_deadline is None:
            self._ack_deadline = now + self.config.delayed_ack

    def _deliver(self) -> None:
        receive = self._receive
        if receive is None:
            return
        ready = receive._ready  # receive.pop_messages(), inline
        if ready:
            receive._ready = []
            # the reassembled messages are the events, in order (_emit for each, inline)
            events = self._events
            if events is None:
                events = self._events = deque()
            events.extend(ready)
            size = 0
            for message in ready:
                size += len(message.data)
            stats = self._stats
            stats.messages_in += len(ready)
            stats.bytes_in += size
            self._event_bytes += size
        if receive.dropped_messages:
            self._stats.dropped["message_refused"] += receive.dropped_messages
            receive.dropped_messages = 0
        if self._deferred_reset is not None:
            self._try_deferred_reset()

    def _handle_sack(self, chunk: SackChunk, now: float) -> None:
        self._sack_received(chunk.cumulative_tsn, chunk.a_rwnd, chunk.gap_blocks, now)

    def _sack_received(
        self, cumulative_tsn: int, a_rwnd: int, gap_blocks: tuple[tuple[int, int], ...], now: float
    ) -> None:
        rq = self._retransmit
        assert rq is not None
        outcome = rq.on_sack(cumulative_tsn, a_rwnd, gap_blocks, now)
        if not outcome.accepted:
            self._stats.dropped["sack_stale" if outcome.stale else "sack_invalid"] += 1
            return
        config = self.config  # _burst_bytes(), inline (once per SACK)
        self._burst_left = config.max_burst * config.max_packet_size
        if outcome.invalid_gap_blocks:
            self._stats.dropped["sack_gap_block_invalid"] += outcome.invalid_gap_blocks
        if outcome.cumulative_advanced:
            self._errors = 0
        if rq.abandoned_messages:
            self._after_abandonment()
        if rq.advanced_unwrapped > rq.cumulative_unwrapped:  # rq.forward_tsn_needed
            self._forward_pending = True

    def _after_abandonment(self) -> None:
        rq = self._retransmit
        if rq is None:
            return
        for message in rq.abandoned_messages:
            self._outbox.abandon(message)
        rq.abandoned_messages.clear()

    def _encode_sack(self) -> bytes:
        """The SACK chunk's octets: ``_sack_chunk().serialize()``, without the chunk
        object in the common case of no gaps and no duplicates."""
        receive = self._receive
        assert receive is not None
        tracker = receive.tracker
        if tracker._above or tracker._duplicates:  # has_gaps or has_duplicates
            return self._sack_chunk().serialize()
        window = max(0, self.config.receive_window - receive.buffered - self._event_bytes)
        return _PLAIN_SACK.pack(_SACK, 0, 16, tracker.cumulative, window, 0, 0)

    def _sack_chunk(self) -> SackChunk:
        receive = self._receive
        assert receive is not None
        duplicates = receive.tracker.take_duplicates()
        room = (self.config.max_packet_size - COMMON_HEADER_SIZE - 16) // 4 - len(duplicates)
        blocks = receive.tracker.gap_blocks(max(1, min(room, 256)))
        window = max(0, self.config.receive_window - receive.buffered - self._event_bytes)
        return SackChunk(receive.cumulative_tsn, window, blocks, duplicates)

    # --- heartbeat -------------------------------------------------------------------------------

    def _heartbeat_info(self, now: float) -> bytes:
        body = struct.pack("!d", now) + self._random(8)
        return body + hmac.digest(self._secret, body, hashlib.sha256)[:8]

    def _handle_heartbeat_ack(self, chunk: HeartbeatAckChunk, now: float) -> None:
        info = chunk.info
        if len(info) != 24 or not hmac.compare_digest(
            info[16:], hmac.digest(self._secret, info[:16], hashlib.sha256)[:8]
        ):
            self._stats.dropped["heartbeat_ack_invalid"] += 1
            return
        sent = struct.unpack("!d", info[:8])[0]
        if self._hb_outstanding and 0 <= now - sent <= self.config.rto_max * 2:
            self._rto.observe(now - sent)
        self._hb_outstanding = False
        self._errors = 0

    # --- shutdown --------------------------------------------------------------------------------

    def _check_shutdown(self, now: float) -> None:
        rq = self._retransmit
        if rq is None:
            return
        all_acked = self._outbox.empty and rq.outstanding == 0
        if self.state is AssociationState.SHUTDOWN_PENDING and all_acked:
            self.state = AssociationState.SHUTDOWN_SENT
            self._start_t2(now)
            self._shutdown_chunk = None  # built at send time with the current cum TSN
        elif self.state is AssociationState.SHUTDOWN_RECEIVED and all_acked:
            self.state = AssociationState.SHUTDOWN_ACK_SENT
            self._start_t2(now)

    def _start_t2(self, now: float) -> None:
        self._t2_count = 0
        self._t2 = now + self._rto.rto
        self._hb_deadline = None
        self._queue_shutdown_chunk()

    def _queue_shutdown_chunk(self) -> None:
        if self.state is AssociationState.SHUTDOWN_SENT:
            assert self._receive is not None
            self._queue_control(ShutdownChunk(self._receive.cumulative_tsn))
            self._sack_pending = self._sack_now = False
            self._ack_deadline = None
        elif self.state is AssociationState.SHUTDOWN_ACK_SENT:
            self._queue_control(ShutdownAckChunk())

    def _handle_shutdown(self, chunk: ShutdownChunk, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (chunk,))
        rq = self._retransmit
        if rq is None or self.state not in _UP_STATES:
            return
        if rq.on_sack(chunk.cumulative_tsn, rq.peer_rwnd + rq.flight_size, (), now).accepted:
            self._after_abandonment()
        if self.state in (AssociationState.ESTABLISHED, AssociationState.SHUTDOWN_PENDING):
            self.state = AssociationState.SHUTDOWN_RECEIVED
            self._check_shutdown(now)
        elif self.state is AssociationState.SHUTDOWN_SENT:
            # 9.2: both sides shut down at once.
            self.state = AssociationState.SHUTDOWN_ACK_SENT
            self._start_t2(now)

    def _handle_shutdown_ack(self, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (ShutdownAckChunk(),))
        if self.state in (AssociationState.SHUTDOWN_SENT, AssociationState.SHUTDOWN_ACK_SENT):
            self._send_packet_now([ShutdownCompleteChunk(False)], self._peer_tag)
            self._close(None)
        elif self.state in (AssociationState.COOKIE_WAIT, AssociationState.COOKIE_ECHOED):
            # 8.5.1 E: answer as out of the blue.
            self._send_packet_now([ShutdownCompleteChunk(True)], self._peer_tag)

    # --- PR-SCTP ---------------------------------------------------------------------------------

    def _handle_forward_tsn(self, chunk: ForwardTsnChunk | IForwardTsnChunk) -> None:
        receive = self._receive
        if receive is None or self.state not in _RECEIVING_STATES or not self._forward_tsn:
            self._stats.dropped["forward_tsn_unexpected"] += 1
            return
        if isinstance(chunk, IForwardTsnChunk) != self.interleaving:
            self._stats.dropped["forward_tsn_wrong_kind"] += 1
            return
        if isinstance(chunk, IForwardTsnChunk):
            entries = chunk.streams
        else:
            entries = tuple((sid, False, ssn) for sid, ssn in chunk.streams)
        entries = tuple(e for e in entries if e[0] < self._inbound_streams)
        if receive.skip(chunk.new_cumulative_tsn, entries):
            self._stats.forward_tsn_in += 1
        else:
            self._stats.dropped["forward_tsn_out_of_window"] += 1
        self._deliver()
        self._sack_pending = self._sack_now = True

    # --- stream reset (RFC 6525) -----------------------------------------------------------------

    def _maybe_request_reset(self, now: float) -> None:
        rq = self._retransmit
        if self._reset_request is not None or not self._reset_waiting or rq is None:
            return
        if self.state is not AssociationState.ESTABLISHED:
            return
        if not all(self._outbox.drained(sid) for sid in self._reset_waiting):
            return  # queued messages go first (RFC 8831 6.7)
        streams = tuple(self._reset_waiting[:MAX_STREAM_RESET_IDS])
        del self._reset_waiting[: len(streams)]
        self._reset_request = _ResetRequest(
            seq=self._next_request_seq,
            streams=streams,
            last_tsn=rq.last_assigned_tsn,
            deadline=now + self._rto.rto,
        )
        self._next_request_seq = add32(self._next_request_seq, 1)
        self._queue_reset_request()

    def _queue_reset_request(self) -> None:
        request = self._reset_request
        if request is None:
            return
        self._queue_control(
            ReconfigChunk(
                (
                    OutgoingSsnResetRequest(
                        request.seq,
                        add32(self._peer_next_request_seq, -1),
                        request.last_tsn,
                        request.streams,
                    ),
                )
            )
        )

    def _handle_reconfig(self, chunk: ReconfigChunk, now: float) -> None:
        if self.trace is not None:
            self.trace.sctp_chunks(now, "recv", (chunk,))
        if not self._reconfig:
            self._stats.dropped["reconfig_unexpected"] += 1
            return
        responses: list[ReconfigParameter] = []
        for param in chunk.parameters[:2]:
            if isinstance(param, OutgoingSsnResetRequest):
                responses.append(self._handle_peer_reset(param))
            elif isinstance(param, ReconfigResponse):
                self._handle_reset_response(param, now)
            elif isinstance(param, IncomingSsnResetRequest):
                # We close our streams when we decide to; the data-channel layer
                # answers a remote close with its own outgoing reset.
                responses.append(ReconfigResponse(param.request_seq, ReconfigResult.DENIED))
            else:
                seq = getattr(param, "request_seq", None)
                if isinstance(seq, int):
                    responses.append(ReconfigResponse(seq, ReconfigResult.DENIED))
                self._stats.dropped["reconfig_unsupported"] += 1
        if responses:
            self._queue_control(ReconfigChunk(tuple(responses)))

    def _handle_peer_reset(self, request: OutgoingSsnResetRequest) -> ReconfigResponse:
        seq = request.request_seq
        expected = self._peer_next_request_seq
        if seq == add32(expected, -1) and self._peer_last_result is not None:
            # A retransmission: answer as before (or with the outcome since then).
            return ReconfigResponse(seq, self._peer_last_result)
        if seq != expected:
            self._stats.dropped["reconfig_bad_seq"] += 1
            return ReconfigResponse(seq, ReconfigResult.ERROR_BAD_SEQUENCE_NUMBER)
        if self._deferred_reset is not None:
            return ReconfigResponse(seq, ReconfigResult.ERROR_REQUEST_ALREADY_IN_PROGRESS)
        self._peer_next_request_seq = add32(expected, 1)
        streams = tuple(s for s in request.streams if s < self._inbound_streams)
        self._deferred_reset = (seq, request.last_tsn, streams)
        self._peer_last_result = ReconfigResult.IN_PROGRESS
        self._try_deferred_reset(announce=False)
        return ReconfigResponse(seq, self._peer_last_result)

    def _try_deferred_reset(self, *, announce: bool = True) -> None:
        """5.2.2: perform the peer's reset once every TSN up to its last one arrived."""
        receive = self._receive
        deferred = self._deferred_reset
        if receive is None or deferred is None:
            return
        seq, last_tsn, streams = deferred
        if not le32(last_tsn, receive.cumulative_tsn):
            return
        self._deferred_reset = None
        receive.reset_streams(streams)
        self._peer_last_result = ReconfigResult.SUCCESS_PERFORMED
        self._emit(IncomingStreamsReset(streams))
        if announce:
            # We answered "in progress": tell the peer now rather than when it asks again.
            self._queue_control(
                ReconfigChunk((ReconfigResponse(seq, ReconfigResult.SUCCESS_PERFORMED),))
            )

    def _handle_reset_response(self, response: ReconfigResponse, now: float) -> None:
        request = self._reset_request
        if request is None or response.response_seq != request.seq:
            self._stats.dropped["reconfig_response_unexpected"] += 1
            return
        result = response.result
        if result in (
            ReconfigResult.IN_PROGRESS,
            ReconfigResult.ERROR_REQUEST_ALREADY_IN_PROGRESS,
        ):
            # The peer waits for data still in flight, or is busy with its own
            # request: ask again after an RTO with the same sequence number.
            request.deadline = now + self._rto.rto
            return
        self._reset_request = None
        self._errors = 0
        if result in (ReconfigResult.SUCCESS_PERFORMED, ReconfigResult.SUCCESS_NOTHING_TO_DO):
            for sid in request.streams:
                self._outbox.reset(sid)
            self._emit(OutgoingStreamsReset(request.streams))
        else:
            logger.warning("SCTP stream reset of %s refused: result %s", request.streams, result)
            self._stats.dropped["reconfig_refused"] += 1
            for sid in request.streams:
                self._outbox.reset(sid)  # the streams stay usable with their old numbers
        self._maybe_request_reset(now)

    # --- after input -----------------------------------------------------------------------------

    def _after_receive(self, now: float) -> None:
        state = self.state
        if state is AssociationState.CLOSED:
            return
        if state is _ESTABLISHED and not self._reset_waiting:
            return  # neither a shutdown step nor a stream reset request can be due
        self._check_shutdown(now)
        self._maybe_request_reset(now)

    # --- timers ----------------------------------------------------------------------------------

    def _handle_timer(self, now: float) -> None:
        if self._t1 is not None and now >= self._t1:
            self._t1_count += 1
            if self._t1_count > self.config.max_init_retransmits:
                self._close(AssociationTimeout("no answer to INIT / COOKIE-ECHO"))
                return
            self._t1_rto = min(self._t1_rto * 2, self.config.rto_max)
            self._t1 = now + self._t1_rto
            if self.state is AssociationState.COOKIE_WAIT and self._init_chunk is not None:
                self._send_packet_now([self._init_chunk], 0)
            elif self.state is AssociationState.COOKIE_ECHOED and self._cookie is not None:
                self._send_packet_now([CookieEchoChunk(self._cookie)], self._peer_tag)
        if self._t2 is not None and now >= self._t2:
            self._t2_count += 1
            self._rto.backoff()
            if self._count_error("SHUTDOWN"):
                return
            self._t2 = now + self._rto.rto
            self._queue_shutdown_chunk()
        rq = self._retransmit
        if rq is not None and rq.t3_deadline is not None and now >= rq.t3_deadline:
            self._stats.t3_expirations += 1
            rq.on_t3_expired(now)
            if self._count_error("T3-rtx"):
                return
            self._after_abandonment()
            if rq.forward_tsn_needed:
                self._forward_pending = True
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._ack_deadline = None
            self._sack_now = True
        if self._hb_deadline is not None and now >= self._hb_deadline:
            interval = self.config.heartbeat_interval
            rq = self._retransmit
            busy_until = None
            if rq is not None and interval is not None and rq.last_sent is not None:
                busy_until = rq.last_sent + interval
            if self.state is not AssociationState.ESTABLISHED or interval is None:
                self._hb_deadline = None
            elif not self._hb_outstanding and busy_until is not None and busy_until > now:
                # 8.3: heartbeats probe an idle path; DATA and its SACKs do it otherwise.
                self._hb_deadline = busy_until
            else:
                if self._hb_outstanding and self._count_error("HEARTBEAT"):
                    return
                self._hb_outstanding = True
                self._queue_control(HeartbeatChunk(self._heartbeat_info(now)))
                self._hb_deadline = now + self._rto.rto + interval
        request = self._reset_request
        if request is not None and now >= request.deadline:
            self._rto.backoff()
            if self._count_error("RE-CONFIG"):
                return
            request.deadline = now + self._rto.rto
            self._queue_reset_request()

    # --- output ----------------------------------------------------------------------------------

    def _output_due(self) -> bool:
        """Whether :meth:`_produce` would do anything: False only when it would return
        at once (the same test, which it makes first)."""
        if self._finished or self.state not in _UP_STATES:
            return False
        rq = self._retransmit
        assert rq is not None
        outbox = self._outbox
        if (
            self._control
            or self._sack_now
            or self._forward_pending
            or outbox.low
            or outbox.expired
            or rq.timed_outstanding
            or rq._pending_retransmit
        ):
            return True
        flight = rq.flight_size
        if (not outbox.total and outbox._current is None) or flight >= rq.cc.cwnd:
            return False  # (outbox.empty, read directly: once per send and flush)
        if not flight:
            return True  # _take_data refills the Max.Burst budget first
        if self._burst_left <= 0:
            return False  # the burst's adjusted cwnd is reached (6.1 B and D)
        # Whether _take_data's new-data loop could place one chunk: the smallest piece
        # it may cut is min(unsent octets, MIN_FILL, a full packet's payload) (see the
        # loop); the peer's window must take a chunk of that size.
        header = IDATA_HEADER_SIZE if self.interleaving else DATA_HEADER_SIZE
        small = (self.config.max_packet_size - COMMON_HEADER_SIZE - header) & ~3
        if small > MIN_FILL:  # (conditionals, not min(): once per send and flush)
            small = MIN_FILL
        if outbox.total < small:
            small = outbox.total
        return small <= rq.peer_rwnd

    def _send_plain_sack(self, receive: ReceiveQueue) -> bool:
        """:meth:`_produce` for a flush that has only a SACK without gap blocks or
        duplicates to send (its caller tested that): what the general steps make of
        it, one packet of one chunk, without them. True (it sent the packet).
        tests/test_sctp_fastpath.py compares it with the general steps."""
        window = self.config.receive_window - receive.buffered - self._event_bytes
        sack = _PLAIN_SACK.pack(
            _SACK, 0, 16, receive.tracker.cumulative, window if window > 0 else 0, 0, 0
        )
        self._sack_now = self._sack_pending = False
        self._ack_deadline = None
        self._data_packets_unacked = 0
        config = self.config
        local, remote = config.local_port, config.remote_port
        if self.zero_checksum:
            header = _COMMON_HEADER.pack(local, remote, self._peer_tag, 0)
            self._replies.append(header + sack)
        else:
            self._replies.append(serialize_chunks(local, remote, self._peer_tag, (sack,)))
        self._stats.chunks_out += 1
        return True

    def _produce(self, now: float) -> None:
        if not self._output_due():
            return  # nothing to send or report: most flushes (one per packet in)
        state = self.state
        rq = self._retransmit
        assert rq is not None
        outbox = self._outbox
        mtu = self.config.max_packet_size
        receive = self._receive
        if (
            self._sack_now
            and receive is not None
            and not receive.tracker._above
            and not receive.tracker._duplicates
            and state is not _SHUTDOWN_SENT
            and not self._control
            and not self._forward_pending
            and not outbox.low
            and not outbox.expired
            and not outbox.total
            and outbox._current is None
            and not rq.timed_outstanding
            and not rq._pending_retransmit
            and self._send_plain_sack(receive)
        ):
            return  # a receiver's flush: one SACK without gaps or duplicates, nothing else
        if outbox.low:
            for stream_id in outbox.low:
                self._emit(BufferedAmountLow(stream_id))
            outbox.low.clear()
        data_state = state in _DATA_STATES
        if data_state and rq.timed_outstanding:
            rq.expire(now)
            self._after_abandonment()
            if rq.forward_tsn_needed:
                self._forward_pending = True
        data: list[list[_Piece]] = []
        if data_state and (rq._pending_retransmit or outbox.total or outbox._current is not None):
            # (_take_data's own first test, in part: a flush with no DATA to place, a
            # receiver's SACK, makes neither call)
            data = self._take_data(now, mtu - COMMON_HEADER_SIZE - self._control_reserve())
        if outbox.low:
            for stream_id in outbox.low:
                self._emit(BufferedAmountLow(stream_id))
            outbox.low.clear()
        if outbox.expired:
            for message in outbox.expired:
                rq.abandon(message)
            outbox.expired.clear()
            self._after_abandonment()
            if rq.forward_tsn_needed:
                self._forward_pending = True
        control: list[bytes] = []  # serialized control chunks, in order
        if receive is not None and (
            self._sack_now or (self._sack_pending and (data or self._control))
        ):
            if state is _SHUTDOWN_SENT:
                # 9.2: answer DATA with SHUTDOWN (its cumulative TSN acknowledges) and
                # restart T2; gaps or duplicates need a SACK as well.
                self._queue_control(ShutdownChunk(receive.cumulative_tsn))
                self._t2 = now + self._rto.rto
                tracker = receive.tracker
                if tracker.has_gaps or tracker.has_duplicates:
                    control.append(self._sack_chunk().serialize())
            else:
                control.append(self._encode_sack())
            self._sack_now = self._sack_pending = False
            self._ack_deadline = None
            self._data_packets_unacked = 0
        if self._forward_pending:
            self._forward_pending = False
            if rq.forward_tsn_needed and self._forward_tsn:
                new_cum, entries = rq.forward_tsn(interleaving=self.interleaving)
                forward: Chunk
                if self.interleaving:
                    forward = IForwardTsnChunk(new_cum, entries[:120])
                else:
                    forward = ForwardTsnChunk(new_cum, tuple((s, q) for s, _, q in entries[:250]))
                control.append(forward.serialize())
                self._stats.forward_tsn_out += 1
                if rq.t3_deadline is None:
                    rq.t3_deadline = now + self._rto.rto
        if self._control:
            control.extend(chunk.serialize() for chunk in self._control)
            self._control.clear()
        if not control and not data:
            return
        packets: list[list[_Piece]] = []
        current: list[_Piece] = []
        used = COMMON_HEADER_SIZE
        chunks_out = 0
        for encoded in control:
            if used + len(encoded) > mtu and current:
                packets.append(current)
                current, used = [], COMMON_HEADER_SIZE
            if COMMON_HEADER_SIZE + len(encoded) > mtu:
                self._stats.dropped["chunk_too_large_to_send"] += 1
                continue
            current.append(encoded)
            used += len(encoded)
            chunks_out += 1  # (_take_data counted the DATA chunks)
        # _take_data grouped the DATA chunks into packets (cut to fill them); the first
        # group joins the control chunks when it fits, as reserved.
        if current and data:
            first = data[0]
            if used + sum(map(len, first)) > mtu:
                packets.append(current)
            else:
                data[0] = current + first
            current = []
        packets.extend(data)
        if current:
            packets.append(current)
        replies = self._replies
        if self.zero_checksum:
            # RFC 9653: the checksum field stays zero, so the common header is the
            # same for every packet: one join per packet, no CRC
            header = _COMMON_HEADER.pack(
                self.config.local_port, self.config.remote_port, self._peer_tag, 0
            )
            for chunks in packets:
                if len(chunks) == 1:
                    replies.append(header + chunks[0])
                else:
                    # (the pieces of a packet: chunks, or a DATA chunk's header, user
                    # data view and padding)
                    chunks.insert(0, header)
                    replies.append(b"".join(chunks))
        else:
            for chunks in packets:
                replies.append(
                    serialize_chunks(
                        self.config.local_port, self.config.remote_port, self._peer_tag, chunks
                    )
                )
        self._stats.chunks_out += chunks_out

    def _burst_bytes(self) -> int:
        return self.config.max_burst * self.config.max_packet_size

    def _control_reserve(self) -> int:
        """Octets the control chunks of this flush will likely take in the first packet
        (a SACK without gaps, queued control chunks), so DATA cut to fill the rest of
        it still fits there."""
        reserve = sum(chunk.encoded_size for chunk in self._control) if self._control else 0
        receive = self._receive
        if receive is not None and (self._sack_now or self._sack_pending):
            tracker = receive.tracker
            if tracker._above or tracker._duplicates:  # has_gaps or has_duplicates
                return self.config.max_packet_size  # unknown size: data starts a packet
            reserve += 16
        return reserve

    def _take_data(self, now: float, room: int) -> list[list[_Piece]]:
        """DATA / I-DATA chunks to send now, grouped into packets: fast retransmissions
        (one packet, even beyond cwnd, 7.2.4), other retransmissions, then new data,
        within cwnd, the peer's window and Max.Burst. ``room`` is what the first packet
        has left; a new fragment is cut to fill the packet it goes into (a 1200-octet
        message is two fragments: the next message's first one shares the tail's
        packet instead of each message taking two packets)."""
        rq = self._retransmit
        assert rq is not None
        outbox = self._outbox
        # rq.has_retransmissions and outbox.empty, read directly (once per flush)
        retransmissions = rq._pending_retransmit > 0
        if not retransmissions and (
            (not outbox.total and outbox._current is None) or rq.flight_size >= rq.cc.cwnd
        ):
            return []  # the common case of a flush after every packet: nothing to do
        mtu = self.config.max_packet_size
        header = IDATA_HEADER_SIZE if self.interleaving else DATA_HEADER_SIZE
        full = mtu - COMMON_HEADER_SIZE
        max_payload = (full - header) & ~3
        groups: list[list[_Piece]] = []
        group: list[_Piece] = []
        if rq.flight_size == 0:
            self._burst_left = self._burst_bytes()
        if retransmissions:
            group, room = self._take_retransmissions(now, room, full, groups)
            if rq.has_retransmissions:
                if group:
                    groups.append(group)
                return groups  # 6.1: retransmissions before new data
        if (outbox.total or outbox._current is not None) and rq.flight_size == 0:
            rq.restart_after_idle(now)  # not outbox.empty; it needs an empty flight
        # New data: placing and rq.can_send_new inline (no closure call per fragment),
        # as this loop runs for every fragment sent.
        burst_left = self._burst_left
        cwnd = rq.cc.cwnd  # nothing below changes it
        interleaved = self.interleaving
        send_piece = rq.send_piece
        cut = outbox.cut
        placed = 0  # chunks (stats.chunks_out: _produce counts only the control chunks)
        # The message Outbox.cut would pick first, when _take_rest can take it (one
        # stream queued, or DATA's message being cut; no lifetime to check, not
        # abandoned): it starts there. The loop below goes on where it stops.
        message = outbox._current
        if message is None and (turns := outbox._turns) and len(turns) == 1:
            queue = outbox._streams[turns[0]].queue
            if queue:
                message = queue[0]
        if message is not None and not message.abandoned and message.expires_at is None:
            group, room, burst_left = self._take_rest(
                message, message.next_fsn - 1, now, groups, group, room, burst_left, max_payload
            )
        while True:
            total = outbox.total or max_payload
            space = (room - header) & ~3
            # Fill the packet unless only a sliver is left (tiny fragments cost more
            # than the packet they would save). (min() as conditionals: once per
            # fragment)
            if space >= MIN_FILL or space >= total:
                piece = space if space < max_payload else max_payload
            else:
                piece = max_payload
            want = piece if piece < total else total
            if burst_left <= 0 and (not group or header + ((want + 3) & ~3) > room):
                # Max.Burst reached: no new packet. 6.1 B's breach is one packet, so
                # the packet that crossed the limit is still filled (with 1200-octet
                # messages its first chunk is often a message's short tail).
                break
            flight = rq.flight_size
            if flight >= cwnd or (flight and want > rq.peer_rwnd):
                break
            fragment = cut(piece, now)
            if fragment is None:
                break
            message, data, beginning, ending, fsn = fragment
            chunk = send_piece(message, data, beginning, ending, fsn, now)
            size = chunk.size
            if size > room:
                if group:
                    groups.append(group)
                    group = []
                room = full
            room -= size
            # _encode_data, inline (once per fragment sent)
            seq = message.seq
            assert seq is not None
            group.append(
                encode_data_chunk(
                    interleaved,
                    (0 if message.ordered else FLAG_UNORDERED)
                    | (FLAG_BEGINNING if beginning else 0)
                    | (FLAG_ENDING if ending else 0),
                    chunk.tsn,
                    message.stream_id,
                    seq,
                    # I-DATA: the PPID on a first fragment, the FSN on the others
                    message.ppid if beginning or not interleaved else fsn,
                    data,
                )
            )
            placed += 1
            burst_left -= size
            if not ending and (
                outbox._current is message
                or (interleaved and (turns := outbox._turns) and len(turns) == 1)
            ):
                # The next cut would pick this message again (DATA: it is being cut;
                # I-DATA: its stream is the only one queued): cut the rest of it here.
                group, room, burst_left = self._take_rest(
                    message, fsn, now, groups, group, room, burst_left, max_payload
                )
        self._burst_left = burst_left
        self._stats.chunks_out += placed
        if group:
            groups.append(group)
        return groups

    def _take_rest(
        self,
        message: OutgoingMessage,
        fsn: int,
        now: float,
        groups: list[list[_Piece]],
        group: list[_Piece],
        room: int,
        burst_left: int,
        max_payload: int,
    ) -> tuple[list[_Piece], int, int]:
        """:meth:`_take_data`'s new-data loop for the next fragments of ``message``
        (``fsn``: its last fragment cut so far, -1 if none), which :meth:`Outbox.cut`
        would pick next (the loop calls it first, and again after cutting a message's
        first fragment itself), and for the messages after it on the same stream
        while that stream is the only one queued and they are neither partially
        reliable nor started: the loop's tests, then what ``Outbox.cut`` (with ``_pick``),
        ``RetransmitQueue.send_piece`` and ``encode_data_chunk`` do for each
        fragment, in one loop (a 64 KiB message is 58 fragments, a stream of
        1200-octet messages two per message). Stops where the loop would stop (cwnd,
        the peer's window, Max.Burst: the loop's same tests then stop it too), or
        where the next fragment needs the loop's general steps. Returns the packet
        being filled, the room left in it and the burst budget left.
        tests/test_sctp_fastpath_send.py compares it with the loop without it."""
        rq = self._retransmit
        assert rq is not None
        outbox = self._outbox
        interleaved = self.interleaving
        header = IDATA_HEADER_SIZE if interleaved else DATA_HEADER_SIZE
        full = self.config.max_packet_size - COMMON_HEADER_SIZE
        cwnd = rq.cc.cwnd
        stream_id = message.stream_id
        stream = outbox._streams[stream_id]
        threshold = stream.threshold
        chunk_header = rq.chunk_header
        chunks = rq.chunks
        new = _new_object
        data = memoryview(message.data)  # fragments are views: one copy, into the packet
        length = len(data)
        offset = message.offset
        next_fsn = message.next_fsn
        numbered = message.seq is not None  # else it gets its number at its first cut
        seq = message.seq or 0
        unordered = 0 if message.ordered else FLAG_UNORDERED
        ppid = message.ppid
        partial = message.max_retransmits is not None or message.expires_at is not None
        timed = message.expires_at is not None
        placed = 0
        # The counters this loop moves, in locals: written back when it stops (and the
        # message's before Outbox._finish, which reads them)
        unsent = outbox.total
        buffered = stream.buffered
        next_tsn = rq.next_tsn
        next_unwrapped = rq.next_unwrapped
        flight = rq.flight_size
        peer_rwnd = rq.peer_rwnd
        while True:
            # the loop's tests, as there, in fewer steps: the piece it would cut (a
            # full packet's payload when the room takes one), and its stops, whose
            # ``want`` (the piece or less) is computed only when one may apply
            space = (room - header) & ~3
            if space >= max_payload:
                piece = max_payload  # (the loop's min(space, max_payload) either way)
            elif space >= MIN_FILL or space >= (unsent or max_payload):
                piece = space
            else:
                piece = max_payload
            if burst_left <= 0 or flight >= cwnd or (flight and piece > peer_rwnd):
                total = unsent or max_payload
                want = piece if piece < total else total
                if burst_left <= 0 and (not group or header + ((want + 3) & ~3) > room):
                    break
                if flight >= cwnd or (flight and want > peer_rwnd):
                    break
            # Outbox.cut
            if not numbered:
                # its sequence number, as cut gives a new message one
                if not unordered:
                    seq = stream.next_ssn
                    stream.next_ssn = (seq + 1) & (0xFFFFFFFF if interleaved else 0xFFFF)
                elif interleaved:
                    seq = stream.next_unordered_mid
                    stream.next_unordered_mid = (seq + 1) & 0xFFFFFFFF
                else:
                    seq = 0  # RFC 9260 6.6: the SSN of an unordered message is ignored
                message.seq = seq
                numbered = True
            start = offset
            piece_data = data[start : start + piece]
            cut_size = len(piece_data)
            offset = start + cut_size
            ending = offset >= length
            fsn = next_fsn
            next_fsn = fsn + 1
            before = buffered
            buffered = before - cut_size
            unsent -= cut_size
            if before > threshold >= buffered:
                outbox.low.append(stream_id)
            if ending:
                message.offset = offset
                message.next_fsn = next_fsn
                # Outbox._finish for a message at the head of its stream's queue, inline
                # (once per message; it is the head: the one _pick and cut took)
                queue = stream.queue
                if queue is not None and queue[0] is message:
                    if outbox._current is message:
                        outbox._current = None
                    queue.popleft()
                    if not queue:
                        stream.queue = None
                    turns = outbox._turns
                    if turns and turns[0] == stream_id:
                        turns.popleft()
                        if stream.queue:
                            turns.append(stream_id)
                else:
                    outbox._finish(message, stream)
            elif not start and not interleaved:
                outbox._current = message  # DATA: a started message is finished first
            # RetransmitQueue.send_piece (its comments say why each slot is set so)
            size = (chunk_header + cut_size + 3) & ~3
            chunk = new(SentChunk)
            chunk.tsn = tsn = next_tsn
            chunk.unwrapped = next_unwrapped
            chunk.message = message
            chunk.data = piece_data
            chunk.beginning = not start
            chunk.ending = ending
            chunk.fsn = fsn
            chunk.first_sent = now
            chunk.transmissions = 1
            chunk.acked = False
            chunk.abandoned = False
            chunk.in_flight = True
            chunk.retransmit = False
            chunk.fast = False
            chunk.fast_retransmitted = False
            chunk.misses = 0
            chunk.size = size
            chunks[next_unwrapped] = chunk
            next_tsn = (tsn + 1) & 0xFFFFFFFF
            next_unwrapped += 1
            if partial:
                message.chunks.append(chunk)
            if timed:
                rq.timed_outstanding += 1
            flight += size
            peer_rwnd -= size
            if peer_rwnd < 0:
                peer_rwnd = 0
            # (send_piece's T3 start is made once, after the loop: nothing here reads it)
            # the loop's packet grouping and encoding, as there
            if size > room:
                if group:
                    groups.append(group)
                    group = []
                room = full
            room -= size
            # encode_data_chunk's octets as pieces of the packet (its header, the view,
            # the padding): the packet's join copies the user data once. (A chunk of a
            # packet of at most 65535 octets needs no check of its 16-bit length.)
            flags = unordered | (FLAG_ENDING if ending else 0) | (0 if start else FLAG_BEGINNING)
            if interleaved:
                group.append(
                    IDATA_CHUNK_HEADER.pack(
                        _I_DATA,
                        flags,
                        IDATA_HEADER_SIZE + cut_size,
                        tsn,
                        stream_id,
                        0,
                        seq,
                        # I-DATA: the PPID on a first fragment, the FSN on the others
                        fsn if start else ppid,
                    )
                )
            else:
                group.append(
                    DATA_CHUNK_HEADER.pack(
                        _DATA, flags, DATA_HEADER_SIZE + cut_size, tsn, stream_id, seq, ppid
                    )
                )
            group.append(piece_data)
            if cut_size & 3:
                group.append(PADDING[-cut_size & 3])
            placed += 1
            burst_left -= size
            if not ending:
                continue
            # The message is done (Outbox._finish ran). Outbox._pick would now take the
            # next message of this stream when it is the only stream queued; that one
            # continues here when cut would only number it (no lifetime, no
            # retransmission limit, not abandoned, not started).
            turns = outbox._turns
            queue = stream.queue
            if not queue or not turns or len(turns) != 1 or turns[0] != stream_id:
                break
            following = queue[0]
            if (
                following.abandoned
                or following.expires_at is not None
                or following.max_retransmits is not None
                or following.offset
                or following.seq is not None
            ):
                break
            message = following
            numbered = False  # (its sequence number comes with its first cut)
            unordered = 0 if message.ordered else FLAG_UNORDERED
            data = memoryview(message.data)
            length = len(data)
            offset = 0
            next_fsn = message.next_fsn
            ppid = message.ppid
            partial = timed = False
        message.offset = offset
        message.next_fsn = next_fsn
        stream.buffered = buffered
        outbox.total = unsent
        rq.next_tsn = next_tsn
        rq.next_unwrapped = next_unwrapped
        rq.flight_size = flight
        rq.peer_rwnd = peer_rwnd
        if placed:
            rq.last_sent = now
            if rq.t3_deadline is None:
                rq.t3_deadline = now + rq.rto.rto  # (send_piece's, for the first chunk)
        self._stats.chunks_out += placed  # (_produce counts the packets' other chunks)
        return group, room, burst_left

    def _take_retransmissions(
        self, now: float, room: int, full: int, groups: list[list[_Piece]]
    ) -> tuple[list[_Piece], int]:
        """The retransmission part of :meth:`_take_data`: chunks marked by fast
        retransmit (one packet's worth, even beyond cwnd), then the others within cwnd
        and Max.Burst. Full packets go to ``groups``; returns the packet being filled
        and the room left in it (new data may join it)."""
        rq = self._retransmit
        assert rq is not None
        group: list[_Piece] = []

        def place(chunk: SentChunk) -> None:
            """Put ``chunk`` in the current packet, or start the next one when it does
            not fit, and mark it sent."""
            nonlocal group, room
            size = chunk.size
            if size > room:
                if group:
                    groups.append(group)
                    group = []
                room = full
            room -= size
            group.append(self._encode_data(chunk))
            self._stats.chunks_out += 1  # (_produce counts only the control chunks)
            rq.sent(chunk, now)

        budget = full
        for chunk in rq.retransmission_candidates(fast_only=True):
            size = chunk.size
            if size > budget:
                break
            budget -= size
            place(chunk)
        for chunk in rq.retransmission_candidates():
            if rq.flight_size >= rq.cc.cwnd or self._burst_left <= 0:
                break
            place(chunk)
            self._burst_left -= chunk.size
        return group, room

    def _encode_data(self, chunk: SentChunk) -> bytes:
        message = chunk.message
        beginning = chunk.beginning
        flags = (
            (0 if message.ordered else FLAG_UNORDERED)
            | (FLAG_BEGINNING if beginning else 0)
            | (FLAG_ENDING if chunk.ending else 0)
        )
        seq = message.seq
        assert seq is not None
        interleaved = self.interleaving
        # I-DATA: the PPID on a first fragment, the FSN on the others (RFC 8260 2.1)
        last = message.ppid if beginning or not interleaved else chunk.fsn
        return encode_data_chunk(
            interleaved, flags, chunk.tsn, message.stream_id, seq, last, chunk.data
        )
