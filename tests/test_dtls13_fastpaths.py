"""The DTLS 1.3 record fast paths against the general code they shortcut.

- Sending: :meth:`SendEpoch.protect` (common header shape) and
  :meth:`SendEpoch.protect_application_data` must produce exactly the octets of
  :meth:`SendEpoch.protect_general`, which builds the record field by field.
- Receiving: :meth:`ReceiveEpoch.read_application_data` (the next in-order
  application data record, replay window kept lazily) followed by the general path
  for whatever it declines must give the same content, the same errors, the same
  replay state and the same failure count as :meth:`ReceiveEpoch.open_record` alone,
  for genuine, reordered, replayed, tampered, truncated, extended, foreign-epoch and
  odd-shaped records.
- Through DtlsConnection: a connected 1.3 pair with the fast path and one without it
  must deliver the same events and count the same drops for the same hostile input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dtls_pair import cert, drain_events, pins, run
from webrtc_secure.dtls import DtlsConnection, State, keys13
from webrtc_secure.dtls.events import ApplicationData
from webrtc_secure.dtls.handshake13 import Dtls13
from webrtc_secure.dtls.keys13 import TrafficKeys
from webrtc_secure.dtls.records13 import (
    CiphertextRecord,
    ReceiveEpoch,
    SendEpoch,
    split_datagram,
)
from webrtc_secure.dtls.suites13 import SUITES13, CipherSuite13, Suite13Info
from webrtc_secure.errors import (
    AuthenticationFailed,
    DtlsError,
    MalformedPacket,
    ReplayDetected,
)

SLOW = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUITE_IDS = list(CipherSuite13)


def _keys(suite: Suite13Info, seed: int = 0) -> TrafficKeys:
    secret = bytes((seed + i) % 256 for i in range(keys13.digest_size(suite.hash_name)))
    return keys13.traffic_keys(suite.hash_name, secret, suite.key_length)


# --- sending -----------------------------------------------------------------------------


@SLOW
@given(
    suite_id=st.sampled_from(SUITE_IDS),
    epoch=st.integers(2, 9),
    first_sequence=st.one_of(
        st.integers(0, 3),
        st.integers(0xFFF0, 0x1000F),
        st.integers(0, SUITES13[CipherSuite13.TLS_AES_128_GCM_SHA256].confidentiality_limit - 9),
    ),
    records=st.lists(
        st.tuples(st.sampled_from([21, 22, 23, 26]), st.binary(max_size=300)),
        min_size=1,
        max_size=8,
    ),
)
def test_protect_fast_forms_match_the_general_construction(
    suite_id: CipherSuite13, epoch: int, first_sequence: int, records: list[tuple[int, bytes]]
) -> None:
    suite = SUITES13[suite_id]
    keys = _keys(suite)
    common, application, general = (SendEpoch(suite, keys, epoch, first_sequence) for _ in "abc")
    for content_type, content in records:
        reference = general.protect_general(content_type, content)
        assert common.protect(content_type, content) == reference
        if content_type == 23:
            assert application.protect_application_data(content) == reference
        else:
            application.protect_general(content_type, content)  # keep the three in step
    assert common.next_sequence == application.next_sequence == general.next_sequence


@pytest.mark.parametrize("suite_id", SUITE_IDS)
def test_protect_fast_forms_refuse_what_the_general_one_refuses(suite_id: CipherSuite13) -> None:
    suite = SUITES13[suite_id]
    keys = _keys(suite)
    largest = bytes(1 << 14)
    too_large = bytes((1 << 14) + 1)
    protectors: list[Callable[[SendEpoch, bytes], bytes]] = [
        lambda s, c: s.protect(23, c),
        lambda s, c: s.protect_application_data(c),
        lambda s, c: s.protect_general(23, c),
    ]
    for protect in protectors:
        sender = SendEpoch(suite, keys, 3)
        assert len(protect(sender, largest)) == 5 + (1 << 14) + 1 + 16
        with pytest.raises(ValueError):
            protect(sender, too_large)
        assert sender.next_sequence == 1  # a refused record uses no sequence number
        # at the usage limit (2^24.5 records for AES-GCM; the limit itself for ChaCha)
        sender = SendEpoch(suite, keys, 3, min(suite.confidentiality_limit, (1 << 64) - 1))
        with pytest.raises(DtlsError):
            protect(sender, b"x")


@SLOW
@given(
    suite_id=st.sampled_from(SUITE_IDS),
    epoch=st.integers(3, 9),
    first_sequence=st.one_of(
        st.integers(0, 3),
        st.integers(0xFFF0, 0x1000F),
        st.integers(0, SUITES13[CipherSuite13.TLS_AES_128_GCM_SHA256].confidentiality_limit - 9),
    ),
    contents=st.lists(st.binary(max_size=1300), max_size=8),
)
def test_protect_many_matches_one_record_at_a_time(
    suite_id: CipherSuite13, epoch: int, first_sequence: int, contents: list[bytes]
) -> None:
    """The batch (one AES-ECB call for all the masks) makes the octets of
    protect_application_data called once per record, and of the general
    construction."""
    suite = SUITES13[suite_id]
    keys = _keys(suite)
    batch, single, general = (SendEpoch(suite, keys, epoch, first_sequence) for _ in "abc")
    calls: list[int] = []
    mask_of, mask_into = batch._mask_of, batch._mask_into

    def counted_mask_of(samples: bytes) -> bytes:
        calls.append(len(samples))
        return mask_of(samples)

    def counted_mask_into(sample: bytes, out: bytearray) -> object:
        calls.append(-1)
        return mask_into(sample, out)

    batch._mask_of, batch._mask_into = counted_mask_of, counted_mask_into
    records = batch.protect_application_data_many(contents)
    if not suite.is_chacha and len(contents) > 1:
        assert calls == [16 * len(contents)]  # one AES-ECB call for every mask
    else:
        assert calls == [-1] * len(contents)  # one record at a time
    assert records == [single.protect_application_data(c) for c in contents]
    assert records == [general.protect_general(23, c) for c in contents]
    assert batch.next_sequence == single.next_sequence == first_sequence + len(contents)


@pytest.mark.parametrize("suite_id", SUITE_IDS)
def test_protect_many_refuses_at_the_same_record(suite_id: CipherSuite13) -> None:
    """A batch that reaches the usage limit, or holds an oversized content, gives
    the records before the refusal and then the same error as one record at a time,
    with the same sequence number used up."""
    suite = SUITES13[suite_id]
    keys = _keys(suite)
    limit = min(suite.confidentiality_limit, (1 << 64) - 1)
    cases: list[tuple[int, list[bytes], type[Exception]]] = [
        (limit - 2, [b"a", b"b", b"c", b"d"], DtlsError),
        (5, [b"a", bytes((1 << 14) + 1), b"c"], ValueError),
    ]
    for first_sequence, contents, error in cases:
        batch, single = (SendEpoch(suite, keys, 3, first_sequence) for _ in "ab")
        with pytest.raises(error):
            batch.protect_application_data_many(contents)
        made = []
        with pytest.raises(error):
            for content in contents:
                made.append(single.protect_application_data(content))
        assert batch.next_sequence == single.next_sequence == first_sequence + len(made)


# --- receiving ---------------------------------------------------------------------------


def _opened_by_general_path(receiver: ReceiveEpoch, datagram: bytes) -> list[Any]:
    """What split_datagram + open_record make of a datagram: one outcome per record."""
    records, clean = split_datagram(datagram)
    outcomes: list[Any] = [] if clean else [("unclean",)]
    for record in records:
        if not isinstance(record, CiphertextRecord):
            outcomes.append(("plaintext",))
            continue
        try:
            outcomes.append(("ok", receiver.open_record(record)))
        except (AuthenticationFailed, ReplayDetected, MalformedPacket) as exc:
            outcomes.append(("error", type(exc).__name__))
    return outcomes


def _opened_with_fast_path(receiver: ReceiveEpoch, datagram: bytes) -> tuple[list[Any], bool]:
    """The engine's order: the fast path, then the general path if it declined."""
    try:
        content = receiver.read_application_data(datagram)
    except AuthenticationFailed:
        return [("error", "AuthenticationFailed")], True
    if content is None:
        return _opened_by_general_path(receiver, datagram), False
    return [("ok", (23, content, receiver.epoch, receiver.highest_sequence))], True


