"""Seeded datagram loss at our SecurePeer's DTLS transport, in-process (this kernel has
no netem), for the interop tests under loss.

:class:`SeededLoss` decides, datagram by datagram, whether one is dropped: a seeded
share, never more than ``max_burst`` in a row (a longer run landing on one chunk's
retransmissions, one per T3 expiry, backs the sender's timer off for seconds and the
test would measure the seed, not the stacks). Two places to apply it:

- outbound (:func:`drop_outbound`): the records our ``DtlsTransport`` hands to the
  socket (``_send`` and ``_send_batch``, slots of the transport), so the other end
  sees real loss of our packets;
- inbound (:func:`inbound_filter`): a wrapper for ``DtlsTransport.datagram_received``,
  patched on the class (the transport has slots; our peer looks the method up for
  every datagram), that drops what arrives for one transport before it sees it.

Also the few checks and waits those tests share: :func:`in_send_order`,
:func:`receive_leftovers`, :func:`until`, :func:`wait_event`, :func:`payload`, and
:class:`ChannelRecorder`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webrtc_secure.dtls_transport import DtlsTransport
from webrtc_secure.sctp.receive_queue import ReceiveQueue


@dataclass
class SeededLoss:
    """Drops a seeded share of datagrams, while ``on``, at most ``max_burst`` in a row."""

    rng: random.Random
    rate: float
    max_burst: int = 2
    on: bool = False
    seen: int = 0
    dropped: int = 0
    burst: int = 0  # datagrams dropped in a row just now

    def drop(self) -> bool:
        if not self.on:
            return False
        self.seen += 1
        # draw for every datagram, so the pattern follows the seed
        if self.rng.random() < self.rate and self.burst < self.max_burst:
            self.burst += 1
            self.dropped += 1
            return True
        self.burst = 0
        return False


def drop_outbound(transport: DtlsTransport, loss: SeededLoss) -> None:
    """Put ``loss`` in front of the socket for what ``transport`` sends."""
    send = transport._send

    def lossy(datagram: bytes) -> None:
        if not loss.drop():
            send(datagram)

    transport._send = lossy
    batch = transport._send_batch
    if batch is not None:

        def lossy_batch(datagrams: list[bytes]) -> None:
            kept = [d for d in datagrams if not loss.drop()]
            if kept:
                batch(kept)

        transport._send_batch = lossy_batch


@dataclass
class InboundLoss:
    """Which transport's arriving datagrams a :func:`inbound_filter` drops, and how."""

    loss: SeededLoss
    target: DtlsTransport | None = None


def inbound_filter(
    original: Callable[[DtlsTransport, bytes], None], current: list[InboundLoss]
) -> Callable[[DtlsTransport, bytes], None]:
    """A ``DtlsTransport.datagram_received`` that drops, for the transport named by
    ``current[0]`` (when the list holds one), what its loss decides, and hands
    everything else to ``original``."""

    def datagram_received(self: DtlsTransport, data: bytes) -> None:
        if current:
            inbound = current[0]
            if self is inbound.target and inbound.loss.drop():
                return
        original(self, data)

    return datagram_received


def in_send_order(got: list[Any], sent: list[Any]) -> bool:
    """``got`` is a subsequence of ``sent``: intact, at most once, in order."""
    position = 0
    for item in got:
        try:
            position = sent.index(item, position) + 1
        except ValueError:
            return False
    return True


def receive_leftovers(receive: ReceiveQueue) -> dict[str, int]:
    """What our receive queue still holds (all zero when nothing is left)."""
    return {
        "fragments": len(receive._fragments),
        "partials": len(receive._partials),
        "waiting": sum(len(s.waiting or ()) for s in receive._streams.values()),
        "ready": len(receive._ready),
        "stored": receive.stored,
        "buffered": receive.buffered,
        "tsns_above_cumulative": len(receive.tracker._above),
    }


async def until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def wait_event(event: asyncio.Event, timeout: float, what: str) -> None:
    """Wait for ``event``; an AssertionError naming ``what`` after ``timeout``."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None


def payload(label: str, index: int, size: int, rng: random.Random) -> bytes:
    """``size`` octets (at least the header) that name their channel and index."""
    head = f"{label}:{index:03d}:".encode()
    return (head + rng.randbytes(max(size - len(head), 0)))[: max(size, len(head))]


class ChannelRecorder:
    """A ``datachannel`` handler for channels named ``labels``: what arrives on each
    goes to ``got[label]``, except ``marker``, which sets ``markers[label]``;
    ``all_seen`` is set once every label has been announced."""

    def __init__(self, labels: tuple[str, ...], marker: bytes) -> None:
        self.labels = set(labels)
        self.marker = marker
        self.got: dict[str, list[bytes]] = {label: [] for label in labels}
        self.markers = {label: asyncio.Event() for label in labels}
        self.all_seen = asyncio.Event()
        self._seen: set[str] = set()

    def __call__(self, channel: Any) -> None:
        label = channel.label
        got, marker, arrived = self.got[label], self.marker, self.markers[label]

        def on_message(message: bytes | str) -> None:
            data = message.encode() if isinstance(message, str) else message
            if data == marker:
                arrived.set()
            else:
                got.append(data)

        channel.on("message", on_message)
        self._seen.add(label)
        if self._seen >= self.labels:
            self.all_seen.set()
