"""Byte-exact ClientHellos shaped like the ones today's browsers send, plus just enough
record/handshake parsing to read what a server answers.

Observed Chromium 156 / Firefox ESR 153 behaviour reproduced here:

* record version 0xfeff on the first flight, client_version 0xfefd, and
  supported_versions offering DTLS 1.3 (0xfefc) and 1.2 (0xfefd);
* TLS 1.3 suites first, then ECDHE-ECDSA/RSA AES-GCM and ChaCha20 suites (and a few
  legacy CBC ones);
* key_share with a 1216-octet X25519MLKEM768 (0x11ec) share next to an x25519 share, so
  the hello no longer fits one datagram: it is sent as one handshake message split into
  two fragments in two datagrams (about 1175 + the rest);
* extension order shuffled per connection (seeded here), an empty cookie on the first
  hello, the same hello with the server's cookie on the second.

A DTLS 1.2 server must ignore what it does not speak (1.3 versions and suites, key_share,
delegated_credentials, record_size_limit, psk modes) and answer with a 1.2 ServerHello.
``pion_hello_datagrams`` gives the variant with record version 0xfefd that pion uses.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass

# --- constants ------------------------------------------------------------------------

DTLS_1_0 = 0xFEFF
DTLS_1_2 = 0xFEFD
DTLS_1_3 = 0xFEFC

CONTENT_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
HANDSHAKE_HELLO_VERIFY_REQUEST = 3

X25519MLKEM768 = 0x11EC
X25519 = 0x001D
SECP256R1 = 0x0017
SECP384R1 = 0x0018
X25519MLKEM768_SHARE_LENGTH = 1216  # ML-KEM-768 encapsulation key (1184) + X25519 (32)

BROWSER_CIPHER_SUITES: tuple[int, ...] = (
    0x1301,  # TLS_AES_128_GCM_SHA256
    0x1302,  # TLS_AES_256_GCM_SHA384
    0x1303,  # TLS_CHACHA20_POLY1305_SHA256
    0xC02B,  # ECDHE-ECDSA-AES128-GCM-SHA256
    0xC02F,  # ECDHE-RSA-AES128-GCM-SHA256
    0xCCA9,  # ECDHE-ECDSA-CHACHA20-POLY1305
    0xCCA8,  # ECDHE-RSA-CHACHA20-POLY1305
    0xC02C,  # ECDHE-ECDSA-AES256-GCM-SHA384
    0xC030,  # ECDHE-RSA-AES256-GCM-SHA384
    0xC009,  # ECDHE-ECDSA-AES128-SHA
    0xC013,  # ECDHE-RSA-AES128-SHA
    0xC00A,  # ECDHE-ECDSA-AES256-SHA
    0xC014,  # ECDHE-RSA-AES256-SHA
)
BROWSER_GROUPS: tuple[int, ...] = (X25519MLKEM768, X25519, SECP256R1, SECP384R1)
BROWSER_SIGNATURE_SCHEMES: tuple[int, ...] = (
    0x0403,  # ecdsa_secp256r1_sha256
    0x0804,  # rsa_pss_rsae_sha256
    0x0401,  # rsa_pkcs1_sha256
    0x0503,  # ecdsa_secp384r1_sha384
    0x0805,  # rsa_pss_rsae_sha384
    0x0501,  # rsa_pkcs1_sha384
    0x0806,  # rsa_pss_rsae_sha512
    0x0601,  # rsa_pkcs1_sha512
    0x0201,  # rsa_pkcs1_sha1
)
BROWSER_SRTP_PROFILES: tuple[int, ...] = (0x0007, 0x0008, 0x0001, 0x0002)
BROWSER_ALPN: tuple[bytes, ...] = (b"webrtc", b"c-webrtc")


class ExtensionType:
    """The extension ids this module writes (IANA TLS ExtensionType values)."""

    SUPPORTED_GROUPS = 10
    EC_POINT_FORMATS = 11
    SIGNATURE_ALGORITHMS = 13
    USE_SRTP = 14
    ALPN = 16
    EXTENDED_MASTER_SECRET = 23
    RECORD_SIZE_LIMIT = 28
    DELEGATED_CREDENTIALS = 34
    SESSION_TICKET = 35
    SUPPORTED_VERSIONS = 43
    PSK_KEY_EXCHANGE_MODES = 45
    KEY_SHARE = 51
    RENEGOTIATION_INFO = 0xFF01


# --- building -------------------------------------------------------------------------


def _u8_prefixed(data: bytes) -> bytes:
    return struct.pack("!B", len(data)) + data


def _u16_prefixed(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _u16_list(values: Sequence[int]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def _extension(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


@dataclass(frozen=True)
class HelloParams:
    """Everything that shapes one browser-like ClientHello; two hellos built from equal
    params (except ``cookie``) share random, shares and extension order, as RFC 6347
    requires of the hello that answers a HelloVerifyRequest."""

    seed: int = 0
    cipher_suites: tuple[int, ...] = BROWSER_CIPHER_SUITES
    groups: tuple[int, ...] = BROWSER_GROUPS
    signature_schemes: tuple[int, ...] = BROWSER_SIGNATURE_SCHEMES
    srtp_profiles: tuple[int, ...] = BROWSER_SRTP_PROFILES
    alpn: tuple[bytes, ...] = BROWSER_ALPN
    offer_dtls13: bool = True
    shuffle_extensions: bool = True


def browser_extensions(params: HelloParams) -> list[tuple[int, bytes]]:
    """The (type, body) extension list in wire order (shuffled with ``params.seed``)."""
    rng = random.Random(params.seed)
    mlkem_share = rng.randbytes(X25519MLKEM768_SHARE_LENGTH)
    x25519_share = rng.randbytes(32)
    versions = (DTLS_1_3, DTLS_1_2) if params.offer_dtls13 else (DTLS_1_2,)
    key_shares = b""
    if X25519MLKEM768 in params.groups:
        key_shares += struct.pack("!H", X25519MLKEM768) + _u16_prefixed(mlkem_share)
    key_shares += struct.pack("!H", X25519) + _u16_prefixed(x25519_share)
    extensions: list[tuple[int, bytes]] = [
        (ExtensionType.SUPPORTED_VERSIONS, _u8_prefixed(_u16_list(versions))),
        (ExtensionType.KEY_SHARE, _u16_prefixed(key_shares)),
        (ExtensionType.SUPPORTED_GROUPS, _u16_prefixed(_u16_list(params.groups))),
        (
            ExtensionType.ALPN,
            _u16_prefixed(b"".join(_u8_prefixed(p) for p in params.alpn)),
        ),
        (ExtensionType.RECORD_SIZE_LIMIT, struct.pack("!H", 0x4001)),
        (
            ExtensionType.DELEGATED_CREDENTIALS,
            _u16_prefixed(_u16_list((0x0403, 0x0503, 0x0603, 0x0203))),
        ),
        (
            ExtensionType.SIGNATURE_ALGORITHMS,
            _u16_prefixed(_u16_list(params.signature_schemes)),
        ),
        (
            ExtensionType.USE_SRTP,
            _u16_prefixed(_u16_list(params.srtp_profiles)) + b"\x00",  # empty MKI
        ),
        (ExtensionType.EXTENDED_MASTER_SECRET, b""),
        (ExtensionType.RENEGOTIATION_INFO, b"\x00"),
        (ExtensionType.EC_POINT_FORMATS, _u8_prefixed(b"\x00")),  # uncompressed
        (ExtensionType.SESSION_TICKET, b""),
        (ExtensionType.PSK_KEY_EXCHANGE_MODES, _u8_prefixed(b"\x01")),  # psk_dhe_ke
    ]
    if not params.offer_dtls13:
        drop = {
            ExtensionType.SUPPORTED_VERSIONS,
            ExtensionType.KEY_SHARE,
            ExtensionType.PSK_KEY_EXCHANGE_MODES,
        }
        extensions = [e for e in extensions if e[0] not in drop]
    if params.shuffle_extensions:
        rng.shuffle(extensions)
    return extensions


def client_hello_body(params: HelloParams = HelloParams(), cookie: bytes = b"") -> bytes:
    """The ClientHello handshake body (without the 12-octet DTLS handshake header)."""
    rng = random.Random(params.seed ^ 0x5EED)
    client_random = rng.randbytes(32)
    extensions = b"".join(_extension(t, b) for t, b in browser_extensions(params))
    return (
        struct.pack("!H", DTLS_1_2)
        + client_random
        + _u8_prefixed(b"")  # session_id: browsers send none in DTLS
        + _u8_prefixed(cookie)
        + _u16_prefixed(_u16_list(params.cipher_suites))
        + _u8_prefixed(b"\x00")  # compression: null only
        + _u16_prefixed(extensions)
    )


def handshake_fragment(
    msg_type: int, message_seq: int, body: bytes, offset: int, length: int
) -> bytes:
    """One DTLS handshake fragment: 12-octet header + ``body[offset:offset+length]``."""
    return (
        struct.pack("!B", msg_type)
        + len(body).to_bytes(3, "big")
        + struct.pack("!H", message_seq)
        + offset.to_bytes(3, "big")
        + length.to_bytes(3, "big")
        + body[offset : offset + length]
    )


def record(content_type: int, version: int, epoch: int, seq: int, fragment: bytes) -> bytes:
    """One plaintext DTLS record."""
    return (
        struct.pack("!BHH", content_type, version, epoch)
        + seq.to_bytes(6, "big")
        + struct.pack("!H", len(fragment))
        + fragment
    )


RECORD_AND_HANDSHAKE_HEADERS = 13 + 12


def browser_hello_datagrams(
    *,
    seed: int = 0,
    cookie: bytes = b"",
    record_version: int = DTLS_1_0,
    message_seq: int | None = None,
    record_seq: int | None = None,
    first_datagram_size: int = 1175,
    params: HelloParams | None = None,
) -> list[bytes]:
    """The ClientHello as browsers send it: one handshake message in two fragments, each
    in its own record and datagram, the first datagram ``first_datagram_size`` octets.

    With a ``cookie`` this is the second hello: ``message_seq`` defaults to 1 and record
    sequence numbers continue after the first hello's two records.
    """
    params = params or HelloParams(seed=seed)
    body = client_hello_body(params, cookie)
    if message_seq is None:
        message_seq = 1 if cookie else 0
    if record_seq is None:
        record_seq = 2 if cookie else 0
    first = min(len(body), first_datagram_size - RECORD_AND_HANDSHAKE_HEADERS)
    pieces = [(0, first)]
    if first < len(body):
        pieces.append((first, len(body) - first))
    return [
        record(
            CONTENT_HANDSHAKE,
            record_version,
            0,
            record_seq + i,
            handshake_fragment(HANDSHAKE_CLIENT_HELLO, message_seq, body, off, length),
        )
        for i, (off, length) in enumerate(pieces)
    ]


def chromium_hello_datagrams(seed: int = 0, cookie: bytes = b"") -> list[bytes]:
    """Chromium/Firefox-shaped hello (record version 0xfeff), first or second flight."""
    return browser_hello_datagrams(seed=seed, cookie=cookie)


def pion_hello_datagrams(seed: int = 0, cookie: bytes = b"") -> list[bytes]:
    """The same hello with record version 0xfefd, as pion sends its first flight."""
    return browser_hello_datagrams(seed=seed, cookie=cookie, record_version=DTLS_1_2)


# --- reading a server's answer ----------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One DTLS record as seen on the wire (fragment still protected past epoch 0)."""

    content_type: int
    version: int
    epoch: int
    sequence: int
    fragment: bytes


