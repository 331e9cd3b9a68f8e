"""IceConnection's consent fast path (``_consent_stun``) against aioice's handling of the
same datagrams: the same answer bytes, and every request it does not fully understand
or authenticate (wrong password, another source, a role conflict, a nomination to act
on) left to aioice, whose answer or silence (the amplification rule) stays the rule.
Each test sends datagrams straight into the connection's gate, with the nominated
socket's transport swapped for a recorder for the time of the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aioice
import aioice.ice
import aioice.stun
import pytest

from tests.test_ice import _pair
from webrtc_secure import ice

pytestmark = pytest.mark.both_loops


class Recorder:
    """Stands in for a socket transport: what would have been sent, and where."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append((data, addr))

    def take(self) -> list[aioice.stun.Message]:
        messages = [aioice.stun.parse_message(data) for data, _ in self.sent]
        self.sent.clear()
        return messages


@dataclass
class Connected:
    a: ice.IceConnection  # controlling
    b: ice.IceConnection  # controlled
    swapped: list[tuple[aioice.ice.StunProtocol, Any]] = field(default_factory=list)

    def record(self, connection: ice.IceConnection) -> Recorder:
        """Swap the nominated socket's transport of ``connection`` for a recorder."""
        pair = connection.nominated_pair
        assert pair is not None
        recorder = Recorder()
        self.swapped.append((pair.protocol, pair.protocol.transport))
        pair.protocol.transport = recorder  # type: ignore[assignment]
        return recorder


@pytest.fixture
async def connected() -> AsyncIterator[Connected]:
    a, b = await _pair()
    for connection in (a, b):
        connection.consent_interval = 3600.0  # no check of their own during the test
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
    for connection in (a, b):
        assert connection.checks_task is not None
        await asyncio.wait_for(asyncio.wait([connection.checks_task]), 10)
        assert connection._consent_loop is not None  # consent freshness runs
    made = Connected(a, b)
    yield made
    for protocol, transport in made.swapped:
        protocol.transport = transport
    for connection in (a, b):
        await connection.close()


def _request(
    sender: ice.IceConnection, key: str | None = None, attributes: dict[str, Any] | None = None
) -> aioice.stun.Message:
    """A consent check as aioice's ``sender`` builds it, signed with ``key`` (the
    receiver's password by default), with ``attributes`` added before signing."""
    pair = sender.nominated_pair
    assert pair is not None and sender.remote_password is not None
    request = sender.build_request(pair, nominate=False)
    request.attributes.update(attributes or {})
    request.add_message_integrity((key or sender.remote_password).encode())
    return request


def _deliver(receiver: ice.IceConnection, data: bytes, addr: Any = None) -> None:
    """``data`` from the nominated pair's remote address (or ``addr``) into the gate."""
    pair = receiver.nominated_pair
    assert pair is not None
    gate = receiver.gate(pair.protocol)
    assert gate is not None
    gate(data, addr or pair.remote_addr)


async def test_a_consent_check_is_answered_here_with_aioices_bytes(connected: Connected) -> None:
    a, b = connected.a, connected.b
    recorder = connected.record(a)
    pair = a.nominated_pair
    assert pair is not None
    for sender in (b, b):  # twice: the cached XOR-MAPPED-ADDRESS serves the second
        request = _request(sender)
        _deliver(a, bytes(request))
        (fast,) = recorder.sent
        recorder.sent.clear()
        # what aioice itself sends for the same request
        aioice.Connection.request_received(a, request, pair.remote_addr, pair.protocol)
        (reference,) = recorder.sent
        recorder.sent.clear()
        assert fast == reference
        assert aioice.stun.parse_message(fast[0]).message_class == aioice.stun.Class.RESPONSE
    assert a.consent_checks["answered_here"] == 2
    assert a.dropped == {}


async def test_the_controlled_side_answers_use_candidate_on_its_nominated_pair(
    connected: Connected,
) -> None:
    a, b = connected.a, connected.b
    recorder = connected.record(b)
    pair = b.nominated_pair
    assert pair is not None and pair.nominated and pair.remote_nominated
    _deliver(b, bytes(_request(a, attributes={"USE-CANDIDATE": None})))
    assert [m.message_class for m in recorder.take()] == [aioice.stun.Class.RESPONSE]
    assert b.consent_checks["answered_here"] == 1
    # a nomination not yet acted on is aioice's (RFC 8445 7.3.1.5)
    pair.remote_nominated = False
    answered = []
    original = b.check_incoming

    def seen(*args: Any) -> None:
        answered.append(args[0])
        original(*args)

    b.check_incoming = seen  # type: ignore[method-assign,assignment]
    _deliver(b, bytes(_request(a, attributes={"USE-CANDIDATE": None})))
    assert b.consent_checks["answered_here"] == 1
    assert len(answered) == 1 and pair.remote_nominated  # aioice's check_incoming ran
    assert [m.message_class for m in recorder.take()] == [aioice.stun.Class.RESPONSE]


