"""DTLS 1.2 record layer codec and AEAD record protection (RFC 6347 4.1, RFC 5288,
RFC 7905).

A datagram carries one or more records: type(1) version(2) epoch(2) seq(6) length(2)
fragment. Parsing never trusts the length field; a record that does not fit ends the
parse of that datagram (RFC 6347 4.1.2.7: invalid records are discarded silently).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag

from webrtc_secure.dtls.suites import SuiteInfo
from webrtc_secure.errors import AuthenticationFailed, MalformedPacket

RECORD_HEADER_LENGTH = 13
MAX_SEQUENCE = (1 << 48) - 1
#: RFC 6347 4.1: plaintext 2^14, ciphertext 2^14 + 2048
MAX_PLAINTEXT_LENGTH = 1 << 14
MAX_CIPHERTEXT_LENGTH = (1 << 14) + 2048

_HEADER = struct.Struct("!BHHHIH")  # type, version, epoch, seq_hi(16), seq_lo(32), length
#: the same 13 octets with epoch||seq as one 64-bit field (what the AEAD layer uses)
RECORD_HEADER = _HEADER_Q = struct.Struct("!BHQH")
#: header followed by the 8-octet GCM explicit nonce, packed in one call
_HEADER_EXPLICIT = struct.Struct("!BHQHQ")
#: AEAD additional data: epoch||seq, type, version, plaintext length
_AAD = struct.Struct("!QBHH")
_U64 = struct.Struct("!Q")


class ContentType(IntEnum):
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23


class ProtocolVersion(IntEnum):
    DTLS_1_0 = 0xFEFF
    DTLS_1_2 = 0xFEFD


#: record-layer versions accepted on input (the handshake refuses DTLS 1.0 itself)
ACCEPTED_RECORD_VERSIONS = frozenset((ProtocolVersion.DTLS_1_0, ProtocolVersion.DTLS_1_2))


@dataclass(frozen=True)
class Record:
    """One record as it was on the wire (fragment still protected for epoch > 0)."""

    content_type: int
    version: int
    epoch: int
    sequence_number: int
    fragment: bytes

    def serialize(self) -> bytes:
        return (
            encode_header(
                self.content_type,
                self.version,
                self.epoch,
                self.sequence_number,
                len(self.fragment),
            )
            + self.fragment
        )


def encode_header(content_type: int, version: int, epoch: int, seq: int, length: int) -> bytes:
    """The 13-octet record header."""
    return _HEADER_Q.pack(content_type, version, (epoch << 48) | seq, length)


def plaintext_record(content_type: int, version: int, epoch_seq: int, payload: bytes) -> bytes:
    """An unprotected record (epoch 0), header and payload."""
    return _HEADER_Q.pack(content_type, version, epoch_seq, len(payload)) + payload


#: one record as plain values: (content_type, version, epoch << 48 | seq, fragment)
RecordTuple = tuple[int, int, int, bytes]

#: ``unpack_header(datagram, offset)`` -> (type, version, epoch << 48 | seq, length)
unpack_header = _HEADER_Q.unpack_from


def split_records(datagram: bytes) -> tuple[list[RecordTuple], bool]:
    """Split a datagram into records as plain tuples.

    Returns the records that parsed and whether the datagram was entirely well formed.
    Records of unknown content type or version are skipped (their length is still
    honoured so the following records are found).
    """
    records: list[RecordTuple] = []
    offset = 0
    end = len(datagram)
    clean = True
    unpack = _HEADER_Q.unpack_from
    while offset < end:
        if end - offset < RECORD_HEADER_LENGTH:
            return records, False
        ctype, version, epoch_seq, length = unpack(datagram, offset)
        start = offset + RECORD_HEADER_LENGTH
        offset = start + length
        if offset > end or length > MAX_CIPHERTEXT_LENGTH:
            return records, False
        if ctype in _CONTENT_TYPES and version in _ACCEPTED_VERSIONS:
            records.append((ctype, version, epoch_seq, datagram[start:offset]))
        else:
            clean = False
    return records, clean


def parse_records(datagram: bytes) -> tuple[list[Record], bool]:
    """Split a datagram into records.

    Returns the records that parsed and whether the datagram was entirely well formed.
    Records of unknown content type or version are skipped (their length is still
    honoured so the following records are found).
    """
    records, clean = split_records(datagram)
    return [
        Record(ctype, version, epoch_seq >> 48, epoch_seq & MAX_SEQUENCE, fragment)
        for ctype, version, epoch_seq, fragment in records
    ], clean


_CONTENT_TYPES = frozenset(int(c) for c in ContentType)
_ACCEPTED_VERSIONS = frozenset(int(v) for v in ACCEPTED_RECORD_VERSIONS)


class RecordProtection:
    """AEAD protection of one direction of one epoch.

    GCM (RFC 5288): nonce = implicit IV(4) || explicit nonce(8), the explicit part is
    sent in the record; we use epoch||seq (unique by construction), and read whatever
    the peer sent (OpenSSL uses a random-start counter). ChaCha20-Poly1305 (RFC 7905):
    nonce = IV(12) XOR (0^32 || epoch||seq), nothing explicit on the wire.
    AAD in both cases: epoch||seq(8) || type(1) || version(2) || plaintext length(2).

    One AEAD object per key, built here once: a record costs one ``struct`` pack for
    the AAD, one for the header (with the explicit nonce), the AEAD call and one join.
    """

    __slots__ = ("_chacha", "_decrypt", "_encrypt", "_iv", "_iv_int", "overhead")

    def __init__(self, suite: SuiteInfo, key: bytes, iv: bytes) -> None:
        aead = suite.make_aead(key)
        self._encrypt = aead.encrypt
        self._decrypt = aead.decrypt
        self._chacha = suite.is_chacha
        self._iv = iv
        self._iv_int = int.from_bytes(iv, "big") if self._chacha else 0
        self.overhead = suite.record_overhead

    def seal(self, content_type: int, version: int, epoch_seq: int, plaintext: bytes) -> bytes:
        """The whole protected record, header included (``epoch_seq`` = epoch << 48 | seq)."""
        aad = _AAD.pack(epoch_seq, content_type, version, len(plaintext))
        if self._chacha:
            nonce = (self._iv_int ^ epoch_seq).to_bytes(12, "big")
            sealed = self._encrypt(nonce, plaintext, aad)
            return _HEADER_Q.pack(content_type, version, epoch_seq, len(sealed)) + sealed
        sealed = self._encrypt(self._iv + _U64.pack(epoch_seq), plaintext, aad)
        return (
            _HEADER_EXPLICIT.pack(content_type, version, epoch_seq, len(sealed) + 8, epoch_seq)
            + sealed
        )

    def encrypt(
        self, content_type: int, version: int, epoch: int, seq: int, plaintext: bytes
    ) -> bytes:
        """Return the protected record fragment (explicit nonce || ciphertext || tag)."""
        record = self.seal(content_type, version, (epoch << 48) | seq, plaintext)
        return record[RECORD_HEADER_LENGTH:]

    def open(self, content_type: int, version: int, epoch_seq: int, fragment: bytes) -> bytes:
        """Authenticate and decrypt one record fragment; raises AuthenticationFailed or
        MalformedPacket (too short for its AEAD overhead, or a plaintext over 2^14)."""
        plain_length = len(fragment) - self.overhead
        if plain_length < 0:
            raise MalformedPacket("protected record shorter than its AEAD overhead")
        if plain_length > MAX_PLAINTEXT_LENGTH:
            raise MalformedPacket("record plaintext longer than 2^14")
        aad = _AAD.pack(epoch_seq, content_type, version, plain_length)
        try:
            if self._chacha:
                return self._decrypt((self._iv_int ^ epoch_seq).to_bytes(12, "big"), fragment, aad)
            return self._decrypt(self._iv + fragment[:8], fragment[8:], aad)
        except InvalidTag:
            raise AuthenticationFailed("DTLS record failed authentication") from None

    def decrypt(self, record: Record) -> bytes:
        """Authenticate and decrypt a record; raises AuthenticationFailed or MalformedPacket."""
        return self.open(
            record.content_type,
            record.version,
            (record.epoch << 48) | record.sequence_number,
            record.fragment,
        )
