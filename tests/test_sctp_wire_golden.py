"""The engine's wire output, pinned: SHA-256 digests of every datagram (and every
delivery and counter) of seeded transfers, recorded before the engine's speed passes.

A speed change to the send or receive path must not change one octet, one packet
boundary, one SACK or one drop: lossy, reordering, duplicating transfers (DATA and
I-DATA, zero checksum and CRC32c, partially reliable and unordered messages, several
streams) and clean in-memory streams of 64 KiB and 1200-octet messages driven the way
``benchmarks/datachannel.py --engine`` drives them. A change that is meant to alter
the wire (a protocol fix) updates the digests here, in its own commit, and says why.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from tests.sctp_pair import Pair, capture, config, healthy, lossy_pair
from webrtc_secure.sctp.association import Association


def _digest(seen: list[tuple[str, bytes]], pair: Pair) -> str:
    h = hashlib.sha256()
    for direction, datagram in seen:
        h.update(direction.encode())
        h.update(len(datagram).to_bytes(4, "big"))
        h.update(datagram)
    for side in "ab":
        for message in pair.messages(side):
            h.update(repr((side, message.stream_id, message.ppid, len(message.data))).encode())
            h.update(message.data)
    h.update(repr(pair.a.stats).encode())
    h.update(repr(pair.b.stats).encode())
    return h.hexdigest()[:16]


def _lossy(seed: int, interleaving: bool, zero: bool, partial: bool) -> str:
    """Both ends send mixed sizes (up to 70,000 octets) on three streams through 10 %
    loss with reordering and duplicates; ``partial`` adds PR-SCTP messages (by
    retransmission count and by lifetime)."""
    pair = lossy_pair(seed, interleaving=interleaving, zero_checksum=zero)
    seen = capture(pair)
    assert pair.connect(both=True)
    rng = random.Random(seed)
    reliable = 0
    for side in (pair.a, pair.b):
        for i in range(40):
            size = rng.choice((1, 300, 1200, 5000, 70000))
            if partial and i % 5 == 1:
                side.send(i % 3, 51, rng.randbytes(size), pair.now, max_retransmits=0)
            elif partial and i % 5 == 2:
                side.send(i % 3, 51, rng.randbytes(size), pair.now, lifetime=0.05)
            else:
                side.send(i % 3, 53, rng.randbytes(size), pair.now, ordered=i % 4 != 0)
                reliable += 1

    # until nothing is left to happen (every timer quiet); every reliable message (PPID
    # 53) arrives, PR-SCTP ones on the same streams or not
    pair.run_until(lambda: False, 600)
    assert len([m for s in "ab" for m in pair.messages(s) if m.ppid == 53]) == reliable
    assert healthy(pair.a) and healthy(pair.b)
    assert pair.a.stats.retransmissions > 0
    return _digest(seen, pair)


def _stream(size: int, total: int, interleaving: bool) -> str:
    """One ordered stream from a to b in memory, as the engine bench drives it: the
    sender refills between two water marks (a flush only when ``send`` says one is
    due), each side takes every packet of the other's last flush, then flushes."""
    a = Association(config(41, interleaving=interleaving))
    b = Association(config(42, interleaving=interleaving))
    a.connect(0.0)
    h = hashlib.sha256()
    now = 0.0

    def flush(side: Association) -> list[bytes]:
        out = side.datagrams_to_send(now)
        for datagram in out:
            h.update(b"a" if side is a else b"b")
            h.update(datagram)
        return out

    for _ in range(10):
        for src, dst in ((a, b), (b, a)):
            for datagram in flush(src):
                dst.receive_datagram(datagram, now)
    assert a.is_established and b.is_established
    for side in (a, b):
        while side.next_event() is not None:
            pass
    messages = total // size
    sent = received = 0
    high, low = 256 * 1024, 64 * 1024
    to_b: list[bytes] = []
    for _ in range(50 * messages + 1000):
        if received >= messages:
            break
        now += 1e-4
        if sent < messages and a.buffered_amount(0) <= low:
            while sent < messages and a.buffered_amount(0) < high:
                payload = sent.to_bytes(4, "big") * (size // 4)
                due = a.send(0, 53, payload, now)
                sent += 1
                if due:
                    to_b += flush(a)
                    while a.next_event() is not None:
                        pass
        to_b += flush(a)
        while a.next_event() is not None:
            pass
        for datagram in to_b:
            b.receive_datagram(datagram, now)
            while (event := b.next_event()) is not None:
                h.update(repr(event).encode()[:64])
                received += 1
        to_b = []
        for datagram in flush(b):
            a.receive_datagram(datagram, now)
        for side in (a, b):
            when = side.get_timer()
            if when is not None and when <= now:
                side.handle_timer(now)
    assert received == messages
    assert not a.stats.retransmissions and not a.stats.dropped and not b.stats.dropped
    h.update(repr(a.stats).encode())
    h.update(repr(b.stats).encode())
    return h.hexdigest()[:16]


# Every digest (here and in STREAMS) changed when AssociationStats gained forward_tsn_in
# and forward_tsn_out (the digests hash its repr), not the wire: with those two fields
# left out of the repr, the digests before them come out again.
LOSSY = {
    # (seed, interleaving, zero checksum, partially reliable): digest
    (3, True, True, False): "2385d9e9e5116fa1",
    (3, False, False, False): "b2943ead3838be86",
    # the three PR-SCTP transfers changed with the end-fragment placeholder TSN of a
    # message abandoned before its last fragment was sent (tests/test_sctp_pr_stall.py)
    (4, True, False, True): "3b901df112cbb05c",
    (4, False, True, True): "98eb704195c87b05",
    (7, True, True, True): "4c9c74435250feb4",
    (7, False, True, False): "52f4208193c75d3b",
}

STREAMS = {
    # (message size, octets, interleaving): digest
    (65536, 4 << 20, True): "66e7d35eaa04b50d",
    (65536, 2 << 20, False): "f6316674f45ee716",
    (1200, 1 << 20, True): "ada03e000e2bd70c",
    (1200, 1 << 20, False): "1c91986b384625d2",
}


@pytest.mark.parametrize(("key", "digest"), list(LOSSY.items()), ids=str)
def test_lossy_transfers_put_the_same_octets_on_the_wire(
    key: tuple[int, bool, bool, bool], digest: str
) -> None:
    assert _lossy(*key) == digest


@pytest.mark.parametrize(("key", "digest"), list(STREAMS.items()), ids=str)
def test_clean_streams_put_the_same_octets_on_the_wire(
    key: tuple[int, int, bool], digest: str
) -> None:
    assert _stream(*key) == digest
