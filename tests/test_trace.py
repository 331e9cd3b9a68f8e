"""The handshake trace (issue 15): what the engines record, and its drawings.

Fake-clock tests drive two engines through tests/netsim.py; the interop tests compare
our trace with the messages OpenSSL's own message callback (``-msg``) reports for the
same run over loopback UDP.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.dtls_pair import cert, pins
from tests.interop.openssl_cli import (
    OpenSslCliPeer,
    UdpEndpoint,
    handshake_with_cli,
    openssl_client,
    openssl_server,
    write_credentials,
)
from tests.netsim import LinkConfig, NetSim, run_handshake
from webrtc_secure.dtls import DtlsConnection, State
from webrtc_secure.trace import Trace, message_name

FLIGHT_5 = ["Certificate", "ClientKeyExchange", "CertificateVerify", "ChangeCipherSpec", "Finished"]
FLIGHT_4 = [
    "ServerHello",
    "Certificate",
    "ServerKeyExchange",
    "CertificateRequest",
    "ServerHelloDone",
]


def _pair(version: str = "1.2") -> tuple[DtlsConnection, DtlsConnection, Trace, Trace]:
    client_trace, server_trace = Trace("client", "server"), Trace("server", "client")
    client = DtlsConnection(
        True, cert("a"), remote_fingerprints=pins("b"), trace=client_trace, dtls_versions=[version]
    )
    server = DtlsConnection(
        False, cert("b"), remote_fingerprints=pins("a"), trace=server_trace, dtls_versions=[version]
    )
    return client, server, client_trace, server_trace


def test_clean_handshake_each_side_receives_what_the_other_sent() -> None:
    client, server, ct, st = _pair()
    result = run_handshake(client, server, NetSim(3))
    assert result.completed
    assert ct.messages("send") == ["ClientHello", "ClientHello", *FLIGHT_5]
    assert st.messages("send") == ["HelloVerifyRequest", *FLIGHT_4, "ChangeCipherSpec", "Finished"]
    assert ct.messages("send") == st.messages("recv")
    assert st.messages("send") == ct.messages("recv")
    # the protected Finished was named by the receiver after opening it, not guessed
    last = [e for e in ct.entries if e.direction == "recv"][-1]
    assert [r.sealed for r in last.records] == [False, False]
    assert [r.epoch for r in last.records] == [0, 1]
    notes = {e.what: e.details for e in ct.entries if e.direction == "note"}
    assert "DTLS 1.2" in notes["handshake complete"]
    assert "SRTP" in notes["handshake complete"]
    assert notes["fingerprint check"] == "sha-256 fingerprint matched"
    assert not any(e.retransmission or e.lost for e in Trace.merge(ct, st).entries)
    # record sequence numbers on the wire are those the entries report
    sent = [r.sequence_number for e in ct.entries if e.direction == "send" for r in e.records]
    assert sent == [0, 1, 2, 3, 4, 5, 0]  # epoch 0 numbers, then epoch 1 restarts


def test_lost_flight_shows_timer_and_retransmission_where_it_happened() -> None:
    client, server, ct, st = _pair()
    # a->b datagram 2 is the client's flight 5 (ClientHello, cookied ClientHello before it)
    sim = NetSim(5, a_to_b=LinkConfig(drop_indices=frozenset({2})), b_to_a=LinkConfig())
    result = run_handshake(client, server, sim)
    assert result.completed
    entries = ct.entries
    first = next(i for i, e in enumerate(entries) if e.messages and e.messages[0] == "Certificate")
    timer = entries[first + 1]
    resent = entries[first + 2]
    assert timer.direction == "note" and timer.what == "retransmission timer fired"
    assert resent.direction == "send" and resent.retransmission
    assert list(resent.messages) == FLIGHT_5 == list(entries[first].messages)
    # fake clock: the timer fired exactly one initial timeout after the flight went out
    assert timer.time - entries[first].time == pytest.approx(client.initial_retransmit_timeout)
    assert resent.time == timer.time
    assert not entries[first].retransmission
    merged = Trace.merge(ct, st)
    lost = [e for e in merged.entries if e.lost]
    assert [list(e.messages) for e in lost] == [FLIGHT_5]
    mermaid = merged.to_mermaid()
    assert "Client-xServer: Certificate" in mermaid
    assert "Client-->>Server: retransmit: Certificate" in mermaid
    assert client.stats.retransmissions == 1


FLIGHT_13_SERVER = [
    "ServerHello",
    "EncryptedExtensions",
    "CertificateRequest",
    "Certificate",
    "CertificateVerify",
    "Finished",
]


def _finished_acked(client: Any, _events: object) -> bool:
    """A DTLS 1.3 client is connected once it sent its Finished: the traces below run
    on until the server's ACK of it arrived, so that they hold the whole exchange."""
    return client._v13 is not None and bool(client._v13.connected)


