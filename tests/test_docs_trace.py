"""The wire tap that draws the handshake diagrams of the documentation
(``docs/_ext/dtls_trace.py``): what it records must be what the engines did."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_PATH = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "dtls_trace.py"


@pytest.fixture(scope="module")
def trace_mod() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dtls_trace", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dtls_trace"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["dtls_trace"]
    return module


def _messages(event: object) -> list[str]:
    return [name for record in event.records for name in record.contents]  # type: ignore[attr-defined]


def test_clean_handshake_is_the_six_flights(trace_mod: ModuleType) -> None:
    trace = trace_mod.run_handshake()
    flights = [(e.sender, _messages(e)) for e in trace.events]
    assert flights == [
        ("Client", ["ClientHello"]),
        ("Server", ["HelloVerifyRequest"]),
        ("Client", ["ClientHello"]),
        ("Server", ["ServerHello", "Certificate", "ServerKeyExchange",
                    "CertificateRequest", "ServerHelloDone"]),
        ("Client", ["Certificate", "ClientKeyExchange", "CertificateVerify",
                    "ChangeCipherSpec", "Finished (encrypted)"]),
        ("Server", ["ChangeCipherSpec", "Finished (encrypted)"]),
    ]
    assert not any(e.retransmission or e.lost for e in trace.events)
    assert trace.retransmitted_flights == {"Client": 0, "Server": 0}
    # the Finished records are the only ones in epoch 1, and each starts it at seq 0
    for event in trace.events[4:]:
        assert [(r.epoch, r.sequence_number) for r in event.records][-1] == (1, 0)
    # record sequence numbers in epoch 0 go on across flights, per side
    for side in ("Client", "Server"):
        seqs = [r.sequence_number for e in trace.events if e.sender == side
                for r in e.records if r.epoch == 0]
        assert seqs == list(range(len(seqs)))
    assert {side for _, side, _ in trace.notes} == {"Client", "Server"}


def test_lost_flight_shows_one_retransmission_as_the_engine_counts_it(
    trace_mod: ModuleType,
) -> None:
    trace = trace_mod.run_handshake(trace_mod._drop_cookie_client_hello)
    lost = [e for e in trace.events if e.lost]
    resent = [e for e in trace.events if e.retransmission]
    assert [(e.sender, _messages(e)) for e in lost] == [("Client", ["ClientHello"])]
    assert [(e.sender, _messages(e)) for e in resent] == [("Client", ["ClientHello"])]
    assert trace.retransmitted_flights == {"Client": 1, "Server": 0}
    # the resent datagram repeats the message but not the record sequence number
    assert resent[0].records[0].identity == lost[0].records[0].identity
    assert resent[0].records[0].sequence_number == lost[0].records[0].sequence_number + 1
    assert resent[0].time > lost[0].time


def test_fragmented_flights_are_not_mistaken_for_retransmissions(
    trace_mod: ModuleType,
) -> None:
    trace = trace_mod.run_handshake(mtu=300)
    assert all(e.size <= 300 for e in trace.events)
    assert not any(e.retransmission for e in trace.events)
    certificate_datagrams = [e for e in trace.events
                             if e.sender == "Server" and "Certificate" in _messages(e)]
    assert len(certificate_datagrams) >= 2  # the certificate did not fit one datagram


def test_mermaid_text(trace_mod: ModuleType) -> None:
    trace = trace_mod.run_handshake(trace_mod._drop_cookie_client_hello)
    text = trace_mod.to_mermaid(trace)
    lines = text.splitlines()
    assert lines[0] == "sequenceDiagram"
    arrows = [line for line in lines if "->>" in line or "-x" in line]
    assert len(arrows) == len(trace.events)
    assert sum("Client-xServer: ClientHello" in line for line in arrows) == 1
    assert sum("RETRANSMISSION" in line for line in arrows) == 1
    assert sum(line.strip().startswith("Note over") for line in lines) == 2
    # Mermaid would take ';' as a statement break and '#' as an entity
    assert not any(";" in line or "#" in line for line in lines)


def test_write_diagrams_writes_each_scenario(
    trace_mod: ModuleType, tmp_path: Path
) -> None:
    paths = trace_mod.write_diagrams(tmp_path)
    assert sorted(p.name for p in paths) == [
        "handshake.mmd",
        "handshake_loss.mmd",
        "recorded_loss.mmd",
    ]
    for path in paths:
        assert path.read_text().startswith("sequenceDiagram\n")
