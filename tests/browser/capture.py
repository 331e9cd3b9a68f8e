"""Sniff DTLS handshakes on ``lo`` and decode ClientHello / ServerHello facts.

Independent of any DTLS implementation under test: an ``AF_PACKET`` socket (root, and
inside our private namespace so it only ever sees our own traffic) copies every UDP
datagram on loopback; handshake fragments are reassembled per flow and the hellos are
decoded with a small stdlib parser. Used to record what Chromium really offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
CONTENT_HANDSHAKE = 22
CLIENT_HELLO = 1
SERVER_HELLO = 2

VERSIONS = {0xFEFF: "DTLS 1.0", 0xFEFD: "DTLS 1.2", 0xFEFC: "DTLS 1.3"}

SUITES = {
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
}

EXTENSIONS = {
    0: "server_name", 5: "status_request", 10: "supported_groups", 11: "ec_point_formats",
    13: "signature_algorithms", 14: "use_srtp", 16: "alpn", 21: "padding",
    22: "encrypt_then_mac", 23: "extended_master_secret", 35: "session_ticket",
    41: "pre_shared_key", 42: "early_data", 43: "supported_versions", 44: "cookie",
    45: "psk_key_exchange_modes", 51: "key_share", 53: "connection_id(old)",
    54: "connection_id", 0xFF01: "renegotiation_info",
}

GROUPS = {23: "secp256r1", 24: "secp384r1", 25: "secp521r1", 29: "x25519", 30: "x448",
          0x11EC: "X25519MLKEM768", 0x6399: "X25519Kyber768Draft00"}

SRTP_PROFILES = {1: "SRTP_AES128_CM_HMAC_SHA1_80", 2: "SRTP_AES128_CM_HMAC_SHA1_32",
                 7: "SRTP_AEAD_AES_128_GCM", 8: "SRTP_AEAD_AES_256_GCM"}

SIG_ALGS = {0x0403: "ecdsa_secp256r1_sha256", 0x0503: "ecdsa_secp384r1_sha384",
            0x0603: "ecdsa_secp521r1_sha512", 0x0804: "rsa_pss_rsae_sha256",
            0x0805: "rsa_pss_rsae_sha384", 0x0806: "rsa_pss_rsae_sha512",
            0x0401: "rsa_pkcs1_sha256", 0x0501: "rsa_pkcs1_sha384",
            0x0601: "rsa_pkcs1_sha512", 0x0201: "rsa_pkcs1_sha1", 0x0203: "ecdsa_sha1",
            0x0807: "ed25519"}


def _name(table: dict[int, str], value: int) -> str:
    return table.get(value, f"0x{value:04x}")


class _Reader:
    """Bounds-checked cursor: a short buffer raises ValueError, never IndexError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos: self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.uint(length_bytes))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _u16_list(data: bytes) -> list[int]:
    return [int.from_bytes(data[i: i + 2], "big") for i in range(0, len(data) - 1, 2)]


def _decode_extensions(raw: bytes, hello: dict[str, Any]) -> None:
    reader = _Reader(raw)
    names: list[str] = []
    while reader.left:
        ext_type = reader.uint(2)
        body = reader.vector(2)
        names.append(_name(EXTENSIONS, ext_type))
        inner = _Reader(body)
        if ext_type == 43:
            if hello["msg"] == "ClientHello":
                versions = _u16_list(inner.vector(1))
            else:
                versions = [inner.uint(2)]
            hello["supported_versions"] = [_name(VERSIONS, v) for v in versions]
        elif ext_type == 14:
            hello["use_srtp"] = [_name(SRTP_PROFILES, p) for p in _u16_list(inner.vector(2))]
            hello["srtp_mki_length"] = len(inner.vector(1))
        elif ext_type == 10:
            hello["supported_groups"] = [_name(GROUPS, g) for g in _u16_list(inner.vector(2))]
        elif ext_type == 13:
            hello["signature_algorithms"] = [
                _name(SIG_ALGS, a) for a in _u16_list(inner.vector(2))]
        elif ext_type == 51 and hello["msg"] == "ClientHello":
            shares = _Reader(inner.vector(2))
            found = []
            while shares.left:
                group = shares.uint(2)
                found.append(f"{_name(GROUPS, group)}({len(shares.vector(2))}B)")
            hello["key_shares"] = found
        elif ext_type == 11:
            hello["ec_point_formats"] = list(inner.vector(1))
    hello["extensions"] = names


