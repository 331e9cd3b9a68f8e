"""The command-line examples run as the README shows them: ``make demo``'s command
prints what README's "What `make demo` prints" shows (timings, the port and the
fingerprints aside), and ``examples/echo_peer.py`` echoes over both signaling modes.

Each runs the real scripts as subprocesses on loopback only."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ECHO_PEER = str(ROOT / "examples" / "echo_peer.py")


def _readme_demo_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## What `make demo` prints\n\n```\n(.*?)```", text, re.S)
    assert match, "README lost its make demo section"
    return match.group(1).splitlines()


def _shape(line: str) -> str:
    """A line with what varies per run (fingerprints, numbers) replaced; the value of
    the drop counters line reduced to its label (its count is not part of the format)."""
    if line.strip().startswith("dropped (auth/replay)"):
        return "dropped (auth/replay)"
    line = re.sub(r"[0-9A-F]{2}(?::[0-9A-F]{2}){15,}", "FP", line)
    return re.sub(r"\d+(?:\.\d+)?", "N", line)


@pytest.mark.timeout(90)
def test_make_demo_prints_what_the_readme_shows() -> None:
    readme = _readme_demo_block()
    assert readme[0] == ".venv/bin/python -m webrtc_secure echo-demo"  # make's echo
    result = subprocess.run(
        [sys.executable, "-m", "webrtc_secure", "echo-demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # as on a terminal: the answerer's lines are stderr
        text=True,
        timeout=80,
        cwd=str(ROOT),
    )
    assert result.returncode == 0, result.stdout
    printed = result.stdout.splitlines()
    assert [_shape(line) for line in printed] == [_shape(line) for line in readme[1:]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(90)
def test_echo_peer_example_over_tcp_signaling() -> None:
    port = str(_free_port())
    common = ["--port", port, "--count", "10", "--interval", "0"]
    answerer = subprocess.Popen(
        [sys.executable, ECHO_PEER, "--role", "answer", *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert answerer.stdout is not None
        assert "signaling on tcp" in answerer.stdout.readline()  # listening now
        offerer = subprocess.run(
            [sys.executable, ECHO_PEER, "--role", "offer", *common],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert offerer.returncode == 0, offerer.stdout + offerer.stderr
        assert "messages echoed         10/10" in offerer.stdout
        assert "RTP packets echoed      10/10" in offerer.stdout
        assert "result                  OK" in offerer.stdout
        assert answerer.wait(timeout=20) == 0
    finally:
        if answerer.poll() is None:
            answerer.kill()
            answerer.wait()
        assert answerer.stdout is not None
        answerer.stdout.close()


@pytest.mark.timeout(90)
def test_echo_peer_example_over_copy_paste_signaling() -> None:
    """``--signal stdin``: each side prints its description as one JSON line and reads
    the other's from stdin, here relayed between the two processes."""
    options = ["--signal", "stdin", "--count", "10", "--interval", "0"]
    offerer = subprocess.Popen(
        [sys.executable, ECHO_PEER, "--role", "offer", *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    answerer = subprocess.Popen(
        [sys.executable, ECHO_PEER, "--role", "answer", "--signal", "stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def description(process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        while line := process.stdout.readline():
            if line.startswith("{"):
                return line
        raise AssertionError("no description printed")

    try:
        assert answerer.stdin is not None and offerer.stdin is not None
        answerer.stdin.write(description(offerer))
        answerer.stdin.flush()
        offerer.stdin.write(description(answerer))
        offerer.stdin.flush()
        out, _ = offerer.communicate(timeout=60)
        assert offerer.returncode == 0, out
        assert "messages echoed         10/10" in out and "result                  OK" in out
        answerer.communicate(timeout=20)
        assert answerer.returncode == 0
    finally:
        for process in (offerer, answerer):
            if process.poll() is None:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
