"""The data channel benchmark's per-run counters and its choice of rounds
(benchmarks/datachannel.py).

Functional facts only (counters consistent with each other and with the kernel's,
rounds chosen by the rule), never timings: the machines are shared.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import datachannel

from webrtc_secure.dtls_transport import DtlsTransport
from webrtc_secure.sctp.congestion import initial_cwnd


def _sample(calib: float, calib_end: float | None = None) -> dict[str, Any]:
    return {"counters": {"calib_us": calib, "calib_end_us": calib if calib_end is None
                         else calib_end}}


def test_steady_rounds_leave_out_a_round_with_a_slow_host_run() -> None:
    results = {
        "ours": [_sample(2800), _sample(2900, 5000), _sample(3000)],
        "aiortc": [_sample(3100), _sample(2850), _sample(3600)],
        "raw": [_sample(2950), _sample(3000), _sample(5100, 3000)],
    }
    # round 1: ours's calibration after the run read 1.79x the fastest (2800);
    # round 2: raw's before it, 1.82x
    assert datachannel._steady_rounds(results) == [0]
    assert datachannel._host_factors(results)["ours"] == [1.0, 1.79, 1.07]
    # within the threshold everywhere: every round
    assert datachannel._steady_rounds(results, slow=2.0) == [0, 1, 2]
    # too few steady rounds: the least slow ones make up the number, in order
    assert datachannel._least_slow_rounds(results, 2) == [0, 1]
    assert datachannel._least_slow_rounds(results, 1) == [0]


def test_steady_rounds_leave_out_a_round_that_waited_for_the_cpu() -> None:
    results = {"ours": [_sample(2800), _sample(2800), _sample(2800)],
               "aiortc": [_sample(2800), _sample(2800), _sample(2800)]}
    for k, runq_ms in enumerate((1.0, 120.0, 12.0)):  # a 0.25 s run each
        results["ours"][k]["counters"].update(runq_ms=runq_ms, wall_s=0.25)
    # 120 ms of 250 runnable but not running: other work had both CPUs
    assert datachannel._steady_rounds(results) == [0, 2]
    assert datachannel._least_slow_rounds(results, 2) == [0, 2]


def test_fast_host_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([3000.0, 5000.0, 5100.0, 3100.0, 9.0])
    monkeypatch.setattr(datachannel, "_calibrate", lambda: next(readings))
    monkeypatch.setattr(datachannel, "_FASTEST", [float("inf")])
    assert datachannel._fast_host()[0] == 3000.0  # the first reading sets the fastest
    assert datachannel._fast_host()[0] == 3100.0  # slow twice, then fast again
    monkeypatch.setattr(datachannel, "_calibrate", lambda: 5000.0)
    monkeypatch.setattr(datachannel, "HOST_WAIT", 0.05)
    calib, waited_ms = datachannel._fast_host()  # a host slow throughout: gives up
    assert calib == 5000.0 and waited_ms >= 50
    monkeypatch.setattr(datachannel, "WAIT_FOR_FAST_HOST", [False])
    monkeypatch.setattr(datachannel, "_calibrate", lambda: next(readings))
    assert datachannel._fast_host()[0] == 9.0  # --all-rounds: one reading, no wait


async def test_interleave_runs_more_rounds_until_enough_are_steady() -> None:
    # the host is slow for the second and fourth rounds' first run
    calibs = iter([3000, 3000,  # warm-ups
                   3000, 3000, 5200, 3000, 3000, 3000, 5400, 3000, 3000, 3000])
    order: list[str] = []

    def runner(name: str) -> Any:
        async def run() -> dict[str, Any]:
            order.append(name)
            return _sample(next(calibs))
        return run

    results = await datachannel._interleave(
        {"a": runner("a"), "b": runner("b")}, 3, max_rounds=6,
        enough=lambda r: len(datachannel._steady_rounds(r)) >= 3)
    assert len(results["a"]) == len(results["b"]) == 5
    assert datachannel._steady_rounds(results) == [0, 2, 4]
    # which runner goes first still rotates, round after round
    assert order[2:] == ["a", "b", "b", "a", "a", "b", "b", "a", "a", "b"]

    calibs = iter([5000] * 14)
    results = await datachannel._interleave(
        {"a": runner("a"), "b": runner("b")}, 3, max_rounds=6,
        enough=lambda r: len(datachannel._steady_rounds(r)) >= 3)
    assert len(results["a"]) == 3  # a steady host (slow throughout) needs no more rounds


def test_socket_drops_are_the_kernels_count_for_the_port() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel's floor
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        assert datachannel._socket_drops({port}) == 0
        for _ in range(200):  # nobody reads: the receive buffer overflows
            sender.sendto(bytes(1000), ("127.0.0.1", port))
        receiver.setblocking(False)
        kept = 0
        while True:
            try:
                receiver.recv(2048)
            except BlockingIOError:
                break
            kept += 1
        assert 0 < kept < 200
        assert datachannel._socket_drops({port}) == 200 - kept
    finally:
        receiver.close()
        sender.close()


def test_udp_counters_parse() -> None:
    counters = datachannel._udp_snmp()
    if not Path("/proc/net/snmp").exists():
        pytest.skip("no /proc/net/snmp on this system")
    assert {"InDatagrams", "RcvbufErrors", "InErrors", "SndbufErrors"} <= set(counters)


@pytest.mark.parametrize("size", [1200, 65536])
async def test_throughput_run_counters_agree(size: int) -> None:
    out = await datachannel._throughput_ours(size, 512 * 1024)
    c = out["counters"]
    assert c["packets_out"] == out["packets_out"] > 0
    # every data packet the sender put out was SACKed by some SACK, and the sender
    # read them: at least one, at most one per data packet
    assert 0 < c["sacks"] <= c["packets_out"]
    assert c["max_cwnd"] >= initial_cwnd(1163)
    assert 0 < c["min_rwnd"] <= 1024 * 1024
    assert c["gap_sacks"] <= c["sacks"]
    # a retransmission is a fast retransmit (after SACKs with gaps) or a T3 expiry
    if c["retransmissions"]:
        assert c["fast_retransmits"] + c["t3_expirations"] > 0
    if c["fast_retransmits"]:
        assert c["gap_sacks"] > 0 and c["cwnd_cuts"] > 0
    assert c["timer_t3"] >= c["t3_expirations"] >= 0
    # aioice asks for 256 KiB on its host sockets; Linux reports twice what it grants
    assert c["rcvbuf"] >= 256 * 1024
    assert c["calib_us"] > 0 and c["calib_end_us"] > 0
    assert c["gc0"] >= c["gc1"] >= c["gc2"] >= 0


@pytest.mark.parametrize("batch", [1, datachannel.RAW_BATCH])
async def test_raw_reference_runs_without_sctp(monkeypatch: pytest.MonkeyPatch,
                                               batch: int) -> None:
    pairs: list[Any] = []
    original = datachannel._OursPair.__init__

    def init(self: Any, data_channel: bool = True) -> None:
        original(self, data_channel)
        pairs.append(self)

    monkeypatch.setattr(datachannel._OursPair, "__init__", init)
    calls: list[int] = []
    send, send_many = DtlsTransport.send, DtlsTransport.send_many

    def counting_send(self: DtlsTransport, data: bytes) -> None:
        calls.append(1)
        send(self, data)

    def counting_send_many(self: DtlsTransport, datagrams: list[bytes]) -> int:
        calls.append(len(datagrams))
        return send_many(self, datagrams)

    monkeypatch.setattr(DtlsTransport, "send", counting_send)
    monkeypatch.setattr(DtlsTransport, "send_many", counting_send_many)
    # 239 records: with 5 a call, 47 calls of 5 and one of 4
    total = 256 * 1024
    out = await datachannel._throughput_raw(total, batch)
    assert out["mb_per_s"] > 0
    records = -(-total // datachannel.RAW_RECORD)
    assert sum(calls) == records
    assert calls == [batch] * (records // batch) + ([records % batch] if records % batch else [])
    (pair,) = pairs
    # no m=application: nothing else rides the DTLS transport, and close() has no
    # SCTP SHUTDOWN to wait for
    assert pair.a._sctp is None and pair.b._sctp is None
