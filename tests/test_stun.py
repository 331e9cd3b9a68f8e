"""webrtc_secure.stun, the minimal consent codec, against aioice's general one: the same
bytes out, the same fields in, and None (hand it to aioice) wherever aioice would
decode something this codec does not or refuse the message."""

from __future__ import annotations

import random
import struct

import aioice.stun
import pytest

from webrtc_secure import stun

TID = bytes(range(1, 13))
LOCAL_PWD = b"local-password-0123456789"
REMOTE_PWD = b"remote-password-abcdefghi"


def _aioice_request(
    *, controlling: bool = True, tie_breaker: int = 0x0123456789ABCDEF, use: bool = False
) -> aioice.stun.Message:
    request = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING,
        message_class=aioice.stun.Class.REQUEST,
        transaction_id=TID,
    )
    request.attributes["USERNAME"] = "remU:locU"
    request.attributes["PRIORITY"] = 1853824767
    if controlling:
        request.attributes["ICE-CONTROLLING"] = tie_breaker
        if use:
            request.attributes["USE-CANDIDATE"] = None
    else:
        request.attributes["ICE-CONTROLLED"] = tie_breaker
    request.add_message_integrity(REMOTE_PWD)
    return request


@pytest.mark.parametrize("controlling", [True, False])
def test_request_is_byte_for_byte_aioices(controlling: bool) -> None:
    attributes = stun.request_attributes(
        "remU:locU", 1853824767, controlling, 0x0123456789ABCDEF
    )
    ours = stun.binding_request(TID, attributes, REMOTE_PWD)
    assert ours == bytes(_aioice_request(controlling=controlling))


@pytest.mark.parametrize("username", ["a:b", "abcd:efgh", "abcdefgh:ijklmnopq"])
def test_request_username_padding(username: str) -> None:
    attributes = stun.request_attributes(username, 7, True, 1)
    data = stun.binding_request(TID, attributes, REMOTE_PWD)
    parsed = aioice.stun.parse_message(data)
    assert parsed.attributes["USERNAME"] == username
    assert parsed.check_message_integrity(REMOTE_PWD)
    assert len(data) % 4 == 0


@pytest.mark.parametrize(
    "addr", [("127.0.0.1", 5000), ("192.0.2.77", 65535), ("::1", 4242), ("2001:db8::5", 1)]
)
def test_success_response_is_byte_for_byte_aioices(addr: tuple[str, int]) -> None:
    reference = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING,
        message_class=aioice.stun.Class.RESPONSE,
        transaction_id=TID,
    )
    reference.attributes["XOR-MAPPED-ADDRESS"] = addr
    reference.add_message_integrity(LOCAL_PWD)
    mapped = stun.xor_mapped_address(addr, TID)
    assert stun.binding_success(TID, mapped, LOCAL_PWD) == bytes(reference)
    # and aioice reads our answer back as the same address
    parsed = aioice.stun.parse_message(stun.binding_success(TID, mapped, LOCAL_PWD))
    assert parsed.attributes["XOR-MAPPED-ADDRESS"] == addr


@pytest.mark.parametrize("controlling", [True, False])
@pytest.mark.parametrize("use", [False, True])
def test_parse_reads_what_aioice_reads(controlling: bool, use: bool) -> None:
    data = bytes(_aioice_request(controlling=controlling, use=use))
    binding = stun.parse_binding(data)
    assert binding is not None
    assert binding.message_type == stun.BINDING_REQUEST
    assert binding.transaction_id == TID
    assert binding.username == b"remU:locU"
    assert binding.priority == 1853824767
    assert binding.controlling == (0x0123456789ABCDEF if controlling else None)
    assert binding.controlled == (None if controlling else 0x0123456789ABCDEF)
    assert binding.use_candidate is (use and controlling)
    assert stun.authentic(data, binding, REMOTE_PWD)
    assert not stun.authentic(data, binding, LOCAL_PWD)
    assert not stun.authentic(data, binding, REMOTE_PWD[:-1])


def test_every_flipped_bit_is_refused_or_unauthenticated() -> None:
    """A replayed request changed anywhere: parse refuses it or integrity fails (the
    transaction id is covered too). The one exception is FINGERPRINT's type: the
    message then ends in an unknown, unauthenticated attribute after
    MESSAGE-INTEGRITY, which both codecs ignore, and is the authentic request."""
    data = bytes(_aioice_request())
    fingerprint_type = range(len(data) - 8, len(data) - 6)
    for index in range(len(data)):
        for bit in range(8):
            forged = bytearray(data)
            forged[index] ^= 1 << bit
            binding = stun.parse_binding(bytes(forged))
            if binding is None or not stun.authentic(bytes(forged), binding, REMOTE_PWD):
                continue
            assert index in fingerprint_type
            reference = aioice.stun.parse_message(bytes(forged))
            assert "FINGERPRINT" not in reference.attributes
            assert reference.check_message_integrity(REMOTE_PWD)


def test_truncated_at_every_length_never_raises() -> None:
    data = bytes(_aioice_request())
    for size in range(len(data)):
        assert stun.parse_binding(data[:size]) is None  # the length field disagrees


