"""The compiled workflow: what a run executes.

The IR travels inside the run input, so it is plain pydantic data that serialises to JSON and
back without loss, carries a format version the interpreter checks, and a content hash that
identifies exactly which graph a run executed. It holds no source positions: formatting a file
must not change its IR.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SerializerFunctionWrapHandler, model_serializer

#: Bump when a change to the IR would make an older interpreter misread it.
IR_FORMAT_VERSION = 1

SessionMode = Literal["fresh", "inherit", "artifacts_only", "fork"]
RouterMode = Literal["fan_out_all", "condition", "round_robin", "llm", "fan_out_each", "foreach"]
AwaitMode = Literal["none", "wait_all", "best_effort"]
InteractionMode = Literal["none", "human", "llm", "llm_or_human"]
FieldType = Literal["string", "bool", "int", "float", "json", "string[]"]
Transport = Literal["unknown", "stdio", "http", "sse"]
RefKind = Literal["vars", "input", "outputs", "artifacts", "loop", "run"]
ReasoningEffort = Literal["low", "medium", "high", "extra_high"]
REASONING_EFFORTS: tuple[str, ...] = get_args(ReasoningEffort)
#: Current Iterion's spellings of the highest effort, and the level each one runs as here: OpenAI's
#: `xhigh` and Anthropic's `max` are what `extra_high` sends (activities/llm/reasoning.py).
REASONING_EFFORT_ALIASES: dict[str, str] = {"xhigh": "extra_high", "max": "extra_high"}
NodeKind = Literal["agent", "judge", "router", "join", "human", "tool", "wait", "compute", "done", "fail"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ref(_Model):
    """One `{{namespace.path}}` reference found in a template."""

    kind: RefKind
    path: list[str]
    raw: str


class DataMapping(_Model):
    """A `with { key: "value" }` entry; ``refs`` is None when the value's template is malformed."""

    key: str
    raw: str
    refs: list[Ref] | None = None


#: The value constraints a schema field may carry besides its enum (`[pattern: "…"]` …). Each
#: is None when absent and then left out of the IR's JSON, so files without constraints keep the
#: IR (and content hash) they had before constraints existed.
CONSTRAINTS: tuple[str, ...] = ("pattern", "min_length", "max_length", "min", "max")


def _chars(n: int) -> str:
    return "1 character" if n == 1 else f"{n} characters"