def test_dtls13_handshake_traced_from_the_engines_own_records() -> None:
    client, server, ct, st = _pair("1.3")
    # the client is connected once it sent its Finished: run on until the server's ACK
    # of it arrives, so that the trace holds the whole exchange
    assert run_handshake(client, server, NetSim(3), a_done=_finished_acked).completed
    assert client.version_name == "DTLS 1.3"
    # HelloRetryRequest (the server's stateless cookie), then the 1.3 flights and the ACK
    assert ct.messages("send") == [
        "ClientHello",
        "ClientHello",
        *FLIGHT_5[:1],
        *FLIGHT_5[2:3],
        "Finished",
    ]
    assert st.messages("send") == ["HelloRetryRequest", *FLIGHT_13_SERVER, "ACK"]
    assert ct.messages("send") == st.messages("recv")
    assert st.messages("send") == ct.messages("recv")
    # protected records carry their real record numbers, from the engine
    client_final = [e for e in ct.entries if e.direction == "send"][-1]
    assert [(r.epoch, r.sequence_number) for r in client_final.records] == [(2, 0), (2, 1), (2, 2)]
    ack = [e for e in st.entries if e.direction == "send"][-1]
    assert "2/0, 2/1, 2/2" in ack.details
    notes = {e.what: e.details for e in ct.entries if e.direction == "note"}
    assert notes["handshake complete"].startswith("DTLS 1.3, ")


def test_dtls13_lost_flight_shows_timer_and_retransmission() -> None:
    client, server, ct, st = _pair("1.3")
    # b->a index 2 is the server's encrypted flight (HelloRetryRequest, ServerHello first)
    sim = NetSim(5, a_to_b=LinkConfig(), b_to_a=LinkConfig(drop_indices=frozenset({2})))
    assert run_handshake(client, server, sim, a_done=_finished_acked).completed
    sent = [e for e in st.entries if e.direction != "recv"]
    first = next(i for i, e in enumerate(sent) if "EncryptedExtensions" in e.messages)
    timer = next(e for e in sent[first:] if e.direction == "note")
    assert timer.what == "retransmission timer fired"
    resent = [e for e in sent[first + 1 :] if e.retransmission]
    assert resent and resent[0].time == timer.time
    assert timer.time - sent[first].time == pytest.approx(server.initial_retransmit_timeout)
    lost = [e for e in Trace.merge(ct, st).entries if e.lost]
    assert [list(e.messages) for e in lost] == [FLIGHT_13_SERVER[1:]]


_MERMAID_LINE = re.compile(
    r"^(sequenceDiagram"
    r"|    participant \w+ as [^;#\n]+"
    r"|    \w+(->>|-->>|-x)\w+: [^;#\n]+"
    r"|    Note over \w+: [^;#\n]+"
    r"|    rect rgb\(\d+, \d+, \d+\)"
    r"|    end)$"
)


def _check_mermaid(text: str) -> None:
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "sequenceDiagram"
    bad = [line for line in lines if not _MERMAID_LINE.match(line)]
    assert bad == []
    assert sum(line == "    end" for line in lines) == sum("rect rgb" in line for line in lines)
    participants = {m.group(1) for m in re.finditer(r"participant (\w+)", text)}
    used = set(re.findall(r"^    (\w+)(?:->>|-->>|-x)(\w+):", text, re.M))
    assert {name for pair in used for name in pair} <= participants


def _check_self_contained_xml(text: str, root_tag: str) -> ET.Element:
    root = ET.fromstring(text.split("\n", 1)[1] if text.startswith("<!DOCTYPE") else text)
    assert root.tag.endswith(root_tag)
    for element in root.iter():
        assert not element.tag.endswith("script")
        for name, value in element.attrib.items():
            assert not name.endswith("href") or value.startswith("#") or value == ""
            assert "http:" not in value and "https:" not in value, (name, value)
            assert not name.endswith("src")
    return root


