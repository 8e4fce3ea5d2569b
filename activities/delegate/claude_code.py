"""The `claude_code` delegation backend: one `claude -p` run per node visit.

The command line (flags of the Claude Code CLI the Makefile pins, checked with `claude --help`):

- `-p --output-format stream-json --verbose`, the prompt on stdin: one JSON event per line — `system` (init:
  the session id), `assistant` (text, tool uses), `user` (tool results), and a final `result`
  (the answer, `structured_output`, `total_cost_usd`, usage, `is_error`).
- `--append-system-prompt-file`: the node's system prompt is added to Claude Code's own, which
  holds what the agent needs to use its tools. Prompts are files and stdin, never arguments: any
  local user can read a process's arguments, and one argument is limited to 128 KiB.
- `--max-turns` from the node's `tool_max_steps`: the agent's own turn limit.
- `--json-schema`: the node's output schema; the CLI makes the model answer through its
  `StructuredOutput` tool and returns the value as `structured_output`. The activity validates it
  again against the iterloop schema (constraints the JSON Schema cannot carry).
- `--model` (after `${ENV}` expansion on the worker), `--effort` for a reasoning effort (as Anthropic
  spells it: `extra_high` → `max`; `${VAR:-level}` expanded here).
- Tools: `readonly` → `--permission-mode plan` (Claude Code analyses, never edits or runs
  commands) and the mutating tools disallowed outright; otherwise `--permission-mode acceptEdits`
  (edits inside the working directory), with the node's `tools:` mapped to `--allowedTools`
  (`shell` → `Bash`, `mcp.S.T` → `mcp__S__T`, a name Claude Code knows passes as is).
- MCP: the node's servers in a JSON file (`--mcp-config`, written in a private temporary folder
  and deleted after the run, `${ENV}` expanded here) with `--strict-mcp-config`, so the user's own
  MCP configuration never leaks into a run.
- Sessions: `--resume ID` (and `--fork-session` for `session: fork`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from activities.delegate.cli_process import CliExit, run_cli
from activities.delegate.stream import SUMMARY_CHARS, StepStream, answer_json_schema, clip, first_line
from activities.errors import CommandFailedError
from activities.llm.reasoning import ANTHROPIC_EFFORT, effective_effort
from activities.mcp.servers import resolve_server
from workflows.contract.delegation import DelegateRequest, DelegateResult, DelegateStep
from workflows.contract.env_refs import expand_env
from workflows.contract.mcp import McpServerSpec
from workflows.contract.messages import Usage

PROVIDER = "claude_code"
#: Claude Code's tools that change the workspace or run commands: never allowed to a readonly node.
MUTATING_TOOLS = ("Bash", "Edit", "MultiEdit", "Write", "NotebookEdit")
#: iterloop tool names with a Claude Code counterpart.
TOOL_NAMES = {"shell": "Bash", "read_file": "Read", "write_file": "Write", "edit_file": "Edit",
              "grep": "Grep", "glob": "Glob", "web_fetch": "WebFetch", "web_search": "WebSearch"}


def allowed_tools(tools: list[str]) -> list[str]:
    """The node's `tools:` as Claude Code tool names (MCP tools `mcp.S.T` → `mcp__S__T`)."""
    out: list[str] = []
    for name in tools:
        if name.startswith("mcp."):
            parts = name.split(".", 2)
            out.append("mcp__" + "__".join(parts[1:]) if len(parts) == 3 and parts[2] != "*" else f"mcp__{parts[1]}")
        else:
            out.append(TOOL_NAMES.get(name, name))
    return out


def cli_model(model: str) -> str:
    """The `--model` value: iterloop's `anthropic/ID` is the CLI's `ID`; another provider's model
    cannot run in Claude Code, so the CLI's default is used ("")."""
    provider, sep, name = model.strip().partition("/")
    if not sep:
        return provider
    return name if provider == "anthropic" else ""


def mcp_config(servers: list[McpServerSpec], cwd: str | None) -> dict[str, Any]:
    """The servers in Claude Code's `--mcp-config` format, resolved on the worker as the MCP pool
    resolves them (`.mcp.json` entries read, `${ENV}` expanded)."""
    config: dict[str, Any] = {}
    for spec in servers:
        s = resolve_server(spec, cwd=cwd)
        if s.transport == "stdio":
            entry: dict[str, Any] = {"type": "stdio", "command": s.command, "args": list(s.args)}
            if s.env:
                entry["env"] = dict(s.env)
        else:
            entry = {"type": s.transport, "url": s.url}
            if s.headers:
                entry["headers"] = dict(s.headers)
        config[s.name] = entry
    return {"mcpServers": config}


def prompt_text(req: DelegateRequest) -> str:
    """What the agent is asked (its stdin)."""
    return req.user or json.dumps(req.input, ensure_ascii=False, sort_keys=True)


