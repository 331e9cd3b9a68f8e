"""The peer's receive demultiplexer decides DTLS (RFC 7983: first octet 20..63) inline,
before ``classify``: the inline test must pick exactly the datagrams ``classify`` calls
DTLS, hand them to the DTLS transport (or keep them for it while it does not exist
yet, bounded), and leave every other datagram to the general path, counted as before.
"""

from __future__ import annotations

from typing import Any, cast

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
