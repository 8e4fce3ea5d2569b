"""Presets: a YAML file of settings applied to a workflow when a run starts (`iterloop run --config`).

A preset says, in a team's words, how a workflow should run this time: which analytics connector,
which metrics and thresholds, how often to look, which gates a person answers, which model each
agent uses, how many cycles. Applying it produces three things, all visible in the run's input
(and so in Temporal history and the Web UI):

* **run inputs** for the workflow's declared vars (`thresholds.alpha` → var `alpha`);
* **IR overrides** on the compiled graph, for what a var cannot set: a `wait` node's duration,
  loop bounds, node models, gate modes, the budget. The IR travels in the run input, so the
  overridden graph is exactly what every worker replays; editing the preset later changes
  nothing in a running run. The run's content hash is the hash of the overridden graph;
* **run options**: gate answers given automatically (`gates: {X: auto}`, `--skip-gates`), and where
  the run reports (`notify:`, merged over the deployment's defaults by `runtime.notify_options`).

Two layers of keys. The generic ones work for any workflow: `vars`, `waits`, `loops`, `models`,
`gates`, `budget`, `summary`, `notify`. The growth-loop sections (`connector`, `funnel`, `metrics`,
`thresholds`, `monitoring`, `flags`, `cycles`, `replans`, `learnings_dir`) are shorthands that
compile to those generic keys through `GROWTH_VARS` and `_growth_overrides`; a workflow that
wants them declares the vars, wait node and loops named there (examples/growth_loop.iter does).
`docs/growth-loop.md` is the reference for users.

Pure: YAML and pydantic, no Temporal. Every problem is a `PresetError` naming the file, the line
when known, the key, what was expected and how to fix it.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dsl import ir
from dsl.durations import parse_duration
from dsl.source_files import read_limited
from runtime.command_errors import UsageError
from runtime.notify_options import NotifySection
from runtime.run_inputs import var_type_problem
from workflows.contract.json_values import value_problem

SKIP_GATES_NOTE = "auto-approved (--skip-gates)"
PRESET_NOTE = "auto-approved (preset)"


class PresetError(UsageError):
    """A preset that cannot be read, is invalid, or does not fit the workflow (exit 2)."""


# -- the file's shape ------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _duration(value: str, *, positive: bool = True) -> str:
    seconds = parse_duration(value)
    if seconds is None:
        raise ValueError(f"'{value}' is not a duration; write e.g. \"30s\", \"15m\", \"6h\", \"1d\" or \"1h30m\"")
    if positive and seconds <= 0:
        raise ValueError(f"'{value}' must be longer than zero")
    return value


class ConnectorSection(_Section):
    name: str = Field(min_length=1, description="mock, ga4, mixpanel, amplitude or warehouse")
    settings: dict[str, Any] = Field(default_factory=dict)


class FunnelSection(_Section):
    name: str | None = None
    from_step: str | None = None
    to_step: str | None = None
    dimension: str | None = None
    segments: list[str] | None = Field(None, min_length=1)
    lookback_days: int | None = Field(None, ge=1, le=366)
    recent_days: int | None = Field(None, ge=1, le=366)


class GuardrailSection(_Section):
    name: str = Field(min_length=1)
    higher_is_better: bool = False
    max_drop: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class MetricsSection(_Section):
    primary: str | None = None
    guardrails: list[GuardrailSection] | None = None
    control: str | None = Field(None, min_length=1, description="the control arm's name (default: control)")


class ThresholdsSection(_Section):
    alpha: float | None = Field(None, gt=0, lt=1)
    power: float | None = Field(None, gt=0, lt=1)
    mde: float | None = Field(None, gt=0)
    max_guardrail_drop: float | None = Field(None, ge=0)
    min_runtime: str | None = Field(None, description="how long an experiment runs before it may ship, e.g. 3d")
    method: Literal["sequential", "fixed_horizon"] | None = None

    _min_runtime = field_validator("min_runtime")(lambda v: v if v is None else _duration(v, positive=False))


class MonitoringSection(_Section):
    cadence: str | None = None
    max_looks_per_cycle: int | None = Field(None, ge=1)

    _cadence = field_validator("cadence")(lambda v: v if v is None else _duration(v))


class FlagsSection(_Section):
    provider: str | None = Field(None, min_length=1, description="local, growthbook or unleash")
    settings: dict[str, Any] | None = None
    traffic_split: dict[str, float] | None = None

    @field_validator("traffic_split")
    @classmethod
    def _sums_to_100(cls, split: dict[str, float] | None) -> dict[str, float] | None:
        if split is not None and (len(split) < 2 or not math.isclose(sum(split.values()), 100)):
            raise ValueError(f"traffic_split needs at least two variants whose weights sum to 100, got {split}")
        return split


class GateSection(_Section):
    mode: Literal["human", "auto", "llm"] = "human"
    answer: dict[str, Any] | None = None
    model: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_mode(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fits_mode(self) -> GateSection:
        if self.mode == "llm" and not self.model:
            raise ValueError("mode llm needs the answering model: add model: \"anthropic/…\"")
        if self.mode != "llm" and self.model:
            raise ValueError(f"model is only for mode llm (this gate is {self.mode})")
        return self


class BudgetSection(_Section):
    max_cost_usd: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    max_iterations: int | None = Field(None, ge=0)
    max_duration: str | None = None

    _max_duration = field_validator("max_duration")(lambda v: v if v is None else _duration(v))


class TimeoutsSection(_Section):
    """How long one attempt of a step may take (run options), as durations."""

    shell: str | None = Field(None, description="a shell command (run option shell_timeout_seconds; 10m)")
    model: str | None = Field(None, description="a model call (llm_timeout_seconds; 5m)")
    delegate: str | None = Field(None, description="a delegated coding agent's CLI (delegate_timeout_seconds; 1h)")

    _durations = field_validator("shell", "model", "delegate")(lambda v: v if v is None else _duration(v))


#: A `timeouts:` key → the run option it sets.
TIMEOUT_OPTIONS = {"shell": "shell_timeout_seconds", "model": "llm_timeout_seconds",
                   "delegate": "delegate_timeout_seconds"}


class Preset(_Section):
    """One preset file, as written (every setting optional: unset keeps the workflow's own)."""

    workflow: str | None = Field(None, description="the workflow this preset is for (checked)")
    extends: str | None = Field(None, description="a base preset, relative to this file")
    # growth-loop sections
    connector: ConnectorSection | None = None
    funnel: FunnelSection | None = None
    metrics: MetricsSection | None = None
    thresholds: ThresholdsSection | None = None
    monitoring: MonitoringSection | None = None
    flags: FlagsSection | None = None
    cycles: int | None = Field(None, ge=1)
    replans: int | None = Field(None, ge=0)
    learnings_dir: str | None = None
    # generic keys
    vars: dict[str, Any] = Field(default_factory=dict)
    waits: dict[str, str] = Field(default_factory=dict)
    loops: dict[str, int] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    gates: dict[str, GateSection] = Field(default_factory=dict)
    budget: BudgetSection | None = None
    timeouts: TimeoutsSection | None = None
    summary: list[str] = Field(default_factory=list)
    notify: NotifySection | None = None

    @field_validator("waits")
    @classmethod
    def _wait_durations(cls, waits: dict[str, str]) -> dict[str, str]:
        for value in waits.values():
            _duration(value)
        return waits

    @field_validator("loops")
    @classmethod
    def _loop_bounds(cls, loops: dict[str, int]) -> dict[str, int]:
        for name, bound in loops.items():
            if bound < 0:
                raise ValueError(f"loop '{name}' bound must be 0 or more, got {bound}")
        return loops


@dataclass
class LoadedPreset:
    path: Path
    preset: Preset
    files: list[Path]  # the file and the ones it extends, most basic first


# -- loading ---------------------------------------------------------------------------------------


def load_preset(path: Path, *, within: Path | None = None) -> LoadedPreset:
    """Read, check and merge a preset file (and the files it `extends`).

    With ``within`` (the API's presets directory), every file of the chain must resolve inside
    it, symlinks followed; one that does not is refused before it is read, so the error says
    nothing about files elsewhere.
    """
    chain: list[Path] = []
    merged: dict[str, Any] = {}
    current: Path | None = path
    layers: list[dict[str, Any]] = []
    while current is not None:
        resolved = current.resolve()
        if within is not None and not resolved.is_relative_to(within.resolve()):
            how = f"preset '{chain[-1]}' extends '{current}', which" if chain else f"preset '{current}'"
            raise PresetError(f"{how} is outside the presets directory {within}; put the file there")
        if resolved in [p.resolve() for p in chain]:
            cycle = " → ".join(str(p) for p in [*chain, current])
            raise PresetError(f"preset '{chain[0]}' extends itself in a cycle: {cycle}")
        chain.append(current)
        raw = _read_checked(current)
        layers.append(raw)
        base = raw.get("extends")
        current = (current.parent / base) if isinstance(base, str) else None
    for raw in reversed(layers):
        merged = _deep_merge(merged, raw)
    merged.pop("extends", None)
    try:
        preset = Preset.model_validate(merged)
    except ValidationError as exc:  # each file was valid alone; the merge should be too
        raise PresetError(f"preset '{path}' (merged with the files it extends): {_problems(exc, None, path)}") from None
    return LoadedPreset(path=path, preset=preset, files=list(reversed(chain)))


def _read_checked(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = read_limited(path).decode("utf-8")  # a regular file, size-capped (dsl.source_files)
    except FileNotFoundError:
        raise PresetError(f"preset file '{path}' does not exist; check the path given with --config") from None
    except OSError as exc:
        raise PresetError(f"cannot read preset file '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PresetError(f"cannot read preset file '{path}': not UTF-8 text (byte {exc.start}); "
                          "save it as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise PresetError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise PresetError(f"{path}: the YAML nests too deeply; a preset is a few levels of settings") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PresetError(f"{path}: a preset is a mapping of settings (connector:, metrics:, …), "
                          f"found {type(data).__name__}")
    problem = value_problem(data)  # NaN/Infinity (`.nan`, `.inf`) or a value nested too deeply
    if problem is not None:
        raise PresetError(f"{path}: {problem}")
    try:
        Preset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(_problems(exc, root, path)) from None
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _problems(exc: ValidationError, root: Any, path: Path) -> str:
    """Every validation problem as `file:line: key: what is wrong; how to fix it`."""
    lines = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, (str, int)) and not str(p).startswith("function-")]
        key = ".".join(str(p) for p in loc) or "(top level)"
        where = _line_of(root, loc)
        prefix = f"{path}:{where}" if where else f"{path}"
        if err["type"] == "extra_forbidden":
            lines.append(f"{prefix}: unknown key '{key}'{_did_you_mean(loc)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{prefix}: {key}: {msg} (got {_shown(err.get('input'))})")
    return "invalid preset:\n  " + "\n  ".join(lines)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _did_you_mean(loc: list[str | int]) -> str:
    """A hint for an unknown key: the closest key its section accepts, and the keys it accepts."""
    section: Any = Preset
    for part in loc[:-1]:
        section = _inner_type(section, part)
    if not (isinstance(section, type) and issubclass(section, BaseModel)):
        return ""
    allowed = sorted(section.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    return (f"; did you mean '{close[0]}'?" if close else ";") + f" allowed here: {', '.join(allowed)}"


def _inner_type(section: Any, part: str | int) -> Any:
    """The type found under key/index ``part`` of ``section`` (a model, a dict or a list type)."""
    import typing

    if isinstance(section, type) and issubclass(section, BaseModel):
        info = section.model_fields.get(str(part))
        return _without_none(info.annotation) if info is not None else None
    args = typing.get_args(section)
    if typing.get_origin(section) is dict and len(args) == 2:
        return _without_none(args[1])
    if typing.get_origin(section) is list and args:
        return _without_none(args[0])
    return None


def _without_none(annotation: Any) -> Any:
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _line_of(root: Any, loc: list[str | int]) -> str:
    """`line:column` of the YAML node at ``loc`` (the key itself for the last mapping step)."""
    import yaml

    node, mark = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    mark, node = key_node.start_mark, value_node
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    if mark is None:
        return ""
    return f"{mark.line + 1}:{mark.column + 1}"


# -- what a preset does to a workflow --------------------------------------------------------------


#: Growth-loop settings that become run inputs: (section, key) → the workflow var they set.
GROWTH_VARS: dict[tuple[str, str], str] = {
    ("funnel", "name"): "funnel",
    ("funnel", "from_step"): "from_step",
    ("funnel", "to_step"): "to_step",
    ("funnel", "dimension"): "segment_dimension",
    ("funnel", "segments"): "segments",
    ("funnel", "lookback_days"): "lookback_days",
    ("funnel", "recent_days"): "recent_days",
    ("metrics", "primary"): "primary_metric",
    ("metrics", "guardrails"): "guardrail_metrics",
    ("metrics", "control"): "control",
    ("thresholds", "alpha"): "alpha",
    ("thresholds", "power"): "power",
    ("thresholds", "mde"): "mde",
    ("thresholds", "max_guardrail_drop"): "max_guardrail_drop",
    ("thresholds", "method"): "test_method",
    ("flags", "traffic_split"): "traffic_split",
}
#: The wait node and loops the growth sections drive.
MONITOR_WAIT = "monitor"
CYCLE_LOOP, MONITORING_LOOP, REPLAN_LOOP = "cycle", "monitoring", "replan"


@dataclass
class Overrides:
    """Everything a preset sets, with the preset key each value came from (for messages)."""

    vars: dict[str, tuple[Any, str]] = field(default_factory=dict)
    waits: dict[str, tuple[str, str]] = field(default_factory=dict)
    loops: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass
class AppliedPreset:
    """A preset applied to one workflow: what `iterloop run` starts the run with."""

    workflow: ir.Workflow  # a copy with the IR overrides, re-hashed
    inputs: dict[str, Any]  # var values (below --input and --var)
    gate_answers: dict[str, dict[str, Any]]
    summary: list[str]
    changes: list[str]  # what the preset changed, one line per kind, for the user and the run's details
    source: Path
    source_hash: str
    notify: NotifySection | None = None
    run_options: dict[str, Any] = field(default_factory=dict)  # `timeouts:` → RunOptions fields


def apply_preset(loaded: LoadedPreset, wf: ir.Workflow, *, skip_gates: bool = False) -> AppliedPreset:
    """Check ``loaded`` against ``wf`` and return the run's inputs, overridden IR and options."""
    p, where = loaded.preset, loaded.path
    if p.workflow and p.workflow != wf.name:
        raise PresetError(f"{where}: this preset is for workflow '{p.workflow}', not '{wf.name}'; "
                          f"use it with the right .iter file or change `workflow:`")
    out = wf.model_copy(deep=True)
    o = _growth_overrides(p, wf, where)
    for name, value in p.vars.items():
        o.vars[name] = (value, f"vars.{name}")
    for node, duration in p.waits.items():
        o.waits[node] = (duration, f"waits.{node}")
    for loop, bound in p.loops.items():
        o.loops[loop] = (bound, f"loops.{loop}")

    changes: list[str] = []
    inputs = _checked_vars(o.vars, wf, where)
    if inputs:
        changes.append("vars: " + ", ".join(sorted(inputs)))
    waits = []
    for node_id, (duration, key) in sorted(o.waits.items()):
        node = out.nodes.get(node_id)
        if not isinstance(node, ir.WaitNode):
            raise PresetError(f"{where}: {key} sets the duration of wait node '{node_id}', but workflow "
                              f"'{wf.name}' has {_kind_phrase(node)}; wait nodes: {_names(wf, ir.WaitNode)}")
        node.duration, node.duration_seconds = duration, float(parse_duration(duration) or 0.0)
        waits.append(f"{node_id} {duration}")
    if waits:
        changes.append("waits: " + ", ".join(waits))
    loops = []
    for loop_name, (bound, key) in sorted(o.loops.items()):
        loop = out.loops.get(loop_name)
        if loop is None:
            raise PresetError(f"{where}: {key} bounds loop '{loop_name}', which workflow '{wf.name}' does not "
                              f"have; its loops: {', '.join(sorted(wf.loops)) or '(none)'}")
        loop.max_iterations = bound
        loops.append(f"{loop_name} ≤ {bound}")
    if loops:
        changes.append("loops: " + ", ".join(loops))
    changes += _apply_models(p.models, out, where)
    gate_answers, gate_changes = _apply_gates(p, out, where, skip_gates=skip_gates)
    changes += gate_changes
    if p.budget is not None:
        changes += _apply_budget(p.budget, out)
    out.with_hash()
    run_options: dict[str, Any] = {}
    if p.timeouts is not None:
        set_ = {key: value for key, value in p.timeouts.model_dump().items() if value is not None}
        run_options = {TIMEOUT_OPTIONS[key]: float(parse_duration(value) or 0.0) for key, value in set_.items()}
        if set_:
            changes.append("timeouts: " + ", ".join(f"{key} {value}" for key, value in set_.items()))
    if p.notify is not None:
        changes.append("notify: " + (", ".join(filter(None, (
            f"Slack {p.notify.slack_channel}" if p.notify.slack_channel else "",
            f"{len(p.notify.webhooks)} webhook(s)" if p.notify.webhooks else ""))) or "off")
            if p.notify.enabled else "notify: off")
    return AppliedPreset(workflow=out, inputs=inputs, gate_answers=gate_answers, summary=list(p.summary),
                         changes=changes, source=where, source_hash=wf.content_hash, notify=p.notify,
                         run_options=run_options)


def _growth_overrides(p: Preset, wf: ir.Workflow, where: Path) -> Overrides:
    o = Overrides()
    for (section, key), var in GROWTH_VARS.items():
        part = getattr(p, section)
        value = getattr(part, key) if part is not None else None
        if value is not None:
            if isinstance(value, list):
                value = [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
            if isinstance(value, dict):  # a traffic split: 50, not 50.0, in prompts and flags
                value = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in value.items()}
            o.vars[var] = (value, f"{section}.{key}")
    if p.connector is not None:
        o.vars["connector"] = (p.connector.model_dump(), "connector")
    if p.flags is not None and (p.flags.provider is not None or p.flags.settings is not None):
        current = wf.vars["flag_provider"].default if "flag_provider" in wf.vars else None
        base = current if isinstance(current, dict) else {}
        provider = {"name": p.flags.provider or base.get("name", "local"),
                    "settings": p.flags.settings if p.flags.settings is not None else base.get("settings", {})}
        o.vars["flag_provider"] = (provider, "flags")
    if p.learnings_dir is not None:
        o.vars["learnings_dir"] = (p.learnings_dir, "learnings_dir")
    if p.thresholds is not None and p.thresholds.min_runtime is not None:
        o.vars["min_days"] = ((parse_duration(p.thresholds.min_runtime) or 0.0) / 86400, "thresholds.min_runtime")

    monitoring = p.monitoring
    if monitoring is not None and monitoring.cadence is not None:
        o.waits[MONITOR_WAIT] = (monitoring.cadence, "monitoring.cadence")
    if p.cycles is not None:
        o.loops[CYCLE_LOOP] = (p.cycles - 1, "cycles")
    # The monitoring and replan loops sit inside the cycle loop, so each cycle starts them afresh
    # (workflows.edges.inner_loops): per-cycle settings are the loops' own bounds.
    if monitoring is not None and monitoring.max_looks_per_cycle is not None:
        o.loops[MONITORING_LOOP] = (monitoring.max_looks_per_cycle - 1, "monitoring.max_looks_per_cycle")
    if p.replans is not None:
        o.loops[REPLAN_LOOP] = (p.replans, "replans")
    return o


#: Setting names that hold credentials, and a password inside a URL (`scheme://user:password@host`).
_SECRET_NAME = re.compile(r"pass(word)?|secret|token|api[_-]?key|private[_-]?key", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@/\s]+)@")


