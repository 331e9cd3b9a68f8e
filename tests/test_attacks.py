"""Attacks with precise expected outcomes (the hardening issue): a man-in-the-middle
relay, tampering and replay on a live SecurePeer path."""

from __future__ import annotations

import asyncio
import struct

from tests.dtls_pair import DtlsConnection12, cert, drain_events, run
from webrtc_secure import Fingerprint, PeerState, SecurePeer
from webrtc_secure.dtls import AlertDescription, ApplicationData, State
from webrtc_secure.errors import AlertReceived, FingerprintMismatch


def _fp(name: str) -> Fingerprint:
    return Fingerprint.parse(f"sha-256 {cert(name).fingerprint()}")


def test_relay_terminating_dtls_with_its_own_certificate_is_caught_on_both_sides() -> None:
    # Alice expects Bob's certificate and Bob expects Alice's (from the real descriptions);
    # Mallory sits between them and runs one DTLS session toward each.
    alice = DtlsConnection12(True, cert("alice"), remote_fingerprints=[_fp("bob")])
    # Mallory knows both real fingerprints (they are in the signaling she relays)
    mallory_to_alice = DtlsConnection12(
        False, cert("mallory"), cookies=False, remote_fingerprints=[_fp("alice")]
    )
    mallory_to_bob = DtlsConnection12(True, cert("mallory"), remote_fingerprints=[_fp("bob")])
    bob = DtlsConnection12(False, cert("bob"), remote_fingerprints=[_fp("alice")])
    run(alice, mallory_to_alice, max_time=5.0)
    run(mallory_to_bob, bob, max_time=5.0)
    assert isinstance(alice.error, FingerprintMismatch)
    assert isinstance(bob.error, FingerprintMismatch)
    assert alice.error.alert == bob.error.alert == AlertDescription.BAD_CERTIFICATE
    # Mallory learns of it through the fatal alerts and never gets keys to relay with
    assert isinstance(mallory_to_alice.error, AlertReceived)
    assert isinstance(mallory_to_bob.error, AlertReceived)
    assert mallory_to_alice.state == mallory_to_bob.state == State.FAILED
    for conn in (alice, bob):
        assert not any(isinstance(e, ApplicationData) for e in drain_events(conn))


def _rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x77) + b"m" * 100


async def test_tampered_and_replayed_media_and_data_on_a_live_path() -> None:
    a = SecurePeer(host_addresses=["127.0.0.1"], use_ice=False)
    b = SecurePeer(host_addresses=["127.0.0.1"], use_ice=False)
    received_rtp: list[bytes] = []
    received_messages: list[str | bytes] = []
    b.on("rtp", received_rtp.append)
    a_channel = a.create_data_channel("data", negotiated=True, id=0)
    b_channel = b.create_data_channel("data", negotiated=True, id=0)
    b_channel.on("message", received_messages.append)
    sent: list[bytes] = []
    real_send = a._udp_sendto

    def recording_send(data: bytes) -> None:
        sent.append(data)
        real_send(data)

    # the socket end of every send (DTLS records and send_rtp's SRTP alike): connect()
    # takes it as the path's sendto
    a._udp_sendto = recording_send  # type: ignore[method-assign]
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        await asyncio.gather(a.connect(answer), b.connect(offer))
        await asyncio.wait_for(asyncio.gather(a_channel.wait_open(), b_channel.wait_open()), 5)
        await asyncio.sleep(0.3)  # the handshake's delayed SACKs are out of the way
        sent.clear()
        a.send_rtp(_rtp(1))
        a_channel.send(b"genuine")  # one SCTP DATA packet in one DTLS record
        await asyncio.sleep(0.05)
        srtp_packet, dtls_record = sent
        assert received_rtp == [_rtp(1)] and received_messages == [b"genuine"]
        # every single-bit flip of both is dropped; replays of the originals too
        for original in (srtp_packet, dtls_record):
            for n, bit in enumerate(range(8, len(original) * 8, 5)):
                flipped = bytearray(original)
                flipped[bit // 8] ^= 1 << (bit % 8)
                real_send(bytes(flipped))
                if n % 16 == 15:
                    await asyncio.sleep(0.002)  # stay under the loopback socket buffer
            real_send(original)
        await asyncio.sleep(0.1)
        assert received_rtp == [_rtp(1)] and received_messages == [b"genuine"]
        stats = b.stats()
        assert b.state == PeerState.CONNECTED
        flips = {d: len(range(8, len(d) * 8, 5)) for d in (srtp_packet, dtls_record)}
        dropped = stats["dropped"]
        media_drops = sum(
            v for k, v in dropped.items() if k.startswith("rtp_") or k.startswith("rtcp_")
        )
        dtls = b._dtls.connection.stats if b._dtls else None
        assert dtls is not None
        dtls_drops = (
            dtls.dropped_authentication
            + dtls.dropped_replay
            + dtls.dropped_malformed
            + dtls.dropped_epoch
        )
        not_ours = sum(v for k, v in dropped.items() if k.startswith("unknown_"))
        # each flipped or replayed datagram is counted under at least one reason (a cut
        # length field counts the datagram as malformed and its record as forged)
        assert media_drops + not_ours + dtls_drops >= flips[srtp_packet] + flips[dtls_record] + 2
        assert dtls.dropped_replay >= 1
        assert stats["dropped"].get("rtp_ReplayDetected", 0) >= 1
        # the path still works afterwards
        a.send_rtp(_rtp(2))
        await asyncio.sleep(0.05)
        assert received_rtp[-1] == _rtp(2)
    finally:
        await a.close()
        await b.close()
