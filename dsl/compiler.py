"""AST → IR, then static validation.

Follows Iterion's compile order (which decides diagnostic order and which duplicate wins):
MCP servers, schemas, prompts, agents, judges, routers, humans, tools, then iterloop's joins and
waits, terminals, entry, vars, edges, workflow settings. Positions never enter the IR; they live in
a ``SourceMap`` (`dsl.source_map`) that the validator uses to point diagnostics at the source. The
compiler runs the validator as its last phase; the validator knows nothing of the compiler.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from . import ast as A
from . import ir
from .diagnostics import Diagnostic, Severity, make
from .durations import parse_duration
from .expressions import ExpressionError, references
from .expressions import parse as parse_expression
from .scripts import interpreter
from .shell_quoting import SAFE_PLACES, program_taking_code, template_places
from .source_map import SourceMap
from .templates import TemplateError, extract_refs, ref_offsets
from .validator import validate

_STRING_CONSTRAINTS = ("pattern", "min_length", "max_length")

#: C118: what each ignored upstream block does in Iterion (and so what a run here goes without).
_IGNORED_WHY: dict[str, str] = {
    "sandbox": "runs the node's commands in a container; iterloop runs them on the worker",
    "worktree": "gives coding agents their own git worktree",
    "memory": "gives coding agents a memory tree that persists across runs",
    "cursors": "sets prompt calibration dials; write that guidance into the prompt",
    "cursor": "declares a prompt calibration dial; write that guidance into the prompt",
    "attachments": ("declares files (images) uploaded with a run and sent to a vision model; iterloop "
                    "sends none, and {{attachments.…}} in a prompt stays as written"),
    "capabilities": "grants access to Iterion's own kanban board",
    "compaction": "summarises long conversations; iterloop keeps them whole",
    "provider": "pins the model's provider; iterloop takes it from the model's `provider/` prefix",
}


@dataclass(frozen=True, slots=True)
class CompileOptions:
    """Inputs to compilation that come from outside the file (read at the edge, passed down).

    ``default_model`` replaces an empty `model:` on agents, judges and llm routers (Iterion reads it
    from ITERION_DEFAULT_SUPERVISOR_MODEL). ``known_tools``, when given, enables C105.
    """

    default_model: str = ""
    known_tools: frozenset[str] | None = None


def _type_matches(vtype: str, lit: A.Literal_) -> bool:
    value = lit.value
    if vtype == "string":
        return lit.kind == "string"
    if vtype == "bool":
        return lit.kind == "bool"
    if vtype == "int":
        return lit.kind == "int"
    if vtype == "float":
        return lit.kind in ("int", "float")
    if vtype == "string[]":
        return lit.kind == "json" and isinstance(value, list) and all(isinstance(v, str) for v in value)
    return True  # json accepts anything


def _offset_pos(base: A.Pos, text: str, offset: int, *, indent_col: int | None = None) -> A.Pos:
    """Position of ``offset`` inside a (possibly multi-line) text that starts at ``base``."""
    line_no = text.count("\n", 0, offset)
    if line_no == 0:
        return A.Pos(base.line, base.column + offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return A.Pos(base.line + line_no, (indent_col or 1) + offset - line_start)


#: C116: what the place is, and how to write the command instead.
_QUOTING_FIXES: dict[str, tuple[str, str]] = {
    "double": ("inside double quotes",
               ("End the quoted text before the template and write the template bare: 'Result: '{ref}; for a "
                "script given to another program, pass the value as an argument: sh -c 'echo $1' sh {ref}.")),
    "single": ("inside single quotes",
               ("End the quoted text before the template and write the template bare: 'Result: '{ref}; for a "
                "script given to another program, pass the value as an argument: sh -c 'echo $1' sh {ref} "
                "(awk -v v={ref} …, jq --arg v {ref} …, python3 -c 'import sys; …sys.argv[1]…' {ref}).")),
    "escaped": ("after a backslash", "Remove the backslash before {ref}."),
    "heredoc": ("in a here-document",
                ("Pass the value as an argument or a variable instead of writing it into the document: "
                 "V={ref} python3 <<'EOF' … os.environ['V'] … EOF.")),
}


#: Iterion's `{{attachments.NAME…}}` (not a reference in iterloop: see check_attachment_refs).
_ATTACHMENT_REF = re.compile(r"\{\{\s*attachments\.[^}]*\}\}")

#: `${VAR}` or `${VAR:-default}`, alone: the forms a reasoning_effort may take to be read on the worker.
#: A default may itself be one of these forms (`${A:-${B:-high}}`, current Iterion's nested defaults).
_ENV_DEFAULT = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}$]*|\$\{.*\}))?\}")


class _Compiler:
    def __init__(self, file: A.File, options: CompileOptions) -> None:
        self.file = file
        self.opts = options
        self.diags: list[Diagnostic] = []
        self.src = SourceMap()
        self.default_backend = ""
        self.src_else: dict[int, A.Pos] = {}  # edge index → position of its `else`
        #: (tree, where, position of the opening quote) of every expression, for the reference check
        self.expression_uses: list[tuple[object, str, A.Pos]] = []
        #: (tree, source, target, position) of every `when "…"`: bare names are checked against the source's schema
        self.condition_sources: list[tuple[object, str, str, A.Pos]] = []

    def diag(self, code: str, message: str, pos: A.Pos, *, length: int = 1, severity: Severity | None = None,
             hint: str | None = None) -> None:
        self.diags.append(make(code, message, pos.line, pos.column, length=length, severity=severity, hint=hint))

    # -- templates -----------------------------------------------------------------------------
    def refs_of(self, text: str, where: str, base: A.Pos, *, indent_col: int | None = None) -> tuple[list[ir.Ref] | None, list[A.Pos]]:
        try:
            refs = extract_refs(text)
        except TemplateError as exc:
            pos = _offset_pos(base, text, exc.offset, indent_col=indent_col)
            self.diag("C004", f"malformed template in {where}: {exc.message}", pos, length=2)
            return None, []
        positions = [_offset_pos(base, text, off, indent_col=indent_col) for off in ref_offsets(text)]
        self.check_attachment_refs(text, where, base, indent_col)
        return refs, positions

    def check_attachment_refs(self, text: str, where: str, base: A.Pos, indent_col: int | None) -> None:
        """C004: `{{attachments.…}}` stays as written (templates.UNSUPPORTED_NAMESPACES) only in a file
        that declares Iterion's `attachments:` (ignored, C118); anywhere else it is a mistake."""
        if any(b.name == "attachments" for b in self.file.of_type(A.IgnoredBlock)):
            return
        for m in _ATTACHMENT_REF.finditer(text):
            self.diag("C004", f"malformed template in {where}: {m.group(0)!r} reads Iterion's vision attachments, "
                      "which this file does not declare and iterloop does not send",
                      _offset_pos(base, text, m.start(), indent_col=indent_col), length=2,
                      hint="Remove the reference (an `attachments:` block is accepted but ignored: C118).")

    # -- main ----------------------------------------------------------------------------------
    def compile(self) -> ir.Workflow | None:
        workflows = self.file.workflows
        if not workflows:
            self.diag("C006", "no workflow declaration found in the file", A.Pos(1, 1))
            return None
        for extra in workflows[1:]:
            self.diag("C007", f"found {len(workflows)} workflow declarations; only the first, "
                      f"'{workflows[0].name}', is compiled ('{extra.name}' is ignored)", extra.pos, length=8)
        wf_decl = workflows[0]
        self.src.workflow = wf_decl.pos

        mcp_servers = self.compile_mcp_servers()
        schemas = self.compile_schemas()
        prompts = self.compile_prompts()
        self.warn_duplicate_nodes()

        for ignored in self.file.of_type(A.IgnoredBlock):
            self.ignored(ignored, None)  # a top-level declaration: its header names it
        for ignored in wf_decl.ignored:
            self.ignored(ignored, f"workflow '{wf_decl.name}'")
        self.check_mcp_block(wf_decl.mcp, f"workflow '{wf_decl.name}'", mcp_servers, wf_decl.mcp)
        self.warn_duplicate_vars(wf_decl)
        wf_interaction = wf_decl.interaction or "none"
        self.default_backend = wf_decl.default_backend
        nodes: dict[str, ir.Node] = {}
        decls = self.file.nodes
        ordered = (
            [d for d in decls if isinstance(d, A.AgentDecl) and d.kind == "agent"]
            + [d for d in decls if isinstance(d, A.AgentDecl) and d.kind == "judge"]
            + [d for d in decls if isinstance(d, A.RouterDecl)]
            + [d for d in decls if isinstance(d, A.HumanDecl)]
            + [d for d in decls if isinstance(d, A.ToolDecl)]
            + [d for d in decls if isinstance(d, A.JoinDecl)]
            + [d for d in decls if isinstance(d, A.WaitDecl)]
            + [d for d in decls if isinstance(d, A.ComputeDecl)]
            + [d for d in decls if isinstance(d, A.SubbotDecl)]
        )
        workflow_mcp = wf_decl.mcp
        for decl in ordered:
            self.src.nodes[decl.name] = decl.pos
            self.src.node_props[decl.name] = decl.props
            for ignored in getattr(decl, "ignored", ()):
                self.ignored(ignored, f"{_kind(decl)} '{decl.name}'")
            if isinstance(decl, A.AgentDecl):
                node: ir.Node = self.compile_agent(decl, schemas, prompts, wf_interaction, mcp_servers, workflow_mcp)
            elif isinstance(decl, A.RouterDecl):
                node = self.compile_router(decl, prompts)
            elif isinstance(decl, A.HumanDecl):
                node = self.compile_human(decl, schemas, prompts, wf_interaction)
            elif isinstance(decl, A.ToolDecl):
                node = self.compile_tool(decl, schemas)
            elif isinstance(decl, A.JoinDecl):
                node = self.compile_join(decl, schemas)
            elif isinstance(decl, A.ComputeDecl):
                node = self.compile_compute(decl, schemas)
            elif isinstance(decl, A.SubbotDecl):
                node = self.compile_subbot(decl)
            else:
                node = self.compile_wait(decl)
            nodes[decl.name] = node
        for terminal in ("done", "fail"):
            nodes[terminal] = ir.TerminalNode(id=terminal, kind=terminal)  # type: ignore[arg-type]

        entry = wf_decl.entry
        self.src.entry = wf_decl.entry_pos
        if entry not in nodes:
            pos = wf_decl.entry_pos or wf_decl.pos
            if entry:
                self.diag("C008", f"entry node '{entry}' is not declared", pos, length=len(entry))
            else:
                self.diag("C008", f"workflow '{wf_decl.name}' has no 'entry:'", pos, length=8)

        variables = self.compile_vars(wf_decl)
        presets = self.compile_presets(variables)
        edges, loops = self.compile_edges(wf_decl, nodes)
        self.check_expression_refs(nodes, loops, schemas, variables)
        budget = self.compile_budget(wf_decl.budget)

        workflow = ir.Workflow(
            name=wf_decl.name,
            entry=entry,
            nodes=nodes,
            edges=edges,
            schemas=schemas,
            prompts=prompts,
            vars=variables,
            loops=loops,
            budget=budget,
            mcp=_mcp_config(workflow_mcp),
            default_backend=wf_decl.default_backend,
            tool_policy=list(wf_decl.tool_policy) if wf_decl.tool_policy is not None else None,
            interaction=wf_decl.interaction,  # type: ignore[arg-type]
            mcp_servers=mcp_servers,
            presets=presets,
        )
        return workflow

    def ignored(self, block: A.IgnoredBlock, owner: str | None) -> None:
        """C118: an upstream Iterion block that is accepted, kept by `fmt`, and not run."""
        why = _IGNORED_WHY.get(block.name, "configures Iterion's coding-agent runtime")
        subject = f"'{block.lines[0].rstrip(':').strip()}'" if owner is None else f"'{block.name}' in {owner}"
        self.diag("C118", f"{subject} is ignored: in Iterion it {why}", block.pos, length=len(block.name))

    # -- declarations --------------------------------------------------------------------------
    def warn_duplicate_nodes(self) -> None:
        seen: dict[str, A.NodeDecl] = {}
        for decl in self.file.nodes:
            if decl.name in ("done", "fail"):
                if isinstance(decl, (A.AgentDecl, A.JoinDecl, A.WaitDecl, A.ComputeDecl, A.SubbotDecl)):
                    continue  # already E011
                self.diag("C108", f"node '{decl.name}' is replaced by the built-in terminal node '{decl.name}'",
                          decl.pos, hint="Rename the node; 'done' and 'fail' are built in.")
                continue
            first = seen.get(decl.name)
            if first is not None:
                self.diag("C108", f"node '{decl.name}' is declared twice (first at line {first.pos.line}); "
                          "the later declaration wins", decl.pos)
            else:
                seen[decl.name] = decl

    def compile_mcp_servers(self) -> dict[str, ir.MCPServer]:
        servers: dict[str, ir.MCPServer] = {}
        for decl in self.file.of_type(A.MCPServerDecl):
            if decl.name in servers:
                self.diag("C024", f"mcp_server '{decl.name}' is declared more than once; the first declaration is kept",
                          decl.pos, hint="Give each mcp_server a unique name.")
                continue
            where = f"mcp_server '{decl.name}'"
            t = decl.transport or "unknown"
            tpos = decl.props.get("transport", decl.pos)
            if t == "stdio":
                if not decl.command:
                    self.diag("C025", f"{where} uses transport stdio but has no 'command'", tpos)
                if decl.url:
                    self.diag("C025", f"{where} uses transport stdio and must not set 'url'", decl.props.get("url", tpos))
            elif t in ("http", "sse"):  # both reach a URL: streamable HTTP, or the older HTTP+SSE
                if not decl.url:
                    self.diag("C025", f"{where} uses transport {t} but has no 'url'", tpos)
                if decl.command:
                    self.diag("C025", f"{where} uses transport {t} and must not set 'command'", decl.props.get("command", tpos))
                if decl.args:
                    self.diag("C025", f"{where} uses transport {t} and must not set 'args'", decl.props.get("args", tpos))
            else:
                self.diag("C025", f"{where} has no valid 'transport' (stdio, http or sse)", decl.pos)
            servers[decl.name] = ir.MCPServer(name=decl.name, transport=t, command=decl.command,  # type: ignore[arg-type]
                                              args=list(decl.args), url=decl.url)
        return servers

    def compile_schemas(self) -> dict[str, ir.Schema]:
        schemas: dict[str, ir.Schema] = {}
        first: dict[str, A.SchemaDecl] = {}
        for decl in self.file.of_type(A.SchemaDecl):
            if decl.name in first:
                self.diag("C108", f"schema '{decl.name}' is declared twice (first at line {first[decl.name].pos.line}); "
                          "the later declaration wins", decl.pos)
            first.setdefault(decl.name, decl)
            field_lines: dict[str, int] = {}
            for f in decl.fields:
                if f.name in field_lines:
                    self.diag("C108", f"schema '{decl.name}' declares field '{f.name}' twice (first at line "
                              f"{field_lines[f.name]})", f.pos, length=len(f.name))
                field_lines.setdefault(f.name, f.pos.line)
            fields = [ir.SchemaField(name=f.name, type=f.type, enum_values=f.enum_values,  # type: ignore[arg-type]
                                     **f.constraints)  # type: ignore[arg-type]
                      for f in decl.fields]
            for f, compiled in zip(decl.fields, fields):
                self.check_constraints(decl.name, f, compiled)
            schemas[decl.name] = ir.Schema(name=decl.name, fields=fields)
        return schemas

    def check_constraints(self, schema: str, f: A.SchemaField, compiled: ir.SchemaField) -> None:
        """C112 (constraint on the wrong type), C113 (invalid pattern), C114 (min above max) and
        C115 (an enum value the constraints refuse)."""
        where = f"field '{f.name}' of schema '{schema}'"
        for key, pos in f.constraint_pos.items():
            fits = f.type in ("string", "string[]") if key in _STRING_CONSTRAINTS else f.type in ("int", "float")
            if not fits:
                kinds = "string or string[]" if key in _STRING_CONSTRAINTS else "int or float"
                self.diag("C112", f"'{key}' applies to {kinds} fields; {where} is {f.type}", pos)
        pattern = f.constraints.get("pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as e:
                self.diag("C113", f"invalid pattern for {where}: {e}", f.constraint_pos["pattern"],
                          length=len(pattern) + 2)
        for low, high in (("min_length", "max_length"), ("min", "max")):
            lo, hi = f.constraints.get(low), f.constraints.get(high)
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
                self.diag("C114", f"{where} has {low} {lo} above {high} {hi}; no value fits",
                          f.constraint_pos[low])
        if f.enum_values and f.type in ("string", "string[]"):
            for value in f.enum_values:
                problem = compiled.constraint_problem(value)
                if problem:
                    self.diag("C115", f"enum value {value!r} of {where} {problem}", f.enum_pos or f.pos)
                    break

    def compile_prompts(self) -> dict[str, ir.Prompt]:
        prompts: dict[str, ir.Prompt] = {}
        first: dict[str, A.PromptDecl] = {}
        for decl in self.file.of_type(A.PromptDecl):
            if decl.name in first:
                self.diag("C108", f"prompt '{decl.name}' is declared twice (first at line {first[decl.name].pos.line}); "
                          "the later declaration wins", decl.pos)
            first.setdefault(decl.name, decl)
            base = decl.body_pos or decl.pos
            refs, positions = self.refs_of(decl.body, f"prompt '{decl.name}'", base, indent_col=base.column)
            prompts[decl.name] = ir.Prompt(name=decl.name, body=decl.body, template_refs=refs)
            self.src.prompts[decl.name] = decl.pos
            self.src.prompt_refs[decl.name] = positions
        return prompts

    def check_schema(self, decl: A.NodeDecl, prop: str, name: str, schemas: dict[str, ir.Schema]) -> None:
        if name and name not in schemas:
            self.diag("C002", f"{_kind(decl)} '{decl.name}' {prop} schema '{name}' is not declared",
                      decl.props.get(prop, decl.pos), length=len(name), hint=_did_you_mean(name, schemas, "schema"))

    def check_prompt(self, decl: A.NodeDecl, prop: str, name: str, prompts: dict[str, ir.Prompt]) -> None:
        if name and name not in prompts:
            self.diag("C003", f"{_kind(decl)} '{decl.name}' {prop} prompt '{name}' is not declared",
                      decl.props.get(prop, decl.pos), length=len(name), hint=_did_you_mean(name, prompts, "prompt"))

    def warn_duplicate_vars(self, wf_decl: A.WorkflowDecl) -> None:
        blocks = self.file.of_type(A.VarsBlock)
        for extra in blocks[1:]:
            self.diag("C108", f"a second top-level 'vars:' block (first at line {blocks[0].pos.line}) replaces the "
                      "first one entirely", extra.pos, length=4, hint="Merge the two vars blocks into one.")
        for block in ([blocks[-1]] if blocks else []) + ([wf_decl.vars] if wf_decl.vars else []):
            seen: dict[str, A.VarField] = {}
            for f in block.fields:
                if f.name in seen:
                    self.diag("C108", f"variable '{f.name}' is declared twice in the same block (first at line "
                              f"{seen[f.name].pos.line}); the later one wins", f.pos, length=len(f.name))
                seen[f.name] = f

    def check_mcp_block(self, block: A.MCPBlock | None, owner: str, servers: dict[str, ir.MCPServer],
                        workflow_mcp: A.MCPBlock | None) -> None:
        if block is None or (workflow_mcp is not None and workflow_mcp.autoload_project):
            return
        for prop in ("servers", "disable"):
            for name in getattr(block, prop):
                if name not in servers:
                    self.diag("C110", f"{owner} mcp {prop} names '{name}', which no mcp_server in this file declares",
                              block.props.get(prop, block.pos), length=len(name))

    def backend_not_run(self, decl: A.AgentDecl | A.RouterDecl, backend: str, model: str) -> None:
        """C111: a backend that will not run: an unknown name on an agent or judge, or any backend on
        a router (routers never delegate). The node calls its model directly (and fails at run
        time without one). A known backend on an agent or judge runs: no diagnostic."""
        router = isinstance(decl, A.RouterDecl)
        if backend in ir.DELEGATION_BACKENDS and not router:
            return
        prop = "delegate" if "delegate" in decl.props else "backend"
        what = "router" if router else decl.kind
        then = (f"the node calls its model '{model}' directly" if model
                else "the node has no 'model:', so a run that is not offline fails at this node")
        why = ("routers do not delegate" if router else
               f"it is not a delegation backend (use {' or '.join(repr(b) for b in ir.DELEGATION_BACKENDS)})")
        self.diag("C111", f"{what} '{decl.name}' uses {prop} '{backend}', which is not run: {why}; {then}",
                  decl.props.get(prop, decl.pos), length=len(backend) + 2)

    def compile_agent(self, decl: A.AgentDecl, schemas: dict[str, ir.Schema], prompts: dict[str, ir.Prompt],
                      wf_interaction: str, servers: dict[str, ir.MCPServer],
                      workflow_mcp: A.MCPBlock | None) -> ir.AgentNode:
        self.check_schema(decl, "input", decl.input, schemas)
        self.check_schema(decl, "output", decl.output, schemas)
        self.check_prompt(decl, "system", decl.system, prompts)
        self.check_prompt(decl, "user", decl.user, prompts)
        if decl.interaction_prompt and decl.interaction_prompt not in prompts:
            self.diag("C109", f"{decl.kind} '{decl.name}' interaction_prompt '{decl.interaction_prompt}' is not declared",
                      decl.props.get("interaction_prompt", decl.pos), length=len(decl.interaction_prompt))
        self.check_mcp_block(decl.mcp, f"{decl.kind} '{decl.name}'", servers, workflow_mcp)
        model = decl.model or self.opts.default_model
        backend = decl.backend or self.default_backend
        if not model and not backend:
            self.diag("C018", f"{decl.kind} '{decl.name}' has neither 'model' nor 'backend' (and the workflow sets "
                      "no default_backend)", decl.pos, length=len(decl.kind))
        if backend:
            self.backend_not_run(decl, backend, model)
        interaction = decl.interaction
        if interaction == "none" and wf_interaction != "none":
            interaction = wf_interaction
        if interaction != "none" and not backend:
            self.diag("C029", f"{decl.kind} '{decl.name}' has interaction '{interaction}' but no 'backend'; "
                      "interaction requests only work with a delegation backend",
                      decl.props.get("interaction", decl.pos))
        self.check_tool_approval(decl, backend)
        return ir.AgentNode(
            id=decl.name, kind=decl.kind, model=model, backend=decl.backend, system_prompt=decl.system,
            user_prompt=decl.user, reasoning_effort=self.effort(decl), readonly=decl.readonly,
            max_tokens=decl.max_tokens if "max_tokens" in decl.props else None,
            input_schema=decl.input, output_schema=decl.output, interaction=interaction,  # type: ignore[arg-type]
            interaction_prompt=decl.interaction_prompt, interaction_model=decl.interaction_model,
            mcp=_mcp_config(decl.mcp), publish=decl.publish, session=decl.session,  # type: ignore[arg-type]
            tools=list(decl.tools), tool_policy=list(decl.tool_policy) if decl.tool_policy is not None else None,
            tool_max_steps=decl.tool_max_steps, await_mode=decl.await_mode,  # type: ignore[arg-type]
            tool_approval=list(decl.tool_approval),
        )

    def check_tool_approval(self, decl: A.AgentDecl, backend: str) -> None:
        """C130: `tool_approval` that would gate no call. A typo there is worse than elsewhere: the
        calls it meant would run without asking anyone, so every pattern must match a `tools:` entry
        (or, for `mcp.S.*` entries, a tool of that server); a delegated node's CLI runs its own tools."""
        if not decl.tool_approval:
            return
        pos = decl.props.get("tool_approval", decl.pos)
        if backend in ir.DELEGATION_BACKENDS:
            self.diag("C130", f"{decl.kind} '{decl.name}' delegates to '{backend}', whose CLI runs its own tools: "
                      "its 'tool_approval' asks about no call", pos, length=len(", ".join(decl.tool_approval)) + 2)
            return
        for pattern in decl.tool_approval:
            if not any(_approval_matches(pattern, entry) for entry in decl.tools):
                self.diag("C130", f"{decl.kind} '{decl.name}' tool_approval entry '{pattern}' matches none of its "
                          f"tools ({', '.join(decl.tools) or 'none'}); those calls would run without asking",
                          pos, length=len(", ".join(decl.tool_approval)) + 2)

    def effort(self, decl: A.AgentDecl) -> str:
        """The effort a node runs with: upstream's `xhigh` and `max` become `extra_high` (the level
        that sends OpenAI's `xhigh` and Anthropic's `max`); `"${VAR:-level}"` stays for the worker,
        its default checked here (C024), as is a written level that is not one (`"${VAR}"` alone
        cannot be checked: an unknown value at run time means no extended thinking)."""
        written = decl.reasoning_effort
        if "$" not in written:
            return ir.REASONING_EFFORT_ALIASES.get(written, written)
        m = _ENV_DEFAULT.fullmatch(written.strip())
        while m is not None and "$" in (m.group("default") or ""):  # "${A:-${B:-level}}": defaults nest
            m = _ENV_DEFAULT.fullmatch(m.group("default"))
        if m is None:
            self.diag("C024", f"{decl.kind} '{decl.name}' reasoning_effort {written!r} is neither a level nor a "
                      "single ${VAR} or ${VAR:-level} reference", decl.props.get("reasoning_effort", decl.pos),
                      length=len(written) + 2)
            return written
        default = m.group("default")
        levels = ir.REASONING_EFFORTS + tuple(ir.REASONING_EFFORT_ALIASES)
        if default is not None and default not in levels:
            self.diag("C024", f"{decl.kind} '{decl.name}' reasoning_effort {written!r} falls back to {default!r}, "
                      f"which is not a reasoning effort (expected one of {', '.join(levels)})",
                      decl.props.get("reasoning_effort", decl.pos), length=len(written) + 2)
        return written

    def compile_router(self, decl: A.RouterDecl, prompts: dict[str, ir.Prompt]) -> ir.RouterNode:
        node = ir.RouterNode(id=decl.name, router_mode=decl.mode)  # type: ignore[arg-type]
        self.compile_each(decl, node)
        if decl.mode != "llm":
            backend_prop = "delegate" if "delegate" in decl.props else "backend"
            for prop, value in (("model", decl.model), (backend_prop, decl.backend), ("system", decl.system),
                                ("user", decl.user), ("multi", decl.multi)):
                if value:
                    self.diag("C023", f"router '{decl.name}' sets '{prop}', which only applies to mode llm "
                              f"(its mode is {decl.mode})", decl.props.get(prop, decl.pos))
            return node
        node.model = decl.model or self.opts.default_model
        if not node.model and not decl.backend:
            self.diag("C018", f"llm router '{decl.name}' has neither 'model' nor 'backend'; the default model "
                      "will be used", decl.pos, severity="warning",
                      hint="Set 'model:' on the router to choose the routing model explicitly.")
        if decl.backend:
            self.backend_not_run(decl, decl.backend, node.model)
        node.backend = decl.backend
        if decl.system:
            self.check_prompt(decl, "system", decl.system, prompts)
            node.system_prompt = decl.system
        if decl.user:
            self.check_prompt(decl, "user", decl.user, prompts)
            node.user_prompt = decl.user
        node.router_multi = decl.multi
        return node

    def compile_subbot(self, decl: A.SubbotDecl) -> ir.SubbotNode:
        """A sub-workflow node: its file is read and compiled when a run starts (C132), not here (C131)."""
        if not decl.bot.strip():
            self.diag("C131", f"subbot '{decl.name}' has no 'bot:'; expected the workflow file to run, relative to "
                      "this file, e.g. bot: \"review.iter\"", decl.props.get("bot", decl.pos), length=len(decl.name))
        return ir.SubbotNode(id=decl.name, bot=decl.bot.strip(), budget=self.compile_budget(decl.budget),
                             await_mode=decl.await_mode)  # type: ignore[arg-type]

    def compile_each(self, decl: A.RouterDecl, node: ir.RouterNode) -> None:
        """`fan_out_each`'s and `foreach`'s list (`over:`, exactly one `{{…}}` reference: C123) and parallelism
        (`foreach` runs one item at a time, so it has none: C133)."""
        if decl.mode == "foreach" and "parallelism" in decl.props:
            self.diag("C133", f"foreach router '{decl.name}' sets 'parallelism'; foreach runs its items one at a "
                      "time, in list order (use mode fan_out_each to run them in parallel)", decl.props["parallelism"])
        if decl.mode not in ir.EACH_MODES:
            for prop in ("over", "parallelism"):
                if prop in decl.props:
                    self.diag("C125", f"router '{decl.name}' sets '{prop}', which only applies to modes fan_out_each "
                              "and foreach "
                              f"(its mode is {decl.mode})", decl.props[prop])
            return
        pos = decl.props.get("over", decl.pos)
        if not decl.over:
            self.diag("C123", f"{decl.mode} router '{decl.name}' has no 'over:'; expected the list to map over, e.g. "
                      "over: \"{{outputs.planner.items}}\"", pos, length=len(decl.name))
            return
        refs, _ = self.refs_of(decl.over, f"'over' of router '{decl.name}'", pos)
        if refs is None:
            return
        if len(refs) != 1 or decl.over.strip() != refs[0].raw:
            self.diag("C123", f"'over' of {decl.mode} router '{decl.name}' is {decl.over!r}; expected exactly one "
                      "reference and nothing else, e.g. \"{{outputs.planner.items}}\"", pos, length=len(decl.over) + 2)
            return
        node.over = decl.over.strip()
        node.parallelism = decl.parallelism if decl.mode == "fan_out_each" else 0

    def compile_human(self, decl: A.HumanDecl, schemas: dict[str, ir.Schema], prompts: dict[str, ir.Prompt],
                      wf_interaction: str) -> ir.HumanNode:
        self.check_schema(decl, "input", decl.input, schemas)
        self.check_schema(decl, "output", decl.output, schemas)
        self.check_prompt(decl, "instructions", decl.instructions, prompts)
        if decl.interaction_prompt and decl.interaction_prompt not in prompts:
            self.diag("C109", f"human '{decl.name}' interaction_prompt '{decl.interaction_prompt}' is not declared",
                      decl.props.get("interaction_prompt", decl.pos), length=len(decl.interaction_prompt))
        interaction = decl.interaction
        if interaction == "none":
            interaction = wf_interaction if wf_interaction != "none" else "human"
        node = ir.HumanNode(
            id=decl.name, input_schema=decl.input, output_schema=decl.output, interaction=interaction,  # type: ignore[arg-type]
            interaction_prompt=decl.interaction_prompt, interaction_model=decl.interaction_model,
            publish=decl.publish, min_answers=decl.min_answers, instructions=decl.instructions,
            await_mode=decl.await_mode, timeout=decl.timeout,  # type: ignore[arg-type]
        )
        if interaction in ("llm", "llm_or_human"):
            if not (decl.interaction_model or decl.model):
                self.diag("C018", f"human '{decl.name}' is answered by an LLM (interaction {interaction}) but has "
                          "no 'model' or 'interaction_model'", decl.pos, length=5)
            if not decl.output:
                self.diag("C018", f"human '{decl.name}' is answered by an LLM (interaction {interaction}) but has "
                          "no 'output' schema", decl.pos, length=5,
                          hint="Add 'output: SCHEMA' so the LLM's answer has a shape.")
            node.model = decl.model
            if decl.system:
                self.check_prompt(decl, "system", decl.system, prompts)
                node.system_prompt = decl.system
        if decl.timeout:
            seconds = parse_duration(decl.timeout)
            if seconds is None or seconds <= 0:
                self.diag("C100", f"human '{decl.name}' timeout {decl.timeout!r} is not a positive duration",
                          decl.props.get("timeout", decl.pos), length=len(decl.timeout) + 2)
            else:
                node.timeout_seconds = seconds
        return node

    def compile_tool(self, decl: A.ToolDecl, schemas: dict[str, ir.Schema]) -> ir.ToolNode:
        self.check_schema(decl, "output", decl.output, schemas)
        self.check_schema(decl, "input", decl.input, schemas)
        node = ir.ToolNode(id=decl.name, command=decl.command, call=decl.call, input_schema=decl.input,
                           output_schema=decl.output, publish=decl.publish,
                           await_mode=decl.await_mode)  # type: ignore[arg-type]
        if decl.command:
            base = decl.props.get("command", decl.pos)
            start, indent_col = A.Pos(base.line, base.column + 1), None
            body = self.file.block_bodies.get((base.line, base.column))
            if body is not None:  # a `|` block: the text starts on the lines below, indented
                start, indent_col = A.Pos(*body), body[1]
            refs, positions = self.refs_of(decl.command, f"the command of tool '{decl.name}'", start,
                                           indent_col=indent_col)
            node.command_refs = refs
            self.src.command_refs[decl.name] = positions
            self.check_command_quoting(decl.name, decl.command, start, indent_col)
        if decl.script:
            self.compile_script(decl, node)
        if decl.command and decl.call:
            self.diag("C104", f"tool '{decl.name}' sets both 'command' and 'call'", decl.props.get("call", decl.pos))
        elif decl.script and (decl.command or decl.call):
            other = "command" if decl.command else "call"
            self.diag("C104", f"tool '{decl.name}' sets both '{other}' and 'script'", decl.props.get("script", decl.pos))
        elif decl.language and not decl.script:
            self.diag("C134", f"tool '{decl.name}' sets 'language' without 'script': a language says how to run "
                      "an inline script", decl.props.get("language", decl.pos), length=len(decl.language))
        elif not (decl.command or decl.call or decl.script):
            self.diag("C103", f"tool '{decl.name}' has none of 'command', 'call' and 'script'", decl.pos, length=4)
        elif (decl.call and self.opts.known_tools is not None and decl.call not in self.opts.known_tools
              and not _is_mcp_tool(decl.call)):  # MCP tools are known when the run starts
            self.diag("C105", f"tool '{decl.name}' calls '{decl.call}', which is not a builtin tool",
                      decl.props.get("call", decl.pos), length=len(decl.call),
                      hint=_did_you_mean(decl.call, self.opts.known_tools, "builtin tool")
                      or f"Builtin tools: {', '.join(sorted(self.opts.known_tools))}; or use a shell 'command:'.")
        return node

    def compile_script(self, decl: A.ToolDecl, node: ir.ToolNode) -> None:
        """An inline script (`script:` + `language:`, dsl/scripts.py): its templates are checked as
        a command's are; in a `sh`/`bash` script the quoting check (C116) applies too, in js and py
        each template becomes code reading its value from the environment."""
        node.script, node.language = decl.script, decl.language or "sh"
        base = decl.props.get("script", decl.pos)
        start, indent_col = A.Pos(base.line, base.column + 1), None
        body = self.file.block_bodies.get((base.line, base.column))
        if body is not None:
            start, indent_col = A.Pos(*body), body[1]
        refs, positions = self.refs_of(decl.script, f"the script of tool '{decl.name}'", start, indent_col=indent_col)
        node.command_refs = refs
        self.src.command_refs[decl.name] = positions
        if interpreter(node.language) in ("sh", "bash"):
            self.check_command_quoting(decl.name, decl.script, start, indent_col)

    def check_command_quoting(self, tool: str, command: str, base: A.Pos, indent_col: int | None = None) -> None:
        """C116: a template inside quotes, after a backslash or in a here-document of a command;
        C117 (a warning): a template that is the program of `eval`, `sh -c`, `python3 -c`….

        Values reach a command as data only where the shell itself reads the template (see
        dsl/shell_quoting.py); quoted text is often a program for another interpreter.
        """
        for found in template_places(command):
            program = program_taking_code(command, found)
            if program:
                raw = command[found.offset : found.offset + found.length]
                self.diag("C117", f"{raw} in the command of tool '{tool}' is the program of `{program}`: its value "
                          "runs as code", _offset_pos(base, command, found.offset, indent_col=indent_col),
                          length=found.length)
            if found.place in SAFE_PLACES:
                continue
            raw = command[found.offset : found.offset + found.length]
            what, hint = _QUOTING_FIXES[found.place]
            self.diag("C116", f"{raw} in the command of tool '{tool}' is {what}: a value there can run as code "
                      "(in this shell, or in the program the quoted text is given to)",
                      _offset_pos(base, command, found.offset, indent_col=indent_col), length=found.length,
                      hint=hint.format(ref=raw))

    def compile_join(self, decl: A.JoinDecl, schemas: dict[str, ir.Schema]) -> ir.JoinNode:
        self.check_schema(decl, "output", decl.output, schemas)
        return ir.JoinNode(id=decl.name, await_mode=decl.strategy, require=list(decl.require),  # type: ignore[arg-type]
                           output_schema=decl.output)

    def compile_wait(self, decl: A.WaitDecl) -> ir.WaitNode:
        node = ir.WaitNode(id=decl.name, duration=decl.duration, await_mode=decl.await_mode)  # type: ignore[arg-type]
        if decl.event or "event" in decl.props or "timeout" in decl.props:
            prop = "event" if "event" in decl.props else "timeout"
            what = (f"waits for the event '{decl.event}'" if decl.event
                    else "sets 'timeout', which belongs to an event wait")
            self.diag("C119", f"wait '{decl.name}' {what}: that is Iterion's `wait` (it waits for an `emit`), which "
                      "iterloop does not run; an iterloop `wait` is a durable timer", decl.props[prop],
                      length=len(decl.event) or 1)
            return node
        if not decl.duration:
            if "duration" not in decl.props:
                self.diag("C102", f"wait '{decl.name}' has no 'duration'", decl.pos, length=4)
            else:
                self.diag("C100", f"wait '{decl.name}' has an empty duration", decl.props["duration"])
            return node
        seconds = parse_duration(decl.duration)
        if seconds is None or seconds <= 0:
            self.diag("C100", f"wait '{decl.name}' duration {decl.duration!r} is not a positive duration",
                      decl.props.get("duration", decl.pos), length=len(decl.duration) + 2)
        else:
            node.duration_seconds = seconds
        return node

    # -- expressions (compute nodes, `when "…"` edges) ----------------------------------------
    def expression(self, source: str, where: str, quote: A.Pos, *, bare_fields: bool = False) -> ir.Expression | None:
        """Parse an expression written in a string starting at ``quote``; C126/C127 point into it."""
        try:
            tree = parse_expression(source, bare_fields=bare_fields)
        except ExpressionError as exc:
            code = "C127" if exc.kind == "function" else "C126"
            self.diag(code, f"in {where}: {exc.message}", A.Pos(quote.line, quote.column + 1 + exc.offset))
            return None
        self.expression_uses.append((tree, where, quote))
        return ir.Expression(source=source, tree=tree)

    def compile_compute(self, decl: A.ComputeDecl, schemas: dict[str, ir.Schema]) -> ir.ComputeNode:
        self.check_schema(decl, "output", decl.output, schemas)
        self.check_schema(decl, "input", decl.input, schemas)
        node = ir.ComputeNode(id=decl.name, input_schema=decl.input, output_schema=decl.output,
                              await_mode=decl.await_mode)  # type: ignore[arg-type]
        if "expr" not in decl.props:  # an `expr:` block without good lines has its parse errors already
            self.diag("C128", f"compute '{decl.name}' has no 'expr:' block with expressions", decl.pos, length=7)
        seen: set[str] = set()
        for item in decl.exprs:
            if item.key in seen:
                self.diag("C126", f"compute '{decl.name}' computes '{item.key}' twice", item.pos, length=len(item.key))
            seen.add(item.key)
            parsed = self.expression(item.source, f"'{item.key}' of compute '{decl.name}'", item.value_pos)
            if parsed is not None:
                node.fields.append(ir.ComputeField(key=item.key, expression=parsed))
        return node

    def check_expression_refs(self, nodes: dict[str, ir.Node], loops: dict[str, ir.Loop],
                              schemas: dict[str, ir.Schema], variables: dict[str, ir.Var]) -> None:
        """C126: `outputs.NODE…` must name a node, `loop.NAME…` a loop and `vars.X` a variable of the
        workflow; a bare name in `when "…"` a field of the source's output schema (when it has one)."""
        for tree, source, target, pos in self.condition_sources:
            schema = schemas.get(getattr(nodes.get(source), "output_schema", "") or "")
            for namespace, path in references(tree):
                if namespace == "field" and schema is not None and not path[0].startswith("_") \
                        and schema.field(path[0]) is None:
                    self.diag("C126", f"in the condition of edge '{source} -> {target}': '{path[0]}' is not a field "
                              f"of '{source}' output schema '{schema.name}'", pos,
                              hint=_did_you_mean(path[0], [f.name for f in schema.fields], "field")
                              or "Name a field of the source's output schema.")
        for tree, where, quote in self.expression_uses:
            for namespace, path in references(tree):
                if namespace == "outputs" and path[0] not in nodes:
                    self.diag("C126", f"in {where}: 'outputs.{path[0]}' names no node of the workflow", quote,
                              hint=_did_you_mean(path[0], nodes, "node") or "Reference a declared node.")
                elif namespace == "vars" and path[0] not in variables:
                    self.diag("C126", f"in {where}: variable '{path[0]}' is not declared", quote,
                              hint=_did_you_mean(path[0], variables, "variable") or "Declare it in 'vars:'.")
                elif namespace == "loop" and path[0] not in loops:
                    self.diag("C126", f"in {where}: 'loop.{path[0]}' names no loop of the workflow", quote,
                              hint=_did_you_mean(path[0], loops, "loop")
                              or "Name a loop declared on an edge with 'as NAME(N)'.")

    def loop_bound(self, clause: A.LoopClause) -> ir.Expression | None:
        """`as NAME("{{vars.n}}")` (one reference) or `as NAME("vars.n - 1")` (an expression)."""
        source = clause.bound_source or ""
        expression = _bound_expression(source)
        if expression is None:
            self.diag("C126", f"the bound of loop '{clause.name}' mixes a {{{{…}}}} reference with other text: "
                      "write one reference (\"{{vars.n}}\") or an expression (\"vars.n - 1\")", clause.pos,
                      length=len(clause.name))
            return None
        # the string starts after '(' : the position of its opening quote is past the name and '('
        quote = A.Pos(clause.pos.line, clause.pos.column + len(clause.name) + 1)
        offset = source.index(expression) if expression in source else 0
        return self.expression(expression, f"the bound of loop '{clause.name}'",
                               A.Pos(quote.line, quote.column + offset))

    def check_else_edges(self, edges: list[ir.Edge]) -> None:
        """C129: `when else` is the fallback of a node's conditional edges: one per node, never
        beside an unconditional edge (which is already the fallback), never alone."""
        for i, pos in sorted(self.src_else.items()):
            source = edges[i].source
            mine = [e for e in edges if e.source == source]
            if sum(1 for e in mine if e.is_else) > 1 and any(j < i for j in self.src_else if edges[j].source == source):
                self.diag("C129", f"'{source}' has more than one 'when else' edge", pos, length=4)
            elif any(not e.conditional for e in mine):
                self.diag("C129", f"'{source}' has both an unconditional edge and a 'when else' edge; the "
                          "unconditional edge is already the fallback", pos, length=4)
            elif not any(e.conditional and not e.is_else for e in mine):
                self.diag("C129", f"'{source}' has a 'when else' edge but no conditional edge for it to be the "
                          "alternative of", pos, length=4)

    # -- workflow parts ------------------------------------------------------------------------
    def compile_vars(self, wf_decl: A.WorkflowDecl) -> dict[str, ir.Var]:
        blocks = self.file.of_type(A.VarsBlock)
        fields: list[A.VarField] = list(blocks[-1].fields) if blocks else []
        if wf_decl.vars is not None:
            fields += wf_decl.vars.fields
        variables: dict[str, ir.Var] = {}
        for f in fields:
            var = ir.Var(name=f.name, type=f.type)  # type: ignore[arg-type]
            if f.default is not None:
                var.has_default = True
                var.default = float(f.default.value) if f.type == "float" and f.default.kind == "int" else f.default.value
                if not _type_matches(f.type, f.default):
                    kind = {"int": "an int", "json": "a JSON value"}.get(f.default.kind, f"a {f.default.kind}")
                    self.diag("C107", f"variable '{f.name}' is declared {f.type} but its default {f.default.raw} is "
                              f"{kind}", f.pos, length=len(f.name))
            variables[f.name] = var
        return variables

    def compile_presets(self, variables: dict[str, ir.Var]) -> dict[str, dict[str, object]]:
        """In-file `presets:` → IR; each value must set a declared var (C120) of its type (C121)."""
        presets: dict[str, dict[str, object]] = {}
        blocks = self.file.of_type(A.PresetsBlock)
        for extra in blocks[1:]:
            self.diag("C108", f"a second 'presets:' block (first at line {blocks[0].pos.line}); their presets are "
                      "merged, a later preset of the same name wins", extra.pos, length=7)
        first_line: dict[str, int] = {}
        for block in blocks:
            for preset in block.presets:
                if preset.name in first_line:
                    self.diag("C108", f"preset '{preset.name}' is declared twice (first at line "
                              f"{first_line[preset.name]}); the later declaration wins", preset.pos,
                              length=len(preset.name))
                first_line.setdefault(preset.name, preset.pos.line)
                values: dict[str, object] = {}
                for pv in preset.values:
                    if pv.value is None:
                        continue
                    var = variables.get(pv.key)
                    if var is None:
                        self.diag("C120", f"preset '{preset.name}' sets '{pv.key}', which is not a declared variable",
                                  pv.pos, length=len(pv.key),
                                  hint=_did_you_mean(pv.key, variables, "variable")
                                  or "Declare it in 'vars:' or remove it from the preset.")
                    elif not _type_matches(var.type, pv.value):
                        self.diag("C121", f"preset '{preset.name}' sets '{pv.key}' (declared {var.type}) to "
                                  f"{pv.value.raw}", pv.pos, length=len(pv.key))
                    values[pv.key] = (float(pv.value.value) if var is not None and var.type == "float"
                                      and pv.value.kind == "int" else pv.value.value)
                presets[preset.name] = values
        return presets

    def compile_edges(self, wf_decl: A.WorkflowDecl, nodes: dict[str, ir.Node]) -> tuple[list[ir.Edge], dict[str, ir.Loop]]:
        edges: list[ir.Edge] = []
        loops: dict[str, ir.Loop] = {}
        for e in wf_decl.edges:
            self.src.edges.append(e)
            for name, pos, role in ((e.source, e.pos, "source"), (e.target, e.target_pos, "target")):
                if name not in nodes:
                    self.diag("C001", f"edge {role} '{name}' is not a declared node", pos, length=len(name),
                              hint=_did_you_mean(name, nodes, "node") or "Declare the node, or use done / fail.")
            edge = ir.Edge(source=e.source, target=e.target)
            if e.when is not None and e.when.field:
                edge.condition = e.when.field
                edge.negated = e.when.negated
            elif e.when is not None and e.when.expression is not None:
                edge.expression = self.expression(e.when.expression, f"the condition of edge '{e.source} -> {e.target}'",
                                                  e.when.pos, bare_fields=True)
                if edge.expression is not None:
                    self.condition_sources.append((edge.expression.tree, e.source, e.target, e.when.pos))
            elif e.when is not None and e.when.is_else:
                edge.is_else = True
                self.src_else[len(edges)] = e.when.pos
            if e.loop is not None:
                edge.loop_name = e.loop.name
                existing = loops.get(e.loop.name)
                if existing is None:
                    loops[e.loop.name] = ir.Loop(name=e.loop.name, max_iterations=e.loop.max_iterations)
                    self.src.loops[e.loop.name] = e.loop.pos
                    if e.loop.bound_source is not None:
                        loops[e.loop.name].max_iterations = ir.DATA_LOOP_CEILING
                        loops[e.loop.name].bound = self.loop_bound(e.loop)
                elif (existing.bound is None) != (e.loop.bound_source is None) or (
                        existing.bound is not None and existing.bound.source != _bound_expression(e.loop.bound_source)):
                    self.diag("C005", f"loop '{e.loop.name}' is declared with another bound before; the first bound "
                              "is kept", e.loop.pos, length=len(e.loop.name))
                elif existing.max_iterations != e.loop.max_iterations:
                    self.diag("C005", f"loop '{e.loop.name}' is declared with bound {e.loop.max_iterations} here but "
                              f"{existing.max_iterations} before; the first bound is kept", e.loop.pos,
                              length=len(e.loop.name))
            for j, w in enumerate(e.with_ or []):
                refs, positions = self.refs_of(w.value, f"with-key '{w.key}' of edge '{e.source} -> {e.target}'",
                                       A.Pos(w.value_pos.line, w.value_pos.column + 1))
                edge.with_.append(ir.DataMapping(key=w.key, raw=w.value, refs=refs))
                self.src.with_refs[(len(edges), j)] = positions
            edges.append(edge)
        self.check_else_edges(edges)
        return edges, loops

    def compile_budget(self, block: A.BudgetBlock | None) -> ir.Budget | None:
        if block is None:
            return None
        budget = ir.Budget(
            max_parallel_branches=block.max_parallel_branches, max_duration=block.max_duration,
            max_cost_usd=float(block.max_cost_usd), max_tokens=block.max_tokens, max_iterations=block.max_iterations,
        )
        if block.max_duration:
            seconds = parse_duration(block.max_duration)
            if seconds is None:
                self.diag("C101", f"budget max_duration {block.max_duration!r} is not a duration; no time limit "
                          "will apply", block.props.get("max_duration", block.pos), length=len(block.max_duration) + 2)
            else:
                budget.max_duration_seconds = seconds
        return budget


def _bound_expression(source: str | None) -> str | None:
    """A data loop bound as an expression: `{{vars.n}}` reads as `vars.n`; text around a
    reference, or several references, is None (refused, C126)."""
    if source is None:
        return None
    text = source.strip()
    if "{{" not in text:
        return source
    if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1 and text.count("}}") == 1:
        return text[2:-2].strip()
    return None


def _is_mcp_tool(name: str) -> bool:
    """`mcp.SERVER.TOOL`: a tool of an MCP server (the run checks that the server exists)."""
    parts = name.split(".", 2)
    return len(parts) == 3 and parts[0] == "mcp" and all(parts)


def _approval_matches(pattern: str, entry: str) -> bool:
    """Whether a `tool_approval` pattern can match a call of `tools:` entry ``entry`` (itself a name
    or `mcp.SERVER.*`): `*`, the same text, a namespace holding it, or a tool of that server."""
    if pattern in ("*", entry):
        return True
    if pattern.endswith(".*") and entry.startswith(pattern[:-1]):
        return True
    return entry.endswith(".*") and pattern.startswith(entry[:-1])


def _mcp_config(block: A.MCPBlock | None) -> ir.MCPConfig | None:
    if block is None:
        return None
    return ir.MCPConfig(autoload_project=block.autoload_project, inherit=block.inherit,
                        servers=list(block.servers), disable=list(block.disable))


def _kind(decl: A.NodeDecl) -> str:
    if isinstance(decl, A.AgentDecl):
        return decl.kind
    return type(decl).__name__.removesuffix("Decl").lower()


def _did_you_mean(name: str, known: Iterable[str], what: str) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"Did you mean {what} '{close[0]}'?" if close else None


def compile_ast(file: A.File, options: CompileOptions | None = None) -> tuple[ir.Workflow | None, list[Diagnostic], SourceMap]:
    """Compile and validate. The IR is returned even when errors were found (check them)."""
    compiler = _Compiler(file, options or CompileOptions())
    workflow = compiler.compile()
    diags = compiler.diags
    if workflow is not None:
        diags = diags + validate(workflow, compiler.src)
        workflow.with_hash()
    return workflow, diags, compiler.src
