# iterloop: the few commands a contributor needs. `make test` and `make demo` set everything up.
#
#   make setup   create .venv (Python 3.11+), install iterloop editable with test extras, and
#                obtain the Temporal CLI (dev server) into $(TEMPORAL_BIN) when it is missing, and
#                Debian's chromium (the dashboard's browser test) when it is missing (as root)
#   make test    check the import layers (lint-imports, docs/architecture.md), then run the whole test suite
#   make demo    validate the examples, draw the growth loop, and run it offline on a local
#                Temporal dev server (mock connector, scripted model, local flags; asks at the
#                approval gate on a terminal, --skip-gates otherwise; the dev server is stopped afterwards)
#   make bench   DSL throughput and cold `iterloop validate` time
#   make temporal  fetch the Temporal CLI (dev server) into $(TEMPORAL_BIN): built with Go, or
#                downloaded through the Temporal SDK when Go is absent (skipped if ITERLOOP_TEMPORAL_BIN is set)
#   make server  start the local Temporal dev server in the background (Web UI: http://localhost:8233)
#   make stop    stop it (its data stays in .iterloop/temporal.db)
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

# The Temporal CLI (its `server start-dev` is the dev server `iterloop server` and the tests use).
# runtime/devserver.py looks for it in ITERLOOP_TEMPORAL_BIN, then here, then on PATH.
TEMPORAL_VERSION ?= v1.5.1
TEMPORAL_BIN ?= $(HOME)/.cache/iterloop/bin/temporal

DEMO_WORKFLOW := examples/growth_loop.iter
DEMO_CONFIG := examples/growth_loop.demo.yaml
DEMO_SCRIPT := examples/growth_loop.script.yaml

.PHONY: setup test demo bench temporal chromium server stop clean

setup: $(STAMP) temporal chromium

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
	$(BIN)/lint-imports --no-cache
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
	@echo; echo "Running $(DEMO_WORKFLOW) offline on a local Temporal dev server (mock data, scripted model, no API key):"; echo
	@rm -rf .iterloop/demo
	@gates=--skip-gates; if [ -t 0 ]; then gates=; fi; \
		status=0; $(BIN)/iterloop run $(DEMO_WORKFLOW) --config $(DEMO_CONFIG) --script $(DEMO_SCRIPT) $$gates \
		--run-id demo-$$(date +%s) || status=$$?; \
		$(BIN)/iterloop server stop >/dev/null; exit $$status

bench: setup
	$(BIN)/python benchmarks/bench_dsl.py
	$(BIN)/python benchmarks/bench_runtime.py $(BENCH_ARGS)

# Idempotent: nothing happens once the binary exists (or ITERLOOP_TEMPORAL_BIN names one).
ifeq ($(strip $(ITERLOOP_TEMPORAL_BIN)),)
temporal: $(TEMPORAL_BIN)
else
temporal:
	@test -x "$(ITERLOOP_TEMPORAL_BIN)" || { \
		echo "make temporal: ITERLOOP_TEMPORAL_BIN=$(ITERLOOP_TEMPORAL_BIN) is not an executable file." >&2; exit 1; }
endif

# With Go: build the pinned release. Without: the SDK downloads it (needs the venv and network).
$(TEMPORAL_BIN): | $(STAMP)
	@mkdir -p $(dir $(TEMPORAL_BIN))
	@if command -v go >/dev/null 2>&1; then \
		echo "make temporal: building the Temporal CLI $(TEMPORAL_VERSION) with Go (a few minutes the first time)"; \
		GOBIN=$(abspath $(dir $(TEMPORAL_BIN))) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION); \
	else \
		echo "make temporal: Go not found (https://go.dev/dl/); downloading the Temporal CLI through the Temporal SDK"; \
		$(BIN)/python -m runtime.devserver download $(abspath $(dir $(TEMPORAL_BIN))) $(TEMPORAL_VERSION); \
	fi
	@test -x $(TEMPORAL_BIN) || { echo "make temporal: could not obtain $(TEMPORAL_BIN);" \
		"install Go and retry, or set ITERLOOP_TEMPORAL_BIN to an existing temporal binary" >&2; exit 1; }

# The dashboard's browser test drives Debian's chromium through Playwright (no browser download).
# Installed with apt-get when missing and we are root; otherwise say how, and go on.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make setup: installing Debian's chromium (for the dashboard's browser test)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
			|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; \
	else \
		echo "make setup: /usr/bin/chromium is missing; the dashboard's browser test needs it" \
			"(sudo apt-get install chromium)" >&2; \
	fi

server: setup
	$(BIN)/iterloop server start

stop: | $(STAMP)
	$(BIN)/iterloop server stop

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .grimp_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
