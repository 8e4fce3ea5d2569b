"""Diagnostics are data: a code, a severity, a position, a message and a fix hint.

They are produced by the lexer, parser, compiler and validator and rendered only at the edge
(the CLI, the API). Codes E001–E021 and C001–C036 keep the meaning they have in Iterion so users
can look them up; codes from E100/C100 on are iterloop's own checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning"]


class Phase(str, Enum):
    PARSE = "parse"
    COMPILE = "compile"
    VALIDATE = "validate"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What a code means, for the docs and for the default hint."""

    code: str
    severity: Severity
    phase: Phase
    title: str
    hint: str


def _c(code: str, severity: Severity, phase: Phase, title: str, hint: str) -> CodeInfo:
    return CodeInfo(code, severity, phase, title, hint)


P, C, V = Phase.PARSE, Phase.COMPILE, Phase.VALIDATE

#: Every code iterloop can emit. Severity here is the usual one; C018 is a warning for llm routers.
CODES: dict[str, CodeInfo] = {
    info.code: info
    for info in (
        _c("E001", "error", P, "unexpected token",
           "Start the line with a declaration keyword (agent, judge, router, join, human, tool, wait, "
           "prompt, schema, vars, presets, mcp_server, workflow) or fix the indentation."),
        _c("E002", "error", P, "expected token",
           "Write the missing token or value of the expected kind at this position."),
        _c("E003", "error", P, "bad indentation",
           "Indent with spaces only (2 per level by convention) and dedent back to an enclosing level."),
        _c("E004", "error", P, "unterminated string",
           "Close the string with a double quote on the same line."),
        _c("E011", "error", P, "reserved name",
           "'done' and 'fail' are the built-in terminal nodes; choose another name."),
        _c("E012", "error", P, "unknown property",
           "Check the spelling; the docs list every property of each block (docs/language.md)."),
        _c("E020", "error", P, "invalid value",
           "Use one of the values listed in the message."),
        _c("E021", "error", P, "invalid type",
           "Use one of: string, bool, int, float, json, string[]."),
        _c("E100", "error", P, "invalid encoding",
           "Save the file as UTF-8."),
        _c("C001", "error", C, "unknown node in edge",
           "Declare the node, or fix the name; 'done' and 'fail' are always available."),
        _c("C002", "error", C, "unknown schema",
           "Declare the schema with 'schema NAME:' or fix the reference."),
        _c("C003", "error", C, "unknown prompt",
           "Declare the prompt with 'prompt NAME:' or fix the reference."),
        _c("C004", "error", C, "malformed template",
           "Write references as {{vars.X}}, {{input.X}}, {{outputs.NODE[.FIELD]}} or {{artifacts.X}}, "
           "each closed with }}."),
        _c("C005", "error", C, "conflicting loop bounds",
           "Give every edge of the loop the same bound, e.g. 'as fix_loop(3)' everywhere."),
        _c("C006", "error", C, "no workflow",
           "Add a 'workflow NAME:' block with an 'entry:' and edges."),
        _c("C007", "error", C, "multiple workflows",
           "Keep one workflow per file; only the first one is compiled."),
        _c("C008", "error", C, "unknown entry",
           "Set 'entry:' to a declared node."),
        _c("C009", "error", V, "inherit/fork session at a convergence point",
           "Use 'session: fresh' or 'artifacts_only' on nodes that wait for several branches."),
        _c("C010", "error", V, "multiple unconditional edges",
           "Keep one unconditional edge, add 'when' conditions, or use a fan_out_all router."),
        _c("C011", "error", V, "ambiguous conditions",
           "Each condition (field and polarity) may appear once per source node."),
        _c("C012", "error", V, "missing fallback",
           "Add an unconditional edge, or cover both 'when X' and 'when not X'."),
        _c("C013", "error", V, "condition field not boolean",
           "Conditions must name a bool field of the source node's output schema."),
        _c("C014", "error", V, "condition field missing",
           "Add the bool field to the source node's output schema, or fix the name."),
        _c("C016", "error", V, "unreachable node",
           "Add an edge leading to the node, or remove it."),
        _c("C017", "error", V, ".history outside a loop",
           "Use .history only for nodes that are an endpoint of an 'as NAME(N)' edge."),
        _c("C018", "error", C, "missing model or backend",
           "Set 'model:' (or 'backend:'/'delegate:'); LLM-answered humans also need 'output:'."),
        _c("C019", "error", V, "undeclared cycle",
           "Mark one edge of the cycle as a bounded loop: 'a -> b as retry(3)'."),
        _c("C020", "error", V, "round_robin router with fewer than 2 targets",
           "Give the round_robin router at least two unconditional edges."),
        _c("C021", "error", V, "llm router with fewer than 2 edges",
           "Give the llm router at least two outgoing edges to choose from."),
        _c("C022", "error", V, "conditional edge on llm router",
           "Remove the 'when' clause: an llm router chooses its targets itself."),
        _c("C023", "error", C, "llm-only router property",
           "Set 'mode: llm', or remove model/backend/system/user/multi from the router."),
        _c("C024", "error", C, "duplicate mcp_server / invalid reasoning_effort",
           "Give each mcp_server a unique name; reasoning_effort is low, medium, high or extra_high (xhigh and "
           "max run as extra_high), or \"${VAR:-level}\" with one of those as the fallback."),
        _c("C025", "error", C, "invalid MCP server",
           "stdio needs 'command' (no 'url'); http and sse need 'url' (no 'command'/'args')."),
        _c("C026", "error", V, "loop bound below 1",
           "Use a loop bound of at least 1, e.g. 'as retry(3)'."),
        _c("C028", "error", V, "duplicate with-key into a convergence node",
           "Give each branch its own key (e.g. review_a, review_b) so no branch overwrites another."),
        _c("C029", "warning", C, "interaction without backend",
           "Interaction requests need a delegation backend; set 'backend:' or drop 'interaction:'."),
        _c("C030", "error", V, "outputs reference to unknown node",
           "Reference a declared node: {{outputs.NODE}}."),
        _c("C031", "error", V, "outputs field not in schema",
           "Reference a field of the node's output schema, or add the field."),
        _c("C032", "warning", V, "outputs field on schemaless node",
           "Give the node an 'output:' schema so the field can be checked."),
        _c("C033", "error", V, "undeclared variable",
           "Declare the variable in a 'vars:' block."),
        _c("C034", "error", V, "input field not in input schema",
           "Add the field to the consumer's input schema, or fix the name."),
        _c("C035", "error", V, "unknown artifact",
           "Add 'publish: NAME' to the node that produces it."),
        _c("C036", "error", V, "producer not upstream",
           "Only reference outputs of nodes that run before this one (or use a loop edge)."),
        _c("C100", "error", C, "invalid duration",
           "Write a duration such as \"90s\", \"30m\", \"1h30m\" or \"7d\"."),
        _c("C101", "warning", C, "unparsable budget duration",
           "Write max_duration as \"30m\", \"1h30m\" …; an unparsable value sets no limit."),
        _c("C102", "error", C, "wait without duration",
           "Add 'duration: \"1h\"' to the wait node."),
        _c("C103", "error", C, "tool without command or call",
           "Give the tool node 'command: \"…\"' (shell), 'call: TOOL_NAME' (builtin) or 'script:' (inline)."),
        _c("C104", "error", C, "tool with both command and call",
           "Keep one of 'command:' (shell), 'call:' (builtin tool) and 'script:' (inline script)."),
        _c("C105", "error", C, "unknown builtin tool",
           "Use a builtin tool name (docs/language.md, section 3.10), or a shell 'command:'."),
        _c("C106", "error", V, "join requires a node that does not lead into it",
           "List in 'require:' only nodes with an edge into the join."),
        _c("C107", "warning", C, "var default does not match its type",
           "Make the default a literal of the declared type."),
        _c("C108", "warning", C, "duplicate declaration",
           "Rename or remove one of them; the later declaration wins."),
        _c("C109", "warning", C, "unknown interaction prompt",
           "Declare the prompt or fix 'interaction_prompt:'."),
        _c("C110", "warning", C, "undeclared MCP server",
           "Declare it with 'mcp_server NAME:' (or rely on project .mcp.json autoload)."),
        _c("C111", "warning", C, "delegation backend not run",
           "Use backend \"claude_code\" or \"codex\" on an agent or judge; a router, or an unknown backend "
           "name, calls the node's 'model:' directly."),
        _c("C112", "error", C, "constraint does not fit the field's type",
           "pattern, min_length and max_length go on string or string[] fields; min and max on int or float."),
        _c("C113", "error", C, "invalid pattern",
           "Write a regular expression Python's re module accepts, e.g. \"^[a-z0-9-]+$\"."),
        _c("C114", "error", C, "empty range",
           "Make min (min_length) at most max (max_length)."),
        _c("C115", "error", C, "enum value breaks a constraint",
           "Change the enum value or the constraint so every listed value is allowed."),
        _c("C116", "error", C, "template inside quotes in a command",
           "Write the template bare, outside quotes: 'Result: '{{vars.x}}; give a nested script the value "
           "as an argument: sh -c 'echo $1' sh {{vars.x}}."),
        _c("C118", "warning", C, "ignored Iterion block",
           "Nothing to do unless you relied on it: iterloop accepts Iterion's coding-agent blocks (sandbox, worktree, "
           "memory, cursor/cursors, capabilities, compaction, provider), keeps them when formatting, and does not "
           "run them; delete the block to silence the warning."),
        _c("C119", "error", C, "wait for an event",
           "An iterloop wait is a durable timer: give it 'duration: \"1h\"' and no 'event:'/'timeout:'. Iterion's "
           "event wait (emit/wait) has no iterloop equivalent yet: use a human gate to wait for a person."),
        _c("C120", "error", C, "preset sets an undeclared variable",
           "Declare the variable in 'vars:' or remove it from the preset."),
        _c("C121", "warning", C, "preset value does not match the variable's type",
           "Give the preset a literal of the variable's declared type."),
        _c("C122", "error", C, "MCP server the run cannot resolve",
           "Declare the server in the file (`mcp_server NAME:`), list it in .mcp.json beside the file, or fix "
           "the name; a node's tools may only name servers among its `mcp: servers:`."),
        _c("C123", "error", C, "fan_out_each without a list to map over",
           "Give the router 'over: \"{{outputs.NODE.FIELD}}\"' (or '{{vars.NAME}}'): exactly one reference, "
           "and nothing else, whose value is a list; each item starts one branch."),
        _c("C124", "error", C, "fan_out_each needs exactly one unconditional outgoing edge",
           "Draw one edge 'ROUTER -> BODY' without 'when'; every item runs the body from there, reading the item "
           "as {{input.item}} in that edge's 'with' mapping."),
        _c("C125", "warning", C, "property only applies to fan_out_each (or foreach) routers",
           "Set 'mode: fan_out_each' (or 'mode: foreach'), or delete 'over'/'parallelism': other router modes "
           "ignore them."),
        _c("C126", "error", C, "invalid expression",
           "Fix the expression (docs/language.md, section on expressions): references start with vars., input., "
           "outputs., loop.NAME. or run.; strings take single quotes inside the file's double quotes."),
        _c("C127", "error", C, "unknown function or wrong number of arguments in an expression",
           "Use one of the expression functions listed in docs/language.md with the documented arguments."),
        _c("C128", "error", C, "compute node without expressions",
           "Give the compute node an 'expr:' block with one 'key: \"expression\"' line per output field."),
        _c("C129", "error", C, "misplaced else edge",
           "Give a node at most one 'when else' edge, beside at least one conditional edge, and no unconditional edge."),
        _c("C130", "warning", C, "tool_approval that asks about no call",
           "Name tools the node's 'tools:' list offers (the tool_policy pattern syntax), or drop 'tool_approval' "
           "from a delegated node: its coding agent runs its own tools, and no call would wait for a person."),
        _c("C131", "error", C, "subbot without a workflow file",
           "Give the node 'bot: \"FILE.iter\"', the workflow file it runs, relative to this file."),
        _c("C132", "error", C, "subbot file that cannot be run",
           "Fix the path (it is relative to the file that declares the subbot) or the errors of that file, "
           "and keep sub-workflows from running each other in a circle."),
        _c("C133", "warning", C, "parallelism on a foreach router",
           "Delete 'parallelism': a foreach router runs its items one at a time, in list order; use "
           "'mode: fan_out_each' to run them in parallel."),
        _c("C134", "error", C, "language without a script",
           "Give the tool its inline 'script:' (the code 'language:' runs), or delete 'language:' and keep "
           "'command:' or 'call:'."),
        _c("C117", "warning", C, "template is the program of an interpreter",
           "Keep the program in the command and pass the value as an argument: sh -c 'echo $1' sh {{vars.x}}; "
           "write it this way only for values you control."),
    )
}


class Diagnostic(BaseModel):
    """One finding. Positions are 1-based; ``length`` is how many columns the caret covers."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    hint: str = ""
    file: str | None = None
    line: int = 1
    column: int = 1
    length: int = 1

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def render(self) -> str:
        """One-line form `FILE:LINE:COL: SEVERITY [CODE]: MESSAGE` as Iterion prints it."""
        where = f"{self.file or '<input>'}:{self.line}:{self.column}"
        return f"{where}: {self.severity} [{self.code}]: {self.message}"


def make(
    code: str,
    message: str,
    line: int = 1,
    column: int = 1,
    *,
    length: int = 1,
    severity: Severity | None = None,
    hint: str | None = None,
) -> Diagnostic:
    """Build a diagnostic with the catalogue's severity and hint unless overridden."""
    info = CODES[code]
    return Diagnostic(
        code=code,
        severity=severity or info.severity,
        message=message,
        hint=info.hint if hint is None else hint,
        line=max(1, line),
        column=max(1, column),
        length=max(1, length),
    )


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)
