# One entry point for users and CI. Every target creates the virtualenv on first use.
#
# One virtualenv, two install levels, each with its own stamp:
#   $(RUNTIME_STAMP)  `pip install -e .`           the runtime dependencies only
#                     (cryptography, aioice, pyee): enough for `make demo`
#   $(TEST_STAMP)     `pip install -e '.[test,docs]'` adds the test stack (pytest, hypothesis,
#                     pyOpenSSL, pylibsrtp, aiortc, uvloop, ruff, mypy, atheris) for every
#                     other target (the peer, ICE and interop tests run on asyncio and on
#                     uvloop; `make bench` and the CLI run on uvloop when it is installed),
#                     the docs stack (Sphinx, MyST, sphinxcontrib-mermaid, furo), and runs
#                     `npm ci` in docs/ for the pinned mermaid.js (docs/package-lock.json)
#                     that the site ships: neither the build nor a reader's browser goes
#                     to the network
# so that the demo's first run does not download the test stack, while `make test` after
# `make demo` reuses the venv and only adds the extras. Both stamps depend on
# pyproject.toml (and the test stamp on docs/package-lock.json): a changed dependency
# list reinstalls on the next run. `make test` builds the docs (warnings are errors)
# before the unit tests, one of which opens the built site in headless Chromium.
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-stamp
TEST_STAMP := $(VENV)/.test-stamp
DOCS_HTML := docs/_build/html

.PHONY: test lint typecheck unit docs demo bench faults fuzz clean

$(RUNTIME_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(RUNTIME_STAMP)

$(TEST_STAMP): $(RUNTIME_STAMP) docs/package-lock.json
	$(PY) -m pip install -q -e '.[test,docs]'
	cd docs && npm ci --no-audit --no-fund --loglevel=error
	touch $(TEST_STAMP)

test: lint typecheck docs unit

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check webrtc_secure tests benchmarks examples docs

# the documentation site into docs/_build/html; any Sphinx warning fails the build
docs: $(TEST_STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs $(DOCS_HTML)

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info \
		docs/_build docs/_generated docs/node_modules docs/reference/generated
