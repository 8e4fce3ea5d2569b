# iterloop: the few commands a contributor needs. `make test` and `make demo` set everything up.
#
#   make setup   create .venv (Python 3.11+), install iterloop editable with test extras, and
#                obtain the Temporal CLI (dev server) into $(TEMPORAL_BIN) when it is missing,
#                Debian's chromium (the dashboard's browser test) when it is missing (as root), and
#                the pinned Claude Code CLI (the skill's acceptance test) and Codex CLI (the codex
#                delegation tests) into .tools/node/ with npm
#   make test    check the import layers (lint-imports, docs/architecture.md), then run the whole test suite
#   make demo    validate the examples, draw the growth loop, and run it offline on a local
#                Temporal dev server (mock connector, scripted model, local flags; asks at the
#                approval gate on a terminal, --skip-gates otherwise; the dev server is stopped afterwards)
#   make bench   DSL throughput and cold `iterloop validate` time
#   make bench-stats  the growth loop's verdict: A/A false ship/kill rates, power, CUPED
#   make bench-scale / bench-history  many parked runs on one worker; history per growth-loop cycle
#   make bench-cluster / bench-peer  chain, fan-out and N workers on a local cluster; beside LangGraph
#   make temporal  fetch the Temporal CLI (dev server) into $(TEMPORAL_BIN): built with Go, or
#                downloaded through the Temporal SDK when Go is absent (skipped if ITERLOOP_TEMPORAL_BIN is set)
#   make test-cluster  the cluster tier (tests/cluster/): PostgreSQL and Temporal Server $(TEMPORAL_SERVER_VERSION)
#                on loopback ports, set up with `iterloop server setup`, workers killed and the server restarted
#   make temporal-server  build Temporal Server and its schema tool with Go into $(TEMPORAL_SERVER_DIR)
#                (only `make test-cluster` and the cluster benchmarks need them; minutes the first time)
#   make versitygw  build versitygw $(VERSITYGW_VERSION) (an S3 gateway over a directory) with Go into
#                $(VERSITYGW_BIN), for the S3 artifact store's tests (tests/s3_harness.py)
#   make claude-code  install the Claude Code CLI $(CLAUDE_CODE_VERSION) into $(CLAUDE_CODE_DIR) with npm
#                (again only when the pin changes)
#   make codex   install the Codex CLI $(CODEX_VERSION) into $(CODEX_DIR) with npm (again only when the pin changes)
#   make mcp-servers  install the pinned MCP reference servers (filesystem, everything) into .tools/node/
#                with npm, for tests/activities/test_mcp.py (again only when a pin changes)
#   make web     build the browser front end (web/: editor and run console) into api/static/web with npm
#   make server  start the local Temporal dev server in the background (Web UI: http://localhost:8233)
#   make stop    stop it (its data stays in .iterloop/temporal.db)
#   make clean   remove the virtualenv, .tools/ (Claude Code, Codex, MCP servers) and caches

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

# Temporal Server and its SQL schema tool, for the cluster tier (`make test-cluster`) and the cluster
# benchmarks. runtime/local_cluster.py looks for `server` and `sql` in ITERLOOP_TEMPORAL_SERVER_DIR, then here.
TEMPORAL_SERVER_VERSION ?= 1.29.1
TEMPORAL_SERVER_DIR ?= $(HOME)/.cache/iterloop/bin/temporal-server-$(TEMPORAL_SERVER_VERSION)

# versitygw, an S3-compatible server over a directory: tests/s3_harness.py runs it on loopback for the S3
# artifact store's tests. The harness looks for it in ITERLOOP_VERSITYGW_BIN, then here, then on PATH.
VERSITYGW_VERSION ?= v1.8.0
VERSITYGW_BIN ?= $(HOME)/.cache/iterloop/bin/versitygw

