"""Run one target of tests/fuzz/deep.py under atheris/libFuzzer.

    python tests/fuzz/deep_harness.py TARGET [libFuzzer flags] [CORPUS_DIR ...]

webrtc_secure is imported inside atheris' instrumentation so libFuzzer sees Python
branch coverage of the library (``cov:``); an exception other than the target's
contract allows is a crash, saved under ``-artifact_prefix``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

#: what the targets exercise; the rest of the package (peer, ICE, SDP) is imported
#: uninstrumented, which keeps start-up short
INSTRUMENTED = [
    "webrtc_secure.dtls",
    "webrtc_secure.srtp",
    "webrtc_secure.replay",
    "webrtc_secure.certificate",
    "tests.fuzz.deep",
]

with atheris.instrument_imports(include=INSTRUMENTED):
    from tests.fuzz import deep


def main() -> None:
    logging.disable(logging.CRITICAL)  # the engines log every refused input
    target = deep.TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