@dataclass(frozen=True)
class HandshakeFragment:
    """One plaintext (epoch 0) handshake fragment."""

    msg_type: int
    length: int
    message_seq: int
    fragment_offset: int
    body: bytes


def parse_records(datagram: bytes) -> list[Record]:
    """Split a datagram into records; raises ValueError on a truncated record."""
    records: list[Record] = []
    pos = 0
    while pos < len(datagram):
        if len(datagram) - pos < 13:
            raise ValueError("truncated DTLS record header")
        content_type, version, epoch = struct.unpack_from("!BHH", datagram, pos)
        sequence = int.from_bytes(datagram[pos + 5 : pos + 11], "big")
        (length,) = struct.unpack_from("!H", datagram, pos + 11)
        end = pos + 13 + length
        if end > len(datagram):
            raise ValueError("truncated DTLS record body")
        records.append(Record(content_type, version, epoch, sequence, datagram[pos + 13 : end]))
        pos = end
    return records


def parse_handshake_fragments(fragment: bytes) -> list[HandshakeFragment]:
    """Split a plaintext handshake record's fragment into handshake fragments."""
    out: list[HandshakeFragment] = []
    pos = 0
    while pos < len(fragment):
        if len(fragment) - pos < 12:
            raise ValueError("truncated DTLS handshake header")
        msg_type = fragment[pos]
        length = int.from_bytes(fragment[pos + 1 : pos + 4], "big")
        (message_seq,) = struct.unpack_from("!H", fragment, pos + 4)
        offset = int.from_bytes(fragment[pos + 6 : pos + 9], "big")
        frag_len = int.from_bytes(fragment[pos + 9 : pos + 12], "big")
        end = pos + 12 + frag_len
        if end > len(fragment):
            raise ValueError("truncated DTLS handshake fragment")
        out.append(
            HandshakeFragment(msg_type, length, message_seq, offset, fragment[pos + 12 : end])
        )
        pos = end
    return out


