"""CI pass of the structure-aware fuzz targets in tests/fuzz/deep.py: the recorded
handshakes replay deterministically to CONNECTED (what makes the engine targets reach
deep states), every seed satisfies its target's contract, and each target survives a
short coverage-guided atheris run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import deep
from webrtc_secure.dtls import ApplicationData, HandshakeComplete, State

HARNESS = Path(deep.__file__).resolve().parent / "deep_harness.py"
REGRESSIONS = Path(deep.__file__).resolve().parent / "corpus_deep"
#: atheris iterations per target in CI: enough to mutate past the seeds, seconds in all
RUNS = {
    "dtls_server_deep": 150,
    "dtls_client_deep": 150,
    "listener_deep": 150,
    "reassembly_diff": 100,
}


def _replay(is_client: bool, data: bytes) -> tuple[deep.DtlsConnection, list[object]]:
    conn = deep.make_engine(is_client)
    conn.connect(0.0)
    events = []
    for op, payload in deep.chunks(data):
        assert op == 0
        conn.receive_datagram(payload, 0.01)
        while (event := conn.next_event()) is not None:
            events.append(event)
    return conn, events


@pytest.mark.parametrize("is_client", [False, True])
def test_recorded_handshake_replays_to_connected_in_a_fresh_engine(is_client: bool) -> None:
    recorded = deep.recorded_handshake()
    side = "s2c" if is_client else "c2s"
    peer_app = "s_app" if is_client else "c_app"
    data = deep.encode_chunks([(0, d) for d in recorded[side] + recorded[peer_app]])
    conn, events = _replay(is_client, data)
    assert conn.state == State.CONNECTED and conn.error is None
    assert [type(e) for e in events] == [HandshakeComplete, ApplicationData]
    expected = b"hello from the server" if is_client else b"hello from the client"
    assert isinstance(events[1], ApplicationData) and events[1].data == expected


def test_saved_regression_inputs_replay_through_their_targets() -> None:
    replayed = 0
    for directory in sorted(REGRESSIONS.glob("*/regressions")):
        target = directory.parent.name
        assert target in deep.TARGETS, f"{directory} names no target"
        for path in sorted(directory.iterdir()):
            deep.TARGETS[target](path.read_bytes())
            replayed += 1
    assert replayed > 0, "no saved regression inputs found"


def test_every_seed_satisfies_its_target() -> None:
    seeds = deep.seed_inputs()
    assert set(seeds) == set(deep.TARGETS)
    for target, inputs in seeds.items():
        assert inputs, target
        for data in inputs:
            deep.TARGETS[target](data)


def test_a_tampered_srtp_packet_input_exercises_the_refusal_path() -> None:
    # profile 0, RTP round trip, flip a bit of the tag: the target itself asserts refusal
    rtp = bytes.fromhex("800f1234decafbadcafebabe") + b"\xab" * 16
    for flip in range(0, 256, 17):
        deep.srtp_deep(bytes([0, 2, flip]) + rtp)
        deep.srtp_deep(bytes([3, 3, flip]) + bytes.fromhex("81c8000bcafebabe") + b"\xab" * 16)


def test_each_target_survives_a_short_atheris_run(tmp_path: Path) -> None:
    corpora = deep.write_corpora(tmp_path / "corpus")
    procs = {}
    for target, corpus in corpora.items():
        runs = RUNS.get(target, 2000)
        command = [
            sys.executable,
            str(HARNESS),
            target,
            f"-runs={runs}",
            "-seed=1",
            "-timeout=20",
            f"-artifact_prefix={tmp_path}/{target}-",
            str(corpus),
        ]
        procs[target] = (
            runs,
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
        )
    failures = []
    for target, (runs, proc) in procs.items():
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
        done = re.search(r"Done (\d+) runs", output)
        if proc.returncode != 0 or done is None or int(done.group(1)) < runs:
            failures.append(f"{target}: rc={proc.returncode}\n{output[-2000:]}")
    assert not failures, "\n\n".join(failures)