def test_renderings_parse_and_mark_losses(tmp_path: Path) -> None:
    client, server, ct, st = _pair()
    sim = NetSim(5, a_to_b=LinkConfig(drop_indices=frozenset({2})), b_to_a=LinkConfig())
    assert run_handshake(client, server, sim).completed
    merged = Trace.merge(ct, st)
    _check_mermaid(merged.to_mermaid())
    _check_mermaid(ct.to_mermaid())
    svg = _check_self_contained_xml(merged.to_svg(), "svg")
    texts = "".join(svg.itertext())
    assert "(LOST)" in texts and "retransmit: Certificate" in texts
    colours = {e.get("stroke") for e in svg.iter() if e.tag.endswith("line")}
    assert {"#c62828", "#e65100"} <= colours  # lost red, retransmission orange
    html = _check_self_contained_xml(merged.to_html(), "html")
    assert len([e for e in html.iter() if e.tag.endswith("tr")]) == len(merged.entries) + 1
    for name in ("t.mmd", "t.md", "t.svg", "t.html"):
        merged.write(tmp_path / name)
    assert (tmp_path / "t.md").read_text().startswith("```mermaid\nsequenceDiagram\n")
    with pytest.raises(ValueError, match="trace format"):
        merged.write(tmp_path / "t.txt")


def test_application_data_is_not_traced_and_the_trace_is_bounded() -> None:
    client, server, _ct, st = _pair()
    assert run_handshake(client, server, NetSim(1)).completed
    before = len(st.entries)
    for i in range(50):
        client.send(b"x%d" % i)
    datagrams = client.datagrams_to_send(10.0)
    for datagram in datagrams[:40]:
        server.receive_datagram(datagram, 10.0)
    assert len(st.entries) == before  # the fast path never touches the trace
    # several records in one datagram take the general path: still not recorded
    server.receive_datagram(b"".join(datagrams[40:]), 10.0)
    assert len(st.entries) == before
    assert server.stats.records_received >= 50
    small = Trace(max_entries=3)
    for i in range(10):
        small.note(float(i), "dtls", "n")
    assert len(small.entries) == 3 and small.dropped == 7


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\x16",
        b"\x16\xfe\xfd" + b"\x00" * 8 + b"\xff\xff",
        b"\x16\xfe\xfd" + bytes(10) + b"\x01\x02",
    ],
    ids=["empty", "one-octet", "truncated-record", "truncated-handshake"],
)
def test_malformed_input_is_recorded_not_fatal(datagram: bytes) -> None:
    trace = Trace()
    trace.dtls_received(0.0, datagram)
    assert len(trace.entries) == 1
    engine = DtlsConnection(False, cert("b"), remote_fingerprints=pins("a"), trace=Trace())
    engine.connect(0.0)
    engine.receive_datagram(datagram, 0.0)


def test_no_trace_by_default() -> None:
    engine = DtlsConnection(True, cert("a"), remote_fingerprints=pins("b"))
    assert engine.trace is None


# --- against OpenSSL: our trace == the messages OpenSSL's message callback reports ---------

_MSG_LINE = re.compile(r"^(<<<|>>>) .*content_type=(\d+)\) \[length ([0-9a-f]{4})\]$")


def openssl_messages(output: str) -> tuple[list[str], list[str]]:
    """(sent, received) messages from ``-msg`` output: each handshake message once
    (named from its type octet in the dump), ChangeCipherSpec and alerts."""
    sent: list[str] = []
    received: list[str] = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        match = _MSG_LINE.match(line)
        if match is None or match.group(2) == "256":  # 256: a record header
            continue
        first = bytes.fromhex(lines[i + 1].strip().split("  ")[0].replace(" ", ""))
        ctype = int(match.group(2))
        if ctype == 22:
            name = message_name(first[0])
        elif ctype == 20:
            name = "ChangeCipherSpec"
        elif ctype == 21:
            level = {1: "warning", 2: "fatal"}[first[0]]
            name = f"Alert {level} " + {0: "close_notify"}.get(first[1], str(first[1]))
        else:
            continue
        (sent if match.group(1) == ">>>" else received).append(name)
    return sent, received


@pytest.mark.interop
def test_trace_matches_openssl_s_server_messages() -> None:
    trace = Trace("ours", "openssl")
    server, port = openssl_server(cert("openssl"), listen=False, extra_args=["-msg"])
    with server:
        engine = DtlsConnection(
            True, cert("ours"), remote_fingerprints=cert("openssl").fingerprints(), trace=trace
        )
        with UdpEndpoint(engine, peer=("127.0.0.1", port)) as endpoint:
            endpoint.connect()
            handshake_with_cli(endpoint, server)
            engine.close()
            endpoint.run_until(lambda: server.seen(b"DONE"), 5, what="DONE", cli=server)
        server.proc.wait(timeout=5)
        theirs_sent, theirs_received = openssl_messages(server.output().decode(errors="replace"))
    assert theirs_received == trace.messages("send")
    # s_server answers our close_notify with its own, which our closed engine ignores
    assert theirs_sent[-1] == "Alert warning close_notify"
    assert theirs_sent[:-1] == trace.messages("recv")
    assert trace.messages("recv")[0] == "HelloVerifyRequest"
    assert trace.messages("send")[-1] == "Alert warning close_notify"
    assert not any(e.retransmission for e in trace.entries)


