"""The `codex` delegation backend: one `codex exec --json` run per node visit.

The command line (flags of the Codex CLI the Makefile pins, CODEX_VERSION, checked with
`codex exec --help`):

- `exec --json`: one JSON event per line — `thread.started` (the session id), `item.started` /
  `item.completed` (agent messages, reasoning, command executions, file changes, MCP tool calls,
  web searches, errors), `turn.completed` (token usage) or `turn.failed`.
- The prompt goes through stdin (`-`, from a private file): a long prompt would not fit in one
  argument. The node's system prompt is `-c developer_instructions=…`, a developer message the
  CLI adds after its own instructions (which tell the agent how to use its tools). Codex takes
  developer instructions only as a config value, so the system prompt is the one text of a visit
  on its command line (workflow text and template values; never a secret, which `${ENV}` in a
  prompt never expands to). Codex has no turn limit to map `tool_max_steps` to.
- `--output-schema FILE`: the node's output schema in the strict form the Responses API enforces
  (`text.format`), so the agent's last message is the answer as JSON. A schema with no strict
  form (a free-form `json` field) is asked for in the prompt instead. The activity validates the
  answer against the iterloop schema either way.
- `-m MODEL` after `${ENV}` expansion on the worker (an `openai/` prefix dropped); none lets the
  CLI choose. `-c model_reasoning_effort=…` for a reasoning effort, as OpenAI spells it
  (`extra_high` → `xhigh`).
- `-C CWD`, `--skip-git-repo-check` (a run's directory need not be a repository),
  `-s read-only` for a `readonly` node, else `-s workspace-write` (edits inside the working
  directory), and `-c approval_policy="never"`: nobody is there to approve, a command the sandbox
  refuses fails and the agent sees why.
- MCP: each of the node's servers as `-c mcp_servers.NAME={…}` (resolved and `${ENV}` expanded
  here, by `activities.mcp.servers`); a server's environment and headers go in the CLI's own
  environment, named by the table's `env_vars` / `env_http_headers`, never on the command line. Codex speaks stdio and streamable HTTP, not SSE. Codex's
  sandbox does not reach an MCP server's own effects, so the server's `enabled_tools` narrow what
  the agent may call: the node's `tools:` entries naming that server (`mcp.S.T`), and on a
  `readonly` node only the tools the server marks read-only (listed through the worker's MCP pool,
  `activities.mcp.pool`).
- Sessions: `exec resume ID` continues a session; `exec fork ID` continues a copy (`session:
  fork`), whose new id comes back in `thread.started`. Both live in the CLI's own `CODEX_HOME`.

Cost: the CLI reports tokens, not USD. They are priced here as OpenAI's, with the table model turns
use (`activities.llm.pricing`: the worker's price file over the shipped prices); without a model
name (the CLI's default, which the stream does not name) or a known price the visit counts as
unpriced.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from activities.delegate.cli_process import CliExit, run_cli
from activities.delegate.stream import StepStream, answer_json_schema, clip, first_line
from activities.errors import BadRequestError, CommandFailedError
from activities.llm.activity import current_settings
from activities.llm.pricing import PriceTable, turn_price_table
from activities.llm.provider import OPENAI, TokenCounts, model_id
from activities.llm.reasoning import OPENAI_EFFORT, effective_effort
from activities.llm.structured_output import strict_json_schema
from activities.mcp.pool import list_tools
from activities.mcp.servers import resolve_server
from workflows.contract.delegation import DelegateRequest, DelegateResult, DelegateStep
from workflows.contract.env_refs import expand_env
from workflows.contract.mcp import MCP_PREFIX, McpServerSpec
from workflows.contract.messages import Usage

PROVIDER = "codex"
#: A server name must be one key of Codex's dotted `-c` path.
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


# -- the command line ----------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    """``value`` as a TOML value for a `-c key=value` override (strings always quoted, so a prompt
    such as `true` or `42` stays text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F
                          else "\\" + c if c in '"\\' else c for c in value)
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def named_mcp_tools(tools: list[str]) -> dict[str, set[str] | None]:
    """Per server, the tools the node's `tools:` name (`mcp.S.T`); None for a whole server (`mcp.S.*`
    or `mcp.S`). A server the list does not name is absent: all its tools."""
    named: dict[str, set[str] | None] = {}
    for entry in tools:
        if not entry.startswith(MCP_PREFIX):
            continue
        server, _, tool = entry[len(MCP_PREFIX):].partition(".")
        if not server:
            continue
        so_far = named.get(server, set())
        named[server] = None if tool in ("", "*") or so_far is None else so_far | {tool}
    return named


