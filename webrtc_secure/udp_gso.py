"""Several UDP datagrams in one system call: Linux's UDP segmentation offload.

A flush of SCTP packets is several DTLS records for one remote address, most of them
of one length (full packets). ``sendto`` costs a system call per datagram (on loopback
with uvloop about 4 us, most of it the kernel's, which also delivers it there). Linux
(4.18 and later) takes a run of datagrams of one length, the last one possibly
shorter, in one ``sendmsg`` with a ``UDP_SEGMENT`` control message giving that length,
and cuts the run into exactly those datagrams itself (in software, or in the network
card): on the wire and at the receiver they are the datagrams ``sendto`` would have
sent, in the same order, each with its own UDP header. On loopback a run of five
1228-octet datagrams cost about 1.8 us per datagram against 4.9 for ``sendto`` each.

:class:`SegmentSender` does this on the socket of an asyncio or uvloop datagram
transport, beside the transport (a duplicate of its file descriptor: the transport
keeps reading and writing as before), and only while the transport has nothing
queued, so that no datagram overtakes one the transport holds. Whatever it does not
send that way (a datagram alone, a full socket buffer, any refusal) goes through the
transport's own ``sendto``, in order. A kernel, socket or device without the offload
refuses the first run (EIO, EINVAL, ENOPROTOOPT, EOPNOTSUPP) before sending anything,
and the sender turns itself off for good.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: linux/udp.h (the socket module of Python 3.11 does not name it)
UDP_SEGMENT = 103
#: linux/udp.h UDP_MAX_SEGMENTS: the most datagrams one run may be cut into
MAX_SEGMENTS = 64
#: octets in one run: under IPv4's largest UDP payload (65,507), so under IPv6's too
MAX_RUN_OCTETS = 65000
#: what a kernel, socket or device without the offload answers (nothing was sent)
UNSUPPORTED = frozenset({errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP})
#: transports whose ``sendto`` is a plain UDP socket's (not e.g. a TURN relay)
_TRANSPORT_MODULES = ("uvloop.loop", "asyncio.selector_events")
_SEGMENT_SIZE = struct.Struct("=H")


def supported_platform() -> bool:
    return sys.platform.startswith("linux")


class SegmentSender:
    """Runs of equal-length datagrams to one remote address in one ``sendmsg`` each,
    on the socket of ``transport`` (see the module docstring)."""

    __slots__ = ("_buffered", "_control", "_remote", "_sendto", "_socket", "enabled", "runs")

    def __init__(self, transport: Any, remote: Any) -> None:
        """Raises OSError or ValueError when ``transport`` has no UDP socket to use."""
        sock = transport.get_extra_info("socket")
        if sock is None or sock.type != socket.SOCK_DGRAM:
            raise ValueError("not a UDP transport")
        fd = os.dup(sock.fileno())
        try:
            own = socket.socket(fileno=fd)
        except BaseException:
            os.close(fd)
            raise
        # (the descriptor's flags are shared: it is non-blocking already, as the
        # transport keeps it; this makes Python's side of it say so too)
        own.setblocking(False)
        self._socket: socket.socket | None = own
        self._sendto: Callable[[bytes, Any], None] = transport.sendto
        self._buffered: Callable[[], int] = transport.get_write_buffer_size
        self._remote = remote
        #: the control message per segment length (a flush has one or two lengths)
        self._control: dict[int, list[tuple[int, int, bytes]]] = {}
        #: False once the kernel refused the offload (or after close)
        self.enabled = True
        #: runs sent in one system call each (for tests and stats)
        self.runs = 0

    @classmethod
    def for_path(
        cls, sendto: Callable[[bytes, Any], None], remote: Any, transport: object = None
    ) -> SegmentSender | None:
        """A sender beside the transport whose bound ``sendto`` this is (or
        ``transport``, which ``sendto`` sends through: ``ice.direct_sendto``'s), when
        that is a UDP socket's transport on Linux; else None."""
        if not supported_platform():
            return None
        if transport is None:
            transport = getattr(sendto, "__self__", None)
            if getattr(transport, "sendto", None) != sendto:
                return None
        if transport is None or type(transport).__module__ not in _TRANSPORT_MODULES:
            return None
        try:
            return cls(transport, remote)
        except (OSError, ValueError) as exc:
            logger.debug("no UDP segmentation offload: %s", exc)
            return None

    def close(self) -> None:
        """Close the duplicate descriptor (the transport's own stays open)."""
        self.enabled = False
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def send(self, datagrams: list[bytes], refused: Callable[[bytes, OSError], None]) -> None:
        """Put ``datagrams`` on the wire in order: each run of two or more of one
        length (the run's last may be shorter) in one system call while the
        transport holds nothing queued, everything else through the transport's
        ``sendto``. An OSError that ``sendto`` raises for a datagram is given to
        ``refused`` with that datagram, and the rest still go."""
        count = len(datagrams)
        size = len(datagrams[0]) if count else 0
        if 1 < count <= MAX_SEGMENTS and size > 0 and size * count <= MAX_RUN_OCTETS:
            # the common flush, one run (full packets, the last perhaps shorter),
            # told by C-level counts instead of the loop below
            lengths = list(map(len, datagrams))
            same = lengths.count(size)
            if (
                (same == count or (same == count - 1 and lengths[-1] < size))
                and self.enabled
                and not self._buffered()
                and self._send_run(datagrams, size)
            ):
                return
        start = 0
        while start < count:
            size = len(datagrams[start])
            end = start + 1
            if size:
                limit = min(count, start + min(MAX_SEGMENTS, MAX_RUN_OCTETS // size))
                while end < limit and len(datagrams[end]) == size:
                    end += 1
                if end < limit and len(datagrams[end]) < size:
                    end += 1  # a shorter datagram may close the run
            if (
                end - start > 1
                and self.enabled
                and not self._buffered()
                and self._send_run(datagrams[start:end], size)
            ):
                start = end
                continue
            sendto, remote = self._sendto, self._remote
            for index in range(start, end):
                datagram = datagrams[index]
                try:
                    sendto(datagram, remote)
                except OSError as exc:
                    refused(datagram, exc)
            start = end

    def _send_run(self, run: list[bytes], size: int) -> bool:
        """One ``sendmsg`` for ``run``; False (nothing sent) when the caller must send
        its datagrams one by one."""
        sock = self._socket
        if sock is None:
            return False
        control = self._control.get(size)
        if control is None:
            control = self._control[size] = [
                (socket.SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))
            ]
        try:
            sock.sendmsg(run, control, 0, self._remote)
        except BlockingIOError:
            return False  # the socket buffer is full: the transport queues them
        except OSError as exc:
            if exc.errno in UNSUPPORTED:
                logger.info("UDP segmentation offload refused (%s): off for this socket", exc)
                self.enabled = False
            return False
        self.runs += 1
        return True


__all__ = ["MAX_RUN_OCTETS", "MAX_SEGMENTS", "UDP_SEGMENT", "SegmentSender"]