@pytest.mark.interop
def test_trace_matches_openssl_s_client_messages() -> None:
    trace = Trace("ours", "openssl")
    engine = DtlsConnection(
        False,
        cert("ours"),
        cookies=True,
        remote_fingerprints=cert("openssl").fingerprints(),
        trace=trace,
    )
    with UdpEndpoint(engine) as endpoint:
        client = openssl_client(cert("openssl"), endpoint.address[1], extra_args=["-msg"])
        with client:
            handshake_with_cli(endpoint, client)
            assert client.proc.stdin is not None
            client.proc.stdin.close()  # s_client sends close_notify
            endpoint.run_until(lambda: engine.state is State.CLOSED, 5, cli=client)
            client.proc.wait(timeout=5)
            theirs_sent, theirs_received = openssl_messages(
                client.output().decode(errors="replace")
            )
    assert theirs_sent == trace.messages("recv")
    # s_client exits after its close_notify, before reading our answering one
    assert trace.messages("send")[-1] == "Alert warning close_notify"
    assert theirs_received == trace.messages("send")[:-1]
    assert trace.messages("send")[:2] == ["HelloVerifyRequest", "ServerHello"]


# --- the command line: --trace FILE ----------------------------------------------------------


def _our_cli(mode: str, address: str, trace: Path, tmp: Path) -> OpenSslCliPeer:
    cert_path, key_path = write_credentials(cert("ours"), tmp)
    return OpenSslCliPeer(
        [
            sys.executable,
            "-m",
            "webrtc_secure",
            "dtls",
            mode,
            address,
            "--cert",
            str(cert_path),
            "--key",
            str(key_path),
            "--fingerprint",
            f"sha-256:{cert('openssl').fingerprint('sha-256')}",
            "--timeout",
            "10",
            "--trace",
            str(trace),
        ]
    )


@pytest.mark.interop
def test_cli_connect_writes_html_trace(tmp_path: Path) -> None:
    out = tmp_path / "connect.html"
    server, port = openssl_server(cert("openssl"))
    with server, _our_cli("connect", f"127.0.0.1:{port}", out, tmp_path) as ours:
        ours.wait_for(b"peer-verified yes")
        assert ours.proc.stdin is not None
        ours.proc.stdin.close()
        assert ours.proc.wait(timeout=10) == 0
    assert ours.seen(b"trace written to")
    root = _check_self_contained_xml(out.read_text(), "html")
    text = "".join(root.itertext())
    for name in ("HelloVerifyRequest", "ServerHelloDone", "Finished", "handshake complete"):
        assert name in text


@pytest.mark.interop
def test_cli_listen_writes_mermaid_trace(tmp_path: Path) -> None:
    out = tmp_path / "listen.mmd"
    with _our_cli("listen", "127.0.0.1:0", out, tmp_path) as ours:
        port = int(ours.wait_for(re.compile(rb"listening on 127\.0\.0\.1:(\d+)")).group(1))
        with openssl_client(cert("openssl"), port) as client:
            ours.wait_for(b"peer-verified yes")
            assert client.proc.stdin is not None
            client.proc.stdin.close()
            ours.wait_for(b"peer closed the connection", timeout=5)
            assert ours.proc.wait(timeout=10) == 0
    text = out.read_text()
    _check_mermaid(text)
    # the stateless cookie exchange happens before the engine exists and is traced too
    assert text.index("HelloVerifyRequest") < text.index("ServerHello,")


def test_cli_rejects_unknown_trace_extension() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "webrtc_secure",
            "dtls",
            "connect",
            "127.0.0.1:9",
            "--trace",
            "x.txt",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "extension picks the trace format" in proc.stderr


@pytest.mark.slow
def test_echo_demo_writes_svg_trace(tmp_path: Path) -> None:
    out = tmp_path / "demo.svg"
    proc = subprocess.run(
        [sys.executable, "-m", "webrtc_secure", "echo-demo", "--count", "3", "--trace", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = _check_self_contained_xml(out.read_text(), "svg")
    text = "".join(root.itertext())
    for what in ("ICE connected", "ClientHello", "handshake complete", "DATA_CHANNEL_OPEN"):
        assert what in text
