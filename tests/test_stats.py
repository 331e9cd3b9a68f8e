"""``peer.get_stats()``: the typed report in getStats()'s shape, with exact counts.

Two SecurePeers on loopback exchange RTP on two SSRCs (one with plain headers, one
with CSRCs, a header extension and padding, and a sequence gap) and data channel
messages; each side's report must count exactly what was sent and received, name
the transport as the DTLS engine negotiated it, and keep every drop by reason.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from webrtc_secure import SecurePeer, SessionDescription
from webrtc_secure.stats import (
    LOCAL_CERTIFICATE_ID,
    PAIR_ID,
    REMOTE_CERTIFICATE_ID,
    TRANSPORT_ID,
    PeerStatsReport,
    dtls_cipher_name,
    rtp_sizes,
)

HOST = ["127.0.0.1"]
PAYLOAD = 40


def _plain_rtp(seq: int, ssrc: int) -> bytes:
    """12-octet header, 40 octets of payload."""
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, ssrc) + bytes([seq % 256]) * PAYLOAD


def _rich_rtp(seq: int, ssrc: int) -> bytes:
    """Padding, extension and two CSRCs: a 28-octet header (12 + 8 CSRC + 4 + 4
    extension), 40 octets of payload, 4 of padding."""
    header = struct.pack("!BBHII", 0xB2, 96, seq, seq * 3000, ssrc)
    csrcs = struct.pack("!II", 1, 2)
    extension = struct.pack("!HH", 0xBEDE, 1) + bytes(4)
    return header + csrcs + extension + bytes([7]) * PAYLOAD + bytes([0, 0, 0, 4])


async def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def _ssrcs(description: SessionDescription | None) -> dict[str, int]:
    assert description is not None
    return {m.kind: m.ssrcs[0].ssrc for m in description.media if m.ssrcs}


@pytest.fixture
async def peers() -> AsyncIterator[list[SecurePeer]]:
    opened: list[SecurePeer] = []
    yield opened
    for peer in opened:
        await peer.close()


def test_a_new_peer_reports_a_new_transport_and_nothing_else() -> None:
    peer = SecurePeer(host_addresses=HOST)
    report = peer.get_stats()
    assert isinstance(report, PeerStatsReport)
    assert report.state == "new"
    transport = report.transport
    assert transport.dtls_state == "new" and transport.dtls_role is None
    assert transport.tls_version is None and transport.dtls_cipher is None
    assert transport.remote_certificate_id is None
    assert transport.selected_candidate_pair_id is None
    assert (transport.bytes_sent, transport.bytes_received) == (0, 0)
    assert report.local_certificate.fingerprint == peer.certificate.fingerprint("sha-256")
    assert report.remote_certificate is None and report.candidate_pair is None
    assert not report.inbound_rtp and not report.outbound_rtp and not report.data_channels
    assert dict(report.drops) == {}
    # absent members are absent in the W3C form, not null
    assert set(report.to_dict()) == {TRANSPORT_ID, LOCAL_CERTIFICATE_ID}
    assert report.to_dict()[TRANSPORT_ID] == {
        "id": TRANSPORT_ID,
        "type": "transport",
        "timestamp": report.timestamp,
        "dtlsState": "new",
        "localCertificateId": LOCAL_CERTIFICATE_ID,
        "bytesSent": 0,
        "bytesReceived": 0,
        "packetsSent": 0,
        "packetsReceived": 0,
    }


async def test_two_peers_count_rtp_per_ssrc_and_channels_exactly(
    peers: list[SecurePeer],
) -> None:
    a = SecurePeer(host_addresses=HOST, media_kinds=("audio", "video"))
    b = SecurePeer(host_addresses=HOST)
    peers += [a, b]
    received: list[bytes] = []
    b.on("rtp", received.append)
    channel = a.create_data_channel("chat", protocol="p1")
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 20)
    await asyncio.wait_for(channel.wait_open(), 10)

    a_ssrcs, b_ssrcs = _ssrcs(a.local_description), _ssrcs(b.local_description)
    audio, video = a_ssrcs["audio"], a_ssrcs["video"]
    for seq in range(1, 11):
        a.send_rtp(_plain_rtp(seq, audio))
    sent_video = [seq for seq in range(100, 109) if seq != 104]  # one gap: 104 "lost"
    for seq in sent_video:
        a.send_rtp(_rich_rtp(seq, video))
    for seq in range(1, 4):
        b.send_rtp(_plain_rtp(seq, b_ssrcs["audio"]))
    channel.send("hello")  # 5 octets
    channel.send(b"\x00" * 300)
    await _wait_for(lambda: len(received) == 10 + len(sent_video))
    await _wait_for(lambda: b.get_stats().data_channels[0].messages_received == 2)
    await _wait_for(lambda: a.get_stats().inbound(b_ssrcs["audio"]) is not None)

    ra, rb = a.get_stats(), b.get_stats()

    # outbound on a, per SSRC, kind from a's own a=ssrc lines
    out_audio, out_video = ra.outbound(audio), ra.outbound(video)
    assert out_audio is not None and out_video is not None
    assert (out_audio.kind, out_audio.packets_sent) == ("audio", 10)
    assert (out_audio.bytes_sent, out_audio.header_bytes_sent) == (10 * PAYLOAD, 10 * 12)
    assert (out_video.kind, out_video.packets_sent) == ("video", 8)
    # RFC 3550 6.4.1: payload octets, no header (28) and no padding (4)
    assert (out_video.bytes_sent, out_video.header_bytes_sent) == (8 * PAYLOAD, 8 * 32)
    assert [s.ssrc for s in ra.outbound_rtp] == sorted([audio, video])

    # inbound on b: the same counts, kind from the remote description
    in_audio, in_video = rb.inbound(audio), rb.inbound(video)
    assert in_audio is not None and in_video is not None
    assert (in_audio.kind, in_audio.packets_received, in_audio.packets_lost) == ("audio", 10, 0)
    assert (in_audio.bytes_received, in_audio.header_bytes_received) == (400, 120)
    assert (in_video.kind, in_video.packets_received) == ("video", 8)
    assert (in_video.bytes_received, in_video.header_bytes_received) == (320, 256)
    assert in_video.packets_lost == 1  # 100..108 expected, 104 never sent
    # and the other direction
    back = ra.inbound(b_ssrcs["audio"])
    assert back is not None and (back.packets_received, back.bytes_received) == (3, 120)
    assert rb.outbound(b_ssrcs["audio"]) is not None
    assert rb.outbound(audio) is None and ra.inbound(audio) is None

    # the transport: what the DTLS engine negotiated, both sides agreeing
    ta, tb = ra.transport, rb.transport
    assert ta.dtls_state == tb.dtls_state == "connected"
    assert {ta.dtls_role, tb.dtls_role} == {"client", "server"}
    assert ta.tls_version == tb.tls_version == "FEFC"  # DTLS 1.3, the default
    connection = a._dtls.connection  # type: ignore[union-attr]
    assert connection.cipher_suite is not None and a.srtp_profile is not None
    assert ta.dtls_cipher == tb.dtls_cipher == dtls_cipher_name(connection.cipher_suite.name)
    assert ta.dtls_cipher == "TLS_AES_128_GCM_SHA256"  # IANA name of the 1.3 default
    assert ta.srtp_cipher == tb.srtp_cipher == f"SRTP_{a.srtp_profile.name}"
    # certificates: each side's remote is the other's local
    assert ra.remote_certificate is not None and rb.remote_certificate is not None
    assert ra.remote_certificate.fingerprint == rb.local_certificate.fingerprint
    assert rb.remote_certificate.fingerprint == a.certificate.fingerprint("sha-256")
    assert ra.local_certificate.fingerprint_algorithm == "sha-256"
    assert ta.remote_certificate_id == REMOTE_CERTIFICATE_ID

    # the selected pair: nominated, timed, the transport's bytes
    for report in (ra, rb):
        pair = report.candidate_pair
        assert pair is not None and pair.nominated and pair.state == "succeeded"
        assert report.transport.selected_candidate_pair_id == PAIR_ID
        assert pair.current_round_trip_time is not None and pair.current_round_trip_time >= 0
        assert pair.bytes_sent == report.transport.bytes_sent > 0
        assert pair.packets_received == report.transport.packets_received > 0
        assert report.local_candidate is not None and report.remote_candidate is not None
        assert report.local_candidate.address == "127.0.0.1"
        assert report.local_candidate.protocol == "udp"
    assert ra.local_candidate is not None and rb.remote_candidate is not None
    assert ra.local_candidate.port == rb.remote_candidate.port
    # every datagram a sent carried at least one of its RTP packets or more: >= 18
    assert ta.packets_sent >= 18 and tb.packets_received >= 18

    # data channels
    [mine] = ra.data_channels
    assert (mine.label, mine.protocol, mine.state) == ("chat", "p1", "open")
    assert mine.data_channel_identifier == channel.id
    assert (mine.messages_sent, mine.bytes_sent) == (2, 305)
    [remote] = rb.data_channels
    assert (remote.messages_received, remote.bytes_received) == (2, 305)

    assert dict(ra.drops) == {} and dict(rb.drops) == {}

    # the W3C shape: JSON, ids that resolve, getStats()'s camelCase members
    shaped = json.loads(json.dumps(rb.to_dict()))
    by_type: dict[str, list[dict[str, object]]] = {}
    for entry in shaped.values():
        by_type.setdefault(str(entry["type"]), []).append(entry)
    assert {
        "transport",
        "certificate",
        "candidate-pair",
        "local-candidate",
        "remote-candidate",
        "inbound-rtp",
        "outbound-rtp",
        "data-channel",
    } == set(by_type)
    transport = shaped[TRANSPORT_ID]
    assert shaped[transport["selectedCandidatePairId"]]["type"] == "candidate-pair"
    assert (
        shaped[transport["remoteCertificateId"]]["fingerprint"] == ra.local_certificate.fingerprint
    )
    pair_entry = shaped[transport["selectedCandidatePairId"]]
    assert shaped[pair_entry["localCandidateId"]]["type"] == "local-candidate"
    video_entry = next(e for e in by_type["inbound-rtp"] if e["ssrc"] == video)
    assert video_entry == {
        "id": video_entry["id"],
        "type": "inbound-rtp",
        "timestamp": rb.timestamp,
        "transportId": TRANSPORT_ID,
        "ssrc": video,
        "kind": "video",
        "packetsReceived": 8,
        "bytesReceived": 320,
        "headerBytesReceived": 256,
        "packetsLost": 1,
    }
    [dc] = by_type["data-channel"]
    assert dc["dataChannelIdentifier"] == channel.id and dc["messagesReceived"] == 2

    # the legacy flat view is still there and agrees
    flat = b.stats()
    assert flat["rtp_in"] == 18 and flat["messages_in"] == 2


async def test_drops_by_reason_include_srtp_dtls_and_ice_layers(
    peers: list[SecurePeer],
) -> None:
    # DTLS 1.2: the forged record below is written in 1.2's record format
    a = SecurePeer(host_addresses=HOST, data_channel=False, dtls_versions=("1.2",))
    b = SecurePeer(host_addresses=HOST, data_channel=False, dtls_versions=("1.2",))
    peers += [a, b]
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 20)
    ssrc = _ssrcs(a.local_description)["audio"]
    # handed in as b's socket hands what comes from a (the nominated pair's remote)
    pair = b._ice.nominated_pair
    # an SRTP packet whose tag does not verify: counted, never an inbound stream
    forged = bytearray(_plain_rtp(1, ssrc) + bytes(10))
    b._datagram_received(bytes(forged), pair.remote_addr)
    # a DTLS application-data record of epoch 1 that does not authenticate
    record = struct.pack("!BHHHIH", 23, 0xFEFD, 1, 0, 99, 40) + bytes(40)
    b._datagram_received(record, pair.remote_addr)
    # a datagram from a source ICE never validated, to b's ICE socket
    host, port = pair.local_candidate.host, pair.local_candidate.port
    loop = asyncio.get_running_loop()
    rogue, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(HOST[0], 0)
    )
    try:
        rogue.sendto(b"\x80" + bytes(40), (host, port))
        await _wait_for(lambda: sum(b.get_stats().drops.values()) >= 3)
    finally:
        rogue.close()
    report = b.get_stats()
    assert report.drops["rtp_AuthenticationFailed"] == 1
    assert report.drops["dtls_authentication"] == 1
    assert report.drops["unexpected_source"] == 1
    assert report.inbound_rtp == ()
    # the legacy view keeps its own shape
    assert b.stats()["dropped"]["rtp_AuthenticationFailed"] == 1
    assert b.stats()["dtls"]["dropped_authentication"] == 1


async def test_plain_udp_has_no_candidate_pair(peers: list[SecurePeer]) -> None:
    a = SecurePeer(host_addresses=HOST, use_ice=False, data_channel=False)
    b = SecurePeer(host_addresses=HOST, use_ice=False, data_channel=False)
    peers += [a, b]
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 20)
    report = a.get_stats()
    assert report.transport.dtls_state == "connected"
    assert report.candidate_pair is None and report.transport.selected_candidate_pair_id is None
    assert report.transport.bytes_sent > 0
    await a.close()
    closed = a.get_stats()
    assert closed.state == "closed" and closed.transport.dtls_state in ("closed", "connected")


def test_rtp_sizes_of_odd_headers_never_exceed_the_packet() -> None:
    assert rtp_sizes(_plain_rtp(1, 5)) == (12, 0)
    assert rtp_sizes(_rich_rtp(1, 5)) == (28, 4)
    # padding count larger than the payload: clamped, the payload counts as empty
    packet = struct.pack("!BBHII", 0xA0, 0, 1, 0, 5) + bytes([0, 200])
    assert rtp_sizes(packet) == (12, 2)
    # an extension length beyond the packet: the header is the packet
    packet = struct.pack("!BBHII", 0x90, 0, 1, 0, 5) + struct.pack("!HH", 0xBEDE, 900)
    assert rtp_sizes(packet) == (len(packet), 0)
    # CSRC count beyond the packet
    packet = struct.pack("!BBHII", 0x8F, 0, 1, 0, 5)
    assert rtp_sizes(packet) == (12, 0)


def test_dtls_cipher_names_are_iana_spelling() -> None:
    assert (
        dtls_cipher_name("ECDHE_ECDSA_AES_128_GCM_SHA256")
        == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    )
    assert (
        dtls_cipher_name("ECDHE_RSA_CHACHA20_POLY1305_SHA256")
        == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    )
    # DTLS 1.3's suites are named as IANA names them already
    assert dtls_cipher_name("TLS_AES_128_GCM_SHA256") == "TLS_AES_128_GCM_SHA256"
