"""The handshake's timers: the retransmission timeout derived from the path's round-trip
time, the 3 s backoff cap, the second copy of a resent Finished flight, the bound on the
wait for the peer's first flight, and the RTT that SecurePeer takes from ICE. Fake
clock throughout, except the SecurePeer tests (loopback)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from tests.dtls_pair import DtlsConnection12, cert, drain_events
from tests.netsim import LinkConfig, NetSim, run_handshake
from webrtc_secure import (
    FirstFlightTimeout,
    HandshakeTimeout,
    PeerState,
    SecurePeer,
    SessionDescription,
)
from webrtc_secure.dtls import DtlsConnection
from webrtc_secure.dtls.connection import State, initial_retransmit_timeout_for
from webrtc_secure.dtls.events import ConnectionClosed
from webrtc_secure.ice import check_round_trip, round_trip_time

HOST = ["127.0.0.1"]

#: when a flight nobody answers is sent, given a 20 ms RTT: 100 ms doubling to 3 s
RTT_20MS = (0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.1, 9.1, 12.1, 15.1, 18.1, 21.1, 24.1)
#: the same without a known RTT: 400 ms doubling to 3 s
NO_RTT = (0, 0.4, 1.2, 2.8, 5.8, 8.8, 11.8, 14.8, 17.8, 20.8, 23.8, 26.8, 29.8)


def _client(**kwargs: Any) -> DtlsConnection:
    """Our client engine, pinning the server's certificate as SecurePeer does."""
    return DtlsConnection12(
        True, cert("client"), remote_fingerprints=cert("server").fingerprints(), **kwargs
    )


def _server(**kwargs: Any) -> DtlsConnection:
    return DtlsConnection12(
        False, cert("server"), remote_fingerprints=cert("client").fingerprints(), **kwargs
    )


def _sends_until_failure(conn: DtlsConnection) -> tuple[list[float], float]:
    """Drive a client nobody answers: when it sent its hello, and when it gave up."""
    conn.connect(0.0)
    sent_at: list[float] = []
    now = 0.0
    while conn.state == State.HANDSHAKING:
        if conn.datagrams_to_send(now):
            sent_at.append(round(now, 9))
        timer = conn.get_timer()
        assert timer is not None
        now = timer
        conn.handle_timer(now)
    return sent_at, now


@pytest.mark.parametrize(
    ("rtt", "expected"),
    [(None, 0.4), (0.0, 0.1), (0.02, 0.1), (0.1, 0.15), (0.5, 0.75), (2.0, 3.0), (60, 3.0)],
)
def test_the_initial_timeout_is_one_and_a_half_rtt_within_100_ms_and_3_s(
    rtt: float | None, expected: float
) -> None:
    assert initial_retransmit_timeout_for(rtt) == pytest.approx(expected)
    conn = _client(round_trip_time=rtt)
    assert conn.initial_retransmit_timeout == pytest.approx(expected)
    assert conn.max_retransmit_timeout == 3.0


@pytest.mark.parametrize("rtt", [-0.01, math.nan])
def test_a_negative_or_nan_rtt_is_refused(rtt: float) -> None:
    with pytest.raises(ValueError):
        _client(round_trip_time=rtt)


def test_a_flight_is_resent_twelve_times_from_the_rtt_timer_capped_at_3_s() -> None:
    sent_at, gave_up_at = _sends_until_failure(_client(round_trip_time=0.02))
    assert sent_at == pytest.approx(RTT_20MS)
    # the 12-retransmission give-up is kept: one capped timer after the last copy
    assert gave_up_at == pytest.approx(27.1)


def test_without_an_rtt_the_timer_starts_at_400_ms() -> None:
    conn = _client()
    sent_at, gave_up_at = _sends_until_failure(conn)
    assert sent_at == pytest.approx(NO_RTT)
    assert gave_up_at == pytest.approx(32.8)
    assert isinstance(conn.error, HandshakeTimeout)
    assert not isinstance(conn.error, FirstFlightTimeout)


