"""What SCTP really put on the wire: capture DTLS on ``lo``, decrypt it, list the chunks.

Independent of every stack under test. :class:`DtlsCapture` copies each UDP datagram
on loopback (an ``AF_PACKET`` socket, root, inside the test's private namespace, so it
sees only the test's own traffic). :func:`decode_sctp` then takes the NSS key log one
end wrote (``CLIENT_RANDOM <client random> <master secret>``: ours through
``SSLKEYLOGFILE``, aiortc's through :func:`tests.browser.aiortc_datachannel.aiortc_keylog`),
finds each DTLS 1.2 session's ClientHello/ServerHello in the capture, derives the record
keys (RFC 5246 5 and 6.3, RFC 5288 for AES-GCM, RFC 7905 for ChaCha20-Poly1305),
opens every application-data record in both directions and lists the SCTP chunks
inside (RFC 9260 3). AEAD tags are checked, so a wrong key or a misparsed record
fails loudly instead of producing plausible chunks.

Used to show that with SNAP (``a=sctp-init``) the association comes up with no
INIT/INIT-ACK/COOKIE exchange, and, as the baseline, that without it there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
CONTENT_HANDSHAKE = 22
CONTENT_APPLICATION_DATA = 23

CHUNK_NAMES = {
    0: "DATA", 1: "INIT", 2: "INIT_ACK", 3: "SACK", 4: "HEARTBEAT", 5: "HEARTBEAT_ACK",
    6: "ABORT", 7: "SHUTDOWN", 8: "SHUTDOWN_ACK", 9: "ERROR", 10: "COOKIE_ECHO",
    11: "COOKIE_ACK", 14: "SHUTDOWN_COMPLETE", 15: "AUTH", 64: "I_DATA", 128: "ASCONF_ACK",
    130: "RE_CONFIG", 132: "PAD", 192: "FORWARD_TSN", 193: "ASCONF", 194: "I_FORWARD_TSN",
}
HANDSHAKE_CHUNKS = ("INIT", "INIT_ACK", "COOKIE_ECHO", "COOKIE_ACK")
#: DATA/I-DATA payload protocol identifiers (RFC 8831 8)
PPID_NAMES = {50: "DCEP", 51: "string", 53: "binary", 56: "empty-string", 57: "empty-binary"}
#: suite id -> (AEAD, key length, fixed IV length, PRF hash)
SUITES: dict[int, tuple[str, int, int, str]] = {
    0xC02B: ("gcm", 16, 4, "sha256"), 0xC02F: ("gcm", 16, 4, "sha256"),
    0xC02C: ("gcm", 32, 4, "sha384"), 0xC030: ("gcm", 32, 4, "sha384"),
    0xCCA9: ("chacha", 32, 12, "sha256"), 0xCCA8: ("chacha", 32, 12, "sha256"),
}


class WireDecodeError(AssertionError):
    """The capture could not be decrypted or decoded as claimed."""


@dataclass
class Datagram:
    at: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


@dataclass
class DtlsCapture:
    """Every UDP datagram crossing ``lo`` while running (call inside the namespace)."""

    datagrams: list[Datagram] = field(default_factory=list)
    _sock: socket.socket | None = None

    def start(self) -> DtlsCapture:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind(("lo", 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._readable()
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def __enter__(self) -> DtlsCapture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                frame, addr = self._sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == PACKET_OUTGOING:
                continue  # loopback shows each packet twice; keep the incoming copy
            with contextlib.suppress(ValueError, struct.error, OSError):
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
        if len(udp) < 9:
            return
        sport, dport = struct.unpack_from("!HH", udp)
        payload = udp[8:]
        # DTLS (RFC 7983 first byte, then a DTLS 1.0/1.2 record version); not DNS etc.
        if 20 <= payload[0] <= 25 and payload[1:3] in (b"\xfe\xfd", b"\xfe\xff"):
            self.datagrams.append(Datagram(time.monotonic(), (src, sport), (dst, dport), payload))


def read_keylog(path: Path) -> dict[bytes, bytes]:
    """client random -> master secret from NSS ``CLIENT_RANDOM`` lines."""
    secrets: dict[bytes, bytes] = {}
    if not path.exists():
        return secrets
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "CLIENT_RANDOM":
            secrets[bytes.fromhex(parts[1])] = bytes.fromhex(parts[2])
    return secrets


def prf(secret: bytes, label: bytes, seed: bytes, length: int, digest: str) -> bytes:
    """TLS 1.2 P_hash (RFC 5246 5)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.digest(secret, a, digest)
        out += hmac.digest(secret, a + seed, digest)
    return out[:length]