# The Claude Code CLI (npm @anthropic-ai/claude-code), installed into the checkout, never globally:
# tests/e2e/test_skill_claude_code.py runs it against a local fake of the Messages API.
# runtime/claude_code.py looks for it in ITERLOOP_CLAUDE_BIN, then here, then on PATH.
CLAUDE_CODE_VERSION ?= 2.1.337
CLAUDE_CODE_DIR := .tools/node
CLAUDE_CODE_STAMP := $(CLAUDE_CODE_DIR)/.claude-code-$(CLAUDE_CODE_VERSION)

# The Codex CLI (npm @openai/codex), installed next to Claude Code, never globally: the `codex`
# delegation backend's tests (tests/activities/test_delegate_codex.py) run it against a local fake
# of the Responses API. runtime/codex_cli.py looks for it in ITERLOOP_CODEX_BIN, then PATH, then here.
CODEX_VERSION ?= 0.171.0
CODEX_DIR := .tools/node
CODEX_STAMP := $(CODEX_DIR)/.codex-$(CODEX_VERSION)

# MCP reference servers (npm), installed next to Claude Code, never globally: the MCP client's tests
# (tests/activities/test_mcp.py, tests/mcp_servers.py) start them as real stdio and HTTP servers.
MCP_SERVER_FILESYSTEM_VERSION ?= 2026.8.31
MCP_SERVER_EVERYTHING_VERSION ?= 2026.8.31
MCP_SERVERS_DIR := .tools/node
MCP_SERVERS_STAMP := $(MCP_SERVERS_DIR)/.mcp-servers-$(MCP_SERVER_FILESYSTEM_VERSION)-$(MCP_SERVER_EVERYTHING_VERSION)

DEMO_WORKFLOW := examples/growth_loop.iter
DEMO_CONFIG := examples/growth_loop.demo.yaml
DEMO_SCRIPT := examples/growth_loop.script.yaml

.PHONY: test-cluster temporal-server
.PHONY: versitygw
.PHONY: setup test demo bench bench-stats temporal chromium claude-code codex mcp-servers web server stop clean

setup: $(STAMP) temporal chromium claude-code codex mcp-servers web versitygw

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
	cd web && npx vitest run
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

# The verdict path's A/A error rates, realised power and CUPED (minutes: not part of `make bench`).
bench-stats: setup
	$(BIN)/python benchmarks/bench_stats.py $(BENCH_STATS_ARGS)

# Scale benchmarks (benchmarks/README.md; minutes each, so not part of `make bench`). The cluster ones
# start PostgreSQL and Temporal Server themselves (`make temporal-server`); bench-peer also installs
# the `bench` extra (LangGraph and its PostgreSQL checkpointer), which nothing else needs.
.PHONY: bench-scale bench-history bench-cluster bench-peer
BENCH_STAMP := $(VENV)/.bench-stamp

bench-scale: setup
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_SCALE_ARGS)

bench-history: setup
	$(BIN)/python benchmarks/bench_history.py $(BENCH_HISTORY_ARGS)

bench-cluster: setup temporal-server
	$(BIN)/python benchmarks/bench_cluster.py $(BENCH_CLUSTER_ARGS)

bench-peer: setup temporal-server $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_peer.py $(BENCH_PEER_ARGS)

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@

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

# The cluster tier: PostgreSQL and Temporal Server on loopback ports, started once per session by
# tests/cluster/conftest.py (not part of `make test`: the default pytest run ignores tests/cluster).
test-cluster: setup temporal-server
	$(BIN)/pytest -q -p no:cacheprovider tests/cluster

