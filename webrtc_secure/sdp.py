"""Line-level SDP codec: bounds, attribute splitting, candidates and media sections.

:mod:`webrtc_secure.description` builds the session model on top of these pieces. Every
parse failure here is an :class:`~webrtc_secure.errors.SdpError` naming the line; no
``ValueError`` or ``IndexError`` ever escapes.

A :class:`MediaSection` models what a WebRTC answer has to mirror (kind, mid, codecs,
header extensions, direction, rtcp-mux/rsize, SSRCs and msid) and keeps every attribute
it does not model verbatim in :attr:`MediaSection.attributes`. Transport attributes
(ICE credentials, candidates, fingerprints, setup) are not stored per section: the
session description owns the one BUNDLE transport.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aioice import Candidate

from webrtc_secure.errors import SdpError

#: Largest SDP text accepted (characters). Chromium's offers with simulcast stay far below.
MAX_SDP_LENGTH = 64 * 1024
#: Largest number of lines accepted.
MAX_LINES = 2048
#: Largest number of m= sections accepted.
MAX_MEDIA_SECTIONS = 64
#: Largest number of candidates accepted in one m= section or one description.
MAX_CANDIDATES = 128

#: RTP profiles whose media is protected by DTLS-SRTP.
SECURE_RTP_PROTOCOLS = frozenset({"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP", "RTP/SAVPF"})
DEFAULT_RTP_PROTOCOL = "UDP/TLS/RTP/SAVPF"
#: SCTP over DTLS (RFC 8841); the only format is "webrtc-datachannel" (RFC 8831)
DATA_CHANNEL_PROTOCOLS = frozenset({"UDP/DTLS/SCTP", "TCP/DTLS/SCTP"})
DATA_CHANNEL_PROTOCOL = "UDP/DTLS/SCTP"
DATA_CHANNEL_FORMAT = "webrtc-datachannel"
#: RFC 8841 5.2: the SCTP port when a=sctp-port is absent
DEFAULT_SCTP_PORT = 5000
#: RFC 8841 6: the remote's limit when a=max-message-size is absent (0 = no limit)
DEFAULT_MAX_MESSAGE_SIZE = 65536
#: SNAP (draft-hancke-tsvwg-snap) a=sctp-init: the INIT chunk's size bounds (its
#: 20-octet fixed part; parameters make it a few dozen octets in practice)
SCTP_INIT_MIN = 20
SCTP_INIT_MAX = 1024

#: RFC 3551 static payload types, used when an m-line lists one without an a=rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int | None]] = {
    0: ("PCMU", 8000, None),
    3: ("GSM", 8000, None),
    4: ("G723", 8000, None),
    5: ("DVI4", 8000, None),
    6: ("DVI4", 16000, None),
    7: ("LPC", 8000, None),
    8: ("PCMA", 8000, None),
    9: ("G722", 8000, None),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, None),
    12: ("QCELP", 8000, None),
    13: ("CN", 8000, None),
    14: ("MPA", 90000, None),
    15: ("G728", 8000, None),
    16: ("DVI4", 11025, None),
    17: ("DVI4", 22050, None),
    18: ("G729", 8000, None),
    25: ("CelB", 90000, None),
    26: ("JPEG", 90000, None),
    28: ("nv", 90000, None),
    31: ("H261", 90000, None),
    32: ("MPV", 90000, None),
    33: ("MP2T", 90000, None),
    34: ("H263", 90000, None),
}

_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_PROTOCOL = re.compile(r"[A-Za-z0-9/_.\-]+")
_LINE = re.compile(r"^([a-z])=(.*)$")
#: Attribute names with their own fields: never accepted as verbatim attributes, so a
#: hand-built section cannot smuggle a second fingerprint or setup line.
TRANSPORT_ATTRIBUTES = frozenset(
    {
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "ice-lite",
        "fingerprint",
        "setup",
        "candidate",
        "end-of-candidates",
    }
)
_MODELLED_MEDIA_ATTRIBUTES = TRANSPORT_ATTRIBUTES | {
    "mid",
    "sendrecv",
    "sendonly",
    "recvonly",
    "inactive",
    "rtcp-mux",
    "rtcp-rsize",
    "extmap",
    "msid",
    "ssrc",
    "ssrc-group",
    "bundle-only",
    "sctp-port",
    "max-message-size",
    "sctp-init",
}
_CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
_TCP_TYPES = frozenset({"active", "passive", "so"})


class Direction(str, Enum):
    """RFC 8866 media direction attributes."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, sends: bool, receives: bool) -> Direction:
        if sends and receives:
            return cls.SENDRECV
        if sends:
            return cls.SENDONLY
        if receives:
            return cls.RECVONLY
        return cls.INACTIVE

    def answer(self, wanted: Direction | None = None) -> Direction:
        """The answer's direction to this offered one, capped by what we ``wanted``.

        We may send only where the offerer receives, and receive only where it sends
        (RFC 3264 6.1). ``wanted`` defaults to sendrecv.
        """
        wanted = wanted or Direction.SENDRECV
        return Direction.from_flags(self.receives and wanted.sends, self.sends and wanted.receives)


