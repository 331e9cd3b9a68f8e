"""``python -m webrtc_secure echo`` (one peer) and ``echo-demo`` (both, for ``make demo``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

from webrtc_secure.cli_dtls import parse_trace_path
from webrtc_secure.echo import Signaling, run_answerer, run_offerer


def add_echo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--role",
        choices=["answer", "offer"],
        required=True,
        help="answer: wait for an offer and echo; offer: send, count the echoes (required)",
    )
    parser.add_argument(
        "--signal",
        choices=["tcp", "stdin"],
        default="tcp",
        help="signaling over a loopback TCP socket, or copy-paste (default: %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="signaling TCP port (default: %(default)s)"
    )
    add_demo_arguments(parser)
    parser.add_argument(
        "--host-address",
        action="append",
        default=None,
        help="gather ICE host candidates on exactly this address (repeatable; default: 127.0.0.1)",
    )


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """``--count``, ``--interval`` and ``--trace``: what ``echo-demo`` takes, and ``echo``
    too."""
    parser.add_argument(
        "--count", type=int, default=50, help="messages and RTP packets (default: %(default)s)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.02,
        help="seconds between packets, 0.02 = audio pacing, 0 = as fast as possible "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--trace",
        type=parse_trace_path,
        metavar="FILE",
        help="write what this peer (echo-demo: the offering one) did (ICE, DTLS, SCTP, "
        "DCEP) as a sequence diagram to FILE; the extension picks the format: .mmd/.md Mermaid, "
        ".html/.svg a self-contained drawing (default: none)",
    )


async def run_echo(args: argparse.Namespace) -> int:
    signaling = Signaling(args.signal, port=args.port)
    hosts = args.host_address or ["127.0.0.1"]
    if args.role == "answer":
        return await run_answerer(signaling, hosts, args.trace)
    report = await run_offerer(signaling, hosts, args.count, args.interval, trace=args.trace)
    print(report.summary(), flush=True)
    return 0 if report.ok else 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_demo(args: argparse.Namespace) -> int:
    """Start an answerer and an offerer as two processes; exit 0 when every echo came back."""
    port = str(_free_port())
    common = [sys.executable, "-m", "webrtc_secure", "echo", "--port", port]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    answerer = await asyncio.create_subprocess_exec(*common, "--role", "answer", env=env)
    try:
        offerer = await asyncio.create_subprocess_exec(
            *common,
            "--role",
            "offer",
            "--count",
            str(args.count),
            "--interval",
            str(args.interval),
            *(["--trace", str(args.trace)] if args.trace is not None else []),
            env=env,
        )
        code = await asyncio.wait_for(offerer.wait(), 120)
        await asyncio.wait_for(answerer.wait(), 15)
    finally:
        if answerer.returncode is None:
            answerer.kill()
            await answerer.wait()
    return code if code != 0 else (answerer.returncode or 0)