def test_an_explicit_initial_timeout_wins_over_the_rtt() -> None:
    conn = _client(round_trip_time=0.02, initial_retransmit_timeout=0.5)
    assert _sends_until_failure(conn)[0][:4] == pytest.approx([0, 0.5, 1.5, 3.5])


def test_a_cap_below_the_derived_initial_timeout_lowers_it() -> None:
    conn = _client(round_trip_time=1.0, max_retransmit_timeout=1.0)
    assert conn.initial_retransmit_timeout == 1.0


@pytest.mark.parametrize("lost", range(1, 8))
def test_completion_follows_the_schedule_exactly(lost: int) -> None:
    # the first `lost` hellos are dropped; the next one starts a clean 4-flight exchange
    client = _client(round_trip_time=0.02)
    server = _server(round_trip_time=0.02, cookies=False)
    sim = NetSim(
        0,
        a_to_b=LinkConfig(delay=0.01, drop_indices=frozenset(range(lost))),
        b_to_a=LinkConfig(delay=0.01),
    )
    result = run_handshake(client, server, sim, max_time=60)
    assert result.completed
    assert result.duration == pytest.approx(RTT_20MS[lost] + 0.04)


def test_a_resent_finished_flight_goes_out_twice_and_a_first_one_once() -> None:
    # the server's ChangeCipherSpec + Finished (its 2nd datagram) is lost once: the
    # client resends its Certificate..Finished flight twice, the server answers the
    # first copy with its own final flight twice (the second copy arrives within the
    # hold-off and is not answered again)
    client = _client(round_trip_time=0.02)
    server = _server(round_trip_time=0.02, cookies=False)
    sim = NetSim(
        0,
        a_to_b=LinkConfig(delay=0.01),
        b_to_a=LinkConfig(delay=0.01, drop_indices=frozenset({1})),
    )
    result = run_handshake(client, server, sim, max_time=60)
    assert result.completed
    # hello, Certificate..Finished, then that flight twice at its 100 ms timer
    assert result.a.datagrams_sent == 4
    assert [e.time for e in sim.trace if e.direction == "a->b"] == pytest.approx(
        [0, 0.02, 0.12, 0.12]
    )
    # ServerHello..Done, the lost Finished flight, then it twice
    assert result.b.datagrams_sent == 4
    assert result.duration == pytest.approx(0.14)


def test_a_clean_handshake_sends_each_flight_once() -> None:
    client = _client(round_trip_time=0.02)
    server = _server(round_trip_time=0.02, cookies=False)
    result = run_handshake(client, server, NetSim(0, delay=0.01), max_time=60)
    assert result.completed and result.datagrams == 4
    assert client.stats.retransmissions == server.stats.retransmissions == 0


# --- the wait for the peer's first flight ----------------------------------------------


def test_a_server_gives_up_waiting_for_a_client_hello_after_first_flight_timeout() -> None:
    server = _server(first_flight_timeout=5.0)
    server.connect(100.0)
    assert server.get_timer() == 105.0
    server.handle_timer(104.9)
    assert server.state == State.HANDSHAKING
    server.handle_timer(105.0)
    assert server.state == State.FAILED
    assert isinstance(server.error, FirstFlightTimeout)
    assert isinstance(server.error, HandshakeTimeout)  # callers catching that still do
    assert "no ClientHello within 5 s" in str(server.error)
    assert server.datagrams_to_send(105.0) == []  # no alert to a peer that never spoke
    events = drain_events(server)
    assert isinstance(events[-1], ConnectionClosed)
    assert isinstance(events[-1].error, FirstFlightTimeout)


@pytest.mark.parametrize("cookies", [False, True])
def test_a_client_hello_disarms_the_first_flight_bound(cookies: bool) -> None:
    client = _client(round_trip_time=0.02)
    server = _server(round_trip_time=0.02, cookies=cookies, first_flight_timeout=0.5)
    # the hello arrives just before the bound, the rest of the handshake after it
    sim = NetSim(0, a_to_b=LinkConfig(delay=0.45), b_to_a=LinkConfig(delay=0.45))
    result = run_handshake(client, server, sim, max_time=60)
    assert result.completed and result.duration is not None and result.duration > 0.5