_RECEIVE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from([23, 23, 23, 22, 26, 21]), st.integers(0, 200)),
        st.tuples(st.just("hold"), st.integers(0, 200)),  # sent now, delivered later
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("padded"), st.integers(1, 40)),
        st.tuples(st.just("shape"), st.sampled_from([(1, True), (1, False), (2, False)])),
        st.tuples(st.just("skip"), st.integers(1, 0x9000)),  # the sender runs ahead
        st.tuples(st.just("replay"), st.integers(0, 50)),
        st.tuples(st.just("flip"), st.integers(0, 50), st.integers(0, 4000)),
        st.tuples(st.just("truncate"), st.integers(0, 50), st.integers(0, 40)),
        st.tuples(st.just("extend"), st.integers(0, 50), st.binary(min_size=1, max_size=20)),
        st.tuples(st.just("length"), st.integers(0, 50), st.integers(-20, 20)),
        st.tuples(st.just("foreign"), st.sampled_from([2, 4, 7]), st.integers(0, 100)),
    ),
    min_size=1,
    max_size=40,
)


def _receive_datagrams(
    sender: SendEpoch, ops: list[tuple[Any, ...]], suite: Suite13Info
) -> Iterator[bytes]:
    """The datagrams ``ops`` make, in delivery order."""
    pool: list[bytes] = []
    held: list[bytes] = []
    for op in ops:
        kind = op[0]
        datagram: bytes | None = None
        if kind == "send":
            datagram = sender.protect(op[1], bytes([op[2] % 251]) * op[2])
        elif kind == "hold":
            held.append(sender.protect(23, b"h" * op[1]))
        elif kind == "release" and held:
            datagram = held.pop(op[1] % len(held))
        elif kind == "padded":
            datagram = sender.protect(23, b"padded", padding=op[1])
        elif kind == "shape":
            sequence_length, with_length = op[1]
            datagram = sender.protect(23, b"shape", 0, sequence_length, with_length)
        elif kind == "skip":
            sender.next_sequence += op[1]
        elif kind == "foreign":
            # another epoch (other keys): epoch 7 has this epoch's low bits
            datagram = SendEpoch(suite, _keys(suite, op[1]), op[1]).protect(23, b"foreign")
        elif pool:
            base = pool[op[1] % len(pool)]
            if kind == "replay":
                datagram = base
            elif kind == "flip" and base:
                flipped = bytearray(base)
                flipped[op[2] % len(flipped)] ^= 1 << (op[2] % 8)
                datagram = bytes(flipped)
            elif kind == "truncate":
                datagram = base[: max(0, len(base) - 1 - op[2])]
            elif kind == "extend":
                datagram = base + op[2]
            elif kind == "length" and len(base) >= 5 and base[0] & 0x04:
                length = max(0, min(0xFFFF, int.from_bytes(base[3:5], "big") + op[2]))
                datagram = base[:3] + length.to_bytes(2, "big") + base[5:]
        if datagram is not None:
            pool.append(datagram)
            yield datagram
    yield from held


