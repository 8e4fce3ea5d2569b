"""The visual editor's wire format (mirrored in web/src/graph/types.ts and web/src/editor/types.ts).

Pydantic models of what `api.editor` reads and answers. The graph parts (`GraphNode`, `GraphEdge`,
`EditorDiagnostic`, `Span`) have the same fields as the TypeScript types the browser draws from, so
the canvas, the inspector and the run console share one shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The header every state-changing editor request carries: a custom header makes a browser ask
#: permission first (CORS preflight), which this server never grants to another origin.
EDITOR_HEADER = "X-Iterloop-Editor"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Span(_Model):
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None


class GraphNode(_Model):
    id: str
    kind: str
    props: dict[str, Any] = Field(default_factory=dict)
    span: Span | None = None


class EdgeLoop(_Model):
    name: str
    max: int | str


class GraphEdge(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    index: int
    from_: str = Field(alias="from")
    to: str
    when: str | None = None
    loop: EdgeLoop | None = None
    with_: dict[str, str] | None = Field(default=None, alias="with")
    span: Span | None = None


class EditorDiagnostic(_Model):
    code: str
    severity: Literal["error", "warning"]
    message: str
    hint: str | None = None
    line: int | None = None
    column: int | None = None
    node: str | None = None
    edge: str | None = None


class WorkflowInfo(_Model):
    name: str
    entry: str | None = None
    budget: dict[str, Any] | None = None


class SchemaFieldInfo(_Model):
    name: str
    type: str
    enum: list[str] | None = None


class SchemaInfo(_Model):
    name: str
    fields: list[SchemaFieldInfo]
    span: Span | None = None


class PromptInfo(_Model):
    name: str
    text: str
    span: Span | None = None


class VarInfo(_Model):
    name: str
    type: str
    default: Any = None


class Document(_Model):
    """The server's analysis of one source: what the canvas, inspector and diagnostics list show."""

    path: str | None = None
    source: str
    version: str
    parse_ok: bool
    workflow: WorkflowInfo | None = None
    nodes: list[GraphNode] = Field(default_factory=list)
    edges: list[GraphEdge] = Field(default_factory=list)
    schemas: list[SchemaInfo] = Field(default_factory=list)
    prompts: list[PromptInfo] = Field(default_factory=list)
    vars: list[VarInfo] = Field(default_factory=list)
    mcp_servers: list[dict[str, Any]] = Field(default_factory=list)
    refs: list[str] = Field(default_factory=list)
    diagnostics: list[EditorDiagnostic] = Field(default_factory=list)


# -- requests -----------------------------------------------------------------------------------


class FileEntry(_Model):
    path: str
    size: int
    mtime: float


class FileList(_Model):
    dir: str
    files: list[FileEntry]


class FileContent(_Model):
    path: str
    source: str
    version: str


class SaveFile(_Model):
    path: str
    source: str
    base_version: str | None = None


class SavedFile(_Model):
    path: str
    version: str


class NewFile(_Model):
    path: str
    workflow: str | None = Field(default=None, description="Start the file with `workflow NAME:`.")


class AnalyzeRequest(_Model):
    source: str
    path: str | None = None


class EditRequest(_Model):
    source: str
    path: str | None = None
    ops: list[dict[str, Any]]


class FormatRequest(_Model):
    source: str


class FormattedSource(_Model):
    source: str


class RunRequest(_Model):
    path: str
    mode: Literal["offline", "real"] = "offline"
    vars: dict[str, Any] = Field(default_factory=dict)


class StartedEditorRun(_Model):
    run_id: str
    console_url: str
