"""The SCTP association against itself on a fake clock: handshake (one side or both
sides calling connect), reliable ordered messages both ways, fragmentation, I-DATA and
zero-checksum negotiation, shutdown, abort, timeouts, send-side errors, heartbeat."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.sctp_pair import Pair, capture, chunk_types, config, healthy, make_pair
from webrtc_secure.errors import (
    AssociationAborted,
    AssociationTimeout,
    InvalidAssociationState,
    MessageTooLarge,
    SendBufferFull,
)
from webrtc_secure.sctp.association import (
    DEFAULT_MAX_PACKET_SIZE,
    Association,
    AssociationConfig,
    AssociationState,
)
from webrtc_secure.sctp.chunks import DataChunk, IDataChunk, InitAckChunk
from webrtc_secure.sctp.events import (
    AssociationClosed,
    AssociationEstablished,
    BufferedAmountLow,
    MessageReceived,
)
from webrtc_secure.sctp.packet import parse_packet
from webrtc_secure.sctp.parameters import SupportedExtensionsParameter


def test_default_packet_size_fits_one_dtls_record_in_1200_octets() -> None:
    assert DEFAULT_MAX_PACKET_SIZE + 13 + 8 + 16 == 1200


@pytest.mark.parametrize("both", [False, True], ids=["one-init", "init-collision"])
def test_handshake_establishes_once_on_each_side(both: bool) -> None:
    pair = make_pair(3)
    assert pair.connect(both=both)
    for side in ("a", "b"):
        assert len(pair.events(side, AssociationEstablished)) == 1
    assert pair.a.interleaving and pair.b.interleaving
    assert pair.a.zero_checksum and pair.b.zero_checksum
    pair.pump.run_for(5)
    assert pair.a.state is AssociationState.ESTABLISHED
    assert pair.b.state is AssociationState.ESTABLISHED
    assert healthy(pair.a) and healthy(pair.b)


def test_listener_keeps_no_state_before_cookie_echo() -> None:
    b = Association(config(2))
    a = Association(config(1))
    a.connect(0.0)
    [init] = a.datagrams_to_send(0.0)
    for _ in range(100):
        b.receive_datagram(init, 0.0)
    acks = b.datagrams_to_send(0.0)
    assert 1 <= len(acks) <= 64  # bounded answer queue
    assert b.state is AssociationState.CLOSED
    assert b.get_timer() is None and b.next_event() is None
    # Any one of the INIT-ACKs completes the handshake.
    a.receive_datagram(acks[-1], 0.01)
    [echo] = a.datagrams_to_send(0.01)
    b.receive_datagram(echo, 0.02)
    assert b.state is AssociationState.ESTABLISHED
    assert isinstance(b.next_event(), AssociationEstablished)


@pytest.mark.parametrize("interleaving", [False, True])
def test_reliable_ordered_messages_both_ways(interleaving: bool) -> None:
    pair = make_pair(
        5,
        a=config(11, interleaving=interleaving, remote_max_message_size=0),
        b=config(12, remote_max_message_size=0),
    )
    rng = random.Random(1)
    a_msgs = [rng.randbytes(rng.randint(1, 70000)) for _ in range(30)]
    b_msgs = [rng.randbytes(rng.randint(1, 3000)) for _ in range(100)]
    for i, m in enumerate(a_msgs):
        pair.a.send(i % 4, 53, m, 0.0)  # queued before the association is up
    seen = capture(pair)
    assert pair.connect()
    for m in b_msgs:
        pair.b.send(7, 51, m, pair.now)
    assert pair.run_until(
        lambda: len(pair.messages("b")) == len(a_msgs) and len(pair.messages("a")) == len(b_msgs)
    )
    for sid in range(4):
        got = [m.data for m in pair.messages("b") if m.stream_id == sid]
        assert got == [m for i, m in enumerate(a_msgs) if i % 4 == sid]
    assert [m.data for m in pair.messages("a")] == b_msgs
    assert {m.ppid for m in pair.messages("b")} == {53}
    kinds = set(chunk_types(seen))
    assert ("IDataChunk" in kinds) is interleaving and ("DataChunk" in kinds) is not interleaving
    assert max(len(d) for _, d in seen) <= DEFAULT_MAX_PACKET_SIZE
    assert healthy(pair.a) and healthy(pair.b)


def test_sack_bundling_and_delayed_ack() -> None:
    pair = make_pair(1)
    assert pair.connect()
    seen = capture(pair)
    pair.a.send(0, 51, b"one", pair.now)
    start = pair.now
    assert pair.run_until(lambda: pair.a.stats.srtt is not None, 5)
    sacks = [(d, data) for d, data in seen if d == "b->a"]
    assert chunk_types(sacks) == ["SackChunk"]
    # One packet with data: the SACK waits for the delayed-ack timer (200 ms).
    assert pair.now - start >= 0.2
    assert pair.a.stats.srtt is not None and pair.a.stats.srtt >= 0.2


@pytest.mark.parametrize(
    ("a_zero", "b_zero", "expected"), [(True, True, True), (True, False, False)]
)
def test_zero_checksum_only_when_both_offer_it(a_zero: bool, b_zero: bool, expected: bool) -> None:
    pair = make_pair(2, a=config(1, zero_checksum=a_zero), b=config(2, zero_checksum=b_zero))
    seen = capture(pair)
    assert pair.connect()
    pair.a.send(0, 51, b"x" * 100, pair.now)
    assert pair.run_until(lambda: len(pair.messages("b")) == 1)
    assert pair.a.zero_checksum is expected and pair.b.zero_checksum is expected
    data_packets = [
        d
        for _, d in seen
        if "DataChunk" in chunk_types([("", d)])[0:1] or "IDataChunk" in chunk_types([("", d)])
    ]
    assert data_packets
    zero = [d[8:12] == b"\0\0\0\0" for d in data_packets]
    assert all(zero) if expected else not any(zero)
    # INIT and COOKIE-ECHO always carry a real CRC32c.
    for _, d in seen[:3]:
        assert d[8:12] != b"\0\0\0\0"


def _zero_checksums_from(pair: Pair, direction: str, *, skip_init: bool = True) -> list[int]:
    """Send every packet in ``direction`` with checksum zero (an RFC 9653 sender that
    drops the CRC32c once it saw the other end's offer); returns a one-element list
    counting the packets rewritten. Packets with an INIT chunk keep their CRC32c."""
    rewritten = [0]
    original = pair.sim.send

    def send(way: str, datagram: bytes) -> None:
        if way == direction and not (skip_init and datagram[12] == 1):
            datagram = datagram[:8] + bytes(4) + datagram[12:]
            rewritten[0] += 1
        original(way, datagram)

    pair.sim.send = send  # type: ignore[method-assign]
    return rewritten


def test_zero_checksum_accepted_from_a_peer_that_did_not_offer_it() -> None:
    """RFC 9653 5.3: acceptance follows what WE offered. b offers nothing but (as the
    RFC lets a sender that saw a's offer) sends every packet with checksum zero; a,
    which offered, takes them all, and still sends b the CRC32c b asked for."""
    pair = make_pair(2, a=config(1, zero_checksum=True), b=config(2, zero_checksum=False))
    rewritten = _zero_checksums_from(pair, "b->a")
    seen = capture(pair)
    assert pair.connect()
    assert pair.a.accept_zero_checksum and not pair.a.zero_checksum
    assert not pair.b.accept_zero_checksum and not pair.b.zero_checksum
    pair.a.send(0, 51, b"ping" * 100, pair.now)
    pair.b.send(1, 51, b"pong" * 100, pair.now)
    assert pair.run_until(lambda: len(pair.messages("a")) == 1 and len(pair.messages("b")) == 1)
    assert [m.data for m in pair.messages("a")] == [b"pong" * 100]
    assert rewritten[0] >= 3  # INIT-ACK, COOKIE-ACK, DATA / SACK
    assert pair.a.stats.dropped["checksum"] == 0
    assert all(d[8:12] != bytes(4) for way, d in seen if way == "a->b")


def test_zero_checksum_refused_when_we_did_not_offer_it() -> None:
    """The converse: a did not offer, so a zero checksum from b is a checksum error
    (counted, dropped), and the handshake cannot finish."""
    pair = make_pair(2, a=config(1, zero_checksum=False), b=config(2, zero_checksum=True))
    _zero_checksums_from(pair, "b->a")
    assert not pair.connect(max_time=5.0)
    assert not pair.a.accept_zero_checksum
    assert pair.a.stats.dropped["checksum"] >= 1
    assert not pair.a.is_established


def test_listener_accepts_a_zero_checksum_cookie_echo_after_its_offer() -> None:
    """The stateless listener's INIT-ACK offered zero checksum, so the COOKIE-ECHO that
    answers it may carry checksum zero (as dcSCTP sends it once it saw the offer)."""
    pair = make_pair(2, a=config(1, zero_checksum=True), b=config(2, zero_checksum=True))
    rewritten = _zero_checksums_from(pair, "a->b")
    assert pair.connect()
    assert rewritten[0] >= 1 and pair.b.stats.dropped["checksum"] == 0
    assert len(pair.events("b", AssociationEstablished)) == 1


def test_graceful_shutdown_delivers_queued_data_first() -> None:
    pair = make_pair(4, loss=0.1)
    assert pair.connect()
    msgs = [bytes([i]) * 2000 for i in range(40)]
    for m in msgs:
        pair.a.send(1, 51, m, pair.now)
    pair.a.shutdown(pair.now)
    assert pair.a.state is AssociationState.SHUTDOWN_PENDING
    with pytest.raises(InvalidAssociationState):
        pair.a.send(1, 51, b"late", pair.now)
    assert pair.run_until(pair.closed, 120)
    assert [m.data for m in pair.messages("b")] == msgs
    assert pair.events("a", AssociationClosed) == [AssociationClosed(None)]
    assert pair.events("b", AssociationClosed) == [AssociationClosed(None)]
    assert pair.a.state is AssociationState.CLOSED and pair.b.state is AssociationState.CLOSED
    assert pair.a.get_timer() is None and pair.b.get_timer() is None


def test_abort_reaches_the_peer_as_an_error() -> None:
    pair = make_pair(6)
    assert pair.connect()
    pair.a.abort("bye", pair.now)
    assert pair.run_until(pair.closed, 5)
    [closed_b] = pair.events("b", AssociationClosed)
    assert isinstance(closed_b.error, AssociationAborted) and "bye" in str(closed_b.error)
    [closed_a] = pair.events("a", AssociationClosed)
    assert isinstance(closed_a.error, AssociationAborted)


def test_unreachable_peer_ends_in_a_timeout() -> None:
    pair = make_pair(7, a=config(1, heartbeat_interval=None))
    assert pair.connect()
    pair.sim.links = {k: type(v)(loss=1.0) for k, v in pair.sim.links.items()}
    pair.a.send(0, 51, b"lost", pair.now)
    assert pair.run_until(lambda: bool(pair.events("a", AssociationClosed)), 3600)
    [closed] = pair.events("a", AssociationClosed)
    assert isinstance(closed.error, AssociationTimeout)
    assert pair.a.stats.t3_expirations == pair.a.config.max_retransmits + 1


def test_init_without_answer_times_out() -> None:
    a = Association(config(1, max_init_retransmits=3))
    a.connect(0.0)
    now = 0.0
    sent = len(a.datagrams_to_send(now))
    while (timer := a.get_timer()) is not None:
        now = timer
        a.handle_timer(now)
        sent += len(a.datagrams_to_send(now))
    assert sent == 4  # INIT and three retransmissions, 1 + 2 + 4 + 8 s apart
    assert now == pytest.approx(15.0)
    event = None
    while (e := a.next_event()) is not None:
        event = e
    assert isinstance(event, AssociationClosed) and isinstance(event.error, AssociationTimeout)


def test_send_errors() -> None:
    a = Association(config(1, remote_max_message_size=1000, send_buffer_size=5000))
    with pytest.raises(MessageTooLarge):
        a.send(0, 51, b"x" * 1001, 0.0)
    for _ in range(5):
        a.send(0, 51, b"x" * 1000, 0.0)
    with pytest.raises(SendBufferFull):
        a.send(0, 51, b"x", 0.0)
    with pytest.raises(ValueError):
        a.send(0, 51, b"", 0.0)
    assert a.buffered_amount(0) == 5000
    with pytest.raises(InvalidAssociationState):
        a.reset_streams([0], 0.0)  # not established


def test_buffered_amount_low_event() -> None:
    pair = make_pair(8)
    assert pair.connect()
    pair.a.set_buffered_amount_low_threshold(3, 5000)
    for _ in range(20):
        pair.a.send(3, 51, b"y" * 1000, pair.now)
    assert pair.a.buffered_amount(3) == 20000
    assert pair.run_until(lambda: len(pair.messages("b")) == 20)
    assert pair.events("a", BufferedAmountLow) == [BufferedAmountLow(3)]
    assert pair.a.buffered_amount(3) == 0


def test_heartbeat_measures_rtt_on_an_idle_association() -> None:
    pair = make_pair(9, a=config(1, heartbeat_interval=2.0), b=config(2, heartbeat_interval=2.0))
    assert pair.connect()
    assert pair.a.stats.srtt is None
    pair.pump.run_for(5)
    assert pair.a.stats.srtt == pytest.approx(0.02, abs=0.005)
    assert pair.a.is_established and pair.b.is_established


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        AssociationConfig(max_packet_size=100)
    with pytest.raises(ValueError):
        AssociationConfig(rto_min=2.0, rto_initial=1.0)
    with pytest.raises(ValueError):
        AssociationConfig(delayed_ack=1.0)


def test_message_received_is_whole() -> None:
    pair = make_pair(10, a=config(1, remote_max_message_size=0))
    assert pair.connect()
    big = random.Random(3).randbytes(250_000)
    pair.a.send(0, 53, big, pair.now)
    assert pair.run_until(lambda: len(pair.messages("b")) == 1)
    assert pair.messages("b") == [MessageReceived(0, 53, big)]


@pytest.mark.parametrize("lag", [0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05])
@pytest.mark.parametrize("loss", [0.0, 0.3])
def test_init_collision_converges_whatever_the_timing(lag: float, loss: float) -> None:
    """b connects ``lag`` seconds after a: before a's INIT arrives, as it arrives, after
    b answered it statelessly, after a's COOKIE-ECHO left (one-way delay 10 ms)."""
    for seed in range(3):
        pair = make_pair(seed, loss=loss)
        pair.a.connect(pair.now)
        pair.pump.run_for(lag)
        pair.b.connect(pair.now)
        assert pair.run_until(pair.established, 300), (lag, seed)
        pair.a.send(0, 51, b"ping", pair.now)
        pair.b.send(0, 51, b"pong", pair.now)
        assert pair.run_until(
            lambda p=pair: len(p.messages("a")) == 1 and len(p.messages("b")) == 1, 300
        )
        for side in ("a", "b"):
            assert len(pair.events(side, AssociationEstablished)) == 1
        assert healthy(pair.a) and healthy(pair.b)


def test_answers_a_captured_usrsctp_init_statelessly() -> None:
    """usrsctp's INIT (Firefox's SCTP stack; captured, in tests/vectors) carries AUTH
    parameters we do not implement: they are skipped and the INIT-ACK names what we
    negotiate, addressed to usrsctp's tag."""
    vectors = json.loads((Path(__file__).parent / "vectors" / "sctp_captures.json").read_text())
    [init] = [p for p in vectors["packets"] if p["name"] == "usrsctp-init"]
    b = Association(config(2))
    b.receive_datagram(bytes.fromhex(init["hex"]), 0.0)
    [reply] = b.datagrams_to_send(0.0)
    packet = parse_packet(reply)
    assert packet.verification_tag == init["chunks"][0]["initiate_tag"]
    [ack] = packet.chunks
    assert isinstance(ack, InitAckChunk) and ack.cookie and ack.initiate_tag != 0
    [ext] = [p for p in ack.parameters if isinstance(p, SupportedExtensionsParameter)]
    assert 130 in ext.chunk_types and 192 in ext.chunk_types
    assert b.state is AssociationState.CLOSED and not b.stats.dropped


def test_heartbeats_only_on_an_idle_association() -> None:
    pair = make_pair(12, a=config(1, heartbeat_interval=1.0), b=config(2, heartbeat_interval=1.0))
    assert pair.connect()
    seen = capture(pair)
    for _ in range(50):  # data every 100 ms for 5 s: no heartbeat needed
        pair.a.send(0, 51, b"tick", pair.now)
        pair.pump.run_for(0.1)
    assert "HeartbeatChunk" not in chunk_types(seen, "a->b")
    pair.pump.run_for(3.0)  # idle: heartbeats start
    assert "HeartbeatChunk" in chunk_types(seen, "a->b")


@pytest.mark.parametrize("loss", [0.0, 0.2])
def test_both_sides_shut_down_at_once(loss: float) -> None:
    for seed in range(4):
        pair = make_pair(seed, loss=loss)
        assert pair.connect()
        for i in range(10):
            pair.a.send(0, 51, bytes([i]) * 3000, pair.now)
            pair.b.send(0, 51, bytes([i]) * 3000, pair.now)
        pair.a.shutdown(pair.now)
        pair.b.shutdown(pair.now)
        assert pair.run_until(pair.closed, 300), seed
        assert len(pair.messages("a")) == 10 and len(pair.messages("b")) == 10
        for side in ("a", "b"):
            assert pair.events(side, AssociationClosed) == [AssociationClosed(None)]
        assert healthy(pair.a) and healthy(pair.b)


def test_shutdown_or_abort_before_the_handshake_completes() -> None:
    a = Association(config(1))
    a.connect(0.0)
    a.shutdown(0.0)
    assert a.state is AssociationState.CLOSED
    assert a.next_event() == AssociationClosed(None)
    b = Association(config(2))
    b.connect(0.0)
    b.datagrams_to_send(0.0)
    b.abort("changed my mind", 0.1)
    assert b.datagrams_to_send(0.1) == []  # no peer tag known yet: no ABORT to send
    event = b.next_event()
    assert isinstance(event, AssociationClosed) and isinstance(event.error, AssociationAborted)
    assert b.get_timer() is None
    with pytest.raises(InvalidAssociationState):
        b.send(0, 51, b"x", 0.2)


def test_passive_side_sends_what_it_queued_before_the_handshake() -> None:
    pair = make_pair(14)
    pair.b.send(3, 51, b"queued on the side that never called connect", 0.0)
    assert pair.b.buffered_amount(3) > 0
    assert pair.connect()  # only a sends INIT
    assert pair.run_until(lambda: len(pair.messages("a")) == 1)
    assert pair.messages("a")[0].data == b"queued on the side that never called connect"


def _chunk_octets(datagrams: list[bytes]) -> list[int]:
    """Per DATA / I-DATA packet: the octets its chunks add to the flight size."""
    sizes = []
    for datagram in datagrams:
        packet = parse_packet(datagram, allow_zero_checksum=True)
        data = [c for c in packet.chunks if isinstance(c, (DataChunk, IDataChunk))]
        if data:
            header = 20 if isinstance(data[0], IDataChunk) else 16
            sizes.append(sum((header + len(c.user_data) + 3) & ~3 for c in data))
    return sizes


def test_max_burst_limits_new_data_between_sacks() -> None:
    """RFC 9260 6.1 D / 7.2.4: a SACK opens a burst of new data of flight size +
    Max.Burst * MTU (cwnd adjusted for the burst; 6.1 B lets the chunk that crosses
    it overshoot by less than a packet), however large cwnd is and however often the
    owner asks (the asyncio transport flushes after every send): a whole cwnd at
    once overflows the peer's socket."""
    pair = make_pair(21, a=config(1, max_burst=4), b=config(2))
    assert pair.connect()
    rq = pair.a._retransmit
    assert rq is not None
    rq.cc.cwnd = 1 << 20
    limit = 4 * pair.a.config.max_packet_size
    sent: list[bytes] = []
    for _ in range(100):
        pair.a.send(1, 51, b"m" * 1100, pair.now)
        sent += pair.a.datagrams_to_send(pair.now)
    data = [d for d in sent if "IDataChunk" in chunk_types([("a", d)])]
    sizes = _chunk_octets(data)
    # below the limit before the last packet, past it with the last (full packets:
    # four fill 4 * 1151 octets of the 4 * 1163, so a fifth may still start)
    assert sum(sizes[:-1]) < limit <= sum(sizes)
    assert len(data) == 5
    assert rq.flight_size == sum(sizes)
    # The peer's SACK (for 2 packets) opens the next burst, not the whole window.
    for datagram in data[:2]:
        pair.b.receive_datagram(datagram, pair.now)
    for sack in pair.b.datagrams_to_send(pair.now):
        pair.a.receive_datagram(sack, pair.now)
    more = _chunk_octets(pair.a.datagrams_to_send(pair.now))
    assert sum(more[:-1]) < limit <= sum(more)
    assert len(more) == 5
    # Everything still arrives.
    assert pair.run_until(lambda: len(pair.messages("b")) == 100)
    assert healthy(pair.a) and healthy(pair.b)


@pytest.mark.parametrize("interleaving", [False, True], ids=["data", "idata"])
def test_fragments_fill_packets(interleaving: bool) -> None:
    """1200-octet messages do not fit one packet; the next message's first fragment
    fills the packet its predecessor's tail leaves (not two packets per message), and
    everything is delivered intact and in order."""
    pair = make_pair(
        22,
        a=config(1, interleaving=interleaving, max_burst=64),
        b=config(2, interleaving=interleaving),
    )
    assert pair.connect()
    rq = pair.a._retransmit
    assert rq is not None
    rq.cc.cwnd = 1 << 20
    seen = capture(pair)
    messages = [bytes([i]) * 1200 for i in range(20)]
    for message in messages:
        pair.a.send(1, 51, message, pair.now)
    assert pair.run_until(lambda: len(pair.messages("b")) == 20)
    assert [m.data for m in pair.messages("b")] == messages
    data_packets = [d for direction, d in seen if "IDataChunk" in chunk_types([(direction, d)])
                    or "DataChunk" in chunk_types([(direction, d)])]
    assert len(data_packets) >= 20
    mtu = pair.a.config.max_packet_size
    assert len(data_packets) <= -(-20 * 1200 // (mtu - 12 - 2 * 20)) + 1
    assert all(len(d) <= mtu for d in data_packets)
    assert healthy(pair.a) and healthy(pair.b)
