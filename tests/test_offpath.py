"""Off-path attackers (the off-path issue): someone who knows a peer's address from its
SDP (a signaling server, a log, a relay) but holds no keys, sending from another port on
127.0.0.1 or from 127.0.0.2 (loopback answers the whole 127.0.0.0/8).

Each attack must leave the connection completing and media flowing, every datagram it
sent counted somewhere, and no unauthenticated datagram answered with more than one.
The data channel gets the same (section 5): SCTP packets built from what the SDP
reveals (ports, and with SNAP the verification tag in a=sctp-init) never reach the
association, whether sent raw, as forged DTLS records from elsewhere, or as forged
records on the validated path.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioice.stun
import pytest

from tests.dtls_pair import DtlsConnection12, cert, pins, run
from tests.test_ice import _pair, _until
from webrtc_secure import DataChannel, PeerState, SecurePeer, ice
from webrtc_secure.dtls import DtlsConnection, State
from webrtc_secure.dtls.records import split_records
from webrtc_secure.sctp.chunks import (
    AbortChunk,
    Chunk,
    DataChunk,
    InitChunk,
    ShutdownChunk,
    parse_chunk,
)
from webrtc_secure.sctp.packet import Packet, serialize_packet

pytestmark = pytest.mark.both_loops

#: fatal handshake_failure, epoch 0, sequence 0: 15 bytes (the issue's first attack)
FATAL_ALERT = bytes.fromhex("15fefd000000000000000000020228")
#: warning close_notify, epoch 0
CLOSE_NOTIFY = bytes.fromhex("15fefd000000000000000000020100")
#: an empty ClientHello fragment header: type 1, length 0, message_seq 65535, offset 0
_BOMB_FRAGMENT = bytes.fromhex("01000000ffff000000000000")


def bomb_datagram(size: int = 65500) -> bytes:
    """Epoch-0 handshake records (each within the 2^14 + 2048 record bound) packed with
    12-byte ClientHello fragments, filling one datagram of at most ``size`` bytes."""
    per_record = 1365  # 16380 bytes of fragments
    records = []
    room = size
    sequence = 0
    while room > 13 + 12:
        count = min(per_record, (room - 13) // 12)
        payload = _BOMB_FRAGMENT * count
        records.append(struct.pack("!BHQH", 22, 0xFEFD, sequence, len(payload)) + payload)
        room -= 13 + len(payload)
        sequence += 1
    return b"".join(records)


def _rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x77) + b"m" * 100


def _address(peer: SecurePeer) -> tuple[str, int]:
    description = peer.local_description
    assert description is not None
    candidate = description.candidates[0]
    return (candidate.host, candidate.port)


def _offpath_drops(peer: SecurePeer) -> int:
    dropped = peer.stats()["dropped"]
    return int(dropped.get("unvalidated_source", 0) + dropped.get("unexpected_source", 0))


@pytest.fixture(params=["127.0.0.1", "127.0.0.2"])
def attacker(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    """A UDP socket on another port of 127.0.0.1, or on 127.0.0.2."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((request.param, 0))
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
async def peers(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SecurePeer, SecurePeer]]:
    """a offers (DTLS server, ICE controlling), b answers (DTLS client)."""
    use_ice = getattr(request, "param", True)
    a = SecurePeer(host_addresses=["127.0.0.1"], use_ice=use_ice)
    b = SecurePeer(host_addresses=["127.0.0.1"], use_ice=use_ice)
    yield a, b
    await a.close()
    await b.close()


async def _media_flows(a: SecurePeer, b: SecurePeer) -> None:
    """Both peers are connected and SRTP reaches each from the other."""
    assert a.state == b.state == PeerState.CONNECTED
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    a.on("rtp", got["a"].append)
    b.on("rtp", got["b"].append)
    a.send_rtp(_rtp(7))
    b.send_rtp(_rtp(8))

    async def both() -> None:
        while not (got["a"] and got["b"]):
            await asyncio.sleep(0.002)

    await asyncio.wait_for(both(), 5)
    assert got == {"a": [_rtp(8)], "b": [_rtp(7)]}


