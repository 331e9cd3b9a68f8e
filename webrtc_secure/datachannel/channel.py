"""Data channels (RFC 8831) over one SCTP association, opened with DCEP (RFC 8832).

:class:`DataChannel` is what a user holds: the browser's ``RTCDataChannel`` (and
aiortc's) with typed attributes, pyee events (``open``, ``message``, ``close``,
``error``, ``bufferedamountlow``) and two awaitables (:meth:`DataChannel.wait_open`,
:meth:`DataChannel.drain`).

:class:`ChannelManager` maps channels to SCTP streams. It talks to an object with the
association's sending face (:class:`AssociationFace`: ``send``, ``buffered_amount``,
``set_buffered_amount_low_threshold``, ``reset_streams``) and is told what the
association reported through plain method calls (``association_established``,
``message_received``, ``incoming_streams_reset``, ...), so it depends on no event
classes and no I/O: the asyncio driver (``sctp_transport.py``) feeds it and flushes
the association's packets after each call through the ``flush`` callable.

Stream ids follow RFC 8832 6: the DTLS client opens channels on even ids and the
DTLS server on odd ones. Closing follows RFC 8831 6.7: the closer resets its
outgoing stream; the other side, seeing the incoming reset, resets its own; a channel
is closed when both directions are reset, and only then is its id free again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from pyee.asyncio import AsyncIOEventEmitter

from webrtc_secure.datachannel.dcep import (
    ChannelType,
    DataChannelAck,
    DataChannelOpen,
    Ppid,
    Priority,
    parse_dcep,
)
from webrtc_secure.dispatch import Returning, SnapshotDispatch, registry_readable
from webrtc_secure.errors import (
    ChannelIdInUse,
    ChannelMessageTooLarge,
    InvalidChannelParameters,
    InvalidChannelState,
    MalformedDcepMessage,
    WebrtcSecureError,
)

if TYPE_CHECKING:
    from webrtc_secure.trace import Trace

logger = logging.getLogger(__name__)

#: RFC 8831 6.6: stream id 65535 is reserved
MAX_STREAM_ID = 65534
#: what we accept and advertise in ``a=max-message-size``
DEFAULT_LOCAL_MAX_MESSAGE_SIZE = 262144
#: RFC 8841 6: the remote's limit when its description carries no ``a=max-message-size``
DEFAULT_REMOTE_MAX_MESSAGE_SIZE = 65536
#: what send() takes as binary
_BINARY = (bytes, bytearray, memoryview)
#: the one byte an empty message is sent as (RFC 8831 6.6)
EMPTY_PAYLOAD = b"\x00"
#: closed channels kept for stats(): a remote opening and closing channels in a loop
#: must not grow our memory
MAX_CLOSED_KEPT = 64


class AssociationFace(Protocol):
    """The part of :class:`webrtc_secure.sctp.Association` the channels use."""

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
    ) -> bool | None: ...

    def buffered_amount(self, stream_id: int) -> int: ...

    def set_buffered_amount_low_threshold(self, stream_id: int, threshold: int) -> None: ...

    def reset_streams(self, stream_ids: Sequence[int], now: float) -> None: ...


class ReadyState(str, Enum):
    """RTCDataChannelState."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_OPEN = ReadyState.OPEN


@dataclass(slots=True)
class ChannelStats:
    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0


