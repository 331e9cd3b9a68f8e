"""SctpTransport: runs the sans-I/O SCTP Association on an asyncio event loop.

The sibling of :mod:`webrtc_secure.dtls_transport`: it owns the one timer the
association asks for (``get_timer``), flushes the association's packets after every
input through a send callable (the DTLS transport's ``send``: one SCTP packet, one
DTLS application-data record, RFC 8261; or ``send_many``, which takes all the packets
of a flush in one call and checks the DTLS timer once), and hands the association's
events to the data channel :class:`~webrtc_secure.datachannel.ChannelManager`. A
channel's send whose data can only wait (cwnd or Max.Burst used up: the association's
``send`` returns False) is not flushed: the SACK that opens the window is.

Latency and batching. A received DATA chunk reaches the channel's ``message``
handlers in the loop iteration that read its datagram, before this transport returns.
What the handlers send leaves then too, in one flush after all the packet's events,
bundled with the SACK the packet made due (a send from inside a handler does not flush
on its own; the flush after the events takes it). Once the association is up, a
packet that made nobody answer (a SACK to take in, DATA whose handlers sent nothing)
is not flushed at once: one flush is queued with ``call_soon`` for the rest of the
iteration, so all the datagrams read in one iteration are answered together: one SACK
for all the DATA, one burst of new data for all the SACKs. uvloop reads up to 32
datagrams of a socket per iteration: there this halved the CPU per megabyte of
1200-byte messages and stopped the loopback losses (one burst per packet overflowed
the receiving socket). asyncio's own loops read one datagram a socket per readiness
callback, which left nothing to coalesce; the ICE transport now reads up to 32 there
too (:func:`webrtc_secure.ice.batch_reads`), so ``coalesce`` is on by default on both
loops (asyncio, 1200-byte messages, medians of 9 rounds: CPU per megabyte 85 -> 59
ms, the 221 chunks retransmitted to socket overflow per run -> 0; batching without
coalescing was worse than neither: 129 ms). On asyncio the queued flush runs in the
loop's next step.
Coalescing never holds a SACK back past ``max_packets_per_sack`` (4) DATA packets of
one batch, nor one that reports gaps, nor one made due before a second packet
arrived (a duplicate, a filled gap; RFC 9260 6.7): those leave at once. One SACK for
a whole batch made the peer's window hang on one datagram: under 15 % loss both
ways, Chromium (a window outstanding, its gap reports too few for fast retransmit)
waited on its T3 timer again and again, and an exchange of twelve 64-250 KB
messages did not finish in 64 s (two runs); with these limits it took 9.1-9.5 s
(three runs; with ``coalesce`` off, a SACK every second packet: 9.5-14.1 s). In a
clean 1200-byte stream the receiver then sends 2,308 SACKs for 7,693 packets instead
of 1,539 (every second packet: 3,847).
A send from anywhere else (a task, a timer) that can go now flushes before it returns,
and so do the answers of the INIT / COOKIE exchange.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from webrtc_secure.datachannel import ChannelManager
from webrtc_secure.dtls_transport import loop_clock
from webrtc_secure.errors import ConnectionClosed, SctpError, WebrtcSecureError
from webrtc_secure.sctp import Association
from webrtc_secure.sctp.events import (
    AssociationClosed,
    AssociationEstablished,
    BufferedAmountLow,
    Event,
    IncomingStreamsReset,
    MessageReceived,
    OutgoingStreamsReset,
)

logger = logging.getLogger(__name__)


def deliver_event(channels: ChannelManager, event: Event) -> None:
    """Hand one association event to the channels (the whole mapping, shared by the
    transport and the sans-I/O tests)."""
    if isinstance(event, MessageReceived):
        channels.message_received(event.stream_id, event.ppid, event.data)
    elif isinstance(event, BufferedAmountLow):
        channels.buffered_amount_low(event.stream_id)
    elif isinstance(event, IncomingStreamsReset):
        channels.incoming_streams_reset(event.stream_ids)
    elif isinstance(event, OutgoingStreamsReset):
        channels.outgoing_streams_reset(event.stream_ids)
    elif isinstance(event, AssociationEstablished):
        channels.association_established()
    elif isinstance(event, AssociationClosed):
        channels.association_closed(event.error)


class SctpTransport:
    """Drives one Association for one ChannelManager; callbacks run on the loop thread."""

    def __init__(
        self,
        association: Association,
        send: Callable[[bytes], None],
        channels: ChannelManager,
        *,
        on_established: Callable[[], None] | None = None,
        on_closed: Callable[[WebrtcSecureError | None], None] | None = None,
        send_many: Callable[[list[bytes]], int] | None = None,
    ) -> None:
        self.association = association
        self.channels = channels
        self._send = send
        #: the packets of one flush in one call (DtlsTransport.send_many: one timer
        #: check and one hand-off for them all); returns how many were refused
        self._send_many = send_many
        self.on_established = on_established
        self.on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        #: the association's clock: the loop's (bound once, called several times a
        #: packet; time.monotonic itself on asyncio's loops: dtls_transport.loop_clock)
        self.now: Callable[[], float] = loop_clock(self._loop)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._established: asyncio.Future[None] = self._loop.create_future()
        self._servicing = False
        #: a flush was asked for during event dispatch (a handler sent)
        self._asked = False
        #: coalesce: a packet nobody answered is flushed once, later in the iteration.
        #: On by default: uvloop reads up to 32 datagrams of a socket per iteration, and
        #: so does the ICE transport on asyncio (webrtc_secure.ice.batch_reads).
        self.coalesce = True
        #: while coalescing, a SACK leaves at once after this many DATA packets of one
        #: batch (2 is RFC 9260 6.2's every second packet, as without coalescing)
        self.max_packets_per_sack = 4
        self._deferred: asyncio.Handle | None = None
        self._up = False  # established (and not closed since)
        self._closed = False
        self.send_errors = 0

    @property
    def is_established(self) -> bool:
        return self._established.done() and self._established.exception() is None

    def connect(self) -> None:
        """Send our INIT (both sides do; the association resolves the collision)."""
        self.association.connect(self.now())
        self.service()

    def start_snap(self, remote_init_chunk: bytes) -> None:
        """SNAP: establish from the remote's ``a=sctp-init`` INIT and ours, no INIT
        exchange. An INIT that does not parse ends the association with that error (the
        remote expects SNAP, so falling back to the INIT exchange would not help)."""
        try:
            self.association.start_snap(remote_init_chunk, self.now())
        except SctpError as exc:
            logger.warning("SNAP: the remote's a=sctp-init is unusable: %s", exc)
            self._finish(exc)
            return
        self.service()

    async def wait_established(self, timeout: float | None = None) -> None:
        """Return once the association is established; its error if it closes first."""
        await asyncio.wait_for(asyncio.shield(self._established), timeout)

    def datagram_received(self, data: bytes) -> None:
        """One DTLS application-data record: one SCTP packet. Its events are handed
        out now; the flush is now if a handler asked for one, else queued once for the
        rest of this loop iteration (see the module docstring)."""
        if self._closed:
            return
        association = self.association
        association.receive_datagram(data, self.now())
        if self._servicing or not (self.coalesce and self._up):
            # re-entered from a dispatch (the outer flush follows), or the INIT / COOKIE
            # exchange, whose answers go at once (nothing there is worth batching)
            self.service()
            return
        if not association._events:
            # no event (a SACK, a message's first fragment; the association's queue
            # read directly, no next_event call): nobody to ask, the flush is queued,
            # unless a SACK is due at once (see _sack_due)
            if association._sack_now and self._sack_due(association):
                self.service()
            elif self._deferred is None and not self._closed:
                self._deferred = self._loop.call_soon(self._deferred_service)
            return
        self._servicing = True
        self._asked = False
        events = association._events
        message_received = self.channels.message_received
        try:
            # next_event() while the queue is not empty (not until it says None: one
            # call less per packet); a handler's send may queue more, taken here too
            while events:
                event = association.next_event()
                if type(event) is MessageReceived:  # _dispatch's first case, inline
                    message_received(event.stream_id, event.ppid, event.data)
                elif event is not None:
                    self._dispatch(event)
        finally:
            self._servicing = False
        if self._asked or (association._sack_now and self._sack_due(association)):
            self.service()  # a handler answered, or a SACK is due: out now
        elif self._deferred is None and not self._closed:
            self._deferred = self._loop.call_soon(self._deferred_service)

    def _sack_due(self, association: Association) -> bool:
        """With a SACK due (``_sack_now``), whether it goes now rather than with the
        iteration's queued flush: at once while gaps remain (fast retransmit counts one
        report per SACK), when it was made due before a second packet arrived (a
        duplicate, a filled gap: RFC 9260 6.7), and at least every
        ``max_packets_per_sack`` DATA packets of one batch (see the module docstring)."""
        unacked = association._data_packets_unacked
        if unacked < 2 or unacked >= self.max_packets_per_sack:
            return True
        receive = association._receive
        return receive is not None and bool(receive.tracker._above)  # gaps

    def service(self) -> None:
        """Hand the association's events out, send what it queued, re-arm the timer.

        Events go first and the flush after them, so what the handlers sent leaves in
        the same packets as the SACK this input made due. The channel manager calls
        this after every send: from inside event dispatch (a handler that sends) it
        returns at once, and the flush after the events takes that data too; from
        anywhere else (a user's task) it flushes now. Sending can raise events of its
        own (the buffered amount fell low), so this goes on until both are quiet."""
        if self._servicing:
            self._asked = True
            return
        self._servicing = True
        association = self.association
        try:
            first = True
            while True:
                self._asked = False
                # the association's queue read for emptiness (None until its first
                # event), next_event() only for an event that is there: most flushes
                # have none before or after, and after a send's there is its
                # BufferedAmountLow (_dispatch's second case, inline: once per message)
                while association._events:
                    event = association.next_event()
                    if type(event) is BufferedAmountLow:
                        self.channels.buffered_amount_low(event.stream_id)
                    elif event is not None:
                        self._dispatch(event)
                # after events the flush itself raised (a send's BufferedAmountLow,
                # once per message), flush again only when datagrams_to_send would
                # return packets: replies queued, or a handler asked for a flush (the
                # channels ask after everything that queues output: a send, a close, a
                # DCEP message; that lands here, in _asked) and _output_due (the test
                # _produce makes first) says there is something; most handlers sent
                # nothing, and then _produce has nothing new since the last flush
                if (
                    not first
                    and not association._replies
                    and not (self._asked and association._output_due())
                ):
                    break
                first = False
                self._flush()
                if not association._events:
                    break
        finally:
            self._servicing = False
        self._reschedule()

    def shutdown(self) -> None:
        """Graceful SHUTDOWN (best effort: the DTLS close follows right after)."""
        if self._closed:
            return
        try:
            self.association.shutdown(self.now())
        except WebrtcSecureError as exc:
            logger.debug("SCTP shutdown: %s", exc)
        self._flush()

    def abort(self, error: WebrtcSecureError | None) -> None:
        """The path under the association is gone (DTLS closed): stop here, close the
        channels; idempotent."""
        if self._closed:
            return
        self._finish(error)

    # --- internals ----------------------------------------------------------------------

    def _flush(self) -> None:
        packets = self.association.datagrams_to_send(self.now())
        if not packets:
            return
        if self._send_many is not None:
            try:
                refused = self._send_many(packets)
            except OSError as exc:
                refused = len(packets)
                logger.debug("SCTP packets not sent: %s", exc)
            if refused:
                # the DTLS layer closed under us; its own close path reports that
                self.send_errors += refused
                logger.debug("SCTP: %d packets not sent (DTLS not connected)", refused)
            return
        send = self._send
        for packet in packets:
            try:
                send(packet)
            except (OSError, WebrtcSecureError) as exc:
                # the DTLS layer closed under us; its own close path reports that
                self.send_errors += 1
                logger.debug("SCTP packet not sent: %s", exc)

    def _dispatch(self, event: Event) -> None:
        if type(event) is MessageReceived:  # the per-packet case first
            self.channels.message_received(event.stream_id, event.ppid, event.data)
        elif type(event) is BufferedAmountLow:  # once per message sent (deliver_event's)
            self.channels.buffered_amount_low(event.stream_id)
        elif isinstance(event, AssociationEstablished):
            self._up = True
            if not self._established.done():
                self._established.set_result(None)
            self.channels.association_established()
            if self.on_established is not None:
                self.on_established()
        elif isinstance(event, AssociationClosed):
            self._finish(event.error)
        else:
            deliver_event(self.channels, event)

    def _deferred_service(self) -> None:
        self._deferred = None
        if self._closed:
            return
        association = self.association
        if association._events or association._replies or association._output_due():
            self.service()
        else:
            # nothing to hand out or send (most packets that made no SACK due): what
            # service() would still do, the timer the packet may have moved
            self._reschedule()

    def _finish(self, error: WebrtcSecureError | None) -> None:
        self._closed = True
        self._up = False
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._established.done():
            self._established.set_exception(
                error or ConnectionClosed("the SCTP association closed before it was up")
            )
            self._established.exception()  # retrieved: nobody may be waiting
        self.channels.association_closed(error)
        if self.on_closed is not None:
            self.on_closed(error)

    def _reschedule(self) -> None:
        # Lazy: a timer already armed at or before the deadline stays (when it fires
        # early, handle_timer finds nothing due and we re-arm); the association's
        # deadline moves with nearly every packet (delayed SACK, T3), and a TimerHandle
        # per packet would cost more than the occasional early wake-up.
        when = None if self._closed else self.association.get_timer()
        if when is None:
            return
        armed = self._timer_when
        if self._timer is not None and armed is not None and armed <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        if self._closed:
            return
        self.association.handle_timer(self.now())
        self.service()


__all__ = ["SctpTransport", "deliver_event"]
