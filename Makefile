# One entry point for users and CI. Every target creates the virtualenv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test lint typecheck unit demo bench faults fuzz clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: lint typecheck unit

lint: $(STAMP)
	$(VENV)/bin/ruff check webrtc_secure tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m webrtc_secure echo-demo

bench: $(STAMP)
	$(PY) benchmarks/run.py

faults: $(STAMP)
	$(PY) benchmarks/faults.py

fuzz: $(STAMP)
	$(PY) tests/fuzz/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
