"""DtlsTransport: runs the sans-I/O DtlsConnection on an asyncio event loop.

It owns the one timer the engine asks for (``get_timer``), flushes outgoing datagrams
through a send callable after every input, and turns engine events into callbacks
and an awaitable handshake. The transport below (UDP socket, ICE connection) only has
to call :meth:`datagram_received` and provide ``send`` (and, optionally,
``send_batch``, which takes the records of one :meth:`send_many` in one call).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from webrtc_secure.dtls import (
    ApplicationData,
    ConnectionClosed,
    DtlsConnection,
    Event,
    HandshakeComplete,
    State,
)
from webrtc_secure.errors import ConnectionClosed as ConnectionClosedError
from webrtc_secure.errors import HandshakeTimeout, WebrtcSecureError

logger = logging.getLogger(__name__)


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The loop's clock (what ``call_at`` deadlines are in) as the cheapest callable:
    ``time.monotonic`` itself where the loop's ``time()`` is asyncio's own (a Python
    method that calls it, one more frame per reading: the shells read the clock
    several times per datagram), else the loop's bound ``time`` (uvloop's is C, with
    a clock of its own)."""
    if getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class DtlsTransport:
    """Drives one DtlsConnection; callbacks run on the event loop thread."""

    # one per peer for the connection's life
    __slots__ = (
        "_closed",
        "_handshake_done",
        "_loop",
        "_now",
        "_send",
        "_send_batch",
        "_timer",
        "connection",
        "on_closed",
        "on_data",
        "on_handshake",
    )

    def __init__(
        self,
        connection: DtlsConnection,
        send: Callable[[bytes], None],
        *,
        on_data: Callable[[bytes], None] | None = None,
        on_closed: Callable[[WebrtcSecureError | None], None] | None = None,
        on_handshake: Callable[[], None] | None = None,
        send_batch: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self.connection = connection
        self._send = send
        #: the records of one send_many in one call, in order, instead of ``send``
        #: for each: it puts every one on the wire and handles (logs) a transport
        #: error on one itself, as the loop over ``send`` here does
        self._send_batch = send_batch
        self.on_data = on_data
        self.on_closed = on_closed
        self.on_handshake = on_handshake
        self._loop = asyncio.get_running_loop()
        #: the loop's clock, bound once (loop_clock)
        self._now = loop_clock(self._loop)
        self._timer: asyncio.TimerHandle | None = None
        self._handshake_done: asyncio.Future[None] = self._loop.create_future()
        self._closed = False

    @property
    def is_connected(self) -> bool:
        return self.connection.state == State.CONNECTED

    async def handshake(self, timeout: float | None = None) -> None:
        """Run the handshake to completion; raises the engine's typed error on failure."""
        self.connection.connect(self._now())
        self._service()
        try:
            await asyncio.wait_for(asyncio.shield(self._handshake_done), timeout)
        except asyncio.TimeoutError:
            error = HandshakeTimeout(f"DTLS handshake did not complete within {timeout:g} s")
            self.abort(error)
            raise error from None

    def datagram_received(self, data: bytes) -> None:
        """Feed a datagram that the demultiplexer classified as DTLS."""
        if self._closed:
            return
        connection = self.connection
        content = connection.receive_application_data(data, self._now())
        if content is not None:
            # the connected fast path (once per record): the record's content, and
            # nothing queued (no datagram, no event, no timer changed) to ask about
            on_data = self.on_data
            if on_data is not None:
                on_data(content)
            if self._timer is not None:
                # what on_data did (a send) or an earlier send may have moved a timer
                # that is armed; an unarmed one was None at the end of every call
                # here (each re-arms or checks it) and this record left it so
                self._rearm(connection.get_timer())
            return
        # anything else (the handshake, an ACK, a record behind a queued event): the
        # engine's answers go first, then the events, then the timer
        self._service()

    def send(self, data: bytes) -> None:
        """Send application data; raises ConnectionClosed when not connected."""
        self.connection.send(data)
        self._sent()

    def send_many(self, datagrams: list[bytes]) -> int:
        """:meth:`send` for several records (SCTP's packets of one flush): each is one
        application_data record, as by :meth:`send`; the datagrams go out after the
        last one is protected, in order, and the timer is checked once. Returns how
        many the connection refused (see DtlsConnection.send_many: a refusal ends the
        batch)."""
        # under DTLS 1.3 the connection protects a batch together (one AES-ECB call
        # for all the record number masks); connected, with nothing queued before
        # the batch and nothing for the engine to decide, the records come straight
        # back (no outbox, no datagrams_to_send, no timer to check: seal_many changes
        # none), else the connection queues them and decides
        records = self.connection.seal_many(datagrams)
        if records is None:
            refused = self.connection.send_many(datagrams)
            self._sent()
            return refused
        batch = self._send_batch
        if batch is not None:
            batch(records)
            return 0
        send = self._send
        for record in records:
            try:
                send(record)
            except OSError as exc:  # as _flush: a transport error must not kill the engine
                logger.warning("DTLS send failed: %s", exc)
        return 0

    def key_update(self, request_peer_update: bool = True) -> bool:
        """DTLS 1.3: update our sending keys, and ask the peer to update its own when
        ``request_peer_update`` (see DtlsConnection.key_update)."""
        started = self.connection.key_update(request_peer_update)
        self._service()
        return started

    def close(self) -> None:
        """Send close_notify (if connected) and stop the timer; idempotent."""
        if self._closed:
            return
        self.connection.close()
        self._service()
        self._stop()

    # --- internals ----------------------------------------------------------------------

    def _service(self) -> None:
        connection = self.connection
        self._flush()
        while (event := connection.next_event()) is not None:
            if type(event) is ApplicationData:  # once per record: the common case first
                on_data = self.on_data
                if on_data is not None:
                    on_data(event.data)
            else:
                self._dispatch(event)
        self._rearm(connection.get_timer())

    def _rearm(self, when: float | None) -> None:
        """_reschedule for ``when``, without cancelling and re-creating a handle for
        nothing: a connected engine has no timer for most records."""
        timer = self._timer
        if when is None and timer is None:
            return
        if timer is not None:
            timer.cancel()
            self._timer = None
        if when is not None and not self._closed:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _sent(self) -> None:
        """After records were handed to the connection: out with them, and arm the
        timer if sending started one."""
        self._flush()
        if self._timer is None and self.connection.get_timer() is not None:
            # DTLS 1.3 started a KeyUpdate (a key near its limit): it waits for an ACK
            self._reschedule()

    def _flush(self) -> None:
        # (one send each: the handshake's flights, alerts, ACKs, records queued behind
        # them; send_batch is for send_many's records, the data's own flushes)
        send = self._send
        for datagram in self.connection.datagrams_to_send(self._now()):
            try:
                send(datagram)
            except OSError as exc:  # a transport error must not kill the engine
                logger.warning("DTLS send failed: %s", exc)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, HandshakeComplete):
            if self.on_handshake is not None:
                self.on_handshake()
            if not self._handshake_done.done():
                self._handshake_done.set_result(None)
        elif isinstance(event, ApplicationData):
            if self.on_data is not None:
                self.on_data(event.data)
        elif isinstance(event, ConnectionClosed):
            error = event.error
            if not self._handshake_done.done():
                self._handshake_done.set_exception(
                    error or ConnectionClosedError("closed during the handshake")
                )
                # the awaiting coroutine may already be gone (cancelled)
                self._handshake_done.exception()
            self._stop()
            if self.on_closed is not None:
                self.on_closed(error)

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.connection.get_timer()
        if when is not None and not self._closed:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.connection.handle_timer(self._now())
        self._service()

    def abort(self, error: WebrtcSecureError) -> None:
        """End the association now (the path under it is gone): a pending
        ``handshake()`` raises ``error``; idempotent."""
        if self._closed:
            return
        if not self._handshake_done.done():
            self._handshake_done.set_exception(error)
            self._handshake_done.exception()
        self.connection.close()
        self._flush()
        self._stop()

    def _stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