@SLOW
@given(suite_id=st.sampled_from(SUITE_IDS), ops=_RECEIVE_OPS)
def test_read_application_data_agrees_with_open_record(
    suite_id: CipherSuite13, ops: list[tuple[Any, ...]]
) -> None:
    suite = SUITES13[suite_id]
    keys = _keys(suite)
    fast, general = ReceiveEpoch(suite, keys, 3, 64), ReceiveEpoch(suite, keys, 3, 64)
    taken = 0
    for datagram in _receive_datagrams(SendEpoch(suite, keys, 3), ops, suite):
        outcome, fast_path = _opened_with_fast_path(fast, datagram)
        taken += fast_path
        assert outcome == _opened_by_general_path(general, datagram)
        assert fast.highest_sequence == general.highest_sequence
        assert fast.failures == general.failures
    if ops[0][:2] == ("send", 23):
        assert taken, "the fast path never ran"


def test_lazily_kept_window_still_refuses_replays() -> None:
    """Records the fast path accepted (it moves only the highest record number) are
    in the window by the time the general path judges a replay or a late record."""
    suite = SUITES13[CipherSuite13.TLS_AES_128_GCM_SHA256]
    keys = _keys(suite)
    sender, receiver = SendEpoch(suite, keys, 3), ReceiveEpoch(suite, keys, 3, 64)
    sent = [sender.protect_application_data(b"%d" % i) for i in range(300)]
    late = sent.pop(250)  # delivered after its successors
    for i, datagram in enumerate(sent):
        content = receiver.read_application_data(datagram)
        if i == 250:  # record 251 after the gap: the general path, then fast again
            assert content is None
            content = receiver.open_record(_only_ciphertext(datagram)).content
        assert content == b"%d" % (i if i < 250 else i + 1)
    assert receiver.highest_sequence == 299
    for old in (sent[0], sent[200], sent[298]):
        assert receiver.read_application_data(old) is None  # not the next record
        with pytest.raises(ReplayDetected):
            receiver.open_record(_only_ciphertext(old))
    opened = receiver.open_record(_only_ciphertext(late))
    assert (opened.content, opened.sequence_number) == (b"250", 250)
    with pytest.raises(ReplayDetected):
        receiver.open_record(_only_ciphertext(late))
    # and the fast path goes on after the general path moved the window
    assert receiver.read_application_data(sender.protect_application_data(b"next")) == b"next"
    assert receiver.highest_sequence == 300


