"""``python -m webrtc_secure dtls listen|connect HOST:PORT``: DTLS-SRTP over plain UDP.

Like ``openssl s_server``/``s_client`` for DTLS-SRTP: prints the negotiated version,
suite, SRTP profile and both fingerprints, copies stdin to the peer as application
data and the peer's data to stdout, and exits 0 on a clean close. A debugging tool
for users and the harness of our OpenSSL interop tests.

The peer is authenticated by its certificate fingerprint, ``--fingerprint ALG:HEX``
(``openssl x509 -noout -fingerprint -sha256 -in peer.pem`` prints it; we print our
own at start). Running without one takes ``--insecure-skip-fingerprint-check``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.dtls import DtlsConnection, State
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.dtls_transport import DtlsTransport
from webrtc_secure.errors import (
    CertificateError,
    ConfigurationError,
    HandshakeTimeout,
    WebrtcSecureError,
)
from webrtc_secure.srtp import DEFAULT_PROFILES, Profile
from webrtc_secure.srtp.profiles import parse_profiles as profiles_from_text
from webrtc_secure.trace import TRACE_SUFFIXES, Trace

logger = logging.getLogger(__name__)

#: smallest MTU the DTLS engine accepts (a handshake record must fit) and the largest
#: UDP payload over IPv4
MIN_MTU, MAX_MTU = 150, 65507
#: RFC 5705 4: exporter labels must not collide with the PRF labels of the handshake
_RESERVED_LABELS = frozenset(
    {
        "client finished",
        "server finished",
        "master secret",
        "key expansion",
        "extended master secret",
    }
)
#: largest exported length: the uint16 length field of a TLS 1.3 HkdfLabel, a bound every
#: exporter meets
MAX_EXPORT_LENGTH = 0xFFFF
_DEFAULT_PROFILES = ":".join(p.openssl_name for p in DEFAULT_PROFILES)


class CliError(Exception):
    """A failure the command reports as one line on stderr and exit status 1."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(
        p.rfc_name if p.rfc_name == p.openssl_name else f"{p.rfc_name} (OpenSSL: {p.openssl_name})"
        for p in Profile
    )
    parser.add_argument(
        "mode",
        choices=["listen", "connect"],
        help="listen: wait for one client on ADDRESS; connect: handshake with ADDRESS",
    )
    parser.add_argument(
        "address",
        type=parse_address,
        help="HOST:PORT (IPv6 as [::1]:PORT); port 0 when listening picks a free one",
    )
    parser.add_argument(
        "--cert",
        type=Path,
        help="PEM certificate (default: a fresh self-signed ECDSA P-256 one)",
    )
    parser.add_argument("--key", type=Path, help="PEM private key of --cert (default: none)")
    parser.add_argument(
        "--fingerprint",
        type=parse_fingerprint,
        help="the peer certificate's fingerprint ALG:HEX, e.g. sha-256:AB:CD:... "
        "(required unless --insecure-skip-fingerprint-check; default: none)",
    )
    parser.add_argument(
        "--insecure-skip-fingerprint-check",
        action="store_true",
        help="accept any peer certificate: no authentication, a man in the middle "
        "goes unnoticed (the peer's fingerprint is still printed; default: off)",
    )
    parser.add_argument(
        "--srtp-profiles",
        type=parse_profiles,
        default=_DEFAULT_PROFILES,
        metavar="NAME[:NAME...]",
        help="SRTP protection profiles in order of preference, separated by ':'; "
        f"case-insensitive, with or without the SRTP_ prefix. Valid: {names} "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--mtu",
        type=parse_mtu,
        default=1200,
        help=f"largest datagram to send, {MIN_MTU}..{MAX_MTU} octets (default: %(default)s)",
    )
    parser.add_argument(
        "--export",
        type=parse_export,
        action="append",
        default=[],
        metavar="LABEL:LENGTH",
        help="after the handshake print LENGTH octets (1..65535) of RFC 5705 keying "
        "material for LABEL as hex, e.g. EXTRACTOR-dtls_srtp:60; repeatable "
        "(default: none)",
    )
    parser.add_argument(
        "--no-cookies",
        action="store_true",
        help="listen without the HelloVerifyRequest cookie exchange (default: cookies on)",
    )
    parser.add_argument(
        "--timeout",
        type=parse_timeout,
        default=30.0,
        help="seconds the handshake may take (default: %(default)s)",
    )
    parser.add_argument(
        "--trace",
        type=parse_trace_path,
        metavar="FILE",
        help="write the handshake as a sequence diagram to FILE when the run ends; the "
        "extension picks the format: .mmd/.md Mermaid, .html/.svg a self-contained "
        "drawing (default: none)",
    )
    parser.add_argument(
        "--dtls-version",
        action="append",
        choices=["1.3", "1.2"],
        help="DTLS version to speak (repeat for several, preferred first; default 1.3 and 1.2)",
    )
    parser.add_argument(
        "--ign-eof",
        action="store_true",
        help="keep the connection open after stdin ends, until the peer closes "
        "(default: close when stdin ends)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,  # keeps a -v given before "dtls" when absent here
        help="show progress (resolving, flights sent, retransmissions); -vv for debug "
        "(default: quiet)",
    )


