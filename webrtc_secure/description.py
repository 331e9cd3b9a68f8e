"""Session descriptions: the signaling model of a WebRTC peer.

A :class:`SessionDescription` carries what two peers must exchange before ICE and DTLS
can start: the ICE credentials and candidates, the DTLS certificate fingerprints and
setup role, and media sections complete enough that browsers and aiortc accept it.

It reads and writes real SDP (:meth:`SessionDescription.to_sdp` /
:meth:`SessionDescription.from_sdp`) and the browser's ``RTCSessionDescriptionInit``
JSON (``{"type": "offer", "sdp": "..."}``). :func:`create_offer` and
:func:`create_answer` build descriptions the way browsers do: the offer says
``a=setup:actpass``, the answer picks its DTLS role with :func:`answer_setup_role` and
mirrors the offer's m-lines with one codec each.

The model has one transport: with BUNDLE (what every browser offers) all media share
the transport of the BUNDLE-tag m-line, and that m-line's ICE and DTLS attributes and
candidates are the description's. Candidates other m-lines gathered for themselves are
not kept; :meth:`SessionDescription.to_sdp` writes the transport into every m-line.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from webrtc_secure.certificate import Fingerprint
from webrtc_secure.errors import SdpError
from webrtc_secure.sdp import (
    DATA_CHANNEL_FORMAT,
    DATA_CHANNEL_PROTOCOL,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_SCTP_PORT,
    MAX_CANDIDATES,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_LENGTH,
    SECURE_RTP_PROTOCOLS,
    TRANSPORT_ATTRIBUTES,
    Codec,
    Direction,
    HeaderExtension,
    MediaBuilder,
    MediaSection,
    Ssrc,
    SsrcGroup,
    candidate_to_sdp,
    check_text,
    default_address,
    is_token,
    parse_candidate,
    parse_int,
    parse_m_line,
    require_value,
    split_attribute,
    split_lines,
)

logger = logging.getLogger(__name__)

DESCRIPTION_TYPES = ("offer", "answer")

#: Header extension most worth mirroring: lets the offerer demultiplex BUNDLE by mid.
MID_EXTENSION = "urn:ietf:params:rtp-hdrext:sdes:mid"
#: Header extensions an answer mirrors by default (the rest would promise feedback).
DEFAULT_ANSWER_EXTENSIONS: tuple[str, ...] = (MID_EXTENSION,)
#: rtcp-fb values an answer mirrors by default: loss recovery, none needing BWE feedback.
DEFAULT_RTCP_FEEDBACK: tuple[str, ...] = ("nack", "nack pli", "ccm fir")
#: Codecs an answer may pick, per kind, in our order of preference.
DEFAULT_CODECS: Mapping[str, tuple[str, ...]] = {
    "audio": ("opus/48000/2", "PCMU/8000", "PCMA/8000"),
    "video": ("VP8/90000",),
}

#: what our data channel sections advertise in a=max-message-size (RFC 8841 6)
LOCAL_MAX_MESSAGE_SIZE = 262144

_ICE_CHARS = frozenset(string.ascii_letters + string.digits + "+/")
_CNAME_ALPHABET = string.ascii_letters + string.digits


class SetupRole(str, Enum):
    """The ``a=setup`` value (RFC 8842): who opens the DTLS connection."""

    ACTPASS = "actpass"
    ACTIVE = "active"
    PASSIVE = "passive"

    @classmethod
    def parse(cls, value: str) -> SetupRole:
        """The role for an ``a=setup`` value; SdpError for anything else (holdconn too)."""
        try:
            return cls(value.strip())
        except ValueError:
            raise SdpError(f"unknown a=setup value {value[:40]!r}") from None

    @staticmethod
    def answer_to(offer_setup: SetupRole) -> SetupRole:
        """Same as :func:`answer_setup_role`."""
        return answer_setup_role(offer_setup)


def answer_setup_role(offer_setup: SetupRole) -> SetupRole:
    """The answer's role, as browsers choose it.

    To ``actpass`` the answerer says ``active`` and becomes the DTLS client; to an
    offerer that insisted on ``active`` it says ``passive``, and to ``passive``,
    ``active``.
    """
    if offer_setup == SetupRole.ACTIVE:
        return SetupRole.PASSIVE
    return SetupRole.ACTIVE


def is_dtls_client(local_setup: SetupRole, remote_setup: SetupRole) -> bool:
    """True when the local side opens the DTLS connection (sends the ClientHello).

    ``active`` is the client and ``passive`` the server; an ``actpass`` side takes
    whichever role the other side left. Two sides claiming the same role cannot
    connect, and SdpError says so.
    """
    local, remote = SetupRole(local_setup), SetupRole(remote_setup)
    if local == SetupRole.ACTPASS and remote == SetupRole.ACTPASS:
        raise SdpError("both sides say a=setup:actpass: the answer must pick active or passive")
    if local == remote:
        raise SdpError(f"both sides say a=setup:{local.value}: no DTLS role is left")
    if local == SetupRole.ACTIVE:
        return True
    if local == SetupRole.PASSIVE:
        return False
    return remote == SetupRole.PASSIVE


def _check_ice_credential(name: str, value: str, low: int) -> None:
    # RFC 8839 5.4: ice-char = ALPHA / DIGIT / "+" / "/"; browsers refuse anything else
    if not isinstance(value, str) or not low <= len(value) <= 256 or not set(value) <= _ICE_CHARS:
        raise SdpError(f"a={name} must be {low} to 256 characters of letters, digits, '+' and '/'")


def _random_cname() -> str:
    return "".join(secrets.choice(_CNAME_ALPHABET) for _ in range(16))


def _random_session_id() -> str:
    # 62 bits so the value stays a positive signed 64-bit number, as RFC 8866 suggests
    return str(secrets.randbits(62) or 1)


def _random_ssrc() -> int:
    return secrets.randbelow(2**32 - 1) + 1


@dataclass(eq=False)
class SessionDescription:
    """One offer or answer: ICE, DTLS and media sections of a single BUNDLE transport.

    ``fingerprints`` are written in list order and Chromium checks only the last
    ``a=fingerprint`` line, so put the one that must be checked last. ``candidates``
    hold :class:`aioice.Candidate` objects. Construction validates the fields and raises
    SdpError, so every instance can be written as SDP that parses back to an equal one.
    """

    type: str
    ice_ufrag: str
    ice_pwd: str
    fingerprints: list[Fingerprint]
    setup: SetupRole
    candidates: list[Any] = field(default_factory=list)
    end_of_candidates: bool = False
    ice_options: list[str] = field(default_factory=list)
    ice_lite: bool = False
    media: list[MediaSection] = field(default_factory=list)
    bundle: list[str] | None = None
    attributes: list[str] = field(default_factory=list)
    session_id: str = field(default_factory=_random_session_id)
    session_version: int = 2

    def __post_init__(self) -> None:
        if self.type not in DESCRIPTION_TYPES:
            raise SdpError(f"description type must be 'offer' or 'answer', not {self.type!r}")
        _check_ice_credential("ice-ufrag", self.ice_ufrag, 4)
        _check_ice_credential("ice-pwd", self.ice_pwd, 22)
        if not self.fingerprints:
            raise SdpError("a description needs at least one a=fingerprint")
        if any(not isinstance(fp, Fingerprint) for fp in self.fingerprints):
            raise SdpError("fingerprints must be webrtc_secure.certificate.Fingerprint objects")
        if len(set(self.fingerprints)) != len(self.fingerprints):
            raise SdpError("the same a=fingerprint is listed twice")
        for fp in self.fingerprints:
            check_text(str(fp))
            if Fingerprint.parse(str(fp)) != fp:
                raise SdpError(f"fingerprint {str(fp)[:40]!r} would not read back the same")
        if not isinstance(self.setup, SetupRole):
            self.setup = SetupRole.parse(str(self.setup))
        if self.type == "answer" and self.setup == SetupRole.ACTPASS:
            raise SdpError("an answer must say a=setup:active or a=setup:passive, not actpass")
        if any(not is_token(option) for option in self.ice_options):
            raise SdpError(f"malformed a=ice-options {self.ice_options!r:.60}")
        if len(self.candidates) > MAX_CANDIDATES:
            raise SdpError(f"more than {MAX_CANDIDATES} candidates")
        for candidate in self.candidates:
            # the text must parse back: catches foreign objects and hand-made nonsense
            text = candidate_to_sdp(candidate)
            check_text(text)
            parse_candidate(text)
        if len(self.media) > MAX_MEDIA_SECTIONS:
            raise SdpError(f"more than {MAX_MEDIA_SECTIONS} media sections")
        mids: list[str] = []
        for section in self.media:
            section.validate()
            if section.mid is not None:
                mids.append(section.mid)
        if len(set(mids)) != len(mids):
            raise SdpError(f"duplicate a=mid values {mids!r:.80}")
        if self.bundle is not None:
            if not self.bundle:
                raise SdpError("empty a=group:BUNDLE")
            unknown = [mid for mid in self.bundle if mid not in mids]
            if unknown:
                raise SdpError(f"a=group:BUNDLE names unknown mids {unknown!r:.80}")
            if len(set(self.bundle)) != len(self.bundle):
                raise SdpError("a=group:BUNDLE names a mid twice")
            by_mid = {m.mid: m for m in self.media}
            if any(by_mid[mid].rejected for mid in self.bundle):
                raise SdpError("a=group:BUNDLE names a rejected (port 0) m-line")
            if by_mid[self.bundle[0]].bundle_only:
                raise SdpError("the BUNDLE-tag m-line cannot be bundle-only")
        if not _is_digit_id(self.session_id):
            raise SdpError(f"o= session id must be decimal digits, not {self.session_id!r:.30}")
        if not 0 <= self.session_version < 2**63:
            raise SdpError("o= session version out of range")
        for attribute in self.attributes:
            check_text(attribute)
            name, value = split_attribute(attribute)
            if name in TRANSPORT_ATTRIBUTES or (
                name == "group" and (value or "").split()[:1] == ["BUNDLE"] and not self.bundle
            ):
                raise SdpError(f"a={name} belongs in its own field, not in attributes")

    # --- equality --------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        return (
            self.type,
            self.ice_ufrag,
            self.ice_pwd,
            list(self.fingerprints),
            self.setup,
            [candidate_to_sdp(c) for c in self.candidates],
            self.end_of_candidates,
            list(self.ice_options),
            self.ice_lite,
            list(self.media),
            self.bundle,
            list(self.attributes),
            self.session_id,
            self.session_version,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionDescription):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable

    # --- convenience views -----------------------------------------------------------

    @property
    def transport_section(self) -> MediaSection | None:
        """The m-line whose transport everything uses: the BUNDLE tag, else the first live one."""
        if self.bundle:
            tag = self.bundle[0]
            return next((m for m in self.media if m.mid == tag), None)
        return next((m for m in self.media if not m.rejected), None)

    @property
    def mids(self) -> list[str | None]:
        return [section.mid for section in self.media]

    @property
    def data_section(self) -> MediaSection | None:
        """The data channel m-line in use: the first live ``webrtc-datachannel`` one
        (in the BUNDLE group when there is one), else None."""
        for section in self.media:
            if section.rejected or not section.is_data_channel:
                continue
            if self.bundle and section.mid not in self.bundle:
                continue
            return section
        return None

    @property
    def sctp_port(self) -> int | None:
        """The SCTP port of :attr:`data_section` (5000 when unsaid), None without one."""
        section = self.data_section
        if section is None:
            return None
        return DEFAULT_SCTP_PORT if section.sctp_port is None else section.sctp_port

    @property
    def max_message_size(self) -> int | None:
        """The largest message this side accepts (``a=max-message-size``; 65536 when
        unsaid, 0 for no limit), None without a data channel m-line."""
        section = self.data_section
        if section is None:
            return None
        if section.max_message_size is None:
            return DEFAULT_MAX_MESSAGE_SIZE
        return section.max_message_size

    @property
    def sctp_init(self) -> bytes | None:
        """SNAP's ``a=sctp-init`` of :attr:`data_section`: this side's SCTP INIT chunk."""
        section = self.data_section
        return None if section is None else section.sctp_init

    # --- SDP -------------------------------------------------------------------------

    def _transport_lines(self, with_candidates: bool) -> list[str]:
        out: list[str] = []
        if with_candidates:
            out += [f"a=candidate:{candidate_to_sdp(c)}" for c in self.candidates]
            if self.end_of_candidates:
                out.append("a=end-of-candidates")
        out += [f"a=ice-ufrag:{self.ice_ufrag}", f"a=ice-pwd:{self.ice_pwd}"]
        if self.ice_options:
            out.append(f"a=ice-options:{' '.join(self.ice_options)}")
        out += [f"a=fingerprint:{fp}" for fp in self.fingerprints]
        out.append(f"a=setup:{self.setup.value}")
        return out

    def to_sdp(self) -> str:
        """The description as SDP text (CRLF line ends), ICE/DTLS attributes per m-line."""
        lines = [
            "v=0",
            f"o=- {self.session_id} {self.session_version} IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
        ]
        if self.bundle:
            lines.append(f"a=group:BUNDLE {' '.join(self.bundle)}")
        if self.ice_lite:
            lines.append("a=ice-lite")
        lines += [f"a={attribute}" for attribute in self.attributes]
        if self.transport_section is None:
            # no live m-line to carry the transport: keep it at session level so it
            # survives a round trip
            lines += self._transport_lines(with_candidates=True)
        port, connection = default_address(self.candidates)
        for section in self.media:
            live = not (section.rejected or section.bundle_only)
            lines += section.lines(port, connection, self._transport_lines(with_candidates=live))
        return "\r\n".join(lines) + "\r\n"

    @classmethod
    def from_sdp(cls, sdp: str, type: str) -> SessionDescription:
        """Parse SDP text; ``type`` is ``"offer"`` or ``"answer"`` (SDP does not say).

        Raises SdpError for anything malformed or missing: ICE credentials, a
        fingerprint (an unauthenticated peer is refused), the setup role, oversized
        input.
        """
        return _parse(sdp, type)

    # --- JSON ------------------------------------------------------------------------

    def to_json(self) -> str:
        """``{"type": ..., "sdp": ...}`` on one line, as a browser's RTCSessionDescription."""
        return json.dumps({"type": self.type, "sdp": self.to_sdp()})

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionDescription:
        """Parse what :meth:`to_json` (or ``JSON.stringify(pc.localDescription)``) wrote."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise SdpError("description JSON is not UTF-8") from None
        if not isinstance(text, str):
            raise SdpError(f"description JSON must be text, not {type(text).__name__}")
        # JSON escaping can double a line end (\r\n -> \\r\\n); allow for it
        if len(text) > 2 * MAX_SDP_LENGTH + 1024:
            raise SdpError("description JSON is too long")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise SdpError("description is not valid JSON") from None
        if not isinstance(data, dict):
            raise SdpError("description JSON must be an object with 'type' and 'sdp'")
        kind, sdp = data.get("type"), data.get("sdp")
        if not isinstance(kind, str) or not isinstance(sdp, str):
            raise SdpError("description JSON needs string fields 'type' and 'sdp'")
        return cls.from_sdp(sdp, kind)

    # --- builders --------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        kind: str,
        ice_ufrag: str,
        ice_pwd: str,
        candidates: Sequence[Any],
        fingerprints: Sequence[Fingerprint],
        setup: SetupRole,
        remote: SessionDescription | None = None,
    ) -> SessionDescription:
        """:func:`create_offer` (``kind="offer"``) or :func:`create_answer` to ``remote``."""
        if kind == "offer":
            return create_offer(
                ice_ufrag=ice_ufrag,
                ice_pwd=ice_pwd,
                fingerprints=fingerprints,
                candidates=candidates,
                setup=setup,
            )
        if kind == "answer":
            if remote is None:
                raise SdpError("an answer needs the remote offer")
            return create_answer(
                remote,
                ice_ufrag=ice_ufrag,
                ice_pwd=ice_pwd,
                fingerprints=fingerprints,
                candidates=candidates,
                setup=setup,
            )
        raise SdpError(f"description type must be 'offer' or 'answer', not {kind!r}")


def _is_digit_id(text: object) -> bool:
    return isinstance(text, str) and 0 < len(text) <= 20 and text.isascii() and text.isdigit()


# --- parsing -------------------------------------------------------------------------


class _Transport:
    """ICE/DTLS attributes seen at one level (session or one m-line)."""

    def __init__(self) -> None:
        self.ufrag: str | None = None
        self.pwd: str | None = None
        self.options: list[str] | None = None
        self.fingerprints: list[Fingerprint] = []
        self.setup: SetupRole | None = None
        self.candidates: list[Any] = []
        self.end_of_candidates = False
        self.ice_lite = False

    def add(self, name: str, value: str | None) -> bool:
        if name == "ice-ufrag":
            if self.ufrag is not None:
                raise SdpError("second a=ice-ufrag at the same level")
            self.ufrag = require_value(name, value)
        elif name == "ice-pwd":
            if self.pwd is not None:
                raise SdpError("second a=ice-pwd at the same level")
            self.pwd = require_value(name, value)
        elif name == "ice-options":
            options = require_value(name, value).split()
            if any(not is_token(option) for option in options):
                raise SdpError(f"malformed a=ice-options {value!r:.60}")
            self.options = (self.options or []) + options
        elif name == "fingerprint":
            fingerprint = Fingerprint.parse(require_value(name, value))
            if fingerprint not in self.fingerprints:
                self.fingerprints.append(fingerprint)
        elif name == "setup":
            if self.setup is not None:
                raise SdpError("second a=setup at the same level")
            self.setup = SetupRole.parse(require_value(name, value))
        elif name == "candidate":
            if len(self.candidates) >= MAX_CANDIDATES:
                raise SdpError(f"more than {MAX_CANDIDATES} candidates in one section")
            self.candidates.append(parse_candidate(require_value(name, value)))
        elif name == "end-of-candidates":
            self.end_of_candidates = True
        elif name == "ice-lite":
            self.ice_lite = True
        else:
            return False
        return True


def _parse(sdp: str, kind: str) -> SessionDescription:
    if kind not in DESCRIPTION_TYPES:
        raise SdpError(f"description type must be 'offer' or 'answer', not {kind!r:.30}")
    lines = split_lines(sdp)
    if not lines or lines[0][1:] != ("v", "0"):
        raise SdpError("SDP must start with v=0")

    session = _Transport()
    session_id: str | None = None
    session_version = 0
    seen: set[str] = set()
    bundle: list[str] | None = None
    attributes: list[str] = []
    sections: list[tuple[MediaBuilder, _Transport]] = []

    for number, letter, value in lines[1:]:
        try:
            if letter == "m":
                if len(sections) >= MAX_MEDIA_SECTIONS:
                    raise SdpError(f"more than {MAX_MEDIA_SECTIONS} media sections")
                sections.append((MediaBuilder(*parse_m_line(value)), _Transport()))
                continue
            if letter == "v":
                raise SdpError("second v= line")
            if not sections:
                if letter in "ost":
                    if letter in seen:
                        raise SdpError(f"second {letter}= line")
                    seen.add(letter)
                    if letter == "o":
                        session_id, session_version = _parse_origin(value)
                elif letter == "a":
                    name, attr_value = split_attribute(value)
                    if session.add(name, attr_value):
                        pass
                    elif (
                        name == "group"
                        and attr_value is not None
                        and attr_value.split()[:1] == ["BUNDLE"]
                        and bundle is None
                    ):
                        bundle = attr_value.split()[1:] or None
                        if bundle and any(not is_token(m) for m in bundle):
                            raise SdpError(f"malformed a=group:BUNDLE {attr_value!r:.60}")
                    else:
                        attributes.append(value)
                # c=, b=, i=, u=, e=, p=, z=, k=, r= say nothing WebRTC uses
                continue
            builder, transport = sections[-1]
            if letter == "a":
                name, attr_value = split_attribute(value)
                if not transport.add(name, attr_value) and not builder.add(name, attr_value):
                    builder.section.attributes.append(value)
            elif letter in "ost":
                raise SdpError(f"{letter}= line inside a media section")
        except SdpError as exc:
            raise SdpError(f"line {number}: {exc}") from None

    missing = [f"{letter}=" for letter in "ost" if letter not in seen]
    if missing:
        raise SdpError(f"SDP lacks the session lines {', '.join(missing)}")
    assert session_id is not None

    media: list[MediaSection] = []
    tag_transport: _Transport | None = None
    mids: list[str | None] = []
    for index, (builder, _) in enumerate(sections):
        try:
            section = builder.finish()
        except SdpError as exc:
            raise SdpError(f"media section {index} ({builder.section.kind}): {exc}") from None
        if section.mid is not None and section.mid in mids:
            raise SdpError(f"duplicate a=mid:{section.mid} in media section {index}")
        media.append(section)
        mids.append(section.mid)
    if bundle:
        for mid in bundle:
            if mid not in mids:
                raise SdpError(f"a=group:BUNDLE names mid {mid!r:.20} but no m-line has it")
        tag_transport = sections[mids.index(bundle[0])][1]
    else:
        live = [t for (b, t), m in zip(sections, media, strict=True) if not m.rejected]
        tag_transport = live[0] if live else None
        if len(live) > 1:
            logger.debug("%d unbundled media sections: using the first one's transport", len(live))

    def pick(attribute: str) -> Any:
        if tag_transport is not None:
            value = getattr(tag_transport, attribute)
            if value:
                return value
        return getattr(session, attribute)

    ufrag, pwd = pick("ufrag"), pick("pwd")
    if ufrag is None or pwd is None:
        raise SdpError("SDP lacks a=ice-ufrag or a=ice-pwd")
    fingerprints = pick("fingerprints")
    if not fingerprints:
        raise SdpError("SDP has no a=fingerprint: refusing an unauthenticated peer")
    setup = pick("setup")
    if setup is None:
        raise SdpError("SDP lacks a=setup")
    candidates = list(session.candidates)
    if tag_transport is not None:
        candidates += tag_transport.candidates
    if len(candidates) > MAX_CANDIDATES:
        raise SdpError(f"more than {MAX_CANDIDATES} candidates")
    return SessionDescription(
        type=kind,
        ice_ufrag=ufrag,
        ice_pwd=pwd,
        fingerprints=list(fingerprints),
        setup=setup,
        candidates=candidates,
        end_of_candidates=bool(pick("end_of_candidates")),
        ice_options=list(pick("options") or []),
        ice_lite=session.ice_lite or bool(tag_transport and tag_transport.ice_lite),
        media=media,
        bundle=bundle,
        attributes=attributes,
        session_id=session_id,
        session_version=session_version,
    )


def _parse_origin(value: str) -> tuple[str, int]:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(f"malformed o= line {value[:60]!r}")
    if not _is_digit_id(parts[1]):
        raise SdpError(f"o= session id must be decimal digits, not {parts[1][:30]!r}")
    return parts[1], parse_int(parts[2], "o= session version", 0, 2**63 - 1)


# --- builders ------------------------------------------------------------------------


def _fingerprint_list(fingerprints: Iterable[Fingerprint | str]) -> list[Fingerprint]:
    return [fp if isinstance(fp, Fingerprint) else Fingerprint.parse(fp) for fp in fingerprints]


def _candidate_list(candidates: Iterable[Any]) -> list[Any]:
    return [parse_candidate(c) if isinstance(c, str) else c for c in candidates]


def _offer_codecs(kind: str) -> list[Codec]:
    if kind == "audio":
        return [
            Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1"),
            Codec(0, "PCMU", 8000),
        ]
    if kind == "video":
        return [Codec(96, "VP8", 90000, None, None, list(DEFAULT_RTCP_FEEDBACK))]
    raise SdpError(f"cannot offer media of kind {kind!r}: audio and video are supported")


class _SsrcSource:
    """Hands out the caller's SSRCs in order, then random ones."""

    def __init__(self, ssrcs: Sequence[int] | None) -> None:
        self._given = list(ssrcs or [])
        for ssrc in self._given:
            if not isinstance(ssrc, int) or not 0 < ssrc < 2**32:
                raise SdpError(f"SSRC {ssrc!r} is out of range")
        if len(set(self._given)) != len(self._given):
            raise SdpError("SSRCs must be distinct")

    def next(self) -> int:
        return self._given.pop(0) if self._given else _random_ssrc()