class DataChannel(SnapshotDispatch):
    """One data channel. Create it with ``peer.create_data_channel(...)``; channels the
    remote opens arrive through ``peer.on("datachannel", ...)``.

    Events: ``open``; ``message`` (``str`` for string messages, ``bytes`` for binary);
    ``bufferedamountlow`` (the buffered amount fell to the threshold); ``error``
    (a :class:`WebrtcSecureError`, e.g. the association failed) and ``close``.
    """

    #: "message" handlers run without pyee's emit (a class attribute: no per-channel
    #: memory; a test may set ``_direct_dispatch`` on one channel)
    _direct: bool = registry_readable(AsyncIOEventEmitter())
    #: the "message" handlers as pyee's registry holds them, taken on the first
    #: message after any change to the registry (None: take them again); a class
    #: default, so a channel that never receives keeps no copy
    _message_handlers: tuple[Callable[[Any], object], ...] | None = None

    def __init__(
        self,
        manager: ChannelManager,
        label: str,
        *,
        ordered: bool,
        max_retransmits: int | None,
        max_packet_life_time: int | None,
        protocol: str,
        negotiated: bool,
        id: int | None,
        priority: int,
    ) -> None:
        super().__init__()
        self._manager = manager
        self._label = label
        self._ordered = ordered
        self._max_retransmits = max_retransmits
        self._max_packet_life_time = max_packet_life_time
        self._protocol = protocol
        self._negotiated = negotiated
        self._id = id
        self._priority = priority
        #: what Association.send's defaults give (ordered, fully reliable): the
        #: per-message send passes no keywords then
        self._reliable_ordered = (
            ordered and max_retransmits is None and max_packet_life_time is None
        )
        self._state = ReadyState.CONNECTING
        self._threshold = 0
        #: we sent DATA_CHANNEL_OPEN and no ACK came yet: send ordered (RFC 8832 6)
        self._awaiting_ack = False
        self._open_pending = False  # the "open" event is queued but has not run
        self._user_data_queued = False  # send() since the last bufferedamountlow
        self._reset_out = False  # our outgoing stream is reset (or the reset is asked)
        self._reset_out_done = False
        self._reset_in_done = False
        self._partial: list[bytes] = []  # deprecated PPID 52/54 pieces
        self._partial_size = 0
        self._partial_overflow = False
        self._waiters: list[asyncio.Future[None]] = []
        self._stats = ChannelStats()

    # --- attributes ---------------------------------------------------------------------

    @property
    def label(self) -> str:
        return self._label

    @property
    def id(self) -> int | None:
        """The SCTP stream id; None until the DTLS role decides it."""
        return self._id

    @property
    def ordered(self) -> bool:
        return self._ordered

    @property
    def protocol(self) -> str:
        return self._protocol

    @property
    def negotiated(self) -> bool:
        return self._negotiated

    @property
    def max_retransmits(self) -> int | None:
        return self._max_retransmits

    @property
    def max_packet_life_time(self) -> int | None:
        """Milliseconds."""
        return self._max_packet_life_time

    @property
    def priority(self) -> int:
        return self._priority

    @property
    def ready_state(self) -> str:
        """``"connecting"``, ``"open"``, ``"closing"`` or ``"closed"``."""
        return self._state.value

    @property
    def buffered_amount(self) -> int:
        """Bytes handed to ``send`` that the association has not yet delivered."""
        if self._state is _OPEN:
            # an open channel is registered under its id (opening registers it first;
            # only _finish_channel unregisters it, and that closes it): the
            # association's count with none of ChannelManager._buffered_amount's
            # look-ups (a streaming sender asks after every send)
            association = self._manager._association
            if association is not None:
                return association.buffered_amount(self._id)  # type: ignore[arg-type]
        return self._manager._buffered_amount(self)

    @property
    def buffered_amount_low_threshold(self) -> int:
        return self._threshold

    @buffered_amount_low_threshold.setter
    def buffered_amount_low_threshold(self, value: int) -> None:
        if not isinstance(value, int) or not 0 <= value < 2**32:
            raise InvalidChannelParameters("buffered_amount_low_threshold must be 0 .. 2**32-1")
        self._threshold = value
        self._manager._set_threshold(self)

    # --- actions ------------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Queue one message: ``str`` goes as a string, ``bytes`` as binary.

        Raises InvalidChannelState unless the channel is open, and ChannelMessageTooLarge
        (nothing queued) for a message above the remote's ``a=max-message-size``.
        """
        if type(data) is bytes:  # the common case first: no copy, no conversion
            payload = data
            ppid = _BINARY_PPID if payload else Ppid.BINARY_EMPTY
        elif isinstance(data, str):
            payload = data.encode("utf-8")
            ppid = Ppid.STRING if payload else Ppid.STRING_EMPTY
        elif isinstance(data, _BINARY):
            payload = bytes(data)
            ppid = Ppid.BINARY if payload else Ppid.BINARY_EMPTY
        else:
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        if self._state is not _OPEN:
            raise InvalidChannelState(f"channel {self._label!r} is {self._state.value}")
        manager = self._manager
        limit = manager.remote_max_message_size
        size = len(payload)
        if limit and size > limit:
            raise ChannelMessageTooLarge(
                f"message of {size} bytes; the remote accepts at most {limit}"
            )
        # set first: the association may report the buffer low while flushing
        self._user_data_queued = True
        if self._reliable_ordered:
            # ChannelManager._send's first case, inline (once per message): the
            # association's defaults, given by position
            association = manager._association
            assert association is not None and self._id is not None  # open: attached
            due = association.send(self._id, ppid, payload or EMPTY_PAYLOAD, manager._now())
            if due is not False:  # False: it waits for the SACK whose flush sends it
                manager._flush()
        else:
            manager._send(self, ppid, payload or EMPTY_PAYLOAD)
        stats = self._stats
        stats.messages_sent += 1
        stats.bytes_sent += size

    def close(self) -> None:
        """Close the channel (RFC 8831 6.7): ``close`` fires once both sides reset the
        stream. Idempotent."""
        if self._state in (ReadyState.CLOSING, ReadyState.CLOSED):
            return
        self._manager._close(self)

    async def wait_open(self) -> None:
        """Return once the channel is open; InvalidChannelState if it closes first."""
        while self._state is ReadyState.CONNECTING:
            await self._wait()
        if self._state is not ReadyState.OPEN:
            raise InvalidChannelState(f"channel {self._label!r} is {self._state.value}")

    async def drain(self) -> None:
        """Return once ``buffered_amount`` is at or below ``buffered_amount_low_threshold``
        (asyncio's ``StreamWriter.drain`` for a channel); InvalidChannelState if the
        channel closes with data still buffered."""
        while self.buffered_amount > self._threshold:
            await self._wait()
            if self._state is ReadyState.CLOSED:
                raise InvalidChannelState(f"channel {self._label!r} closed with data buffered")

    def stats(self) -> dict[str, Any]:
        s = self._stats
        return {
            "label": self._label,
            "id": self._id,
            "state": self._state.value,
            "protocol": self._protocol,
            "ordered": self._ordered,
            "negotiated": self._negotiated,
            "messages_sent": s.messages_sent,
            "bytes_sent": s.bytes_sent,
            "messages_received": s.messages_received,
            "bytes_received": s.bytes_received,
            "buffered_amount": self.buffered_amount,
        }

    def __repr__(self) -> str:
        return f"<DataChannel {self._label!r} id={self._id} {self._state.value}>"

    # --- internals ----------------------------------------------------------------------

    async def _wait(self) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(future)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def _set_state(self, state: ReadyState) -> None:
        self._state = state
        self._wake()

    def _deliver(self, event: str, *args: Any) -> None:
        """Emit to the user's handlers; a raising handler is logged and reported as an
        ``error`` event and never reaches the association."""
        try:
            self.emit(event, *args)
        except Exception as exc:
            logger.exception("data channel %r: handler for %r raised", self._label, event)
            self._emit_error(exc)

    def _deliver_message(self, value: str | bytes) -> None:
        """``_deliver("message", value)`` without pyee's ``emit`` (once per message).

        ``emit`` takes a lock, builds a default dict and a list, and runs each handler
        through a wrapper. This calls the handlers as pyee's registry holds them (a
        ``once`` handler is its wrapper, which removes itself), from a snapshot taken
        again after every change to the registry (:meth:`_add_event_handler` and the
        two removals drop it), as the peer's ``_deliver_media`` does for RTP: a
        handler added or removed while messages flow, or by a handler, takes effect
        from the next message, as with ``emit``. A handler that raises is logged and
        reported as an "error" event, as by ``_deliver``, and the others still run;
        one that returns an awaitable (an ``async def`` handler) is handed to pyee's
        own runner, which schedules it and reports its failure as "error"
        (:func:`webrtc_secure.dispatch.run_handlers`, inline).
        """
        handlers = self._message_handlers
        if handlers is None:
            if not self._direct:
                self._deliver("message", value)
                return
            registered = self._events.get("message")
            handlers = self._message_handlers = tuple(registered.values()) if registered else ()
        for handler in handlers:
            try:
                result = handler(value)
            except Exception as exc:
                self._message_handler_failed(exc)
                continue
            if result is not None:
                self._emit_run(Returning(result), (), {})

    def _drop_handler_snapshots(self) -> None:
        self._message_handlers = None

    def _message_handler_failed(self, exc: Exception) -> None:
        logger.exception(
            "data channel %r: handler for 'message' raised", self._label, exc_info=exc
        )
        self._emit_error(exc)

    def _emit_error(self, error: BaseException) -> None:
        if self.listeners("error"):
            with contextlib.suppress(Exception):
                self.emit("error", error)


# Plain ints for the per-message comparisons (an IntEnum member lookup and compare
# costs ~80 ns more each; the values are the same)
_DCEP_PPID = int(Ppid.DCEP)
_BINARY_PPID = int(Ppid.BINARY)
_STRING_PPID = int(Ppid.STRING)
_WHOLE_PPIDS = (_BINARY_PPID, _STRING_PPID)

#: what a raw message becomes: the value given to "message" handlers
_DELIVERED_EMPTY: dict[int, str | bytes] = {Ppid.STRING_EMPTY: "", Ppid.BINARY_EMPTY: b""}


class ChannelManager:
    """All data channels of one peer connection; see the module docstring.

    ``now`` gives the association's clock, ``flush`` makes the driver send what the
    association queued and re-arm its timer, ``call_soon`` defers user-visible events
    (``open``, ``close``) to a later loop iteration as browsers do, and
    ``on_datachannel`` announces channels the remote opened.
    """

    #: a :class:`webrtc_secure.trace.Trace` to record DCEP messages into (set by the
    #: owner; None: nothing recorded)
    trace: Trace | None = None

    def __init__(
        self,
        *,
        now: Callable[[], float],
        flush: Callable[[], None],
        call_soon: Callable[[Callable[[], None]], Any],
        on_datachannel: Callable[[DataChannel], None],
        local_max_message_size: int = DEFAULT_LOCAL_MAX_MESSAGE_SIZE,
        remote_max_message_size: int = DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
    ) -> None:
        self._now = now
        self._flush = flush
        self._call_soon = call_soon
        self._on_datachannel = on_datachannel
        #: 0 means no limit (RFC 8841 6)
        self.local_max_message_size = local_max_message_size
        self.remote_max_message_size = remote_max_message_size
        self._association: AssociationFace | None = None
        self._established = False
        self._finished = False
        self._is_dtls_client: bool | None = None
        self._channels: dict[int, DataChannel] = {}
        self._pending: list[DataChannel] = []  # created before the DTLS role was known
        self._all: list[DataChannel] = []  # channels not closed, in creation order
        # the last closed channels (stats), made on the first close: an empty deque
        # allocates its first 64-slot block
        self._closed: deque[DataChannel] | None = None
        self.closed_total = 0
        self.dropped: Counter[str] = Counter()
        self.opened_local = 0
        self.opened_remote = 0

    @property
    def channels(self) -> list[DataChannel]:
        """Channels not yet closed, in creation order."""
        return list(self._all)

    @property
    def established(self) -> bool:
        return self._established

    # --- user side ----------------------------------------------------------------------

    def create_data_channel(
        self,
        label: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
        protocol: str = "",
        negotiated: bool = False,
        id: int | None = None,
        priority: int = Priority.LOW,
    ) -> DataChannel:
        """A new channel (see ``SecurePeer.create_data_channel``)."""
        if self._finished:
            raise InvalidChannelState("the association is closed")
        _check_parameters(
            label, protocol, max_retransmits, max_packet_life_time, negotiated, id, priority
        )
        if id is not None and (id in self._channels or any(c._id == id for c in self._pending)):
            raise ChannelIdInUse(f"stream id {id} is already used by a channel")
        channel = DataChannel(
            self,
            label,
            ordered=ordered,
            max_retransmits=max_retransmits,
            max_packet_life_time=max_packet_life_time,
            protocol=protocol,
            negotiated=negotiated,
            id=id,
            priority=int(priority),
        )
        self._all.append(channel)
        if self._is_dtls_client is None:
            self._pending.append(channel)
            return channel
        if channel._id is None:
            channel._id = self._allocate_id()
        self._register(channel)
        if self._established and channel._state is ReadyState.CONNECTING:
            self._start(channel)
            self._flush()
        return channel

    # --- driver side --------------------------------------------------------------------

    def attach(
        self,
        association: AssociationFace,
        *,
        is_dtls_client: bool,
        now: Callable[[], float] | None = None,
        flush: Callable[[], None] | None = None,
    ) -> None:
        """The association exists (after the DTLS handshake): ids for waiting channels.

        ``now`` and ``flush``, when given, replace the ones the manager was built with:
        the driver's own clock and flush, bound once the loop runs (every send calls
        both; a clock that looks the running loop up pays a ``getpid`` system call
        in ``asyncio.get_running_loop`` each time)."""
        self._association = association
        self._is_dtls_client = is_dtls_client
        if now is not None:
            self._now = now
        if flush is not None:
            self._flush = flush
        pending, self._pending = self._pending, []
        for channel in pending:
            if channel._state is ReadyState.CLOSED:
                continue
            if channel._id is None:
                try:
                    channel._id = self._allocate_id()
                except ChannelIdInUse as exc:
                    self._finish_channel(channel, exc)
                    continue
            self._register(channel)

    def association_established(self) -> None:
        """AssociationEstablished: open every channel waiting for it."""
        if self._established or self._finished:
            return
        self._established = True
        for channel in list(self._channels.values()):
            if channel._state is ReadyState.CONNECTING:
                self._start(channel)
        self._flush()

    def association_closed(self, error: WebrtcSecureError | None) -> None:
        """AssociationClosed (or the peer closing): every channel is closed."""
        self._finished = True
        self._established = False
        for channel in list(self._all):
            if channel._state is not ReadyState.CLOSED:
                self._finish_channel(channel, error)
        self._channels.clear()
        self._pending.clear()

    def message_received(self, stream_id: int, ppid: int, data: bytes) -> None:
        """MessageReceived: one whole SCTP user message."""
        if self.local_max_message_size and len(data) > self.local_max_message_size:
            self.dropped["message_too_large"] += 1
            return
        if ppid == _DCEP_PPID:
            self._dcep_received(stream_id, data)
            return
        channel = self._channels.get(stream_id)
        if channel is None:
            self.dropped["no_channel"] += 1
            return
        value: str | bytes
        if ppid in _WHOLE_PPIDS:
            if channel._partial:
                pieces, channel._partial = [*channel._partial, data], []
                channel._partial_size = 0
                data = b"".join(pieces)
            if channel._partial_overflow:
                channel._partial_overflow = False
                self.dropped["partial_message_too_large"] += 1
                return
            if ppid == _STRING_PPID:
                try:
                    value = data.decode("utf-8")
                except UnicodeDecodeError:
                    self.dropped["invalid_utf8"] += 1
                    return
            else:
                value = data
        elif ppid == Ppid.BINARY_PARTIAL or ppid == Ppid.STRING_PARTIAL:
            self._partial_received(channel, data)
            return
        elif ppid in _DELIVERED_EMPTY:
            value = _DELIVERED_EMPTY[ppid]
            data = b""
        else:
            self.dropped["unknown_ppid"] += 1
            return
        stats = channel._stats
        stats.messages_received += 1
        stats.bytes_received += len(data)
        handlers = channel._message_handlers
        if handlers is None or channel._open_pending:
            if channel._open_pending:
                self._call_soon(lambda: channel._deliver_message(value))
            else:
                channel._deliver_message(value)  # takes the snapshot (or emits)
            return
        # DataChannel._deliver_message's loop, inline (once per message): the same
        # handlers, errors and awaitables
        for handler in handlers:
            try:
                result = handler(value)
            except Exception as exc:
                channel._message_handler_failed(exc)
                continue
            if result is not None:
                channel._emit_run(Returning(result), (), {})

    def incoming_streams_reset(self, stream_ids: Sequence[int]) -> None:
        """IncomingStreamsReset: the remote closed these channels; we reset ours too."""
        to_reset: list[int] = []
        for stream_id in stream_ids:
            channel = self._channels.get(stream_id)
            if channel is None:
                continue
            channel._reset_in_done = True
            channel._partial, channel._partial_size = [], 0
            if not channel._reset_out:
                channel._reset_out = True
                channel._set_state(ReadyState.CLOSING)
                to_reset.append(stream_id)
            self._maybe_closed(channel)
        if to_reset and self._association is not None:
            try:
                self._association.reset_streams(to_reset, self._now())
            except WebrtcSecureError as exc:
                # the association is going away: the channels end with it
                logger.debug("cannot reset streams %s: %s", to_reset, exc)
                for stream_id in to_reset:
                    if (channel := self._channels.get(stream_id)) is not None:
                        self._finish_channel(channel, None)
                return
            self._flush()

    def outgoing_streams_reset(self, stream_ids: Sequence[int]) -> None:
        """OutgoingStreamsReset: our reset request for these streams was performed."""
        for stream_id in stream_ids:
            channel = self._channels.get(stream_id)
            if channel is not None and channel._reset_out:
                channel._reset_out_done = True
                self._maybe_closed(channel)

    def buffered_amount_low(self, stream_id: int) -> None:
        """BufferedAmountLow."""
        channel = self._channels.get(stream_id)
        if channel is None:
            return
        if channel._waiters:  # (drain() waits: once per message sent, nobody waits)
            channel._wake()
        # the association counts DCEP bytes too; the event is about the user's sends
        if not channel._user_data_queued:
            return
        channel._user_data_queued = False
        if channel._open_pending:
            self._call_soon(lambda: channel._deliver("bufferedamountlow"))
        elif not channel._direct or channel._events.get("bufferedamountlow"):
            # (nobody listening: emit would call nothing; once per message sent)
            channel._deliver("bufferedamountlow")

    def stats(self) -> dict[str, Any]:
        return {
            "channels": [c.stats() for c in (*(self._closed or ()), *self._all)],
            "closed_total": self.closed_total,
            "opened_local": self.opened_local,
            "opened_remote": self.opened_remote,
            "dropped": dict(self.dropped),
        }

    # --- internals ----------------------------------------------------------------------

    def _allocate_id(self) -> int:
        first = 0 if self._is_dtls_client else 1
        for stream_id in range(first, MAX_STREAM_ID + 1, 2):
            if stream_id not in self._channels:
                return stream_id
        raise ChannelIdInUse("every stream id of our parity is in use")

    def _register(self, channel: DataChannel) -> None:
        assert channel._id is not None
        if channel._id in self._channels:
            self._finish_channel(channel, ChannelIdInUse(f"stream id {channel._id} is in use"))
            return
        self._channels[channel._id] = channel
        if channel._threshold:
            self._set_threshold(channel)

    def _start(self, channel: DataChannel) -> None:
        """The association is up: send DATA_CHANNEL_OPEN (unless negotiated) and open."""
        assert channel._id is not None and self._association is not None
        if not channel._negotiated:
            reliability = channel._max_retransmits
            if reliability is None:
                reliability = channel._max_packet_life_time
            message = DataChannelOpen(
                ChannelType.of(
                    ordered=channel._ordered,
                    max_retransmits=channel._max_retransmits,
                    max_packet_life_time=channel._max_packet_life_time,
                ),
                channel._priority,
                reliability or 0,
                channel._label,
                channel._protocol,
            )
            try:
                self._association.send(channel._id, Ppid.DCEP, message.serialize(), self._now())
            except WebrtcSecureError as exc:
                self._finish_channel(channel, exc)
                return
            channel._awaiting_ack = True
            self.opened_local += 1
            if self.trace is not None:
                self.trace.dcep(self._now(), "send", message, channel._id)
        self._open(channel)

    def _open(self, channel: DataChannel) -> None:
        channel._set_state(ReadyState.OPEN)
        # deferred, as the browser queues a task: a handler added right after
        # create_data_channel() (or in the "datachannel" handler) still hears it;
        # messages arriving meanwhile queue behind it, so "open" always comes first
        channel._open_pending = True

        def announce() -> None:
            channel._open_pending = False
            channel._deliver("open")

        self._call_soon(announce)

    def _dcep_received(self, stream_id: int, data: bytes) -> None:
        try:
            message = parse_dcep(data)
        except MalformedDcepMessage as exc:
            logger.debug("stream %d: %s", stream_id, exc)
            self.dropped["dcep_malformed"] += 1
            return
        if self.trace is not None:
            self.trace.dcep(self._now(), "recv", message, stream_id)
        if isinstance(message, DataChannelAck):
            channel = self._channels.get(stream_id)
            if channel is None or channel._negotiated or not channel._awaiting_ack:
                self.dropped["dcep_unexpected_ack"] += 1
                return
            channel._awaiting_ack = False
            return
        self._open_received(stream_id, message)

    def _open_received(self, stream_id: int, message: DataChannelOpen) -> None:
        if not self._established or self._association is None:
            self.dropped["dcep_open_before_established"] += 1
            return
        if stream_id in self._channels:
            self.dropped["dcep_open_on_used_stream"] += 1
            return
        # the remote opens on its own parity: odd when we are the DTLS client
        if stream_id % 2 == (0 if self._is_dtls_client else 1) or stream_id > MAX_STREAM_ID:
            self.dropped["dcep_open_wrong_parity"] += 1
            return
        channel = DataChannel(
            self,
            message.label,
            ordered=message.ordered,
            max_retransmits=message.max_retransmits,
            max_packet_life_time=message.max_packet_life_time,
            protocol=message.protocol,
            negotiated=False,
            id=stream_id,
            priority=message.priority,
        )
        try:
            self._association.send(stream_id, Ppid.DCEP, DataChannelAck().serialize(), self._now())
        except WebrtcSecureError as exc:
            logger.debug("stream %d: cannot acknowledge DATA_CHANNEL_OPEN: %s", stream_id, exc)
            self.dropped["dcep_ack_failed"] += 1
            return
        if self.trace is not None:
            self.trace.dcep(self._now(), "send", DataChannelAck(), stream_id)
        self._all.append(channel)
        self._channels[stream_id] = channel
        self.opened_remote += 1
        self._open(channel)
        self._flush()
        try:
            self._on_datachannel(channel)
        except Exception:
            logger.exception("datachannel handler raised")

    def _partial_received(self, channel: DataChannel, data: bytes) -> None:
        if channel._partial_overflow:
            return
        channel._partial_size += len(data)
        limit = self.local_max_message_size
        if limit and channel._partial_size > limit:
            # bounded: drop what was kept and skip up to the final piece
            channel._partial, channel._partial_size = [], 0
            channel._partial_overflow = True
            return
        channel._partial.append(data)

    def _send(self, channel: DataChannel, ppid: int, payload: bytes) -> None:
        association = self._association
        assert association is not None and channel._id is not None
        if channel._reliable_ordered:
            # the association's defaults (ordered, no retransmission or lifetime
            # limit), given by position: a reliable ordered channel needs no keywords
            due = association.send(channel._id, ppid, payload, self._now())
        else:
            lifetime = channel._max_packet_life_time
            due = association.send(
                channel._id,
                ppid,
                payload,
                self._now(),
                # RFC 8832 6: until the ACK, unordered messages could overtake the OPEN
                ordered=channel._ordered or channel._awaiting_ack,
                max_retransmits=channel._max_retransmits,
                lifetime=None if lifetime is None else lifetime / 1000.0,
            )
        if due is not False:
            # False: the message waits for a SACK to open cwnd / Max.Burst, and the
            # flush after that SACK sends it (a flush now would send nothing)
            self._flush()

    def _close(self, channel: DataChannel) -> None:
        association = self._association
        if (
            channel._id is None
            or association is None
            or not self._established
            or channel._id not in self._channels
        ):
            # nothing was ever opened on the wire: closed at once
            self._finish_channel(channel, None)
            return
        channel._set_state(ReadyState.CLOSING)
        channel._reset_out = True
        channel._partial, channel._partial_size = [], 0
        try:
            association.reset_streams([channel._id], self._now())
        except WebrtcSecureError as exc:
            # e.g. the peer did not negotiate RE-CONFIG: close this end only
            logger.debug("cannot reset stream %d: %s", channel._id, exc)
            self._finish_channel(channel, None)
            return
        self._flush()

    def _maybe_closed(self, channel: DataChannel) -> None:
        if channel._reset_in_done and channel._reset_out_done:
            self._finish_channel(channel, None)

    def _finish_channel(self, channel: DataChannel, error: WebrtcSecureError | None) -> None:
        if channel._state is ReadyState.CLOSED:
            return
        if channel._id is not None and self._channels.get(channel._id) is channel:
            del self._channels[channel._id]
        if channel in self._pending:
            self._pending.remove(channel)
        if channel in self._all:
            self._all.remove(channel)
        closed = self._closed
        if closed is None:
            closed = self._closed = deque(maxlen=MAX_CLOSED_KEPT)
        closed.append(channel)
        self.closed_total += 1
        channel._set_state(ReadyState.CLOSED)

        def announce() -> None:
            if error is not None:
                channel._emit_error(error)
            channel._deliver("close")

        self._call_soon(announce)

    def _buffered_amount(self, channel: DataChannel) -> int:
        association = self._association
        if association is None or channel._id is None or channel._id not in self._channels:
            return 0
        if channel._state is ReadyState.CLOSED:
            return 0
        return association.buffered_amount(channel._id)

    def _set_threshold(self, channel: DataChannel) -> None:
        association = self._association
        if association is not None and channel._id is not None and channel._id in self._channels:
            association.set_buffered_amount_low_threshold(channel._id, channel._threshold)


def _check_parameters(
    label: str,
    protocol: str,
    max_retransmits: int | None,
    max_packet_life_time: int | None,
    negotiated: bool,
    id: int | None,
    priority: int,
) -> None:
    for name, text in (("label", label), ("protocol", protocol)):
        if not isinstance(text, str):
            raise InvalidChannelParameters(f"{name} must be a str")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidChannelParameters(f"{name} is not encodable as UTF-8") from None
        if size > 0xFFFF:
            raise InvalidChannelParameters(f"{name} is longer than 65535 bytes of UTF-8")
    if max_retransmits is not None and max_packet_life_time is not None:
        raise InvalidChannelParameters("give max_retransmits or max_packet_life_time, not both")
    for name, value in (
        ("max_retransmits", max_retransmits),
        ("max_packet_life_time", max_packet_life_time),
    ):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF
        ):
            raise InvalidChannelParameters(f"{name} must be an int in 0 .. 2**32-1")
    if negotiated and id is None:
        raise InvalidChannelParameters("a negotiated channel needs the id agreed out of band")
    if id is not None and (
        not isinstance(id, int) or isinstance(id, bool) or not 0 <= id <= MAX_STREAM_ID
    ):
        raise InvalidChannelParameters(f"id must be an int in 0 .. {MAX_STREAM_ID}")
    if not isinstance(priority, int) or not 0 <= priority <= 0xFFFF:
        raise InvalidChannelParameters("priority must be an int in 0 .. 65535")


__all__ = [
    "DEFAULT_LOCAL_MAX_MESSAGE_SIZE",
    "DEFAULT_REMOTE_MAX_MESSAGE_SIZE",
    "MAX_STREAM_ID",
    "AssociationFace",
    "ChannelManager",
    "ChannelStats",
    "DataChannel",
    "ReadyState",
]