def _message(message_type: int, attributes: bytes, *, length: int | None = None) -> bytes:
    body = len(attributes) if length is None else length
    return struct.pack("!HHI12s", message_type, body, 0x2112A442, TID) + attributes


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) & 3)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(19),
        _message(0x0001, b"")[:4] + b"\x00\x00\x00\x00" + TID,  # no magic cookie
        _message(0x0001, b"", length=4),  # length beyond the datagram
        _message(0x0001, bytes(3), length=3),  # not a multiple of four
        _message(0x0003, b""),  # Allocate
        _message(0x0011, b""),  # Binding indication
        _message(0x0001, b"\x00\x06\x00\x08abcd"),  # attribute beyond the message
        _message(0x0001, b"\x00\x06"),  # half an attribute header
        _message(0x0001, _attribute(0x0024, b"\x00\x00\x01")),  # PRIORITY of 3 bytes
        _message(0x0001, _attribute(0x802A, bytes(4))),  # ICE-CONTROLLING of 4 bytes
        _message(0x0001, _attribute(0x0025, b"x")),  # USE-CANDIDATE with a value
        _message(0x0001, _attribute(0x0008, bytes(19))),  # MESSAGE-INTEGRITY of 19
        _message(0x0001, _attribute(0x0006, b"\xff\xfe")),  # USERNAME not UTF-8
        _message(0x0001, _attribute(0x0001, bytes(8))),  # MAPPED-ADDRESS: aioice's
        _message(0x0001, _attribute(0x0013, b"data")),  # DATA: aioice's
        _message(0x0101, _attribute(0x0020, b"\x00\x03" + bytes(6))),  # bad family
        _message(0x0101, _attribute(0x0020, b"\x00\x01" + bytes(18))),  # IPv4, 20 bytes
        _message(0x0111, _attribute(0x0009, b"\x00\x00")),  # ERROR-CODE of 2 bytes
        _message(0x0001, _attribute(0x8028, bytes(4))),  # wrong FINGERPRINT
        _message(0x0001, _attribute(0x0006, bytes(2000))),  # oversized
    ],
)
def test_malformed_or_not_ours_is_left_to_aioice(data: bytes) -> None:
    assert stun.parse_binding(data) is None


def test_attributes_after_integrity_are_ignored_but_fingerprint_is_checked() -> None:
    request = _aioice_request()
    signed = bytes(request)
    at = signed.index(b"\x00\x08\x00\x14")
    head = signed[: at + 24]
    # an unauthenticated PRIORITY after MESSAGE-INTEGRITY changes nothing (aioice: same)
    tail = _attribute(0x0024, b"\xff\xff\xff\xff")
    data = head[:2] + struct.pack("!H", len(head) + len(tail) - 20) + head[4:] + tail
    binding = stun.parse_binding(data)
    assert binding is not None and binding.priority == 1853824767
    assert stun.authentic(data, binding, REMOTE_PWD)
    assert aioice.stun.parse_message(data).attributes["PRIORITY"] == 1853824767


def test_unknown_optional_attributes_are_skipped_as_aioice_skips_them() -> None:
    """Chromium's checks carry GOOG-NETWORK-INFO (0xC057) before MESSAGE-INTEGRITY."""
    attributes = (
        _attribute(0x0006, b"remU:locU")
        + _attribute(0xC057, b"\x00\x01\x00\x0a")
        + _attribute(0x0024, struct.pack("!I", 99))
        + _attribute(0x8029, bytes(8))
    )
    data = stun.binding_request(TID, attributes, REMOTE_PWD)
    binding = stun.parse_binding(data)
    reference = aioice.stun.parse_message(data)
    assert binding is not None and binding.priority == 99 == reference.attributes["PRIORITY"]
    assert stun.authentic(data, binding, REMOTE_PWD)
    assert reference.check_message_integrity(REMOTE_PWD)


def test_random_mutations_agree_with_aioice() -> None:
    """Seeded fuzzing: whatever this codec accepts, aioice parses too, with the same
    fields and the same verdict on integrity; nothing raises."""
    rng = random.Random(7675)
    seeds = [
        bytes(_aioice_request()),
        bytes(_aioice_request(controlling=False)),
        bytes(_aioice_request(use=True)),
        stun.binding_success(TID, stun.xor_mapped_address(("10.0.0.1", 9), TID), REMOTE_PWD),
    ]
    accepted = 0
    for _ in range(4000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            choice = rng.random()
            if choice < 0.6 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif choice < 0.8:
                data = data[: rng.randrange(len(data) + 1)]
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        raw = bytes(data)
        binding = stun.parse_binding(raw)
        if binding is None:
            continue
        accepted += 1
        reference = aioice.stun.parse_message(raw)  # must not raise either
        assert reference.transaction_id == binding.transaction_id
        assert (reference.message_method | reference.message_class) == binding.message_type
        attributes = reference.attributes
        username = attributes.get("USERNAME")
        assert binding.username == (None if username is None else username.encode())
        assert binding.priority == attributes.get("PRIORITY")
        assert binding.controlling == attributes.get("ICE-CONTROLLING")
        assert binding.controlled == attributes.get("ICE-CONTROLLED")
        assert binding.use_candidate == ("USE-CANDIDATE" in attributes)
        assert stun.authentic(raw, binding, REMOTE_PWD) == reference.check_message_integrity(
            REMOTE_PWD
        )
    assert accepted > 50  # the mutations did not all break the message
