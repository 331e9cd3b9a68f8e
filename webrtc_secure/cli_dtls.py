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
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.dtls import DtlsConnection
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.dtls_transport import DtlsTransport
from webrtc_secure.errors import WebrtcSecureError
from webrtc_secure.srtp import Profile

logger = logging.getLogger(__name__)

PROFILE_NAMES = {
    "SRTP_AES128_CM_SHA1_80": Profile.AES128_CM_HMAC_SHA1_80,
    "SRTP_AES128_CM_SHA1_32": Profile.AES128_CM_HMAC_SHA1_32,
    "SRTP_AEAD_AES_128_GCM": Profile.AEAD_AES_128_GCM,
    "SRTP_AEAD_AES_256_GCM": Profile.AEAD_AES_256_GCM,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=["listen", "connect"])
    parser.add_argument("address", help="HOST:PORT (IPv6 as [::1]:PORT)")
    parser.add_argument("--cert", type=Path, help="PEM certificate (generated if absent)")
    parser.add_argument("--key", type=Path, help="PEM private key of --cert")
    parser.add_argument(
        "--fingerprint",
        help="the peer certificate's fingerprint ALG:HEX, e.g. sha-256:AB:CD:... "
        "(required unless --insecure-skip-fingerprint-check)",
    )
    parser.add_argument(
        "--insecure-skip-fingerprint-check",
        action="store_true",
        help="accept any peer certificate: no authentication, a man in the middle "
        "goes unnoticed (the peer's fingerprint is still printed)",
    )
    parser.add_argument(
        "--srtp-profiles",
        default="SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80:"
        "SRTP_AES128_CM_SHA1_32",
        help="colon-separated OpenSSL-style profile names, in order of preference",
    )
    parser.add_argument("--mtu", type=int, default=1200)
    parser.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="LABEL:LENGTH",
        help="print exported keying material (e.g. EXTRACTOR-dtls_srtp:60) as hex",
    )
    parser.add_argument(
        "--no-cookies", action="store_true", help="listen without HelloVerifyRequest"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="handshake timeout, seconds")
    parser.add_argument(
        "--dtls-version",
        action="append",
        choices=["1.3", "1.2"],
        help="DTLS version to speak (repeat for several, preferred first; default 1.3 and 1.2)",
    )
    parser.add_argument(
        "--ign-eof",
        action="store_true",
        help="keep the connection open after stdin ends, until the peer closes",
    )


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"address must be HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_fingerprint(text: str) -> Fingerprint:
    algorithm, sep, digest = text.partition(":")
    if not sep:
        raise SystemExit("--fingerprint must be ALG:HEX, e.g. sha-256:AB:CD:...")
    try:
        return Fingerprint.parse(f"{algorithm} {digest.upper()}")
    except WebrtcSecureError as exc:
        raise SystemExit(f"bad --fingerprint: {exc}") from None


def load_certificate(args: argparse.Namespace) -> Certificate:
    if args.cert and args.key:
        return Certificate.load(args.cert, args.key)
    if args.cert or args.key:
        raise SystemExit("--cert and --key go together")
    return Certificate.generate()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


async def run(args: argparse.Namespace) -> int:
    if args.fingerprint and args.insecure_skip_fingerprint_check:
        raise SystemExit("--fingerprint and --insecure-skip-fingerprint-check exclude each other")
    if not args.fingerprint and not args.insecure_skip_fingerprint_check:
        raise SystemExit(
            "dtls needs the peer's certificate fingerprint: --fingerprint sha-256:AB:CD:... "
            "(or --insecure-skip-fingerprint-check to accept any certificate)"
        )
    expected = parse_fingerprint(args.fingerprint) if args.fingerprint else None
    certificate = load_certificate(args)
    # before the handshake, so that the peer can pin it
    print(f"local-fingerprint sha-256 {certificate.fingerprint('sha-256')}", file=sys.stderr)
    try:
        profiles = [PROFILE_NAMES[name] for name in args.srtp_profiles.split(":") if name]
    except KeyError as exc:
        raise SystemExit(f"unknown SRTP profile {exc}; known: {', '.join(PROFILE_NAMES)}") from None
    host, port = parse_address(args.address)
    loop = asyncio.get_running_loop()
    options: dict[str, Any] = {
        "srtp_profiles": profiles,
        "mtu": args.mtu,
        "remote_fingerprints": [expected] if expected else None,
        "insecure_skip_fingerprint_check": expected is None,
    }
    if args.dtls_version:
        options["dtls_versions"] = tuple(args.dtls_version)
    closed = loop.create_future()
    received_any = asyncio.Event()

    def on_data(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        received_any.set()

    def on_closed(error: WebrtcSecureError | None) -> None:
        if not closed.done():
            closed.set_result(error)

    protocol = _UdpProtocol()
    if args.mode == "connect":
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, remote_addr=(host, port)
        )
        conn = DtlsConnection(True, certificate, **options)
        dtls = DtlsTransport(conn, transport.sendto, on_data=on_data, on_closed=on_closed)
        peer_addr: tuple[str, int] = (host, port)
        pump = asyncio.ensure_future(_pump(protocol, dtls))
    else:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=(host, port)
        )
        print(
            f"listening on {host}:{transport.get_extra_info('sockname')[1]}",
            file=sys.stderr,
            flush=True,
        )
        conn, peer_addr = await _accept(protocol, transport, certificate, options, args.no_cookies)
        dtls = DtlsTransport(
            conn, lambda d: transport.sendto(d, peer_addr), on_data=on_data, on_closed=on_closed
        )
        pump = asyncio.ensure_future(_pump(protocol, dtls, peer_addr))
    try:
        try:
            await dtls.handshake(args.timeout)
        except WebrtcSecureError as exc:
            print(f"handshake failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        _print_summary(conn, certificate, expected, peer_addr)
        for spec in args.export:
            label, _, length = spec.rpartition(":")
            material = conn.export_keying_material(label, int(length))
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
        conn = DtlsConnection(False, certificate, cookies=False, **options)
        protocol.queue.put_nowait((data, addr))
        return conn, addr
    listener = DtlsListener(certificate, max_connections=1, **options)
    while True:
        data, addr = await protocol.queue.get()
        accepted, replies = listener.receive_datagram(data, addr, loop.time())
        for reply in replies:
            transport.sendto(reply, addr)
        if accepted is not None:
            # the engine already consumed the hello; hand its answer out via the transport
            for datagram in accepted.datagrams_to_send(loop.time()):
                transport.sendto(datagram, addr)
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
        f"peer {peer[0]}:{peer[1]}",
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
