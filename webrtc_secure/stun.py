"""A minimal STUN codec for ICE consent freshness (RFC 7675) on a nominated pair.

Consent checks are Binding transactions (RFC 8489) with the short-term credentials of
ICE (RFC 8445 7.2): a request carries USERNAME, PRIORITY, ICE-CONTROLLING or
ICE-CONTROLLED (maybe USE-CANDIDATE), MESSAGE-INTEGRITY and FINGERPRINT; its success
response XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT. aioice handles them
with its general codec (a ``Message`` with a dict of decoded attributes, ``ipaddress``
objects, an HMAC keyed per message) and a ``Transaction`` with a future and a task per
check. At 1000 pairs that was the largest single cost of an idle, established fleet.

This module parses only what a consent check or its answer carries and builds the two
messages from bytes, with one-shot HMAC-SHA1 (``hmac.digest``) and CRC32. It is pure:
bytes in, a :class:`Binding` (or None) and bytes out. :func:`parse_binding` returns
None for anything it does not fully understand, exactly where aioice's parser would
decode an attribute this one does not (MAPPED-ADDRESS, DATA, ...) or would refuse the
message, so that the caller hands it to aioice, whose answer (or silence) is the
reference. The parsed fields are checked as aioice checks them: the same layout, the
same FINGERPRINT rule (verified when present), the same integrity coverage
(everything before MESSAGE-INTEGRITY, with the length field ending at it), attributes
after MESSAGE-INTEGRITY ignored except FINGERPRINT.
"""

from __future__ import annotations

import binascii
import hmac
import ipaddress
from typing import NamedTuple

COOKIE = b"\x21\x12\xa4\x42"
HEADER_LENGTH = 20
FINGERPRINT_XOR = 0x5354554E

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
XOR_MAPPED_ADDRESS = 0x0020
PRIORITY = 0x0024
USE_CANDIDATE = 0x0025
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
ICE_CONTROLLED = 0x8029
ICE_CONTROLLING = 0x802A

#: attributes aioice decodes (its ATTRIBUTES table) that no consent check carries:
#: a message with one of them before MESSAGE-INTEGRITY goes to aioice
_AIOICE_ONLY = frozenset(
    {
        0x0001,  # MAPPED-ADDRESS
        0x0003,  # CHANGE-REQUEST
        0x0004,  # SOURCE-ADDRESS
        0x0005,  # CHANGED-ADDRESS
        0x000C,  # CHANNEL-NUMBER
        0x000D,  # LIFETIME
        0x0012,  # XOR-PEER-ADDRESS
        0x0013,  # DATA
        0x0014,  # REALM
        0x0015,  # NONCE
        0x0016,  # XOR-RELAYED-ADDRESS
        0x0019,  # REQUESTED-TRANSPORT
        0x802B,  # RESPONSE-ORIGIN
        0x802C,  # OTHER-ADDRESS
    }
)

#: the types this module handles
_TYPES = frozenset({BINDING_REQUEST, BINDING_SUCCESS, BINDING_ERROR})

#: largest message parsed here (a consent check is about 100 bytes; Chromium's with its
#: GOOG attributes under 200): anything larger goes to aioice
MAX_LENGTH = 1280

_MI_HEADER = b"\x00\x08\x00\x14"  # MESSAGE-INTEGRITY, 20 bytes
_FP_HEADER = b"\x80\x28\x00\x04"  # FINGERPRINT, 4 bytes


class Binding(NamedTuple):
    """What a consent check or its answer carries.

    ``integrity_at`` is the offset of the MESSAGE-INTEGRITY attribute (0: none);
    FINGERPRINT, when present, has already been verified by :func:`parse_binding`.
    Immutable like the frozen dataclasses elsewhere, and a quarter of their
    construction cost: one is made per consent datagram received.
    """

    message_type: int
    transaction_id: bytes
    integrity_at: int
    username: bytes | None = None
    priority: int | None = None
    controlling: int | None = None
    controlled: int | None = None
    use_candidate: bool = False