def _sending_extras(section: MediaSection, ssrc: int, cname: str, stream_id: str) -> None:
    section.msid = f"{stream_id} {stream_id}-{section.kind}-{section.mid}"
    section.ssrcs = [Ssrc(ssrc, [f"cname:{cname}"])]


def create_offer(
    *,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprints: Sequence[Fingerprint | str],
    candidates: Sequence[Any] = (),
    end_of_candidates: bool = True,
    kinds: Sequence[str] = ("audio",),
    ssrcs: Sequence[int] | None = None,
    cname: str | None = None,
    stream_id: str | None = None,
    ice_options: Sequence[str] = (),
    setup: SetupRole = SetupRole.ACTPASS,
    session_id: str | None = None,
    data_channel: bool = True,
    sctp_port: int = DEFAULT_SCTP_PORT,
    max_message_size: int = LOCAL_MAX_MESSAGE_SIZE,
    sctp_init: bytes | None = None,
) -> SessionDescription:
    """An offer with one sendrecv m-line per entry of ``kinds``, all in one BUNDLE,
    and (``data_channel``, the default) a last ``m=application ... UDP/DTLS/SCTP
    webrtc-datachannel`` m-line with ``a=sctp-port`` and ``a=max-message-size``, so
    that channels can be opened at any time. ``kinds=()`` makes a data-only offer.
    ``sctp_init`` (our SCTP INIT chunk) adds SNAP's ``a=sctp-init``.

    Audio offers opus/48000/2 (PT 111) and PCMU/8000 (PT 0); video offers VP8/90000
    (PT 96) with nack, nack pli and ccm fir. Every m-line has rtcp-mux, the sdes:mid
    header extension, ``a=ssrc:<ssrc> cname:<cname>`` (``ssrcs`` in order, random when
    not given) and ``a=msid``. ``candidates`` are :class:`aioice.Candidate` objects or
    their ``a=candidate`` values; ``fingerprints`` are written in order (the last one is
    the one Chromium checks).
    """
    source = _SsrcSource(ssrcs)
    cname = cname or _random_cname()
    stream_id = stream_id or cname
    media: list[MediaSection] = []
    for index, kind in enumerate(kinds):
        section = MediaSection(
            kind=kind,
            mid=str(index),
            codecs=_offer_codecs(kind),
            extensions=[HeaderExtension(1, MID_EXTENSION)],
        )
        _sending_extras(section, source.next(), cname, stream_id)
        media.append(section)
    sending = bool(media)
    if data_channel:
        media.append(_data_section(str(len(media)), sctp_port, max_message_size, sctp_init))
    if not media:
        raise SdpError("an offer needs at least one m-line: media kinds or a data channel")
    return SessionDescription(
        type="offer",
        ice_ufrag=ice_ufrag,
        ice_pwd=ice_pwd,
        fingerprints=_fingerprint_list(fingerprints),
        setup=SetupRole(setup),
        candidates=_candidate_list(candidates),
        end_of_candidates=end_of_candidates,
        ice_options=list(ice_options),
        media=media,
        bundle=[m.mid for m in media if m.mid is not None] or None,
        attributes=[f"msid-semantic:WMS {stream_id}"] if sending else [],
        session_id=session_id or _random_session_id(),
    )


