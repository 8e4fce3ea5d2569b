"""The dashboard: server-rendered pages over the same run service as the REST API and the CLI.

    /              runs: status, cost, open gates (filter by status, workflow, gate)
    /              runs: … plus a form that starts a registered workflow (POST /runs/start)
    /runs/RUN      one run: the run console (React, built into api/static/web: the graph laid
                   out with ELK, live node states, the path taken, node details, a history
                   scrubber, the gate form), over the server-rendered details it enhances: nodes
                   (and a node/edge table for readers without JavaScript), gates, outputs,
                   artifacts, budget, timeline, Web UI link, cancel/retry, rewind to / fork at a node
    /approvals     every open gate, each with a form generated from its output schema
    /login         exchange an API token for a session cookie (see api.auth)

Jinja2 templates in `api/templates/`, CSS and small scripts in `api/static/`, the console's bundle
in `api/static/web/` (`make web`; found through Vite's manifest): nothing fetched from elsewhere. Forms post back here with a CSRF token and answer gates through
the run's validated update; a refused answer is shown next to the form that sent it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import (
    Principal,
    check_csrf,
    clear_session,
    csrf_token,
    identify,
    match_token,
    recorded_answerer,
    set_session,
)
from api.deps import api_settings, run_service
from api.errors import ApiError, Forbidden, Unauthorized, api_error_from_command
from api.gate_forms import FormField, answers_from_form, form_fields
from api.graph_model import edge_condition
from api.models import StartRun
from api.settings import ApiSettings
from api.workflow_sources import describe_registered, start_request
from runtime.command_errors import CommandError
from runtime.report import cost_text, describe_event, format_duration, preview
from runtime.run_models import RunSummary
from runtime.run_service import RunService
from runtime.temporal_runs import RUN_STATUSES, TERMINAL_STATUSES
from workflows.contract.answers import already_answered
from workflows.contract.state import Gate

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
#: Vite's manifest of the built front end (`make web`): maps `console.html` to its hashed files.
WEB_MANIFEST = STATIC_DIR / "web" / ".vite" / "manifest.json"
#: The run page shows this many of the latest events.
TIMELINE_EVENTS = 500
#: A live run page reloads at most this often (rendering it asks Temporal for the whole run).
RUN_PAGE_RELOAD_SECONDS = 5.0
#: The approvals page asks at most this many waiting runs for their gates.
APPROVAL_RUNS = 50
#: How long the approvals page waits for one run's gates (a run whose worker is down must not stall it).
APPROVAL_QUERY_SECONDS = 5.0

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

Runs = Annotated[RunService, Depends(run_service)]
Config = Annotated[ApiSettings, Depends(api_settings)]


# -- template helpers ----------------------------------------------------------------------------


def _when(iso: str | None) -> str:
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.utcoffset() is not None else "")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


templates.env.filters.update(cost=cost_text, duration=format_duration, when=_when, pretty=_pretty, preview=preview,
                             urlquote=lambda s: quote(str(s), safe=""))


def _page(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    settings: ApiSettings = request.app.state.api_settings
    principal = getattr(request.state, "principal", None)
    base = {"principal": principal, "auth_disabled": settings.auth_disabled,
            "csrf": csrf_token(request, settings), "statuses": RUN_STATUSES}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


# -- who is looking ------------------------------------------------------------------------------


class LoginRequired(Unauthorized):
    code = "login_required"


def wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/slack", "/openapi", "/static/")):
        return False
    return request.method == "POST" or "text/html" in request.headers.get("accept", "")


def render_error_page(request: Request, exc: ApiError) -> Response | None:
    """Dashboard errors as pages: a login redirect, or the error with what to do next."""
    if not wants_html(request):
        return None
    if exc.code == "login_required":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    return _page(request, "error.html", {"error": exc}, status=exc.status)


def dashboard_user(request: Request, settings: Config) -> Principal:
    try:
        principal = identify(request, settings)
    except Unauthorized:
        principal = None
    if principal is None:
        raise LoginRequired("log in with an API token to use the dashboard")
    request.state.principal = principal
    return principal


User = Annotated[Principal, Depends(dashboard_user)]


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/login")
async def login_page(request: Request, settings: Config, next: str = "/") -> Response:
    if settings.auth_disabled:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _page(request, "login.html", {"next": _safe_next(next), "error": ""})


@router.post("/login")
async def login(request: Request, settings: Config) -> Response:
    form = await request.form()
    target = _safe_next(str(form.get("next") or "/"))
    token = match_token(settings, str(form.get("token") or "").strip())
    if token is None:
        return _page(request, "login.html", {"next": target, "error": "That token is not valid."}, status=401)
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, settings, token)
    return response


@router.post("/logout")
async def logout(request: Request, settings: Config, user: User) -> Response:
    form = await request.form()
    check_csrf(request, settings, str(form.get("csrf") or ""))
    response = RedirectResponse("/login", status_code=303)
    clear_session(response)
    return response


def _require_write(user: Principal) -> None:
    if not user.can_write:
        raise Forbidden(f"token '{user.name}' may only read; answering, retrying and cancelling needs a token "
                        "from ITERLOOP_API_TOKENS", code="read_only_token")


# -- runs ----------------------------------------------------------------------------------------


@router.get("/")
async def runs_page(request: Request, runs: Runs, user: User, settings: Config, status: str = "",
                    workflow: str = "", gate: str = "") -> Response:
    if status and status not in RUN_STATUSES:
        raise ApiError(f"unknown status '{status}'; choose one of {', '.join(RUN_STATUSES)}", status=422,
                       code="invalid_request")
    return await _runs_page(request, runs, user, settings, {"status": status, "workflow": workflow, "gate": gate})


async def _runs_page(request: Request, runs: RunService, user: Principal, settings: ApiSettings,
                     filters: dict[str, str], *, start: StartForm | None = None, status: int = 200) -> HTMLResponse:
    listing = await runs.list_runs(status=filters["status"] or None, workflow=filters["workflow"].strip() or None,
                                   gate=filters["gate"].strip() or None, limit=200)
    registered = [w for w in describe_registered(settings) if w.ok] if user.can_write else []
    return _page(request, "runs.html", {"runs": listing.runs, "query": listing.query, "nav": "runs",
                                        "filters": filters, "registered": registered,
                                        "start": start or StartForm()}, status=status)


@dataclass
class StartForm:
    """The start-run form's values (kept when the run is refused, with the reason)."""

    workflow: str = ""
    vars: str = ""
    preset: str = ""
    offline: bool = False
    error: str = ""


