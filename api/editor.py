"""The visual editor's server: its page, its files, the language work and runs (`iterloop editor`).

The browser never parses `.iter`: every analysis, edit and format goes through `dsl` here
(`api.editor_document`, `dsl.edits`); the wire format is in `api.editor_models`. The editor is
the API app (`api.app.create_app`: REST, dashboard) plus these routes, so the run page a
started run links to (`/runs/RUN`) is served by the same process.

    GET  /editor/               the built bundle (api/static/web/editor.html, /editor/assets/…)
    GET  /editor/api/files      GET/PUT /editor/api/file    POST /editor/api/file/new
    POST /editor/api/analyze    POST /editor/api/edit       POST /editor/api/format
    POST /editor/api/run        WS   /editor/ws             (external changes, api.editor_watch)

Security (docs/editor.md, "Security"): the editor writes files and starts runs that execute
shell commands, so (1) every request must name this machine in its `Host` header (a DNS
rebinding page cannot reach it under its own name), (2) every state-changing request must carry
`X-Iterloop-Editor: 1`, a custom header that makes a browser ask permission first (a CORS
preflight this server never grants), so no other page can post to it, (3) a WebSocket must come
from a page of this server (`Origin`), and (4) paths stay inside `--dir`: relative, no `..`,
symlinks resolved and refused when they lead out, only `.iter` and `.bot` files.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import LOCAL_HOST_NAMES, create_app
from api.auth import set_session
from api.editor_document import analyze, source_version
from api.editor_models import (
    EDITOR_HEADER,
    AnalyzeRequest,
    Document,
    EditRequest,
    FileContent,
    FileEntry,
    FileList,
    FormatRequest,
    FormattedSource,
    NewFile,
    RunRequest,
    SavedFile,
    SaveFile,
    StartedEditorRun,
)
from api.editor_watch import DirectoryWatcher, scan
from api.errors import ApiError, Conflict, Forbidden, NotFound, Unprocessable, api_error_from_command, error_body
from api.settings import ApiSettings, ApiToken, run_var_environment, withheld_from_runs
from api.workflow_sources import compile_file
from dsl.edits import EditError, SourceHasErrors, apply_edits
from dsl.source_files import MAX_FILE_BYTES, WORKFLOW_SUFFIXES, UnreadableFile, read_limited
from runtime.command_errors import CommandError
from runtime.language_commands import compile_options, write_atomically
from runtime.run_service import RunService

#: Where `make web` writes the bundle.
BUNDLE_DIR = Path(__file__).resolve().parent / "static" / "web"
EDITOR_TOKEN_NAME = "editor"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BundleMissing(RuntimeError):
    """The editor's built front end is not there: `make web` builds it."""


@dataclass(frozen=True)
class EditorSettings:
    """What `iterloop editor` serves: which directory, on which address, with which API settings."""

    root: Path
    api: ApiSettings
    host: str = "127.0.0.1"
    port: int = 4891
    allow_remote: bool = False
    bundle_dir: Path = BUNDLE_DIR
    #: The environment runs started from the editor read `${NAME}` var defaults from, and the
    #: background worker the run service may start is given (the CLI's, as `iterloop run` does).
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def editor_page(self) -> Path:
        return self.bundle_dir / "editor.html"

    def check_bundle(self) -> None:
        if not self.editor_page.is_file():
            raise BundleMissing(f"the editor's front end is not built ({self.editor_page} is missing): run "
                                "`make web` in the iterloop checkout (it builds web/ with npm), then start the "
                                "editor again")

    def allowed_hosts(self) -> frozenset[str]:
        """Host names a request may use (without the port): this machine's, plus --host when remote."""
        names = {name.strip("[]") for name in LOCAL_HOST_NAMES}
        if self.allow_remote:
            names.add(self.host.strip().lower().strip("[]"))
        return frozenset(names)


def editor_api_settings(base: ApiSettings, *, host: str, port: int, root: Path) -> ApiSettings:
    """The API settings under the editor: one generated token (the local user's dashboard session
    is made from it when the editor page loads), runs from files inside ``root`` only."""
    token = ApiToken(EDITOR_TOKEN_NAME, secrets.token_urlsafe(32))
    return replace(base, tokens=(token,), auth_disabled=False, host=host, port=port,
                   workflows_dir=root, file_dirs=(root,), allow_source=False)


# -- paths --------------------------------------------------------------------------------------