def epoch0_handshakes(datagrams: Sequence[bytes]) -> list[HandshakeFragment]:
    """Every plaintext handshake fragment in a server's answer, in order."""
    return [
        hs
        for datagram in datagrams
        for rec in parse_records(datagram)
        if rec.content_type == CONTENT_HANDSHAKE and rec.epoch == 0
        for hs in parse_handshake_fragments(rec.fragment)
    ]


def hello_verify_cookie(datagrams: Sequence[bytes]) -> bytes:
    """The cookie of the HelloVerifyRequest among ``datagrams`` (ValueError if none)."""
    for hs in epoch0_handshakes(datagrams):
        if hs.msg_type == HANDSHAKE_HELLO_VERIFY_REQUEST:
            # server_version(2) | cookie<0..255>
            return hs.body[3 : 3 + hs.body[2]]
    raise ValueError("no HelloVerifyRequest in the server's answer")


@dataclass(frozen=True)
class ServerHelloInfo:
    """The fields of a ServerHello a hello-shape test cares about."""

    record_version: int
    server_version: int
    cipher_suite: int
    extensions: dict[int, bytes]


def parse_server_hello(datagrams: Sequence[bytes]) -> ServerHelloInfo:
    """Find and decode the (unfragmented) ServerHello among ``datagrams``."""
    for datagram in datagrams:
        for rec in parse_records(datagram):
            if rec.content_type != CONTENT_HANDSHAKE or rec.epoch != 0:
                continue
            for hs in parse_handshake_fragments(rec.fragment):
                if hs.msg_type != HANDSHAKE_SERVER_HELLO:
                    continue
                body = hs.body
                (server_version,) = struct.unpack_from("!H", body, 0)
                sid_len = body[34]
                pos = 35 + sid_len
                (suite,) = struct.unpack_from("!H", body, pos)
                pos += 3  # suite + compression method
                extensions: dict[int, bytes] = {}
                if pos < len(body):
                    (total,) = struct.unpack_from("!H", body, pos)
                    pos += 2
                    end = pos + total
                    while pos < end:
                        ext_type, ext_len = struct.unpack_from("!HH", body, pos)
                        extensions[ext_type] = body[pos + 4 : pos + 4 + ext_len]
                        pos += 4 + ext_len
                return ServerHelloInfo(rec.version, server_version, suite, extensions)
    raise ValueError("no ServerHello in the server's answer")