class Blaster:
    """Sends one datagram to some targets every millisecond until stopped."""

    def __init__(self, sock: socket.socket, datagram: bytes, targets: list[tuple[str, int]]):
        self.sock, self.datagram, self.targets = sock, datagram, targets
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def fire(self) -> None:
        for target in self.targets:
            with contextlib.suppress(BlockingIOError):
                self.sock.sendto(self.datagram, target)
                self.sent += 1

    async def _run(self) -> None:
        while True:
            self.fire()
            await asyncio.sleep(0.001)

    def __enter__(self) -> Blaster:
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


# --- 1. one plaintext alert kills the handshake ---------------------------------------------


@pytest.mark.parametrize("peers", [True, False], ids=["ice", "udp"], indirect=True)
@pytest.mark.parametrize("alert", [FATAL_ALERT, CLOSE_NOTIFY], ids=["fatal", "close_notify"])
async def test_plaintext_alert_before_and_during_connect_does_not_end_the_handshake(
    peers: tuple[SecurePeer, SecurePeer], attacker: socket.socket, alert: bytes
) -> None:
    a, b = peers
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    with Blaster(attacker, alert, [_address(a), _address(b)]) as blaster:
        blaster.fire()  # before connect()
        await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 10)
    await _media_flows(a, b)
    assert blaster.sent >= 4
    # every alert that arrived was dropped at the source check, not by the engine
    assert _offpath_drops(a) + _offpath_drops(b) >= 2
    for peer in (a, b):
        assert peer.stats()["dtls"]["dropped_epoch"] == 0


# --- 2. a forged ClientHello breaks both sides ------------------------------------------------


async def test_forged_client_hello_from_elsewhere_is_never_answered(
    peers: tuple[SecurePeer, SecurePeer], attacker: socket.socket
) -> None:
    a, b = peers  # a is the DTLS server
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    forger = DtlsConnection12(True, cert("mallory"), remote_fingerprints=pins("bob"))
    forger.connect(0.0)
    (hello,) = forger.datagrams_to_send(0.0)
    answers: list[bytes] = []
    loop = asyncio.get_running_loop()
    loop.add_reader(attacker.fileno(), lambda: answers.append(attacker.recv(65536)))
    try:
        with Blaster(attacker, hello, [_address(a)]) as blaster:
            blaster.fire()  # before connect(), and on through the handshake
            await asyncio.sleep(0.01)
            await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 10)
        await _media_flows(a, b)
        await asyncio.sleep(0.02)
    finally:
        loop.remove_reader(attacker.fileno())
    assert answers == []  # no ServerHello (nor anything else) went to the forger
    assert blaster.sent >= 2 and _offpath_drops(a) >= 2


# --- 3. the renegotiation fragment bomb -----------------------------------------------------


def test_bomb_datagram_is_the_issues() -> None:
    bomb = bomb_datagram()
    assert 65400 <= len(bomb) <= 65500 and bomb.count(_BOMB_FRAGMENT) >= 5454
    assert bomb[13:25] == _BOMB_FRAGMENT


async def _connected(a: SecurePeer, b: SecurePeer) -> None:
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 10)


def _nominated_socket(peer: SecurePeer) -> Any:
    pair = peer._ice.nominated_pair
    return pair.protocol.transport


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


async def test_fragment_bomb_from_elsewhere_is_dropped_unanswered(
    peers: tuple[SecurePeer, SecurePeer], attacker: socket.socket
) -> None:
    a, b = peers
    await _connected(a, b)
    await _settle()
    before = {p: p.stats()["datagrams_out"] for p in (a, b)}
    bomb = bomb_datagram()
    for target in (_address(a), _address(b)):
        attacker.sendto(bomb, target)
    await _settle()
    assert {p: p.stats()["datagrams_out"] for p in (a, b)} == before
    assert _offpath_drops(a) >= 1 and _offpath_drops(b) >= 1
    await _media_flows(a, b)