def confined(root: Path, given: str) -> tuple[str, Path]:
    """``given`` (relative to ``root``) as a normal relative POSIX path and its resolved file path.

    Refused (403): empty, absolute, with `..`, not `.iter`/`.bot`, or leading outside ``root``
    through a symlink. The message never says whether a file outside exists."""
    text = given.replace("\\", "/")
    pure = PurePosixPath(text)
    if not text.strip() or pure.is_absolute() or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise Forbidden(f"path {given[:80]!r} must be relative to the editor's directory (e.g. 'flows/review.iter')",
                        code="path_not_allowed")
    if any(part == ".." for part in pure.parts):
        raise Forbidden(f"path {given[:80]!r} may not contain '..': the editor reaches only files inside its "
                        "directory", code="path_not_allowed")
    if pure.suffix not in WORKFLOW_SUFFIXES:
        raise Forbidden(f"path {given[:80]!r} is not a workflow file: the editor opens only "
                        f"{' and '.join(WORKFLOW_SUFFIXES)} files", code="path_not_allowed")
    base = root.resolve()
    try:
        resolved = (base / pure).resolve()
    except (OSError, RuntimeError):
        raise Forbidden(f"path {given[:80]!r} cannot be resolved (a loop of links?)", code="path_not_allowed") from None
    if not resolved.is_relative_to(base):
        raise Forbidden(f"path {given[:80]!r} leads outside the editor's directory (through a link); the editor "
                        "reaches only files inside it", code="path_not_allowed")
    return pure.as_posix(), resolved


class EditorFiles:
    """The workflow files under the editor's directory: list, read, save (atomically), create."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.watcher = DirectoryWatcher(root, self.current)
        self._lock = asyncio.Lock()

    def listing(self) -> FileList:
        stamps = scan(self.root)
        return FileList(dir=str(self.root.resolve()), files=[
            FileEntry(path=p, size=stamp[1], mtime=stamp[0] / 1e9) for p, stamp in stamps.items()])

    def read(self, given: str) -> FileContent:
        rel, path = confined(self.root, given)
        source = self._read(path, given)
        if source is None:
            raise NotFound(f"no file {rel!r} in {self.root}", code="file_not_found")
        return FileContent(path=rel, source=source, version=source_version(source))

    def current(self, rel: str) -> tuple[str, str] | None:
        """The file's text and version now (None when it is gone or unreadable): for the watcher."""
        try:
            _, path = confined(self.root, rel)
            source = self._read(path, rel)
        except (Forbidden, Unprocessable):
            return None
        return (source, source_version(source)) if source is not None else None

    @staticmethod
    def _read(path: Path, given: str) -> str | None:
        try:
            data = read_limited(path)
        except FileNotFoundError:
            return None
        except UnreadableFile as exc:
            raise Unprocessable(f"cannot open {given!r}: {exc}", code="unreadable_file") from None
        except OSError as exc:
            raise Unprocessable(f"cannot read {given!r}: {exc.strerror or exc}", code="unreadable_file") from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise Unprocessable(f"{given!r} is not UTF-8 text; save it as UTF-8 to edit it here",
                                code="unreadable_file") from None

    async def save(self, body: SaveFile) -> SavedFile:
        rel, path = confined(self.root, body.path)
        self._check_size(body.source)
        async with self._lock:  # one save at a time: the version check and the rename go together
            on_disk = self._read(path, body.path)
            if body.base_version is not None and on_disk is not None:
                version = source_version(on_disk)
                if version != body.base_version:
                    raise Conflict(f"{rel!r} changed on disk since it was opened (version {version[:12]}…, the "
                                   f"editor had {body.base_version[:12]}…); reload it, or save again with "
                                   "base_version set to the version on disk to overwrite it",
                                   code="stale_version", details={"path": rel, "version": version,
                                                                  "source": on_disk})
            if not path.parent.is_dir():
                raise Unprocessable(f"the directory of {rel!r} does not exist", code="no_directory")
            await asyncio.to_thread(write_atomically, path, body.source)
            version = source_version(body.source)
            self.watcher.note_written(rel, version)
        return SavedFile(path=rel, version=version)

    async def create(self, body: NewFile) -> FileContent:
        rel, path = confined(self.root, body.path)
        source = ""
        if body.workflow is not None:
            source = apply_edits("", [{"op": "ensure_workflow", "name": body.workflow}])
        async with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            confined(self.root, body.path)  # the directories just made may not lead out either
            try:
                await asyncio.to_thread(_create_exclusively, path, source)
            except FileExistsError:
                raise Conflict(f"{rel!r} exists already; open it, or choose another name",
                               code="file_exists") from None
            self.watcher.note_written(rel, source_version(source))
        return FileContent(path=rel, source=source, version=source_version(source))

    @staticmethod
    def _check_size(source: str) -> None:
        if len(source.encode("utf-8")) > MAX_FILE_BYTES:
            raise Unprocessable(f"the source is larger than {MAX_FILE_BYTES} bytes, the most iterloop reads",
                                code="too_large")


