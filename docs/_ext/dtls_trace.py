"""Draw a real DTLS handshake as a Mermaid sequence diagram, at docs build time.

Two :class:`~webrtc_secure.dtls.DtlsConnection` engines run back to back on a fake
clock (they are sans-I/O, so no socket and no sleeping is involved), with the same
certificates, fingerprint pins and HelloVerifyRequest cookies as a real peer. Every
datagram that crosses the simulated wire is decoded with the project's own record and
handshake parsers into one :class:`WireEvent`: time, direction, per-record epoch and
sequence number, handshake message types, size, whether it repeats an earlier datagram
(a retransmission) and whether the link dropped it. :func:`to_mermaid` turns the list
into ``sequenceDiagram`` text.

This is a wire tap beside the engines, not the engine-level trace of issue 15: the
encrypted Finished is labelled from its record type and epoch, since the tap holds no
keys. It runs as a Sphinx extension (``builder-inited``) and writes one ``.mmd`` file
per scenario into ``docs/_generated/``; ``python docs/_ext/dtls_trace.py`` prints them.
"""

from __future__ import annotations

import heapq
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from webrtc_secure import Certificate
from webrtc_secure.dtls import DtlsConnection, HandshakeComplete
from webrtc_secure.dtls.messages import HandshakeType, enum_name, split_handshake_fragments
from webrtc_secure.dtls.records import ContentType, split_records
from webrtc_secure.srtp import Profile

#: one-way delay of the simulated link (a 20 ms round trip)
ONE_WAY_DELAY = 0.010

_TYPE_NAMES = {
    HandshakeType.CLIENT_HELLO: "ClientHello",
    HandshakeType.SERVER_HELLO: "ServerHello",
    HandshakeType.HELLO_VERIFY_REQUEST: "HelloVerifyRequest",
    HandshakeType.CERTIFICATE: "Certificate",
    HandshakeType.SERVER_KEY_EXCHANGE: "ServerKeyExchange",
    HandshakeType.CERTIFICATE_REQUEST: "CertificateRequest",
    HandshakeType.SERVER_HELLO_DONE: "ServerHelloDone",
    HandshakeType.CERTIFICATE_VERIFY: "CertificateVerify",
    HandshakeType.CLIENT_KEY_EXCHANGE: "ClientKeyExchange",
    HandshakeType.FINISHED: "Finished",
}


@dataclass(frozen=True)
class RecordInfo:
    """One record of a datagram as seen on the wire."""

    epoch: int
    sequence_number: int
    #: what the record carries: handshake message names, ChangeCipherSpec, ...
    contents: tuple[str, ...]
    #: what a retransmission repeats (unlike the record sequence number): each handshake
    #: fragment's (type, message_seq, offset, length), or for a protected record its
    #: type, epoch and length
    identity: tuple[object, ...]


@dataclass(frozen=True)
class WireEvent:
    """One datagram on the simulated wire."""

    time: float
    sender: str  # "Client" or "Server"
    size: int
    records: tuple[RecordInfo, ...]
    retransmission: bool
    lost: bool

    @property
    def receiver(self) -> str:
        return "Server" if self.sender == "Client" else "Client"

    def label(self) -> str:
        """What the datagram carries, its records' epoch/sequence and its size."""
        names: list[str] = []
        for record in self.records:
            for name in record.contents:
                if not names or names[-1] != name:
                    names.append(name)
        seqs = ", ".join(f"{r.epoch}/{r.sequence_number}" for r in self.records)
        flags = ""
        if self.retransmission:
            flags += " RETRANSMISSION"
        if self.lost:
            flags += " LOST"
        # at most three message names a line keeps the diagram narrow enough to read
        lines = [" + ".join(names[i : i + 3]) for i in range(0, len(names), 3)]
        return "<br/>".join(
            [*lines, f"t={self.time * 1000:.0f} ms, {self.size} B, epoch/seq {seqs}{flags}"]
        )


@dataclass
class Trace:
    """A handshake's wire events and what each side reported when it completed."""

    events: list[WireEvent] = field(default_factory=list)
    notes: list[tuple[float, str, str]] = field(default_factory=list)  # (time, side, text)
    #: the engines' own count of retransmitted flights, side by side with the tap's view
    retransmitted_flights: dict[str, int] = field(default_factory=dict)


def decode_datagram(datagram: bytes) -> tuple[RecordInfo, ...]:
    """Decode a datagram's records with the project's parsers (no keys needed)."""
    records, _clean = split_records(datagram)
    infos: list[RecordInfo] = []
    for ctype, _version, epoch_seq, fragment in records:
        epoch, seq = epoch_seq >> 48, epoch_seq & ((1 << 48) - 1)
        identity: tuple[object, ...] = (ctype, epoch, len(fragment))
        if ctype == ContentType.CHANGE_CIPHER_SPEC:
            contents: tuple[str, ...] = ("ChangeCipherSpec",)
        elif ctype == ContentType.HANDSHAKE and epoch == 0:
            fragments = split_handshake_fragments(fragment)
            contents = tuple(_message_name(f[0]) for f in fragments)
            identity = tuple((f[0], f[2], f[3], len(f[4])) for f in fragments)
        elif ctype == ContentType.HANDSHAKE:
            # the only handshake message DTLS 1.2 protects is Finished
            contents = ("Finished (encrypted)",)
        elif ctype == ContentType.ALERT:
            contents = ("Alert",)
        else:
            contents = ("application data",)
        infos.append(RecordInfo(epoch, seq, contents, identity))
    return tuple(infos)


def _message_name(msg_type: int) -> str:
    try:
        return _TYPE_NAMES.get(HandshakeType(msg_type), enum_name(HandshakeType, msg_type))
    except ValueError:
        return str(msg_type)