# Idempotent: nothing happens once both binaries exist (or ITERLOOP_TEMPORAL_SERVER_DIR names a directory
# holding them). Needs Go: built from source, about 7 minutes the first time.
temporal-server:
	@dir="$${ITERLOOP_TEMPORAL_SERVER_DIR:-$(TEMPORAL_SERVER_DIR)}"; \
	if [ -x "$$dir/server" ] && [ -x "$$dir/sql" ]; then :; \
	elif [ -n "$$ITERLOOP_TEMPORAL_SERVER_DIR" ]; then \
		echo "make temporal-server: ITERLOOP_TEMPORAL_SERVER_DIR=$$dir holds no executable \`server\` and \`sql\`" >&2; exit 1; \
	elif ! command -v go >/dev/null 2>&1; then \
		echo "make temporal-server: Go is needed to build Temporal Server $(TEMPORAL_SERVER_VERSION)" \
			"(https://go.dev/dl/), or set ITERLOOP_TEMPORAL_SERVER_DIR to a directory holding its \`server\` and \`sql\`" >&2; \
		exit 1; \
	else \
		echo "make temporal-server: building Temporal Server $(TEMPORAL_SERVER_VERSION) and its schema tool with Go" \
			"into $$dir (about 7 minutes the first time)"; \
		mkdir -p "$$dir" && GOBIN="$$(cd "$$dir" && pwd)" go install \
			go.temporal.io/server/cmd/server@v$(TEMPORAL_SERVER_VERSION) \
			go.temporal.io/server/cmd/tools/sql@v$(TEMPORAL_SERVER_VERSION) \
		&& test -x "$$dir/server" && test -x "$$dir/sql" \
		|| { echo "make temporal-server: could not build Temporal Server into $$dir (go's output is above)" >&2; exit 1; }; \
	fi

# Idempotent: nothing happens once the binary exists (or ITERLOOP_VERSITYGW_BIN names one). Needs Go (about a minute the first time); without
# it, say how to get it and go on (the S3 tests then fail, saying so).
ifeq ($(strip $(ITERLOOP_VERSITYGW_BIN)),)
versitygw: $(VERSITYGW_BIN)
else
versitygw:
	@test -x "$(ITERLOOP_VERSITYGW_BIN)" || { \
		echo "make versitygw: ITERLOOP_VERSITYGW_BIN=$(ITERLOOP_VERSITYGW_BIN) is not an executable file." >&2; exit 1; }
endif

$(VERSITYGW_BIN):
	@mkdir -p $(dir $(VERSITYGW_BIN))
	@if command -v go >/dev/null 2>&1; then \
		echo "make versitygw: building versitygw $(VERSITYGW_VERSION) with Go (for the S3 artifact store's tests)"; \
		GOBIN=$(abspath $(dir $(VERSITYGW_BIN))) go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION) \
		|| { echo "make versitygw: could not build versitygw $(VERSITYGW_VERSION) (Go's output is above)" >&2; exit 1; }; \
	else \
		echo "make setup: Go is missing (https://go.dev/dl/); the S3 artifact store's tests need versitygw" \
			"(or set ITERLOOP_VERSITYGW_BIN to one)" >&2; \
	fi

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

claude-code: $(CLAUDE_CODE_STAMP)

# The stamp's name carries the version, so a new pin installs again and nothing else does.
# Without npm: say how to get it, and go on (the Claude Code test then fails, saying so).
$(CLAUDE_CODE_STAMP):
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "make setup: npm is missing; the skill's Claude Code test needs Node.js 20+ with npm" \
			"(https://nodejs.org, or: sudo apt-get install nodejs npm)" >&2; \
	else \
		echo "make setup: installing Claude Code $(CLAUDE_CODE_VERSION) into $(CLAUDE_CODE_DIR) (for the skill's test)"; \
		mkdir -p $(CLAUDE_CODE_DIR) \
		&& npm install --prefix $(CLAUDE_CODE_DIR) --no-audit --no-fund --save-exact --loglevel=error \
			@anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) \
		&& $(CLAUDE_CODE_DIR)/node_modules/.bin/claude --version >/dev/null \
		|| { echo "make claude-code: could not install Claude Code $(CLAUDE_CODE_VERSION) into $(CLAUDE_CODE_DIR)" \
			"(npm's output is above; its postinstall script puts the native binary in place)" >&2; exit 1; }; \
		rm -f $(CLAUDE_CODE_DIR)/.claude-code-*; touch $@; \
	fi