def _records(payload: bytes) -> list[tuple[int, int, int, bytes, bytes]]:
    """(type, epoch, sequence, header, fragment) of each record in one datagram."""
    out, offset = [], 0
    while offset + 13 <= len(payload):
        ctype, _version, epoch, seq_hi, seq_lo, length = struct.unpack_from(
            "!BHHHIH", payload, offset)
        header = payload[offset: offset + 13]
        fragment = payload[offset + 13: offset + 13 + length]
        if len(fragment) != length:
            raise WireDecodeError(f"truncated DTLS record in {payload[:16].hex()}...")
        out.append((ctype, epoch, (seq_hi << 32) | seq_lo, header, fragment))
        offset += 13 + length
    return out


@dataclass
class _Hello:
    random: bytes
    suite: int | None
    src: tuple[str, int]
    dst: tuple[str, int]


def _hellos(datagrams: list[Datagram]) -> tuple[list[_Hello], list[_Hello]]:
    """ClientHellos and ServerHellos (first fragment carries the random and the suite)."""
    clients: list[_Hello] = []
    servers: list[_Hello] = []
    for d in datagrams:
        for ctype, epoch, _, _, fragment in _records(d.payload):
            if ctype != CONTENT_HANDSHAKE or epoch != 0 or len(fragment) < 12 + 2 + 32:
                continue
            msg_type = fragment[0]
            offset = struct.unpack_from("!I", b"\0" + fragment[6:9])[0]
            if offset != 0 or msg_type not in (1, 2):
                continue
            body = fragment[12:]
            random = body[2:34]
            if msg_type == 1:
                clients.append(_Hello(random, None, d.src, d.dst))
            else:
                sid_len = body[34]
                suite = struct.unpack_from("!H", body, 35 + sid_len)[0]
                servers.append(_Hello(random, suite, d.src, d.dst))
    return clients, servers


@dataclass
class SctpPacket:
    at: float
    sender: str  # "client" or "server" (DTLS roles)
    zero_checksum: bool
    verification_tag: int
    chunks: list[dict[str, Any]]


