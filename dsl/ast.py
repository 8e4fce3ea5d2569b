"""The syntax tree of a `.iter` file, as written.

The AST keeps what the user wrote, including spelling choices (`delegate:` vs `backend:`, human
`mode:` vs `interaction:`) and which properties were set at all, so the formatter can print a file
that means exactly the same thing. Every declaration records the position of each property it
set (``props``) so compile-time diagnostics can point at the offending line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

LiteralKind = Literal["string", "int", "float", "bool", "json"]
FIELD_TYPES = ("string", "bool", "int", "float", "json", "string[]")


@dataclass(slots=True)
class Pos:
    line: int = 1
    column: int = 1


@dataclass(slots=True)
class Comment:
    """A `## …` comment. ``inline`` comments follow other tokens on their line."""

    text: str
    pos: Pos
    inline: bool = False


@dataclass(slots=True)
class Literal_:
    """A var default. ``value`` is the Python value; ``raw`` the source text (for the formatter)."""

    kind: LiteralKind
    value: Any
    raw: str


@dataclass(slots=True)
class VarField:
    name: str
    type: str
    default: Literal_ | None
    pos: Pos


@dataclass(slots=True)
class VarsBlock:
    fields: list[VarField]
    pos: Pos


@dataclass(slots=True)
class PresetValue:
    key: str
    value: Literal_ | None  # None after a parse error
    pos: Pos


@dataclass(slots=True)
class Preset:
    name: str
    values: list[PresetValue]
    pos: Pos


@dataclass(slots=True)
class PresetsBlock:
    """Iterion's in-file `presets:` block: named bundles of var values (`--preset NAME`)."""

    presets: list[Preset]
    pos: Pos


@dataclass(slots=True)
class IgnoredBlock:
    """A property or declaration of upstream Iterion that iterloop accepts but does not run
    (sandbox, worktree, memory, cursors …): kept as written so the formatter prints it back.

    ``lines`` are its source lines (the first one starts with ``name``), with the indentation of
    the first line removed from all of them; blank lines inside are kept as "".
    """

    name: str
    pos: Pos
    lines: list[str]


@dataclass(slots=True)
class MCPServerDecl:
    name: str
    pos: Pos
    transport: str = ""  # "" = unknown / not set
    command: str = ""
    args: list[str] = field(default_factory=list)
    url: str = ""
    props: dict[str, Pos] = field(default_factory=dict)


@dataclass(slots=True)
class PromptDecl:
    name: str
    body: str
    pos: Pos
    body_pos: Pos | None = None  # first body line


@dataclass(slots=True)
class SchemaField:
    name: str
    type: str
    enum_values: list[str] | None
    pos: Pos
    #: `[pattern: "…"]`, `[min_length: 1]`, `[max: 100]` … in the order written (values as read).
    constraints: dict[str, str | int | float] = field(default_factory=dict)
    constraint_pos: dict[str, Pos] = field(default_factory=dict)  # where each constraint's value is
    enum_pos: Pos | None = None  # the 'enum' word


@dataclass(slots=True)
class SchemaDecl:
    name: str
    fields: list[SchemaField]
    pos: Pos


@dataclass(slots=True)
class MCPBlock:
    pos: Pos
    autoload_project: bool | None = None
    inherit: bool | None = None
    servers: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)
    props: dict[str, Pos] = field(default_factory=dict)


@dataclass(slots=True)
class AgentDecl:
    """An `agent` or a `judge` (identical properties; ``kind`` tells which)."""

    kind: Literal["agent", "judge"]
    name: str
    pos: Pos
    model: str = ""
    backend: str = ""
    mcp: MCPBlock | None = None
    input: str = ""
    output: str = ""
    publish: str = ""
    system: str = ""
    user: str = ""
    session: str = "fresh"
    tools: list[str] = field(default_factory=list)
    tool_policy: list[str] | None = None
    tool_max_steps: int = 0
    tool_approval: list[str] = field(default_factory=list)  # patterns of tools whose calls a person approves
    max_tokens: int = 0
    reasoning_effort: str = ""  # as written: a level, an upstream alias (xhigh, max) or "${VAR:-level}"
    readonly: bool = False
    interaction: str = "none"
    interaction_prompt: str = ""
    interaction_model: str = ""
    await_mode: str = "none"
    props: dict[str, Pos] = field(default_factory=dict)
    ignored: list[IgnoredBlock] = field(default_factory=list)


@dataclass(slots=True)
class RouterDecl:
    name: str
    pos: Pos
    mode: str = "fan_out_all"
    model: str = ""
    backend: str = ""
    system: str = ""
    user: str = ""
    multi: bool = False
    over: str = ""  # fan_out_each: the `{{…}}` reference to the list mapped over
    parallelism: int = 0  # fan_out_each: items in flight at once (0: the budget's max_parallel_branches)
    props: dict[str, Pos] = field(default_factory=dict)
    ignored: list[IgnoredBlock] = field(default_factory=list)


@dataclass(slots=True)
class JoinDecl:
    """README-style convergence node: `join NAME:` with strategy, require, output."""

    name: str
    pos: Pos
    strategy: str = "wait_all"
    require: list[str] = field(default_factory=list)
    output: str = ""
    props: dict[str, Pos] = field(default_factory=dict)