class SchemaField(_Model):
    name: str
    type: FieldType
    enum_values: list[str] | None = None
    pattern: str | None = None  # string / string[] items: a regex searched in the value (as in JSON Schema)
    min_length: int | None = None  # string / string[] items
    max_length: int | None = None
    min: int | float | None = None  # int / float, inclusive
    max: int | float | None = None

    @model_serializer(mode="wrap")
    def _drop_absent_constraints(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in CONSTRAINTS:
            if data.get(key, 0) is None:
                del data[key]
        return data

    def constraints(self) -> dict[str, Any]:
        """The constraints this field carries, in declaration-keyword order."""
        return {key: getattr(self, key) for key in CONSTRAINTS if getattr(self, key) is not None}

    def constraint_problem(self, value: Any) -> str | None:
        """Which constraint ``value`` breaks (a string or one item of a string[]; a number), worded
        to follow the value ("does not match the pattern …"), or None. A value of another type is
        not this method's business (the type check reports it); an invalid pattern is ignored (C113)."""
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                return f"is shorter than {_chars(self.min_length)}"
            if self.max_length is not None and len(value) > self.max_length:
                return f"is longer than {_chars(self.max_length)}"
            if self.pattern is not None:
                try:
                    matched = re.search(self.pattern, value) is not None
                except re.error:
                    matched = True
                if not matched:
                    return f"does not match the pattern {self.pattern!r}"
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(value) and (self.min is not None or self.max is not None):
                return "is not a number"
            if self.min is not None and value < self.min:
                return f"is below the minimum {self.min}"
            if self.max is not None and value > self.max:
                return f"is above the maximum {self.max}"
        return None

    def constraint_text(self) -> str:
        """The constraints in words, for "expected …" messages: "matching '^a$', at most 100 characters"."""
        parts: list[str] = []
        if self.pattern is not None:
            parts.append(f"matching {self.pattern!r}")
        if self.min_length is not None and self.max_length is not None:
            parts.append(f"{self.min_length} to {self.max_length} characters")
        elif self.min_length is not None:
            parts.append(f"at least {_chars(self.min_length)}")
        elif self.max_length is not None:
            parts.append(f"at most {_chars(self.max_length)}")
        if self.min is not None and self.max is not None:
            parts.append(f"between {self.min} and {self.max}")
        elif self.min is not None:
            parts.append(f"at least {self.min}")
        elif self.max is not None:
            parts.append(f"at most {self.max}")
        return ", ".join(parts)


class Schema(_Model):
    name: str
    fields: list[SchemaField] = []

    def field(self, name: str) -> SchemaField | None:
        return next((f for f in self.fields if f.name == name), None)


class Prompt(_Model):
    name: str
    body: str
    template_refs: list[Ref] | None = None


class Var(_Model):
    name: str
    type: FieldType
    has_default: bool = False
    default: JsonValue = None


#: The ceiling of a loop whose bound comes from data (`as NAME("{{vars.n}}")`): the bound is
#: evaluated when the loop is entered and may not exceed this.
DATA_LOOP_CEILING = 1000


class Loop(_Model):
    """``bound``, when set, is evaluated when the loop is entered (``max_iterations`` is then the
    ceiling, DATA_LOOP_CEILING); it is left out of the JSON when unset."""

    name: str
    max_iterations: int
    bound: Expression | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_bound(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("bound", 0) is None:
            del data["bound"]
        return data


class Budget(_Model):
    """0 / "" mean "not set"."""

    max_parallel_branches: int = 0
    max_duration: str = ""
    max_duration_seconds: float | None = None  # parsed at compile; None if unset or unparsable
    max_cost_usd: float = 0.0
    max_tokens: int = 0
    max_iterations: int = 0


class MCPServer(_Model):
    name: str
    transport: Transport = "unknown"
    command: str = ""
    args: list[str] = []
    url: str = ""


class MCPConfig(_Model):
    autoload_project: bool | None = None
    inherit: bool | None = None
    servers: list[str] = []
    disable: list[str] = []


class _NodeBase(_Model):
    id: str
    await_mode: AwaitMode = "none"


#: The coding agents a node's `backend:` can delegate to (the contract's `DELEGATE_BACKENDS`).
DELEGATION_BACKENDS: tuple[str, ...] = ("claude_code", "codex")


class AgentNode(_NodeBase):
    """Agents and judges behave identically; ``kind`` only names the intent.

    ``reasoning_effort`` is a level, or `"${VAR:-level}"` resolved on the worker; ``max_tokens``
    caps one model reply (None: the worker's setting) and is left out of the JSON when unset, so
    files without it keep the IR and content hash they had before it existed.
    """

    kind: Literal["agent", "judge"]
    model: str = ""
    backend: str = ""
    system_prompt: str = ""
    user_prompt: str = ""
    reasoning_effort: str = ""
    readonly: bool = False
    input_schema: str = ""
    output_schema: str = ""
    interaction: InteractionMode = "none"
    interaction_prompt: str = ""
    interaction_model: str = ""
    mcp: MCPConfig | None = None
    publish: str = ""
    session: SessionMode = "fresh"
    tools: list[str] = []
    tool_policy: list[str] | None = None
    tool_max_steps: int = 0
    max_tokens: int | None = None
    # Tool patterns (as `tool_policy`) whose every call waits for a person's approval; left out of
    # the JSON when empty, so files without it keep their IR and content hash.
    tool_approval: list[str] = []

    @model_serializer(mode="wrap")
    def _drop_unset_max_tokens(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("max_tokens", 0) is None:
            del data["max_tokens"]
        if not data.get("tool_approval", True):
            del data["tool_approval"]
        return data


#: What a `fan_out_each` router's output holds inside one item's branch (`{{outputs.ROUTER.item}}`,
#: or `{{input.item}}` on its edge); after the join it holds only `count`.
EACH_FIELDS: tuple[str, ...] = ("item", "index", "count", "first", "last")
#: The output field a join behind a `fan_out_each` router collects the items' results in.
EACH_RESULTS_FIELD = "results"
#: The router modes that map over a list (`over:`): in parallel, or one item after another.
EACH_MODES: tuple[str, ...] = ("fan_out_each", "foreach")
#: A `foreach` item also sees the items before it (`{{outputs.ROUTER.results}}`, as the join lists them).
FOREACH_FIELDS: tuple[str, ...] = EACH_FIELDS + (EACH_RESULTS_FIELD,)


class RouterNode(_NodeBase):
    kind: Literal["router"] = "router"
    router_mode: RouterMode = "fan_out_all"
    router_multi: bool = False
    model: str = ""
    backend: str = ""
    system_prompt: str = ""
    user_prompt: str = ""
    reasoning_effort: str = ""
    #: `fan_out_each`: the one `{{…}}` reference whose list is mapped over, one branch per item.
    over: str = ""
    #: `fan_out_each`: items in flight at once (0: the budget's max_parallel_branches, else all).
    parallelism: int = 0

    @model_serializer(mode="wrap")
    def _drop_unset_each(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Routers of other modes keep the IR (and content hash) they had before fan_out_each.
        data: dict[str, Any] = handler(self)
        for key in ("over", "parallelism"):
            if not data.get(key):
                data.pop(key, None)
        return data


class JoinNode(_NodeBase):
    """Explicit convergence: waits for its branches (``await_mode`` is its strategy)."""

    kind: Literal["join"] = "join"
    require: list[str] = []
    output_schema: str = ""


class HumanNode(_NodeBase):
    kind: Literal["human"] = "human"
    input_schema: str = ""
    output_schema: str = ""
    interaction: InteractionMode = "human"
    interaction_prompt: str = ""
    interaction_model: str = ""
    publish: str = ""
    min_answers: int = 0
    instructions: str = ""
    model: str = ""
    system_prompt: str = ""
    timeout: str = ""
    timeout_seconds: float | None = None


class ToolNode(_NodeBase):
    """A shell ``command``, a builtin tool ``call`` (arguments from incoming `with`) or an inline
    ``script`` run by ``language``'s interpreter (dsl/scripts.py)."""

    kind: Literal["tool"] = "tool"
    command: str = ""
    command_refs: list[Ref] | None = None
    call: str = ""
    input_schema: str = ""
    output_schema: str = ""
    publish: str = ""
    # An inline script (`script:` + `language:`, dsl/scripts.py); left out of the JSON when unset,
    # so files without one keep their IR and content hash.
    script: str = ""
    language: str = ""

    @model_serializer(mode="wrap")
    def _drop_unset_script(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("script", ""):
            data.pop("script", None)
            data.pop("language", None)
        return data


class WaitNode(_NodeBase):
    """A durable timer; costs nothing while it waits."""

    kind: Literal["wait"] = "wait"
    duration: str = ""
    duration_seconds: float = 0.0


class Expression(_Model):
    """An expression parsed at compile time (dsl/expressions.py): ``tree`` is what runs, ``source``
    what the user wrote (for messages)."""

    source: str
    tree: JsonValue


class ComputeField(_Model):
    key: str
    expression: Expression


class ComputeNode(_NodeBase):
    """Output fields computed by pure expressions inside the workflow: no model, no shell."""

    kind: Literal["compute"] = "compute"
    input_schema: str = ""
    output_schema: str = ""
    fields: list[ComputeField] = []


class TerminalNode(_NodeBase):
    kind: Literal["done", "fail"]


class SubbotNode(_NodeBase):
    """Another workflow file run as one step, as a Temporal child workflow of the same type.

    ``bot`` is the file as written (relative to the parent file); ``workflow`` is its IR, compiled
    when the run starts (`runtime/run_start.py`) and carried in the run input, so workflow code
    never reads a file. ``budget``, when set, replaces the child file's own budget.
    """

    kind: Literal["subbot"] = "subbot"
    bot: str = ""
    budget: Budget | None = None
    workflow: Workflow | None = None


Node = Annotated[
    Union[AgentNode, RouterNode, JoinNode, HumanNode, ToolNode, WaitNode, ComputeNode, SubbotNode, TerminalNode],
    Field(discriminator="kind"),
]


class Edge(_Model):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    condition: str = ""
    negated: bool = False
    loop_name: str = ""
    with_: list[DataMapping] = Field(default_factory=list, alias="with")
    #: `when "expr"`: the parsed condition (``condition`` is then ""); `when else`: ``is_else``.
    #: Both are left out of the JSON when unset, so older files keep their IR and content hash.
    expression: Expression | None = None
    is_else: bool = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @property
    def conditional(self) -> bool:
        """Whether a `when` guards this edge (a bool field, an expression, or `else`)."""
        return bool(self.condition) or self.expression is not None or self.is_else

    @model_serializer(mode="wrap")
    def _drop_unset_expression(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("expression", 0) is None:
            del data["expression"]
        if data.get("is_else") is False:
            del data["is_else"]
        return data


class Workflow(_Model):
    format_version: int = IR_FORMAT_VERSION
    name: str
    entry: str
    nodes: dict[str, Node]
    edges: list[Edge] = []
    schemas: dict[str, Schema] = {}
    prompts: dict[str, Prompt] = {}
    vars: dict[str, Var] = {}
    loops: dict[str, Loop] = {}
    budget: Budget | None = None
    mcp: MCPConfig | None = None
    default_backend: str = ""  # one of DELEGATION_BACKENDS for an agent or judge to delegate
    tool_policy: list[str] | None = None
    interaction: InteractionMode | None = None
    mcp_servers: dict[str, MCPServer] = {}
    #: In-file `presets:` (Iterion's): preset name → var values; left out of the JSON when empty.
    presets: dict[str, dict[str, JsonValue]] = {}
    content_hash: str = ""

    @model_serializer(mode="wrap")
    def _drop_empty_presets(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("presets", True):
            del data["presets"]
        return data

    # -- accessors used by the validator and the runtime -------------------------------------
    def output_schema_of(self, node_id: str) -> str:
        return getattr(self.nodes.get(node_id), "output_schema", "") or ""

    def input_schema_of(self, node_id: str) -> str:
        return getattr(self.nodes.get(node_id), "input_schema", "") or ""

    def publish_of(self, node_id: str) -> str:
        return getattr(self.nodes.get(node_id), "publish", "") or ""

    def outgoing(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.source == node_id]

    def incoming(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.target == node_id]

    # -- serialisation -----------------------------------------------------------------------
    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Workflow:
        return cls.model_validate_json(text)

    def compute_hash(self) -> str:
        """sha256 over the canonical JSON of everything but the hash itself."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"content_hash"})
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def with_hash(self) -> Workflow:
        self.content_hash = self.compute_hash()
        return self
