"""The peer's receive demultiplexer decides DTLS (RFC 7983: first octet 20..63) inline,
before ``classify``: the inline test must pick exactly the datagrams ``classify`` calls
DTLS, hand them to the DTLS transport (or keep them for it while it does not exist
yet, bounded), and leave every other datagram to the general path, counted as before.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from typing import Any, cast

import pytest

from webrtc_secure import SecurePeer
from webrtc_secure.demux import PacketKind, classify
from webrtc_secure.peer import MAX_EARLY_DTLS


class _RecordingDtls:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes) -> None:
        self.received.append(data)


def _datagrams() -> list[bytes]:
    out = [b""]
    for first in range(256):
        out += [bytes([first]), bytes([first, 0]), bytes([first, 200]) + bytes(30)]
    return out


def test_every_first_octet_goes_where_classify_says() -> None:
    peer = SecurePeer(host_addresses=["127.0.0.1"], use_ice=False)
    dtls = _RecordingDtls()
    peer._dtls = cast(Any, dtls)
    datagrams = _datagrams()
    for data in datagrams:
        peer._datagram_received(data, None)
    expected_dtls = [d for d in datagrams if classify(d) is PacketKind.DTLS]
    assert dtls.received == expected_dtls
    assert expected_dtls and all(19 < d[0] < 64 for d in expected_dtls)
    stats = peer._stats
    assert stats.datagrams_in == len(datagrams)
    assert stats.bytes_in == sum(map(len, datagrams))
    # nothing DTLS was counted as dropped, and everything else was judged as before
    # (no SRTP keys: RTP is dropped as early media, RTCP likewise, the rest unknown)
    assert "dtls_before_handshake" not in stats.dropped
    assert sum(stats.dropped.values()) == len(datagrams) - len(expected_dtls)


def test_dtls_before_the_transport_exists_is_kept_bounded() -> None:
    peer = SecurePeer(host_addresses=["127.0.0.1"], use_ice=False)
    hello = bytes([22, 0xFE, 0xFD]) + bytes(40)
    for _ in range(MAX_EARLY_DTLS + 3):
        peer._datagram_received(hello, ("127.0.0.1", 9))
    assert len(peer._early_dtls) == MAX_EARLY_DTLS
    assert peer._stats.dropped["dtls_before_handshake"] == 3


def _ice_peer() -> tuple[SecurePeer, _RecordingDtls, list[bytes], Counter[str]]:
    """A peer as ICE's receive fast path leaves it (its checks told by _ice_receiver)."""
    peer = SecurePeer(host_addresses=["127.0.0.1"])
    dtls = _RecordingDtls()
    peer._dtls = cast(Any, dtls)
    stun: list[bytes] = []
    dropped: Counter[str] = Counter()
    peer._ice_receiver(("127.0.0.1", 9, lambda data, addr: stun.append(data), dropped))
    return peer, dtls, stun, dropped


def test_the_ice_entry_hands_dtls_over_as_the_general_path_does() -> None:
    """_ice_datagram_received takes DTLS to the transport itself: the same datagrams
    reach it, and every counter and drop is the one the general path makes."""
    datagrams = [d for d in _datagrams() if d and d[0] > 3]  # STUN goes to the gate
    general = SecurePeer(host_addresses=["127.0.0.1"])
    general_dtls = _RecordingDtls()
    general._dtls = cast(Any, general_dtls)
    for data in datagrams:
        general._datagram_received(data, ("127.0.0.1", 9))
    peer, dtls, stun, dropped = _ice_peer()
    for data in datagrams:
        peer._ice_datagram_received(data, ("127.0.0.1", 9))
    assert dtls.received == general_dtls.received
    assert dtls.received == [d for d in datagrams if classify(d) is PacketKind.DTLS]
    assert peer._stats == general._stats
    assert stun == [] and not dropped
    # from another source nothing reaches DTLS, and ICE counts the drop
    peer._ice_datagram_received(dtls.received[0], ("127.0.0.1", 10))
    assert len(dtls.received) == len(general_dtls.received)
    assert dropped["unexpected_source"] == 1
    # STUN and empty datagrams go to the gate
    peer._ice_datagram_received(b"\x00\x01" + bytes(18), ("127.0.0.1", 9))
    peer._ice_datagram_received(b"", ("127.0.0.1", 9))
    assert len(stun) == 2


def test_the_ice_entry_keeps_dtls_before_the_transport_exists() -> None:
    peer, _dtls, _stun, _dropped = _ice_peer()
    peer._dtls = None
    hello = bytes([22, 0xFE, 0xFD]) + bytes(40)
    for _ in range(MAX_EARLY_DTLS + 3):
        peer._ice_datagram_received(hello, ("127.0.0.1", 9))
    assert len(peer._early_dtls) == MAX_EARLY_DTLS
    assert peer._stats.dropped["dtls_before_handshake"] == 3
    assert peer._stats.datagrams_in == MAX_EARLY_DTLS + 3


REMOTE = ("127.0.0.1", 9)


class _Socket:
    """A socket's sendto that refuses the datagrams it is told to (OSError)."""

    def __init__(self, refuse: set[bytes]) -> None:
        self.refuse = refuse
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        if data in self.refuse:
            raise OSError("no buffer space")
        self.sent.append((data, addr))


@pytest.mark.parametrize("fast_path", [True, False], ids=["send-path", "sendto"])
def test_a_batch_goes_out_as_one_send_at_a_time(
    fast_path: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """_send_datagrams (the DTLS transport's send_batch) puts the same datagrams on the
    wire, in order, with the same counters, as the DTLS transport's loop over
    _send_datagram; a datagram the socket refuses is logged and not counted, and the
    rest still go."""
    batch = [b"\x17" + bytes([i]) * (i + 1) for i in range(6)]
    refused = {batch[2], batch[4]}
    results = []
    for batched in (True, False):
        peer = SecurePeer(host_addresses=["127.0.0.1"])
        sock = _Socket(refused)
        peer._sendto = functools.partial(sock.sendto, addr=REMOTE)
        peer._send_path = (sock.sendto, REMOTE) if fast_path else None
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="webrtc_secure.peer"):
            if batched:
                peer._send_datagrams(batch)
            else:
                for datagram in batch:  # DtlsTransport's loop without send_batch
                    try:
                        peer._send_datagram(datagram)
                    except OSError as exc:
                        logging.getLogger("webrtc_secure.peer").warning(
                            "DTLS send failed: %s", exc
                        )
        results.append(
            (sock.sent, peer._stats, [r.getMessage() for r in caplog.records])
        )
    assert results[0] == results[1]
    sent, stats, logged = results[0]
    assert [d for d, _ in sent] == [d for d in batch if d not in refused]
    assert stats.datagrams_out == 4
    assert stats.bytes_out == sum(len(d) for d in batch if d not in refused)
    assert logged == ["DTLS send failed: no buffer space"] * 2


def test_a_batch_without_a_path_is_dropped_uncounted() -> None:
    peer = SecurePeer(host_addresses=["127.0.0.1"])
    peer._send_datagrams([b"\x17abc", b"\x17de"])
    assert peer._stats.datagrams_out == 0 and peer._stats.bytes_out == 0