def test_fast_path_declines_without_side_effects() -> None:
    """Every datagram the fast path does not take leaves the receiver as it was."""
    suite = SUITES13[CipherSuite13.TLS_AES_128_GCM_SHA256]
    keys = _keys(suite)
    sender, receiver = SendEpoch(suite, keys, 3), ReceiveEpoch(suite, keys, 3)
    declined = [
        b"",
        b"\x2f",
        sender.protect(26, b"\x00\x00"),  # an ACK: authenticated, left to the general path
        sender.protect(23, b"pad", padding=3),
        sender.protect(23, b"short seq", 0, 1, True),
        sender.protect(23, b"no length", 0, 2, False),
        SendEpoch(suite, keys, 4).protect(23, b"epoch 4"),
    ]
    ahead = SendEpoch(suite, keys, 3, 5).protect_application_data(b"ahead")
    for datagram in [*declined, ahead, ahead + b"x", ahead[:-1]]:
        assert receiver.read_application_data(datagram) is None
        assert (receiver.highest_sequence, receiver.failures) == (-1, 0)
    tampered = bytearray(SendEpoch(suite, keys, 3).protect_application_data(b"forged"))
    tampered[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        receiver.read_application_data(bytes(tampered))
    assert (receiver.highest_sequence, receiver.failures) == (-1, 1)


def _only_ciphertext(datagram: bytes) -> CiphertextRecord:
    records, clean = split_datagram(datagram)
    assert clean and len(records) == 1 and isinstance(records[0], CiphertextRecord)
    return records[0]


# --- through DtlsConnection ----------------------------------------------------------------


def _pair13() -> tuple[DtlsConnection, DtlsConnection]:
    client = DtlsConnection(
        True, cert("client"), remote_fingerprints=pins("server"), dtls_versions=("1.3",)
    )
    server = DtlsConnection(
        False,
        cert("server"),
        remote_fingerprints=pins("client"),
        dtls_versions=("1.3",),
        cookies=False,
    )
    run(client, server)
    assert client.version_name == server.version_name == "DTLS 1.3"
    # the client is connected once the server acknowledged its Finished
    for _ in range(3):
        for a, b in ((client, server), (server, client)):
            for d in a.datagrams_to_send(1.0):
                b.receive_datagram(d, 1.0)
    drain_events(client)
    drain_events(server)
    return client, server


_CONNECTION_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 1400)),
        st.tuples(st.just("hold"), st.integers(0, 300)),
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("replay"), st.integers(0, 50)),
        st.tuples(st.just("flip"), st.integers(0, 50), st.integers(0, 2000)),
        st.tuples(st.just("truncate"), st.integers(0, 50), st.integers(0, 40)),
        st.tuples(st.just("extend"), st.integers(0, 50), st.binary(min_size=1, max_size=20)),
        st.tuples(st.just("epoch"), st.integers(0, 50), st.integers(0, 3)),
        st.tuples(st.just("length"), st.integers(0, 50), st.integers(1, 20)),
        st.tuples(st.just("key_update"), st.booleans()),
    ),
    min_size=1,
    max_size=25,
)


