"""Command line: ``python -m webrtc_secure {dtls,echo-demo} ...``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from webrtc_secure import cli_dtls, cli_echo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webrtc_secure", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    cli_dtls.add_arguments(sub.add_parser("dtls", help="DTLS-SRTP client/server over UDP"))
    cli_echo.add_echo_arguments(sub.add_parser("echo", help="one echo peer (answer or offer)"))
    cli_echo.add_demo_arguments(sub.add_parser("echo-demo", help="both echo peers, locally"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * args.verbose,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "dtls":
            return asyncio.run(cli_dtls.run(args))
        if args.command == "echo":
            return asyncio.run(cli_echo.run_echo(args))
        if args.command == "echo-demo":
            return asyncio.run(cli_echo.run_demo(args))
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