async def test_fragment_bomb_on_the_validated_path_is_answered_with_at_most_one_datagram(
    peers: tuple[SecurePeer, SecurePeer],
) -> None:
    """The same bomb with the peer's own source address (what a spoofing attacker would
    send): unauthenticated, so never acted on once connected."""
    a, b = peers
    await _connected(a, b)
    await _settle()
    for victim, spoofed in ((a, b), (b, a)):
        before = victim.stats()["datagrams_out"]
        _nominated_socket(spoofed).sendto(bomb_datagram(), _address(victim))
        await _settle()
        assert victim.stats()["datagrams_out"] - before <= 1
        dtls = victim.stats()["dtls"]
        assert dtls["dropped_unexpected_handshake"] >= 1
    await _media_flows(a, b)


def _engine_pair() -> tuple[DtlsConnection, DtlsConnection]:
    client = DtlsConnection12(True, cert("alice"), cookies=False, remote_fingerprints=pins("bob"))
    server = DtlsConnection12(False, cert("bob"), cookies=False, remote_fingerprints=pins("alice"))
    run(client, server, max_time=5.0)
    assert client.state == server.state == State.CONNECTED
    for conn in (client, server):
        conn.datagrams_to_send(0.0)
    return client, server


def test_engine_discards_unprotected_handshake_and_alert_records_once_connected() -> None:
    client, server = _engine_pair()
    for victim in (client, server):
        for datagram in (bomb_datagram(), FATAL_ALERT, CLOSE_NOTIFY):
            victim.receive_datagram(datagram, 10.0)
            assert victim.datagrams_to_send(10.0) == []
        assert victim.state == State.CONNECTED
        # counted per record (the bomb is four), the alerts under dropped_epoch
        assert victim.stats.dropped_unexpected_handshake == len(split_records(bomb_datagram())[0])
        assert victim.stats.dropped_epoch == 2


def test_engine_refuses_authenticated_renegotiation_once_per_record() -> None:
    client, server = _engine_pair()
    # the client, authenticated in epoch 1, sends one record of many hello fragments
    record = client._seal(22, 1, _BOMB_FRAGMENT * 1000)
    server.receive_datagram(record, 10.0)
    out = server.datagrams_to_send(10.0)
    assert len(out) == 1
    client.receive_datagram(out[0], 10.0)
    assert client.state == server.state == State.CONNECTED  # a warning: nothing ends


# --- 4. unbounded memory before connect() ---------------------------------------------------

_FLOOD = """
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[4], 0))
payload = b"\\x17\\xfe\\xfd" + bytes(1197)
for i in range(count):
    s.sendto(payload, (host, port))
"""


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.slow
@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
async def test_flood_before_connect_leaves_memory_bounded(source: str) -> None:
    a = SecurePeer(host_addresses=["127.0.0.1"])
    b = SecurePeer(host_addresses=["127.0.0.1"])
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        host, port = _address(a)
        rss_before = _rss()
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _FLOOD, host, str(port), "60000", source
        )
        await flooder.wait()
        await _settle()
        grown = _rss() - rss_before
        queued = a._ice._queue.qsize()
        dropped = a.stats()["dropped"].get("unvalidated_source", 0)
        print(f"flood from {source}: RSS +{grown / 1e6:.1f} MB, queued {queued}, dropped {dropped}")
        assert grown < 8_000_000
        assert queued <= ice.MAX_EARLY_DATAGRAMS
        assert dropped >= 5000  # the flood did arrive, and every datagram was counted
        await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 10)
        await _media_flows(a, b)
    finally:
        await a.close()
        await b.close()


# --- the ICE layer: what may arrive before nomination, and the STUN amplification budget -----


class _Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, Any]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))