def private_file(path: Path, text: str) -> str:
    """Write ``text`` to ``path``, created private (0600) before anything is written: prompts and MCP
    configurations may hold what only this run should read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def command_line(req: DelegateRequest, binary: Path, private_dir: Path, env: dict[str, str]) -> list[str]:
    """The `claude -p` argv; the prompt is read from stdin (see `run`), the system prompt and the MCP
    servers from files in ``private_dir``, so neither shows in the process list."""
    argv = [str(binary), "-p", "--output-format", "stream-json", "--verbose"]
    if req.system:
        argv += ["--append-system-prompt-file", private_file(private_dir / "system.txt", req.system)]
    if req.max_turns:
        argv += ["--max-turns", str(req.max_turns)]
    schema = answer_json_schema(req)
    if schema is not None:
        argv += ["--json-schema", json.dumps(schema)]
    model = cli_model(expand_env(req.model, env)) if req.model else ""
    if model:
        argv += ["--model", model]
    effort = ANTHROPIC_EFFORT.get(effective_effort(req.reasoning_effort, env), "")
    if effort:
        argv += ["--effort", effort]
    if req.readonly:
        argv += ["--permission-mode", "plan", "--disallowedTools", ",".join(MUTATING_TOOLS)]
        tools = [t for t in allowed_tools(req.tools) if t not in MUTATING_TOOLS]
    else:
        argv += ["--permission-mode", "acceptEdits"]
        tools = allowed_tools(req.tools)
    if tools:
        argv += ["--allowedTools", ",".join(tools)]
    if req.mcp_servers:
        path = private_file(private_dir / "mcp.json", json.dumps(mcp_config(req.mcp_servers, req.cwd)))
        argv += ["--mcp-config", path, "--strict-mcp-config"]
    else:
        argv += ["--strict-mcp-config"]  # no MCP server of the user's own configuration
    if req.resume_session:
        argv += ["--resume", req.resume_session]
        if req.fork_session:
            argv.append("--fork-session")
    return argv


class StreamParser(StepStream):
    """Reads `stream-json` lines: keeps the session id, the steps (bounded), the final result."""

    def __init__(self, on_step: Callable[[DelegateStep], None]) -> None:
        super().__init__(on_step)
        self.result: dict[str, Any] | None = None
        self.last_text = ""

    def feed(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # not an event (a stray line of a hook or a plugin)
        if not isinstance(event, dict):
            return
        self.session_id = str(event.get("session_id") or self.session_id)
        kind = event.get("type")
        if kind == "result":
            self.result = event
        elif kind in ("assistant", "user"):
            content = (event.get("message") or {}).get("content")
            for block in content if isinstance(content, list) else []:
                step = _step(block)
                if step is not None:
                    if step.kind == "message":
                        self.last_text = str(block.get("text", ""))
                    self._keep(step)

    def outcome(self, done: CliExit, req: DelegateRequest, model: str) -> DelegateResult:
        result = self.result
        if result is None or (done.returncode != 0 and result.get("is_error")):
            reason = (result or {}).get("result") or f"exit code {done.returncode}, no result event"
            raise CommandFailedError(f"claude_code for node '{req.node_id}' failed: {clip(str(reason), 600)}",
                                     details={"stderr_tail": done.stderr_tail, "exit_code": done.returncode})
        text = str(result.get("result") or self.last_text)
        usage = _usage(result, model)
        common = self.common(text, usage)
        if result.get("is_error"):
            return DelegateResult(status="invalid", invalid_reason=f"the agent stopped with an error: "
                                  f"{clip(str(result.get('subtype', '')) + ' ' + text, 400)}", **common)
        return self.answer(req, text, common, structured=result.get("structured_output"))


async def run(req: DelegateRequest, *, binary: Path, on_step: Callable[[DelegateStep], None]) -> DelegateResult:
    env = dict(os.environ)
    parser = StreamParser(on_step)
    with tempfile.TemporaryDirectory(prefix="iterloop-claude-") as private:  # mode 0700
        argv = command_line(req, binary, Path(private), env)
        prompt = private_file(Path(private) / "prompt.txt", prompt_text(req))
        done = await run_cli(argv, cwd=req.cwd, env=env, on_line=parser.feed, stdin_path=prompt,
                             timeout_seconds=req.timeout_seconds, what=f"claude_code for node '{req.node_id}'")
    return parser.outcome(done, req, cli_model(expand_env(req.model, env)) if req.model else "")


def _step(block: Any) -> DelegateStep | None:
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text" and str(block.get("text", "")).strip():
        return DelegateStep(kind="message", summary=first_line(block["text"]))
    if kind == "thinking":
        return DelegateStep(kind="thinking", summary=first_line(str(block.get("thinking", ""))))
    if kind == "tool_use":
        name = str(block.get("name", ""))
        args = block.get("input") if isinstance(block.get("input"), dict) else {}
        main = next((str(v) for k, v in args.items() if k in ("file_path", "command", "pattern", "path", "url")),
                    json.dumps(args, ensure_ascii=False)[:SUMMARY_CHARS])
        return DelegateStep(kind="tool_use", tool=name, summary=first_line(f"{name} {main}"))
    if kind == "tool_result":
        content = block.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return DelegateStep(kind="tool_result", summary=first_line(("error: " if block.get("is_error") else "") + text))
    return None


def _usage(result: dict[str, Any], model: str) -> Usage:
    raw = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    cached = int(raw.get("cache_read_input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    input_tokens = int(raw.get("input_tokens") or 0) + cached + written
    output_tokens = int(raw.get("output_tokens") or 0)
    used_models = list((result.get("modelUsage") or {}).keys()) if isinstance(result.get("modelUsage"), dict) else []
    cost = result.get("total_cost_usd")
    priced = isinstance(cost, (int, float))
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens,
                 cached_tokens=cached, cache_write_tokens=written, cost_usd=float(cost) if priced else 0.0,
                 calls=max(int(result.get("num_turns") or 1), 1), provider=PROVIDER,
                 model=model or (used_models[0] if used_models else ""), unpriced_calls=0 if priced else 1)