# --- argument types: each raises ArgumentTypeError, which argparse reports as usage --


def parse_trace_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in TRACE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the extension picks the trace format, one of " + ", ".join(TRACE_SUFFIXES)
        )
    return path


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"address must be HOST:PORT, not {text!r}")
    if int(port) > 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 0..65535")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_fingerprint(text: str) -> Fingerprint:
    algorithm, sep, digest = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("must be ALG:HEX, e.g. sha-256:AB:CD:...")
    try:
        return Fingerprint.parse(f"{algorithm} {digest.upper()}")
    except WebrtcSecureError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_profiles(text: str) -> list[Profile]:
    try:
        return profiles_from_text(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_mtu(text: str) -> int:
    try:
        mtu = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise argparse.ArgumentTypeError(
            f"{mtu} out of range {MIN_MTU}..{MAX_MTU} (a DTLS handshake record must fit)"
        )
    return mtu


def parse_timeout(text: str) -> float:
    try:
        timeout = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < timeout < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return timeout


def parse_export(text: str) -> tuple[str, int]:
    label, sep, length = text.rpartition(":")
    if not sep or not label or not length.isdigit():
        raise argparse.ArgumentTypeError(f"must be LABEL:LENGTH, not {text!r}")
    if not (label.isascii() and label.isprintable()):
        raise argparse.ArgumentTypeError(f"label {label!r} is not printable ASCII")
    if label.lower() in _RESERVED_LABELS:
        raise argparse.ArgumentTypeError(
            f"label {label!r} is reserved for the handshake (RFC 5705 4)"
        )
    if not 1 <= int(length) <= MAX_EXPORT_LENGTH:
        raise argparse.ArgumentTypeError(f"length {length} out of range 1..{MAX_EXPORT_LENGTH}")
    return label, int(length)


def load_certificate(args: argparse.Namespace) -> Certificate:
    if args.cert and args.key:
        try:
            return Certificate.load(args.cert, args.key)
        except CertificateError as exc:
            raise CliError(str(exc)) from None
    if args.cert or args.key:
        raise SystemExit("--cert and --key go together")
    return Certificate.generate()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        #: the last ICMP error the socket reported (e.g. ECONNREFUSED: nothing listens)
        self.network_error: OSError | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        # UDP has no connection to fail: a port unreachable only says that one datagram
        # found nobody (the peer may start later), so report it and keep trying
        if isinstance(exc, OSError):
            if self.network_error is None or self.network_error.errno != exc.errno:
                logger.info("network error: %s (the handshake keeps retrying)", exc.strerror)
            self.network_error = exc


async def _resolve(host: str, port: int, passive: bool) -> tuple[str, int]:
    loop = asyncio.get_running_loop()
    logger.info("resolving %s", host)
    try:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE if passive else 0
        )
    except socket.gaierror as exc:
        raise CliError(f"cannot resolve {host!r}: {exc.strerror}") from None
    address = infos[0][4]
    logger.info("%s is %s", host, address[0])
    return str(address[0]), int(address[1])


def _bind_error(host: str, port: int, exc: OSError) -> CliError:
    reasons = {
        errno.EADDRINUSE: f"port {port} is in use",
        errno.EADDRNOTAVAIL: f"{host} is not an address of this host",
        errno.EACCES: f"no permission to use port {port}",
    }
    # uvloop raises its own OSError without an errno ("could not bind to local_addr")
    # from the socket's: the reason is in that one
    cause = exc
    if exc.errno is None and isinstance(exc.__cause__, OSError):
        cause = exc.__cause__
    reason = reasons.get(cause.errno or 0, cause.strerror or str(exc))
    return CliError(f"cannot listen on {_hostport(host, port)}: {reason}")