def _apply(
    client: DtlsConnection, server: DtlsConnection, ops: list[tuple[Any, ...]]
) -> list[tuple[str, bytes]]:
    """The datagrams ``ops`` make for this pair, with who receives each."""
    pool: list[bytes] = []
    held: list[bytes] = []
    out: list[tuple[str, bytes]] = []
    for op in ops:
        kind = op[0]
        if kind in ("send", "hold"):
            client.send(bytes([op[1] % 251]) * op[1])
            (datagram,) = client.datagrams_to_send(1.0)
            pool.append(datagram)
            if kind == "hold":
                held.append(datagram)
            else:
                out.append(("server", datagram))
        elif kind == "release" and held:
            out.append(("server", held.pop(op[1] % len(held))))
        elif kind == "key_update":
            # a KeyUpdate round trip: new epochs on both sides, then back to data
            client.key_update(request_peer_update=op[1])
            out += [("server", d) for d in client.datagrams_to_send(1.0)]
            out.append(("flush", b""))
        elif pool:
            base = pool[op[1] % len(pool)]
            if kind == "replay":
                out.append(("server", base))
            elif kind == "flip" and len(base) > 5:
                # in the protected part: a flip in the header could make the two pairs'
                # (different) ciphertexts parse as different records
                flipped = bytearray(base)
                flipped[5 + op[2] % (len(flipped) - 5)] ^= 1 << (op[2] % 8)
                out.append(("server", bytes(flipped)))
            elif kind == "truncate":
                out.append(("server", base[: max(0, len(base) - 1 - op[2])]))
            elif kind == "extend":
                out.append(("server", base + op[2]))
            elif kind == "epoch":
                out.append(("server", bytes([(base[0] & 0xFC) | op[2]]) + base[1:]))
            elif kind == "length":
                length = max(0, min(0xFFFF, int.from_bytes(base[3:5], "big") + op[2]))
                out.append(("server", base[:3] + length.to_bytes(2, "big") + base[5:]))
    out += [("server", d) for d in held]
    return out


def _deliver(
    client: DtlsConnection, server: DtlsConnection, to: str, datagram: bytes
) -> list[object]:
    if to == "flush":
        # the rest of a KeyUpdate exchange: ACKs and the server's own update
        for _ in range(4):
            for a, b in ((server, client), (client, server)):
                for d in a.datagrams_to_send(1.0):
                    b.receive_datagram(d, 1.0)
    else:
        server.receive_datagram(datagram, 1.0)
    return drain_events(server)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_CONNECTION_OPS)
def test_connected_fast_path_matches_the_general_path(ops: list[tuple[Any, ...]]) -> None:
    """Two pairs (their own keys), the same operations: the one whose server may
    not use the fast path must see the same events, counters and state. The
    operations are chosen so that nothing depends on key values: a record tampered
    with after its header fails authentication under any key, a replayed one is a
    replay under any key, a length that overruns the datagram ends its parse. (Header
    tampering that could make ciphertext octets parse as a record header is covered
    above, per record, with shared keys.)"""
    fast_client, fast_server = _pair13()
    general_client, general_server = _pair13()
    fast_datagrams = _apply(fast_client, fast_server, ops)
    general_datagrams = _apply(general_client, general_server, ops)
    assert [to for to, _ in fast_datagrams] == [to for to, _ in general_datagrams]
    taken = 0
    real = ReceiveEpoch.read_application_data

    def counting(self: ReceiveEpoch, data: bytes) -> bytes | None:
        nonlocal taken
        content = real(self, data)
        taken += content is not None
        return content

    for (to, fast_datagram), (_, general_datagram) in zip(
        fast_datagrams, general_datagrams, strict=True
    ):
        with mock.patch.object(ReceiveEpoch, "read_application_data", counting):
            fast_events = _deliver(fast_client, fast_server, to, fast_datagram)
        with mock.patch.object(ReceiveEpoch, "read_application_data", lambda self, d: None):
            general_events = _deliver(general_client, general_server, to, general_datagram)
        assert fast_events == general_events
        assert fast_server.stats == general_server.stats
        assert fast_server.state == general_server.state
    if ops[0][0] == "send":  # the next record in order, delivered first
        assert taken, "the fast path never ran"