def parse_vars(text: str) -> dict[str, str]:
    """`name=value` lines (as `iterloop run --var`); the run checks each value against its declared type."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ApiError(f"vars, line {number}: expected name=value (as `iterloop run --var`), found {line.strip()!r}",
                           status=422, code="invalid_request")
        values[name.strip()] = value.strip()
    return values


@router.post("/runs/start")
async def start_from_dashboard(request: Request, runs: Runs, settings: Config, user: User) -> Response:
    """Start a registered workflow from the runs page's form, through the API's own start logic."""
    from pydantic import ValidationError

    form = await request.form()
    check_csrf(request, settings, str(form.get("csrf") or ""))
    _require_write(user)
    start = StartForm(workflow=str(form.get("workflow") or "").strip(), vars=str(form.get("vars") or ""),
                      preset=str(form.get("preset") or "").strip(), offline=form.get("offline") == "on")
    try:
        body = StartRun(workflow=start.workflow, vars=parse_vars(start.vars), config=start.preset or None,
                        offline=start.offline)
        prepared = runs.prepare(start_request(settings, body, started_by=user.name))
        started = await runs.start(prepared)
    except ValidationError as exc:
        start.error = "; ".join(str(e.get("msg", "")) for e in exc.errors())
    except ApiError as exc:
        start.error = exc.message
    except CommandError as exc:
        start.error = api_error_from_command(exc).message
    else:
        return RedirectResponse(f"/runs/{quote(started.run_id, safe='')}", status_code=303)
    return await _runs_page(request, runs, user, settings, {"status": "", "workflow": "", "gate": ""},
                            start=start, status=422)


@dataclass
class GateCard:
    """An open gate with its form, as the run page and the approvals page show it."""

    run_id: str
    gate: Gate
    fields: list[FormField]
    workflow: str = ""
    error: str = ""
    answered_by: str = ""

    @property
    def questions(self) -> list[tuple[str, Any]]:
        """What the gate shows the person answering (keys starting with `_` are internal)."""
        return sorted(((k, v) for k, v in self.gate.questions.items() if not k.startswith("_")), key=lambda kv: kv[0])


def gate_card(run_id: str, gate: Gate, user: Principal, *, workflow: str = "",
              submitted: dict[str, list[str]] | None = None, error: str = "", answered_by: str = "") -> GateCard:
    return GateCard(run_id, gate, form_fields(gate, submitted), workflow, error, answered_by or user.name)


NOTICES = {"cancelled": "Cancellation requested.", "retried": "Retry requested.",
           "rewound": "Rewound: the run goes on from the node you chose.",
           "forked": "Forked: this run starts at the node you chose."}


async def _run_page(request: Request, runs: RunService, user: Principal, run_id: str,
                    *, failed_card: GateCard | None = None, status: int = 200) -> HTMLResponse:
    from runtime.temporal_runs import query_events

    snapshot = await runs.inspect(run_id)
    events = await query_events(snapshot.found.handle, snapshot.found.settings, 0)
    detail, view = snapshot.detail, snapshot.view
    graph_edges: list[dict[str, str]] = []
    if snapshot.workflow is not None:  # the no-JS graph: the edges as a table beside the nodes table
        wf = snapshot.workflow
        graph_edges = [{"from": e.source, "to": e.target, "when": edge_condition(e) or "",
                        "loop": (f"{e.loop_name}({wf.loops[e.loop_name].max_iterations})"
                                 if e.loop_name in wf.loops else e.loop_name)} for e in wf.edges]
    cards = []
    for gate in view.open_gates:
        if failed_card is not None and failed_card.gate.interaction_id == gate.interaction_id:
            cards.append(failed_card)
        else:
            cards.append(gate_card(run_id, gate, user, workflow=detail.workflow))
    answered = request.query_params.get("answered", "")
    notice = (f"Recorded the answer for gate '{answered}'." if answered
              else NOTICES.get(request.query_params.get("notice", ""), ""))
    return _page(request, "run.html", {
        "run": detail, "graph_edges": graph_edges, "has_graph": snapshot.workflow is not None,
        "console": console_assets(), "cards": cards, "nav": "runs", "notice": notice,
        "events": [(e, describe_event(e)) for e in events[-TIMELINE_EVENTS:]],
        "events_elided": max(0, len(events) - TIMELINE_EVENTS),
        "live": detail.status not in TERMINAL_STATUSES, "last_seq": view.last_seq,
        "stream_url": f"/api/runs/{quote(run_id, safe='')}/events/stream",
        "min_reload_ms": int(RUN_PAGE_RELOAD_SECONDS * 1000),
    }, status=status)


@dataclass(frozen=True)
class ConsoleAssets:
    """The built console's files under /static/web/ (hashed names, from Vite's manifest)."""

    script: str
    styles: tuple[str, ...] = ()


def console_assets(manifest: Path | None = None) -> ConsoleAssets | None:
    """The console bundle's script and styles, or None when the front end was not built (`make web`):
    the run page then stays the server-rendered one, reloaded by run_live.js while the run goes on."""
    manifest = WEB_MANIFEST if manifest is None else manifest
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entry = entries.get("console.html") if isinstance(entries, dict) else None
    if not isinstance(entry, dict) or not entry.get("file"):
        return None
    styles = list(entry.get("css") or [])
    for imported in entry.get("imports") or []:  # shared chunks (the graph component) carry their CSS
        styles += (entries.get(imported) or {}).get("css") or []
    return ConsoleAssets(f"/static/web/{entry['file']}", tuple(f"/static/web/{c}" for c in dict.fromkeys(styles)))


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str, runs: Runs, user: User) -> Response:
    return await _run_page(request, runs, user, run_id)


@router.post("/runs/{run_id}/cancel")
async def cancel_from_dashboard(request: Request, run_id: str, runs: Runs, settings: Config, user: User) -> Response:
    form = await request.form()
    check_csrf(request, settings, str(form.get("csrf") or ""))
    _require_write(user)
    await runs.cancel(run_id)
    return RedirectResponse(f"/runs/{quote(run_id, safe='')}?notice=cancelled", status_code=303)


@router.post("/runs/{run_id}/retry")
async def retry_from_dashboard(request: Request, run_id: str, runs: Runs, settings: Config, user: User) -> Response:
    form = await request.form()
    check_csrf(request, settings, str(form.get("csrf") or ""))
    _require_write(user)
    await runs.retry(run_id, str(form.get("node") or "") or None)
    return RedirectResponse(f"/runs/{quote(run_id, safe='')}?notice=retried", status_code=303)


@router.post("/runs/{run_id}/rewind")
async def rewind_from_dashboard(request: Request, run_id: str, runs: Runs, settings: Config, user: User) -> Response:
    form = await request.form()
    check_csrf(request, settings, str(form.get("csrf") or ""))
    _require_write(user)
    await runs.rewind(run_id, str(form.get("node") or ""), by=user.name)
    return RedirectResponse(f"/runs/{quote(run_id, safe='')}?notice=rewound", status_code=303)


@router.post("/runs/{run_id}/fork")
async def fork_from_dashboard(request: Request, run_id: str, runs: Runs, settings: Config, user: User) -> Response:
    form = await request.form()
    check_csrf(request, settings, str(form.get("csrf") or ""))
    _require_write(user)
    forked = await runs.fork(run_id, str(form.get("node") or ""), by=user.name)
    return RedirectResponse(f"/runs/{quote(forked.run_id, safe='')}?notice=forked", status_code=303)


# -- approvals -----------------------------------------------------------------------------------


@dataclass
class Approvals:
    cards: list[GateCard] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # runs that could not be asked for their gates


async def collect_open_gates(runs: RunService, user: Principal) -> Approvals:
    """The open gates of the runs that wait for a human, oldest first."""
    from runtime.temporal_runs import query_state

    listing = await runs.list_runs(status="waiting_human", limit=APPROVAL_RUNS)

    async def gates_of(summary: RunSummary) -> tuple[list[GateCard], str]:
        try:
            found = await runs.find(summary.run_id)
            view = await asyncio.wait_for(query_state(found.handle, found.settings), APPROVAL_QUERY_SECONDS)
        except CommandError as exc:
            return [], f"{summary.run_id}: {exc}"
        except asyncio.TimeoutError:
            return [], (f"{summary.run_id}: no worker answered within {APPROVAL_QUERY_SECONDS:g}s; start one on task "
                        f"queue '{found.desc.task_queue}' (`iterloop worker`)")
        return [gate_card(summary.run_id, g, user, workflow=summary.workflow) for g in view.open_gates], ""

    approvals = Approvals()
    for cards, problem in await asyncio.gather(*(gates_of(s) for s in listing.runs)):
        approvals.cards.extend(cards)
        if problem:
            approvals.problems.append(problem)
    approvals.cards.sort(key=lambda c: (c.gate.opened_at, c.run_id, c.gate.gate))
    return approvals


@router.get("/approvals")
async def approvals_page(request: Request, runs: Runs, user: User) -> Response:
    approvals = await collect_open_gates(runs, user)
    return _page(request, "approvals.html", {"approvals": approvals, "nav": "approvals"})


@router.post("/approvals/answer")
async def answer_from_form(request: Request, runs: Runs, settings: Config, user: User) -> Response:
    """Answer one gate from its form; a refusal re-renders the page with the reason beside the form."""
    from runtime.temporal_runs import query_state

    form = await request.form()
    check_csrf(request, settings, str(form.get("csrf") or ""))
    run_id = str(form.get("run_id") or "")
    gate_name = str(form.get("gate") or "")
    interaction_id = str(form.get("interaction_id") or "")
    answered_by = str(form.get("answered_by") or "").strip()[:200] or user.name
    back_to_run = form.get("return_to") == "run"
    submitted: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            submitted.setdefault(key, []).append(value)

    found = await runs.find(run_id)
    view = await query_state(found.handle, found.settings)
    gate = next((g for g in view.open_gates if g.gate == gate_name and g.interaction_id == interaction_id), None)
    error, status = "", 422
    if gate is None:
        taken = next((a for a in view.answers if interaction_id and a.interaction_id == interaction_id), None)
        error, status = ((already_answered(gate_name, interaction_id, taken.answered_by, taken.answered_at)
                          if taken else f"gate '{gate_name}' of run {run_id} is no longer open (the run moved on)"),
                         409)
    elif not user.can_write:
        error, status = f"token '{user.name}' may only read; answering needs a token from ITERLOOP_API_TOKENS", 403
    else:
        answers, problems = answers_from_form(gate, submitted)
        if problems:
            error = "; ".join(problems)
        else:
            try:
                await runs.answer(run_id, gate_name, answers, by=recorded_answerer(user.name, answered_by),
                                  interaction_id=interaction_id)
            except CommandError as exc:
                problem = api_error_from_command(exc)
                error, status = problem.message, problem.status
    if not error:
        return RedirectResponse(f"/runs/{quote(run_id, safe='')}?{urlencode({'answered': gate_name})}",
                                status_code=303)
    card = gate_card(run_id, gate, user, workflow=view.workflow, submitted=submitted, error=error,
                     answered_by=answered_by) if gate is not None else None
    if back_to_run:
        return await _run_page(request, runs, user, run_id, failed_card=card, status=status)
    approvals = await collect_open_gates(runs, user)
    if card is not None:
        approvals.cards = [card if c.gate.interaction_id == card.gate.interaction_id else c for c in approvals.cards]
        if not any(c is card for c in approvals.cards):
            approvals.cards.insert(0, card)
    else:
        approvals.problems.insert(0, error)
    return _page(request, "approvals.html", {"approvals": approvals, "nav": "approvals"}, status=status)