def parse_hello(msg_type: int, body: bytes) -> dict[str, Any]:
    """Decode a whole ClientHello or ServerHello body (DTLS framing already removed)."""
    reader = _Reader(body)
    hello: dict[str, Any] = {"msg": "ClientHello" if msg_type == CLIENT_HELLO else "ServerHello",
                             "length": len(body)}
    hello["legacy_version"] = _name(VERSIONS, reader.uint(2))
    reader.take(32)
    hello["session_id_length"] = len(reader.vector(1))
    if msg_type == CLIENT_HELLO:
        hello["cookie_length"] = len(reader.vector(1))
        hello["cipher_suites"] = [_name(SUITES, s) for s in _u16_list(reader.vector(2))]
        hello["compression_methods"] = list(reader.vector(1))
    else:
        hello["cipher_suite"] = _name(SUITES, reader.uint(2))
        hello["compression_method"] = reader.uint(1)
    if reader.left:
        _decode_extensions(reader.vector(2), hello)
    return hello


@dataclass
class _Fragments:
    total: int
    parts: dict[int, bytes] = field(default_factory=dict)
    records: int = 0
    datagrams: dict[int, bytes] = field(default_factory=dict)

    def complete(self) -> bytes | None:
        data = bytearray(self.total)
        covered = 0
        for offset, chunk in sorted(self.parts.items()):
            if offset > covered:
                return None
            data[offset: offset + len(chunk)] = chunk
            covered = max(covered, offset + len(chunk))
        return bytes(data) if covered >= self.total else None


@dataclass
class HandshakeSniffer:
    """Collects every ClientHello and ServerHello crossing ``lo`` while running."""

    hellos: list[dict[str, Any]] = field(default_factory=list)
    datagrams: int = 0
    _sock: socket.socket | None = None
    _partial: dict[tuple[Any, ...], _Fragments] = field(default_factory=dict)
    _done: set[tuple[Any, ...]] = field(default_factory=set)

    def start(self) -> HandshakeSniffer:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind(("lo", 0))
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        return self

    def stop(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                frame, addr = self._sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == PACKET_OUTGOING:
                continue  # loopback shows each packet twice; keep the incoming copy
            with contextlib.suppress(ValueError):
                self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        ip = frame[14:]
        if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == 17:
            header = (ip[0] & 0x0F) * 4
            src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
            udp = ip[header:]
        elif ethertype == 0x86DD and len(ip) >= 40 and ip[6] == 17:
            src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
            dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
            udp = ip[40:]
        else:
            return
        if len(udp) < 8:
            return
        sport, dport = struct.unpack_from("!HH", udp)
        payload = udp[8:]
        self.feed(payload, (src, sport, dst, dport))

    def feed(self, payload: bytes, flow: tuple[Any, ...] = ("?", 0, "?", 0)) -> None:
        """Decode one UDP payload as if it had been sniffed (replays saved captures)."""
        if payload[:1] == bytes([CONTENT_HANDSHAKE]):
            self.datagrams += 1
            self._records(flow, payload)

    def _records(self, flow: tuple[Any, ...], payload: bytes) -> None:
        reader = _Reader(payload)
        while reader.left >= 13:
            content_type = reader.uint(1)
            reader.take(2)
            epoch = reader.uint(2)
            reader.take(6)
            fragment = reader.vector(2)
            if content_type != CONTENT_HANDSHAKE or epoch != 0:
                continue
            msg = _Reader(fragment)
            msg_type = msg.uint(1)
            total = msg.uint(3)
            message_seq = msg.uint(2)
            offset = msg.uint(3)
            chunk = msg.vector(3)
            if msg_type not in (CLIENT_HELLO, SERVER_HELLO):
                continue
            key = (*flow, msg_type, message_seq)
            if key in self._done:
                continue  # a retransmission of a hello we already decoded
            parts = self._partial.setdefault(key, _Fragments(total))
            parts.parts[offset] = chunk
            parts.records += 1
            parts.datagrams[self.datagrams] = payload
            body = parts.complete()
            if body is not None:
                del self._partial[key]
                self._done.add(key)
                hello = parse_hello(msg_type, body)
                hello.update(src=f"{flow[0]}:{flow[1]}", dst=f"{flow[2]}:{flow[3]}",
                             message_seq=message_seq, records=parts.records,
                             datagrams=len(parts.datagrams),
                             raw_datagrams=[d.hex() for d in parts.datagrams.values()])
                self.hellos.append(hello)

    def client_hellos(self) -> list[dict[str, Any]]:
        return [h for h in self.hellos if h["msg"] == "ClientHello"]

    def server_hellos(self) -> list[dict[str, Any]]:
        return [h for h in self.hellos if h["msg"] == "ServerHello"]
