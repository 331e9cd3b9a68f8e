"""The small-message path of an association: one whole message in one packet, both ways.

An interactive data channel (a chat, a game, request / answer, the round-trip
benchmark) sends one small message at a time and gets its answer before the next:
each packet is [SACK] + one DATA / I-DATA chunk that carries a whole message, and
each SACK acknowledges everything outstanding. The general paths handle that case
through the machinery that streams and lossy links need (the send loop's cutting and
packing, the SACK's gap and miss walk, reassembly); here it is done in one function
per direction, with the same outcome:

* :func:`send_small` (from ``Association.datagrams_to_send``): the association is
  established, idle (nothing outstanding, no retransmission, no control chunk, no
  FORWARD-TSN or stream reset due) and one reliable message is queued that fits whole
  in the first packet beside a SACK without gap blocks. It numbers the message, makes
  its one SentChunk, and builds the one packet (the SACK first, when one is due), with
  every counter, the T3 start, the Max.Burst budget, the buffered amount and its
  ``BufferedAmountLow`` event as the general path leaves them.
* :func:`receive_small` (from ``Association.receive_datagram``): a packet that is
  exactly a SACK (no gap blocks, no duplicates) acknowledging the one chunk
  outstanding, and / or one whole (B and E) DATA / I-DATA chunk at the cumulative TSN
  + 1 for a stream with nothing waiting. It takes the SACK (RTT sample, RTO, cwnd,
  peer window, T3 stop), delivers the message and schedules the SACK (at once every
  second packet, else the delayed-ack timer), as the general path would.

Both test everything they depend on first and return False, before any state
changes, for anything else (the general path then takes it): every check of the
general path stays (verification tag, ports, the checksum unless zero checksum was
negotiated, chunk lengths, the TSN window, the stream count, the chunk kind, the
message size, the receive buffer). tests/test_sctp_small_path.py runs the same
traffic with and without this module and compares every datagram, event, counter and
the state both ends are left in.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import TYPE_CHECKING

from .chunks import (
    DATA_CHUNK_HEADER,
    DATA_HEADER_SIZE,
    FLAG_BEGINNING,
    FLAG_ENDING,
    FLAG_UNORDERED,
    IDATA_CHUNK_HEADER,
    IDATA_HEADER_SIZE,
    PADDING,
    ChunkType,
)
from .events import BufferedAmountLow, MessageReceived
from .packet import COMMON_HEADER_SIZE, packet_crc
from .receive_queue import _Stream

if TYPE_CHECKING:
    from .association import Association

logger = logging.getLogger(__name__)

_COMMON_HEADER = struct.Struct("!HHII")  # ports, verification tag, checksum
# the common header and a SACK chunk without gap blocks or duplicates (type, flags,
# length, cum TSN, a_rwnd, gap blocks, duplicates) in one struct
_HEADER_SACK = struct.Struct("!HHIIBBHIIHH")
# a DATA / I-DATA chunk's header and fields: type, flags, length, TSN, stream, SSN,
# PPID / type, flags, length, TSN, stream, reserved, MID, PPID (on a B fragment)
_DATA_CHUNK = struct.Struct("!BBHIHHI")
_IDATA_CHUNK = struct.Struct("!BBHIHHII")
_CRC_FIELD = struct.Struct("<I")
_SACK = int(ChunkType.SACK)
_DATA = int(ChunkType.DATA)
_I_DATA = int(ChunkType.I_DATA)
_WHOLE = FLAG_BEGINNING | FLAG_ENDING
_SACK_SIZE = 16
_SACK_PACKET_SIZE = COMMON_HEADER_SIZE + _SACK_SIZE  # (once, not per packet)
_new_object = object.__new__
# BufferedAmountLow(stream_id) and MessageReceived(stream_id, ppid, data) without the
# frozen __init__: events.message_received, inline (one call less per message)
_set_low_stream = vars(BufferedAmountLow)["stream_id"].__set__
_set_stream_id = vars(MessageReceived)["stream_id"].__set__
_set_ppid = vars(MessageReceived)["ppid"].__set__
_set_data = vars(MessageReceived)["data"].__set__


def send_small(assoc: Association, now: float) -> bool:
    """``_produce`` for an idle established association with one small reliable
    message queued (see the module docstring); False, with nothing changed, when the
    general path must build the packets. The caller checked the state is ESTABLISHED."""
    outbox = assoc._outbox
    if not outbox.total or outbox._current is not None:
        return False  # nothing new to send (most flushes), or a message being cut
    rq = assoc._retransmit
    if (
        rq is None
        or rq.chunks  # something outstanding (or abandoned, waiting for FORWARD-TSN)
        or rq._pending_retransmit
        or rq.timed_outstanding
        or assoc._finished
        or assoc._control
        or assoc._forward_pending
        or assoc._reset_waiting
        or assoc.trace is not None
        or outbox.low
        or outbox.expired
    ):
        return False
    turns = outbox._turns
    if not turns or len(turns) != 1:
        return False
    stream_id = turns[0]
    stream = outbox._streams[stream_id]
    queue = stream.queue
    if not queue or len(queue) != 1:
        return False
    message = queue[0]
    if (
        message.abandoned
        or message.expires_at is not None
        or message.max_retransmits is not None
        or message.offset
        or message.seq is not None
        or message.next_fsn
    ):
        return False
    receive = assoc._receive
    sack_due = assoc._sack_now or assoc._sack_pending
    config = assoc.config
    mtu = config.max_packet_size
    room = mtu - COMMON_HEADER_SIZE
    if sack_due:
        if receive is None:
            return False
        tracker = receive.tracker
        if tracker._above or tracker._duplicates:
            return False  # a SACK with gap blocks or duplicates: the general path
        room -= _SACK_SIZE
    interleaved = assoc.interleaving
    header = IDATA_HEADER_SIZE if interleaved else DATA_HEADER_SIZE
    payload = message.data
    size = len(payload)
    if size > ((room - header) & ~3):
        return False  # more than the first packet's piece: cut by the general path
    # Everything checked: from here on, what _produce / _take_data / _take_rest do
    cc = rq.cc
    last_sent = rq.last_sent
    if last_sent is not None and cc.cwnd > 4 * cc.mtu and now - last_sent >= rq.rto.rto:
        rq.restart_after_idle(now)  # 7.2.1 (it sets last_sent, set again below)
    # Outbox.cut: the message's sequence number, then its removal from the queue
    if message.ordered:
        seq = stream.next_ssn
        stream.next_ssn = (seq + 1) & (0xFFFFFFFF if interleaved else 0xFFFF)
        flags = _WHOLE
    else:
        flags = _WHOLE | FLAG_UNORDERED
        if interleaved:
            seq = stream.next_unordered_mid
            stream.next_unordered_mid = (seq + 1) & 0xFFFFFFFF
        else:
            seq = 0  # RFC 9260 6.6: the SSN of an unordered message is ignored
    message.seq = seq
    message.offset = size
    message.next_fsn = 1
    queue.popleft()
    stream.queue = None
    turns.popleft()
    before = stream.buffered
    stream.buffered = after = before - size
    outbox.total -= size
    # its TSN and its SentChunk: flight size (empty before), peer window, T3 start
    chunk = rq.send_piece(message, payload, True, True, 0, now)
    tsn = chunk.tsn
    chunk_size = chunk.size
    # the Max.Burst budget, refilled for an empty flight, less this chunk
    assoc._burst_left = config.max_burst * mtu - chunk_size
    if before > stream.threshold >= after:
        # BufferedAmountLow(stream_id), emitted (_emit, inline)
        low = _new_object(BufferedAmountLow)
        _set_low_stream(low, stream_id)
        events = assoc._events
        if events is None:
            events = assoc._events = deque()
        events.append(low)
    # the packet: the SACK first when one is due, then the chunk
    if interleaved:
        head = IDATA_CHUNK_HEADER.pack(
            _I_DATA, flags, IDATA_HEADER_SIZE + size, tsn, stream_id, 0, seq, message.ppid
        )
    else:
        head = DATA_CHUNK_HEADER.pack(
            _DATA, flags, DATA_HEADER_SIZE + size, tsn, stream_id, seq, message.ppid
        )
    if sack_due:
        assert receive is not None
        window = config.receive_window - receive.buffered - assoc._event_bytes
        # the common header (checksum zero for now) and the SACK in one pack
        first = _HEADER_SACK.pack(
            config.local_port,
            config.remote_port,
            assoc._peer_tag,
            0,
            _SACK,
            0,
            _SACK_SIZE,
            receive.tracker.cumulative,
            window if window > 0 else 0,
            0,
            0,
        )
        assoc._sack_now = assoc._sack_pending = False
        assoc._ack_deadline = None
        assoc._data_packets_unacked = 0
        assoc._stats.chunks_out += 2
    else:
        first = _COMMON_HEADER.pack(config.local_port, config.remote_port, assoc._peer_tag, 0)
        assoc._stats.chunks_out += 1
    packet = b"".join((first, head, payload, PADDING[-size & 3]))
    if not assoc.zero_checksum:
        # CRC32c over the packet with the field zero, put in the field (as serialize_chunks)
        packet = b"".join((packet[:8], _CRC_FIELD.pack(packet_crc(packet)), packet[12:]))
    assoc._replies.append(packet)
    return True


def receive_small(assoc: Association, data: bytes, now: float) -> bool:
    """The packet ``data`` when it is [SACK acknowledging the one chunk outstanding]
    and / or [one whole DATA / I-DATA chunk at the cumulative TSN + 1] (see the module
    docstring); False, with nothing changed, for anything else. The caller checked
    the state is ESTABLISHED and counted the packet."""
    end = len(data)
    if end < _SACK_PACKET_SIZE:
        return False  # (the unpack below reads 28 octets; a DATA packet has 29 or more)
    # The SACKs of a stream, refused first in a few steps: more than one chunk is
    # outstanding. (Association.receive_datagram does not call it for a first chunk
    # that is DATA / I-DATA but not a whole message; the tests below refuse those too.)
    rq = assoc._retransmit
    if rq is None:
        return False
    if data[12] == _SACK and rq.next_unwrapped != rq.cumulative_unwrapped + 2:
        return False
    (
        source,
        destination,
        tag,
        checksum,
        type_,
        flags,
        length,
        cumulative,
        a_rwnd,
        gaps,
        dups,
    ) = _HEADER_SACK.unpack_from(data)
    config = assoc.config
    if (
        tag != assoc._local_tag
        or destination != config.local_port
        or source != config.remote_port
        or assoc._finished
        or assoc.trace is not None
        or assoc._reset_waiting  # (the general path's _after_receive would act)
    ):
        return False
    receive = assoc._receive
    if receive is None:
        return False
    # What the packet holds: a SACK without gap blocks or duplicates first, then
    # perhaps one DATA / I-DATA chunk; or that chunk alone
    pos = COMMON_HEADER_SIZE
    sack_chunk = None
    if type_ == _SACK:
        if flags or length != _SACK_SIZE or gaps or dups:
            return False
        # it must acknowledge the one chunk outstanding, first sent once and reliable,
        # outside fast recovery and with no FORWARD-TSN point ahead
        # (the queue holds TSNs above the cumulative one and below the next: one there,
        # as the first test above found)
        cum = rq.cumulative_unwrapped + 1
        if (
            cumulative != (cum & 0xFFFFFFFF)
            or rq._pending_retransmit
            or rq.advanced_unwrapped != rq.cumulative_unwrapped
            or rq.cc.fast_recovery_exit is not None
        ):
            return False
        sack_chunk = rq.chunks.get(cum)
        if (
            sack_chunk is None
            or sack_chunk.transmissions != 1
            or not sack_chunk.in_flight
            or sack_chunk.acked
            or sack_chunk.abandoned
            or sack_chunk.retransmit
            or sack_chunk.message.chunks
            or sack_chunk.message.expires_at is not None
            or rq.flight_size != sack_chunk.size
        ):
            return False
        pos += _SACK_SIZE
    if pos != end:
        # one DATA / I-DATA chunk, whole, padded to the packet's end (after a SACK, or
        # alone: a packet that is not a SACK is never one chunk header long)
        interleaved = assoc.interleaving
        if interleaved:
            start = pos + IDATA_HEADER_SIZE
            if end <= start:
                return False
            type_, flags, length, tsn, stream_id, _reserved, seq, ppid = _IDATA_CHUNK.unpack_from(
                data, pos
            )
            if type_ != _I_DATA:
                return False
        else:
            start = pos + DATA_HEADER_SIZE
            if end <= start:
                return False
            type_, flags, length, tsn, stream_id, seq, ppid = _DATA_CHUNK.unpack_from(data, pos)
            if type_ != _DATA:
                return False
        stop = pos + length
        if (
            (flags & ~FLAG_UNORDERED) != _WHOLE  # B and E, no I flag, nothing unknown
            or stop <= start  # (no user data: the general path refuses it)
            or end != pos + ((length + 3) & ~3)
        ):
            return False
        tracker = receive.tracker
        size = stop - start
        window = config.receive_window - assoc._event_bytes
        if window < 0:
            window = 0
        buffered = receive.buffered + size
        unordered = flags & FLAG_UNORDERED
        if (
            tsn != (tracker.cumulative + 1) & 0xFFFFFFFF
            or tracker._above
            or tracker.max_window < 1
            or stream_id >= assoc._inbound_streams
            or size > receive.max_message_size
            or (
                (receive.stored >= receive.max_stored or buffered > window)
                and buffered > 2 * window
            )
            or receive._ready
            or receive.dropped_messages
            or receive._partials
            or receive._fragments
            or assoc._deferred_reset is not None
        ):
            return False
        stream = None
        if not unordered:
            stream = receive._streams.get(stream_id)
            if stream is None:
                if seq:
                    return False  # ahead of its stream: it would wait
            elif seq != stream.next_seq or stream.waiting is not None:
                return False
    if (checksum or not assoc.accept_zero_checksum) and not _crc_ok(data):
        return False  # the general path counts the mismatch
    # Everything checked: the SACK's effects, then the chunk's
    try:
        stats = assoc._stats
        if sack_chunk is not None:
            # _sack_received for a SACK that acknowledges sack_chunk, the one chunk
            # outstanding, cumulatively (checked above): it leaves the queue and the
            # flight, gives an RTT sample (sent once, after the last T3 expiry), grows
            # cwnd as CongestionControl.on_ack would, and stops T3
            unwrapped = sack_chunk.unwrapped
            del rq.chunks[unwrapped]
            chunk_size = sack_chunk.size
            sack_chunk.in_flight = False
            rq.flight_size = 0
            rq.cumulative_unwrapped = rq.advanced_unwrapped = unwrapped
            first_sent = sack_chunk.first_sent
            if first_sent > rq._last_timeout:
                rq.rto.observe(now - first_sent)
            cc = rq.cc
            mtu = cc.mtu
            cwnd = cc.cwnd
            fully_used = chunk_size + mtu > cwnd
            if cwnd <= cc.ssthresh:
                if fully_used:
                    cc.cwnd = cwnd + (chunk_size if chunk_size < mtu else mtu)  # slow start
            elif fully_used and cc.partial_bytes_acked + chunk_size >= cwnd:
                cc.cwnd = cwnd + mtu  # congestion avoidance (7.2.2)
            cc.partial_bytes_acked = 0  # the flight is empty (6.3.2 R2)
            rq.peer_rwnd = a_rwnd
            rq.t3_deadline = None
            assoc._burst_left = config.max_burst * config.max_packet_size
            assoc._errors = 0
            if pos == end:  # the SACK alone
                stats.chunks_in += 1
                return True
            stats.chunks_in += 2
        else:
            stats.chunks_in += 1
        receive.window = window
        tracker.cumulative_unwrapped += 1
        tracker.cumulative = tsn
        if stream is not None:
            stream.next_seq = (seq + 1) & (0xFFFFFFFF if interleaved else 0xFFFF)
        elif not unordered:
            stream = receive._streams[stream_id] = _Stream()
            stream.next_seq = 1
        message = _new_object(MessageReceived)
        _set_stream_id(message, stream_id)
        _set_ppid(message, ppid)
        _set_data(message, data[start:stop])
        assoc._sack_pending = True
        # _deliver: the message is the event
        events = assoc._events
        if events is None:
            events = assoc._events = deque()
        events.append(message)
        stats.messages_in += 1
        stats.bytes_in += size
        assoc._event_bytes += size
        # the delayed-ack rule (RFC 9260 6.2): at once every second packet
        unacked = assoc._data_packets_unacked + 1
        assoc._data_packets_unacked = unacked
        if unacked >= 2:
            assoc._sack_now = True
        elif assoc._ack_deadline is None:
            assoc._ack_deadline = now + config.delayed_ack
    except Exception:  # never out of the engine: counted, as on the general paths
        logger.exception("SCTP association: internal error handling a packet")
        assoc._stats.dropped["internal_error"] += 1
    return True


def _crc_ok(data: bytes) -> bool:
    """The packet's CRC32c verifies (checked unless it is zero and zero checksum was
    negotiated, RFC 9653, as ``parse_packet`` checks)."""
    return bool(packet_crc(data) == _CRC_FIELD.unpack_from(data, 8)[0])