class _Progress:
    """Wraps the send callable: reports each new flight and retransmission (``-v``)."""

    def __init__(self, connection: DtlsConnection, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._connection = connection
        # a listener's connection has already answered the ClientHello (logged by _accept)
        self._flights = connection.stats.flights_sent
        self._retransmissions = connection.stats.retransmissions

    def __call__(self, datagram: bytes) -> None:
        conn = self._connection
        if conn.state == State.HANDSHAKING:
            stats = conn.stats
            if stats.flights_sent != self._flights:
                self._flights = stats.flights_sent
                logger.info("flight %d sent (%d octets)", self._flights, len(datagram))
            elif stats.retransmissions != self._retransmissions:
                self._retransmissions = stats.retransmissions
                logger.info(
                    "retransmission %d: flight %d unanswered, resent",
                    self._retransmissions,
                    self._flights,
                )
        self._send(datagram)


async def run(args: argparse.Namespace) -> int:
    try:
        return await _run(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1


async def _run(args: argparse.Namespace) -> int:
    if args.fingerprint and args.insecure_skip_fingerprint_check:
        raise SystemExit("--fingerprint and --insecure-skip-fingerprint-check exclude each other")
    if not args.fingerprint and not args.insecure_skip_fingerprint_check:
        raise SystemExit(
            "dtls needs the peer's certificate fingerprint: --fingerprint sha-256:AB:CD:... "
            "(or --insecure-skip-fingerprint-check to accept any certificate)"
        )
    expected: Fingerprint | None = args.fingerprint
    certificate = load_certificate(args)
    host, port = args.address
    if args.mode == "connect" and port == 0:
        raise SystemExit("connect needs a port in 1..65535, not 0")
    loop = asyncio.get_running_loop()
    options: dict[str, Any] = {
        "srtp_profiles": args.srtp_profiles,
        "mtu": args.mtu,
        "remote_fingerprints": [expected] if expected else None,
        "insecure_skip_fingerprint_check": expected is None,
    }
    trace: Trace | None = None
    if args.trace is not None:
        ours = "client" if args.mode == "connect" else "server"
        peer = "server" if args.mode == "connect" else "client"
        trace = Trace(f"webrtc_secure {ours}", f"peer {peer}")
        options["trace"] = trace
    if args.dtls_version:
        options["dtls_versions"] = tuple(args.dtls_version)
    closed = loop.create_future()

    def on_data(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()

    def on_closed(error: WebrtcSecureError | None) -> None:
        if not closed.done():
            closed.set_result(error)

    protocol = _UdpProtocol()
    address = await _resolve(host, port, passive=args.mode == "listen")
    if args.mode == "connect":
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: protocol, remote_addr=address
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CliError(f"cannot send to {_hostport(host, port)}: {reason}") from None
        # printed before the handshake, so that the peer can pin it
        _print_local_fingerprint(certificate)
        conn = DtlsConnection(True, certificate, **options)
        dtls = DtlsTransport(
            conn, _Progress(conn, transport.sendto), on_data=on_data, on_closed=on_closed
        )
        peer_addr: tuple[str, int] = address
        pump = asyncio.ensure_future(_pump(protocol, dtls))
    else:
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: protocol, local_addr=address)
        except OSError as exc:
            raise _bind_error(host, port, exc) from None
        _print_local_fingerprint(certificate)
        print(
            f"listening on {_hostport(host, transport.get_extra_info('sockname')[1])}",
            file=sys.stderr,
            flush=True,
        )
        try:
            conn, peer_addr = await _accept(
                protocol, transport, certificate, options, args.no_cookies
            )
        except BaseException:
            _write_trace(trace, args.trace)
            raise
        send = _Progress(conn, lambda d: transport.sendto(d, peer_addr))
        dtls = DtlsTransport(conn, send, on_data=on_data, on_closed=on_closed)
        pump = asyncio.ensure_future(_pump(protocol, dtls, peer_addr))
    try:
        try:
            await dtls.handshake(args.timeout)
        except WebrtcSecureError as exc:
            hint = ""
            if isinstance(exc, HandshakeTimeout) and protocol.network_error is not None:
                hint = (
                    f" ({_hostport(host, port)} answered {protocol.network_error.strerror!r}: "
                    "is the peer listening?)"
                )
            print(f"handshake failed: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
            return 1
        _print_summary(conn, certificate, expected, peer_addr)
        for label, length in args.export:
            material = conn.export_keying_material(label, length)
            print(f"export {label} {material.hex()}", file=sys.stderr, flush=True)
        stdin_done = asyncio.ensure_future(_copy_stdin(dtls, args.ign_eof))
        done, _ = await asyncio.wait({closed, stdin_done}, return_when=asyncio.FIRST_COMPLETED)
        if closed in done:
            stdin_done.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stdin_done
            error = closed.result()
            if error is not None:
                print(f"connection failed: {error}", file=sys.stderr)
                return 1
            print("peer closed the connection", file=sys.stderr)
            return 0
        # stdin reached EOF: close cleanly
        dtls.close()
        return 0
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        transport.close()
        _write_trace(trace, args.trace)


def _write_trace(trace: Trace | None, path: Path | None) -> None:
    """Write the trace (also of a failed handshake: that is when it helps most)."""
    if trace is None or path is None:
        return
    try:
        trace.write(path)
    except OSError as exc:
        raise CliError(f"cannot write the trace to {path}: {exc.strerror or exc}") from None
    print(f"trace written to {path}", file=sys.stderr, flush=True)


def _hostport(host: str, port: int) -> str:
    """HOST:PORT as the address argument takes it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _print_local_fingerprint(certificate: Certificate) -> None:
    print(
        f"local-fingerprint sha-256 {certificate.fingerprint('sha-256')}",
        file=sys.stderr,
        flush=True,
    )


async def _accept(
    protocol: _UdpProtocol,
    transport: asyncio.DatagramTransport,
    certificate: Certificate,
    options: dict[str, Any],
    no_cookies: bool,
) -> tuple[DtlsConnection, tuple[str, int]]:
    """Run the stateless cookie exchange until one client proves its address."""
    loop = asyncio.get_running_loop()
    if no_cookies:
        data, addr = await protocol.queue.get()
        logger.info("datagram from %s:%d: accepting it without a cookie", addr[0], addr[1])
        conn = DtlsConnection(False, certificate, cookies=False, **options)
        protocol.queue.put_nowait((data, addr))
        return conn, addr
    listener = DtlsListener(certificate, max_connections=1, **options)
    while True:
        data, addr = await protocol.queue.get()
        now = loop.time()
        accepted, replies = listener.receive_datagram(data, addr, now)
        trace: Trace | None = options.get("trace")
        if trace is not None and accepted is None:
            # the stateless exchange happens before the engine exists
            trace.dtls_received(now, data)
            trace.dtls_sent(now, replies)
        for reply in replies:
            transport.sendto(reply, addr)
        if replies and accepted is None:
            logger.info("HelloVerifyRequest (cookie) sent to %s:%d", addr[0], addr[1])
        if accepted is not None:
            # the engine already consumed the hello; hand its answer out via the transport
            datagrams = accepted.datagrams_to_send(loop.time())
            for datagram in datagrams:
                transport.sendto(datagram, addr)
            logger.info(
                "%s:%d returned the cookie; flight %d sent (%d datagrams)",
                addr[0],
                addr[1],
                accepted.stats.flights_sent,
                len(datagrams),
            )
            return accepted, addr


async def _pump(
    protocol: _UdpProtocol, dtls: DtlsTransport, only_from: tuple[str, int] | None = None
) -> None:
    while True:
        data, addr = await protocol.queue.get()
        if only_from is None or addr[:2] == only_from[:2]:
            dtls.datagram_received(data)


async def _copy_stdin(dtls: DtlsTransport, ign_eof: bool) -> None:
    loop = asyncio.get_running_loop()
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty():
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while chunk := await reader.read(1024):
            if not dtls.is_connected:
                return
            dtls.send(chunk)
    else:
        # a regular file or /dev/null cannot be polled: send its content at once
        data = sys.stdin.buffer.read()
        for i in range(0, len(data), 1024):
            dtls.send(data[i : i + 1024])
    if ign_eof:
        await asyncio.Event().wait()  # until the peer closes and the caller cancels us


def _print_summary(
    conn: DtlsConnection,
    certificate: Certificate,
    expected: Fingerprint | None,
    peer: tuple[str, int],
) -> None:
    from webrtc_secure.certificate import fingerprint_of_der

    assert conn.peer_certificate is not None and conn.cipher_suite is not None
    peer_fp = fingerprint_of_der(
        conn.peer_certificate, expected.algorithm if expected else "sha-256"
    )
    lines = [
        f"peer {_hostport(peer[0], peer[1])}",
        f"protocol {'DTLSv1.3' if conn.version_name == 'DTLS 1.3' else 'DTLSv1.2'}",
        f"group {conn.group or 'none'}",
        f"cipher {conn.cipher_suite.name} (0x{int(conn.cipher_suite):04x})",
        f"srtp-profile {conn.srtp_profile.name if conn.srtp_profile else 'none'}",
        f"extended-master-secret {'yes' if conn.extended_master_secret else 'no'}",
        f"local-fingerprint sha-256 {certificate.fingerprint('sha-256')}",
        f"peer-fingerprint {expected.algorithm if expected else 'sha-256'} {peer_fp}",
        f"peer-verified {'yes' if expected else 'NO (--insecure-skip-fingerprint-check)'}",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