def _create_exclusively(path: Path, text: str) -> None:
    """Write a new file whole, or not at all: a temp file linked to its name (which fails if taken)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


# -- the guard ----------------------------------------------------------------------------------


class EditorGuard:
    """Every request names this machine in `Host`; state-changing ones under /editor carry the
    editor's header; WebSockets come from this server's pages (`Origin`)."""

    def __init__(self, app: ASGIApp, settings: EditorSettings) -> None:
        self.app = app
        self.hosts = settings.allowed_hosts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        problem = self.problem(scope, headers)
        if problem is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": problem[:120]})
            return
        body = _error(Forbidden(problem))
        await body(scope, receive, send)

    def _local(self, host_header: str) -> bool:
        host = urlsplit(f"//{host_header}").hostname or ""
        return host.lower() in self.hosts

    def problem(self, scope: Scope, headers: dict[str, str]) -> str | None:
        host = headers.get("host", "")
        if not self._local(host):
            return (f"the editor answers only requests addressed to this machine (localhost, 127.0.0.1, [::1]), "
                    f"not Host {host[:80]!r}")
        path = str(scope.get("path", ""))
        if scope["type"] == "websocket":
            origin = headers.get("origin")
            if origin is not None and not self._local(urlsplit(origin).netloc):
                return f"the editor's WebSocket accepts only its own pages, not Origin {origin[:80]!r}"
            return None
        if (scope.get("method") in STATE_CHANGING and path.startswith("/editor")
                and headers.get(EDITOR_HEADER.lower()) != "1"):
            return (f"{scope.get('method')} {path} must carry the header '{EDITOR_HEADER}: 1' (the editor's page "
                    "sends it; other pages cannot)")
        return None


# -- routes -------------------------------------------------------------------------------------


def _files(request: Request) -> EditorFiles:
    files: EditorFiles = request.app.state.editor_files
    return files


def _settings(request: Request) -> EditorSettings:
    settings: EditorSettings = request.app.state.editor_settings
    return settings


def _file_path(request: Request, path: str | None) -> tuple[str | None, Path | None]:
    if path is None:
        return None, None
    rel, resolved = confined(_settings(request).root, path)
    return rel, resolved


class _JsonErrors(APIRoute):
    """Errors of the editor's routes are JSON for its page, even for a POST (the dashboard's error
    pages are for browsers submitting forms, `api.dashboard.wants_html`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _error(exc)
            except CommandError as exc:
                return _error(api_error_from_command(exc))
            except RequestValidationError as exc:
                problems = [{"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
                            for err in exc.errors()]
                message = "; ".join(f"{p['location']}: {p['message']}" for p in problems) or "invalid request"
                return _error(Unprocessable(message, details=problems))

        return handle


def _error(exc: ApiError) -> Response:
    """The API's error shape (`{"error": {code, message, details}}`) plus `detail`: the message alone,
    where FastAPI clients look first."""
    return JSONResponse({**error_body(exc.code, exc.message, exc.details), "detail": exc.message},
                        status_code=exc.status)


router = APIRouter(prefix="/editor", include_in_schema=False, route_class=_JsonErrors)


@router.get("/")
async def editor_page(request: Request) -> Response:
    """The editor; loading it gives this browser a dashboard session, so run pages open from it."""
    settings = _settings(request)
    if not settings.editor_page.is_file():
        return HTMLResponse("<!doctype html><title>iterloop editor</title><p>The editor's front end is not built: "
                            "run <code>make web</code> and reload.</p>", status_code=503)
    response = FileResponse(settings.editor_page, media_type="text/html")
    api: ApiSettings = request.app.state.api_settings
    set_session(response, request, api, api.tokens[0])
    return response


@router.get("/api/files")
async def list_files(request: Request) -> FileList:
    return await asyncio.to_thread(_files(request).listing)


@router.get("/api/file")
async def read_file(request: Request, path: str) -> FileContent:
    return await asyncio.to_thread(_files(request).read, path)


@router.put("/api/file")
async def save_file(request: Request, body: SaveFile) -> SavedFile:
    return await _files(request).save(body)


@router.post("/api/file/new")
async def new_file(request: Request, body: NewFile) -> FileContent:
    return await _files(request).create(body)


def _analysis(request: Request, source: str, path: str | None) -> Document:
    rel, resolved = _file_path(request, path)
    options = compile_options(request.app.state.api_settings.default_model)
    return analyze(source, path=rel, file_path=resolved, options=options)


@router.post("/api/analyze")
async def analyze_source(request: Request, body: AnalyzeRequest) -> Document:
    return await asyncio.to_thread(_analysis, request, body.source, body.path)


@router.post("/api/edit")
async def edit_source(request: Request, body: EditRequest) -> Document:
    try:
        source = await asyncio.to_thread(apply_edits, body.source, body.ops)
    except SourceHasErrors as exc:
        raise Unprocessable("fix the source first: it has parse errors, and editing it would drop what the parser "
                            "skipped", code="parse_errors",
                            details=[d.model_dump(mode="json") for d in exc.diagnostics]) from None
    except EditError as exc:
        raise Unprocessable(str(exc), code="edit_failed", details={"index": exc.index, "op": exc.op}) from None
    return await asyncio.to_thread(_analysis, request, source, body.path)


@router.post("/api/format")
async def format_source(body: FormatRequest) -> FormattedSource:
    try:
        return FormattedSource(source=await asyncio.to_thread(apply_edits, body.source, []))
    except SourceHasErrors as exc:
        raise Unprocessable("cannot format a source with parse errors: formatting would drop what the parser "
                            "skipped", code="parse_errors",
                            details=[d.model_dump(mode="json") for d in exc.diagnostics]) from None


@router.post("/api/run")
async def run_file(request: Request, body: RunRequest) -> StartedEditorRun:
    """Start a run of the file on disk, as `iterloop run FILE [--offline]` would."""
    from runtime.run_inputs import script_beside
    from runtime.run_start import StartRequest

    settings = _settings(request)
    rel, path = confined(settings.root, body.path)
    api: ApiSettings = request.app.state.api_settings
    compiled = await asyncio.to_thread(compile_file, api, str(path))
    offline = body.mode == "offline"
    service: RunService = request.app.state.runs
    run_request = StartRequest(
        compiled=compiled, origin=f"started from the iterloop editor ({rel})", given_by="request",
        vars=body.vars, offline=offline, script_file=script_beside(path) if offline else None,
        env=run_var_environment(settings.environment), withheld=withheld_from_runs,
        workdir=str(settings.root.resolve()))
    prepared = await asyncio.to_thread(service.prepare, run_request)
    if not offline and prepared.script is not None:  # never let a real run fall into the scripted model
        raise Unprocessable("a real run was about to use the scripted model (ITERLOOP_OFFLINE is set for the "
                            "editor); unset it to run with real models", code="offline_configured")
    started = await service.start(prepared)
    return StartedEditorRun(run_id=started.run_id, console_url=f"/runs/{started.run_id}")


@router.websocket("/ws")
async def watch(websocket: WebSocket) -> None:
    files: EditorFiles = websocket.app.state.editor_files
    async with files.watcher.subscribe() as queue:
        await websocket.accept()  # after the watcher's first look: every change from now on is pushed
        receiver = asyncio.create_task(_drain(websocket))
        try:
            while not receiver.done():
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await websocket.send_json(getter.result())
                else:
                    getter.cancel()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the browser sends, to notice when it goes away."""
    try:
        while True:
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return


# -- the app ------------------------------------------------------------------------------------


def _tell(message: str) -> None:
    """What the run service did on this machine (started the dev server, a worker), on the terminal."""
    print(f"iterloop: {message}", file=sys.stderr, flush=True)


def create_editor_app(settings: EditorSettings, *, runs: RunService | None = None) -> FastAPI:
    """The API app (dashboard, REST) with the editor's routes, guard and watcher.

    ``runs`` is the run service runs start on; by default one that manages local processes as
    `iterloop run` does (starts the dev server and a background worker when none is running)."""
    app = create_app(settings.api)
    app.state.runs = runs or RunService(settings.api.runtime, manage_local=True,
                                        environment=dict(settings.environment), notice=_tell)
    app.state.editor_settings = settings
    app.state.editor_files = EditorFiles(settings.root)
    app.include_router(router)
    app.mount("/editor/assets", StaticFiles(directory=settings.bundle_dir / "assets", check_dir=False),
              name="editor-assets")
    app.add_middleware(EditorGuard, settings=settings)
    return app
