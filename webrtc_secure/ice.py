"""ICE (aioice) behind an ``asyncio.DatagramTransport`` face.

SecurePeer's protocol stack only knows ``DatagramProtocol``/``DatagramTransport``, so
the same SecureProtocol runs over a plain UDP socket or over a nominated ICE pair.

:class:`IceConnection` is an aioice ``Connection`` whose ``connect()`` returns as soon
as the check list completes (every component has a nominated pair), instead of after
the 20 ms pacing sleep (RFC 8445's Ta) that was pending when the pair got nominated.
aioice's own ``connect()`` keeps running in a task that this class supervises: it
still paces checks while the check list runs, cancels the remaining checks and starts
consent freshness (RFC 7675) at its end, exactly as it would for a direct caller.

Consent freshness is this class's own :meth:`IceConnection.query_consent`: aioice sends
each consent check once and gives up on consent after six unanswered ones in a row, so
at 30 % loss each way (a check and its answer both arrive with 0.49) a healthy path lost
consent in about 5 % of 30 s windows per endpoint (measured: 10 % of a session's, as
either endpoint's expiry ends it). Here each check is a STUN transaction retransmitted
on STUN's schedule (RFC 8489 6.2.1, aioice's 0.5 s RTO: copies at 0, 0.5, 1.5 and 3.5 s,
all before the next check is due 4..6 s later; a path that answers sees one copy), and
consent expires, as RFC 7675 5.1 words it, 30 s after the last response, not after a
count of failures. ``tests/test_ice_consent.py`` measures both through a lossy relay.
On the nominated pair none of it goes through aioice's STUN codec or transactions:
:mod:`webrtc_secure.stun` parses and builds the Binding messages, the peer's checks
are answered in the receive path once authenticated (anything else still goes to
aioice), our own are tracked in a dict and timed by one clock for all connections.
At 1000 pairs that halved the idle fleet's CPU (``benchmarks/scale.py``).

:class:`IceDatagramTransport` carries the media of an established session. Its fast
paths lean on three aioice internals, all isolated here and checked by
``tests/test_ice_fastpath.py``: the ``_nominated`` dict (replaced by one that reports
every change, so the transport can cache the nominated pair), the host
``StunProtocol`` of the nominated pair (whose ``datagram_received`` it wraps, so that
non-STUN datagrams skip aioice's parse attempt, receive queue and ``recv()``), and the
``max_size`` and reader of asyncio's selector datagram transport (:func:`batch_reads`:
up to :data:`MAX_BATCH` datagrams per readiness callback instead of one, each through
the same checks, so that SCTP answers them together), and its socket and send queue
(:func:`direct_sendto`: the socket's own ``sendto`` while asyncio's would call just
that). When any of them is not what this module expects, the transport falls back to
the connection's gate and aioice's public ``sendto``. aioice's two queues (``_queue``,
``_check_list_state``) are replaced by a :class:`_Mailbox` each: what aioice calls on
them, without three deques apiece, and no task per transport parked in ``recv()``.

Both fast paths work the same on uvloop: its ``UDPTransport`` also looks
``datagram_received`` up on the protocol for every datagram, and its ``sendto`` is the
call cached. It needs no counterpart of the receive buffer: uvloop reads into one
loop-wide buffer and copies each datagram out at its own size (measured by
``benchmarks/scale.py``: 0.01 page faults per packet on both loops). Its clock
(``loop.time()``) counts whole milliseconds.

Only the validated path may speak. aioice hands every datagram it cannot parse as STUN
to its receive queue without its source address, from anyone, without bound. Instead,
:class:`IceConnection` puts a gate on each of its sockets' ``StunProtocol`` (the same
instance-attribute technique as the fast path): STUN (first byte 0..3, RFC 7983) still
goes to aioice; anything else is passed on only when it comes from

- the nominated pair's 5-tuple (its local socket and remote address), once there is
  one, whichever of the two paths carries it; or,
- before nomination, a remote address that ICE has validated on that socket (our check
  to it succeeded, or it sent us an authenticated check), into aioice's queue, at most
  :data:`MAX_EARLY_DATAGRAMS` of them (the peer's first DTLS flight may beat our
  transport).

Everything else is dropped and counted in :attr:`IceConnection.dropped`. DTLS, SRTP and
whatever rides in DTLS application data (SCTP) sit above this gate, so none of them
ever sees a datagram from another source.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import json
import logging
import os
import random
import re
import weakref
from asyncio import selector_events
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import aioice
import aioice.candidate
import aioice.ice
import aioice.stun

from webrtc_secure import stun
from webrtc_secure.errors import ConfigurationError, IceError, InvalidStateError, SdpError
from webrtc_secure.sdp import MAX_MEDIA_SECTIONS, check_text, is_token, parse_candidate

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

COMPONENT = 1

#: Receive buffer for the sockets that carry media. asyncio's selector datagram
#: transport reads every datagram into a fresh bytes object of ``max_size`` (256 KiB)
#: and shrinks it: above glibc's mmap threshold that is an mmap and an munmap, two
#: page faults, per packet. 64 KiB stays below the threshold and still holds the
#: largest UDP payload (65507 bytes over IPv4, 65527 over IPv6): nothing is truncated.
RECEIVE_BUFFER = 65536


#: Non-STUN datagrams from validated sources kept (in aioice's queue) until the
#: transport that reads them exists: a DTLS flight is a few datagrams.
MAX_EARLY_DATAGRAMS = 16

#: STUN error codes aioice sends for requests it could not authenticate (RFC 8489
#: 9.1.3), unsigned: anyone can make us send them, so they fit the amplification budget
_UNAUTHENTICATED_ERRORS = (400, 401)

_SUCCEEDED = aioice.ice.CandidatePair.State.SUCCEEDED

#: Retransmissions of each consent check (RFC 7675 checks are STUN transactions): with
#: aioice's 0.5 s RTO the copies go at 0, 0.5, 1.5 and 3.5 s, inside the 4 s before the
#: next check at the earliest. At 30 % loss each way a check then goes unanswered with
#: 0.51^4 = 7 % instead of 51 %, and six in a row (30 s) with 1e-7 instead of 1.8 %.
CONSENT_RETRANSMISSIONS = 3


#: Consent timers fire this late, and treat what falls due this soon as due (s): the
#: resolution of uvloop's clock (whole milliseconds), which asyncio's does not exceed
TIMER_SLACK = 0.001


def limit_receive_buffer(transport: object) -> bool:
    """Shrink asyncio's per-datagram read buffer to :data:`RECEIVE_BUFFER`.

    ``max_size`` is a private attribute of asyncio's selector (and proactor) datagram
    transports; other loops have no such attribute and are left alone. uvloop needs
    none: it receives into one buffer per loop and copies out each datagram's bytes.
    Returns whether the buffer was changed.
    """
    size = getattr(transport, "max_size", None)
    if type(size) is not int or size <= RECEIVE_BUFFER:
        return False
    try:
        transport.max_size = RECEIVE_BUFFER  # type: ignore[attr-defined]
    except AttributeError:  # a read-only attribute of some other transport
        return False
    return True


#: Datagrams read per readiness callback on asyncio's selector datagram transport of
#: the nominated pair (:func:`batch_reads`); uvloop reads up to as many per iteration.
#: A bound, so one busy socket cannot keep the loop from its other callbacks.
MAX_BATCH = 32

#: asyncio's selector datagram transport (a private class; None if it ever goes)
_SELECTOR_DATAGRAM: type | None = getattr(selector_events, "_SelectorDatagramTransport", None)

#: ``fcntl.ioctl`` and ``FIONREAD`` where the platform has them (None: Windows), for the
#: batch reader's question "is another datagram queued?" (:func:`batch_reads`). Read
#: at each call, so a test can put a double here.
_ioctl: Callable[[int, int, bytearray], int] | None
try:
    import fcntl
    import termios

    _ioctl = fcntl.ioctl
    _FIONREAD: int = termios.FIONREAD
except (ImportError, AttributeError):  # pragma: no cover - not on Linux / macOS
    _ioctl = None
    _FIONREAD = 0

#: what FIONREAD writes when the socket holds no datagram (or an empty one first)
_NOTHING_QUEUED = bytes(4)


def batch_reads(transport: object, limit: int = MAX_BATCH) -> Callable[[], None] | None:
    """Make asyncio's selector datagram transport read up to ``limit`` datagrams per
    readiness callback instead of one; returns the new reader, or None (another loop's
    transport, or one not reading) with the transport left alone.

    Every datagram still goes through ``protocol.datagram_received``, looked up afresh
    for each one as asyncio does (so the gate or the fast path's source check sees each
    datagram, in the order the socket queued them); the batch ends early when the socket
    is empty (nothing queued, see below, or ``BlockingIOError``), on a socket error
    (handed to ``error_received`` as asyncio does), or once the transport stops reading
    (closed or paused by what a datagram caused). What
    :meth:`~asyncio.BaseEventLoop.call_soon` queued while the batch ran runs after it, in
    the same iteration: the SCTP transport's one flush for all the batch's packets
    (``coalesce``). :func:`unbatch_reads` undoes it.

    After the first datagram the reader asks the kernel whether another is queued
    (``ioctl(FIONREAD)``: the length of the next datagram on Linux, 0 for none) before
    it reads again: at a message's round trip the socket holds one datagram, and the
    read that finds it empty costs a system call and a ``BlockingIOError`` built,
    raised and caught (about 1.6 us against 0.5 for the ioctl, warm, and several times
    that in a round trip paced at 100 messages/s, cold). A burst pays one ioctl and
    goes on reading until the socket is empty, as before. A zero-length datagram next in
    the queue reads as "nothing queued": it stays for the next readiness callback (the
    socket stays readable: asyncio's selector is level-triggered), as does anything
    past ``limit``.
    """
    if _SELECTOR_DATAGRAM is None or type(transport) is not _SELECTOR_DATAGRAM:
        return None
    t: Any = transport
    if "_read_ready" in vars(t) or not t.is_reading():
        return None
    is_reading = t.is_reading
    # is_reading() is `not self._closing and not self._paused` on this class (through
    # is_closing()): read straight from the two flags after each datagram, two frames
    # fewer per datagram, where the transport has them as instance attributes
    flags = "_closing" in vars(t) and "_paused" in vars(t)

    fd = t._sock_fd
    queued = bytearray(4)  # FIONREAD's answer, written in place

    def read_ready() -> None:
        if t._conn_lost:
            return
        recvfrom = t._sock.recvfrom
        size = t.max_size
        for n in range(limit):
            if n == 1:
                ioctl = _ioctl
                if ioctl is not None:
                    # another datagram queued? (a question, not a read that fails)
                    try:
                        ioctl(fd, _FIONREAD, queued)
                    except OSError:
                        return  # (the socket went; the next read_ready says so)
                    if queued == _NOTHING_QUEUED:
                        return
            try:
                data, addr = recvfrom(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                t._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # as asyncio's own reader does
                t._fatal_error(exc, "Fatal read error on datagram transport")
                return
            t._protocol.datagram_received(data, addr)
            if flags:
                if t._closing or t._paused:
                    return
            elif not is_reading():
                return

    # an instance attribute: resume_reading() registers it too
    t._read_ready = read_ready
    t._loop._add_reader(t._sock_fd, read_ready)
    return read_ready


def direct_sendto(transport: object) -> Callable[[bytes, Any], None]:
    """The nominated pair's send: ``transport.sendto``, except on asyncio's selector
    datagram transport of an unconnected socket, where it is the socket's own
    ``sendto`` whenever asyncio's would call exactly that (nothing queued in the
    transport, data not empty), without the Python frame of asyncio's method (its
    type check, address checks and dict look-up: one per datagram sent). Anything
    else goes to asyncio's ``sendto``, which decides as it always does: data queued
    before (order kept), an empty datagram (not sent), and a socket that would block
    (asyncio tries again, then queues it and waits to write). An OSError from the
    socket goes to the protocol's ``error_received``, as asyncio hands it."""
    send: Callable[[bytes, Any], None] = transport.sendto  # type: ignore[attr-defined]
    if _SELECTOR_DATAGRAM is None or type(transport) is not _SELECTOR_DATAGRAM:
        return send
    t: Any = transport
    buffer = vars(t).get("_buffer")
    extra = getattr(t, "_extra", None)  # (a slot of asyncio.BaseTransport)
    if (
        not isinstance(buffer, collections.deque)  # the queue, one for the transport's life
        or not isinstance(extra, dict)
        or extra.get("peername")  # connected: asyncio calls send(), not sendto()
        or vars(t).get("_address")
    ):
        return send
    sock_sendto = t._sock.sendto

    def sendto(data: bytes, addr: Any) -> None:
        if buffer or not data:
            send(data, addr)
            return
        try:
            sock_sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            send(data, addr)
        except OSError as exc:
            t._protocol.error_received(exc)

    _DIRECT_SENDTO[sendto] = t
    return sendto


