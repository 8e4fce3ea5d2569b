"""One live MCP session with one server, and the task that owns it.

Why a task owns each session: the SDK's transports and `ClientSession` are anyio context managers
(task groups, cancel scopes) that must be entered and left by the same task, while the pool's
sessions outlive any one activity. So `ServerConnection.start` spawns an owner task that enters the
transport and the session, answers the handshake, then waits until it is told to close or the
connection is lost; activities call the session from their own tasks (requests are messages on
memory streams, which any task may send).

What "lost" means, per transport: the server's stdout ended (its process exited) or the HTTP
transport failed. The session's read stream is watched for its end (`_WatchedReadStream`), and a
stdio server's process is looked at directly before each use (`alive`), so a server killed between
two calls is noticed before the next one is sent.

A stdio server's stderr goes to a private temporary file, so a failure can quote its tail (a server
that cannot start usually says why there). Its pid is found by that file (`/proc`, Linux), for
logs and tests; elsewhere it is None and death is noticed by the end of its stdout alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import IO, Any, Self

import anyio
import mcp_types as types
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from activities.errors import McpServerError
from activities.mcp.servers import ResolvedServer

log = logging.getLogger(__name__)

#: How long a server may take to start and answer the handshake (an `npx` server may download first).
STARTUP_TIMEOUT_SECONDS = 60.0
#: How much of a stdio server's stderr a failure quotes.
STDERR_TAIL_BYTES = 4096
CLIENT_INFO = types.Implementation(name="iterloop", version="0.1.0")


class ServerConnection:
    """A started (or failed) session with ``server``; see the module doc."""

    def __init__(self, server: ResolvedServer, *, on_tools_changed: Callable[[], None]) -> None:
        self.server = server
        self.pid: int | None = None
        self._on_tools_changed = on_tools_changed
        self._session: ClientSession | None = None
        self._stderr: IO[str] | None = None
        self._ended = asyncio.Event()  # set to close, or when the connection is lost
        self._owner: asyncio.Task[None] | None = None

    @property
    def session(self) -> ClientSession:
        assert self._session is not None, "start() first"
        return self._session

    @property
    def alive(self) -> bool:
        """Started, not closed, connection not lost, and (stdio) the process still running."""
        if self._session is None or self._ended.is_set() or self._owner is None or self._owner.done():
            return False
        return self.pid is None or _process_running(self.pid)

    async def start(self) -> None:
        """Start the server (stdio) or connect to it, and answer the handshake; `McpServerError`
        naming the server, with its stderr's tail, when that fails."""
        if self.server.cwd and not os.path.isdir(self.server.cwd):
            raise McpServerError(
                f"{self.server.describe()} could not be started: the run's working directory {self.server.cwd!r} "
                f"does not exist on this worker (host {socket.gethostname()}); run a worker that can see it",
                details={"server": self.server.name, "cwd": self.server.cwd})
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(ready), name=f"mcp server {self.server.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), STARTUP_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            await self.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - the owner's failure, explained below
            why = (f"did not answer the MCP handshake within {STARTUP_TIMEOUT_SECONDS:g} s"
                   if isinstance(exc, asyncio.TimeoutError) else _describe(_root_cause(exc)))
            await self._stop_owner()  # the process has exited (or is stopped now): its stderr is complete
            failure = self._start_failure(why)
            await self.close()
            raise failure from None
        if self.server.transport == "stdio" and self._stderr is not None:
            self.pid = _child_writing_to(self._stderr)

    async def close(self) -> None:
        """End the session and stop the server (the SDK closes stdin, then terminates its process
        group); waits for that to finish."""
        await self._stop_owner()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def _stop_owner(self) -> None:
        self._ended.set()
        if self._owner is not None and self._session is None:
            self._owner.cancel()  # still in the handshake, which `_ended` does not interrupt
        if self._owner is not None:
            await asyncio.wait({self._owner})  # never raises the owner's error; our own cancel still does

    def stderr_tail(self) -> str:
        """The last `STDERR_TAIL_BYTES` a stdio server wrote to stderr ("" for HTTP servers)."""
        if self._stderr is None:
            return ""
        fd = self._stderr.fileno()
        size = os.fstat(fd).st_size
        # pread: the server shares this file's offset; moving it would make its next lines overwrite.
        data = os.pread(fd, STDERR_TAIL_BYTES, max(0, size - STDERR_TAIL_BYTES))
        return data.decode("utf-8", errors="replace").strip()

    def failure_message(self, what: str) -> str:
        """``what`` went wrong with the server, followed by its stderr's tail when there is one."""
        tail = self.stderr_tail()
        message = f"{self.server.describe()} {what}"
        return message + (f"; its stderr ends with:\n{tail}" if tail else "")

    # -- the owner task ------------------------------------------------------------------------

    async def _own(self, ready: asyncio.Future[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                watched = _WatchedReadStream(read, on_end=self._ended.set)
                session = await stack.enter_async_context(
                    ClientSession(watched, write, message_handler=self._on_message, client_info=CLIENT_INFO))
                await session.initialize()
                self._session = session
                ready.set_result(None)
                await self._ended.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to start(), or logged once running
            if not ready.done():
                if isinstance(exc, Exception):
                    ready.set_exception(exc)
                else:  # cancelled by `_stop_owner` during the handshake: start() has its reason already
                    ready.cancel()
            elif not isinstance(exc, asyncio.CancelledError):
                log.warning("%s: connection ended: %s", self.server.describe(), _describe(_root_cause(exc)))
        finally:
            self._ended.set()
            if not ready.done():  # ended without a handshake and without an exception
                ready.set_exception(ConnectionError("the connection closed before the handshake"))

    def _transport(self) -> AbstractAsyncContextManager[Any]:
        s = self.server
        if s.transport == "stdio":
            # Open for the server's life, closed in close().
            self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            # The worker's environment and the spec's on top (the SDK's default is a bare minimum).
            params = StdioServerParameters(command=s.command, args=list(s.args), env={**os.environ, **dict(s.env)},
                                           cwd=s.cwd)
            return stdio_client(params, errlog=self._stderr)
        if s.transport == "sse":
            return sse_client(s.url, headers=dict(s.headers) or None)
        return _streamable_http(s.url, dict(s.headers))

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._on_tools_changed()
        elif isinstance(message, Exception):
            log.debug("%s: transport reported %r", self.server.describe(), message)

    def _start_failure(self, what: str) -> McpServerError:
        verb = "started" if self.server.transport == "stdio" else "reached"
        return McpServerError(self.failure_message(f"could not be {verb}: {what}"),
                              details={"server": self.server.name, "transport": self.server.transport,
                                       "stderr_tail": self.stderr_tail()})


@asynccontextmanager
async def _streamable_http(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    """The streamable HTTP transport with our headers on every request (its client is ours to close)."""
    async with (create_mcp_http_client(headers=headers or None) as client,
                streamable_http_client(url, http_client=client) as streams):
        yield streams


class _WatchedReadStream:
    """The transport's read stream, calling ``on_end`` once it ends: how a lost connection (a
    server that exited, a closed socket) is noticed without waiting for the next request."""

    def __init__(self, inner: Any, *, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _root_cause(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """A short reason for a failure to start or connect, for a person reading the run's error."""
    if isinstance(exc, FileNotFoundError):
        return f"command not found ({exc.filename or exc})"
    if isinstance(exc, PermissionError):
        return f"command not executable ({exc.filename or exc})"
    name = type(exc).__name__
    text = str(exc).strip()
    if "Connection closed" in text or name == "EndOfStream":
        return "it exited or closed the connection before answering the handshake"
    if "Connect" in name:
        return f"cannot connect: {text or name}"
    return f"{name}: {text}" if text else name


def _process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed server is one until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc: rely on the read stream's end
    return stat[stat.rfind(")") + 2:].split(" ", 1)[0] not in ("Z", "X")


def _child_writing_to(stderr: IO[str]) -> int | None:
    """The pid of this process's child whose stderr is ``stderr`` (Linux `/proc`; None elsewhere)."""
    mine = os.fstat(stderr.fileno())
    me = os.getpid()
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rfind(")") + 2:].split(" ")[1])
            if ppid != me:
                continue
            theirs = os.stat(f"/proc/{entry}/fd/2")
        except (OSError, ValueError, IndexError):
            continue
        if (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino):
            return int(entry)
    return None
