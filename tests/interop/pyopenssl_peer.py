"""OpenSSL's DTLS 1.2 (through pyOpenSSL, over memory BIOs) behind the sans-I/O face of
:class:`webrtc_secure.dtls.DtlsConnection`.

It lets any harness that drives our engine (tests/netsim.py, the UDP pump in
tests/interop/openssl_cli.py, a unit test's loop) drive OpenSSL the same way, so the
engine can be checked against OpenSSL in every role and the harness itself can be
checked OpenSSL-to-OpenSSL.

Two things differ from our engine and matter to a harness:

* OpenSSL keeps its retransmission timer on the real clock. ``get_timer()`` maps the
  remaining real time onto the caller's ``now``; ``handle_timer`` only retransmits once
  the real time has passed, so on a fake clock only runs that never need a
  retransmission work (no loss, and no reordering either: OpenSSL drops a
  ChangeCipherSpec that overtakes the flight before it and waits for a retransmission).
  ``sleep_for_timers=True`` makes ``handle_timer`` sleep out the real remainder (at most
  2 s a call), so lossy fake-clock runs work at the cost of real seconds.
* A memory BIO is a byte stream: OpenSSL's datagram boundaries are lost. Outgoing bytes
  are split back into DTLS records and packed greedily into datagrams of at most ``mtu``
  octets, which is how OpenSSL packs a flight itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from OpenSSL._util import lib as _lib

from webrtc_secure import Certificate
from webrtc_secure.dtls.events import (
    ApplicationData,
    ConnectionClosed,
    Event,
    HandshakeComplete,
)
from webrtc_secure.errors import DtlsError
from webrtc_secure.srtp.profiles import DEFAULT_PROFILES, Profile

logger = logging.getLogger(__name__)

DTLS1_2_VERSION = 0xFEFD
RECORD_HEADER_LENGTH = 13

#: use_srtp id -> OpenSSL's profile name (``SSL_CTX_set_tlsext_use_srtp``).
SRTP_PROFILE_NAMES: dict[int, str] = {
    0x0001: "SRTP_AES128_CM_SHA1_80",
    0x0002: "SRTP_AES128_CM_SHA1_32",
    0x0007: "SRTP_AEAD_AES_128_GCM",
    0x0008: "SRTP_AEAD_AES_256_GCM",
}
SRTP_PROFILE_IDS: dict[str, int] = {name: pid for pid, name in SRTP_PROFILE_NAMES.items()}

#: OpenSSL cipher names -> IANA ids, for the DTLS 1.2 suites anyone may negotiate.
CIPHER_IDS: dict[str, int] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
    "ECDHE-ECDSA-AES128-SHA256": 0xC023,
    "ECDHE-ECDSA-AES256-SHA384": 0xC024,
    "ECDHE-RSA-AES128-SHA256": 0xC027,
    "ECDHE-RSA-AES256-SHA384": 0xC028,
    "ECDHE-ECDSA-AES128-SHA": 0xC009,
    "ECDHE-ECDSA-AES256-SHA": 0xC00A,
    "ECDHE-RSA-AES128-SHA": 0xC013,
    "ECDHE-RSA-AES256-SHA": 0xC014,
    "AES128-GCM-SHA256": 0x009C,
    "AES256-GCM-SHA384": 0x009D,
    "AES128-SHA": 0x002F,
    "AES256-SHA": 0x0035,
}
CIPHER_NAMES: dict[int, str] = {cid: name for name, cid in CIPHER_IDS.items()}

#: Our group ids -> OpenSSL group names (``SSL_set1_groups_list``).
GROUP_NAMES: dict[int, str] = {0x0017: "P-256", 0x0018: "P-384", 0x001D: "X25519"}


@dataclass
class PeerStats:
    """Counters a harness can read the same way as ``DtlsConnection.stats``."""

    datagrams_sent: int = 0
    bytes_sent: int = 0
    datagrams_received: int = 0
    retransmissions: int = 0
    handshake_started: float | None = None
    handshake_completed: float | None = None


def split_records(data: bytes) -> list[bytes]:
    """Split a stream of DTLS records into whole records (a tail that does not parse is
    returned as one last piece, so nothing is silently dropped)."""
    records: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < RECORD_HEADER_LENGTH:
            records.append(data[pos:])
            break
        length = int.from_bytes(data[pos + 11 : pos + 13], "big")
        end = pos + RECORD_HEADER_LENGTH + length
        if end > len(data):
            records.append(data[pos:])
            break
        records.append(data[pos:end])
        pos = end
    return records


def pack_records(records: Sequence[bytes], mtu: int) -> list[bytes]:
    """Pack records, in order, into as few datagrams of at most ``mtu`` octets as
    possible without reordering; a record larger than ``mtu`` travels alone."""
    datagrams: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > mtu:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams


def _profile_ids(profiles: Sequence[int]) -> list[int]:
    return [int(p) for p in profiles]


class PyOpenSslDtls:
    """One OpenSSL DTLS 1.2 endpoint with the face of ``DtlsConnection``.

    Both sides present certificates; the verify callback accepts self-signed ones (and
    asks ``verify_peer(der)`` when given). Extended master secret is OpenSSL's default
    and cannot be turned off through pyOpenSSL, so it is always offered/accepted.

    ``cookies`` (server only) turns on HelloVerifyRequest: with ``stateless_cookies``
    (default) through ``DTLSv1_listen`` like a real listener (OpenSSL 4.0 answers the
    first fragment of a fragmented ClientHello with its HelloVerifyRequest); otherwise
    through ``SSL_OP_COOKIE_EXCHANGE`` inside the handshake.
    """

    def __init__(
        self,
        is_client: bool,
        certificate: Certificate,
        *,
        srtp_profiles: Sequence[int] = DEFAULT_PROFILES,
        mtu: int = 1200,
        cookies: bool = False,
        stateless_cookies: bool = True,
        cipher_list: str | None = None,
        groups: Sequence[int] | str | None = None,
        require_peer_certificate: bool = True,
        verify_peer: Callable[[bytes], bool] | None = None,
        session_tickets: bool = True,
        sleep_for_timers: bool = False,
    ) -> None:
        self.is_client = is_client
        self.mtu = mtu
        self.cookies = cookies and not is_client
        self.stateless_cookies = stateless_cookies
        self.stats = PeerStats()
        self.received: list[bytes] = []
        self.keylog: list[bytes] = []
        self.handshake_done = False
        self.closed = False
        self.error: DtlsError | None = None
        self._verify_peer = verify_peer
        self._sleep_for_timers = sleep_for_timers
        self._events: deque[Event] = deque()
        self._now = 0.0
        self._timer: float | None = None
        self._real_deadline = 0.0
        self._started = False
        self._listened = not self.cookies or not stateless_cookies
        self._cookie_secret = os.urandom(16)

        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_min_proto_version(DTLS1_2_VERSION)
        ctx.set_max_proto_version(DTLS1_2_VERSION)
        ctx.use_certificate(certificate.x509)
        ctx.use_privatekey(certificate.private_key)
        ctx.check_privatekey()
        mode = SSL.VERIFY_PEER
        if require_peer_certificate:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        ctx.set_verify(mode, self._verify_callback)
        options = SSL.OP_NO_QUERY_MTU
        if not session_tickets:
            options |= SSL.OP_NO_TICKET
        if self.cookies and not stateless_cookies:
            if SSL.OP_COOKIE_EXCHANGE is None:
                raise RuntimeError("this pyOpenSSL build has no SSL_OP_COOKIE_EXCHANGE")
            options |= SSL.OP_COOKIE_EXCHANGE
        ctx.set_options(options)
        if cipher_list is not None:
            ctx.set_cipher_list(cipher_list.encode())
        profiles = _profile_ids(srtp_profiles)
        if profiles:
            ctx.set_tlsext_use_srtp(":".join(SRTP_PROFILE_NAMES[p] for p in profiles).encode())
        if self.cookies:
            ctx.set_cookie_generate_callback(self._make_cookie)
            ctx.set_cookie_verify_callback(self._check_cookie)
        ctx.set_keylog_callback(lambda _conn, line: self.keylog.append(line))

        self.connection = SSL.Connection(ctx, None)
        if is_client:
            self.connection.set_connect_state()
        else:
            self.connection.set_accept_state()
        self.connection.set_ciphertext_mtu(mtu)
        if groups is not None:
            names = (
                groups if isinstance(groups, str) else ":".join(GROUP_NAMES[int(g)] for g in groups)
            )
            ssl_ptr: Any = self.connection._ssl  # pyOpenSSL has no public groups setter
            if _lib.SSL_set1_curves_list(ssl_ptr, names.encode()) != 1:
                raise ValueError(f"OpenSSL refused the groups list {names!r}")

    # --- callbacks -------------------------------------------------------------------

    def _verify_callback(
        self, _conn: SSL.Connection, cert: Any, _errno: int, depth: int, _ok: int
    ) -> bool:
        # Self-signed peers are the WebRTC norm: identity comes from the fingerprint.
        if self._verify_peer is not None and depth == 0:
            der = cert.to_cryptography().public_bytes(serialization.Encoding.DER)
            return bool(self._verify_peer(der))
        return True

    def _make_cookie(self, _conn: SSL.Connection) -> bytes:
        return hashlib.sha256(self._cookie_secret).digest()[:16]

    def _check_cookie(self, conn: SSL.Connection, cookie: bytes) -> bool:
        return cookie == self._make_cookie(conn)

    # --- the sans-I/O face -----------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self.handshake_done and not self.closed

    def connect(self, now: float) -> None:
        """Client: send the ClientHello. Server: nothing to do until a hello arrives."""
        self._now = now
        if self._started:
            return
        self._started = True
        self.stats.handshake_started = now
        if self.is_client:
            self._advance(now)

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        """Hand one UDP payload to OpenSSL."""
        self._now = now
        if self.closed:
            return
        if not self._started:
            self._started = True
            self.stats.handshake_started = now
        self.stats.datagrams_received += 1
        self.connection.bio_write(data)
        self._advance(now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Everything OpenSSL wrote, re-cut into datagrams of at most ``mtu`` octets."""
        self._now = now
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.connection.bio_read(65536)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        datagrams = pack_records(split_records(b"".join(chunks)), self.mtu)
        self.stats.datagrams_sent += len(datagrams)
        self.stats.bytes_sent += sum(len(d) for d in datagrams)
        return datagrams

    def get_timer(self) -> float | None:
        """OpenSSL's retransmission deadline on the caller's clock: the remaining real
        time, added to the ``now`` at which this peer first saw that timer armed."""
        if self.closed:
            return None
        remaining = self.connection.DTLSv1_get_timeout()
        if remaining is None:
            self._timer = None
            return None
        real_deadline = time.monotonic() + remaining
        # A real deadline that moved means OpenSSL re-armed its timer: re-anchor.
        if self._timer is None or abs(real_deadline - self._real_deadline) > 0.005:
            self._real_deadline = real_deadline
            self._timer = self._now + remaining
        return self._timer

    def handle_timer(self, now: float) -> None:
        """Let OpenSSL retransmit if its real-time timer has expired."""
        self._now = now
        if self.closed:
            return
        remaining = self.connection.DTLSv1_get_timeout()
        if self._sleep_for_timers and remaining:
            time.sleep(min(remaining, 2.0))
        try:
            fired = self.connection.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(exc)
            return
        if fired:
            self.stats.retransmissions += 1
            self._timer = None
        elif remaining is not None:
            # The caller's clock ran ahead of the real one: push the deadline so a
            # fake-clock driver does not spin on a timer OpenSSL will not honour yet.
            self._timer = now + remaining
            self._real_deadline = time.monotonic() + remaining

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def send(self, data: bytes) -> None:
        """Send one application_data record."""
        if not self.is_connected:
            raise DtlsError("cannot send application data before the handshake completes")
        self.connection.send(data)

    def close(self) -> None:
        """Send close_notify (once) and stop."""
        if self.closed:
            return
        # Shutdown before the handshake fails: there is nothing to tell the peer then.
        with contextlib.suppress(SSL.Error):
            self.connection.shutdown()
        self._finish(None, by_peer=False)

    # --- results ---------------------------------------------------------------------

    @property
    def peer_certificate(self) -> bytes | None:
        cert = self.connection.get_peer_certificate(as_cryptography=True)
        return None if cert is None else cert.public_bytes(serialization.Encoding.DER)

    @property
    def cipher_name(self) -> str | None:
        return self.connection.get_cipher_name()

    @property
    def cipher_suite(self) -> int | None:
        """IANA id of the negotiated suite (None before the handshake or if unknown)."""
        name = self.cipher_name
        return CIPHER_IDS.get(name) if name else None

    @property
    def group_name(self) -> str | None:
        return self.connection.get_group_name()

    @property
    def srtp_profile(self) -> Profile | None:
        name = self.connection.get_selected_srtp_profile().decode()
        return Profile(SRTP_PROFILE_IDS[name]) if name else None

    @property
    def extended_master_secret(self) -> bool:
        ssl_ptr: Any = self.connection._ssl
        return bool(_lib.SSL_get_extms_support(ssl_ptr) == 1)

    def export_keying_material(
        self, label: str | bytes, length: int, context: bytes | None = None
    ) -> bytes:
        """RFC 5705 exporter, e.g. ``("EXTRACTOR-dtls_srtp", 60)``."""
        if not self.handshake_done:
            raise DtlsError("keying material can only be exported after the handshake")
        raw = label.encode() if isinstance(label, str) else label
        return self.connection.export_keying_material(raw, length, context)

    # --- internals -------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if not self.handshake_done:
            if not self._listened:
                try:
                    self.connection.DTLSv1_listen()
                except SSL.WantReadError:
                    return
                except SSL.Error as exc:
                    # A stateless listener drops what it cannot use and keeps listening.
                    logger.debug("DTLSv1_listen dropped a datagram: %s", exc)
                    return
                self._listened = True
            try:
                self.connection.do_handshake()
            except SSL.WantReadError:
                return
            except SSL.Error as exc:
                self._fail(exc)
                return
            self.handshake_done = True
            self.stats.handshake_completed = now
            srtp = self.srtp_profile
            self._events.append(
                HandshakeComplete(
                    cipher_suite=self.cipher_suite or 0,
                    srtp_profile=int(srtp) if srtp is not None else None,
                    peer_certificate=self.peer_certificate or b"",
                )
            )
        self._read_application_data()

    def _read_application_data(self) -> None:
        while not self.closed:
            try:
                data = self.connection.recv(65536)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                self._finish(None, by_peer=True)
                return
            except SSL.Error as exc:
                self._fail(exc)
                return
            self.received.append(data)
            self._events.append(ApplicationData(data))

    def _fail(self, exc: Exception) -> None:
        logger.debug("OpenSSL peer failed: %s", exc)
        self.error = DtlsError(f"OpenSSL: {exc}")
        self._finish(self.error, by_peer=False)

    def _finish(self, error: DtlsError | None, *, by_peer: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self._events.append(ConnectionClosed(error=error, by_peer=by_peer))


def handshake_in_memory(
    client: PyOpenSslDtls | Any, server: PyOpenSslDtls | Any, *, max_rounds: int = 50
) -> int:
    """Shuttle datagrams between two engines (no loss, no clock) until both report
    ``is_connected`` or nothing moves; return the number of datagrams exchanged."""
    client.connect(0.0)
    server.connect(0.0)
    moved = 0
    for _ in range(max_rounds):
        progress = False
        for sender, receiver in ((client, server), (server, client)):
            for datagram in sender.datagrams_to_send(0.0):
                receiver.receive_datagram(datagram, 0.0)
                moved += 1
                progress = True
        if client.is_connected and server.is_connected and not progress:
            break
        if not progress:
            break
    return moved
