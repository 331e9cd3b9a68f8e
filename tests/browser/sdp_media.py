"""Full WebRTC SDP around an RTP-level peer's transport parameters.

A browser only accepts descriptions with complete media sections (codecs, mids, BUNDLE,
rtcp-mux, SSRCs), while an RTP-level peer (``SecurePeer``, or
:class:`tests.browser.rtp_peer.AiortcRtpPeer`) only owns the transport: ICE credentials,
candidates, DTLS fingerprint and setup role. These helpers join the two:

* :meth:`TransportParams.from_sdp` pulls the transport attributes out of any SDP;
* :func:`media_answer` answers a browser offer, accepting Opus and VP8 on every m-line;
* :func:`media_offer` offers one Opus audio and one VP8 video m-line to a browser.

Both declare our send SSRCs so the browser can demultiplex what we send without header
extensions, and mirror only the ``sdes:mid`` extension.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

#: The one codec accepted per kind (the rtpmap encoding name, case-insensitive).
CODECS = {"audio": "opus/48000/2", "video": "vp8/90000"}
MID_EXTENSION = "urn:ietf:params:rtp-hdrext:sdes:mid"
OFFER_PAYLOAD_TYPES = {"audio": 111, "video": 96}


class SdpMediaError(ValueError):
    """The SDP lacks something the helpers need (transport attributes or a codec)."""


@dataclass
class TransportParams:
    """ICE and DTLS attributes of one BUNDLE transport."""

    ice_ufrag: str
    ice_pwd: str
    fingerprint: str  # "sha-256 AB:CD:..."
    setup: str  # actpass | active | passive
    candidates: list[str] = field(default_factory=list)  # values after "a=candidate:"
    ice_lite: bool = False

    @classmethod
    def from_sdp(cls, sdp: str) -> TransportParams:
        """The first value of each transport attribute, and every distinct candidate."""
        found: dict[str, str] = {}
        candidates: list[str] = []
        ice_lite = False
        for line in sdp.splitlines():
            line = line.strip()
            if line == "a=ice-lite":
                ice_lite = True
            elif line.startswith("a=candidate:"):
                value = line[len("a=candidate:"):]
                if value not in candidates:
                    candidates.append(value)
            else:
                for name in ("ice-ufrag", "ice-pwd", "fingerprint", "setup"):
                    prefix = f"a={name}:"
                    if line.startswith(prefix) and name not in found:
                        found[name] = line[len(prefix):]
        missing = {"ice-ufrag", "ice-pwd", "fingerprint", "setup"} - found.keys()
        if missing:
            raise SdpMediaError(f"SDP lacks transport attributes: {sorted(missing)}")
        return cls(found["ice-ufrag"], found["ice-pwd"], found["fingerprint"],
                   found["setup"], candidates, ice_lite)

    def lines(self, with_candidates: bool = True) -> list[str]:
        out = [f"a=ice-ufrag:{self.ice_ufrag}", f"a=ice-pwd:{self.ice_pwd}",
               f"a=fingerprint:{self.fingerprint}", f"a=setup:{self.setup}"]
        if with_candidates:
            out += [f"a=candidate:{c}" for c in self.candidates]
            out.append("a=end-of-candidates")
        return out


@dataclass
class MediaSection:
    """The parts of one offered m-section that an answer has to mirror."""

    kind: str
    mid: str
    proto: str
    direction: str = "sendrecv"
    rtpmap: dict[int, str] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    extmap: dict[str, int] = field(default_factory=dict)  # uri -> id
    ssrcs: list[int] = field(default_factory=list)

    def payload_type(self) -> int | None:
        """The payload type the peer uses for our codec of this kind, if offered."""
        want = CODECS.get(self.kind)
        for pt, name in self.rtpmap.items():
            if name.lower() == want:
                return pt
        return None


def parse_media(sdp: str) -> list[MediaSection]:
    """Split an SDP into :class:`MediaSection` summaries, in m-line order."""
    sections: list[MediaSection] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 3:
                raise SdpMediaError(f"bad m-line: {line}")
            sections.append(MediaSection(kind=parts[0], mid=str(len(sections)),
                                         proto=parts[2]))
            continue
        if not sections:
            continue
        media = sections[-1]
        if line.startswith("a=mid:"):
            media.mid = line[6:]
        elif line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            media.direction = line[2:]
        elif line.startswith("a=rtpmap:"):
            pt, _, name = line[9:].partition(" ")
            media.rtpmap[int(pt)] = name
        elif line.startswith("a=fmtp:"):
            pt, _, params = line[7:].partition(" ")
            media.fmtp[int(pt)] = params
        elif line.startswith("a=extmap:"):
            ident, _, rest = line[9:].partition(" ")
            media.extmap[rest.split()[0]] = int(ident.split("/")[0])
        elif line.startswith("a=ssrc:"):
            ssrc = int(line[7:].split()[0])
            if ssrc not in media.ssrcs:
                media.ssrcs.append(ssrc)
    return sections


_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly",
                     "recvonly": "sendonly", "inactive": "inactive"}


def new_ssrcs() -> dict[str, int]:
    """Random send SSRCs for audio and video."""
    return {"audio": secrets.randbits(32) or 1, "video": secrets.randbits(32) or 1}


def _session_header(mids: list[str]) -> list[str]:
    return ["v=0", f"o=- {secrets.randbits(62)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
            f"a=group:BUNDLE {' '.join(mids)}", "a=msid-semantic: WMS webrtc-secure"]


def _media_lines(kind: str, mid: str, pt: int, fmtp: str | None, direction: str,
                 transport: TransportParams, mid_ext: int | None, ssrc: int | None,
                 cname: str) -> list[str]:
    address = "127.0.0.1"
    port = 9
    if transport.candidates:
        fields = transport.candidates[0].split()
        if len(fields) >= 6:
            address, port = fields[4], int(fields[5])
    out = [f"m={kind} {port} UDP/TLS/RTP/SAVPF {pt}", f"c=IN IP4 {address}",
           f"a=mid:{mid}", *transport.lines(), f"a={direction}", "a=rtcp-mux",
           f"a=rtpmap:{pt} {CODECS[kind].replace('vp8', 'VP8')}"]
    if fmtp:
        out.append(f"a=fmtp:{pt} {fmtp}")
    if mid_ext is not None:
        out.append(f"a=extmap:{mid_ext} {MID_EXTENSION}")
    if ssrc is not None and direction in ("sendrecv", "sendonly"):
        out += [f"a=msid:webrtc-secure {kind}", f"a=ssrc:{ssrc} cname:{cname}",
                f"a=ssrc:{ssrc} msid:webrtc-secure {kind}"]
    return out


def media_answer(offer_sdp: str, transport: TransportParams, ssrcs: dict[str, int],
                 cname: str = "webrtc-secure") -> str:
    """Answer ``offer_sdp`` with our ``transport``: Opus/VP8 accepted on every m-line.

    m-lines of another kind or without our codec are rejected (port 0). ``transport``
    must carry ``setup`` active or passive.
    """
    if transport.setup not in ("active", "passive"):
        raise SdpMediaError(f"an answer needs setup active/passive, not {transport.setup}")
    sections = parse_media(offer_sdp)
    accepted = [m for m in sections if m.kind in CODECS and m.payload_type() is not None]
    if not accepted:
        raise SdpMediaError("offer has no Opus or VP8 m-line")
    lines = _session_header([m.mid for m in accepted])
    for media in sections:
        pt = media.payload_type() if media.kind in CODECS else None
        if pt is None:
            lines += [f"m={media.kind} 0 {media.proto} 0", f"a=mid:{media.mid}"]
            continue
        lines += _media_lines(media.kind, media.mid, pt, media.fmtp.get(pt),
                              _ANSWER_DIRECTION[media.direction], transport,
                              media.extmap.get(MID_EXTENSION), ssrcs.get(media.kind), cname)
    return "\r\n".join(lines) + "\r\n"


def media_offer(transport: TransportParams, ssrcs: dict[str, int],
                cname: str = "webrtc-secure") -> str:
    """Offer sendrecv Opus (mid 0) and VP8 (mid 1) on one BUNDLE transport (actpass)."""
    lines = _session_header(["0", "1"])
    for mid, kind in enumerate(("audio", "video")):
        fmtp = "minptime=10;useinbandfec=1" if kind == "audio" else None
        lines += _media_lines(kind, str(mid), OFFER_PAYLOAD_TYPES[kind], fmtp, "sendrecv",
                              transport, None, ssrcs.get(kind), cname)
    return "\r\n".join(lines) + "\r\n"


def rewrite_ssrc(packet: bytes, ssrc: int) -> bytes:
    """The RTP packet with its SSRC field replaced (header bytes 8..11)."""
    if len(packet) < 12:
        raise SdpMediaError("RTP packet shorter than its fixed header")
    return packet[:8] + ssrc.to_bytes(4, "big") + packet[12:]