def test_connection_send_leaves_the_threshold_and_key_updates_to_the_engine() -> None:
    """DtlsConnection.send protects a record itself only while the engine would do
    nothing else: below the KeyUpdate threshold, in an application epoch. At the
    threshold the engine's send_application_data starts the KeyUpdate; while that
    is unacknowledged every record goes through it; the new epoch is direct again."""
    client, server = _pair13()
    engine = client._v13
    assert engine is not None
    start = engine._tx.next_sequence if engine._tx is not None else 0
    engine.key_update_threshold = start + 3
    real = Dtls13.send_application_data
    through_engine: list[int] = []

    def counting(self: Dtls13, data: bytes) -> bytes:
        through_engine.append(data[0])
        return real(self, data)

    received: list[bytes] = []
    with mock.patch.object(Dtls13, "send_application_data", counting):
        for i in range(6):
            client.send(bytes([i]) * 50)
            for d in client.datagrams_to_send(1.0):
                server.receive_datagram(d, 1.0)
            received += [e.data for e in drain_events(server) if isinstance(e, ApplicationData)]
        assert through_engine == [3, 4, 5]
        assert engine.key_updates_sent == 1 and engine.write_epoch == 3
        # the server's ACK moves the client's sending epoch on
        for _ in range(3):
            for a, b in ((server, client), (client, server)):
                for d in a.datagrams_to_send(1.0):
                    b.receive_datagram(d, 1.0)
        assert engine.write_epoch == 4
        engine.key_update_threshold = 1 << 20
        client.send(b"\x06" * 50)
        for d in client.datagrams_to_send(1.0):
            server.receive_datagram(d, 1.0)
        received += [e.data for e in drain_events(server) if isinstance(e, ApplicationData)]
    assert through_engine == [3, 4, 5]
    assert received == [bytes([i]) * 50 for i in range(7)]


def test_integrity_limit_is_the_same_on_the_connected_fast_path() -> None:
    """Forged records that fail authentication on the connection's fast path are
    counted, and end the connection at the AEAD integrity limit, exactly as on the
    general path: same events, counters, state, error and alert datagrams."""
    outcomes = []
    real = ReceiveEpoch.read_application_data
    for fast in (True, False):
        client, server = _pair13()
        engine = server._v13
        assert engine is not None
        engine._rx[engine.read_epoch].integrity_limit = 3  # 2^36 in every suite
        client.send(b"genuine")
        (datagram,) = client.datagrams_to_send(1.0)
        forged = datagram[:-1] + bytes([datagram[-1] ^ 1])  # the tag
        raised = 0

        def counting(self: ReceiveEpoch, data: bytes) -> bytes | None:
            nonlocal raised
            try:
                return real(self, data)
            except AuthenticationFailed:
                raised += 1
                raise

        replacement = counting if fast else (lambda self, data: None)
        steps = []
        with mock.patch.object(ReceiveEpoch, "read_application_data", replacement):
            for _ in range(3):
                server.receive_datagram(forged, 1.0)
                steps.append((server.state, server.stats.dropped_authentication))
            # what a genuine record meets afterwards
            server.receive_datagram(datagram, 1.0)
        assert raised == (3 if fast else 0)
        outcomes.append(
            (
                steps,
                repr(drain_events(server)),  # (exceptions do not compare equal)
                server.stats,
                type(server.error),
                str(server.error),
                len(server.datagrams_to_send(1.0)),
            )
        )
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0][-1][1] == 3 and "integrity limit" in outcomes[0][4]


def test_connection_send_many_makes_the_records_of_send() -> None:
    """DtlsConnection.send_many under DTLS 1.3: the octets one send() per record
    makes (checked against a second sender with the connection's own keys), and the
    receiver takes them, and drops their tampered, replayed, truncated and
    wrong-epoch forms, as it does for records sent one by one."""
    client, server = _pair13()
    engine = client._v13
    assert engine is not None and engine._tx is not None and engine.suite is not None
    tx = engine._tx
    twin = SendEpoch(engine.suite, engine._traffic(engine._tx_secret), tx.epoch, tx.next_sequence)
    payloads = [bytes([i]) * (100 * i) for i in range(1, 7)]
    assert client.send_many(payloads) == 0  # none refused
    datagrams = client.datagrams_to_send(1.0)
    assert datagrams == [twin.protect_application_data(p) for p in payloads]
    hostile = [
        datagrams[0][:-1] + bytes([datagrams[0][-1] ^ 1]),  # tag
        datagrams[1][:-3],  # truncated: the length field overruns
        bytes([datagrams[2][0] ^ 0x01]) + datagrams[2][1:],  # epoch bits
    ]
    for datagram in hostile + datagrams + datagrams[:2]:  # the last two are replays
        server.receive_datagram(datagram, 1.0)
    assert [e.data for e in drain_events(server) if isinstance(e, ApplicationData)] == payloads
    stats = server.stats
    assert stats.dropped_authentication >= 1 and stats.dropped_replay == 2
    assert server.is_connected
    # one send() each: the same records, the same drops on a second pair
    client2, server2 = _pair13()
    for p in payloads:
        client2.send(p)
    datagrams2 = client2.datagrams_to_send(1.0)
    hostile2 = [
        datagrams2[0][:-1] + bytes([datagrams2[0][-1] ^ 1]),
        datagrams2[1][:-3],
        bytes([datagrams2[2][0] ^ 0x01]) + datagrams2[2][1:],
    ]
    for datagram in hostile2 + datagrams2 + datagrams2[:2]:
        server2.receive_datagram(datagram, 1.0)
    assert [e.data for e in drain_events(server2) if isinstance(e, ApplicationData)] == payloads
    assert server2.stats == stats