async def test_before_nomination_only_validated_sources_reach_a_bounded_queue(
    attacker: socket.socket,
) -> None:
    """b runs its checks while a has not called connect(): a answers them and, as they
    are authenticated, b's address becomes validated on that socket; b's DTLS then
    waits (16 at most) for a's transport, the attacker's is dropped throughout."""
    a, b = await _pair()
    b_connect = asyncio.ensure_future(b.connect())
    try:
        await _until(lambda: bool(a._validated))
        b_socket = b._protocols[0].transport
        a_address = a._protocols[0].transport.get_extra_info("sockname")
        for i in range(ice.MAX_EARLY_DATAGRAMS + 4):
            attacker.sendto(b"\x16attacker", a_address)
            b_socket.sendto(b"\x16peer %d" % i, a_address)
        await _until(
            lambda: (
                a.dropped["unvalidated_source"] == ice.MAX_EARLY_DATAGRAMS + 4
                and a.dropped["early_overflow"] == 4
            )
        )
        assert a._queue.qsize() == ice.MAX_EARLY_DATAGRAMS
        await asyncio.wait_for(asyncio.gather(a.connect(), b_connect), 10)
        recorder = _Recorder()
        transport = ice.IceDatagramTransport(a, recorder)
        await _until(lambda: len(recorder.received) == ice.MAX_EARLY_DATAGRAMS)
        assert [d for d, _ in recorder.received] == [
            b"\x16peer %d" % i for i in range(ice.MAX_EARLY_DATAGRAMS)
        ]
        # after nomination: the nominated 5-tuple only
        attacker.sendto(b"\x16attacker", a_address)
        b_socket.sendto(b"\x16after", a_address)
        await _until(lambda: a.dropped["unexpected_source"] == 1)
        await _until(lambda: recorder.received[-1][0] == b"\x16after")
        transport.close()
    finally:
        b_connect.cancel()
        await a.close()
        await b.close()


def _binding_request(*attributes: tuple[str, Any], key: bytes | None = None) -> bytes:
    message = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST
    )
    for name, value in attributes:
        message.attributes[name] = value
    if key is not None:
        message.add_message_integrity(key)
        message.add_fingerprint()
    return bytes(message)


async def test_unauthenticated_stun_is_never_answered_with_more_bytes(
    attacker: socket.socket,
) -> None:
    """aioice answers requests it cannot authenticate with an unsigned 400 or 401. A
    bare 20-byte Binding request drew a 48-byte 400 (2.4x): now an error goes out only
    when it is no larger than its request, which every real check is (USERNAME,
    MESSAGE-INTEGRITY, FINGERPRINT, PRIORITY, ICE-CONTROLLING: 80 bytes and more)."""
    peer = SecurePeer(host_addresses=["127.0.0.1"])
    try:
        await peer.create_offer()
        target = _address(peer)
        bare = _binding_request()
        wrong_password = _binding_request(
            ("USERNAME", f"{peer._ice.local_username}:someone"),
            ("PRIORITY", 1),
            ("ICE-CONTROLLING", 1),
            key=b"not the password",
        )
        answers: list[bytes] = []
        loop = asyncio.get_running_loop()
        loop.add_reader(attacker.fileno(), lambda: answers.append(attacker.recv(65536)))
        try:
            attacker.sendto(bare, target)
            attacker.sendto(wrong_password, target)

            async def answered() -> None:
                while not answers:
                    await asyncio.sleep(0.002)

            await asyncio.wait_for(answered(), 5)
            await _settle()
        finally:
            loop.remove_reader(attacker.fileno())
        assert len(bare) == 20
        assert peer.stats()["dropped"]["stun_error_suppressed"] == 1
        (answer,) = answers  # the 401, to the request that carried enough bytes
        assert answer[:2] == b"\x01\x11"  # Binding error response
        assert len(answer) <= len(wrong_password)
    finally:
        await peer.close()


