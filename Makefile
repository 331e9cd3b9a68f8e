# One entry point for users and CI. Every target creates the virtualenv on first use.
#
# One virtualenv, two install levels, each with its own stamp:
#   $(RUNTIME_STAMP)  `pip install -e .`           the runtime dependencies only
#                     (cryptography, aioice, pyee): enough for `make demo`
#   $(TEST_STAMP)     `pip install -e '.[test]'`   adds the test stack (pytest, hypothesis,
#                     pyOpenSSL, pylibsrtp, aiortc, ruff, mypy, atheris) for every other target
# so that the demo's first run does not download the test stack, while `make test` after
# `make demo` reuses the venv and only adds the extras. Both stamps depend on
# pyproject.toml: a changed dependency list reinstalls on the next run.
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-stamp
TEST_STAMP := $(VENV)/.test-stamp

.PHONY: test lint typecheck unit demo bench faults fuzz clean

$(RUNTIME_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(RUNTIME_STAMP)

$(TEST_STAMP): $(RUNTIME_STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

test: lint typecheck unit

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check webrtc_secure tests benchmarks examples

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy

unit: $(TEST_STAMP)
	$(PY) -m pytest -q

demo: $(RUNTIME_STAMP)
	$(PY) -m webrtc_secure echo-demo

bench: $(TEST_STAMP)
	$(PY) benchmarks/run.py

faults: $(TEST_STAMP)
	$(PY) benchmarks/faults.py

fuzz: $(TEST_STAMP)
	$(PY) tests/fuzz/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
