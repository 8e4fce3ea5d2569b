# iterloop: the few commands a contributor needs. `make test` and `make demo` set everything up.
#
#   make setup   create .venv (Python 3.11+) and install iterloop editable with test extras
#   make test    run the whole test suite
#   make demo    validate the examples and draw the growth loop as a Mermaid diagram
#   make bench   DSL throughput and cold `iterloop validate` time
#   make temporal  fetch the Temporal CLI (dev server) into $(TEMPORAL_BIN) (needs Go)
#   make clean   remove the virtualenv and caches

SHELL := /bin/bash
.DEFAULT_GOAL := test

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp

# The first interpreter that is Python 3.11 or newer; override with `make PYTHON=/path/to/python3`.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

# The Temporal CLI (its `server start-dev` is the dev server the runtime tests will use).
TEMPORAL_VERSION ?= v1.5.1
TEMPORAL_BIN ?= $(HOME)/.cache/iterloop/bin/temporal

DEMO_WORKFLOW := examples/growth_loop.iter

.PHONY: setup test demo bench temporal clean

setup: $(STAMP)

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "make: no Python 3.11+ found (tried python3, python3.13, python3.12, python3.11)." >&2; \
		echo "      Install one, or run: make PYTHON=/path/to/python3.11 setup" >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changes (or the venv is new), so `make test` stays fast.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

test: setup
	$(BIN)/pytest -q

DEMO_FILES = $(wildcard examples/*.iter examples/iterion/*.iter)

demo: setup
	@if [ -z "$(strip $(DEMO_FILES))" ]; then echo "make demo: no examples/*.iter files yet." >&2; exit 1; fi
	$(BIN)/iterloop validate $(DEMO_FILES)
	@if [ -f $(DEMO_WORKFLOW) ]; then \
		echo; echo "Mermaid diagram of $(DEMO_WORKFLOW) (paste into https://mermaid.live):"; echo; \
		$(BIN)/iterloop diagram $(DEMO_WORKFLOW) --view detailed; \
	else \
		echo "make demo: $(DEMO_WORKFLOW) does not exist yet; nothing to draw." >&2; \
	fi

bench: setup
	$(BIN)/python benchmarks/bench_dsl.py

# Not a dependency of test/demo yet: the Temporal runtime arrives with the next milestone.
temporal: $(TEMPORAL_BIN)

$(TEMPORAL_BIN):
	@command -v go >/dev/null 2>&1 || { \
		echo "make temporal: Go is required to build the Temporal CLI (https://go.dev/dl/)," >&2; \
		echo "               or download a release binary to $(TEMPORAL_BIN)." >&2; exit 1; }
	@mkdir -p $(dir $(TEMPORAL_BIN))
	GOBIN=$(abspath $(dir $(TEMPORAL_BIN))) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)
	@test -x $(TEMPORAL_BIN) || { echo "make temporal: go install did not produce $(TEMPORAL_BIN)" >&2; exit 1; }

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