def test_server_still_answers_a_retransmitted_final_flight_once_connected() -> None:
    """What the epoch-0 discard must not break: the server's last flight (CCS, Finished)
    is lost, the client resends its own; its epoch-1 Finished (authenticated) alone
    makes the connected server resend, and the client completes."""
    client = DtlsConnection12(True, cert("alice"), cookies=False, remote_fingerprints=pins("bob"))
    server = DtlsConnection12(False, cert("bob"), cookies=False, remote_fingerprints=pins("alice"))
    client.connect(0.0)
    server.connect(0.0)
    now = 0.0
    while True:
        now += 0.01
        for datagram in client.datagrams_to_send(now):
            server.receive_datagram(datagram, now)
        if server.state is State.CONNECTED:
            break
        for datagram in server.datagrams_to_send(now):
            client.receive_datagram(datagram, now)
        assert now < 1.0
    lost = server.datagrams_to_send(now)  # the server's final flight never arrives
    assert lost and client.state is State.HANDSHAKING
    timer = client.get_timer()
    assert timer is not None
    client.handle_timer(timer)
    resent = client.datagrams_to_send(timer)
    for datagram in resent:
        server.receive_datagram(datagram, timer)
    assert server.stats.dropped_unexpected_handshake >= 1  # its epoch-0 part
    answer = server.datagrams_to_send(timer)
    assert answer
    for datagram in answer:
        client.receive_datagram(datagram, timer)
    assert client.state is State.CONNECTED


# --- 5. the data channel: SCTP from a wrong source never reaches the association -----------


def _victim_tag(victim: SecurePeer) -> int:
    """The verification tag the victim expects: SNAP publishes it, in the INIT chunk of
    its a=sctp-init, to whoever reads its SDP."""
    description = victim.local_description
    assert description is not None and description.sctp_init is not None
    init = parse_chunk(description.sctp_init)
    assert isinstance(init, InitChunk)
    return init.initiate_tag


def _sctp(victim: SecurePeer, tag: int, chunk: Chunk) -> bytes:
    """A well-formed SCTP packet (right ports, valid CRC32c) for the victim."""
    description = victim.local_description
    assert description is not None and description.sctp_port is not None
    port = description.sctp_port
    return serialize_packet(Packet(port, port, tag, (chunk,)))


def _forged_sctp(victim: SecurePeer) -> list[bytes]:
    """ABORT, SHUTDOWN, a DATA chunk on stream 0 (a DCEP-looking message) and an INIT
    (tag 0, as INIT must): the chunks that would end, close, inject into or restart
    the association."""
    tag = _victim_tag(victim)
    return [
        _sctp(victim, tag, AbortChunk()),
        _sctp(victim, tag, ShutdownChunk(0)),
        _sctp(victim, tag, DataChunk(1, 0, 0, 51, b"injected", False, True, True)),
        _sctp(victim, 0, InitChunk(0x1234_5678, 131072, 1024, 1024, 1)),
    ]


def _record(epoch: int, sequence: int, ctype: int, fragment: bytes) -> bytes:
    """A DTLS 1.2 record header around ``fragment``: in epoch 1 it is a forgery whose
    "ciphertext" no key opens; in epoch 0 it is plaintext that anyone can write."""
    return struct.pack("!BHQH", ctype, 0xFEFD, epoch << 48 | sequence, len(fragment)) + fragment


def _record13(sequence: int, ciphertext: bytes) -> bytes:
    """A DTLS 1.3 ciphertext record (RFC 9147 4: unified header 001CSLEE with no
    connection id, a 16-bit sequence number, a length, epoch bits 3: the application
    data epoch) around ``ciphertext``, which no key opens."""
    return bytes([0b0010_1111]) + struct.pack("!HH", sequence, len(ciphertext)) + ciphertext


def _attack_datagrams(victim: SecurePeer) -> list[bytes]:
    """Each forged SCTP packet raw, inside a DTLS 1.2 epoch-1 application-data record
    (the packet as "ciphertext" after an explicit nonce), inside a DTLS 1.3 application
    epoch record, and inside an epoch-0 (plaintext) one: 16 datagrams."""
    out: list[bytes] = []
    for i, packet in enumerate(_forged_sctp(victim)):
        out.append(packet)
        out.append(_record(1, 1000 + i, 23, bytes(8) + packet + bytes(16)))
        out.append(_record13(1000 + i, packet + bytes(16)))
        out.append(_record(0, 1000 + i, 23, packet))
    return out