@dataclass(slots=True)
class HumanDecl:
    name: str
    pos: Pos
    input: str = ""
    output: str = ""
    publish: str = ""
    instructions: str = ""
    interaction: str = "none"  # resolved to human / workflow default at compile
    interaction_prompt: str = ""
    interaction_model: str = ""
    min_answers: int = 0
    model: str = ""
    system: str = ""
    timeout: str = ""
    await_mode: str = "none"
    props: dict[str, Pos] = field(default_factory=dict)


@dataclass(slots=True)
class ToolDecl:
    name: str
    pos: Pos
    command: str = ""
    call: str = ""
    input: str = ""
    output: str = ""
    publish: str = ""
    await_mode: str = "none"
    props: dict[str, Pos] = field(default_factory=dict)
    ignored: list[IgnoredBlock] = field(default_factory=list)
    script: str = ""  # Iterion's inline script (dsl/scripts.py), run by `language`'s interpreter
    language: str = ""


@dataclass(slots=True)
class WaitDecl:
    """iterloop extension: a durable timer node (`wait NAME:` with `duration:`).

    ``event`` and ``timeout`` are upstream Iterion's other `wait` (it waits for an `emit`ted
    event); they are parsed only so the compiler can refuse that form with a clear message (C119).
    """

    name: str
    pos: Pos
    duration: str = ""
    await_mode: str = "none"
    event: str = ""
    timeout: str = ""
    props: dict[str, Pos] = field(default_factory=dict)


@dataclass(slots=True)
class ComputeExpr:
    """One `key: "expression"` line of a compute node's `expr:` block."""

    key: str
    source: str
    pos: Pos  # the key
    value_pos: Pos  # the opening quote of the expression


@dataclass(slots=True)
class ComputeDecl:
    """Iterion's `compute NAME:` node: output fields computed by expressions, no model, no shell."""

    name: str
    pos: Pos
    input: str = ""
    output: str = ""
    await_mode: str = "none"
    exprs: list[ComputeExpr] = field(default_factory=list)
    props: dict[str, Pos] = field(default_factory=dict)


@dataclass(slots=True)
class BudgetBlock:
    pos: Pos
    max_parallel_branches: int = 0
    max_duration: str = ""
    max_cost_usd: float = 0.0
    max_tokens: int = 0
    max_iterations: int = 0
    props: dict[str, Pos] = field(default_factory=dict)


@dataclass(slots=True)
class WithEntry:
    key: str
    value: str
    pos: Pos
    value_pos: Pos


@dataclass(slots=True)
class Condition:
    field: str  # "" = missing (E002 was reported; the edge is unconditional)
    negated: bool
    pos: Pos
    expression: str | None = None  # `when "lift > 0.02"`: the expression (``field`` is then "")
    is_else: bool = False  # `when else`: taken when no other edge of the source matches


@dataclass(slots=True)
class LoopClause:
    name: str
    max_iterations: int
    pos: Pos
    bound_source: str | None = None  # `as NAME("{{vars.n}}")` / `as NAME("vars.n - 1")`: a bound from data


@dataclass(slots=True)
class Edge:
    source: str
    target: str
    pos: Pos
    target_pos: Pos
    when: Condition | None = None
    loop: LoopClause | None = None
    with_: list[WithEntry] | None = None


@dataclass(slots=True)
class WorkflowDecl:
    name: str
    pos: Pos
    vars: VarsBlock | None = None
    entry: str = ""
    entry_pos: Pos | None = None
    budget: BudgetBlock | None = None
    mcp: MCPBlock | None = None
    default_backend: str = ""
    tool_policy: list[str] | None = None
    interaction: str | None = None
    edges: list[Edge] = field(default_factory=list)
    props: dict[str, Pos] = field(default_factory=dict)
    ignored: list[IgnoredBlock] = field(default_factory=list)


@dataclass(slots=True)
class SubbotDecl:
    """`subbot NAME:`: another workflow file run as a step (a Temporal child workflow).

    ``bot`` is the file as written, relative to this file; ``budget`` (optional) replaces the child
    file's own."""

    name: str
    pos: Pos
    bot: str = ""
    budget: BudgetBlock | None = None
    await_mode: str = "none"
    props: dict[str, Pos] = field(default_factory=dict)


NodeDecl = AgentDecl | RouterDecl | JoinDecl | HumanDecl | ToolDecl | WaitDecl | ComputeDecl | SubbotDecl

Declaration = (VarsBlock | PresetsBlock | IgnoredBlock | MCPServerDecl | PromptDecl | SchemaDecl | NodeDecl
               | WorkflowDecl)


@dataclass(slots=True)
class File:
    """A parsed file: declarations in source order, plus every comment with its position."""

    declarations: list[Declaration] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    #: (line, column) of each string written as a backtick raw string ('`') or a `|` block ('|').
    string_styles: dict[tuple[int, int], str] = field(default_factory=dict)
    #: (line, column) of each `|` string → where its body's first character is (diagnostic positions).
    block_bodies: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)

    def of_type(self, cls: type) -> list[Any]:
        return [d for d in self.declarations if isinstance(d, cls)]

    @property
    def workflows(self) -> list[WorkflowDecl]:
        return self.of_type(WorkflowDecl)

    @property
    def nodes(self) -> list[NodeDecl]:
        return [d for d in self.declarations if isinstance(d, NodeDecl)]  # type: ignore[arg-type]