async def test_a_wrong_password_is_aioices_401_or_silence(connected: Connected) -> None:
    a, b = connected.a, connected.b
    recorder = connected.record(a)
    forged = bytes(_request(b, key="not-the-password-at-all"))
    _deliver(a, forged)
    assert a.consent_checks["answered_here"] == 0
    messages = recorder.take()
    # aioice's 401, unsigned, and only because it is no larger than the request
    assert [m.message_class for m in messages] == [aioice.stun.Class.ERROR]
    assert messages[0].attributes["ERROR-CODE"][0] == 401
    assert len(bytes(messages[0])) <= len(forged)
    # a bare request (no USERNAME, no MESSAGE-INTEGRITY) would draw a larger 400:
    # suppressed, as before the fast path
    bare = aioice.stun.Message(aioice.stun.Method.BINDING, aioice.stun.Class.REQUEST)
    _deliver(a, bytes(bare))
    assert recorder.take() == []
    assert a.dropped["stun_error_suppressed"] == 1


async def test_another_source_or_a_role_conflict_is_left_to_aioice(
    connected: Connected,
) -> None:
    a, b = connected.a, connected.b
    pair = a.nominated_pair
    assert pair is not None
    host, port = pair.remote_addr
    good = bytes(_request(b))
    # the same authentic check from anywhere but the pair's remote address: aioice's
    # (a peer-reflexive candidate, a triggered check), not the fast path's
    assert not a._consent_stun(pair.protocol, good, (host, port + 1))
    assert a._consent_stun(pair.protocol, good, (host, port))
    # a controlling agent told by another controlling one (RFC 8445 7.3.1.1)
    assert b.remote_password is not None
    conflict = _request(b, attributes={"ICE-CONTROLLING": 1})
    del conflict.attributes["ICE-CONTROLLED"]
    conflict.add_message_integrity(b.remote_password.encode())
    assert not a._consent_stun(pair.protocol, bytes(conflict), (host, port))
    # and the controlled one by another controlled one
    assert a.remote_password is not None
    b_pair = b.nominated_pair
    assert b_pair is not None
    clash = _request(a, attributes={"ICE-CONTROLLED": 1})
    del clash.attributes["ICE-CONTROLLING"]
    clash.add_message_integrity(a.remote_password.encode())
    assert not b._consent_stun(b_pair.protocol, bytes(clash), b_pair.remote_addr)
    # a request that names someone else
    other = _request(b)
    other.attributes["USERNAME"] = f"{a.local_username}:someone"
    other.add_message_integrity(b.remote_password.encode())
    assert not a._consent_stun(pair.protocol, bytes(other), (host, port))


async def test_answers_to_our_checks_renew_consent_only_when_authentic(
    connected: Connected,
) -> None:
    a = connected.a
    recorder = connected.record(a)
    pair = a.nominated_pair
    assert pair is not None and a.remote_password is not None
    loop = asyncio.get_running_loop()
    a._consent_start(pair, loop.time())
    (request,) = recorder.take()
    assert request.message_class == aioice.stun.Class.REQUEST
    assert request.check_message_integrity(a.remote_password.encode())
    assert "USE-CANDIDATE" not in request.attributes
    assert request.attributes["ICE-CONTROLLING"] == a._tie_breaker
    assert list(a._consent_pending) == [request.transaction_id]

    def response(key: str, message_class: aioice.stun.Class) -> bytes:
        answer = aioice.stun.Message(
            aioice.stun.Method.BINDING, message_class, transaction_id=request.transaction_id
        )
        if message_class == aioice.stun.Class.ERROR:
            answer.attributes["ERROR-CODE"] = (487, "Role Conflict")
        else:
            answer.attributes["XOR-MAPPED-ADDRESS"] = ("127.0.0.1", 9)
        answer.add_message_integrity(key.encode())
        return bytes(answer)

    confirmed = a.consent_confirmed
    forged = response("not-the-password", aioice.stun.Class.RESPONSE)
    _deliver(a, forged)
    assert a.consent_checks["answered"] == 0 and a.consent_confirmed == confirmed
    assert request.transaction_id in a._consent_pending  # retransmissions continue
    # from elsewhere: not ours to take (and aioice knows no such transaction)
    _deliver(a, response(a.remote_password, aioice.stun.Class.RESPONSE), ("127.0.0.1", 9))
    assert a.consent_checks["answered"] == 0
    assert a.dropped["unverifiable"] == 0
    _deliver(a, response(a.remote_password, aioice.stun.Class.RESPONSE))
    assert a.consent_checks["answered"] == 1 and not a._consent_pending
    assert a.consent_confirmed is not None and confirmed is not None
    assert a.consent_confirmed >= confirmed
    # a replay of the same answer: no open transaction, aioice's (which ignores it)
    _deliver(a, response(a.remote_password, aioice.stun.Class.RESPONSE))
    assert a.consent_checks["answered"] == 1
    # an authenticated error response ends a check without renewing consent
    a._consent_start(pair, loop.time())
    (request,) = recorder.take()
    _deliver(a, response(a.remote_password, aioice.stun.Class.ERROR))
    assert a.consent_checks["unanswered"] == 1 and not a._consent_pending
    assert recorder.take() == []  # nothing sent in reply to any of it


