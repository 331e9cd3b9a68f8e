"""Command line: ``python -m webrtc_secure {dtls,echo,echo-demo} ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from webrtc_secure import cli_dtls, cli_echo, loops
from webrtc_secure.errors import WebrtcSecureError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (exit status 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m webrtc_secure", description=__doc__)
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show progress; -vv for debug output and tracebacks (default: quiet)",
    )
    parser.add_argument(
        "--loop",
        choices=loops.CHOICES,
        default=None,
        help=f"event loop: uvloop when installed (auto), or asyncio; default from "
        f"${loops.LOOP_ENV}, else auto",
    )
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
        loop = loops.choose(args.loop)
        logging.getLogger(__name__).info("event loop: %s", loop)
        if args.command == "dtls":
            return loops.run(cli_dtls.run(args), loop)
        if args.command == "echo":
            return loops.run(cli_echo.run_echo(args), loop)
        if args.command == "echo-demo":
            return loops.run(cli_echo.run_demo(args), loop)
    except KeyboardInterrupt:
        return 130
    except (WebrtcSecureError, OSError) as exc:
        # an error nobody below turned into a message: one line, the traceback on -vv
        if args.verbose >= 2:
            raise
        print(f"{parser.prog}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
