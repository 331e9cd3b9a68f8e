"""webrtc_secure.loops: which event loop the CLI, the demo and the benchmarks run on."""

from __future__ import annotations

import asyncio

import pytest

from webrtc_secure import loops
from webrtc_secure.__main__ import main
from webrtc_secure.errors import ConfigurationError


async def _name() -> str:
    return loops.running_loop_name()


def test_the_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loops.LOOP_ENV, "uvloop")
    assert loops.choose("asyncio") == "asyncio"
    assert loops.run(_name(), "asyncio") == "asyncio"


def test_the_environment_chooses_without_an_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loops.LOOP_ENV, " AsyncIO ")
    assert loops.choose() == "asyncio"
    assert loops.run(_name()) == "asyncio"


def test_auto_is_uvloop_exactly_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    expected = "uvloop" if loops.uvloop_available() else "asyncio"
    assert loops.choose() == expected == loops.choose("auto")
    monkeypatch.setattr(loops, "uvloop_available", lambda: False)
    assert loops.choose() == "asyncio"


def test_uvloop_runs_when_installed() -> None:
    if not loops.uvloop_available():
        pytest.fail("the test extra installs uvloop")  # never a silent skip
    assert loops.run(_name(), "uvloop") == "uvloop"
    assert loops.loop_factory("asyncio") is asyncio.new_event_loop


def test_unknown_or_missing_loops_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="unknown event loop 'trio'"):
        loops.choose("trio")
    monkeypatch.setenv(loops.LOOP_ENV, "qt")
    with pytest.raises(ConfigurationError, match=loops.LOOP_ENV):
        loops.choose()
    monkeypatch.setattr(loops, "uvloop_available", lambda: False)
    with pytest.raises(ConfigurationError, match="not installed"):
        loops.choose("uvloop")


def test_the_cli_reports_a_bad_loop_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(loops.LOOP_ENV, "bogus")
    assert main(["echo-demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown event loop 'bogus'" in err
