"""The SCTP packet: common header, CRC32c and the bundled chunks (RFC 9260 3.1, 6.8).

Over DTLS (RFC 8261) an SCTP packet is one DTLS application-data record, so there
is no IP header and the ports are the SDP ``a=sctp-port`` values.

The checksum is CRC32c (Castagnoli) over the whole packet with the checksum field
zeroed, stored least significant byte first (the byte order RFC 9260 Appendix A's
reference code produces). It comes from ``google_crc32c``'s C extension: a per-byte
Python loop would cost more than the rest of the stack. With RFC 9653 negotiated
(``allow_zero_checksum``), a zero checksum field is accepted unchecked, since the DTLS
record MAC already authenticated the packet; a non-zero one is still verified.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import google_crc32c

from webrtc_secure.errors import ChecksumMismatch, MalformedSctpPacket
from webrtc_secure.sctp.chunks import Chunk, parse_chunks

COMMON_HEADER_SIZE = 12
"""Octets of the common header (ports, verification tag, checksum)."""

_PORTS_TAG = struct.Struct("!HHI")
_CHECKSUM = struct.Struct("<I")
_ZERO = b"\x00\x00\x00\x00"

logger = logging.getLogger(__name__)

if google_crc32c.implementation != "c":  # pragma: no cover - only without the wheel
    # the pure-Python fallback loops per byte: about 1 ms per 1200-byte packet
    logger.warning("google-crc32c runs without its C extension: SCTP checksums will be slow")

_crc_value = google_crc32c.value
_crc_extend = google_crc32c.extend


def crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli, RFC 3720 B.4) of ``data``."""
    return _crc_value(data)  # type: ignore[no-any-return]


def packet_crc(data: bytes) -> int:
    """CRC32c of a packet as if its checksum field were zero (what its checksum field,
    read least significant byte first, must hold).

    google_crc32c takes only bytes (no memoryview), so this costs one slice copy of
    the packet: a memcpy, far below the CRC itself.
    """
    return _crc_extend(_crc_value(data[:8] + _ZERO), data[12:])  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Packet:
    """One SCTP packet: common header fields and the chunks in wire order."""

    source_port: int
    destination_port: int
    verification_tag: int
    chunks: tuple[Chunk, ...]


def parse_packet(
    data: bytes, *, verify_checksum: bool = True, allow_zero_checksum: bool = False
) -> Packet:
    """Decode one SCTP packet.

    Raises :class:`ChecksumMismatch` for a bad CRC32c and :class:`MalformedSctpPacket`
    for any other encoding defect; nothing else escapes for any input.
    ``allow_zero_checksum`` is for an association that negotiated RFC 9653: a checksum
    field of zero is then taken as "not computed" rather than checked.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) < COMMON_HEADER_SIZE + 4:
        raise MalformedSctpPacket(f"SCTP packet of {len(data)} octets is shorter than 16")
    if verify_checksum:
        received = _CHECKSUM.unpack_from(data, 8)[0]
        if not (received == 0 and allow_zero_checksum):
            computed = packet_crc(data)
            if computed != received:
                raise ChecksumMismatch(
                    f"CRC32c mismatch: packet says {received:#010x}, computed {computed:#010x}"
                )
    source_port, destination_port, tag = _PORTS_TAG.unpack_from(data)
    return Packet(source_port, destination_port, tag, parse_chunks(data, COMMON_HEADER_SIZE))


def serialize_chunks(
    source_port: int,
    destination_port: int,
    verification_tag: int,
    chunks: Iterable[bytes | memoryview],
    *,
    zero_checksum: bool = False,
) -> bytes:
    """A packet from already serialized (padded) chunks, or pieces of them: the
    association can keep the bytes it measured while filling a packet and avoid
    encoding them twice."""
    header = _PORTS_TAG.pack(source_port, destination_port, verification_tag)
    body = b"".join(chunks)
    if zero_checksum:
        return header + _ZERO + body
    crc = _crc_extend(_crc_value(header + _ZERO), body)
    return header + _CHECKSUM.pack(crc) + body


def serialize_packet(packet: Packet, *, zero_checksum: bool = False) -> bytes:
    """Encode ``packet``, its chunks bundled in order, each padded to 4 octets.

    ``zero_checksum`` leaves the checksum field zero (RFC 9653): only when the peer
    advertised Zero Checksum Acceptable with method DTLS, and never for a packet
    carrying INIT (the peer cannot have agreed yet). Size limits are the caller's:
    use ``COMMON_HEADER_SIZE`` plus each chunk's ``encoded_size`` to fill a packet.
    """
    return serialize_chunks(
        packet.source_port,
        packet.destination_port,
        packet.verification_tag,
        [c.serialize() for c in packet.chunks],
        zero_checksum=zero_checksum,
    )


def packet_size(chunks: Iterable[Chunk]) -> int:
    """Octets a packet carrying ``chunks`` takes on the wire (header included)."""
    return COMMON_HEADER_SIZE + sum(c.encoded_size for c in chunks)


def bundle(chunks: Iterable[Chunk], max_packet_size: int) -> list[tuple[Chunk, ...]]:
    """Group ``chunks`` in order into as few packets as fit ``max_packet_size`` each.

    Greedy and order preserving (a chunk never overtakes another). A chunk too large
    for an empty packet raises ValueError: fragmenting user messages to fit is the
    association's job, done before bundling.
    """
    room = max_packet_size - COMMON_HEADER_SIZE
    packets: list[tuple[Chunk, ...]] = []
    current: list[Chunk] = []
    used = 0
    for chunk in chunks:
        size = chunk.encoded_size
        if size > room:
            raise ValueError(
                f"chunk type {chunk.type} of {size} octets does not fit a "
                f"{max_packet_size}-octet packet"
            )
        if used + size > room:
            packets.append(tuple(current))
            current, used = [], 0
        current.append(chunk)
        used += size
    if current:
        packets.append(tuple(current))
    return packets
