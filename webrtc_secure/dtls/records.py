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
    return _HEADER.pack(content_type, version, epoch, seq >> 32, seq & 0xFFFFFFFF, length)


def parse_records(datagram: bytes) -> tuple[list[Record], bool]:
    """Split a datagram into records.

    Returns the records that parsed and whether the datagram was entirely well formed.
    Records of unknown content type or version are skipped (their length is still
    honoured so the following records are found).
    """
    records: list[Record] = []
    offset = 0
    end = len(datagram)
    clean = True
    while offset < end:
        if end - offset < RECORD_HEADER_LENGTH:
            return records, False
        ctype, version, epoch, seq_hi, seq_lo, length = _HEADER.unpack_from(datagram, offset)
        offset += RECORD_HEADER_LENGTH
        if length > end - offset or length > MAX_CIPHERTEXT_LENGTH:
            return records, False
        fragment = datagram[offset : offset + length]
        offset += length
        if ctype not in _CONTENT_TYPES or version not in ACCEPTED_RECORD_VERSIONS:
            clean = False
            continue
        records.append(Record(ctype, version, epoch, (seq_hi << 32) | seq_lo, fragment))
    return records, clean


_CONTENT_TYPES = frozenset(int(c) for c in ContentType)


class RecordProtection:
    """AEAD protection of one direction of one epoch.

    GCM (RFC 5288): nonce = implicit IV(4) || explicit nonce(8), the explicit part is
    sent in the record; we use epoch||seq (unique by construction), and read whatever
    the peer sent (OpenSSL uses a random-start counter). ChaCha20-Poly1305 (RFC 7905):
    nonce = IV(12) XOR (0^32 || epoch||seq), nothing explicit on the wire.
    AAD in both cases: epoch||seq(8) || type(1) || version(2) || plaintext length(2).
    """

    __slots__ = ("_aead", "_chacha", "_iv", "_iv_int", "overhead")

    def __init__(self, suite: SuiteInfo, key: bytes, iv: bytes) -> None:
        self._aead = suite.make_aead(key)
        self._chacha = suite.is_chacha
        self._iv = iv
        self._iv_int = int.from_bytes(iv, "big")
        self.overhead = suite.record_overhead

    def _nonce(self, epoch_seq: int, explicit: bytes) -> bytes:
        if self._chacha:
            return (self._iv_int ^ epoch_seq).to_bytes(12, "big")
        return self._iv + explicit

    def encrypt(
        self, content_type: int, version: int, epoch: int, seq: int, plaintext: bytes
    ) -> bytes:
        """Return the protected record fragment (explicit nonce || ciphertext || tag)."""
        epoch_seq = (epoch << 48) | seq
        seq_bytes = epoch_seq.to_bytes(8, "big")
        aad = seq_bytes + struct.pack("!BHH", content_type, version, len(plaintext))
        explicit = b"" if self._chacha else seq_bytes
        return explicit + self._aead.encrypt(self._nonce(epoch_seq, explicit), plaintext, aad)

    def decrypt(self, record: Record) -> bytes:
        """Authenticate and decrypt a record; raises AuthenticationFailed or MalformedPacket."""
        fragment = record.fragment
        explicit_length = 0 if self._chacha else 8
        plain_length = len(fragment) - self.overhead
        if plain_length < 0:
            raise MalformedPacket("protected record shorter than its AEAD overhead")
        if plain_length > MAX_PLAINTEXT_LENGTH:
            raise MalformedPacket("record plaintext longer than 2^14")
        epoch_seq = (record.epoch << 48) | record.sequence_number
        explicit = fragment[:explicit_length]
        aad = epoch_seq.to_bytes(8, "big") + struct.pack(
            "!BHH", record.content_type, record.version, plain_length
        )
        try:
            return self._aead.decrypt(
                self._nonce(epoch_seq, explicit), fragment[explicit_length:], aad
            )
        except InvalidTag:
            raise AuthenticationFailed("DTLS record failed authentication") from None