#: the transport each :func:`direct_sendto` function sends through
_DIRECT_SENDTO: weakref.WeakKeyDictionary[Callable[[bytes, Any], None], object] = (
    weakref.WeakKeyDictionary()
)


def sending_transport(sendto: Callable[[bytes, Any], None]) -> object | None:
    """The transport a send fast path writes through: the owner of a bound
    ``transport.sendto``, or the transport a :func:`direct_sendto` function was made
    for; None for anything else."""
    owner: object = getattr(sendto, "__self__", None)
    if owner is not None:
        return owner
    return _DIRECT_SENDTO.get(sendto)


def unbatch_reads(transport: object, reader: Callable[[], None]) -> None:
    """Give the transport back asyncio's own reader, if ``reader`` is still its."""
    t: Any = transport
    if vars(t).get("_read_ready") is not reader:
        return
    del t._read_ready
    if t.is_reading():
        t._loop._add_reader(t._sock_fd, t._read_ready)


class _ConsentCheck:
    """One open consent check: a STUN transaction without a future or a task."""

    __slots__ = ("copies", "due", "pair", "request", "started", "wait")

    def __init__(
        self, pair: aioice.ice.CandidatePair, request: bytes, started: float, rto: float
    ) -> None:
        self.pair = pair
        self.request = request
        self.started = started
        #: when the next copy goes (or, after the last, the check times out)
        self.due = started
        #: the wait after the next copy
        self.wait = rto
        self.copies = 0


#: what replaces aioice's ``_early_checks`` deque (64 slots) once connect() has
#: handled them: aioice appends only before, and only reads it then
_NO_EARLY_CHECKS: Any = ()


class _ConsentClock:
    """One loop timer for the consent freshness of every IceConnection on a loop.

    Each connection asks to be woken at one moment (its next check, retransmission or
    consent expiry); the clock keeps those in a heap and the loop holds one timer, for
    the earliest. A timer per connection cost a TimerHandle each (on uvloop with a
    libuv timer of its own, about 0.8 KiB) and a cancel and a new one per answer. A
    connection that re-arms leaves its earlier entry behind: it is skipped when it
    comes up (the connection's ``_consent_wake`` no longer matches). Connections are
    held weakly.
    """

    __slots__ = ("_count", "_firing", "_heap", "_loop", "_timer", "_timer_when")

    _clocks: ClassVar[dict[asyncio.AbstractEventLoop, _ConsentClock]] = {}

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _ConsentClock:
        clock = cls._clocks.get(loop)
        if clock is None:
            # a loop closed with entries still due keeps its clock here until now
            for closed in [other for other in cls._clocks if other.is_closed()]:
                del cls._clocks[closed]
            clock = cls._clocks[loop] = cls(loop)
        return clock

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, weakref.ref[IceConnection]]] = []
        # the loop's timer and the time it was asked for (uvloop's call_at returns a
        # plain Handle, without when(), for a time already past)
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0
        self._count = itertools.count()
        self._firing = False

    def wake(self, connection: IceConnection, when: float) -> None:
        heapq.heappush(self._heap, (when, next(self._count), weakref.ref(connection)))
        if self._firing:
            return  # _fire arms the timer when it is done
        timer = self._timer
        if timer is None or when < self._timer_when:
            if timer is not None:
                timer.cancel()
            self._arm(when)

    def _arm(self, when: float) -> None:
        self._timer_when = when
        self._timer = self._loop.call_at(when + TIMER_SLACK, self._fire)

    @staticmethod
    def _stale(entry: tuple[float, int, weakref.ref[IceConnection]]) -> bool:
        connection = entry[2]()
        return connection is None or connection._consent_wake != entry[0]

    def _fire(self) -> None:
        self._timer = None
        heap = self._heap
        # what falls due within the clock's resolution is due now (TIMER_SLACK)
        soon = self._loop.time() + TIMER_SLACK
        self._firing = True
        try:
            while heap and heap[0][0] <= soon:
                entry = heapq.heappop(heap)
                connection = entry[2]()
                if connection is None or connection._consent_wake != entry[0]:
                    continue
                connection._consent_wake = None
                try:
                    connection._consent_tick()
                except Exception:  # one connection's bug must not stop the others'
                    logger.exception("consent freshness failed")
        finally:
            self._firing = False
        # entries left behind by a re-arm (an answered check's retransmission time)
        # need no wake-up of their own
        while heap and self._stale(heap[0]):
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])
        elif self._clocks.get(self._loop) is self:
            del self._clocks[self._loop]