# --- small helpers -------------------------------------------------------------------


def parse_int(text: str, what: str, low: int, high: int) -> int:
    """A decimal integer within [low, high], or SdpError naming ``what``."""
    if not _DIGITS.fullmatch(text):
        raise SdpError(f"{what} is not a decimal number: {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise SdpError(f"{what} {value} is out of range [{low}, {high}]")
    return value


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 8866 token."""
    return bool(_TOKEN.fullmatch(text))


def split_attribute(value: str) -> tuple[str, str | None]:
    """``"rtpmap:111 opus/48000/2"`` -> ``("rtpmap", "111 opus/48000/2")``; flags give None."""
    name, sep, rest = value.partition(":")
    if not is_token(name):
        raise SdpError(f"malformed attribute name {name[:40]!r}")
    return name, (rest if sep else None)


def require_value(name: str, value: str | None) -> str:
    if value is None or not value.strip():
        raise SdpError(f"a={name} needs a value")
    return value.strip()


def check_text(text: str) -> None:
    """Refuse control characters: a value must never be able to start a new SDP line."""
    if any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in text):
        raise SdpError(f"control character in SDP value {text[:40]!r}")


def split_lines(text: str) -> list[tuple[int, str, str]]:
    """Split SDP text into ``(line_number, type_letter, value)`` after bounding its size.

    Accepts CRLF or bare LF line ends (RFC 8866 asks parsers to) and ignores blank lines.
    """
    if not isinstance(text, str):
        raise SdpError(f"SDP must be text, not {type(text).__name__}")
    if len(text) > MAX_SDP_LENGTH:
        raise SdpError(f"SDP is {len(text)} characters long; the limit is {MAX_SDP_LENGTH}")
    raw = text.split("\n")
    if len(raw) > MAX_LINES + 1:
        raise SdpError(f"SDP has more than {MAX_LINES} lines")
    out: list[tuple[int, str, str]] = []
    for number, line in enumerate(raw, start=1):
        # trailing whitespace is tolerated, as browsers do
        line = line.rstrip(" \t\r")
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            raise SdpError(f"line {number}: not a '<letter>=<value>' SDP line: {line[:60]!r}")
        if any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in line):
            raise SdpError(f"line {number}: control character in SDP line")
        out.append((number, match.group(1), match.group(2)))
    return out


# --- ICE candidates ------------------------------------------------------------------


def parse_candidate(value: str) -> Any:
    """Parse the value of ``a=candidate:`` into an :class:`aioice.Candidate`.

    aioice's own parser trusts its input; the fields are checked here first so a
    malformed candidate becomes an SdpError.
    """
    bits = value.split()
    if len(bits) < 8 or bits[6] != "typ":
        raise SdpError(f"malformed candidate {value[:80]!r}")
    if not is_token(bits[0]) or len(bits[0]) > 32:
        raise SdpError(f"malformed candidate foundation {bits[0][:40]!r}")
    parse_int(bits[1], "candidate component", 1, 256)
    transport = bits[2].lower()
    if transport not in ("udp", "tcp"):
        raise SdpError(f"unsupported candidate transport {bits[2][:20]!r}")
    parse_int(bits[3], "candidate priority", 0, 2**32 - 1)
    if not bits[4] or len(bits[4]) > 255:
        raise SdpError("malformed candidate address")
    parse_int(bits[5], "candidate port", 0, 65535)
    if bits[7] not in _CANDIDATE_TYPES:
        raise SdpError(f"unknown candidate type {bits[7][:20]!r}")
    extensions = bits[8:]
    if len(extensions) % 2:
        raise SdpError(f"candidate extension without a value: {value[:80]!r}")
    for key, ext in zip(extensions[::2], extensions[1::2], strict=True):
        if key == "rport":
            parse_int(ext, "candidate rport", 0, 65535)
        elif key == "generation":
            parse_int(ext, "candidate generation", 0, 2**32 - 1)
        elif key == "tcptype" and ext not in _TCP_TYPES:
            raise SdpError(f"unknown candidate tcptype {ext[:20]!r}")
    try:
        return Candidate.from_sdp(value)
    except ValueError as exc:  # defensive: the checks above cover aioice's parser
        raise SdpError(f"malformed candidate {value[:80]!r}") from exc


def candidate_to_sdp(candidate: Any) -> str:
    """The ``a=candidate:`` value of an :class:`aioice.Candidate`."""
    return str(candidate.to_sdp())


def default_address(candidates: list[Any]) -> tuple[int, str]:
    """Port and ``c=`` value for an m-line: the best UDP component-1 candidate.

    Without one, the RFC 8840 placeholder ``9`` / ``IN IP4 0.0.0.0``.
    """
    # port 0 on an m-line would mean "rejected", so such a candidate never becomes the default
    udp = [
        c
        for c in candidates
        if c.component == 1 and str(c.transport).lower() == "udp" and int(c.port) != 0
    ]
    if not udp:
        return 9, "IN IP4 0.0.0.0"
    best = max(udp, key=lambda c: int(c.priority))
    try:
        address = ipaddress.ip_address(best.host)
    except ValueError:  # an mDNS name: the real address stays private
        return int(best.port), "IN IP4 0.0.0.0"
    return int(best.port), f"IN IP{address.version} {address}"


# --- media section model -------------------------------------------------------------


@dataclass
class Codec:
    """One RTP payload format: ``a=rtpmap``, its ``a=fmtp`` and ``a=rtcp-fb`` lines."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None
    rtcp_feedback: list[str] = field(default_factory=list)

    @property
    def rtpmap(self) -> str:
        """``"opus/48000/2"``: the encoding part of ``a=rtpmap``."""
        text = f"{self.name}/{self.clock_rate}"
        return f"{text}/{self.channels}" if self.channels is not None else text

    def matches(self, spec: str) -> bool:
        """True for ``"opus/48000/2"``-style specs (name case-insensitive, 1 channel default)."""
        name, clock, channels = _parse_encoding(spec)
        return (
            name.lower() == self.name.lower()
            and clock == self.clock_rate
            and (channels or 1) == (self.channels or 1)
        )

    def lines(self) -> list[str]:
        out = [f"a=rtpmap:{self.payload_type} {self.rtpmap}"]
        out += [f"a=rtcp-fb:{self.payload_type} {fb}" for fb in self.rtcp_feedback]
        if self.fmtp is not None:
            out.append(f"a=fmtp:{self.payload_type} {self.fmtp}")
        return out


def _parse_encoding(text: str) -> tuple[str, int, int | None]:
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not is_token(parts[0]):
        raise SdpError(f"malformed rtpmap encoding {text[:40]!r}")
    clock = parse_int(parts[1], "rtpmap clock rate", 1, 10_000_000)
    channels = parse_int(parts[2], "rtpmap channels", 1, 255) if len(parts) == 3 else None
    return parts[0], clock, channels


@dataclass
class HeaderExtension:
    """One ``a=extmap:<id>[/<direction>] <uri> [<attributes>]`` line."""

    id: int
    uri: str
    direction: str | None = None
    attributes: str | None = None

    def line(self) -> str:
        ident = f"{self.id}/{self.direction}" if self.direction else str(self.id)
        tail = f" {self.attributes}" if self.attributes else ""
        return f"a=extmap:{ident} {self.uri}{tail}"

    @classmethod
    def parse(cls, value: str) -> HeaderExtension:
        parts = value.split(None, 2)
        if len(parts) < 2:
            raise SdpError(f"malformed extmap {value[:60]!r}")
        ident, _, direction = parts[0].partition("/")
        ext_id = parse_int(ident, "extmap id", 1, 4095)
        if direction and direction not in {d.value for d in Direction}:
            raise SdpError(f"unknown extmap direction {direction[:20]!r}")
        return cls(ext_id, parts[1], direction or None, parts[2] if len(parts) > 2 else None)


@dataclass
class Ssrc:
    """One SSRC and its ``a=ssrc:<ssrc> <attribute>`` values (``cname:...``, ``msid:...``)."""

    ssrc: int
    attributes: list[str] = field(default_factory=list)

    @property
    def cname(self) -> str | None:
        for attribute in self.attributes:
            if attribute.startswith("cname:"):
                return attribute[len("cname:") :]
        return None


@dataclass
class SsrcGroup:
    """``a=ssrc-group:<semantics> <ssrc>...`` (e.g. FID for RTX pairs)."""

    semantics: str
    ssrcs: list[int]

    def line(self) -> str:
        return f"a=ssrc-group:{self.semantics} {' '.join(str(s) for s in self.ssrcs)}"


@dataclass
class MediaSection:
    """One m= section without its transport attributes.

    For ``audio``/``video`` the m-line's format list is the payload types of
    :attr:`codecs`, in order; other kinds (``application``) use :attr:`formats`.
    A rejected section (offered or answered with port 0) has ``rejected=True``.
    """

    kind: str
    mid: str | None
    protocol: str = DEFAULT_RTP_PROTOCOL
    codecs: list[Codec] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    direction: Direction | None = Direction.SENDRECV
    rtcp_mux: bool = True
    rtcp_rsize: bool = False
    extensions: list[HeaderExtension] = field(default_factory=list)
    msid: str | None = None
    ssrcs: list[Ssrc] = field(default_factory=list)
    ssrc_groups: list[SsrcGroup] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    rejected: bool = False
    bundle_only: bool = False
    #: ``a=sctp-port`` and ``a=max-message-size`` (RFC 8841) of a data channel section
    sctp_port: int | None = None
    max_message_size: int | None = None
    #: SNAP's ``a=sctp-init``: the section owner's SCTP INIT chunk (decoded bytes)
    sctp_init: bytes | None = None

    @property
    def is_rtp(self) -> bool:
        return self.kind in ("audio", "video")

    @property
    def is_data_channel(self) -> bool:
        """An SCTP-over-DTLS section carrying WebRTC data channels (RFC 8841)."""
        return (
            self.kind == "application"
            and self.protocol in DATA_CHANNEL_PROTOCOLS
            and DATA_CHANNEL_FORMAT in self.formats
        )

    def format_list(self) -> list[str]:
        if self.is_rtp:
            return [str(codec.payload_type) for codec in self.codecs]
        return list(self.formats)

    def codec(self, payload_type: int) -> Codec | None:
        return next((c for c in self.codecs if c.payload_type == payload_type), None)

    def validate(self) -> None:
        """Raise SdpError when this section cannot be written as valid SDP."""
        if not is_token(self.kind):
            raise SdpError(f"malformed media kind {self.kind[:20]!r}")
        if not _PROTOCOL.fullmatch(self.protocol):
            raise SdpError(f"malformed media protocol {self.protocol[:40]!r}")
        if self.mid is not None and (not is_token(self.mid) or len(self.mid) > 64):
            raise SdpError(f"malformed mid {self.mid[:70]!r}")
        formats = self.format_list()
        if not formats:
            raise SdpError(f"{self.kind} section {self.mid!r} lists no formats")
        if any(not is_token(f) for f in formats):
            raise SdpError(f"malformed format in {self.kind} section {self.mid!r}")
        if len(set(formats)) != len(formats):
            raise SdpError(f"duplicate payload type in {self.kind} section {self.mid!r}")
        for codec in self.codecs:
            if not 0 <= codec.payload_type <= 127:
                raise SdpError(f"payload type {codec.payload_type} is out of range")
        if self.sctp_port is not None and not 0 < self.sctp_port <= 65535:
            raise SdpError(f"a=sctp-port {self.sctp_port} is out of range")
        if self.max_message_size is not None and not 0 <= self.max_message_size < 2**63:
            raise SdpError(f"a=max-message-size {self.max_message_size} is out of range")
        if self.sctp_init is not None and not (
            isinstance(self.sctp_init, bytes)
            and SCTP_INIT_MIN <= len(self.sctp_init) <= SCTP_INIT_MAX
        ):
            raise SdpError(f"a=sctp-init must be {SCTP_INIT_MIN}..{SCTP_INIT_MAX} octets")
        if self.rejected and self.bundle_only:
            raise SdpError(f"section {self.mid!r} cannot be both rejected and bundle-only")
        texts = [
            self.kind,
            self.protocol,
            self.mid or "",
            self.msid or "",
            *formats,
            *self.attributes,
        ]
        for codec in self.codecs:
            if not is_token(codec.name):
                raise SdpError(f"malformed codec name {codec.name[:20]!r}")
            texts += [codec.fmtp or "", *codec.rtcp_feedback]
        for ext in self.extensions:
            if not 1 <= ext.id <= 4095 or not ext.uri or " " in ext.uri:
                raise SdpError(f"malformed header extension {ext.id} {ext.uri[:60]!r}")
            texts += [ext.uri, ext.attributes or ""]
        for ssrc in self.ssrcs:
            if not 0 <= ssrc.ssrc < 2**32 or not ssrc.attributes:
                raise SdpError(f"malformed ssrc {ssrc.ssrc}")
            texts += ssrc.attributes
        for group in self.ssrc_groups:
            if not is_token(group.semantics) or not group.ssrcs:
                raise SdpError(f"malformed ssrc-group {group.semantics[:20]!r}")
        for text in texts:
            check_text(text)
        for attribute in self.attributes:
            name, value = split_attribute(attribute)
            if name in _MODELLED_MEDIA_ATTRIBUTES or (
                self.is_rtp
                and (
                    name in ("rtpmap", "fmtp")
                    or (name == "rtcp-fb" and not (value or "").startswith("*"))
                )
            ):
                raise SdpError(f"a={name} belongs in its own field, not in attributes")

    def lines(self, port: int, connection: str, transport: list[str]) -> list[str]:
        """The section's SDP lines, with ``transport`` lines (ICE/DTLS) after ``c=``."""
        out = [
            f"m={self.kind} {0 if self.rejected or self.bundle_only else port} {self.protocol} "
            + " ".join(self.format_list()),
            f"c={connection}",
        ]
        out += transport
        if self.bundle_only:
            out.append("a=bundle-only")
        if self.mid is not None:
            out.append(f"a=mid:{self.mid}")
        out += [ext.line() for ext in self.extensions]
        if self.sctp_port is not None:
            out.append(f"a=sctp-port:{self.sctp_port}")
        if self.max_message_size is not None:
            out.append(f"a=max-message-size:{self.max_message_size}")
        if self.sctp_init is not None:
            out.append(f"a=sctp-init:{base64.b64encode(self.sctp_init).decode('ascii')}")
        if self.direction is not None:
            out.append(f"a={self.direction.value}")
        if self.msid is not None:
            out.append(f"a=msid:{self.msid}")
        if self.rtcp_mux:
            out.append("a=rtcp-mux")
        if self.rtcp_rsize:
            out.append("a=rtcp-rsize")
        out += [f"a={attribute}" for attribute in self.attributes]
        for codec in self.codecs:
            out += codec.lines()
        out += [group.line() for group in self.ssrc_groups]
        for ssrc in self.ssrcs:
            out += [f"a=ssrc:{ssrc.ssrc} {attribute}" for attribute in ssrc.attributes]
        return out


def parse_sctp_init(text: str) -> bytes:
    """The INIT chunk carried by ``a=sctp-init`` (strict base64, bounded size)."""
    if len(text) > 4 * ((SCTP_INIT_MAX + 2) // 3):
        raise SdpError("a=sctp-init is too long")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SdpError(f"a=sctp-init is not base64: {text[:40]!r}") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise SdpError(f"a=sctp-init is not canonical base64: {text[:40]!r}")
    if not SCTP_INIT_MIN <= len(data) <= SCTP_INIT_MAX:
        raise SdpError(f"a=sctp-init holds {len(data)} octets, not an INIT chunk")
    return data


def parse_m_line(value: str) -> tuple[str, int, str, list[str]]:
    """``"audio 9 UDP/TLS/RTP/SAVPF 111 0"`` -> kind, port, protocol, formats."""
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"malformed m= line {value[:60]!r}")
    kind, port_text, protocol, formats = parts[0], parts[1], parts[2], parts[3:]
    if not is_token(kind):
        raise SdpError(f"malformed media kind {kind[:20]!r}")
    # "<port>/<count>" is legal SDP but meaningless for WebRTC
    port = parse_int(port_text, "m= port", 0, 65535)
    if not _PROTOCOL.fullmatch(protocol):
        raise SdpError(f"malformed media protocol {protocol[:40]!r}")
    if any(not is_token(f) for f in formats):
        raise SdpError(f"malformed format list {value[:60]!r}")
    return kind, port, protocol, formats


class MediaBuilder:
    """Accumulates one section's attributes while parsing, then checks consistency."""

    def __init__(self, kind: str, port: int, protocol: str, formats: list[str]) -> None:
        self.section = MediaSection(
            kind=kind,
            mid=None,
            protocol=protocol,
            formats=formats,
            direction=None,
            rtcp_mux=False,
            rejected=port == 0,
        )
        self.port = port
        self.rtpmaps: dict[int, tuple[str, int, int | None]] = {}
        self.fmtps: dict[int, str] = {}
        self.feedback: dict[int, list[str]] = {}
        self.ssrcs: dict[int, Ssrc] = {}

    def add(self, name: str, value: str | None) -> bool:
        """Handle one media attribute; False when it is not a media (RTP) attribute."""
        section = self.section
        if name == "mid":
            mid = require_value(name, value)
            if not is_token(mid) or len(mid) > 64:
                raise SdpError(f"malformed mid {mid[:70]!r}")
            if section.mid is not None:
                raise SdpError(f"second a=mid in section {section.mid!r}")
            section.mid = mid
        elif name in {d.value for d in Direction}:
            if section.direction is not None:
                raise SdpError(f"more than one direction attribute in section {section.mid!r}")
            section.direction = Direction(name)
        elif name == "bundle-only":
            section.bundle_only = True
        elif name == "rtcp-mux":
            section.rtcp_mux = True
        elif name == "rtcp-rsize":
            section.rtcp_rsize = True
        elif name == "extmap":
            section.extensions.append(HeaderExtension.parse(require_value(name, value)))
        elif name == "msid":
            section.msid = require_value(name, value)
        elif name == "sctp-port":
            if section.sctp_port is not None:
                raise SdpError("second a=sctp-port")
            section.sctp_port = parse_int(require_value(name, value), "a=sctp-port", 1, 65535)
        elif name == "max-message-size":
            if section.max_message_size is not None:
                raise SdpError("second a=max-message-size")
            section.max_message_size = parse_int(
                require_value(name, value), "a=max-message-size", 0, 2**63 - 1
            )
        elif name == "sctp-init":
            if section.sctp_init is not None:
                raise SdpError("second a=sctp-init")
            section.sctp_init = parse_sctp_init(require_value(name, value))
        elif name == "rtpmap" and section.is_rtp:
            pt, rest = self._payload(name, value)
            if pt in self.rtpmaps:
                raise SdpError(f"second a=rtpmap for payload type {pt}")
            self.rtpmaps[pt] = _parse_encoding(rest)
        elif name == "fmtp" and section.is_rtp:
            pt, rest = self._payload(name, value)
            if pt in self.fmtps:
                raise SdpError(f"second a=fmtp for payload type {pt}")
            self.fmtps[pt] = rest
        elif (
            name == "rtcp-fb" and section.is_rtp and value is not None and not value.startswith("*")
        ):
            pt, rest = self._payload(name, value)
            self.feedback.setdefault(pt, []).append(rest)
        elif name == "ssrc":
            ssrc_text, _, attribute = require_value(name, value).partition(" ")
            ssrc = parse_int(ssrc_text, "ssrc", 0, 2**32 - 1)
            attribute = attribute.strip()
            if not attribute:
                raise SdpError(f"a=ssrc:{ssrc} has no attribute")
            entry = self.ssrcs.get(ssrc)
            if entry is None:
                entry = self.ssrcs[ssrc] = Ssrc(ssrc)
                section.ssrcs.append(entry)
            entry.attributes.append(attribute)
        elif name == "ssrc-group":
            parts = require_value(name, value).split()
            if len(parts) < 2 or not is_token(parts[0]):
                raise SdpError(f"malformed ssrc-group {value!r:.60}")
            ssrcs = [parse_int(p, "ssrc-group ssrc", 0, 2**32 - 1) for p in parts[1:]]
            section.ssrc_groups.append(SsrcGroup(parts[0], ssrcs))
        else:
            return False
        return True

    def _payload(self, name: str, value: str | None) -> tuple[int, str]:
        pt_text, _, rest = require_value(name, value).partition(" ")
        pt = parse_int(pt_text, f"a={name} payload type", 0, 127)
        if pt_text not in self.section.formats:
            raise SdpError(f"a={name} for payload type {pt} not listed on the m= line")
        if not rest.strip():
            raise SdpError(f"a={name}:{pt} has no value")
        return pt, rest.strip()

    def finish(self) -> MediaSection:
        section = self.section
        if section.is_rtp:
            for fmt in section.formats:
                pt = parse_int(fmt, "payload type", 0, 127)
                encoding = self.rtpmaps.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
                if encoding is None:
                    raise SdpError(f"payload type {pt} has no a=rtpmap")
                name, clock, channels = encoding
                section.codecs.append(
                    Codec(pt, name, clock, channels, self.fmtps.get(pt), self.feedback.get(pt, []))
                )
            section.formats = []
        # RFC 8843: port 0 with a=bundle-only is a live m-line riding on the BUNDLE tag
        if section.bundle_only and self.port != 0:
            section.bundle_only = False
        section.rejected = self.port == 0 and not section.bundle_only
        section.validate()
        return section