def parse_binding(data: bytes) -> Binding | None:
    """A Binding request, success or error response, or None: not one this module
    handles (malformed, truncated, oversized, another method or class, an attribute
    that aioice decodes and a consent check never carries, a wrong FINGERPRINT)."""
    size = len(data)
    if size < HEADER_LENGTH or size > MAX_LENGTH or size & 3 or data[4:8] != COOKIE:
        return None
    message_type = int.from_bytes(data[0:2], "big")
    if message_type not in _TYPES or int.from_bytes(data[2:4], "big") != size - HEADER_LENGTH:
        return None
    username = priority = controlling = controlled = None
    use_candidate = False
    integrity_at = 0
    pos = HEADER_LENGTH
    while pos < size:
        if pos + 4 > size:
            return None
        kind = (data[pos] << 8) | data[pos + 1]
        length = (data[pos + 2] << 8) | data[pos + 3]
        start = pos + 4
        end = start + length
        following = start + ((length + 3) & ~3)
        if following > size:
            return None
        if kind == FINGERPRINT:
            # the last attribute, over everything before it (RFC 8489 14.7)
            if length != 4 or following != size:
                return None
            expected = _fingerprint(data[:pos], pos + 8 - HEADER_LENGTH)
            if int.from_bytes(data[start:end], "big") != expected:
                return None
        elif integrity_at:
            pass  # after MESSAGE-INTEGRITY and not authenticated: ignored, as aioice does
        elif kind == MESSAGE_INTEGRITY:
            if length != 20:
                return None
            integrity_at = pos
        elif kind == USERNAME:
            username = data[start:end]
            if not _is_utf8(username):
                return None
        elif kind == PRIORITY:
            if length != 4:
                return None
            priority = int.from_bytes(data[start:end], "big")
        elif kind == ICE_CONTROLLING:
            if length != 8:
                return None
            controlling = int.from_bytes(data[start:end], "big")
        elif kind == ICE_CONTROLLED:
            if length != 8:
                return None
            controlled = int.from_bytes(data[start:end], "big")
        elif kind == USE_CANDIDATE:
            if length:
                return None
            use_candidate = True
        elif kind == XOR_MAPPED_ADDRESS:
            # not used (our own address), but aioice refuses a malformed one
            family = data[start + 1] if length > 1 else 0
            if not ((family == 1 and length == 8) or (family == 2 and length == 20)):
                return None
        elif kind == ERROR_CODE:
            if length < 4 or not _is_utf8(data[start + 4 : end]):
                return None
        elif kind == SOFTWARE:
            if not _is_utf8(data[start:end]):
                return None
        elif kind in _AIOICE_ONLY:
            return None
        # any other attribute is unknown to aioice too, which ignores it
        pos = following
    return Binding(
        message_type,
        data[8:20],
        integrity_at,
        username,
        priority,
        controlling,
        controlled,
        use_candidate,
    )


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _fingerprint(head: bytes, body_length: int) -> int:
    """CRC32 of ``head`` (header and attributes before FINGERPRINT), with the header's
    length field set to ``body_length`` (the message ending after FINGERPRINT)."""
    crc = binascii.crc32(head[:2])
    crc = binascii.crc32(body_length.to_bytes(2, "big"), crc)
    return binascii.crc32(head[4:], crc) ^ FINGERPRINT_XOR


def _integrity(head: bytes, key: bytes) -> bytes:
    """HMAC-SHA1 of ``head`` (header and attributes before MESSAGE-INTEGRITY) with the
    length field ending at MESSAGE-INTEGRITY (RFC 8489 14.5)."""
    length = len(head) + 24 - HEADER_LENGTH
    return hmac.digest(key, head[:2] + length.to_bytes(2, "big") + head[4:], "sha1")


def authentic(data: bytes, binding: Binding, key: bytes) -> bool:
    """Whether ``binding`` (parsed from ``data``) carries MESSAGE-INTEGRITY made with
    ``key`` (the short-term credential: an ICE password, UTF-8)."""
    at = binding.integrity_at
    if not at:
        return False
    return hmac.compare_digest(data[at + 4 : at + 24], _integrity(data[:at], key))


def _seal(head: bytes, key: bytes) -> bytes:
    """``head`` (header with any length, attributes) with MESSAGE-INTEGRITY and
    FINGERPRINT appended and the length field set."""
    mac = _integrity(head, key)
    body = len(head) + 32 - HEADER_LENGTH
    signed = head[:2] + body.to_bytes(2, "big") + head[4:] + _MI_HEADER + mac
    crc = binascii.crc32(signed) ^ FINGERPRINT_XOR
    return signed + _FP_HEADER + crc.to_bytes(4, "big")


def xor_mapped_address(addr: tuple[str, int], transaction_id: bytes) -> bytes:
    """The XOR-MAPPED-ADDRESS attribute (type, length, value) of ``addr``."""
    address = ipaddress.ip_address(addr[0])
    port = (addr[1] ^ 0x2112).to_bytes(2, "big")
    raw = address.packed
    pad = (COOKIE + transaction_id)[: len(raw)]
    packed = bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    if address.version == 4:
        return b"\x00\x20\x00\x08\x00\x01" + port + packed
    return b"\x00\x20\x00\x14\x00\x02" + port + packed


def binding_success(transaction_id: bytes, mapped: bytes, key: bytes) -> bytes:
    """A Binding success response: ``mapped`` (:func:`xor_mapped_address` of the
    request's source, made with this ``transaction_id``), MESSAGE-INTEGRITY with
    ``key`` (our password), FINGERPRINT; the bytes aioice builds for the same answer."""
    return _seal(b"\x01\x01\x00\x00" + COOKIE + transaction_id + mapped, key)


def request_attributes(
    username: str, priority: int, controlling: bool, tie_breaker: int
) -> bytes:
    """The attributes of a consent check (a Binding request without USE-CANDIDATE), in
    aioice's order: USERNAME (``remote:local``), PRIORITY, ICE-CONTROLLING or
    ICE-CONTROLLED. Constant for a pair and a role: built once, sent with a fresh
    transaction id by :func:`binding_request`."""
    name = username.encode("utf-8")
    padded = name + bytes(-len(name) & 3)
    role = ICE_CONTROLLING if controlling else ICE_CONTROLLED
    return (
        USERNAME.to_bytes(2, "big")
        + len(name).to_bytes(2, "big")
        + padded
        + b"\x00\x24\x00\x04"
        + priority.to_bytes(4, "big")
        + role.to_bytes(2, "big")
        + b"\x00\x08"
        + tie_breaker.to_bytes(8, "big")
    )


def binding_request(transaction_id: bytes, attributes: bytes, key: bytes) -> bytes:
    """A Binding request with ``attributes`` (:func:`request_attributes`),
    MESSAGE-INTEGRITY with ``key`` (the remote password) and FINGERPRINT."""
    return _seal(b"\x00\x01\x00\x00" + COOKIE + transaction_id + attributes, key)
