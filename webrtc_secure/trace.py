"""What an engine did, as a list of typed entries, and drawings of it.

A :class:`Trace` is a sans-I/O recorder: the engines call it with the ``now`` they were
given, so a trace taken on a fake clock (the fault simulator) and one taken on the
event loop's clock read the same way. Times are relative to the first entry.

Recording is off unless a ``Trace`` is handed to an engine (``DtlsConnection(...,
trace=t)``, ``Association(..., trace=t)``, ``SecurePeer(trace=True)``): the engines
hold ``trace: Trace | None`` and test it once on handshake and control paths only;
the per-record application-data paths never look at it, so an untraced engine pays
nothing and a traced one pays only while it handshakes.

Each entry is one datagram sent or received (DTLS: its records with epoch, record
sequence number, handshake fragments and sizes), one control chunk (SCTP), one DCEP
message, or a note (a timer that fired, the negotiated parameters, the fingerprint
check, an ICE summary). Renderers: :meth:`Trace.to_mermaid` (``sequenceDiagram``
text, shown by code-hosting pages and the docs) and :meth:`Trace.to_svg` /
:meth:`Trace.to_html` (one self-contained file: inline SVG drawn here, no script and
no network reference). Retransmissions are drawn in orange, lost datagrams (known when
both sides' traces are merged, or told by a simulator) in red with a cross.

Nothing secret is recorded: no keys, no plaintext application data, only message
types, sequence numbers and sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from webrtc_secure.dtls.messages import HandshakeType, enum_name, split_handshake_fragments
from webrtc_secure.dtls.records import ContentType, split_records
from webrtc_secure.errors import MalformedPacket

__all__ = [
    "Trace",
    "TraceEntry",
    "TraceRecord",
    "message_name",
]

SEND = "send"
RECV = "recv"
NOTE = "note"

#: a trace keeps at most this many entries (further ones are counted in ``dropped``):
#: a traced connection that runs for hours must not grow without bound
DEFAULT_MAX_ENTRIES = 10_000

_HANDSHAKE = int(ContentType.HANDSHAKE)
_CCS = int(ContentType.CHANGE_CIPHER_SPEC)
_ALERT = int(ContentType.ALERT)
_APPDATA = int(ContentType.APPLICATION_DATA)
_SEQ_MASK = (1 << 48) - 1
#: a ServerHello with this random is a HelloRetryRequest (RFC 8446 4.1.3)
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

_TYPE_NAMES = {
    int(HandshakeType.CLIENT_HELLO): "ClientHello",
    int(HandshakeType.SERVER_HELLO): "ServerHello",
    int(HandshakeType.HELLO_VERIFY_REQUEST): "HelloVerifyRequest",
    int(HandshakeType.CERTIFICATE): "Certificate",
    int(HandshakeType.SERVER_KEY_EXCHANGE): "ServerKeyExchange",
    int(HandshakeType.CERTIFICATE_REQUEST): "CertificateRequest",
    int(HandshakeType.SERVER_HELLO_DONE): "ServerHelloDone",
    int(HandshakeType.CERTIFICATE_VERIFY): "CertificateVerify",
    int(HandshakeType.CLIENT_KEY_EXCHANGE): "ClientKeyExchange",
    int(HandshakeType.FINISHED): "Finished",
    # DTLS 1.3 (RFC 8446 4, RFC 9147)
    4: "NewSessionTicket",
    8: "EncryptedExtensions",
    24: "KeyUpdate",
}


def message_name(msg_type: int) -> str:
    """A handshake message type as the RFCs (and OpenSSL's ``-msg``) spell it."""
    name = _TYPE_NAMES.get(msg_type)
    if name is not None:
        return name
    try:
        return enum_name(HandshakeType, msg_type)
    except ValueError:
        return f"handshake type {msg_type}"


def _alert_name(payload: bytes) -> str:
    from webrtc_secure.dtls.messages import AlertDescription

    if len(payload) != 2:
        return "Alert (malformed)"
    level = {1: "warning", 2: "fatal"}.get(payload[0], str(payload[0]))
    try:
        description = enum_name(AlertDescription, payload[1]).lower()
    except ValueError:
        description = str(payload[1])
    return f"Alert {level} {description}"


@dataclass(slots=True)
class TraceRecord:
    """One DTLS record of a traced datagram."""

    content_type: int
    epoch: int
    sequence_number: int
    #: octets of the record's fragment (after the 13-octet header)
    length: int
    #: what it carries, e.g. ``("ClientHello",)``, ``("ChangeCipherSpec",)``; for a
    #: protected record the name once it was opened (received) or known (sent)
    contents: tuple[str, ...]
    #: handshake fragments: (message name, message_seq, fragment offset, fragment
    #: length, message length)
    fragments: tuple[tuple[str, int, int, int, int], ...] = ()
    #: a protected record whose contents the trace has not seen yet
    sealed: bool = False

    def describe(self) -> str:
        frag = ""
        for name, _mseq, offset, flen, total in self.fragments:
            if flen != total:
                frag += f" {name}[{offset}..{offset + flen}/{total}]"
        return f"e{self.epoch}/s{self.sequence_number} {self.length}B{frag}"


@dataclass(slots=True)
class TraceEntry:
    """One thing an engine did: a datagram, a chunk or message, or a note."""

    #: seconds since the trace's first entry
    time: float
    #: who recorded it, e.g. "client", "server", "offerer"
    side: str
    #: "send", "recv" or "note"
    direction: str
    #: "ice", "dtls", "sctp" or "dcep"
    layer: str
    #: the short label: message names, a chunk type, a note's title
    what: str
    #: more: sizes, sequence numbers, negotiated parameters
    details: str = ""
    #: the DTLS messages this entry carries, in order (empty for other layers)
    messages: tuple[str, ...] = ()
    #: the records of a DTLS datagram
    records: tuple[TraceRecord, ...] = ()
    #: octets on the wire
    size: int = 0
    #: a resent flight (timer or the peer's retransmission)
    retransmission: bool = False
    #: the datagram never arrived (known from a merge of both sides or a simulator)
    lost: bool = False
    #: a short digest of the datagram, to match a send with the peer's receive
    digest: str = ""

    def label(self) -> str:
        """One line for a diagram."""
        text = self.what
        if self.retransmission:
            text = "retransmit: " + text
        if self.lost:
            text += " (LOST)"
        return text


@dataclass
class Trace:
    """A recorder of typed :class:`TraceEntry` items, and its renderers.

    ``side`` names the endpoint that records (the left lifeline), ``peer`` the other
    one. Engines call the ``dtls_*`` / ``chunk`` / ``note`` methods; users read
    :attr:`entries`, :meth:`messages` and the renderers.
    """

    side: str = "local"
    peer: str = "peer"
    entries: list[TraceEntry] = field(default_factory=list)
    #: the ``now`` of the first entry (times are relative to it)
    start: float | None = None
    max_entries: int = DEFAULT_MAX_ENTRIES
    #: entries not kept because ``max_entries`` was reached
    dropped: int = 0
    #: the latest ``now`` an entry was recorded at: the time of entries recorded
    #: where the engine has no clock at hand (an SCTP control chunk queued as the
    #: answer to a packet is recorded at the packet's time)
    last_now: float | None = None

    # --- recording ----------------------------------------------------------------------

    def add(
        self,
        now: float | None,
        direction: str,
        layer: str,
        what: str,
        details: str = "",
        *,
        records: tuple[TraceRecord, ...] = (),
        size: int = 0,
        retransmission: bool = False,
        digest: str = "",
    ) -> TraceEntry | None:
        """Append one entry at ``now`` (the engine's clock; None: at the latest time
        recorded); None when full."""
        if now is None:
            now = self.last_now if self.last_now is not None else 0.0
        self.last_now = now
        if self.start is None:
            self.start = now
        if len(self.entries) >= self.max_entries:
            self.dropped += 1
            return None
        entry = TraceEntry(
            now - self.start,
            self.side,
            direction,
            layer,
            what,
            details,
            records=records,
            size=size,
            retransmission=retransmission,
            digest=digest,
        )
        self.entries.append(entry)
        return entry

    def note(self, now: float, layer: str, what: str, details: str = "") -> None:
        """Something that happened inside the engine: a timer, a result, a check."""
        self.add(now, NOTE, layer, what, details)

    def dtls_sent(
        self,
        now: float,
        datagrams: Sequence[bytes],
        protected_names: Sequence[str] = (),
        *,
        retransmission: bool = False,
    ) -> None:
        """Datagrams the DTLS engine put in its outbox. ``protected_names`` names the
        protected handshake records in order (the engine knows what it sealed)."""
        names = list(protected_names)
        for datagram in datagrams:
            records = _decode_records(datagram)
            for record in records:
                if record.sealed and record.content_type == _HANDSHAKE and names:
                    record.contents = (names.pop(0),)
                    record.sealed = False
            self._dtls_datagram(now, SEND, datagram, records, retransmission)

    def dtls_alert_sent(self, now: float, record: bytes, payload: bytes) -> None:
        """An alert record the engine sent (``payload``: the alert before sealing)."""
        records = _decode_records(record)
        for r in records:
            r.contents, r.sealed = (_alert_name(payload),), False
        self._dtls_datagram(now, SEND, record, records, False)

    def dtls_received(self, now: float, datagram: bytes) -> None:
        """A datagram the DTLS engine was fed (before it processed it). Datagrams of
        protected application data only (the connected engine's slower path, e.g.
        several records in one datagram) are not recorded."""
        records = _decode_records(datagram)
        if records and all(r.epoch > 0 and r.content_type == _APPDATA for r in records):
            return
        self._dtls_datagram(now, RECV, datagram, records, False)

    def dtls_opened(self, content_type: int, epoch_seq: int, plaintext: bytes) -> None:
        """A received protected record was opened: name what it carried."""
        epoch, seq = epoch_seq >> 48, epoch_seq & _SEQ_MASK
        for entry in reversed(self.entries[-64:]):
            if entry.direction != RECV or entry.layer != "dtls":
                continue
            for record in entry.records:
                if record.sealed and record.epoch == epoch and record.sequence_number == seq:
                    record.sealed = False
                    record.contents, record.fragments = _describe_plaintext(content_type, plaintext)
                    _relabel(entry)
                    return

    def _dtls_datagram(
        self,
        now: float,
        direction: str,
        datagram: bytes,
        records: list[TraceRecord],
        retransmission: bool,
    ) -> None:
        entry = self.add(
            now,
            direction,
            "dtls",
            "",
            records=tuple(records),
            size=len(datagram),
            retransmission=retransmission,
            digest=hashlib.blake2s(datagram, digest_size=8).hexdigest(),
        )
        if entry is not None:
            _relabel(entry)

    def chunk(
        self, now: float | None, direction: str, layer: str, what: str, details: str = ""
    ) -> None:
        """An SCTP control chunk or a DCEP message sent or received."""
        self.add(now, direction, layer, what, details)

    def sctp_chunks(self, now: float | None, direction: str, chunks: Iterable[object]) -> None:
        """SCTP control chunks (INIT, COOKIE, SHUTDOWN, ABORT, RE-CONFIG, ...); data,
        SACK and heartbeat chunks are not recorded."""
        for chunk in chunks:
            kind = type(chunk).__name__
            name = _SCTP_NAMES.get(kind)
            if name is not None:
                self.add(now, direction, "sctp", name, _sctp_details(chunk))

    def dcep(self, now: float | None, direction: str, message: object, stream_id: int) -> None:
        """A DCEP DATA_CHANNEL_OPEN or DATA_CHANNEL_ACK (RFC 8832) on ``stream_id``."""
        label = getattr(message, "label", None)
        if label is None:
            self.add(now, direction, "dcep", "DATA_CHANNEL_ACK", f"stream {stream_id}")
        else:
            self.add(
                now, direction, "dcep", "DATA_CHANNEL_OPEN", f"stream {stream_id}, label {label!r}"
            )

    # --- reading ------------------------------------------------------------------------

    def messages(self, direction: str | None = None, layer: str = "dtls") -> list[str]:
        """The messages of ``layer`` in order (DTLS: every handshake message, each
        ChangeCipherSpec and alert once, fragments merged), optionally one direction."""
        out: list[str] = []
        for entry in self.entries:
            if entry.layer != layer or entry.direction == NOTE:
                continue
            if direction is not None and entry.direction != direction:
                continue
            if layer != "dtls":
                out.append(entry.what)
                continue
            for record in entry.records:
                if record.fragments:
                    for name, _mseq, offset, _flen, _total in record.fragments:
                        if offset == 0:
                            out.append(name)
                else:
                    out.extend(record.contents)
        return out

    @staticmethod
    def merge(first: Trace, second: Trace) -> Trace:
        """Both sides of one connection in one trace: the ``first``'s sends and the
        ``second``'s sends on a common clock (each engine's ``now`` must come from the
        same clock), each send marked lost when the other side never received it."""
        starts = [t.start for t in (first, second) if t.start is not None]
        origin = min(starts) if starts else 0.0
        merged = Trace(first.side, second.side, start=origin)
        received = {
            first.side: {e.digest for e in second.entries if e.direction == RECV and e.digest},
            second.side: {e.digest for e in first.entries if e.direction == RECV and e.digest},
        }
        items: list[TraceEntry] = []
        for trace in (first, second):
            shift = (trace.start or 0.0) - origin
            for entry in trace.entries:
                if entry.direction == RECV:
                    continue
                moved = replace(entry, time=entry.time + shift)
                if entry.direction == SEND and entry.layer == "dtls" and entry.digest:
                    moved.lost = entry.digest not in received[trace.side]
                items.append(moved)
        items.sort(key=lambda e: e.time)
        merged.entries = items
        return merged

    def mark_lost(self, digest: str) -> None:
        """A simulator tells the trace that the datagram with this digest was dropped."""
        for entry in self.entries:
            if entry.digest == digest and entry.direction == SEND:
                entry.lost = True

    # --- rendering ----------------------------------------------------------------------

    def to_mermaid(self) -> str:
        """The trace as Mermaid ``sequenceDiagram`` text."""
        a, b = _ident(self.side, "A"), _ident(self.peer, "B")
        if a == b:
            b += "2"
        lines = [
            "sequenceDiagram",
            f"    participant {a} as {_mermaid_text(self.side)}",
            f"    participant {b} as {_mermaid_text(self.peer)}",
        ]
        for entry in self.entries:
            here, there = (a, b) if entry.side == self.side else (b, a)
            stamp = f"t={entry.time * 1000:.0f} ms"
            if entry.direction == NOTE:
                text = _mermaid_text(
                    f"{entry.what}: {entry.details}" if entry.details else entry.what
                )
                lines.append(f"    Note over {here}: {stamp} {text}")
                continue
            src, dst = (here, there) if entry.direction == SEND else (there, here)
            arrow = "-x" if entry.lost else ("-->>" if entry.retransmission else "->>")
            label = _mermaid_text(entry.label())
            detail = _mermaid_text(_entry_details(entry))
            body = f"{label}<br/>{stamp}" + (f", {detail}" if detail else "")
            if entry.retransmission or entry.lost:
                colour = "rgb(255, 205, 210)" if entry.lost else "rgb(255, 224, 178)"
                lines.append(f"    rect {colour}")
                lines.append(f"    {src}{arrow}{dst}: {body}")
                lines.append("    end")
            else:
                lines.append(f"    {src}{arrow}{dst}: {body}")
        return "\n".join(lines) + "\n"

    def to_svg(self) -> str:
        """The trace as one standalone SVG document (no script, no external reference)."""
        return _render_svg(self)

    def to_html(self, title: str = "webrtc_secure trace") -> str:
        """One self-contained HTML page: the SVG diagram and a table of every entry."""
        rows = []
        for entry in self.entries:
            cls = (
                ' class="lost"' if entry.lost else (' class="retx"' if entry.retransmission else "")
            )
            rows.append(
                f"<tr{cls}><td>{entry.time * 1000:.1f}</td><td>{escape(entry.side)}</td>"
                f"<td>{entry.direction}</td><td>{entry.layer}</td>"
                f"<td>{escape(entry.label())}</td><td>{escape(_entry_details(entry))}</td></tr>"
            )
        table = "\n".join(rows)
        return (
            "<!DOCTYPE html>\n"
            '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n'
            f'<head><meta charset="utf-8"/><title>{escape(title)}</title>\n'
            "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;"
            "font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
            "tr.retx{background:#ffe0b2}tr.lost{background:#ffcdd2}</style></head>\n"
            f"<body><h1>{escape(title)}</h1>\n{_render_svg(self, standalone=False)}\n"
            "<table><thead><tr><th>t (ms)</th><th>side</th><th>direction</th><th>layer</th>"
            f"<th>what</th><th>details</th></tr></thead><tbody>\n{table}\n</tbody></table>\n"
            "</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the trace; the extension picks the format: ``.mmd`` / ``.md``
        (Mermaid, ``.md`` inside a fenced block), ``.svg``, ``.html`` / ``.htm``."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".mmd":
            text = self.to_mermaid()
        elif suffix == ".md":
            text = "```mermaid\n" + self.to_mermaid() + "```\n"
        elif suffix == ".svg":
            text = self.to_svg()
        elif suffix in (".html", ".htm"):
            text = self.to_html()
        else:
            raise ValueError(
                f"cannot tell the trace format from {target.name!r}: use .mmd, .md, .svg or .html"
            )
        target.write_text(text, encoding="utf-8")
        return target


TRACE_SUFFIXES = (".mmd", ".md", ".svg", ".html", ".htm")


# --- DTLS decoding (no keys: protected records are named by the engine) ------------------


def _describe_plaintext(
    content_type: int, payload: bytes
) -> tuple[tuple[str, ...], tuple[tuple[str, int, int, int, int], ...]]:
    if content_type == _CCS:
        return ("ChangeCipherSpec",), ()
    if content_type == _ALERT:
        return (_alert_name(payload),), ()
    if content_type == _HANDSHAKE:
        try:
            fragments = split_handshake_fragments(payload)
        except MalformedPacket:
            return ("Handshake (malformed)",), ()
        frags = tuple(
            (
                "HelloRetryRequest"
                if t == 2 and offset == 0 and body[2:34] == _HRR_RANDOM
                else message_name(t),
                mseq,
                offset,
                len(body),
                length,
            )
            for t, length, mseq, offset, body in fragments
        )
        names: list[str] = []
        for f in frags:
            if not names or names[-1] != f[0]:
                names.append(f[0])
        return tuple(names), frags
    if content_type == int(ContentType.APPLICATION_DATA):
        return ("ApplicationData",), ()
    return (f"content type {content_type}",), ()


def _decode_records(datagram: bytes) -> list[TraceRecord]:
    records, clean = split_records(datagram)
    out: list[TraceRecord] = []
    for ctype, _version, epoch_seq, fragment in records:
        epoch, seq = epoch_seq >> 48, epoch_seq & _SEQ_MASK
        if epoch == 0:
            contents, frags = _describe_plaintext(ctype, fragment)
            out.append(TraceRecord(ctype, epoch, seq, len(fragment), contents, frags))
        else:
            kind = {_HANDSHAKE: "Handshake", _ALERT: "Alert", _CCS: "ChangeCipherSpec"}.get(
                ctype, "ApplicationData"
            )
            out.append(
                TraceRecord(
                    ctype,
                    epoch,
                    seq,
                    len(fragment),
                    (f"{kind} (encrypted)",),
                    (),
                    sealed=ctype != int(ContentType.APPLICATION_DATA),
                )
            )
    if not clean:
        out.append(TraceRecord(-1, -1, -1, 0, ("malformed bytes",)))
    return out


def _relabel(entry: TraceEntry) -> None:
    names: list[str] = []
    messages: list[str] = []
    for record in entry.records:
        for name in record.contents:
            if not names or names[-1] != name:
                names.append(name)
        if record.fragments:
            messages.extend(f[0] for f in record.fragments if f[2] == 0)
        else:
            messages.extend(record.contents)
    entry.what = ", ".join(names)
    entry.messages = tuple(messages)
    entry.details = f"{entry.size} B; " + " ".join(r.describe() for r in entry.records)


def _entry_details(entry: TraceEntry) -> str:
    return entry.details


_SCTP_NAMES = {
    "InitChunk": "INIT",
    "InitAckChunk": "INIT ACK",
    "CookieEchoChunk": "COOKIE ECHO",
    "CookieAckChunk": "COOKIE ACK",
    "ShutdownChunk": "SHUTDOWN",
    "ShutdownAckChunk": "SHUTDOWN ACK",
    "ShutdownCompleteChunk": "SHUTDOWN COMPLETE",
    "AbortChunk": "ABORT",
    "ErrorChunk": "ERROR",
    "ReconfigChunk": "RE-CONFIG",
}


def _sctp_details(chunk: object) -> str:
    parts = []
    for attr, label in (
        ("initiate_tag", "tag"),
        ("outbound_streams", "out streams"),
        ("inbound_streams", "in streams"),
        ("initial_tsn", "initial TSN"),
        ("cumulative_tsn", "cumulative TSN"),
    ):
        value = getattr(chunk, attr, None)
        if isinstance(value, int):
            parts.append(f"{label} {value:#x}" if attr == "initiate_tag" else f"{label} {value}")
    # INIT parameters (capabilities) would drown the diagram: reset requests and causes
    init = type(chunk).__name__ in ("InitChunk", "InitAckChunk")
    for attr in () if init else ("causes", "parameters"):
        items = getattr(chunk, attr, None)
        if isinstance(items, tuple) and items:
            parts.append(", ".join(_parameter_text(item) for item in items))
    return ", ".join(parts)


def _parameter_text(item: object) -> str:
    streams = getattr(item, "streams", None)
    name = type(item).__name__
    if isinstance(streams, tuple):
        return f"{name} streams {list(streams)}"
    result = getattr(item, "result", None)
    return f"{name} result {int(result)}" if isinstance(result, int) else name


# --- Mermaid ------------------------------------------------------------------------------


def _ident(name: str, fallback: str) -> str:
    ident = "".join(c for c in name.title() if c.isalnum())
    return ident or fallback


def _mermaid_text(text: str) -> str:
    # ';' ends a statement and '#' starts an entity code in Mermaid; newlines end a line
    return text.replace("#", "no. ").replace(";", ",").replace("\n", " ").replace("\r", " ")


# --- SVG ----------------------------------------------------------------------------------

_ROW = 34
_WIDTH = 960
_LEFT_X = 150
_RIGHT_X = 810
_TOP = 60
_COLOURS = {"normal": "#263238", "retx": "#e65100", "lost": "#c62828", "note": "#546e7a"}


def _render_svg(trace: Trace, *, standalone: bool = True) -> str:
    rows = len(trace.entries)
    height = _TOP + rows * _ROW + 40
    parts: list[str] = []
    xmlns = ' xmlns="http://www.w3.org/2000/svg"'
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if standalone else ""
    parts.append(
        f'{head}<svg{xmlns} width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12">'
    )
    parts.append("<defs>")
    for key, colour in _COLOURS.items():
        parts.append(
            f'<marker id="arrow-{key}" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
        )
    parts.append("</defs>")
    parts.append(f'<rect x="0" y="0" width="{_WIDTH}" height="{height}" fill="#ffffff"/>')
    for x, name in ((_LEFT_X, trace.side), (_RIGHT_X, trace.peer)):
        parts.append(
            f'<rect x="{x - 70}" y="10" width="140" height="28" rx="4" fill="#eceff1" '
            f'stroke="#90a4ae"/><text x="{x}" y="29" text-anchor="middle" '
            f'font-weight="bold">{escape(name)}</text>'
        )
        parts.append(
            f'<line x1="{x}" y1="38" x2="{x}" y2="{height - 10}" stroke="#b0bec5" '
            f'stroke-dasharray="4 3"/>'
        )
    y = _TOP
    for entry in trace.entries:
        here, there = (_LEFT_X, _RIGHT_X) if entry.side == trace.side else (_RIGHT_X, _LEFT_X)
        stamp = f"{entry.time * 1000:.0f} ms"
        if entry.direction == NOTE:
            text = f"{stamp} {entry.side}: {entry.what}" + (
                f" ({entry.details})" if entry.details else ""
            )
            parts.append(
                f'<rect x="{_LEFT_X + 10}" y="{y - 4}" width="{_RIGHT_X - _LEFT_X - 20}" '
                f'height="{_ROW - 8}" fill="#fff9c4" stroke="#fbc02d"/>'
                f'<text x="{(_LEFT_X + _RIGHT_X) // 2}" y="{y + 14}" text-anchor="middle" '
                f'fill="{_COLOURS["note"]}"><title>{escape(text)}</title>'
                f"{escape(_clip(text, 100))}</text>"
            )
            y += _ROW
            continue
        src, dst = (here, there) if entry.direction == SEND else (there, here)
        key = "lost" if entry.lost else ("retx" if entry.retransmission else "normal")
        colour = _COLOURS[key]
        line_y = y + 18
        end = dst if not entry.lost else (src + dst) // 2
        dash = ' stroke-dasharray="6 4"' if entry.retransmission or entry.lost else ""
        marker = "" if entry.lost else f' marker-end="url(#arrow-{key})"'
        parts.append(
            f'<line x1="{src}" y1="{line_y}" x2="{end}" y2="{line_y}" stroke="{colour}" '
            f'stroke-width="2"{dash}{marker}/>'
        )
        if entry.lost:
            parts.append(
                f'<path d="M {end - 6} {line_y - 6} L {end + 6} {line_y + 6} M {end - 6} '
                f'{line_y + 6} L {end + 6} {line_y - 6}" stroke="{colour}" stroke-width="3"/>'
            )
        label = (
            f"{entry.label()}  ({stamp}, {entry.size} B)"
            if entry.size
            else (f"{entry.label()}  ({stamp})")
        )
        parts.append(
            f'<text x="{(_LEFT_X + _RIGHT_X) // 2}" y="{line_y - 5}" text-anchor="middle" '
            f'fill="{colour}"><title>{escape(_entry_details(entry))}</title>'
            f"{escape(_clip(label, 100))}</text>"
        )
        y += _ROW
    if trace.dropped:
        parts.append(
            f'<text x="10" y="{height - 12}">{trace.dropped} further entries not kept</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def entries_of(traces: Iterable[Trace]) -> list[TraceEntry]:
    """All entries of several traces, by time (for a quick look in tests or a REPL)."""
    return sorted((e for t in traces for e in t.entries), key=lambda e: e.time)


# --- DTLS 1.3 ---------------------------------------------------------------------------
#
# The DTLS 1.3 engine (dtls/handshake13.Dtls13) encrypts everything after the
# ServerHello, record numbers included (RFC 9147 4.2.3), so the wire says little. When
# a connection is traced, instrument13 wraps a few methods of that one engine instance
# (an untraced engine is never touched): what a transmission carries comes from the
# engine's flight, what a received record carried from the engine once it opened it.

_ACK13 = 26


def _decode_records13(datagram: bytes) -> list[TraceRecord]:
    from webrtc_secure.dtls.records13 import PlaintextRecord, split_datagram

    records, clean = split_datagram(datagram)
    out: list[TraceRecord] = []
    for record in records:
        if type(record) is PlaintextRecord:
            contents, frags = _describe_plaintext(record.content_type, record.fragment)
            out.append(
                TraceRecord(
                    record.content_type,
                    record.epoch,
                    record.sequence_number,
                    len(record.fragment),
                    contents,
                    frags,
                )
            )
        else:
            epoch_bits = getattr(record, "epoch_bits", 0)
            size = len(getattr(record, "encrypted_record", b""))
            # the record number is encrypted on the wire: -1 until the engine opens it
            out.append(TraceRecord(-1, epoch_bits, -1, size, ("encrypted",), (), sealed=True))
    if not clean:
        out.append(TraceRecord(-1, -1, -1, 0, ("malformed bytes",)))
    return out


def _entry13(
    trace: Trace,
    now: float,
    direction: str,
    datagrams: Sequence[bytes],
    names: Sequence[str] | None = None,
    retransmission: bool = False,
    details: str = "",
    numbered: Sequence[tuple[tuple[int, int], str, int, int, int, int]] = (),
    name_numbers: Sequence[tuple[int, int]] = (),
) -> None:
    """One entry per datagram. Protected records are named from ``numbered`` (the
    engine's own list of what it sealed, in order: record number, message name,
    message_seq, fragment offset, fragment length, message length) or ``names``."""
    pending_names = list(names or ())
    pending = list(numbered)
    for datagram in datagrams:
        records = _decode_records13(datagram)
        for record in records:
            if pending and record.content_type in (-1, _HANDSHAKE):
                (epoch, seq), name, mseq, offset, flen, total = pending.pop(0)
                record.content_type = _HANDSHAKE
                record.epoch, record.sequence_number = epoch, seq
                record.contents = (name,)
                record.fragments = ((name, mseq, offset, flen, total),)
                record.sealed = False
            elif record.sealed and pending_names:
                record.contents = (pending_names.pop(0),)
                record.sealed = False
                if len(name_numbers) > len(names or ()) - len(pending_names) - 1:
                    number = name_numbers[len(names or ()) - len(pending_names) - 1]
                    record.epoch, record.sequence_number = number
        entry = trace.add(
            now,
            direction,
            "dtls",
            "",
            records=tuple(records),
            size=len(datagram),
            retransmission=retransmission,
            digest=hashlib.blake2s(datagram, digest_size=8).hexdigest(),
        )
        if entry is None:
            return
        _relabel(entry)
        if details:
            entry.details += f"; {details}"


def _opened13(
    trace: Trace,
    now: float,
    content_type: int,
    payload: bytes,
    epoch: int,
    seq: int,
    connected: bool,
) -> None:
    """A record the 1.3 engine opened: name the oldest sealed record of the latest
    received datagram, or (after the handshake) add an entry of its own."""
    if content_type == _ACK13:
        contents: tuple[str, ...] = ("ACK",)
        frags: tuple[tuple[str, int, int, int, int], ...] = ()
    elif content_type == _HANDSHAKE:
        contents, frags = _describe_plaintext(content_type, payload)
    else:
        contents, frags = _describe_plaintext(content_type, payload)
    for entry in reversed(trace.entries[-16:]):
        if entry.direction != RECV or entry.layer != "dtls":
            continue
        for record in entry.records:
            if record.sealed and (epoch < 0 or record.epoch == epoch & 3):
                record.sealed = False
                record.content_type = content_type
                record.contents, record.fragments = contents, frags
                if epoch >= 0:
                    record.epoch, record.sequence_number = epoch, seq
                _relabel(entry)
                return
        break
    if connected:
        record = TraceRecord(content_type, max(epoch, 0), seq, len(payload), contents, frags)
        entry_ = trace.add(now, RECV, "dtls", "", records=(record,), size=len(payload))
        if entry_ is not None:
            _relabel(entry_)


def instrument13(engine: Any, trace: Trace) -> None:
    """Record what the DTLS 1.3 ``engine`` sends and receives into ``trace``."""
    transmit = engine._transmit
    send_ack = engine._send_ack
    send_alert = engine.send_alert
    send_hrr = engine._send_hello_retry_request
    receive = engine.receive_datagram
    on_handshake_record = engine._on_handshake_record
    on_ack = engine._on_ack
    on_alert = engine._on_alert
    handle_timer = engine.handle_timer

    #: (message_seq, fragment offset) of every handshake fragment sent so far: a
    #: transmission that repeats one is a retransmission, whatever triggered it (the
    #: timer, an ACK naming gaps, or the peer's own retransmission)
    sent_fragments: set[tuple[int, int]] = set()

    def traced_transmit(now: float, only: Any = None) -> None:
        before = len(engine.outbox)
        counter = engine._send_counter
        transmit(now, only)
        # record number -> (message, start, stop, send order, time)
        sent = engine._sent
        numbers = sorted((n for n, r in sent.items() if r[3] >= counter), key=lambda n: sent[n][3])
        numbered = []
        repeated = False
        for number in numbers:
            out, start, stop = sent[number][:3]
            name = message_name(out.msg_type)
            numbered.append((number, name, out.seq, start, stop - start, len(out.body)))
            repeated = repeated or (out.seq, start) in sent_fragments
            sent_fragments.add((out.seq, start))
        _entry13(
            trace,
            now,
            SEND,
            engine.outbox[before:],
            retransmission=repeated,
            details="only the parts not ACKed" if only else "",
            numbered=numbered,
        )

    def traced_send_ack() -> None:
        numbers = sorted(set(engine._to_ack))
        before = len(engine.outbox)
        tx = engine._tx
        number = [(tx.epoch, tx.next_sequence)] if tx is not None else []
        send_ack()
        shown = ", ".join(f"{e}/{s}" for e, s in numbers[:8]) + (" ..." if len(numbers) > 8 else "")
        _entry13(
            trace,
            engine.now,
            SEND,
            engine.outbox[before:],
            ["ACK"],
            details=f"acknowledges records {shown}",
            name_numbers=number,
        )

    def traced_send_alert(level: int, description: int) -> None:
        before = len(engine.outbox)
        send_alert(level, description)
        name = _alert_name(bytes((level, description)))
        _entry13(trace, engine.now, SEND, engine.outbox[before:], [name])

    def traced_send_hrr(*args: Any, **kwargs: Any) -> None:
        before = len(engine.outbox)
        send_hrr(*args, **kwargs)
        _entry13(trace, engine.now, SEND, engine.outbox[before:], ["HelloRetryRequest"])

    def traced_receive(data: bytes, now: float) -> None:
        if not engine.connected:  # application data afterwards is not recorded
            _entry13(trace, now, RECV, [data], None)
        receive(data, now)

    def traced_on_handshake_record(
        payload: bytes, epoch: int, seq: int, records: Any, index: int
    ) -> Any:
        if epoch > 0:
            _opened13(trace, engine.now, _HANDSHAKE, payload, epoch, seq, engine.connected)
        return on_handshake_record(payload, epoch, seq, records, index)

    def traced_on_ack(body: bytes) -> None:
        _opened13(trace, engine.now, _ACK13, body, -1, -1, engine.connected)
        on_ack(body)

    def traced_on_alert(payload: bytes, epoch: int) -> None:
        if epoch > 0:
            _opened13(trace, engine.now, _ALERT, payload, epoch, -1, engine.connected)
        on_alert(payload, epoch)

    def traced_handle_timer(now: float) -> None:
        due = engine.retransmit_at
        if due is not None and now >= due and not engine.failed:
            trace.note(
                now,
                "dtls",
                "retransmission timer fired",
                f"after {engine.timeout:g} s (retransmission {engine.retransmissions + 1})",
            )
        handle_timer(now)

    engine._transmit = traced_transmit
    engine._send_ack = traced_send_ack
    engine.send_alert = traced_send_alert
    engine._send_hello_retry_request = traced_send_hrr
    engine.receive_datagram = traced_receive
    engine._on_handshake_record = traced_on_handshake_record
    engine._on_ack = traced_on_ack
    engine._on_alert = traced_on_alert
    engine.handle_timer = traced_handle_timer