@dataclass
class SctpTrace:
    """Every SCTP packet of one DTLS session, in capture order."""

    client: tuple[str, int]
    server: tuple[str, int]
    suite: int
    packets: list[SctpPacket]
    undecryptable: int = 0

    def chunk_names(self, sender: str | None = None) -> list[str]:
        return [c["type"] for p in self.packets if sender in (None, p.sender)
                for c in p.chunks]

    def counts(self, sender: str | None = None) -> Counter[str]:
        return Counter(self.chunk_names(sender))

    def handshake_chunks(self) -> list[tuple[str, str]]:
        """(sender, chunk) of every INIT, INIT-ACK, COOKIE-ECHO and COOKIE-ACK."""
        return [(p.sender, c["type"]) for p in self.packets for c in p.chunks
                if c["type"] in HANDSHAKE_CHUNKS]

    def data_messages(self, sender: str) -> Counter[str]:
        """DATA / I-DATA first fragments by payload protocol (DCEP, string, binary...)."""
        return Counter(c["ppid"] for p in self.packets if p.sender == sender
                       for c in p.chunks if c.get("ppid") is not None)

    def retransmitted(self, sender: str) -> int:
        """DATA / I-DATA chunks whose TSN this sender had already put on the wire."""
        seen: set[int] = set()
        again = 0
        for p in self.packets:
            if p.sender != sender:
                continue
            for c in p.chunks:
                if "tsn" in c:
                    again += c["tsn"] in seen
                    seen.add(c["tsn"])
        return again

    def retransmitted_by_stream(self, sender: str) -> Counter[int]:
        """:meth:`retransmitted`, per stream id."""
        seen: set[int] = set()
        again: Counter[int] = Counter()
        for p in self.packets:
            if p.sender != sender:
                continue
            for c in p.chunks:
                if "tsn" in c:
                    if c["tsn"] in seen:
                        again[c["stream"]] += 1
                    seen.add(c["tsn"])
        return again

    def sack_facts(self, sender: str) -> dict[str, int]:
        """How the SACKs this sender wrote look: gap reports, duplicate reports, smallest
        advertised window."""
        sacks = [c for p in self.packets if p.sender == sender for c in p.chunks
                 if c["type"] == "SACK"]
        return {
            "sacks": len(sacks),
            "with_gaps": sum(1 for c in sacks if c.get("gap_blocks")),
            "duplicates_reported": sum(c.get("duplicates", 0) for c in sacks),
            "min_a_rwnd": min((c["a_rwnd"] for c in sacks if "a_rwnd" in c), default=0),
        }

    def summary(self) -> dict[str, Any]:
        first = [f"{p.sender}:{'+'.join(c['type'] for c in p.chunks)}"
                 for p in self.packets[:8]]
        return {
            "client": f"{self.client[0]}:{self.client[1]}",
            "server": f"{self.server[0]}:{self.server[1]}",
            "suite": f"0x{self.suite:04x}",
            "packets": len(self.packets),
            "first_packets": first,
            "handshake_chunks": self.handshake_chunks(),
            "client_chunks": dict(self.counts("client")),
            "server_chunks": dict(self.counts("server")),
            "retransmitted_data": {side: self.retransmitted(side)
                                   for side in ("client", "server")},
            "retransmitted_by_stream": {side: dict(self.retransmitted_by_stream(side))
                                        for side in ("client", "server")},
            "forward_tsn": {side: self.counts(side).get("FORWARD_TSN", 0)
                            + self.counts(side).get("I_FORWARD_TSN", 0)
                            for side in ("client", "server")},
            "sacks": {side: self.sack_facts(side) for side in ("client", "server")},
            "zero_checksum_packets": sum(p.zero_checksum for p in self.packets),
            "undecryptable": self.undecryptable,
        }


def parse_chunks(data: bytes) -> tuple[int, bool, list[dict[str, Any]]]:
    """(verification tag, checksum field is zero, chunks) of one SCTP packet."""
    if len(data) < 12:
        raise WireDecodeError(f"SCTP packet of {len(data)} bytes")
    _sport, _dport, vtag, checksum = struct.unpack_from("!HHII", data)
    chunks: list[dict[str, Any]] = []
    offset = 12
    while offset + 4 <= len(data):
        ctype, flags, length = struct.unpack_from("!BBH", data, offset)
        if length < 4 or offset + length > len(data):
            raise WireDecodeError(f"bad chunk length {length} at {offset}")
        body = data[offset + 4: offset + length]
        chunk: dict[str, Any] = {"type": CHUNK_NAMES.get(ctype, f"0x{ctype:02x}"),
                                 "flags": flags, "length": length}
        if ctype == 0 and len(body) >= 12:  # DATA: tsn, stream, ssn, ppid
            tsn, stream, _ssn, ppid = struct.unpack_from("!IHHI", body)
            chunk.update(tsn=tsn, stream=stream, unordered=bool(flags & 4))
            if flags & 2:  # B bit: count each message once, by its first fragment
                chunk["ppid"] = PPID_NAMES.get(ppid, str(ppid))
        elif ctype == 64 and len(body) >= 16:  # I-DATA: tsn, stream, reserved, mid, ppid/fsn
            tsn, stream, _res, _mid, ppid_fsn = struct.unpack_from("!IHHII", body)
            chunk.update(tsn=tsn, stream=stream, unordered=bool(flags & 4))
            if flags & 2:  # B bit: the first fragment carries the PPID
                chunk["ppid"] = PPID_NAMES.get(ppid_fsn, str(ppid_fsn))
        elif ctype == 3 and len(body) >= 12:  # SACK: cumulative TSN, a_rwnd, gaps, dups
            cum, rwnd, gaps, dups = struct.unpack_from("!IIHH", body)
            chunk.update(cumulative_tsn=cum, a_rwnd=rwnd, gap_blocks=gaps, duplicates=dups)
        elif ctype in (192, 194) and len(body) >= 4:  # FORWARD-TSN, I-FORWARD-TSN
            chunk["new_cumulative_tsn"] = struct.unpack_from("!I", body)[0]
            chunk["entries"] = (len(body) - 4) // (4 if ctype == 192 else 8)
        elif ctype == 130:
            params, p = [], 0
            while p + 4 <= len(body):
                ptype, plen = struct.unpack_from("!HH", body, p)
                params.append(ptype)
                p += max(4, (plen + 3) & ~3)
            chunk["parameters"] = params
        chunks.append(chunk)
        offset += (length + 3) & ~3
    return vtag, checksum == 0, chunks


