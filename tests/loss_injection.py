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
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from webrtc_secure.dtls_transport import DtlsTransport


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