def _data_section(
    mid: str | None,
    sctp_port: int,
    max_message_size: int,
    sctp_init: bytes | None = None,
    protocol: str = DATA_CHANNEL_PROTOCOL,
) -> MediaSection:
    return MediaSection(
        kind="application",
        mid=mid,
        protocol=protocol,
        formats=[DATA_CHANNEL_FORMAT],
        direction=None,
        rtcp_mux=False,
        sctp_port=sctp_port,
        max_message_size=max_message_size,
        sctp_init=sctp_init,
    )


def _choose_codec(section: MediaSection, preferences: Sequence[str]) -> Codec | None:
    for spec in preferences:
        for codec in section.codecs:
            if codec.matches(spec):
                return codec
    return None


def _rejected(offered: MediaSection) -> MediaSection:
    return MediaSection(
        kind=offered.kind,
        mid=offered.mid,
        protocol=offered.protocol,
        codecs=[
            Codec(c.payload_type, c.name, c.clock_rate, c.channels) for c in offered.codecs[:1]
        ],
        formats=list(offered.formats[:1]),
        direction=Direction.INACTIVE,
        # aiortc refuses audio/video sections without rtcp-mux even when rejected
        rtcp_mux=offered.is_rtp,
        rejected=True,
    )


def create_answer(
    offer: SessionDescription,
    *,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprints: Sequence[Fingerprint | str],
    candidates: Sequence[Any] = (),
    end_of_candidates: bool = True,
    setup: SetupRole | None = None,
    ssrcs: Sequence[int] | None = None,
    cname: str | None = None,
    stream_id: str | None = None,
    codecs: Mapping[str, Sequence[str]] | None = None,
    header_extensions: Iterable[str] = DEFAULT_ANSWER_EXTENSIONS,
    rtcp_feedback: Iterable[str] = DEFAULT_RTCP_FEEDBACK,
    direction: Direction = Direction.SENDRECV,
    ice_options: Sequence[str] = (),
    session_id: str | None = None,
    data_channel: bool = True,
    sctp_port: int = DEFAULT_SCTP_PORT,
    max_message_size: int = LOCAL_MAX_MESSAGE_SIZE,
    sctp_init: bytes | None = None,
) -> SessionDescription:
    """An answer mirroring ``offer``'s m-lines: same order, kinds and mids.

    Each audio/video m-line in the BUNDLE group (or the only live one, without BUNDLE)
    is accepted with one codec the offer listed, chosen by ``codecs`` preferences
    (default opus, PCMU, PCMA; VP8), keeping its payload type and fmtp and the offered
    rtcp-fb values that are in ``rtcp_feedback``, and the offered header extensions whose
    URI is in ``header_extensions``. The direction is the offer's reversed and capped by
    ``direction``; sending m-lines get our own SSRC (``ssrcs`` in order, else random),
    cname and msid. The first ``webrtc-datachannel`` m-line in the accepted set is
    accepted (unless ``data_channel`` is false) with our ``a=sctp-port`` and
    ``a=max-message-size`` (and SNAP's ``a=sctp-init`` when ``sctp_init`` is given and
    the offer carried one). Other m-lines (further data m-lines, no common codec, no
    rtcp-mux, not DTLS-SRTP) are rejected with port 0. ``setup`` defaults to
    :func:`answer_setup_role` of the offer's.
    """
    if offer.type != "offer":
        raise SdpError(f"create_answer needs an offer, not an {offer.type}")
    preferences = DEFAULT_CODECS if codecs is None else codecs
    extension_uris = set(header_extensions)
    feedback = set(rtcp_feedback)
    source = _SsrcSource(ssrcs)
    cname = cname or _random_cname()
    stream_id = stream_id or cname
    setup = answer_setup_role(offer.setup) if setup is None else SetupRole(setup)

    live = [m for m in offer.media if not m.rejected]
    # without BUNDLE every m-line would need its own transport: accept only the first
    accepted: set[str | None] = set(offer.bundle) if offer.bundle else {m.mid for m in live[:1]}

    media: list[MediaSection] = []
    sending = False
    data_answered = False
    for offered in offer.media:
        if (
            offered.is_data_channel
            and data_channel
            and not data_answered
            and not offered.rejected
            and offered.mid in accepted
        ):
            media.append(
                _data_section(
                    offered.mid,
                    sctp_port,
                    max_message_size,
                    # SNAP only when the offerer opted in; else the INIT exchange
                    sctp_init if offered.sctp_init is not None else None,
                    offered.protocol,
                )
            )
            data_answered = True
            continue
        chosen = _choose_codec(offered, preferences.get(offered.kind, ()))
        if (
            offered.rejected
            or offered.mid not in accepted
            or not offered.is_rtp
            or offered.protocol not in SECURE_RTP_PROTOCOLS
            or not offered.rtcp_mux
            or chosen is None
        ):
            media.append(_rejected(offered))
            continue
        section = MediaSection(
            kind=offered.kind,
            mid=offered.mid,
            protocol=offered.protocol,
            codecs=[
                Codec(
                    chosen.payload_type,
                    chosen.name,
                    chosen.clock_rate,
                    chosen.channels,
                    chosen.fmtp,
                    [fb for fb in chosen.rtcp_feedback if fb in feedback],
                )
            ],
            direction=(offered.direction or Direction.SENDRECV).answer(direction),
            rtcp_mux=True,
            rtcp_rsize=offered.rtcp_rsize,
            extensions=[
                HeaderExtension(ext.id, ext.uri, None, ext.attributes)
                for ext in offered.extensions
                if ext.uri in extension_uris
            ],
        )
        assert section.direction is not None
        if section.direction.sends:
            _sending_extras(section, source.next(), cname, stream_id)
            sending = True
        media.append(section)

    bundle: list[str] | None = None
    if offer.bundle:
        answered = {m.mid: m for m in media}
        tag = answered.get(offer.bundle[0])
        if tag is None or tag.rejected:
            raise SdpError(
                f"cannot answer: the BUNDLE-tag m-line (mid {offer.bundle[0]!r}) offers no "
                "DTLS-SRTP audio or video with a codec and rtcp-mux we accept, and no data "
                "channel"
            )
        bundle = [mid for mid in offer.bundle if not answered[mid].rejected]

    attributes: list[str] = []
    if "extmap-allow-mixed" in offer.attributes:
        attributes.append("extmap-allow-mixed")
    if sending:
        attributes.append(f"msid-semantic:WMS {stream_id}")
    return SessionDescription(
        type="answer",
        ice_ufrag=ice_ufrag,
        ice_pwd=ice_pwd,
        fingerprints=_fingerprint_list(fingerprints),
        setup=setup,
        candidates=_candidate_list(candidates),
        end_of_candidates=end_of_candidates,
        ice_options=list(ice_options),
        media=media,
        bundle=bundle,
        attributes=attributes,
        session_id=session_id or _random_session_id(),
    )


__all__ = [
    "DEFAULT_ANSWER_EXTENSIONS",
    "DEFAULT_CODECS",
    "DEFAULT_RTCP_FEEDBACK",
    "LOCAL_MAX_MESSAGE_SIZE",
    "MID_EXTENSION",
    "Codec",
    "Direction",
    "HeaderExtension",
    "MediaSection",
    "SessionDescription",
    "SetupRole",
    "Ssrc",
    "SsrcGroup",
    "answer_setup_role",
    "create_answer",
    "create_offer",
    "is_dtls_client",
    "parse_candidate",
]