def _literal_secret(value: Any, path: str) -> str | None:
    """The path of the first credential written out in ``value`` (not as a `${VAR}` reference)."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}"
            if isinstance(v, str) and v and _SECRET_NAME.search(str(k)) and not v.startswith("${"):
                return sub
            found = _literal_secret(v, sub)
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _literal_secret(v, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(value, str):
        m = _URL_PASSWORD.search(value)
        if m and not m.group(1).startswith("${"):
            return path
    return None


def _checked_vars(values: dict[str, tuple[Any, str]], wf: ir.Workflow, where: Path) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, (value, key) in sorted(values.items()):
        secret = _literal_secret({name: value}, "vars") if key.startswith("vars.") else _literal_secret(value, key)
        if secret:
            raise PresetError(
                f"{where}: {secret} holds a credential; preset values are stored in the run's history. "
                "Keep it in the worker's environment: connectors and flag providers read their credentials there, "
                "and `${VAR}` in connector settings is expanded on the worker (e.g. "
                "url: \"postgresql://bi:${WAREHOUSE_PASSWORD}@db/analytics\")")
        var = wf.vars.get(name)
        if var is None:
            raise PresetError(f"{where}: {key} sets var '{name}', which workflow '{wf.name}' does not declare; "
                              f"remove the setting or declare the var (declared: {', '.join(wf.vars) or 'none'})")
        problem = var_type_problem(var, value)
        if problem:
            raise PresetError(f"{where}: {key} gives var '{name}' {_shown(value)}, but '{name}' is {var.type}: "
                              f"give {problem}")
        checked[name] = float(value) if var.type == "float" else value
    return checked


def _apply_models(models: dict[str, str], wf: ir.Workflow, where: Path) -> list[str]:
    takes_model = {n: node for n, node in wf.nodes.items()
                   if isinstance(node, ir.AgentNode) or (isinstance(node, ir.RouterNode) and node.router_mode == "llm")}
    default = models.get("default")
    for name, model in sorted(models.items()):
        if name != "default" and name not in takes_model:
            raise PresetError(f"models.{name}: workflow '{wf.name}' has no agent, judge or llm router '{name}' "
                              f"(in {where}); nodes with a model: {', '.join(sorted(takes_model)) or 'none'}, "
                              "or use `default`")
    chosen_by_model: dict[str, list[str]] = {}
    for name, node in sorted(takes_model.items()):
        chosen = models.get(name, default)
        if chosen is not None:
            node.model = chosen
            chosen_by_model.setdefault(chosen, []).append(name)
    return [f"model {model}: {', '.join(nodes)}" for model, nodes in sorted(chosen_by_model.items())]


def _apply_gates(p: Preset, wf: ir.Workflow, where: Path, *, skip_gates: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
    from workflows.contract.answers import AnswerError, answer_schema, coerce_answers

    humans = {n: node for n, node in wf.nodes.items() if isinstance(node, ir.HumanNode)}
    for name in p.gates:
        if name not in humans:
            raise PresetError(f"{where}: gates.{name}: workflow '{wf.name}' has no human gate '{name}'; "
                              f"its gates: {', '.join(sorted(humans)) or 'none'}")
    answers: dict[str, dict[str, Any]] = {}
    changes: list[str] = []
    for name, node in sorted(humans.items()):
        gate = p.gates.get(name)
        schema = answer_schema(wf, node)
        if gate is not None and gate.mode == "llm":
            if schema is None:
                raise PresetError(f"{where}: gates.{name}: mode llm needs the gate to have an output schema")
            node.interaction, node.interaction_model = "llm", gate.model or ""
            changes.append(f"gate {name}: answered by the model {gate.model}")
            continue
        if gate is not None and gate.mode == "human" and node.interaction != "human":
            node.interaction = "human"
            changes.append(f"gate {name}: answered by a person")
        auto = gate is not None and gate.mode == "auto"
        if not (auto or (skip_gates and node.interaction in ("human", "llm_or_human"))):
            continue
        note = PRESET_NOTE if auto else SKIP_GATES_NOTE
        given = gate.answer if gate is not None and gate.answer is not None else derived_answer(schema, note)
        try:
            answers[name] = coerce_answers(schema, given, gate=name)
        except AnswerError as exc:
            raise PresetError(f"{where}: gates.{name}.answer: {exc}") from None
        changes.append(f"gate {name}: answered automatically with {answers[name]}")
    return answers, changes


def derived_answer(schema: ir.Schema | None, note: str) -> dict[str, Any]:
    """An approving answer built from a gate's schema: bools true (approved: true), enums their
    first value, strings ``note``, numbers 0, lists and JSON empty."""
    if schema is None:
        return {}
    values = {"bool": True, "int": 0, "float": 0.0, "string[]": [], "json": {}}
    return {f.name: (f.enum_values[0] if f.enum_values else note) if f.type == "string" else values[f.type]
            for f in schema.fields}


def _apply_budget(budget: BudgetSection, wf: ir.Workflow) -> list[str]:
    wf.budget = wf.budget.model_copy() if wf.budget is not None else ir.Budget()
    changes = []
    for key, value in budget.model_dump(exclude_none=True).items():
        setattr(wf.budget, key, value)
        if key == "max_duration":
            wf.budget.max_duration_seconds = parse_duration(value)
        changes.append(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}")
    return ["budget: " + ", ".join(changes)] if changes else []


def _kind_phrase(node: Any) -> str:
    return "no such node" if node is None else f"'{getattr(node, 'id', '?')}' as a {node.kind} node"


def _names(wf: ir.Workflow, kind: type) -> str:
    return ", ".join(sorted(n for n, node in wf.nodes.items() if isinstance(node, kind))) or "none"


# -- `iterloop run --config/--skip-gates/--stop-after` ---------------------------------------------


@dataclass
class PreparedRun:
    """What --config, --skip-gates and --stop-after make of a run: its IR, inputs and options."""

    workflow: ir.Workflow
    inputs: dict[str, Any] = field(default_factory=dict)
    run_options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # shown on stderr and in the run's Web UI details
    summary: list[str] = field(default_factory=list)
    notify: NotifySection | None = None  # the preset's `notify:` (merged with the defaults by the caller)


def prepare_run(config: Path | None, wf: ir.Workflow, *, skip_gates: bool, stop_after: list[str],
                preset_root: Path | None = None) -> PreparedRun:
    """Apply the preset (if any), then --skip-gates and --stop-after, to the compiled workflow.

    ``preset_root`` confines the preset and the files it extends to one directory (the API's)."""
    prepared = PreparedRun(workflow=wf)
    gate_answers: dict[str, dict[str, Any]] = {}
    in_file = in_file_preset(config, wf)
    if in_file is not None:
        config = None
        prepared.inputs = dict(wf.presets[in_file])
        prepared.notes.append(f"preset {in_file} (the workflow file's `presets:`): "
                              + (", ".join(f"{k}={v!r}" for k, v in prepared.inputs.items()) or "sets no var"))
    if config is not None:
        applied = apply_preset(load_preset(config, within=preset_root), wf, skip_gates=skip_gates)
        prepared = PreparedRun(workflow=applied.workflow, inputs=applied.inputs, summary=applied.summary,
                               notify=applied.notify, run_options=dict(applied.run_options))
        gate_answers = applied.gate_answers
        prepared.notes.append(f"preset {config}:" + "".join(f"\n  {change}" for change in applied.changes))
    if config is None and skip_gates:
        gate_answers = skip_gate_answers(wf)
        prepared.notes.append("--skip-gates: " + ("; ".join(
            f"gate {gate}: answered automatically with {answers}" for gate, answers in sorted(gate_answers.items()))
            or "the workflow has no human gate"))
    steps = sorted(n for n, node in wf.nodes.items() if node.kind not in ("done", "fail"))
    for node in stop_after:
        if node not in steps:
            raise UsageError(f"--stop-after {node}: workflow '{wf.name}' has no node '{node}'; its nodes: "
                             f"{', '.join(steps)}")
    if stop_after:
        prepared.notes.append(f"--stop-after {', '.join(stop_after)}: the run ends (finished) right after")
    prepared.run_options |= {k: v for k, v in (("gate_answers", gate_answers), ("stop_after", list(stop_after))) if v}
    return prepared


def in_file_preset(config: Path | None, wf: ir.Workflow) -> str | None:
    """The name of the workflow's own preset (`presets:` in the file, Iterion's form) that
    ``config`` names: a bare name that is no file here. A file always wins over a preset's name.
    A bare name that is neither is a `PresetError` listing both kinds of choice."""
    if config is None or config.exists() or config.suffix or len(config.parts) != 1:
        return None
    name = str(config)
    if name in wf.presets:
        return name
    if wf.presets:
        raise PresetError(f"no preset file '{name}', and workflow '{wf.name}' declares no preset '{name}'; its "
                          f"presets: {', '.join(sorted(wf.presets))} (or give the path of a YAML preset)")
    return None


# -- `--skip-gates` without a preset, and the summary ------------------------------------------------


def skip_gate_answers(wf: ir.Workflow) -> dict[str, dict[str, Any]]:
    """`--skip-gates` alone: an approving answer for every gate a person would answer."""
    from workflows.contract.answers import answer_schema, coerce_answers

    return {n: coerce_answers(answer_schema(wf, node), derived_answer(answer_schema(wf, node), SKIP_GATES_NOTE), gate=n)
            for n, node in sorted(wf.nodes.items())
            if isinstance(node, ir.HumanNode) and node.interaction in ("human", "llm_or_human")}


def render_summary(lines: list[str], *, outputs: dict[str, Any], vars: dict[str, Any],
                   artifacts: dict[str, Any]) -> list[str]:
    """The preset's `summary:` lines rendered against a run's state; a line whose references have
    no value (that part of the workflow did not run) is left out."""
    from dsl.templates import TemplateError, render, to_text

    spaces = {"outputs": outputs, "vars": vars, "artifacts": artifacts, "input": {}}

    def lookup(ref: ir.Ref) -> Any:
        value: Any = spaces.get(ref.kind, {})
        for key in ref.path:
            if not isinstance(value, dict) or key not in value or value[key] is None:
                raise _Unresolved
            value = value[key]
        return value

    rendered = []
    for line in lines:
        try:
            rendered.append(render(line, lookup, as_text=to_text))
        except (_Unresolved, TemplateError):
            continue
    return rendered


class _Unresolved(Exception):
    """A summary reference with no value in this run."""