class _NominatedPairs(dict[int, "aioice.ice.CandidatePair"]):
    """aioice's ``_nominated`` (component -> pair), which reports every change.

    aioice assigns items when a pair gets nominated (also a later renomination by the
    controlling side) and clears the dict on close; every mutating method calls
    ``on_change`` so that a cached nominated pair is never stale.
    """

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__()
        self._on_change = on_change

    def __setitem__(self, key: int, value: aioice.ice.CandidatePair) -> None:
        super().__setitem__(key, value)
        self._on_change()

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        self._on_change()

    def clear(self) -> None:
        super().clear()
        self._on_change()

    def pop(self, *args: Any) -> Any:
        try:
            return super().pop(*args)
        finally:
            self._on_change()

    def popitem(self) -> tuple[int, aioice.ice.CandidatePair]:
        try:
            return super().popitem()
        finally:
            self._on_change()

    def setdefault(self, key: int, default: Any = None) -> Any:
        try:
            return super().setdefault(key, default)
        finally:
            self._on_change()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._on_change()

    def __ior__(self, other: Any) -> _NominatedPairs:  # type: ignore[misc,override]
        super().__ior__(other)
        self._on_change()
        return self


class _Mailbox(Generic[_T]):
    """What aioice uses of an ``asyncio.Queue``, without its three deques.

    aioice keeps two queues per connection for all its life: ``_check_list_state``
    (the check list's outcome: one item, read once by its ``connect()``) and
    ``_queue`` (what ``recv()`` returns: here only the datagrams that arrive before
    the transport, and the None that ``close()`` puts there). An ``asyncio.Queue``
    holds three deques of 64 slots (about 2.3 KiB) from its first moment; this holds a
    list once something waits in it and a list of futures once someone waits for it.

    ``put_nowait`` also tells ``listener``, if any, of each item; when ``listener``
    returns True the item counts as taken and is not kept.
    """

    def __init__(self, listener: Callable[[_T], bool] | None = None) -> None:
        self._items: list[_T] | None = None
        self._getters: list[asyncio.Future[None]] | None = None
        self.listener = listener

    def qsize(self) -> int:
        items = self._items
        return len(items) if items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: _T) -> None:
        listener = self.listener
        if listener is not None and listener(item):
            return
        if self._items is None:
            self._items = []
        self._items.append(item)
        self._wake_one()

    def get_nowait(self) -> _T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> _T:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_one()  # this getter was woken, but gives the item up
                raise
        return self._items.pop(0)

    def _wake_one(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class IceConnection(aioice.Connection):
    """An aioice Connection whose ``connect()`` proceeds once a pair is nominated.

    It relies on one aioice internal, the ``_check_list_state`` queue. Should aioice
    stop using it, ``connect()`` still works, only as late as aioice's own (and
    ``tests/test_ice.py`` fails). ``close()`` cancels the supervised checks task before
    aioice closes the sockets: otherwise the task, still in its pacing sleep, would
    start consent freshness on a closed connection, a task nobody ever stops.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: datagrams this connection refused, by reason: ``unvalidated_source`` (not
        #: STUN, before nomination, from an address ICE has not validated),
        #: ``unexpected_source`` (not STUN, not from the nominated 5-tuple),
        #: ``early_overflow`` (validated, but MAX_EARLY_DATAGRAMS already wait),
        #: ``unverifiable`` (what aioice itself could not parse as STUN: garbage in the
        #: STUN range, or anything from a socket whose gate someone else replaced),
        #: ``stun_error_suppressed`` (an unauthenticated STUN request whose error
        #: response would have been larger than the request)
        self.dropped: Counter[str] = Counter()
        #: where non-STUN datagrams of the nominated pair go (data, addr) once an
        #: IceDatagramTransport reads them; None: aioice's queue, bounded
        self.data_sink: Callable[[bytes, Any], None] | None = None
        #: (local StunProtocol, remote host, remote port) that ICE has validated
        self._validated: set[tuple[aioice.ice.StunProtocol, str, int]] = set()
        #: the gate installed on each of our StunProtocols
        self._gates: dict[aioice.ice.StunProtocol, Callable[[bytes, Any], None]] = {}
        #: size of the STUN datagram aioice is handling now (for respond_error)
        self._stun_length = 0
        # the queues are still empty here: replacing them loses nothing (aioice only
        # calls put_nowait and get on them, see _Mailbox)
        self._check_list_state = _Mailbox(self._check_list_settled)  # type: ignore[assignment]
        self._queue = _Mailbox()  # type: ignore[assignment]
        # likewise still empty: aioice only ever mutates this dict in place
        self._nominated: dict[int, aioice.ice.CandidatePair] = _NominatedPairs(
            self._nomination_changed
        )
        #: called (no arguments) whenever the nominated pair changes or goes away
        self.nomination_watchers: list[Callable[[], None]] = []
        self._outcome: int | None = None
        self._outcome_waiter: asyncio.Future[None] | None = None
        #: aioice's connect(), running from our connect() until its own end; once it
        #: ended well, a finished future in its place (the task would keep aioice's
        #: finished coroutine, about 1 KiB per connection, for the connection's life)
        self.checks_task: asyncio.Future[None] | None = None
        #: round-trip time (seconds) of each pair's first successful check
        self.check_round_trips: dict[aioice.ice.CandidatePair, float] = {}
        #: round-trip time (seconds) of each pair's latest answered STUN transaction,
        #: connectivity or consent check (getStats()'s currentRoundTripTime)
        self.latest_round_trips: dict[aioice.ice.CandidatePair, float] = {}
        #: consent freshness (see query_consent): None takes aioice's CONSENT_INTERVAL
        #: (5 s, randomized 0.8..1.2) and CONSENT_INTERVAL * CONSENT_FAILURES (30 s)
        self.consent_interval: float | None = None
        self.consent_timeout: float | None = None
        self.consent_retransmissions = CONSENT_RETRANSMISSIONS
        #: consent checks by outcome: ``sent``, ``answered``, ``unanswered``; and the
        #: peer's checks ``answered_here``, on the nominated pair without aioice
        self.consent_checks: Counter[str] = Counter()
        #: loop time of the last consent response (None before consent freshness runs)
        self.consent_confirmed: float | None = None
        self.consent_expired = False
        # the consent machinery (query_consent): when the consent clock wakes us, the
        # loop it runs on, the future the consent task waits on until expiry, when the
        # next check is due, the open checks by transaction id, the request attributes
        # and what they were built for, the XOR-MAPPED-ADDRESS of an IPv4 remote
        # address, and the pair whose consent STUN skips aioice
        self._consent_wake: float | None = None
        self._consent_loop: asyncio.AbstractEventLoop | None = None
        self._consent_waiter: asyncio.Future[None] | None = None
        self._consent_next = 0.0
        self._consent_pending: dict[bytes, _ConsentCheck] = {}
        self._consent_template: tuple[object, bytes] = (None, b"")
        self._consent_mapped: tuple[tuple[str, int], bytes] | None = None
        self._fast_consent_pair: aioice.ice.CandidatePair | None = None

    @property
    def nominated_pair(self) -> aioice.ice.CandidatePair | None:
        """The nominated pair of our one component, or None."""
        return self._nominated.get(COMPONENT)

    @property
    def tracks_nomination(self) -> bool:
        """Whether ``nomination_watchers`` hear of every change of the nominated pair
        (aioice still keeps its pairs in the dict this class gave it)."""
        return type(self._nominated) is _NominatedPairs

    def _nomination_changed(self) -> None:
        self._update_fast_consent_pair()
        for watcher in list(self.nomination_watchers):
            try:
                watcher()
            except Exception:  # called from inside aioice: never break it
                logger.exception("nomination watcher failed")

    def _check_list_settled(self, outcome: int) -> bool:
        if self._outcome is None:
            self._outcome = outcome
        self._wake()
        return False  # aioice's connect() reads it too

    def _wake(self) -> None:
        waiter = self._outcome_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def connect(self) -> None:
        """Run the checks; return once every component has a nominated pair.

        Raises ConnectionError when the check list fails or the connection closes
        first, like aioice's ``connect()``. Cancelling this call cancels the checks.
        """
        if self.checks_task is not None:
            raise ConnectionError("connect() was already called")
        loop = asyncio.get_running_loop()
        # one future, woken by the outcome or by the end of the checks task, awaited
        # directly: we resume in the loop iteration after the nomination
        waiter = self._outcome_waiter = loop.create_future()
        if self._outcome is not None:  # closed before connect()
            waiter.set_result(None)
        task = self.checks_task = loop.create_task(super().connect())
        task.add_done_callback(self._checks_done)
        try:
            await waiter
        except asyncio.CancelledError:
            task.cancel()
            raise
        if self._outcome == aioice.ice.ICE_COMPLETED and self.nominated_pair is not None:
            logger.debug("ICE nominated %s; the checks task ends on its own", self.nominated_pair)
            return
        if not task.done():
            # failed or closed: aioice's connect() raises ConnectionError after its
            # current pacing sleep, and _checks_done retrieves it then
            raise ConnectionError("ICE negotiation failed")
        if task.cancelled():
            raise ConnectionError("ICE connection closed during the checks")
        error = task.exception()
        if error is not None:
            raise error
        # aioice returned without reporting through the queue: trust its own result

    def _checks_done(self, task: asyncio.Task[None]) -> None:
        """Retrieve the checks task's outcome, so that none is ever left unretrieved,
        and wake connect() if the task ended before reporting an outcome."""
        self._wake()
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            logger.debug("ICE checks finished; consent freshness started")
            if self.checks_task is task:
                finished = task.get_loop().create_future()
                finished.set_result(None)
                self.checks_task = finished
        elif isinstance(error, ConnectionError):
            logger.debug("ICE checks ended: %s", error)
        else:  # a bug in aioice or here: never silent
            logger.error("ICE checks task failed", exc_info=error)

    # --- the source gate ----------------------------------------------------------------

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[aioice.Candidate]:
        """aioice's gathering, then a gate on every socket it opened (host and relay)."""
        candidates = await super().get_component_candidates(component, addresses, timeout)
        for protocol in self._protocols:
            self._install_gate(protocol)
        return candidates

    def gate(self, protocol: aioice.ice.StunProtocol) -> Callable[[bytes, Any], None] | None:
        """The gate installed on ``protocol``, if any."""
        return self._gates.get(protocol)

    def _install_gate(self, protocol: aioice.ice.StunProtocol) -> None:
        if protocol in self._gates:
            return
        if "datagram_received" in vars(protocol):
            # someone else's wrapper: leave it; aioice then hands us non-STUN without a
            # source, which data_received drops
            logger.warning("%s already wrapped: its non-STUN datagrams are dropped", protocol)
            return
        to_aioice = protocol.datagram_received
        non_stun = self._non_stun
        consent = self._consent_stun

        def gate(data: bytes, addr: Any) -> None:
            if data and data[0] > 3:  # RFC 7983: not STUN
                non_stun(protocol, data, addr)
            elif not consent(protocol, data, addr):
                self._stun_length = len(data)
                to_aioice(data, addr)

        # asyncio looks datagram_received up on the protocol for every datagram (and
        # aioice's TurnTransport calls it for relayed data): the instance attribute wins
        protocol.datagram_received = gate  # type: ignore[method-assign,assignment]
        self._gates[protocol] = gate

    def _non_stun(self, protocol: aioice.ice.StunProtocol, data: bytes, addr: Any) -> None:
        pair = self._nominated.get(COMPONENT)
        if pair is not None:
            remote = pair.remote_addr
            if pair.protocol is not protocol or addr[1] != remote[1] or addr[0] != remote[0]:
                self.dropped["unexpected_source"] += 1
                return
        elif (protocol, addr[0], addr[1]) not in self._validated:
            self.dropped["unvalidated_source"] += 1
            return
        sink = self.data_sink
        if sink is not None:
            sink(data, addr)
        elif self._queue.qsize() < MAX_EARLY_DATAGRAMS:
            # aioice's own queue (recv() reads it), which our data_received closes
            super().data_received(data, protocol.local_candidate.component)
        else:
            self.dropped["early_overflow"] += 1

    def data_received(self, data: bytes, component: int) -> None:
        """What aioice could not parse as STUN and would queue without its source:
        never queued (the gates queue what they validated themselves)."""
        del data, component
        self.dropped["unverifiable"] += 1

    def check_state(
        self, pair: aioice.ice.CandidatePair, state: aioice.ice.CandidatePair.State
    ) -> None:
        """aioice's state change; a pair that succeeded validates its remote address
        (our authenticated check got an authenticated answer from it)."""
        super().check_state(pair, state)
        if state == _SUCCEEDED:
            host, port = pair.remote_addr
            self._validated.add((pair.protocol, host, port))

    def check_incoming(
        self, message: aioice.stun.Message, addr: tuple[str, int], protocol: aioice.ice.StunProtocol
    ) -> None:
        """aioice calls this for checks it has authenticated (MESSAGE-INTEGRITY with our
        password): their source is validated on that socket."""
        self._validated.add((protocol, addr[0], addr[1]))
        super().check_incoming(message, addr, protocol)

    def request_received(
        self, message: aioice.stun.Message, addr: tuple[str, int], protocol: aioice.ice.StunProtocol
    ) -> None:
        """As aioice; an authenticated check that arrives before connect() (aioice defers
        it) validates its source at once: the peer's DTLS may follow before connect()."""
        super().request_received(message, addr, protocol)
        early = getattr(self, "_early_checks", None)
        if early and early[-1][0] is message:
            self._validated.add((protocol, addr[0], addr[1]))

    def respond_error(
        self,
        request: aioice.stun.Message,
        addr: tuple[str, int],
        protocol: aioice.ice.StunProtocol,
        error_code: tuple[int, str],
    ) -> None:
        """aioice's error response, except that an unauthenticated request (400, 401)
        is answered only when the answer is no larger than the request: nobody can use
        us to amplify (a bare 20-byte Binding request drew a 48-byte 400)."""
        if error_code[0] in _UNAUTHENTICATED_ERRORS:
            response = aioice.stun.Message(
                message_method=request.message_method,
                message_class=aioice.stun.Class.ERROR,
                transaction_id=request.transaction_id,
            )
            response.attributes["ERROR-CODE"] = error_code
            response.add_fingerprint()
            if len(bytes(response)) > self._stun_length:
                self.dropped["stun_error_suppressed"] += 1
                return
        super().respond_error(request, addr, protocol, error_code)

    async def check_start(self, pair: aioice.ice.CandidatePair) -> None:
        """aioice's connectivity check, timed: :func:`round_trip_time` reads the result.

        aioice keeps no RTT. The time its STUN transaction takes is the RTT, unless the
        request was resent: see :func:`check_round_trip`. (A role conflict retries the
        check inside this call; the inner, retried check records first.)
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        await super().check_start(pair)
        if (
            pair.state == aioice.ice.CandidatePair.State.SUCCEEDED
            and pair not in self.check_round_trips
        ):
            rtt = check_round_trip(loop.time() - started)
            self.check_round_trips[pair] = rtt
            self.latest_round_trips.setdefault(pair, rtt)

    # --- consent freshness (RFC 7675) ----------------------------------------------------

    async def query_consent(self) -> None:
        """Check consent every ``consent_interval`` (randomized 0.8..1.2) on each nominated
        pair; close the connection ``consent_timeout`` after the last response.

        Replaces aioice's loop (started by its ``connect()``, stopped by its ``close()``
        through ``_query_consent_task``), which sends each check once and waits for it
        before the next. Here each check is a STUN transaction retransmitted
        ``consent_retransmissions`` times on STUN's schedule, so a slow answer never
        delays the next check, and any authenticated success response renews consent.

        The checks run without a task or future of their own: the loop's
        :class:`_ConsentClock` (one timer for every connection) calls
        :meth:`_consent_tick`, which sends checks and retransmissions built by
        :mod:`webrtc_secure.stun`, the open transactions sit in a dict, and their answers, like the
        peer's own consent checks, are handled in the receive path
        (:meth:`_consent_stun`) before aioice parses anything. This task only waits for
        the expiry (and is what aioice's ``close()`` cancels).
        """
        assert self.remote_password is not None  # set before connect() started us
        loop = asyncio.get_running_loop()
        # the nominating check has just been answered: consent starts fresh
        self.consent_confirmed = loop.time()
        expired = self._consent_waiter = loop.create_future()
        self._consent_loop = loop
        self._update_fast_consent_pair()
        self._consent_next = loop.time() + self._consent_delay()
        if self._early_checks_done and not self._early_checks:
            # aioice's deque of checks that came before connect(), empty for good
            self._early_checks = _NO_EARLY_CHECKS
        self._consent_tick()
        try:
            await expired
        finally:
            self._consent_stop()
        logger.info(
            "ICE consent expired: no response for %.1f s (%s)",
            loop.time() - self.consent_confirmed,
            dict(self.consent_checks),
        )
        self.consent_expired = True
        # as aioice does: close() must not cancel the task it is running in
        self._query_consent_task = None
        await self.close()

    def _consent_stop(self) -> None:
        # the clock skips what it still holds for us: no wake-up time matches None
        self._consent_wake = self._consent_loop = self._consent_waiter = None
        self._consent_pending.clear()

    def _consent_delay(self) -> float:
        interval = self.consent_interval
        if interval is None:
            interval = aioice.ice.CONSENT_INTERVAL
        return float(interval) * (0.8 + 0.4 * random.random())

    def _consent_timeout(self) -> float:
        if self.consent_timeout is not None:
            return self.consent_timeout
        return float(aioice.ice.CONSENT_INTERVAL * aioice.ice.CONSENT_FAILURES)

    def _consent_tick(self) -> None:
        """The consent timer: expiry, the checks due, the retransmissions due; then the
        timer again for the earliest of what comes next."""
        loop, confirmed = self._consent_loop, self.consent_confirmed
        if loop is None or confirmed is None:
            return
        # what falls due within the clock's resolution is due now: uvloop's timers fire
        # up to a millisecond before loop.time() reaches their time, and a tick that
        # found nothing due would re-arm for the same moment, again and again
        now = loop.time()
        soon = now + TIMER_SLACK
        expires = confirmed + self._consent_timeout()
        if soon >= expires:
            expired = self._consent_waiter
            if expired is not None and not expired.done():
                expired.set_result(None)
            return
        pending = self._consent_pending
        for transaction_id, check in list(pending.items()):
            if check.due > soon:
                continue
            if check.copies > self.consent_retransmissions:
                # as aioice's Transaction: no answer within the interval after the
                # last copy
                del pending[transaction_id]
                self.consent_checks["unanswered"] += 1
                continue
            self._consent_send(check, now)
        if soon >= self._consent_next:
            for pair in list(self._nominated.values()):
                self._consent_start(pair, now)
            self._consent_next = now + self._consent_delay()
        self._consent_arm(expires)

    def _consent_arm(self, expires: float) -> None:
        """(Re)arm the timer for the next check, retransmission or the expiry."""
        loop = self._consent_loop
        if loop is None:
            return
        when = min(self._consent_next, expires)
        for check in self._consent_pending.values():
            when = min(when, check.due)
        if self._consent_wake != when:
            self._consent_wake = when
            _ConsentClock.of(loop).wake(self, when)

    def _consent_start(self, pair: aioice.ice.CandidatePair, now: float) -> None:
        """A new consent check (RFC 7675 5.1: a fresh transaction id) on ``pair``."""
        assert self.remote_password is not None
        template = (self.ice_controlling, self._tie_breaker, self.remote_username)
        if self._consent_template[0] != template:
            attributes = stun.request_attributes(
                f"{self.remote_username}:{self.local_username}",
                aioice.candidate.candidate_priority(pair.component, "prflx"),
                self.ice_controlling,
                self._tie_breaker,
            )
            self._consent_template = (template, attributes)
        transaction_id = os.urandom(12)
        request = stun.binding_request(
            transaction_id, self._consent_template[1], self.remote_password.encode("utf8")
        )
        check = _ConsentCheck(pair, request, now, float(aioice.stun.RETRY_RTO))
        self._consent_pending[transaction_id] = check
        self.consent_checks["sent"] += 1
        self._consent_send(check, now)

    def _consent_send(self, check: _ConsentCheck, now: float) -> None:
        """Send a copy of ``check``; the next goes after twice the wait (RFC 8489
        6.2.1, aioice's schedule: 0, RTO, 3 RTO, 7 RTO, ...)."""
        check.due = now + check.wait
        check.wait *= 2
        check.copies += 1
        transport = getattr(check.pair.protocol, "transport", None)
        if transport is not None:
            transport.sendto(check.request, check.pair.remote_addr)

    def _consent_stun(
        self, protocol: aioice.ice.StunProtocol, data: bytes, addr: Any
    ) -> bool:
        """Consent checks and their answers on the nominated pair, without aioice.

        Returns whether the datagram was handled here; otherwise it goes to aioice,
        whose handling (answer, error response, amplification rule, silence) is the
        reference. Handled here only, from the nominated pair's remote address on its
        socket, once consent freshness runs:

        - a Binding request that :func:`stun.parse_binding` fully parses, with our
          USERNAME and MESSAGE-INTEGRITY made with our password, no role conflict, and
          no nomination to act on (USE-CANDIDATE on a pair already nominated both
          ways): answered with the bytes aioice would send, and nothing else aioice
          would do (the pair is the nominated one, succeeded, its source validated);
        - an authenticated response to one of our open consent checks (an
          unauthenticated one is ignored here as aioice's Transaction ignores it:
          the check keeps being retransmitted).
        """
        pair = self._fast_consent_pair
        if pair is None or pair.protocol is not protocol or self._consent_loop is None:
            return False
        remote = pair.remote_addr
        if addr[1] != remote[1] or addr[0] != remote[0]:
            return False
        binding = stun.parse_binding(data)
        if binding is None:
            return False
        if binding.message_type == stun.BINDING_REQUEST:
            return self._consent_answer(pair, binding, data, remote)
        check = self._consent_pending.get(binding.transaction_id)
        if check is None or check.pair is not pair:
            return False
        assert self.remote_password is not None
        if not stun.authentic(data, binding, self.remote_password.encode("utf8")):
            return True  # as aioice's Transaction: retransmissions continue
        del self._consent_pending[binding.transaction_id]
        if binding.message_type != stun.BINDING_SUCCESS:
            # an authenticated error response: the check failed (aioice's
            # TransactionFailed); consent stays where it was
            self.consent_checks["unanswered"] += 1
            return True
        self.consent_checks["answered"] += 1
        loop = self._consent_loop
        if loop is not None:
            self.consent_confirmed = now = loop.time()
            # the same retransmission schedule as a connectivity check's (aioice's RTO)
            self.latest_round_trips[pair] = check_round_trip(now - check.started)
            if not self._consent_pending:
                # no retransmission to wait for: the timer can sleep until the next check
                self._consent_arm(self.consent_confirmed + self._consent_timeout())
        return True

    def _consent_answer(
        self,
        pair: aioice.ice.CandidatePair,
        binding: stun.Binding,
        data: bytes,
        remote: tuple[str, int],
    ) -> bool:
        if self._closing or binding.username is None or not binding.integrity_at:
            return False
        if binding.username != f"{self.local_username}:{self.remote_username}".encode():
            return False
        if (binding.controlling if self.ice_controlling else binding.controlled) is not None:
            return False  # a role conflict (RFC 8445 7.3.1.1): aioice's to repair
        if binding.use_candidate and not self.ice_controlling and not (
            pair.nominated and pair.remote_nominated
        ):
            return False  # a nomination to act on (RFC 8445 7.3.1.5)
        key = self.local_password.encode("utf8")
        if not stun.authentic(data, binding, key):
            return False  # aioice answers 401, or nothing (the amplification rule)
        transaction_id = binding.transaction_id
        mapped = self._consent_mapped
        if mapped is not None and mapped[0] == remote:
            attribute = mapped[1]
        else:
            attribute = stun.xor_mapped_address(remote, transaction_id)
            if len(attribute) == 12:
                # IPv4: the same attribute for every transaction id (IPv6 XORs it in)
                self._consent_mapped = (remote, attribute)
        pair.protocol.transport.sendto(
            stun.binding_success(transaction_id, attribute, key), remote
        )
        self.consent_checks["answered_here"] += 1
        return True

    def _update_fast_consent_pair(self) -> None:
        """The pair whose consent traffic :meth:`_consent_stun` handles: the nominated
        pair, if it is the one aioice's ``check_incoming`` would find for a check from
        its remote address (its remote candidate is the first with that address), so
        that skipping aioice changes nothing there."""
        pair = self._nominated.get(COMPONENT)
        fast = None
        if pair is not None and pair.state == _SUCCEEDED and pair.nominated:
            host, port = pair.remote_addr
            for candidate in self._remote_candidates:
                if candidate._network_host == host and candidate.port == port:
                    if candidate is pair.remote_candidate:
                        fast = pair
                    break
        self._fast_consent_pair = fast

    async def close(self) -> None:
        """Stop the checks task (if still running), then close as aioice does."""
        task = self.checks_task
        if task is not None and not task.done():
            task.cancel()
            # asyncio.wait does not raise the task's CancelledError, only ours
            await asyncio.wait((task,))
        await super().close()


def check_round_trip(elapsed: float, rto: float = aioice.stun.RETRY_RTO) -> float:
    """A connectivity check's round-trip time from how long its STUN transaction took.

    aioice resends an unanswered request, with the same transaction id, ``rto`` after
    the first copy and then at doubling intervals, so a response may answer any copy
    (Karn's ambiguity). The time since the last copy sent before the response is a
    lower bound of the RTT, and exact when the earlier copies were lost, the usual
    reason for a resend. Without a resend it is the elapsed time itself.
    """
    sent, interval = 0.0, rto
    while sent + interval <= elapsed:
        sent += interval
        interval *= 2
    return elapsed - sent


def round_trip_time(connection: IceConnection) -> float | None:
    """The round-trip time (seconds) ICE measured on the nominated pair, or None."""
    pair = connection.nominated_pair
    return None if pair is None else connection.check_round_trips.get(pair)


def latest_round_trip_time(connection: IceConnection) -> float | None:
    """The round-trip time (seconds) of the nominated pair's latest answered STUN
    transaction (its nominating check, then each consent check), or None."""
    pair = connection.nominated_pair
    return None if pair is None else connection.latest_round_trips.get(pair)


def ice_server_options(ice_servers: Sequence[str]) -> dict[str, Any]:
    """aioice's server arguments for ``stun:host:port`` and ``turn:host:port`` URLs
    (TURN credentials as ``turn:user:password@host:port``), at most one of each.

    Anything else is a ConfigurationError: another scheme, a URL that is not text, no
    host, a port outside 1..65535.
    """
    options: dict[str, Any] = {
        "stun_server": None,
        "turn_server": None,
        "turn_username": None,
        "turn_password": None,
    }
    for url in ice_servers:
        if not isinstance(url, str):
            raise ConfigurationError(f"ICE server URL must be text, not {type(url).__name__}")
        scheme, _, rest = url.partition(":")
        credentials, _, hostport = rest.rpartition("@")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(f"ICE server URL must be scheme:host:port, not {url!r:.80}")
        if scheme not in ("stun", "turn"):
            raise ConfigurationError(f"unsupported ICE server scheme {scheme!r:.20} (stun, turn)")
        key = f"{scheme}_server"
        if options[key] is not None:
            raise ConfigurationError(f"more than one {scheme}: server (aioice uses one)")
        options[key] = (host, int(port))
        if scheme == "turn":
            user, _, password = credentials.partition(":")
            options["turn_username"], options["turn_password"] = user, password
    return options


def create_ice_connection(*, controlling: bool, ice_servers: Sequence[str] = ()) -> IceConnection:
    """An aioice Connection with the servers of :func:`ice_server_options`."""
    return IceConnection(
        ice_controlling=controlling, components=1, **ice_server_options(ice_servers)
    )


def host_candidate(sockname: tuple[Any, ...]) -> Any:
    """A host candidate for a plain UDP socket (used without ICE checks)."""
    host, port = sockname[0], sockname[1]
    return aioice.Candidate(
        foundation=aioice.candidate.candidate_foundation("host", "udp", host),
        component=COMPONENT,
        transport="udp",
        priority=aioice.candidate.candidate_priority(COMPONENT, "host"),
        host=host,
        port=port,
        type="host",
    )


def first_udp_address(candidates: Sequence[Any]) -> tuple[str, int]:
    """Where to send without ICE: the remote's first UDP candidate."""
    for candidate in candidates:
        if candidate.transport.lower() == "udp" and candidate.port:
            return (candidate.host, candidate.port)
    raise IceError("the remote description has no UDP candidate")


async def gather_candidates(connection: IceConnection, host_addresses: list[str] | None) -> None:
    """Gather local candidates: aioice's own choice, or exactly ``host_addresses``.

    aioice never gathers loopback addresses itself; its public
    ``get_component_candidates`` binds any address we name, after which the
    connection is marked as gathered (aioice keeps that flag private).
    """
    if host_addresses is None:
        await connection.gather_candidates()
        return
    candidates = await connection.get_component_candidates(COMPONENT, list(host_addresses))
    if not candidates:
        raise IceError(f"could not bind any of {host_addresses}")
    connection._local_candidates_start = True
    connection._local_candidates += candidates
    connection._local_candidates_end = True


#: longest candidate text (JSON included) accepted from signaling
MAX_CANDIDATE_TEXT = 1024
#: an ICE ufrag: ice-chars (RFC 8839 5.4), at most 256
_ICE_FRAGMENT = re.compile(r"[A-Za-z0-9+/]{1,256}")


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """One trickled ICE candidate, as the browser's ``RTCIceCandidateInit`` carries it.

    ``candidate`` is the SDP attribute without its ``a=``: ``"candidate:1 1 udp ..."``.
    ``sdp_mid``/``sdp_mline_index`` name the m-line (with BUNDLE, the BUNDLE tag's),
    ``username_fragment`` the ICE ufrag of the description it belongs to. The
    browser's end-of-candidates (a null candidate, or ``candidate: ""``) has no
    instance: :meth:`from_dict` returns None for it. Construction validates the
    candidate (SdpError), so every instance parses into an :class:`aioice.Candidate`.
    """

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None
    username_fragment: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.candidate, str) or len(self.candidate) > MAX_CANDIDATE_TEXT:
            raise SdpError(f"a candidate is text of at most {MAX_CANDIDATE_TEXT} characters")
        if not self.candidate.startswith("candidate:"):
            raise SdpError(f"a candidate starts with 'candidate:', not {self.candidate[:30]!r}")
        check_text(self.candidate)
        parse_candidate(self.candidate[len("candidate:") :])
        mid = self.sdp_mid
        if mid is not None and (not isinstance(mid, str) or len(mid) > 32 or not is_token(mid)):
            raise SdpError(f"malformed sdpMid {mid!r:.40}")
        index = self.sdp_mline_index
        if index is not None and (
            not isinstance(index, int)
            or isinstance(index, bool)
            or not 0 <= index < MAX_MEDIA_SECTIONS
        ):
            raise SdpError(f"sdpMLineIndex must be an int from 0 to {MAX_MEDIA_SECTIONS - 1}")
        fragment = self.username_fragment
        if fragment is not None and (
            not isinstance(fragment, str) or not _ICE_FRAGMENT.fullmatch(fragment)
        ):
            raise SdpError(f"malformed usernameFragment {fragment!r:.40}")

    @classmethod
    def from_aioice(
        cls,
        candidate: Any,
        *,
        sdp_mid: str | None = None,
        sdp_mline_index: int | None = None,
        username_fragment: str | None = None,
    ) -> IceCandidate:
        """The trickle form of a local :class:`aioice.Candidate`."""
        return cls(f"candidate:{candidate.to_sdp()}", sdp_mid, sdp_mline_index, username_fragment)

    def to_aioice(self) -> Any:
        """The :class:`aioice.Candidate` (already validated)."""
        return parse_candidate(self.candidate[len("candidate:") :])

    def to_dict(self) -> dict[str, Any]:
        """``RTCIceCandidateInit``: what ``pc.addIceCandidate()`` takes."""
        out: dict[str, Any] = {
            "candidate": self.candidate,
            "sdpMid": self.sdp_mid,
            "sdpMLineIndex": self.sdp_mline_index,
        }
        if self.username_fragment is not None:
            out["usernameFragment"] = self.username_fragment
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IceCandidate | None:
        """From ``RTCIceCandidateInit`` (``event.candidate.toJSON()`` in a browser);
        None for end-of-candidates (an empty ``candidate``)."""
        candidate = data.get("candidate", "")
        if candidate == "":
            return None
        if isinstance(candidate, str) and candidate.startswith("a="):
            candidate = candidate[2:]
        return cls(
            candidate,
            data.get("sdpMid"),
            data.get("sdpMLineIndex"),
            data.get("usernameFragment"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> IceCandidate | None:
        """:meth:`from_dict` of JSON text; ``null`` is end-of-candidates too."""
        if len(text) > 2 * MAX_CANDIDATE_TEXT:
            raise SdpError("candidate JSON is too long")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise SdpError("candidate is not valid JSON") from None
        if data is None:
            return None
        if not isinstance(data, dict):
            raise SdpError("candidate JSON must be an object with a 'candidate' field")
        return cls.from_dict(data)

    @classmethod
    def coerce(cls, value: object) -> IceCandidate | None:
        """What ``SecurePeer.add_ice_candidate()`` accepts: an IceCandidate, an
        ``RTCIceCandidateInit`` dict, JSON text of one, the ``candidate:...`` text
        (``a=`` optional), or None / ``""`` for end-of-candidates."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, (str, bytes)):
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise SdpError("candidate is not UTF-8 text") from None
            text = value.strip()
            if text.startswith("{") or text == "null":
                return cls.from_json(text)
            return cls.from_dict({"candidate": text})
        raise SdpError(
            "a candidate is an IceCandidate, a dict {'candidate': 'candidate:...', 'sdpMid': "
            f"..., 'sdpMLineIndex': ...}}, its JSON, the candidate text, or None; not a "
            f"{type(value).__name__}"
        )


async def add_remote_candidates(
    connection: IceConnection, candidates: Iterable[Any], *, end_of_candidates: bool = False
) -> None:
    """Hand remote :class:`aioice.Candidate` objects to ICE, then end-of-candidates if
    asked. TCP candidates are skipped (aioice speaks UDP only). A candidate after
    end-of-candidates is an InvalidStateError (aioice's ValueError)."""
    try:
        for candidate in candidates:
            if candidate.transport.lower() == "udp":
                await connection.add_remote_candidate(candidate)
        if end_of_candidates:
            await connection.add_remote_candidate(None)
    except ValueError as exc:
        raise InvalidStateError(f"ICE refused the candidate: {exc}") from None


async def connect_ice(
    connection: IceConnection,
    remote_ufrag: str,
    remote_pwd: str,
    remote_candidates: Sequence[Any],
    protocol_factory: Callable[[], asyncio.DatagramProtocol],
    *,
    end_of_candidates: bool = True,
) -> IceDatagramTransport:
    """Run the ICE checks and return a transport bound to the nominated pair.

    ``end_of_candidates=False`` leaves the remote list open for trickled candidates
    (:func:`add_remote_candidates`): ICE then reports failure only after a later
    end-of-candidates, or never (the caller's timeout).
    """
    connection.remote_username = remote_ufrag
    connection.remote_password = remote_pwd
    await add_remote_candidates(
        connection, remote_candidates, end_of_candidates=end_of_candidates
    )
    try:
        await connection.connect()
    except ConnectionError as exc:
        raise IceError(f"ICE failed: {exc}") from None
    transport = IceDatagramTransport(connection, protocol_factory())
    return transport


def _hookable(protocol: object, gate: object = None) -> bool:
    """Whether the receive fast path may wrap this protocol's ``datagram_received``:
    aioice's own host-socket ``StunProtocol`` on an asyncio datagram transport.

    TURN-relayed pairs are excluded (their transport is aioice's ``TurnTransport``,
    which unwraps ChannelData and Data indications first) and keep the gate's path, as
    does any protocol whose ``datagram_received`` is already replaced by anything but
    its connection's ``gate``."""
    candidate = getattr(protocol, "local_candidate", None)
    return (
        type(protocol) is aioice.ice.StunProtocol
        and getattr(candidate, "type", None) == "host"
        and _socket_transport(getattr(protocol, "transport", None))
        and vars(protocol).get("datagram_received") in (None, gate)
    )


def _socket_transport(transport: object) -> bool:
    """Whether ``transport`` is the event loop's own UDP socket transport, which looks
    ``datagram_received`` up on its protocol for every datagram.

    asyncio's (a plain Transport subclass, not a DatagramTransport) is an
    ``asyncio.BaseTransport``; uvloop's ``UDPTransport`` is not (a Cython class that
    registers with no asyncio ABC) but, like asyncio's, calls
    ``protocol.datagram_received`` per datagram and exposes its socket. aioice's
    ``TurnTransport`` is neither (it has no socket of its own).
    """
    if isinstance(transport, asyncio.BaseTransport):
        return True
    if type(transport).__module__ != "uvloop.loop":
        return False
    get_extra_info = getattr(transport, "get_extra_info", None)
    return get_extra_info is not None and get_extra_info("socket") is not None


#: a nominated pair's send fast path: its socket's ``sendto`` and the remote address
SendPath = tuple[Callable[[bytes, Any], None], tuple[str, int]]

#: what a protocol's ``ice_receiver`` is told when the receive fast path hooks a pair:
#: the remote address (host, port) datagrams must come from, where STUN (and anything
#: empty) goes instead (the socket's gate, to aioice), and the connection's drop counter
#: for other sources (see :meth:`IceDatagramTransport._hook`)
ReceivePath = tuple[str, int, Callable[[bytes, Any], None], Counter[str]]


class IceDatagramTransport(asyncio.DatagramTransport):
    """A nominated ICE pair seen as a connected datagram transport.

    Fast paths, both bound to the nominated pair and rebound whenever it changes
    (:attr:`IceConnection.nomination_watchers`):

    - send: the pair's socket ``sendto`` and remote address are cached, so a
      datagram costs one call (aioice's ``send()`` would only call the same
      ``sendto``, from a task per datagram);
    - receive: the pair's host socket hands every datagram whose first byte is not
      STUN (RFC 7983: 0..3) and whose source is the pair's remote address straight to
      our protocol; from any other source it is dropped and counted. STUN goes
      to the connection's gate: consent freshness (RFC 7675) on the nominated pair
      is handled there, everything else by aioice. A protocol with an
      ``ice_receiver(path)`` method (SecurePeer's) makes those checks itself: it is
      told them (:data:`ReceivePath`; None when the hook comes off) and returns the
      function that goes on the socket, without a wrapper in between.

    Otherwise the connection's gate (same source check) delivers the pair's datagrams
    (a TURN-relayed pair, a protocol we may not wrap); those that arrived before the
    transport existed wait in aioice's queue, bounded, and reach the protocol in the
    loop's next step; the queue then tells the transport when aioice closes.
    """

    __slots__ = (
        "_closed",
        "_closing",
        "_connection",
        "_hook_function",
        "_hook_previous",
        "_hook_reader",
        "_hooked",
        "_hooked_remote",
        "_loop",
        "_path_listener",
        "_protocol",
        "_remote",
        "_send_tasks",
        "_sink",
        "_socket_sendto",
    )

    def __init__(self, connection: IceConnection, protocol: asyncio.DatagramProtocol) -> None:
        super().__init__()
        self._connection = connection
        self._protocol = protocol
        self._closing = False
        #: aioice send() tasks of the slow send path (created when first needed)
        self._send_tasks: set[asyncio.Task[None]] | None = None
        #: what wait_closed() waits for (created when first needed)
        self._closed: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        #: the nominated pair's socket sendto and remote address, or None: slow path
        self._socket_sendto: Callable[[bytes, Any], None] | None = None
        self._remote: tuple[str, int] | None = None
        #: the StunProtocol whose datagram_received we wrapped, or None
        self._hooked: aioice.ice.StunProtocol | None = None
        self._hooked_remote: tuple[str, int] | None = None
        self._hook_function: Callable[[bytes, Any], None] | None = None
        #: what datagram_received was on the hooked protocol before (its gate)
        self._hook_previous: Callable[[bytes, Any], None] | None = None
        #: the batch reader put on the hooked protocol's asyncio transport, or None
        self._hook_reader: Callable[[], None] | None = None
        #: told the send fast path's (sendto, address) at every change (send_path)
        self._path_listener: Callable[[SendPath | None], None] | None = None
        protocol.connection_made(self)
        # the gate's delivery for the nominated pair's datagrams it sees (those the
        # fast path does not take)
        self._sink = self._deliver
        connection.data_sink = self._sink
        # aioice's queue may hold datagrams that arrived before this transport: they
        # reach the protocol in the loop's next step, before anything the sockets
        # deliver later; from then on the queue hands us what aioice puts there (its
        # close, the loss of the nominated socket) without a task reading it
        self._loop.call_soon(self._drain)
        if connection.tracks_nomination:
            connection.nomination_watchers.append(self._bind)
            self._bind()
        else:
            logger.warning("aioice no longer keeps the dict we track: ICE fast paths off")

    @property
    def fast_send(self) -> bool:
        """Whether sends go straight to the nominated pair's socket."""
        return self._socket_sendto is not None

    def send_path(self, listener: Callable[[SendPath | None], None]) -> None:
        """Have ``listener`` told the send fast path, now and at every change: the
        nominated pair's socket ``sendto`` and remote address, which send a datagram
        as :meth:`sendto` would, or None while there is none (no pair, a slow path,
        closed). The media path calls them itself and saves a call per packet."""
        self._path_listener = listener
        self._tell_path()

    def _tell_path(self) -> None:
        listener = self._path_listener
        if listener is not None:
            sendto, remote = self._socket_sendto, self._remote
            listener(None if sendto is None or remote is None else (sendto, remote))

    @property
    def fast_receive(self) -> bool:
        """Whether non-STUN datagrams of the nominated pair skip aioice."""
        return self._hooked is not None

    def _bind(self) -> None:
        """(Re)bind both fast paths to the nominated pair, or turn them off."""
        pair = None if self._closing else self._connection.nominated_pair
        protocol = pair.protocol if pair is not None else None
        remote = pair.remote_addr if pair is not None else None
        if self._hooked is not None and (
            self._hooked is not protocol or self._hooked_remote != remote
        ):
            # the receive wrapper checks one remote address: a new pair, a new wrapper
            self._unhook()
        self._socket_sendto = self._remote = None
        transport = getattr(protocol, "transport", None)
        if pair is not None and type(protocol) is aioice.ice.StunProtocol and transport is not None:
            # StunProtocol.send_data is exactly this call, for host, reflexive and TURN
            # pairs alike (a TurnTransport's sendto relays without blocking)
            self._socket_sendto = direct_sendto(transport)
            self._remote = remote
            if self._hooked is None and _hookable(protocol, self._connection.gate(protocol)):
                self._hook(protocol, pair.remote_addr)
        self._tell_path()

    def _deliver(self, data: bytes, addr: Any) -> None:
        try:
            self._protocol.datagram_received(data, addr)
        except Exception:
            # a bug above us must not reach asyncio's reader callback
            logger.exception("datagram handler failed; datagram dropped")

    def _hook(self, stun: aioice.ice.StunProtocol, remote: tuple[str, int]) -> None:
        # asyncio's transport looks datagram_received up on the protocol for every
        # datagram, so an instance attribute takes over (over the connection's gate,
        # which _unhook puts back)
        previous = vars(stun).get("datagram_received")
        to_aioice = stun.datagram_received
        dropped = self._connection.dropped
        host, port = remote
        # a protocol with an ice_receiver makes the checks below itself, in the
        # function it returns, which then goes on the socket as it is: a Python call
        # and a closure's cells fewer per packet (SecurePeer's media path)
        make_receiver: Callable[[ReceivePath | None], Callable[[bytes, Any], None]] | None
        make_receiver = getattr(self._protocol, "ice_receiver", None)
        if make_receiver is not None:
            function = make_receiver((host, port, to_aioice, dropped))
        else:
            function = self._checking_receiver(to_aioice, host, port, dropped)
        stun.datagram_received = function  # type: ignore[method-assign]
        self._hooked, self._hook_function = stun, function
        self._hook_previous, self._hooked_remote = previous, remote
        limit_receive_buffer(stun.transport)
        self._hook_reader = batch_reads(stun.transport)

    def _checking_receiver(
        self,
        to_aioice: Callable[[bytes, Any], None],
        host: str,
        port: int,
        dropped: Counter[str],
    ) -> Callable[[bytes, Any], None]:
        """The hook for a protocol without ``ice_receiver``: the checks, then the
        protocol's ``datagram_received``."""
        to_us = self._protocol.datagram_received

        def datagram_received(data: bytes, addr: Any) -> None:
            # RFC 7983: not STUN, so DTLS, SRTP/SRTCP or what our protocol counts as
            # unknown; only from the nominated pair's remote address (this socket is
            # its local half), the rest of the 5-tuple
            if data and data[0] > 3:
                if addr[1] != port or addr[0] != host:
                    dropped["unexpected_source"] += 1
                    return
                try:
                    to_us(data, addr)
                except Exception:
                    # a bug above us must not reach asyncio's reader callback
                    logger.exception("datagram handler failed; datagram dropped")
            else:
                to_aioice(data, addr)

        return datagram_received

    def _unhook(self) -> None:
        stun, function, previous = self._hooked, self._hook_function, self._hook_previous
        self._hooked = self._hook_function = self._hook_previous = self._hooked_remote = None
        if stun is not None:
            make_receiver = getattr(self._protocol, "ice_receiver", None)
            if make_receiver is not None:
                make_receiver(None)  # its checks end with the hook
        reader, self._hook_reader = self._hook_reader, None
        if stun is not None and reader is not None:
            unbatch_reads(stun.transport, reader)
        # only our own wrapper: whatever replaced it since is not ours to remove
        if stun is not None and vars(stun).get("datagram_received") is function:
            if previous is None:
                del stun.datagram_received
            else:
                stun.datagram_received = previous  # type: ignore[method-assign,assignment]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        pair = self._connection.nominated_pair
        if name == "peername" and pair is not None:
            return pair.remote_addr
        if name == "sockname" and pair is not None:
            return pair.protocol.transport.get_extra_info("sockname")
        return default

    def is_closing(self) -> bool:
        return self._closing

    def sendto(self, data: bytes, addr: Any = None) -> None:  # type: ignore[override]
        sendto = self._socket_sendto
        if sendto is not None:
            sendto(data, self._remote)
            return
        if self._closing or self._connection.nominated_pair is None:
            return
        # no cached pair: a protocol other than aioice's StunProtocol, or aioice's
        # dict is no longer ours. Its public send() costs a task per datagram
        task = asyncio.ensure_future(self._connection.sendto(data, COMPONENT))
        if self._send_tasks is None:
            self._send_tasks = set()
        self._send_tasks.add(task)
        task.add_done_callback(self._send_done)

    def _send_done(self, task: asyncio.Task[None]) -> None:
        # datagrams are best effort, but a failed send must not end up as "Task
        # exception was never retrieved" (e.g. ConnectionError once ICE closed)
        if self._send_tasks is not None:
            self._send_tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.debug("ICE send failed: %s", error)

    def _drain(self) -> None:
        if self._closing:
            return
        queue = self._connection._queue
        assert isinstance(queue, _Mailbox)  # IceConnection's, from its __init__
        # only what the gate let in (validated sources, bounded) was queued
        while not queue.empty() and self._queued(queue.get_nowait()):
            pass
        if not self._closing:
            queue.listener = self._queued

    def _queued(self, item: tuple[bytes, int] | None) -> bool:
        """An item of aioice's receive queue: a datagram, or None when aioice closed or
        lost the nominated pair's socket (what its ``recv()`` raises ConnectionError
        for). Returns whether it was taken."""
        if self._closing:
            return False
        if item is None:
            # the end, seen in a step of its own (not inside aioice's close())
            self._stop()
            self._loop.call_soon(
                self._protocol.connection_lost, ConnectionError("ICE connection closed")
            )
            return True
        self._deliver(item[0], self.get_extra_info("peername"))
        return True

    def _stop(self) -> None:
        self._closing = True
        queue = self._connection._queue
        if isinstance(queue, _Mailbox) and queue.listener == self._queued:
            queue.listener = None
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        if self._connection.data_sink is self._sink:
            self._connection.data_sink = None
        with contextlib.suppress(ValueError):
            self._connection.nomination_watchers.remove(self._bind)
        self._unhook()
        self._socket_sendto = self._remote = None
        self._tell_path()
        self._path_listener = None

    def close(self) -> None:
        if self._closing:
            return
        self._stop()
        for task in self._send_tasks or ():
            task.cancel()
        self._protocol.connection_lost(None)

    def abort(self) -> None:
        self.close()

    async def wait_closed(self) -> None:
        """Return once the transport is closed (by close(), or when aioice closed)."""
        if self._closing:
            return
        if self._closed is None:
            self._closed = self._loop.create_future()
        await asyncio.shield(self._closed)