def decode_sctp(datagrams: list[Datagram], keylog: Path) -> list[SctpTrace]:
    """One :class:`SctpTrace` per DTLS session whose master secret ``keylog`` holds."""
    secrets = read_keylog(keylog)
    clients, servers = _hellos(datagrams)
    traces: list[SctpTrace] = []
    seen: set[bytes] = set()
    for ch in clients:
        if ch.random in seen or ch.random not in secrets:
            continue
        seen.add(ch.random)
        sh = next((s for s in servers if s.src == ch.dst and s.dst == ch.src), None)
        if sh is None or sh.suite is None:
            raise WireDecodeError(f"no ServerHello for the ClientHello from {ch.src}")
        if sh.suite not in SUITES:
            raise WireDecodeError(f"suite 0x{sh.suite:04x} not decodable here")
        traces.append(_decrypt_session(datagrams, ch, sh, secrets[ch.random]))
    return traces


def _decrypt_session(datagrams: list[Datagram], ch: _Hello, sh: _Hello,
                     master: bytes) -> SctpTrace:
    assert sh.suite is not None
    aead_name, key_len, iv_len, digest = SUITES[sh.suite]
    block = prf(master, b"key expansion", sh.random + ch.random, 2 * (key_len + iv_len),
                digest)
    keys = {
        "client": (block[:key_len], block[2 * key_len: 2 * key_len + iv_len]),
        "server": (block[key_len: 2 * key_len], block[2 * key_len + iv_len:]),
    }
    aeads = {side: (AESGCM(k) if aead_name == "gcm" else ChaCha20Poly1305(k), iv)
             for side, (k, iv) in keys.items()}
    trace = SctpTrace(ch.src, ch.dst, sh.suite, [])
    for d in datagrams:
        if d.src == ch.src and d.dst == ch.dst:
            sender = "client"
        elif d.src == ch.dst and d.dst == ch.src:
            sender = "server"
        else:
            continue
        aead, iv = aeads[sender]
        for ctype, epoch, seq, header, fragment in _records(d.payload):
            if ctype != CONTENT_APPLICATION_DATA or epoch == 0:
                continue
            seq64 = struct.pack("!HHI", epoch, seq >> 32, seq & 0xFFFFFFFF)
            if aead_name == "gcm":
                nonce, ciphertext = iv + fragment[:8], fragment[8:]
            else:
                nonce = bytes(a ^ b for a, b in zip(iv, b"\0" * 4 + seq64, strict=True))
                ciphertext = fragment
            aad = seq64 + header[:3] + struct.pack("!H", len(ciphertext) - 16)
            try:
                plaintext = aead.decrypt(nonce, ciphertext, aad)
            except Exception:
                trace.undecryptable += 1
                continue
            vtag, zero, chunks = parse_chunks(plaintext)
            trace.packets.append(SctpPacket(d.at, sender, zero, vtag, chunks))
    return trace