async def test_unanswered_checks_are_retransmitted_on_stuns_schedule_then_dropped(
    connected: Connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer's own schedule, driven by hand (no waiting): copies at 0, RTO, 3 RTO,
    7 RTO (CONSENT_RETRANSMISSIONS = 3), the check given up 15 RTO after the first."""
    a = connected.a
    recorder = connected.record(a)
    pair = a.nominated_pair
    assert pair is not None
    rto = aioice.stun.RETRY_RTO
    loop = asyncio.get_running_loop()
    now = loop.time()
    a._consent_start(pair, now)
    (check,) = a._consent_pending.values()
    moments = []
    sent = []
    while a._consent_pending:
        moments.append(check.due - now)
        monkeypatch.setattr(loop, "time", lambda due=check.due: due)
        a._consent_tick()
        sent.append(len(recorder.sent))
    assert moments == pytest.approx([rto, 3 * rto, 7 * rto, 15 * rto])
    assert sent == [2, 3, 4, 4]
    assert len({data for data, _ in recorder.sent}) == 1  # the same transaction
    assert a.consent_checks["unanswered"] == 1


async def test_a_timer_firing_within_the_clocks_resolution_early_still_acts(
    connected: Connected, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvloop's timers fire up to a millisecond before loop.time() reaches their time:
    what is due then is sent, not re-armed for the same moment (a busy loop)."""
    a = connected.a
    recorder = connected.record(a)
    pair = a.nominated_pair
    assert pair is not None
    loop = asyncio.get_running_loop()
    a._consent_start(pair, loop.time())
    (check,) = a._consent_pending.values()
    due = check.due
    monkeypatch.setattr(loop, "time", lambda: due - ice.TIMER_SLACK / 2)
    a._consent_tick()
    assert len(recorder.sent) == 2  # the first copy and its retransmission
    assert a._consent_wake is not None and a._consent_wake > due


class _Sleeper:
    """Stands in for an IceConnection on the consent clock."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log
        self._consent_wake: float | None = None

    def _consent_tick(self) -> None:
        self.log.append(self.name)


async def test_one_clock_wakes_each_connection_at_its_latest_time_only() -> None:
    loop = asyncio.get_running_loop()
    clock = ice._ConsentClock.of(loop)
    assert ice._ConsentClock.of(loop) is clock
    log: list[str] = []
    now = loop.time()
    early, late, moved, gone = (_Sleeper(n, log) for n in ("early", "late", "moved", "gone"))
    for sleeper, offset in ((late, 0.03), (early, 0.01), (moved, 0.005), (gone, 0.02)):
        sleeper._consent_wake = now + offset
        clock.wake(sleeper, now + offset)  # type: ignore[arg-type]
    # "moved" re-arms later: its first entry is stale and skipped
    moved._consent_wake = now + 0.025
    clock.wake(moved, now + 0.025)  # type: ignore[arg-type]
    del gone, sleeper  # held weakly: never woken
    while len(log) < 3:
        await asyncio.sleep(0.005)
    assert log == ["early", "moved", "late"]
    await asyncio.sleep(0.01)
    assert log == ["early", "moved", "late"]
    # its heap empty, the clock leaves the registry; the next one is new
    assert loop not in ice._ConsentClock._clocks


async def test_the_clock_moves_its_timer_earlier_even_from_a_time_already_past() -> None:
    """uvloop's call_at returns a plain Handle (no when()) for a time already past;
    waking someone earlier than the armed time must still work there."""
    loop = asyncio.get_running_loop()
    clock = ice._ConsentClock.of(loop)
    log: list[str] = []
    past, earlier = _Sleeper("past", log), _Sleeper("earlier", log)
    now = loop.time()
    past._consent_wake = now - 1.0
    clock.wake(past, now - 1.0)  # type: ignore[arg-type]
    earlier._consent_wake = now - 2.0
    clock.wake(earlier, now - 2.0)  # type: ignore[arg-type]
    while len(log) < 2:
        await asyncio.sleep(0.005)
    assert log == ["earlier", "past"]