async def enabled_mcp_tools(req: DelegateRequest) -> dict[str, list[str]]:
    """Per server whose tools must be narrowed, the tools the agent may call (see the module doc)."""
    named = named_mcp_tools(req.tools)
    enabled: dict[str, list[str]] = {}
    for spec in req.mcp_servers:
        allowed = named.get(spec.name)
        if req.readonly:
            read_only = {t.name for t in await list_tools(spec, cwd=req.cwd) if not t.mutating}
            allowed = read_only if allowed is None else allowed & read_only
        if allowed is not None:
            enabled[spec.name] = sorted(allowed)
    return enabled


def mcp_overrides(servers: list[McpServerSpec], cwd: str | None,
                  enabled: dict[str, list[str]] | None = None, env: dict[str, str] | None = None) -> list[str]:
    """``-c mcp_servers.NAME={…}`` for each server, resolved and expanded on the worker; a server
    named in ``enabled`` offers only those tools. A server's environment and headers (tokens, often)
    never go on the command line, which any local user can read: they are put in ``env``, the CLI's
    environment, and the server's table names them (`env_vars`, `env_http_headers`)."""
    argv: list[str] = []
    env = {} if env is None else env
    for spec in servers:
        server = resolve_server(spec, cwd=cwd)
        if not _SERVER_NAME.match(server.name):
            raise BadRequestError(f"codex: MCP server name '{server.name}' cannot be passed to the Codex CLI; "
                                  "use letters, digits, '-' and '_' only")
        entry: dict[str, Any]
        if server.transport == "stdio":
            entry = {"command": server.command, "args": list(server.args)}
            if server.env:
                entry["env_vars"] = forwarded_env(server.name, dict(server.env), env)
            if server.cwd:
                entry["cwd"] = server.cwd
        elif server.transport == "http":
            entry = {"url": server.url}
            if server.headers:
                entry["env_http_headers"] = header_vars(server.name, dict(server.headers), env)
        else:
            raise BadRequestError(f"codex: {server.describe()} uses SSE, which the Codex CLI does not speak; "
                                  "give the server's streamable HTTP URL (transport \"http\") or a command")
        if enabled is not None and spec.name in enabled:
            entry["enabled_tools"] = enabled[spec.name]
        argv += ["-c", f"mcp_servers.{server.name}={toml_value(entry)}"]
    return argv


def forwarded_env(server: str, wanted: dict[str, str], env: dict[str, str]) -> list[str]:
    """Codex forwards a variable of its own environment to a stdio server under the same name
    (`env_vars`): set each in ``env``; a name the CLI's environment holds with another value cannot
    be given to the server, and saying so beats starting it with the wrong one."""
    for name, value in wanted.items():
        if env.get(name, value) != value:
            raise BadRequestError(f"codex: MCP server '{server}' sets {name}, which the Codex CLI's own environment "
                                  f"holds with another value; Codex gives a server a variable only under its own name, "
                                  f"so it cannot give this server a different {name}: remove it from the server's env, "
                                  "or delegate this node to claude_code")
        env[name] = value
    return sorted(wanted)


