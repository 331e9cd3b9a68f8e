"""Session descriptions: SDP/JSON round trips, setup roles, Chromium and aiortc offers/answers,
validation, and fuzzing (only SdpError ever escapes the parser)."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
from aioice import Candidate
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.description import (
    MID_EXTENSION,
    Direction,
    MediaSection,
    SessionDescription,
    SetupRole,
    answer_setup_role,
    create_answer,
    create_offer,
    is_dtls_client,
)
from webrtc_secure.errors import SdpError
from webrtc_secure.sdp import MAX_LINES, MAX_SDP_LENGTH, Codec

UFRAG = "Qx7b"
PWD = "r3JcWm0pT8yZs+Lq/aK2vN5e"
FP256 = Fingerprint.parse(
    "sha-256 5D:61:9B:7F:0E:3A:9C:21:44:B8:DE:03:6F:A1:C9:57:12:E4:80:3B:9D:6C:AF:25:71:0B:"
    "E6:38:94:C2:5A:1F"
)
FP384 = Fingerprint.parse("sha-384 " + ":".join(["A1"] * 48))
CHROMIUM_RECORDED = Path(__file__).parent / "browser" / "chromium_offer.sdp"

# Hand-written in the shape Chromium produces with bundlePolicy "balanced": audio and
# video each gathered their own host/srflx/tcp candidates, per-m-line transport
# attributes, only a sha-256 fingerprint, header extensions, RTX with an FID group.
CHROMIUM_LIKE_OFFER = "\r\n".join([
    "v=0",
    "o=- 8120536741452983617 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS 3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11",
    "m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 203.0.113.7",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:2999745851 1 udp 2122260223 192.168.1.20 54400 typ host generation 0 "
    "network-id 1 network-cost 10",
    "a=candidate:4233069003 1 udp 1686052607 203.0.113.7 54400 typ srflx raddr 192.168.1.20 "
    "rport 54400 generation 0 network-id 1 network-cost 10",
    "a=candidate:1606961068 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active "
    "generation 0 network-id 1 network-cost 10",
    "a=ice-ufrag:Hk3e",
    "a=ice-pwd:a9ZmT2qx+F1cVb7KpL0sYw4u",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 8F:D1:0B:42:77:C3:5E:96:A0:1D:3B:E8:F2:64:59:0C:7A:C5:13:B9:"
    "4E:22:D6:81:F0:6B:39:AD:57:C8:1E:04",
    "a=setup:actpass",
    "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendrecv",
    "a=msid:3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11 a4d7f0b2-1e5c-4b8a-9f63-2c7d1e0a5b94",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:1351238107 cname:Vn2xQ8pLk0sT4eRb",
    "a=ssrc:1351238107 msid:3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11 "
    "a4d7f0b2-1e5c-4b8a-9f63-2c7d1e0a5b94",
    "m=video 54401 UDP/TLS/RTP/SAVPF 96 97 102 103 45 46",
    "c=IN IP4 203.0.113.7",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:2999745851 1 udp 2122260223 192.168.1.20 54401 typ host generation 0 "
    "network-id 1 network-cost 10",
    "a=candidate:4233069003 1 udp 1686052607 203.0.113.7 54401 typ srflx raddr 192.168.1.20 "
    "rport 54401 generation 0 network-id 1 network-cost 10",
    "a=candidate:1606961068 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active "
    "generation 0 network-id 1 network-cost 10",
    "a=ice-ufrag:Hk3e",
    "a=ice-pwd:a9ZmT2qx+F1cVb7KpL0sYw4u",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 8F:D1:0B:42:77:C3:5E:96:A0:1D:3B:E8:F2:64:59:0C:7A:C5:13:B9:"
    "4E:22:D6:81:F0:6B:39:AD:57:C8:1E:04",
    "a=setup:actpass",
    "a=mid:1",
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:13 urn:3gpp:video-orientation",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "a=sendrecv",
    "a=msid:3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11 e8b52c4a-7d90-4f1e-b3a6-95c0d2f7e183",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 goog-remb",
    "a=rtcp-fb:96 transport-cc",
    "a=rtcp-fb:96 ccm fir",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=rtpmap:102 H264/90000",
    "a=rtcp-fb:102 goog-remb",
    "a=rtcp-fb:102 transport-cc",
    "a=rtcp-fb:102 ccm fir",
    "a=rtcp-fb:102 nack",
    "a=rtcp-fb:102 nack pli",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "a=rtpmap:103 rtx/90000",
    "a=fmtp:103 apt=102",
    "a=rtpmap:45 AV1/90000",
    "a=rtcp-fb:45 nack",
    "a=fmtp:45 level-idx=5;profile=0;tier=0",
    "a=rtpmap:46 rtx/90000",
    "a=fmtp:46 apt=45",
    "a=ssrc-group:FID 2617361874 3937017462",
    "a=ssrc:2617361874 cname:Vn2xQ8pLk0sT4eRb",
    "a=ssrc:2617361874 msid:3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11 "
    "e8b52c4a-7d90-4f1e-b3a6-95c0d2f7e183",
    "a=ssrc:3937017462 cname:Vn2xQ8pLk0sT4eRb",
    "a=ssrc:3937017462 msid:3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11 "
    "e8b52c4a-7d90-4f1e-b3a6-95c0d2f7e183",
]) + "\r\n"


def host_candidate(port: int = 50000, host: str = "127.0.0.1") -> Candidate:
    return Candidate("1", 1, "udp", 2130706431, host, port, "host")


def our_offer(**kwargs: object) -> SessionDescription:
    args: dict[str, object] = {
        "ice_ufrag": UFRAG, "ice_pwd": PWD, "fingerprints": [FP256],
        "candidates": [host_candidate()], "ssrcs": [1234], "cname": "webrtcsecure0001",
    }
    args.update(kwargs)
    return create_offer(**args)  # type: ignore[arg-type]


def our_answer(offer: SessionDescription, **kwargs: object) -> SessionDescription:
    args: dict[str, object] = {
        "ice_ufrag": UFRAG, "ice_pwd": PWD, "fingerprints": [FP256],
        "candidates": [host_candidate(50001)], "ssrcs": [4321, 8765],
        "cname": "webrtcsecure0002",
    }
    args.update(kwargs)
    return create_answer(offer, **args)  # type: ignore[arg-type]


def sdp_lines(description: SessionDescription) -> list[str]:
    text = description.to_sdp()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return text.split("\r\n")[:-1]


def media_lines(description: SessionDescription, index: int) -> list[str]:
    lines = sdp_lines(description)
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")] + [len(lines)]
    return lines[starts[index]:starts[index + 1]]


# --- setup roles -----------------------------------------------------------------------


def test_setup_role_parse_and_unknown_values() -> None:
    assert SetupRole.parse("actpass") is SetupRole.ACTPASS
    assert SetupRole.parse(" passive") is SetupRole.PASSIVE
    for bad in ("holdconn", "ACTIVE", "", "act pass"):
        with pytest.raises(SdpError, match="setup"):
            SetupRole.parse(bad)


def test_answer_role_as_browsers_choose() -> None:
    assert answer_setup_role(SetupRole.ACTPASS) is SetupRole.ACTIVE
    assert answer_setup_role(SetupRole.ACTIVE) is SetupRole.PASSIVE
    assert answer_setup_role(SetupRole.PASSIVE) is SetupRole.ACTIVE
    assert SetupRole.answer_to(SetupRole.ACTPASS) is SetupRole.ACTIVE


@pytest.mark.parametrize(
    ("local", "remote", "client"),
    [
        (SetupRole.ACTIVE, SetupRole.ACTPASS, True),
        (SetupRole.ACTIVE, SetupRole.PASSIVE, True),
        (SetupRole.PASSIVE, SetupRole.ACTPASS, False),
        (SetupRole.PASSIVE, SetupRole.ACTIVE, False),
        (SetupRole.ACTPASS, SetupRole.ACTIVE, False),
        (SetupRole.ACTPASS, SetupRole.PASSIVE, True),
    ],
)
def test_is_dtls_client(local: SetupRole, remote: SetupRole, client: bool) -> None:
    assert is_dtls_client(local, remote) is client
    # the two sides always disagree, so exactly one of them is the client
    assert is_dtls_client(remote, local) is not client


@pytest.mark.parametrize("role", list(SetupRole))
def test_is_dtls_client_refuses_equal_roles(role: SetupRole) -> None:
    with pytest.raises(SdpError, match="both sides"):
        is_dtls_client(role, role)


# --- our own offer ---------------------------------------------------------------------


def test_default_offer_has_one_webrtc_audio_line() -> None:
    offer = our_offer()
    assert offer.type == "offer" and offer.setup is SetupRole.ACTPASS
    assert [m.kind for m in offer.media] == ["audio", "application"]
    assert offer.bundle == ["0", "1"]
    lines = sdp_lines(offer)
    assert lines[:4] == ["v=0", lines[1], "s=-", "t=0 0"] and lines[1].startswith("o=- ")
    assert "a=group:BUNDLE 0 1" in lines
    audio = media_lines(offer, 0)
    assert audio[0] == "m=audio 50000 UDP/TLS/RTP/SAVPF 111 0"
    assert audio[1] == "c=IN IP4 127.0.0.1"
    for line in (
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:111 opus/48000/2", "a=rtcp-mux", "a=mid:0",
        "a=sendrecv", "a=ssrc:1234 cname:webrtcsecure0001", "a=setup:actpass",
        f"a=ice-ufrag:{UFRAG}", f"a=ice-pwd:{PWD}", f"a=fingerprint:{FP256}",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "a=end-of-candidates",
        f"a=extmap:1 {MID_EXTENSION}",
    ):
        assert line in audio, line
    assert any(line.startswith("a=msid:") for line in audio)


def test_offer_with_video_and_random_ssrcs() -> None:
    offer = create_offer(ice_ufrag=UFRAG, ice_pwd=PWD, fingerprints=[FP256],
                         kinds=("audio", "video"))
    assert offer.bundle == ["0", "1", "2"] and offer.candidates == []
    video = offer.media[1]
    assert [c.rtpmap for c in video.codecs] == ["VP8/90000"]
    assert video.codecs[0].rtcp_feedback == ["nack", "nack pli", "ccm fir"]
    ssrcs = [m.ssrcs[0].ssrc for m in offer.media if m.is_rtp]
    assert len(set(ssrcs)) == 2 and all(0 < s < 2**32 for s in ssrcs)
    # no candidates: the RFC 8840 placeholder address
    assert media_lines(offer, 0)[:2] == ["m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "c=IN IP4 0.0.0.0"]


def test_fingerprints_written_in_order_last_one_checked_by_chromium() -> None:
    offer = our_offer(fingerprints=[FP384, FP256])
    fingerprint_lines = [line for line in media_lines(offer, 0) if "fingerprint" in line]
    assert fingerprint_lines == [f"a=fingerprint:{FP384}", f"a=fingerprint:{FP256}"]
    parsed = SessionDescription.from_sdp(offer.to_sdp(), "offer")
    assert parsed.fingerprints == [FP384, FP256]


def test_builders_accept_text_candidates_and_fingerprints() -> None:
    cert = Certificate.generate()
    offer = create_offer(
        ice_ufrag=UFRAG, ice_pwd=PWD, fingerprints=[f"sha-256 {cert.fingerprint()}"],
        candidates=["7 1 udp 2130706431 ::1 40000 typ host"],
    )
    assert offer.fingerprints == cert.fingerprints()
    assert media_lines(offer, 0)[1] == "c=IN IP6 ::1"


# --- round trips -----------------------------------------------------------------------


def test_sdp_and_json_round_trips() -> None:
    offer = our_offer(kinds=("audio", "video"), ssrcs=[1, 2], ice_options=["trickle", "ice2"],
                      fingerprints=[FP384, FP256])
    answer = our_answer(offer)
    for description in (offer, answer):
        parsed = SessionDescription.from_sdp(description.to_sdp(), description.type)
        assert parsed == description
        assert parsed.to_sdp() == description.to_sdp()
        assert SessionDescription.from_json(description.to_json()) == description
        assert SessionDescription.from_json(description.to_json().encode()) == description
    data = json.loads(offer.to_json())
    assert data == {"type": "offer", "sdp": offer.to_sdp()}
    assert "\n" not in offer.to_json()  # one line, as the echo signaling reads it


def test_round_trip_keeps_unmodelled_attributes_and_rtcp_fb_wildcard() -> None:
    text = our_offer().to_sdp().replace(
        "a=rtcp-mux\r\n", "a=rtcp-mux\r\na=rtcp-fb:* nack\r\na=x-custom:1 2\r\n"
    )
    parsed = SessionDescription.from_sdp(text, "offer")
    assert parsed.media[0].attributes == ["rtcp-fb:* nack", "x-custom:1 2"]
    assert SessionDescription.from_sdp(parsed.to_sdp(), "offer") == parsed


def test_description_equality_compares_candidates_by_value() -> None:
    assert our_offer(session_id="7") == our_offer(session_id="7")
    assert our_offer(session_id="7") != our_offer(session_id="7", candidates=[host_candidate(1)])


# --- Chromium --------------------------------------------------------------------------


def test_parse_chromium_like_offer() -> None:
    offer = SessionDescription.from_sdp(CHROMIUM_LIKE_OFFER, "offer")
    assert offer.type == "offer" and offer.setup is SetupRole.ACTPASS
    assert offer.ice_ufrag == "Hk3e" and offer.ice_pwd == "a9ZmT2qx+F1cVb7KpL0sYw4u"
    assert offer.ice_options == ["trickle"]
    assert [str(fp) for fp in offer.fingerprints] == [
        "sha-256 8F:D1:0B:42:77:C3:5E:96:A0:1D:3B:E8:F2:64:59:0C:7A:C5:13:B9:4E:22:D6:81:"
        "F0:6B:39:AD:57:C8:1E:04"
    ]
    assert offer.bundle == ["0", "1"] and offer.mids == ["0", "1"]
    assert [m.kind for m in offer.media] == ["audio", "video"]
    # the BUNDLE tag's (mid 0) candidates are the transport's
    candidates = offer.candidates
    assert [(c.transport, c.type, c.port) for c in candidates] == [
        ("udp", "host", 54400), ("udp", "srflx", 54400), ("tcp", "host", 9)
    ]
    assert candidates[1].related_address == "192.168.1.20" and candidates[1].related_port == 54400
    assert candidates[2].tcptype == "active"
    assert "extmap-allow-mixed" in offer.attributes
    audio, video = offer.media
    assert audio.codec(111) == Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1",
                                     ["transport-cc"])
    assert audio.codec(0) is not None and audio.codec(0).rtpmap == "PCMU/8000"  # type: ignore[union-attr]
    assert [c.payload_type for c in video.codecs] == [96, 97, 102, 103, 45, 46]
    assert video.codec(96).rtcp_feedback == [  # type: ignore[union-attr]
        "goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"
    ]
    assert video.codec(97).fmtp == "apt=96"  # type: ignore[union-attr]
    assert [e.id for e in video.extensions] == [14, 2, 13, 3, 4, 10]
    assert video.ssrc_groups[0].semantics == "FID"
    assert video.ssrc_groups[0].ssrcs == [2617361874, 3937017462]
    assert [s.cname for s in video.ssrcs] == ["Vn2xQ8pLk0sT4eRb"] * 2
    assert audio.rtcp_rsize and audio.rtcp_mux and audio.direction is Direction.SENDRECV
    assert "rtcp-xr:rcvr-rtt=all" not in audio.attributes
    assert "rtcp:9 IN IP4 0.0.0.0" in audio.attributes
    again = SessionDescription.from_sdp(offer.to_sdp(), "offer")
    assert again == offer


def test_answer_chromium_like_offer() -> None:
    offer = SessionDescription.from_sdp(CHROMIUM_LIKE_OFFER, "offer")
    answer = our_answer(offer)
    assert answer.type == "answer" and answer.setup is SetupRole.ACTIVE
    assert is_dtls_client(answer.setup, offer.setup)  # the answerer is the DTLS client
    assert answer.mids == offer.mids and [m.kind for m in answer.media] == ["audio", "video"]
    assert answer.bundle == ["0", "1"]
    assert "extmap-allow-mixed" in answer.attributes
    audio, video = answer.media
    assert audio.codecs == [Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1", [])]
    assert video.codecs == [Codec(96, "VP8", 90000, None, None, ["ccm fir", "nack", "nack pli"])]
    for section, ssrc in ((audio, 4321), (video, 8765)):
        assert section.direction is Direction.SENDRECV and section.rtcp_mux
        assert [(e.id, e.uri) for e in section.extensions] == [(4, MID_EXTENSION)]
        assert [s.ssrc for s in section.ssrcs] == [ssrc] and section.msid is not None
        assert section.ssrcs[0].cname == "webrtcsecure0002"
    lines = media_lines(answer, 1)
    assert lines[0] == "m=video 50001 UDP/TLS/RTP/SAVPF 96"
    for line in ("a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack pli", "a=rtcp-fb:96 ccm fir",
                 "a=setup:active", "a=mid:1", "a=ssrc:8765 cname:webrtcsecure0002",
                 "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"):
        assert line in lines, line
    assert not any("transport-cc" in line or "goog-remb" in line for line in lines)
    assert SessionDescription.from_sdp(answer.to_sdp(), "answer") == answer


def test_answer_can_mirror_every_extension_and_choose_codecs() -> None:
    offer = SessionDescription.from_sdp(CHROMIUM_LIKE_OFFER, "offer")
    every = {e.uri for m in offer.media for e in m.extensions}
    answer = our_answer(offer, header_extensions=every,
                        codecs={"audio": ["PCMA/8000"], "video": ["H264/90000"]})
    assert [e.id for e in answer.media[1].extensions] == [14, 2, 13, 3, 4, 10]
    assert answer.media[0].codecs[0].payload_type == 8
    assert answer.media[1].codecs[0].payload_type == 102
    assert answer.media[1].codecs[0].fmtp is not None


def test_recorded_chromium_offer_parses_and_answers() -> None:
    offer = SessionDescription.from_sdp(CHROMIUM_RECORDED.read_text(), "offer")
    assert offer.mids == ["0", "1"] and offer.setup is SetupRole.ACTPASS
    assert {c.transport for c in offer.candidates} == {"udp", "tcp"}
    answer = our_answer(offer)
    assert [c.codecs[0].rtpmap for c in answer.media] == ["opus/48000/2", "VP8/90000"]
    assert SessionDescription.from_sdp(answer.to_sdp(), "answer") == answer


def test_answer_directions_follow_the_offer() -> None:
    offer = our_offer(kinds=("audio", "video"))
    offer.media[0].direction = Direction.RECVONLY
    offer.media[1].direction = Direction.SENDONLY
    answer = our_answer(offer)
    assert answer.media[0].direction is Direction.SENDONLY and answer.media[0].ssrcs
    assert answer.media[1].direction is Direction.RECVONLY and not answer.media[1].ssrcs
    assert answer.media[1].msid is None
    quiet = our_answer(our_offer(), direction=Direction.RECVONLY)
    assert quiet.media[0].direction is Direction.RECVONLY
    assert not any(a.startswith("msid-semantic") for a in quiet.attributes)


def test_answer_accepts_data_channel_rejects_unknown_codecs() -> None:
    offer = our_offer(kinds=("audio", "video"), data_channel=False)
    offer.media.append(MediaSection(kind="application", mid="2", protocol="UDP/DTLS/SCTP",
                                    formats=["webrtc-datachannel"], direction=None,
                                    rtcp_mux=False, sctp_port=5001))
    offer.media[1].codecs = [Codec(98, "VP9", 90000)]
    assert offer.bundle is not None
    offer.bundle.append("2")
    assert (offer.sctp_port, offer.max_message_size) == (5001, 65536)  # RFC 8841 default
    answer = our_answer(offer)
    assert [m.rejected for m in answer.media] == [False, True, False]
    assert answer.bundle == ["0", "2"]
    assert media_lines(answer, 2)[0] == "m=application 50001 UDP/DTLS/SCTP webrtc-datachannel"
    assert "a=sctp-port:5000" in media_lines(answer, 2)
    assert "a=max-message-size:262144" in media_lines(answer, 2)
    assert media_lines(answer, 1)[0] == "m=video 0 UDP/TLS/RTP/SAVPF 98"
    parsed = SessionDescription.from_sdp(answer.to_sdp(), "answer")
    assert parsed == answer
    assert (parsed.sctp_port, parsed.max_message_size) == (5000, 262144)
    refused = our_answer(offer, data_channel=False)
    assert [m.rejected for m in refused.media] == [False, True, True]
    assert media_lines(refused, 2)[0] == "m=application 0 UDP/DTLS/SCTP webrtc-datachannel"
    assert refused.data_section is None and refused.sctp_port is None


CHROMIUM_DATA_RECORDED = Path(__file__).parent / "sdp" / "chromium_offer_audio_video_data.sdp"
CHROMIUM_DATA_ONLY_RECORDED = Path(__file__).parent / "sdp" / "chromium_offer_data_only.sdp"


def test_answer_recorded_chromium_offer_with_audio_video_and_data() -> None:
    offer = SessionDescription.from_sdp(CHROMIUM_DATA_RECORDED.read_text(), "offer")
    assert [m.kind for m in offer.media] == ["audio", "video", "application"]
    assert offer.data_section is offer.media[2]
    assert (offer.sctp_port, offer.max_message_size) == (5000, 262144)
    answer = our_answer(offer)
    assert [m.rejected for m in answer.media] == [False, False, False]
    assert answer.bundle == ["0", "1", "2"]
    data = media_lines(answer, 2)
    assert data[0] == "m=application 50001 UDP/DTLS/SCTP webrtc-datachannel"
    assert "a=mid:2" in data and "a=sctp-port:5000" in data
    assert "a=max-message-size:262144" in data
    assert not any(line.startswith(("a=rtcp-mux", "a=sendrecv", "a=ssrc")) for line in data)
    assert SessionDescription.from_sdp(answer.to_sdp(), "answer") == answer


def test_data_only_offers_and_answers() -> None:
    chromium = SessionDescription.from_sdp(CHROMIUM_DATA_ONLY_RECORDED.read_text(), "offer")
    assert chromium.bundle == ["0"] and chromium.data_section is chromium.media[0]
    answer = our_answer(chromium)
    assert answer.bundle == ["0"] and answer.data_section is answer.media[0]
    assert not any(a.startswith("msid-semantic") for a in answer.attributes)
    ours = our_offer(kinds=())
    assert [m.kind for m in ours.media] == ["application"] and ours.bundle == ["0"]
    assert not any(a.startswith("msid-semantic") for a in ours.attributes)
    lines = media_lines(ours, 0)
    assert lines[0] == "m=application 50000 UDP/DTLS/SCTP webrtc-datachannel"
    assert SessionDescription.from_sdp(ours.to_sdp(), "offer") == ours
    theirs = our_answer(ours)
    assert theirs.data_section is not None and theirs.bundle == ["0"]
    with pytest.raises(SdpError, match="no data"):
        our_answer(ours, data_channel=False)
    with pytest.raises(SdpError, match="at least one m-line"):
        our_offer(kinds=(), data_channel=False)


def test_data_section_attributes_parse_strictly() -> None:
    base = our_offer(kinds=(), max_message_size=0).to_sdp()
    parsed = SessionDescription.from_sdp(base, "offer")
    assert parsed.max_message_size == 0  # RFC 8841 6: no limit
    assert "a=max-message-size:0" in base
    unset = base.replace("a=max-message-size:0\r\n", "").replace("a=sctp-port:5000\r\n", "")
    parsed = SessionDescription.from_sdp(unset, "offer")
    assert (parsed.sctp_port, parsed.max_message_size) == (5000, 65536)
    for bad in ("a=sctp-port:0", "a=sctp-port:65536", "a=sctp-port:x", "a=sctp-port:",
                "a=max-message-size:-1", "a=max-message-size:99999999999999999999",
                "a=sctp-port:5000\r\na=sctp-port:5001",
                "a=max-message-size:1\r\na=max-message-size:2"):
        with pytest.raises(SdpError):
            SessionDescription.from_sdp(base.replace("a=sctp-port:5000", bad), "offer")


def test_only_the_first_data_section_is_answered() -> None:
    offer = our_offer(kinds=("audio",))
    offer.media.append(MediaSection(kind="application", mid="9", protocol="UDP/DTLS/SCTP",
                                    formats=["webrtc-datachannel"], direction=None,
                                    rtcp_mux=False, sctp_port=6000))
    assert offer.bundle is not None
    offer.bundle.append("9")
    answer = our_answer(offer)
    assert [m.rejected for m in answer.media] == [False, False, True]
    assert answer.data_section is answer.media[1]
    # an old-style DTLS/SCTP section (a=sctpmap) is not a WebRTC data channel m-line
    old = MediaSection(kind="application", mid="0", protocol="DTLS/SCTP", formats=["5000"],
                       direction=None, rtcp_mux=False,
                       attributes=["sctpmap:5000 webrtc-datachannel 1024"])
    assert not old.is_data_channel


CHROMIUM_SNAP_RECORDED = Path(__file__).parent / "sdp" / "chromium_offer_data_snap.sdp"


def test_snap_sctp_init_round_trips_and_is_answered_only_when_offered() -> None:
    chromium = SessionDescription.from_sdp(CHROMIUM_SNAP_RECORDED.read_text(), "offer")
    init = chromium.sctp_init
    # Chromium's INIT chunk: type 1, flags 0, length 30 (RFC 9260 3.3.2)
    assert init is not None and init[:4] == bytes([1, 0, 0, 30]) and len(init) == 30
    ours = bytes(range(1, 33))
    answer = our_answer(chromium, sctp_init=ours)
    assert answer.sctp_init == ours
    line = next(x for x in media_lines(answer, 0) if x.startswith("a=sctp-init:"))
    assert line == "a=sctp-init:" + base64.b64encode(ours).decode()
    assert SessionDescription.from_sdp(answer.to_sdp(), "answer") == answer
    # an offer without a=sctp-init gets none back: the INIT exchange it expects
    plain = our_offer(kinds=())
    assert plain.sctp_init is None
    assert our_answer(plain, sctp_init=ours).sctp_init is None
    offered = our_offer(kinds=(), sctp_init=ours)
    assert SessionDescription.from_sdp(offered.to_sdp(), "offer").sctp_init == ours


@pytest.mark.parametrize(
    "value",
    ["", "not base64!", "AQAA", "A" * 2000, "AQAAHovQMb0AUAAA/////+5KQhnAAAAEgAgABoLA=",
     "AQAAHovQMb0AUAAA/////+5KQhnAAAAEgAgABoLA\ta"],
)
def test_malformed_sctp_init_is_refused(value: str) -> None:
    text = CHROMIUM_SNAP_RECORDED.read_bytes().decode()
    start = text.index("a=sctp-init:")
    end = text.index("\r\n", start)
    with pytest.raises(SdpError):
        SessionDescription.from_sdp(text[:start] + "a=sctp-init:" + value + text[end:], "offer")
    twice = text[:end] + "\r\n" + text[start:end] + text[end:]
    with pytest.raises(SdpError, match="second"):
        SessionDescription.from_sdp(twice, "offer")


def test_answer_refuses_unusable_bundle_tag() -> None:
    offer = our_offer()
    offer.media[0].codecs = [Codec(9, "G722", 8000)]
    with pytest.raises(SdpError, match="BUNDLE-tag"):
        our_answer(offer)
    with pytest.raises(SdpError, match="needs an offer"):
        our_answer(our_answer(our_offer()))


def test_unbundled_offer_answers_first_section_only() -> None:
    offer = our_offer(kinds=("audio", "audio"))
    offer.bundle = None
    answer = our_answer(offer)
    assert [m.rejected for m in answer.media] == [False, True, True] and answer.bundle is None


def test_bundle_only_section_is_live() -> None:
    offer = our_offer(kinds=("audio", "video"))
    offer.media[1].bundle_only = True
    lines = media_lines(offer, 1)
    assert lines[0].startswith("m=video 0 ") and "a=bundle-only" in lines
    assert not any(line.startswith("a=candidate") for line in lines)
    parsed = SessionDescription.from_sdp(offer.to_sdp(), "offer")
    assert parsed == offer and not parsed.media[1].rejected
    assert not our_answer(parsed).media[1].rejected


def test_build_shim_used_by_the_peer() -> None:
    offer = SessionDescription.build(kind="offer", ice_ufrag=UFRAG, ice_pwd=PWD,
                                     candidates=[host_candidate()], fingerprints=[FP256],
                                     setup=SetupRole.ACTPASS)
    answer = SessionDescription.build(kind="answer", ice_ufrag=UFRAG, ice_pwd=PWD,
                                      candidates=[], fingerprints=[FP256],
                                      setup=SetupRole.answer_to(offer.setup), remote=offer)
    assert answer.setup is SetupRole.ACTIVE and answer.mids == offer.mids


# --- validation ------------------------------------------------------------------------


def drop_lines(text: str, prefix: str) -> str:
    return "".join(line + "\r\n" for line in text.split("\r\n")[:-1]
                   if not line.startswith(prefix))


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("a=ice-ufrag", "ice-ufrag"),
        ("a=ice-pwd", "ice-pwd"),
        ("a=fingerprint", "no a=fingerprint"),
        ("a=setup", "a=setup"),
        ("o=", "o="),
        ("v=", "v=0"),
    ],
)
def test_missing_required_attributes(prefix: str, message: str) -> None:
    text = drop_lines(CHROMIUM_LIKE_OFFER, prefix)
    with pytest.raises(SdpError, match=message):
        SessionDescription.from_sdp(text, "offer")


def test_session_level_transport_attributes_are_used() -> None:
    text = our_offer().to_sdp()
    moved = drop_lines(drop_lines(text, "a=ice-"), "a=fingerprint")
    moved = moved.replace("t=0 0\r\n", f"t=0 0\r\na=ice-ufrag:{UFRAG}\r\na=ice-pwd:{PWD}\r\n"
                                       f"a=fingerprint:{FP256}\r\n")
    assert SessionDescription.from_sdp(moved, "offer") == our_offer(session_id=_sid(text))


def _sid(text: str) -> str:
    return text.split("\r\n")[1].split()[1]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("a=setup:actpass", "a=setup:holdconn", "unknown a=setup"),
        ("a=setup:actpass", "a=setup:", "needs a value"),
        ("a=mid:1", "a=mid:0", "duplicate a=mid"),
        ("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 7", "mid '7'"),
        ("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8", "rtpmap"),
        ("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8/ninety", "clock rate"),
        ("a=rtpmap:97 rtx/90000", "a=rtpmap:98 rtx/90000", "not listed"),
        ("a=fmtp:97 apt=96", "a=fmtp:97", "needs a value|no value"),
        ("m=video 54401", "m=video 99999", "out of range"),
        ("m=video 54401 UDP/TLS/RTP/SAVPF 96", "m=video 54401 UDP/TLS/RTP/SAVPF", "m= line"),
        ("typ srflx", "typ magic", "candidate type"),
        ("1 udp 2122260223 192.168.1.20 54400", "1 sctp 2122260223 192.168.1.20 54400",
         "transport"),
        ("54400 typ host generation 0", "54400 type host generation 0", "malformed candidate"),
        ("rport 54400", "rport port", "rport"),
        ("tcptype active", "tcptype sideways", "tcptype"),
        ("a=ice-ufrag:Hk3e", "a=ice-ufrag:H!", "ice-ufrag"),
        ("a=ice-pwd:a9ZmT2qx+F1cVb7KpL0sYw4u", "a=ice-pwd:short", "ice-pwd"),
        ("sha-256 8F:D1", "sha-256 8f:D1", "fingerprint"),
        ("sha-256 8F:D1", "md5 8F:D1", "hash function"),
        ("a=ssrc:1351238107 cname", "a=ssrc:4294967296 cname", "ssrc"),
        ("a=ssrc-group:FID 2617361874", "a=ssrc-group:FID x2617361874", "ssrc-group"),
        ("a=extmap:14 urn", "a=extmap:x urn", "extmap"),
        ("a=sendrecv\r\na=msid:3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11 e8",
         "a=sendrecv\r\na=recvonly\r\na=msid:3c1f5c0e-6c1b-4f7b-9d34-0f4b8e2a7d11 e8",
         "direction"),
        ("o=- 8120536741452983617 2", "o=- 81205x 2", "session id"),
        ("s=-", "s=-\r\ns=again", "second s="),
        ("t=0 0", "t=0 0\r\nv=0", "second v="),
        ("a=extmap-allow-mixed", "a extmap-allow-mixed", "letter"),
        ("a=extmap-allow-mixed", "a=extmap-allow-mixed\x00", "control character"),
        ("a=extmap-allow-mixed", "a=:oops", "attribute name"),
    ],
)
def test_malformed_input_gives_clear_sdp_errors(old: str, new: str, message: str) -> None:
    assert old in CHROMIUM_LIKE_OFFER
    with pytest.raises(SdpError, match=message):
        SessionDescription.from_sdp(CHROMIUM_LIKE_OFFER.replace(old, new, 1), "offer")


def test_answer_with_actpass_and_unknown_type_are_refused() -> None:
    with pytest.raises(SdpError, match="answer must say"):
        SessionDescription.from_sdp(CHROMIUM_LIKE_OFFER, "answer")
    with pytest.raises(SdpError, match="'offer' or 'answer'"):
        SessionDescription.from_sdp(CHROMIUM_LIKE_OFFER, "pranswer")


def test_line_numbers_in_messages() -> None:
    text = CHROMIUM_LIKE_OFFER.replace("a=setup:actpass", "a=setup:bogus", 1)
    number = CHROMIUM_LIKE_OFFER.split("\r\n").index("a=setup:actpass") + 1
    with pytest.raises(SdpError, match=f"^line {number}: "):
        SessionDescription.from_sdp(text, "offer")


def test_size_and_line_count_bounds() -> None:
    padding = "a=x-pad:" + "y" * 100 + "\r\n"
    huge = CHROMIUM_LIKE_OFFER + padding * (MAX_SDP_LENGTH // len(padding) + 1)
    with pytest.raises(SdpError, match="characters long"):
        SessionDescription.from_sdp(huge, "offer")
    many = CHROMIUM_LIKE_OFFER + "a=z\r\n" * MAX_LINES
    assert len(many) < MAX_SDP_LENGTH
    with pytest.raises(SdpError, match="lines"):
        SessionDescription.from_sdp(many, "offer")
    with pytest.raises(SdpError, match="too long"):
        SessionDescription.from_json(json.dumps({"type": "offer", "sdp": huge * 3}))
    candidates = "".join(f"a=candidate:{i} 1 udp 1 10.0.0.1 {i + 1} typ host\r\n"
                         for i in range(200))
    with pytest.raises(SdpError, match="candidates"):
        SessionDescription.from_sdp(our_offer().to_sdp() + candidates, "offer")
    sections = "".join(f"m=audio 9 RTP/SAVPF 0\r\na=mid:m{i}\r\n" for i in range(70))
    with pytest.raises(SdpError, match="media sections"):
        SessionDescription.from_sdp(our_offer().to_sdp() + sections, "offer")


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{}", '{"type": "offer"}', '{"type": 1, "sdp": "v=0"}', "nope", b"\xff",
     '{"type": "offer", "sdp": "v=0\\r\\n"}', "[" * 100000],
)
def test_from_json_rejects_bad_documents(text: str | bytes) -> None:
    with pytest.raises(SdpError):
        SessionDescription.from_json(text)


def test_constructor_validates_fields() -> None:
    base = our_offer()
    with pytest.raises(SdpError, match="fingerprint"):
        SessionDescription("offer", UFRAG, PWD, [], SetupRole.ACTPASS)
    with pytest.raises(SdpError, match="twice"):
        SessionDescription("offer", UFRAG, PWD, [FP256, FP256], SetupRole.ACTPASS)
    with pytest.raises(SdpError, match="ice-pwd"):
        SessionDescription("offer", UFRAG, "x", [FP256], SetupRole.ACTPASS)
    with pytest.raises(SdpError, match="setup"):
        SessionDescription("offer", UFRAG, PWD, [FP256], "sideways")  # type: ignore[arg-type]
    assert SessionDescription("offer", UFRAG, PWD, [FP256], "passive").setup is \
        SetupRole.PASSIVE  # type: ignore[arg-type]
    # verbatim attributes cannot smuggle transport or modelled lines past the model
    with pytest.raises(SdpError, match="own field"):
        SessionDescription("offer", UFRAG, PWD, [FP256], SetupRole.ACTPASS,
                           attributes=["fingerprint:sha-256 00"])
    section = base.media[0]
    section.attributes = ["setup:passive"]
    with pytest.raises(SdpError, match="own field"):
        SessionDescription("offer", UFRAG, PWD, [FP256], SetupRole.ACTPASS, media=[section])
    section.attributes = ["x-note:a\r\na=setup:passive"]
    with pytest.raises(SdpError, match="control character"):
        SessionDescription("offer", UFRAG, PWD, [FP256], SetupRole.ACTPASS, media=[section])
    with pytest.raises(SdpError, match="SSRC"):
        our_offer(ssrcs=[0])
    sneaky = host_candidate()
    sneaky.host = "10.0.0.1 5 typ host\r\na=setup:passive"
    with pytest.raises(SdpError, match="control character"):
        our_offer(candidates=[sneaky])
    with pytest.raises(SdpError, match="read back"):
        our_offer(fingerprints=[Fingerprint("SHA-256", FP256.digest)])
    with pytest.raises(SdpError, match="malformed a=ice-options"):
        our_offer(ice_options=["trickle\n"])


def test_description_without_media_round_trips() -> None:
    bare = SessionDescription("offer", UFRAG, PWD, [FP256], SetupRole.ACTPASS,
                              candidates=[host_candidate()], end_of_candidates=True)
    assert SessionDescription.from_sdp(bare.to_sdp(), "offer") == bare


# --- aiortc acceptance -----------------------------------------------------------------


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiortc gathers host candidates on loopback only (and no STUN, see rtc_config)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses",
                        lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def rtc_config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


@pytest.mark.parametrize("kinds", [("audio",), ("audio", "video")])
async def test_aiortc_accepts_our_offer(loopback_only: None, kinds: tuple[str, ...]) -> None:
    cert = Certificate.generate()
    offer = create_offer(ice_ufrag=UFRAG, ice_pwd=PWD, fingerprints=cert.fingerprints(),
                         candidates=[host_candidate(9)], kinds=kinds)
    pc = RTCPeerConnection(rtc_config())
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer.to_sdp(), "offer"))
        assert pc.signalingState == "have-remote-offer"
        assert [t.kind for t in pc.getTransceivers()] == list(kinds)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = SessionDescription.from_sdp(pc.localDescription.sdp, "answer")
    finally:
        await pc.close()
    assert answer.mids == offer.mids
    assert answer.setup in (SetupRole.ACTIVE, SetupRole.PASSIVE)
    assert is_dtls_client(offer.setup, answer.setup) is (answer.setup is SetupRole.PASSIVE)
    assert answer.candidates and all(c.host == "127.0.0.1" for c in answer.candidates)
    negotiated = [m.codecs[0].rtpmap.lower() for m in answer.media if m.is_rtp]
    assert negotiated == [{"audio": "opus/48000/2", "video": "vp8/90000"}[k] for k in kinds]
    # aiortc accepts the data channel m-line too, with its own SCTP parameters
    assert answer.media[-1].is_data_channel and not answer.media[-1].rejected
    assert answer.sctp_port == 5000 and answer.max_message_size == 262144


async def test_we_answer_aiortc_offer_and_aiortc_accepts(loopback_only: None) -> None:
    cert = Certificate.generate()
    pc = RTCPeerConnection(rtc_config())
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        offer = SessionDescription.from_sdp(pc.localDescription.sdp, "offer")
        # aiortc lists sha-256, sha-384 and sha-512 fingerprints
        assert {fp.algorithm for fp in offer.fingerprints} >= {"sha-256"}
        assert offer.setup is SetupRole.ACTPASS and offer.candidates
        answer = create_answer(offer, ice_ufrag=UFRAG, ice_pwd=PWD,
                               fingerprints=cert.fingerprints(),
                               candidates=[host_candidate(9)], ssrcs=[555])
        await pc.setRemoteDescription(RTCSessionDescription(answer.to_sdp(), "answer"))
        assert pc.signalingState == "stable"
        transceiver = pc.getTransceivers()[0]
        assert transceiver.currentDirection == "sendrecv"
        assert [c.mimeType for c in transceiver._codecs] == ["audio/opus"]
    finally:
        await pc.close()
    assert is_dtls_client(answer.setup, offer.setup)


# --- fuzzing ---------------------------------------------------------------------------

VALID = [CHROMIUM_LIKE_OFFER, CHROMIUM_RECORDED.read_text(), our_offer(kinds=("audio", "video"))
         .to_sdp(), CHROMIUM_DATA_RECORDED.read_text(), CHROMIUM_SNAP_RECORDED.read_text()]


def check_parse(text: str, kind: str = "offer") -> None:
    try:
        parsed = SessionDescription.from_sdp(text, kind)
    except SdpError:
        return
    # whatever parses must write SDP that parses back to the same description
    again = SessionDescription.from_sdp(parsed.to_sdp(), kind)
    assert again == parsed
    assert SessionDescription.from_json(parsed.to_json()) == parsed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(VALID), data=st.data())
def test_fuzz_truncations_and_splices(source: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(source)))
    insert = data.draw(st.text(max_size=40))
    resume = data.draw(st.integers(cut, len(source)))
    check_parse(source[:cut] + insert + source[resume:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(VALID), data=st.data())
def test_fuzz_line_mutations(source: str, data: st.DataObject) -> None:
    lines = source.split("\r\n")
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "dup", "garble", "swap"]))
        if action == "drop":
            del lines[index]
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "swap":
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        else:
            line = lines[index]
            at = data.draw(st.integers(0, len(line)))
            token = data.draw(st.sampled_from(
                ["", " ", ":", "/", "0", "-1", "99999999999999999999", "x", "a=", "\t", "é"]
            ))
            lines[index] = line[:at] + token + line[at + data.draw(st.integers(0, 3)):]
        if not lines:
            break
    check_parse("\r\n".join(lines))
    check_parse("\n".join(lines), "answer")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_random_text(text: str) -> None:
    check_parse(text)
    check_parse("v=0\r\n" + text)
    with contextlib.suppress(SdpError):
        SessionDescription.from_json(text)


# --- Chromium acceptance ---------------------------------------------------------------

CHROMIUM_OFFER_JS = """(async () => {
  window.pc = new RTCPeerConnection();
  pc.addTransceiver('audio');
  pc.addTransceiver('video');
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription.sdp;
})()"""

CHROMIUM_ANSWER_JS = """(async (offer) => {
  const pc2 = new RTCPeerConnection();
  await pc2.setRemoteDescription(offer);
  await pc2.setLocalDescription(await pc2.createAnswer());
  const sdp = pc2.localDescription.sdp;
  const kinds = pc2.getTransceivers().map(t => [t.mid, t.receiver.track.kind]);
  pc2.close();
  return {sdp, kinds};
})"""


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_chromium_accepts_our_answer_and_our_offer() -> None:
    """Real Chromium: it takes our answer to its offer, and answers our offer."""
    from tests.browser.cdp import Chromium
    from tests.browser.netns import run_in_loopback_netns

    cert = Certificate.generate()

    async def scenario() -> tuple[SessionDescription, str, SessionDescription, list[Any]]:
        async with Chromium() as browser:
            page = await browser.new_page()
            offer = SessionDescription.from_sdp(await page.evaluate(CHROMIUM_OFFER_JS), "offer")
            answer = create_answer(offer, ice_ufrag=UFRAG, ice_pwd=PWD,
                                   fingerprints=cert.fingerprints(),
                                   candidates=[host_candidate(9)], ssrcs=[111, 222])
            state = await page.evaluate(
                f"pc.setRemoteDescription({answer.to_json()}).then(() => pc.signalingState)"
            )
            await page.evaluate("pc.close()")
            ours = create_offer(ice_ufrag=UFRAG, ice_pwd=PWD, fingerprints=cert.fingerprints(),
                                candidates=[host_candidate(9)], kinds=("audio", "video"))
            reply = await page.evaluate(f"{CHROMIUM_ANSWER_JS}({ours.to_json()})")
            chromium_answer = SessionDescription.from_sdp(reply["sdp"], "answer")
            return offer, state, chromium_answer, reply["kinds"]

    offer, state, chromium_answer, kinds = run_in_loopback_netns(scenario, timeout=40)
    assert offer.mids == ["0", "1"] and offer.setup is SetupRole.ACTPASS
    assert state == "stable"
    assert kinds == [["0", "audio"], ["1", "video"]]
    assert chromium_answer.setup is SetupRole.ACTIVE
    assert not is_dtls_client(SetupRole.ACTPASS, chromium_answer.setup)
    audio, video, data = chromium_answer.media
    assert data.is_data_channel and not data.rejected
    assert {c.rtpmap.lower() for c in audio.codecs} <= {"opus/48000/2", "pcmu/8000"}
    assert audio.codec(111) is not None and audio.codec(111).rtpmap == "opus/48000/2"  # type: ignore[union-attr]
    assert [c.rtpmap for c in video.codecs] == ["VP8/90000"]


CHROMIUM_DATA_OFFER_JS = """(async () => {
  window.pc = new RTCPeerConnection();
  pc.addTransceiver('audio');
  pc.addTransceiver('video');
  pc.createDataChannel('chat');
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription.sdp;
})()"""

CHROMIUM_DATA_ANSWER_JS = """(async (offer) => {
  const pc2 = new RTCPeerConnection();
  await pc2.setRemoteDescription(offer);
  await pc2.setLocalDescription(await pc2.createAnswer());
  const sdp = pc2.localDescription.sdp;
  const sctp = pc2.sctp ? pc2.sctp.maxMessageSize : null;
  pc2.close();
  return {sdp, sctp};
})"""


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("kinds", [("audio", "video"), ()])
def test_chromium_takes_our_data_channel_m_lines(kinds: tuple[str, ...]) -> None:
    """Real Chromium: our answer to its audio+video+data offer, and its answer to our
    offers with a data channel m-line (with media, and data only)."""
    from tests.browser.cdp import Chromium
    from tests.browser.netns import run_in_loopback_netns

    cert = Certificate.generate()

    async def scenario() -> tuple[SessionDescription, str, SessionDescription, Any]:
        async with Chromium() as browser:
            page = await browser.new_page()
            offer = SessionDescription.from_sdp(
                await page.evaluate(CHROMIUM_DATA_OFFER_JS), "offer"
            )
            answer = create_answer(offer, ice_ufrag=UFRAG, ice_pwd=PWD,
                                   fingerprints=cert.fingerprints(),
                                   candidates=[host_candidate(9)])
            state = await page.evaluate(
                f"pc.setRemoteDescription({answer.to_json()}).then(() => pc.signalingState)"
            )
            await page.evaluate("pc.close()")
            ours = create_offer(ice_ufrag=UFRAG, ice_pwd=PWD, fingerprints=cert.fingerprints(),
                                candidates=[host_candidate(9)], kinds=kinds)
            reply = await page.evaluate(f"{CHROMIUM_DATA_ANSWER_JS}({ours.to_json()})")
            return offer, state, SessionDescription.from_sdp(reply["sdp"], "answer"), reply
    offer, state, chromium_answer, reply = run_in_loopback_netns(scenario, timeout=40)
    assert offer.data_section is not None and offer.sctp_port == 5000
    assert state == "stable"
    assert chromium_answer.data_section is chromium_answer.media[-1]
    assert chromium_answer.sctp_port == 5000 and chromium_answer.max_message_size == 262144
    assert chromium_answer.bundle == [str(i) for i in range(len(kinds) + 1)]
    # Chromium's RTCSctpTransport took our a=max-message-size
    assert reply["sctp"] == 262144