def test_a_client_gives_up_when_nothing_answers_its_hello_within_the_bound() -> None:
    client = _client(round_trip_time=0.02, first_flight_timeout=2.0)
    sent_at, gave_up_at = _sends_until_failure(client)
    assert sent_at == pytest.approx(RTT_20MS[:5]) and gave_up_at == 2.0
    assert isinstance(client.error, FirstFlightTimeout)
    assert "did not answer our ClientHello within 2 s" in str(client.error)


def test_without_the_bound_a_server_waits_like_a_listening_socket() -> None:
    server = _server()
    server.connect(0.0)
    assert server.get_timer() is None
    with pytest.raises(ValueError):
        _server(first_flight_timeout=0)


# --- SecurePeer --------------------------------------------------------------------------


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


async def test_secure_peer_fails_fast_when_the_remote_never_starts_dtls() -> None:
    # ICE passes, but b never runs its DTLS client: a, the DTLS server, used to wait in
    # `connecting` for the 600 s backstop with 0 flights sent
    a = SecurePeer(host_addresses=HOST, first_flight_timeout=0.5)
    b = SecurePeer(host_addresses=HOST)

    async def never_handshakes(is_client: bool, remote: SessionDescription) -> None:
        await asyncio.Event().wait()

    b._handshake = never_handshakes  # type: ignore[method-assign]
    offer = await a.create_offer()
    answer = await b.create_answer(offer)
    b_connect = asyncio.ensure_future(b.connect(offer))
    try:
        with pytest.raises(FirstFlightTimeout, match="never started its handshake"):
            await asyncio.wait_for(a.connect(answer), 20)
        assert a.state == PeerState.FAILED
        assert a.stats()["dtls"]["role"] == "server"
        assert a.stats()["dtls"]["flights_sent"] == 0
    finally:
        b_connect.cancel()
        await asyncio.gather(b_connect, return_exceptions=True)
        await a.close()
        await b.close()


async def test_secure_peer_starts_the_dtls_timer_from_the_ice_rtt() -> None:
    a, b = SecurePeer(host_addresses=HOST), SecurePeer(host_addresses=HOST)
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 20)
        for peer in (a, b):
            assert peer._ice is not None
            rtt = round_trip_time(peer._ice)
            # the nominated pair's check was timed (its value depends on the machine's
            # load, so no bound on it here), and the engine started from it
            assert rtt is not None and 0 <= rtt < 5
            timeout = peer.stats()["dtls"]["initial_retransmit_timeout"]
            assert timeout == initial_retransmit_timeout_for(rtt) >= 0.1
    finally:
        await a.close()
        await b.close()


async def test_secure_peer_without_ice_or_with_an_explicit_timeout() -> None:
    a = SecurePeer(host_addresses=HOST, use_ice=False)
    b = SecurePeer(host_addresses=HOST, use_ice=False, retransmit_timeout=0.25)
    try:
        offer = await a.create_offer()
        answer = await b.create_answer(offer)
        await asyncio.wait_for(asyncio.gather(a.connect(answer), b.connect(offer)), 20)
        assert a.stats()["dtls"]["initial_retransmit_timeout"] == 0.4  # no RTT known
        assert b.stats()["dtls"]["initial_retransmit_timeout"] == 0.25
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize(
    ("elapsed", "rtt"),
    [(0.0, 0.0), (0.02, 0.02), (0.49, 0.49), (0.52, 0.02), (1.51, 0.01), (3.6, 0.1)],
)
def test_a_check_rtt_is_the_time_since_the_last_copy_of_its_request(
    elapsed: float, rtt: float
) -> None:
    # aioice sends a check at 0 and resends it at 0.5, 1.5, 3.5 s ... (RETRY_RTO 0.5 s)
    assert check_round_trip(elapsed, rto=0.5) == pytest.approx(rtt)