codex: $(CODEX_STAMP)

# Like Claude Code's: the stamp names the pin. After mcp-servers (order only, which comes after
# claude-code), so two npm installs never write the same directory at once under `make -j`.
$(CODEX_STAMP): | mcp-servers
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "make setup: npm is missing; the codex delegation tests need Node.js 20+ with npm" \
			"(https://nodejs.org, or: sudo apt-get install nodejs npm)" >&2; \
	else \
		echo "make setup: installing Codex $(CODEX_VERSION) into $(CODEX_DIR) (for the codex delegation tests)"; \
		mkdir -p $(CODEX_DIR) \
		&& npm install --prefix $(CODEX_DIR) --no-audit --no-fund --save-exact --loglevel=error \
			@openai/codex@$(CODEX_VERSION) \
		&& $(CODEX_DIR)/node_modules/.bin/codex --version >/dev/null \
		|| { echo "make codex: could not install Codex $(CODEX_VERSION) into $(CODEX_DIR)" \
			"(npm's output is above; the package pulls its native binary as an optional dependency)" >&2; exit 1; }; \
		rm -f $(CODEX_DIR)/.codex-*; touch $@; \
	fi

mcp-servers: $(MCP_SERVERS_STAMP)

# Like Claude Code's: the stamp names the pins. After claude-code (order only), so two npm installs
# never write the same directory at once under `make -j`.
$(MCP_SERVERS_STAMP): | claude-code
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "make setup: npm is missing; the MCP tests need Node.js 20+ with npm" \
			"(https://nodejs.org, or: sudo apt-get install nodejs npm)" >&2; \
	else \
		echo "make setup: installing the MCP servers filesystem $(MCP_SERVER_FILESYSTEM_VERSION) and everything" \
			"$(MCP_SERVER_EVERYTHING_VERSION) into $(MCP_SERVERS_DIR) (for the MCP tests)"; \
		mkdir -p $(MCP_SERVERS_DIR) \
		&& npm install --prefix $(MCP_SERVERS_DIR) --no-audit --no-fund --save-exact --loglevel=error \
			@modelcontextprotocol/server-filesystem@$(MCP_SERVER_FILESYSTEM_VERSION) \
			@modelcontextprotocol/server-everything@$(MCP_SERVER_EVERYTHING_VERSION) \
		&& test -x $(MCP_SERVERS_DIR)/node_modules/.bin/mcp-server-filesystem \
		&& test -x $(MCP_SERVERS_DIR)/node_modules/.bin/mcp-server-everything \
		|| { echo "make mcp-servers: could not install the MCP servers into $(MCP_SERVERS_DIR)" \
			"(npm's output is above)" >&2; exit 1; }; \
		rm -f $(MCP_SERVERS_DIR)/.mcp-servers-*; touch $@; \
	fi

# The browser front end (web/: the editor and the run console), built with the machine's Node/npm into
# api/static/web, which the Python package serves. Rebuilt only when web/'s sources or pins change.
WEB_OUT := api/static/web/.vite/manifest.json
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/package.json web/package-lock.json \
	web/vite.config.ts web/tsconfig.json web/editor.html web/console.html

web: $(WEB_OUT)

web/node_modules/.stamp: web/package.json web/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make web: npm is missing; the editor and run console need" \
		"Node.js 20+ with npm (https://nodejs.org, or: sudo apt-get install nodejs npm)" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_OUT): web/node_modules/.stamp $(WEB_SOURCES)
	cd web && npx vite build --logLevel warn

server: setup
	$(BIN)/iterloop server start

stop: | $(STAMP)
	$(BIN)/iterloop server stop

clean:
	rm -rf $(VENV) .tools web/node_modules api/static/web build dist *.egg-info .pytest_cache .hypothesis .grimp_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