def header_vars(server: str, headers: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """Each header's value in a variable of the CLI's environment, named for `env_http_headers`.
    The names hold TOKEN, which Codex's default shell environment policy keeps from the agent's
    own commands."""
    names: dict[str, str] = {}
    tag = re.sub(r"[^A-Za-z0-9]", "_", server).upper()
    for i, (header, value) in enumerate(sorted(headers.items())):
        var = f"ITERLOOP_MCP_TOKEN_{tag}_{i}"
        env[var] = value
        names[header] = var
    return names


def answer_schema(req: DelegateRequest) -> dict[str, Any] | None:
    """The output schema in strict form for `--output-schema`, or None (no schema, or none strict)."""
    schema = answer_json_schema(req)
    return None if schema is None else strict_json_schema(schema)


def prompt_text(req: DelegateRequest) -> str:
    """What the agent is asked (stdin). A schema `--output-schema` cannot carry is asked for here."""
    prompt = req.user or json.dumps(req.input, ensure_ascii=False, sort_keys=True)
    if req.output_schema is not None and answer_schema(req) is None:
        schema = json.dumps(answer_json_schema(req), ensure_ascii=False)
        prompt += ("\n\nWhen you are done, answer with one JSON object, and nothing else, that matches this "
                   f"JSON Schema:\n{schema}")
    return prompt


def command_line(req: DelegateRequest, binary: Path, private_dir: Path, env: dict[str, str],
                 enabled_tools: dict[str, list[str]] | None = None) -> list[str]:
    """The `codex exec` argv; its prompt is read from stdin (see `run`). ``enabled_tools``: from
    `enabled_mcp_tools`. ``env`` (the CLI's environment) receives the MCP servers' values."""
    argv = [str(binary), "exec", "--json", "--skip-git-repo-check",
            "-s", "read-only" if req.readonly else "workspace-write", "-c", 'approval_policy="never"']
    if req.cwd:
        argv += ["-C", req.cwd]
    model = expanded_model(req, env)
    if model:
        argv += ["-m", model]
    effort = OPENAI_EFFORT.get(effective_effort(req.reasoning_effort, env), "")
    if effort:
        argv += ["-c", f"model_reasoning_effort={toml_value(effort)}"]
    if req.system:
        argv += ["-c", f"developer_instructions={toml_value(req.system)}"]
    schema = answer_schema(req)
    if schema is not None:
        path = private_dir / "output-schema.json"
        path.write_text(json.dumps(schema))
        argv += ["--output-schema", str(path)]
    argv += mcp_overrides(req.mcp_servers, req.cwd, enabled_tools, env)
    if req.resume_session:
        argv += ["fork" if req.fork_session else "resume", req.resume_session]
    argv.append("-")
    return argv


def expanded_model(req: DelegateRequest, env: Mapping[str, str]) -> str:
    return model_id(expand_env(req.model, env).strip()) if req.model else ""


# -- the event stream ----------------------------------------------------------------------------

class EventParser(StepStream):
    """Reads `codex exec --json` lines: the session id, the steps (bounded), the last message,
    the usage of the turn, and a failure if the turn failed."""

    def __init__(self, on_step: Callable[[DelegateStep], None]) -> None:
        super().__init__(on_step)
        self.last_message = ""
        self.tokens = TokenCounts()
        self.turns = 0
        self.failure = ""
        self._started: set[str] = set()

    def feed(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # not an event (a stray line of a plugin)
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "thread.started":
            self.session_id = str(event.get("thread_id") or self.session_id)
        elif kind == "turn.completed":
            self._add_usage(event.get("usage"))
        elif kind == "turn.failed":
            self.failure = str((event.get("error") or {}).get("message") or "the turn failed")
        elif kind == "error":
            self.failure = str(event.get("message") or "error")
        elif kind in ("item.started", "item.completed") and isinstance(event.get("item"), dict):
            self._item(event["item"], started=kind == "item.started")

    def _item(self, item: dict[str, Any], *, started: bool) -> None:
        kind, item_id = item.get("type"), str(item.get("id", ""))
        if started:
            self._started.add(item_id)
            step = _tool_use(item)
            if step is not None:
                self._keep(step)
            return
        if kind == "agent_message":
            self.last_message = str(item.get("text", ""))
            self._keep(DelegateStep(kind="message", summary=first_line(self.last_message)))
        elif kind == "reasoning":
            self._keep(DelegateStep(kind="thinking", summary=first_line(str(item.get("text", "")))))
        elif kind == "error":
            self._keep(DelegateStep(kind="other", summary=first_line(str(item.get("message", "")))))
        else:
            use = _tool_use(item)
            if use is not None and item_id not in self._started:
                self._keep(use)
            result = _tool_result(item)
            if result is not None:
                self._keep(result)

    def _add_usage(self, raw: Any) -> None:
        raw = raw if isinstance(raw, dict) else {}
        t = self.tokens
        self.tokens = TokenCounts(
            input_tokens=t.input_tokens + int(raw.get("input_tokens") or 0),
            output_tokens=t.output_tokens + int(raw.get("output_tokens") or 0),
            cached_tokens=t.cached_tokens + int(raw.get("cached_input_tokens") or 0),
            cache_write_tokens=t.cache_write_tokens + int(raw.get("cache_write_input_tokens") or 0),
            reasoning_tokens=t.reasoning_tokens + int(raw.get("reasoning_output_tokens") or 0))
        self.turns += 1

    def usage(self, model: str, prices: PriceTable) -> Usage:
        t = self.tokens
        usage = Usage(provider=PROVIDER, model=model, input_tokens=t.input_tokens, output_tokens=t.output_tokens,
                      cached_tokens=t.cached_tokens, cache_write_tokens=t.cache_write_tokens,
                      reasoning_tokens=t.reasoning_tokens, calls=max(self.turns, 1))
        cost = prices.cost(OPENAI, model, t) if model else None
        if cost is None or cost.source == "unknown":
            return usage.model_copy(update={"unpriced_calls": usage.calls})
        return usage.model_copy(update={"cost_usd": cost.usd, "cache_savings_usd": cost.cache_savings_usd})

    def outcome(self, done: CliExit, req: DelegateRequest, model: str, prices: PriceTable) -> DelegateResult:
        if self.failure or done.returncode != 0 or self.turns == 0:
            reason = self.failure or f"exit code {done.returncode}, no completed turn"
            raise CommandFailedError(f"codex for node '{req.node_id}' failed: {clip(reason, 600)}",
                                     details={"stderr_tail": done.stderr_tail, "exit_code": done.returncode})
        text = self.last_message
        return self.answer(req, text, self.common(text, self.usage(model, prices)))


async def run(req: DelegateRequest, *, binary: Path, on_step: Callable[[DelegateStep], None],
              prices: PriceTable | None = None) -> DelegateResult:
    """Run the Codex CLI for one visit of a delegated node (see the module doc). ``prices``: the
    table to price its tokens with (default: the one model turns use, the worker's price file over
    the shipped prices)."""
    env = dict(os.environ)
    parser = EventParser(on_step)
    with tempfile.TemporaryDirectory(prefix="iterloop-codex-") as private:  # mode 0700
        folder = Path(private)
        argv = command_line(req, binary, folder, env, await enabled_mcp_tools(req))
        prompt = folder / "prompt.txt"
        prompt.write_text(prompt_text(req))
        done = await run_cli(argv, cwd=req.cwd, env=env, on_line=parser.feed, stdin_path=str(prompt),
                             timeout_seconds=req.timeout_seconds, what=f"codex for node '{req.node_id}'")
    table = prices or turn_price_table(current_settings().prices_file)
    return parser.outcome(done, req, expanded_model(req, env), table)


# -- steps ---------------------------------------------------------------------------------------

def _tool_use(item: dict[str, Any]) -> DelegateStep | None:
    kind = item.get("type")
    if kind == "command_execution":
        return DelegateStep(kind="tool_use", tool="shell", summary=first_line(f"shell {item.get('command', '')}"))
    if kind == "mcp_tool_call":
        name = f"mcp.{item.get('server', '')}.{item.get('tool', '')}"
        args = json.dumps(item.get("arguments"), ensure_ascii=False)
        return DelegateStep(kind="tool_use", tool=name, summary=first_line(f"{name} {args}"))
    if kind == "file_change":
        changes = item.get("changes") if isinstance(item.get("changes"), list) else []
        files = ", ".join(f"{c.get('kind', '')} {c.get('path', '')}".strip() for c in changes if isinstance(c, dict))
        return DelegateStep(kind="tool_use", tool="apply_patch", summary=first_line(f"apply_patch {files}"))
    if kind == "web_search":
        return DelegateStep(kind="tool_use", tool="web_search", summary=first_line(f"web_search {item.get('query', '')}"))
    return None


def _tool_result(item: dict[str, Any]) -> DelegateStep | None:
    kind = item.get("type")
    if kind == "command_execution":
        output = str(item.get("aggregated_output") or "")
        return DelegateStep(kind="tool_result", tool="shell",
                            summary=first_line(f"exit {item.get('exit_code')}: {output}"))
    if kind == "mcp_tool_call":
        error = item.get("error")
        text = f"error: {error.get('message', error) if isinstance(error, dict) else error}" if error else \
            json.dumps(item.get("result"), ensure_ascii=False)
        return DelegateStep(kind="tool_result", tool=f"mcp.{item.get('server', '')}.{item.get('tool', '')}",
                            summary=first_line(text))
    if kind == "todo_list":
        items = item.get("items") if isinstance(item.get("items"), list) else []
        return DelegateStep(kind="other", summary=first_line(
            "plan: " + "; ".join(str(i.get("text", "")) for i in items if isinstance(i, dict))))
    return None