_ASSOCIATION_INPUT = (
    "packets_in", "chunks_in", "messages_in", "bytes_in", "dropped", "error_causes"
)


def _association_input(peer: SecurePeer) -> dict[str, Any]:
    """What the association has heard (its inbound counters, copied)."""
    assert peer._sctp is not None
    stats = peer._sctp.association.stats
    return {name: _copied(getattr(stats, name)) for name in _ASSOCIATION_INPUT}


def _copied(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


async def _quiet(*peers: SecurePeer) -> None:
    """Wait until the associations have nothing left in flight: no inbound counter and
    no datagram count moved for 300 ms, longer than the 200 ms delayed SACK. A loaded
    machine can otherwise land the last handshake's SACK inside a test's window."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0

    def snapshot() -> list[Any]:
        return [(_association_input(p), p.stats()["datagrams_out"]) for p in peers]

    last = snapshot()
    while loop.time() < deadline:
        await asyncio.sleep(0.3)
        now = snapshot()
        if now == last:
            return
        last = now
    raise AssertionError("the associations never went quiet")


async def _open_channels(a: SecurePeer, b: SecurePeer) -> tuple[DataChannel, DataChannel]:
    """Connect (a offers a data channel) and return a's channel and b's end of it."""
    theirs: list[DataChannel] = []
    b.on("datachannel", theirs.append)
    mine = a.create_data_channel("target")
    await _connected(a, b)
    await asyncio.wait_for(mine.wait_open(), 10)
    await _until(lambda: bool(theirs))
    await asyncio.wait_for(theirs[0].wait_open(), 10)
    return mine, theirs[0]


async def _channels_work(mine: DataChannel, theirs: DataChannel) -> None:
    """One message each way, nothing else (the injected DATA above all) heard."""
    heard: dict[str, list[Any]] = {"mine": [], "theirs": []}
    mine.on("message", heard["mine"].append)
    theirs.on("message", heard["theirs"].append)
    mine.send("ping")
    theirs.send(b"pong")
    await _until(lambda: bool(heard["mine"] and heard["theirs"]))
    await _settle()
    assert heard == {"mine": [b"pong"], "theirs": ["ping"]}
    assert mine.ready_state == theirs.ready_state == "open"


@pytest.mark.parametrize("peers", [True, False], ids=["ice", "udp"], indirect=True)
async def test_sctp_from_elsewhere_never_reaches_the_association(
    peers: tuple[SecurePeer, SecurePeer], attacker: socket.socket
) -> None:
    """Raw SCTP, forged epoch-1 and epoch-0 DTLS records carrying it, from another
    port or host once the channel is open: every one counted as unexpected_source
    before DTLS sees it; neither association's inbound counters move; no answer."""
    a, b = peers
    mine, theirs = await _open_channels(a, b)
    await _quiet(a, b)
    answers: list[bytes] = []
    loop = asyncio.get_running_loop()
    loop.add_reader(attacker.fileno(), lambda: answers.append(attacker.recv(65536)))
    try:
        before = {p: (_offpath_drops(p), _association_input(p)) for p in (a, b)}
        dtls_before = {p: p.stats()["dtls"] for p in (a, b)}
        sent = {a: 0, b: 0}
        for victim in (a, b):
            for datagram in _attack_datagrams(victim):
                attacker.sendto(datagram, _address(victim))
                sent[victim] += 1
        await _until(lambda: all(_offpath_drops(p) - before[p][0] == sent[p] for p in (a, b)))
        await _settle()
    finally:
        loop.remove_reader(attacker.fileno())
    assert answers == []
    for peer in (a, b):
        assert _offpath_drops(peer) - before[peer][0] == sent[peer] == 16
        assert peer.stats()["dropped"]["unexpected_source"] >= 16
        assert _association_input(peer) == before[peer][1]
        dtls = peer.stats()["dtls"]
        for counter in ("dropped_authentication", "dropped_epoch", "dropped_malformed"):
            assert dtls[counter] == dtls_before[peer][counter]  # DTLS never saw them
    await _channels_work(mine, theirs)
    assert a.state == b.state == PeerState.CONNECTED


@pytest.mark.parametrize(
    ("versions", "dtls_drops"),
    [
        (("1.3", "1.2"), {"dropped_authentication": 4, "dropped_malformed": 8}),
        (("1.2",), {"dropped_authentication": 4, "dropped_epoch": 4, "dropped_malformed": 4}),
    ],
    ids=["dtls1.3", "dtls1.2"],
)
async def test_forged_sctp_in_forged_records_on_the_validated_path_is_dropped_by_dtls(
    versions: tuple[str, ...], dtls_drops: dict[str, int]
) -> None:
    """The same forgeries with the peer's own source address (a spoofing attacker).
    Raw SCTP is not DTLS (its first byte is no RFC 7983 class): the peer drops it. In
    DTLS 1.3 the application-epoch records fail authentication and the 1.2-format
    ones are malformed; in DTLS 1.2 the epoch-1 records fail authentication, the
    epoch-0 ones (an INIT, an ABORT in plaintext application data) are refused once
    connected and the 1.3 headers are malformed. All 16 datagrams are counted; nothing
    reaches the association, which keeps its state and channels."""
    a = SecurePeer(host_addresses=["127.0.0.1"], dtls_versions=versions)
    b = SecurePeer(host_addresses=["127.0.0.1"], dtls_versions=versions)
    try:
        mine, theirs = await _open_channels(a, b)
        await _quiet(a, b)
        for victim, spoofed in ((a, b), (b, a)):
            before = _association_input(victim)
            dtls_before = victim.stats()["dtls"]
            dropped_before = sum(victim.stats()["dropped"].values())
            out_before = victim.stats()["datagrams_out"]
            datagrams = _attack_datagrams(victim)
            for datagram in datagrams:
                _nominated_socket(spoofed).sendto(datagram, _address(victim))
            await _settle()
            dtls = victim.stats()["dtls"]
            changed = {
                name: dtls[name] - dtls_before[name]
                for name in dtls
                if name.startswith("dropped_") and dtls[name] != dtls_before[name]
            }
            assert changed == dtls_drops
            raw = sum(victim.stats()["dropped"].values()) - dropped_before
            assert raw == 4  # the raw SCTP packets, dropped before DTLS
            assert sum(changed.values()) + raw == len(datagrams) == 16
            assert _association_input(victim) == before
            assert victim.stats()["datagrams_out"] == out_before  # nothing answered them
            assert victim.stats()["sctp"]["state"] == "established"
        await _channels_work(mine, theirs)
    finally:
        await a.close()
        await b.close()


async def test_the_forged_sctp_packets_would_be_acted_on_if_authenticated(
    peers: tuple[SecurePeer, SecurePeer],
) -> None:
    """The control for the two tests above: the same packets, sent by the real peer
    inside genuine DTLS records, do reach the association (the tag, ports and CRC32c
    are right), and the ABORT ends it. So their absence above is the source check and
    the DTLS record protection at work, not a malformed forgery."""
    a, b = peers
    _mine, theirs = await _open_channels(a, b)
    await _settle()
    abort, _shutdown, data, _init = _forged_sctp(b)
    assert a._dtls is not None
    before = _association_input(b)
    a._dtls.send(data)
    await _until(lambda: _association_input(b)["packets_in"] == before["packets_in"] + 1)
    a._dtls.send(abort)
    await _until(lambda: theirs.ready_state == "closed")
    assert b.stats()["sctp"]["state"] == "closed"