def test_connection_send_many_leaves_the_threshold_to_the_engine() -> None:
    """A batch that would cross the KeyUpdate threshold goes one send() each, so the
    engine starts its KeyUpdate at the same record; one below it is protected whole.
    Under DTLS 1.2 send_many is one send() each."""
    client, server = _pair13()
    engine = client._v13
    assert engine is not None and engine._tx is not None
    start = engine._tx.next_sequence
    engine.key_update_threshold = start + 4
    real = Dtls13.send_application_data
    through_engine: list[int] = []

    def counting(self: Dtls13, data: bytes) -> bytes:
        through_engine.append(data[0])
        return real(self, data)

    with mock.patch.object(Dtls13, "send_application_data", counting):
        client.send_many([bytes([i]) * 10 for i in range(4)])  # seqs start..start+3: whole
        assert through_engine == [] and engine.key_updates_sent == 0
        client.send_many([bytes([i]) * 10 for i in range(4, 6)])  # at the threshold
        assert through_engine == [4, 5] and engine.key_updates_sent == 1
    for d in client.datagrams_to_send(1.0):
        server.receive_datagram(d, 1.0)
    received = [e.data for e in drain_events(server) if isinstance(e, ApplicationData)]
    assert received == [bytes([i]) * 10 for i in range(6)]
    client12 = DtlsConnection(
        True, cert("client"), remote_fingerprints=pins("server"), dtls_versions=("1.2",)
    )
    server12 = DtlsConnection(
        False, cert("server"), remote_fingerprints=pins("client"), dtls_versions=("1.2",)
    )
    run(client12, server12)
    drain_events(server12)
    assert client12.send_many([b"one", b"two"]) == 0
    for d in client12.datagrams_to_send(1.0):
        server12.receive_datagram(d, 1.0)
    assert [e.data for e in drain_events(server12) if isinstance(e, ApplicationData)] == [
        b"one",
        b"two",
    ]


@pytest.mark.parametrize("versions", [("1.3",), ("1.2",)])
def test_connection_send_many_counts_what_it_refuses(versions: tuple[str, ...]) -> None:
    """A closed connection refuses a whole batch (counted, not raised); one that fails
    at a key's usage limit mid-batch sends the records before it and refuses the rest."""
    client = DtlsConnection(
        True, cert("client"), remote_fingerprints=pins("server"), dtls_versions=versions
    )
    server = DtlsConnection(
        False, cert("server"), remote_fingerprints=pins("client"), dtls_versions=versions
    )
    run(client, server)
    drain_events(server)
    client.close()
    client.datagrams_to_send(1.0)
    assert client.send_many([b"a", b"b", b"c"]) == 3
    assert client.datagrams_to_send(1.0) == []
    if versions != ("1.3",):
        return
    for threshold_above in (False, True):
        client, server = _pair13()
        engine = client._v13
        assert engine is not None and engine._tx is not None
        start = engine._tx.next_sequence
        engine._tx._limit = start + 2  # the key may protect two more records
        # below the threshold the batch is protected whole, and refused whole: none
        # of it was sent; at it, record by record, the first two go out
        engine.key_update_threshold = start + 10 if threshold_above else start
        refused = client.send_many([b"x", b"y", b"z", b"w"])
        for datagram in client.datagrams_to_send(1.0):
            server.receive_datagram(datagram, 1.0)
        delivered = [e.data for e in drain_events(server) if isinstance(e, ApplicationData)]
        assert client.state is State.FAILED
        assert (refused, delivered) == ((4, []) if threshold_above else (2, [b"x", b"y"]))