def _shape(records: tuple[RecordInfo, ...], size: int) -> tuple[object, ...]:
    """What stays the same when a flight's datagram is sent again (not the seqs)."""
    return (size, tuple(r.identity for r in records))


def run_handshake(
    drop: Callable[[str, int], bool] = lambda sender, index: False,
    *,
    mtu: int = 1200,
) -> Trace:
    """Run one handshake between two engines and record every datagram.

    ``drop(sender, index)`` decides whether the ``index``-th datagram of ``sender``
    (counting from 0) is lost on the link.
    """
    client_cert, server_cert = Certificate.generate(), Certificate.generate()
    # DTLS 1.2: the guide tells RFC 6347's six flights (the tap decodes 1.2 records)
    client = DtlsConnection(
        True,
        client_cert,
        remote_fingerprints=server_cert.fingerprints(),
        mtu=mtu,
        dtls_versions=("1.2",),
    )
    server = DtlsConnection(
        False,
        server_cert,
        remote_fingerprints=client_cert.fingerprints(),
        mtu=mtu,
        dtls_versions=("1.2",),
    )
    sides = {"Client": client, "Server": server}
    trace = Trace()
    seen: dict[str, set[tuple[object, ...]]] = {"Client": set(), "Server": set()}
    counts = {"Client": 0, "Server": 0}
    done: set[str] = set()
    in_flight: list[tuple[float, int, str, bytes]] = []
    order = 0
    now = 0.0
    client.connect(now)
    server.connect(now)
    while now < 60.0:
        for name, conn in sides.items():
            for datagram in conn.datagrams_to_send(now):
                records = decode_datagram(datagram)
                shape = _shape(records, len(datagram))
                lost = drop(name, counts[name])
                counts[name] += 1
                trace.events.append(
                    WireEvent(now, name, len(datagram), records, shape in seen[name], lost)
                )
                seen[name].add(shape)
                if not lost:
                    order += 1
                    heapq.heappush(in_flight, (now + ONE_WAY_DELAY, order, name, datagram))
            while (event := conn.next_event()) is not None:
                if isinstance(event, HandshakeComplete) and name not in done:
                    done.add(name)
                    trace.notes.append((now, name, _completion_note(conn, event)))
        if len(done) == 2 and not in_flight:
            trace.retransmitted_flights = {
                name: conn.stats.retransmissions for name, conn in sides.items()
            }
            return trace
        deadlines = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
        if in_flight:
            deadlines.append(in_flight[0][0])
        if not deadlines:
            break
        now = max(now, min(deadlines))
        while in_flight and in_flight[0][0] <= now:
            _, _, sender, datagram = heapq.heappop(in_flight)
            receiver = sides["Server" if sender == "Client" else "Client"]
            receiver.receive_datagram(datagram, now)
        for conn in sides.values():
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
    raise RuntimeError("the traced handshake did not complete")


def _completion_note(conn: DtlsConnection, event: HandshakeComplete) -> str:
    suite = conn.cipher_suite
    profile = conn.srtp_profile
    parts = [
        "HandshakeComplete",
        f"{suite.name if suite is not None else event.cipher_suite}",
        "peer certificate matches the pinned a=fingerprint",
    ]
    if profile is not None:
        material = conn.export_keying_material(
            "EXTRACTOR-dtls_srtp", Profile(profile).keying_material_length
        )
        parts.append(
            f"export EXTRACTOR-dtls_srtp: {len(material)} B for SRTP {Profile(profile).name}"
        )
    return "<br/>".join(parts)


def to_mermaid(trace: Trace) -> str:
    """``sequenceDiagram`` text: one arrow per datagram, crossed when it was lost."""
    lines = ["sequenceDiagram", "    participant Client", "    participant Server"]
    items: list[tuple[float, int, str]] = []
    for index, event in enumerate(trace.events):
        arrow = "-x" if event.lost else "->>"
        items.append(
            (event.time, index, f"    {event.sender}{arrow}{event.receiver}: {event.label()}")
        )
    for index, (time, side, text) in enumerate(trace.notes):
        note = f"    Note over {side}: t={time * 1000:.0f} ms<br/>{text}"
        items.append((time, len(trace.events) + index, note))
    lines.extend(line for _, _, line in sorted(items))
    return "\n".join(lines) + "\n"


def _drop_cookie_client_hello(sender: str, index: int) -> bool:
    # the client's datagrams: 0 is the first ClientHello, 1 the one with the cookie
    return sender == "Client" and index == 1


SCENARIOS: dict[str, Callable[[], Trace]] = {
    "handshake": lambda: run_handshake(),
    "handshake_loss": lambda: run_handshake(_drop_cookie_client_hello),
}


def write_diagrams(directory: Path) -> list[Path]:
    """Run every scenario and write ``<name>.mmd`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    # the engines log each completed handshake at INFO; the build output is no place
    package_logger = logging.getLogger("webrtc_secure")
    level = package_logger.level
    package_logger.setLevel(logging.WARNING)
    try:
        for name, scenario in SCENARIOS.items():
            path = directory / f"{name}.mmd"
            text = to_mermaid(scenario())
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            written.append(path)
    finally:
        package_logger.setLevel(level)
    return written


def _builder_inited(app: object) -> None:
    srcdir = Path(app.srcdir)  # type: ignore[attr-defined]
    write_diagrams(srcdir / "_generated")


def setup(app: object) -> dict[str, object]:
    app.connect("builder-inited", _builder_inited)  # type: ignore[attr-defined]
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    for scenario_name, make in SCENARIOS.items():
        sys.stdout.write(f"%% {scenario_name}\n{to_mermaid(make())}\n")
