"""``openssl s_server`` / ``s_client`` (DTLS 1.2, 127.0.0.1 UDP) as interop peers, and
:class:`UdpEndpoint`, which drives any sans-I/O engine over a real UDP socket with
``select`` and the engine's own timer.

Facts about the command line this relies on (OpenSSL 3.0 on this box):

* ``s_server`` always does a HelloVerifyRequest for DTLS (it sets
  SSL_OP_COOKIE_EXCHANGE); ``-listen`` makes it stateless through DTLSv1_listen. There
  is no way to turn cookies off.
* ``-mtu`` is the *link* MTU: OpenSSL subtracts the IPv4+UDP header (28 octets). The
  ``mtu`` arguments below are UDP payload sizes and are converted.
* After the handshake both print ``Keying material: HEX`` for ``-keymatexport``,
  ``SRTP Extension negotiated, profile=NAME``, the cipher (``CIPHER is X`` on the
  server, ``Cipher is X`` on the client) and the peer certificate in PEM.
* Lines written to stdin are sent as one application_data record each; received
  application data is written raw to stdout.

Every process is killed on ``close()``/``__exit__`` and every wait has a timeout, so a
broken engine makes a test fail with the peer's output, never hang.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.interop.pyopenssl_peer import SRTP_PROFILE_NAMES
from webrtc_secure import Certificate
from webrtc_secure.srtp.profiles import DEFAULT_PROFILES

OPENSSL = shutil.which("openssl") or "openssl"
EXPORTER_LABEL = "EXTRACTOR-dtls_srtp"
IPV4_UDP_OVERHEAD = 28


class InteropTimeout(AssertionError):
    """A wait ran out; the message carries the tail of the OpenSSL process output."""


def openssl_version() -> str:
    """``openssl version`` of the binary the harness runs."""
    return subprocess.run(
        [OPENSSL, "version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def write_credentials(certificate: Certificate, directory: str | Path) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (0600) into ``directory``; return their paths."""
    directory = Path(directory)
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.cert_pem())
    key_path.write_bytes(certificate.key_pem())
    key_path.chmod(0o600)
    return cert_path, key_path


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_KEYMAT = re.compile(rb"Keying material: ([0-9A-Fa-f]+)")
_SRTP = re.compile(rb"SRTP Extension negotiated, profile=(\S+)")
_CIPHER = re.compile(rb"(?:CIPHER is|Cipher is) (\S+)")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class OpenSslCliPeer:
    """One ``openssl`` subprocess with stdout+stderr captured by a reader thread.

    Build it with :func:`openssl_server` / :func:`openssl_client`; use it as a
    context manager (or call ``close()``) so the process is always killed.
    """

    def __init__(self, args: Sequence[str], *, tmpdir: Path | None = None) -> None:
        self.args = list(args)
        self._tmpdir = tmpdir
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._eof = True
                    self._cond.notify_all()
                    return
                self._buffer += chunk
                self._cond.notify_all()

    # --- output -----------------------------------------------------------------------

    def output(self) -> bytes:
        """Everything the process printed so far (stdout and stderr interleaved)."""
        with self._cond:
            return bytes(self._buffer)

    def tail(self, limit: int = 3000) -> str:
        return self.output()[-limit:].decode(errors="replace")

    def wait_for(
        self, pattern: bytes | re.Pattern[bytes], timeout: float = 10.0
    ) -> re.Match[bytes]:
        """Block until ``pattern`` appears in the output (InteropTimeout otherwise, or
        when the process exits without printing it)."""
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                match = regex.search(self._buffer)
                if match:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    break
                self._cond.wait(remaining)
        raise InteropTimeout(
            f"{regex.pattern!r} not seen from {' '.join(self.args[:2])} "
            f"(exit={self.proc.poll()}):\n{self.tail()}"
        )

    def seen(self, pattern: bytes) -> bool:
        return pattern in self.output()

    # --- parsed results ---------------------------------------------------------------

    @property
    def handshake_done(self) -> bool:
        """The process printed its post-handshake summary (needs ``-keymatexport``)."""
        return _KEYMAT.search(self.output()) is not None

    @property
    def keying_material(self) -> bytes | None:
        match = _KEYMAT.search(self.output())
        return bytes.fromhex(match.group(1).decode()) if match else None

    @property
    def srtp_profile_name(self) -> str | None:
        match = _SRTP.search(self.output())
        return match.group(1).decode() if match else None

    @property
    def cipher_name(self) -> str | None:
        match = _CIPHER.search(self.output())
        return match.group(1).decode() if match else None

    @property
    def peer_certificate(self) -> bytes | None:
        """DER of the peer certificate the process printed (first PEM block)."""
        match = _PEM.search(self.output())
        if not match:
            return None
        return x509.load_pem_x509_certificate(match.group(0)).public_bytes(
            serialization.Encoding.DER
        )

    # --- input and lifetime -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin (a line becomes one record)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def close(self) -> None:
        """Kill the process (if still running), reap it and close every pipe."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._reader.join(timeout=3)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> OpenSslCliPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _common_args(
    certificate: Certificate,
    tmpdir: Path,
    *,
    srtp_profiles: Sequence[int],
    keymat_length: int,
    mtu: int | None,
    cipher: str | None,
    groups: str | None,
) -> list[str]:
    cert_path, key_path = write_credentials(certificate, tmpdir)
    args = ["-dtls1_2", "-cert", str(cert_path), "-key", str(key_path)]
    if srtp_profiles:
        args += ["-use_srtp", ":".join(SRTP_PROFILE_NAMES[int(p)] for p in srtp_profiles)]
    args += ["-keymatexport", EXPORTER_LABEL, "-keymatexportlen", str(keymat_length)]
    if mtu is not None:
        args += ["-mtu", str(mtu + IPV4_UDP_OVERHEAD)]
    if cipher is not None:
        args += ["-cipher", cipher]
    if groups is not None:
        args += ["-groups", groups]
    return args


def openssl_server(
    certificate: Certificate,
    *,
    port: int | None = None,
    srtp_profiles: Sequence[int] = DEFAULT_PROFILES,
    keymat_length: int = 60,
    mtu: int | None = None,
    listen: bool = True,
    require_client_certificate: bool = True,
    cipher: str | None = None,
    groups: str | None = None,
    extra_args: Sequence[str] = (),
    ready_timeout: float = 10.0,
) -> tuple[OpenSslCliPeer, int]:
    """Start ``openssl s_server -dtls1_2`` on 127.0.0.1 for one connection and wait
    until it is accepting; returns the peer and its UDP port. ``listen`` selects the
    stateless DTLSv1_listen cookie path; without it cookies are still exchanged."""
    for _attempt in range(3):
        chosen = port or free_udp_port()
        tmpdir = Path(tempfile.mkdtemp(prefix="ossl-srv-"))
        args = [
            OPENSSL,
            "s_server",
            "-accept",
            f"127.0.0.1:{chosen}",
            "-naccept",
            "1",
            *_common_args(
                certificate,
                tmpdir,
                srtp_profiles=srtp_profiles,
                keymat_length=keymat_length,
                mtu=mtu,
                cipher=cipher,
                groups=groups,
            ),
        ]
        # -Verify makes the server request (and require) a client certificate; the
        # verification failure of a self-signed one is only reported, not fatal.
        args += ["-Verify" if require_client_certificate else "-verify", "1"]
        if listen:
            args.append("-listen")
        args += list(extra_args)
        peer = OpenSslCliPeer(args, tmpdir=tmpdir)
        try:
            peer.wait_for(b"ACCEPT", timeout=ready_timeout)
        except InteropTimeout:
            peer.close()
            if port is not None or b"ddress already in use" not in peer.output():
                raise
            continue
        return peer, chosen
    raise InteropTimeout("could not bind openssl s_server to a free UDP port")


def openssl_client(
    certificate: Certificate,
    port: int,
    *,
    srtp_profiles: Sequence[int] = DEFAULT_PROFILES,
    keymat_length: int = 60,
    mtu: int | None = None,
    cipher: str | None = None,
    groups: str | None = None,
    extra_args: Sequence[str] = (),
) -> OpenSslCliPeer:
    """Start ``openssl s_client -dtls1_2`` towards 127.0.0.1:``port`` with a client
    certificate (sent when the server asks for one, as WebRTC servers do)."""
    tmpdir = Path(tempfile.mkdtemp(prefix="ossl-cli-"))
    args = [
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        *_common_args(
            certificate,
            tmpdir,
            srtp_profiles=srtp_profiles,
            keymat_length=keymat_length,
            mtu=mtu,
            cipher=cipher,
            groups=groups,
        ),
        "-verify",
        "1",
        *extra_args,
    ]
    return OpenSslCliPeer(args, tmpdir=tmpdir)


class UdpEndpoint:
    """Drives a sans-I/O engine over a UDP socket on 127.0.0.1 with the real clock.

    ``peer`` is where datagrams go; a server endpoint may leave it None and learns it
    from the first datagram it receives. Events are drained into ``self.events``;
    every datagram is kept in ``datagrams_in`` / ``datagrams_out`` for inspection.
    """

    def __init__(
        self,
        engine: Any,
        *,
        peer: tuple[str, int] | None = None,
        bind: tuple[str, int] = ("127.0.0.1", 0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.peer = peer
        self.clock = clock
        self.events: list[Any] = []
        self.datagrams_in: list[bytes] = []
        self.datagrams_out: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.sock.setblocking(False)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return str(host), int(port)

    def connect(self) -> None:
        """``engine.connect(now)`` and send whatever it produced."""
        self.engine.connect(self.clock())
        self._flush()

    def _flush(self) -> None:
        now = self.clock()
        datagrams = self.engine.datagrams_to_send(now)
        for datagram in datagrams:
            if self.peer is None:
                raise RuntimeError("engine wants to send before any peer address is known")
            self.sock.sendto(datagram, self.peer)
            self.datagrams_out.append(datagram)
        while (event := self.engine.next_event()) is not None:
            self.events.append(event)

    @property
    def sizes_in(self) -> list[int]:
        return [len(d) for d in self.datagrams_in]

    @property
    def sizes_out(self) -> list[int]:
        return [len(d) for d in self.datagrams_out]

    def run_until(
        self,
        until: Callable[[], bool],
        timeout: float = 10.0,
        *,
        what: str = "",
        cli: OpenSslCliPeer | None = None,
    ) -> None:
        """Pump the socket and the engine's timer until ``until()`` is true; raise
        :class:`InteropTimeout` after ``timeout`` seconds. ``until`` is polled at
        least every 20 ms, so it may watch a subprocess's output; with ``cli`` the
        timeout message carries that process's output."""
        deadline = self.clock() + timeout
        self._flush()
        while not until():
            now = self.clock()
            if now >= deadline:
                message = f"timed out after {timeout}s waiting for {what or until}"
                if cli is not None:
                    message += f"; openssl (exit={cli.returncode}) said:\n{cli.tail()}"
                raise InteropTimeout(message)
            wait = min(deadline - now, 0.02)
            timer = self.engine.get_timer()
            if timer is not None:
                wait = max(0.0, min(wait, timer - now))
            readable, _, _ = select.select([self.sock], [], [], wait)
            if readable:
                while True:
                    try:
                        data, addr = self.sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except ConnectionRefusedError:
                        # ICMP port unreachable from a peer not (yet) listening.
                        break
                    if self.peer is None:
                        self.peer = (str(addr[0]), int(addr[1]))
                    self.datagrams_in.append(data)
                    self.engine.receive_datagram(data, self.clock(), addr)
            timer = self.engine.get_timer()
            if timer is not None and self.clock() >= timer:
                self.engine.handle_timer(self.clock())
            self._flush()

    def run_for(self, seconds: float) -> None:
        """Keep pumping for ``seconds`` (e.g. to let a final flight or close go out)."""
        with contextlib.suppress(InteropTimeout):
            self.run_until(lambda: False, seconds)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def engine_connected(endpoint: UdpEndpoint) -> bool:
    """True once the engine reported HandshakeComplete (or says it is connected)."""
    if any(type(e).__name__ == "HandshakeComplete" for e in endpoint.events):
        return True
    return bool(getattr(endpoint.engine, "is_connected", False))


def handshake_with_cli(endpoint: UdpEndpoint, cli: OpenSslCliPeer, timeout: float = 10.0) -> None:
    """Pump until both our engine and the OpenSSL process finished the handshake."""
    endpoint.run_until(
        lambda: engine_connected(endpoint) and cli.handshake_done,
        timeout,
        what="both handshakes",
        cli=cli,
    )
