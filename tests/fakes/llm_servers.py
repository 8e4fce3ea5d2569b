"""Local stand-ins for the Anthropic Messages API and OpenAI's Chat Completions and Responses APIs.

Each fake is a real HTTP server on 127.0.0.1 (a free port, served by a daemon thread) that speaks
the provider's documented wire format, so the official `anthropic` and `openai` clients run
unchanged against it: point their base URL at the fake. A worker in another process can use it
too: the fake runs in the test process and the worker gets ``server.env()`` in its environment.

Endpoints:

- `FakeAnthropic`: ``POST /v1/messages`` (base URL = ``server.url``, no `/v1`); a request with
  ``"stream": true`` gets the reply as server-sent events (`message_start` … `message_stop`, the
  documented streaming format), which is how the Claude Code CLI asks.
- `FakeOpenAI`: ``POST /v1/chat/completions`` and ``POST /v1/responses``
  (base URL = ``server.url + "/v1"``, which ``server.base_url`` gives); a Responses request with
  ``"stream": true`` gets the response as server-sent events (`response.created` …
  `response.completed`, the documented streaming format), which is how the Codex CLI asks.

A fake answers from a queue of scripted replies, one per request, in order, whatever the
endpoint; each reply is rendered in the wire format of the endpoint it answers, so one script can
drive any provider. Queue items:

- `Reply(...)`: a model answer: ``text``, ``tool_calls`` (`ToolUse`), ``answer`` (a structured
  answer, rendered as the request asks for it: see "Structured output" below), ``thinking``,
  token counts (``input_tokens`` counts every prompt token, cached ones included, as in iterloop's
  `Usage`; each fake splits them the way its API reports them) and ``stop`` (`"length"` for a
  truncated answer).
- `Failure(status, ...)`: an error response with the provider's documented error body and
  headers; `Failure.rate_limited(retry_after=7)`, `.overloaded()`, `.unauthorized()`,
  `.forbidden()`, `.not_found()`, `.bad_request(msg)`, `.context_length(tokens, limit)`,
  `.server_error()` build the usual ones.
- `Raw(status, body, headers)`: exactly this response.
- `Drop()`: close the connection without answering (a network error for the client).
- a callable ``fn(request: Recorded) -> Reply | Failure | Raw | Drop``, to answer from what the
  client sent.

**Structured output.** A `Reply(answer=...)` is rendered the way the request asks for it: as the
JSON text of the reply when the request carries the provider's *native* structured-output
parameter exactly as the API documents it (Anthropic: `output_config.format =
{type: "json_schema", schema}`, or the older beta `output_format` with the header
`anthropic-beta: structured-outputs-2025-11-13`; OpenAI: `response_format = {type: "json_schema",
json_schema: {name, schema, strict}}` on Chat Completions, `text.format = {type: "json_schema",
name, schema, strict}` on Responses), else as a call of the forced answer tool (Anthropic) or JSON
text (OpenAI). ``FakeAnthropic(native_only=True)`` / ``FakeOpenAI(native_only=True)`` play a model
that keeps to a format only when the API enforces it: without the native parameter an ``answer``
comes back as prose (no JSON, no answer tool call). With it, a ``stop="length"`` answer is cut
off half-way, as constrained decoding still can be. The fakes refuse (400, the API's wording)
what the real APIs refuse: a native schema outside the strict subset (an object without
`additionalProperties: false`, an untyped value, numeric or length bounds), the beta
`output_format` without its beta header, Anthropic thinking with a forced `tool_choice`, and
`tool_use` blocks in a request that declares no tools. ``server.native_requests`` counts the
requests that asked natively.

When the queue is empty the fake answers ``server.default`` if set, else a 400 naming the request
(non-retryable, so a test that under-scripts fails fast instead of retrying forever). Any item
may carry ``hold=threading.Event()``: the fake waits for the event before answering (a turn
"in flight" for durability and heartbeat tests; the wait is bounded by ``hold_timeout``).

Every request is recorded (`Recorded`: method, path, lower-cased headers, parsed JSON body) in
``server.requests`` (``server.last`` is the latest); ``server.wait_for_requests(n)`` blocks (with
a deadline) until ``n`` arrived; ``server.pending`` counts replies not consumed yet;
``server.reset()`` forgets everything. ``FakeAnthropic(api_key="k")`` / ``FakeOpenAI(api_key="k")``
answer a wrong key with the provider's 401. ``servers_env(a, b)`` merges the fakes' ``env()``.

Examples::

    from fakes.llm_servers import FakeAnthropic, FakeOpenAI, Failure, Reply, ToolUse

    with FakeAnthropic() as server:                     # started; stopped on exit
        server.queue(
            Reply(tool_calls=[ToolUse("get_funnel_data", {"funnel": "checkout"})]),
            Failure.rate_limited(retry_after=7),
            Reply(answer={"summary": "mobile checkout dropped"}, input_tokens=1200, cached_tokens=1000),
        )
        client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key="test-key", max_retries=0)
        ...
        assert server.requests[0].path == "/v1/messages"
        sent = server.requests[-1].body["messages"]    # what the client sent last

    # a worker subprocess: pass the fake's coordinates in its environment
    with FakeOpenAI() as server:
        env = {**os.environ, **server.env()}            # OPENAI_BASE_URL, OPENAI_API_KEY
        server.default = Reply(text="ok")

`tests/` is on `sys.path` when pytest runs (`pythonpath` in pyproject.toml), hence ``fakes.llm_servers``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

#: The beta header the pre-GA form of Anthropic's structured outputs (`output_format`) needs.
ANTHROPIC_STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"

#: The name of the synthetic tool iterloop's Anthropic provider forces for structured answers
#: (mirrors `activities.llm.anthropic_provider.ANSWER_TOOL`); used by `Reply(answer=...)` when the
#: request does not name a forced tool itself.
ANTHROPIC_ANSWER_TOOL = "final_answer"

TEST_API_KEY = "test-key"


# -- what a test scripts -------------------------------------------------------------------------

@dataclass
class ToolUse:
    """One tool call in a reply; ``id`` is generated (`toolu_…` / `call_…`) when empty.
    ``namespace``: a Responses `function_call` of a tool inside a `namespace` tool (how the Codex
    CLI offers an MCP server's tools: `mcp__SERVER`)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    namespace: str = ""


@dataclass
class Reply:
    """One model answer, rendered in the wire format of the endpoint it answers.

    ``answer`` is a structured answer: JSON text when the request asks for it natively (and
    always for OpenAI), else for Anthropic a call of the forced answer tool (the request's
    ``tool_choice`` tool, else `ANTHROPIC_ANSWER_TOOL`); prose from a `native_only` fake when
    the request does not ask natively.
    ``input_tokens`` counts every prompt token, ``cached_tokens`` (read from the cache) and
    ``cache_write_tokens`` included; ``reasoning_tokens`` are part of ``output_tokens``.
    ``stop="length"`` makes a truncated answer (Anthropic `max_tokens`, Chat `length`, Responses
    `incomplete`).
    """

    text: str = ""
    tool_calls: list[ToolUse] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    thinking: str = ""
    input_tokens: int = 20
    output_tokens: int = 10
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    stop: str = ""
    model: str = ""  # default: the model the request named
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None


_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                          404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                          500: "api_error", 529: "overloaded_error"}
_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                       404: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error",
                       503: "server_error"}


@dataclass
class Failure:
    """An error response with the provider's documented body (``kind`` = the error type, default
    from the status; ``code`` = OpenAI's error code) and headers (``retry_after`` seconds →
    `retry-after`, ``retry_after_ms`` → `retry-after-ms`)."""

    status: int
    message: str = ""
    kind: str = ""
    code: str | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None
    # context-length errors: the prompt size and the model's limit (each fake words its message)
    context_tokens: int = 0
    context_limit: int = 0

    @classmethod
    def rate_limited(cls, retry_after: float | None = None, *, retry_after_ms: int | None = None) -> Failure:
        return cls(429, "Rate limit reached for requests", retry_after=retry_after, retry_after_ms=retry_after_ms,
                   code="rate_limit_exceeded")

    @classmethod
    def overloaded(cls, retry_after: float | None = None) -> Failure:
        """Anthropic's 529 (OpenAI has no 529; it gets a 503 from `server_error`)."""
        return cls(529, "Overloaded", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Failure:
        return cls(status, "The server had an error while processing your request")

    @classmethod
    def unauthorized(cls) -> Failure:
        return cls(401, "invalid x-api-key", code="invalid_api_key")

    @classmethod
    def forbidden(cls) -> Failure:
        return cls(403, "Your API key does not have permission to use the specified resource.")

    @classmethod
    def not_found(cls, model: str = "no-such-model") -> Failure:
        return cls(404, f"model: {model}", code="model_not_found")

    @classmethod
    def bad_request(cls, message: str = "messages: field required") -> Failure:
        return cls(400, message)

    @classmethod
    def context_length(cls, tokens: int = 210_000, limit: int = 200_000) -> Failure:
        return cls(400, "", code="context_length_exceeded", context_tokens=tokens, context_limit=limit)


@dataclass
class Raw:
    """Exactly this response."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None


@dataclass
class Drop:
    """Close the connection without answering (the client sees a network error)."""

    hold: threading.Event | None = None


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any = None
    received_at: float = field(default_factory=time.monotonic)  # time.monotonic() on arrival

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Item = Reply | Failure | Raw | Drop | Callable[[Recorded], "Reply | Failure | Raw | Drop"]


# -- the server ------------------------------------------------------------------------------------

class FakeLLMServer:
    """The shared machinery: a threaded HTTP server, the reply queue and the request log.

    ``api_key``: when set, requests without it (Anthropic `x-api-key` or a bearer token, OpenAI
    `Authorization: Bearer`) get the provider's 401 before the queue is consulted.
    """

    paths: tuple[str, ...] = ()
    provider = ""

    def __init__(self, *, api_key: str | None = None, hold_timeout: float = 60.0, native_only: bool = False) -> None:
        self.native_only = native_only
        self.requests: list[Recorded] = []
        self.default: Item | None = None
        self.api_key = api_key
        self.hold_timeout = hold_timeout
        self._queue: list[Item] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"fake-{self.provider}")

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def base_url(self) -> str:
        """What the provider's client takes as its base URL."""
        return self.url

    def env(self, api_key: str = TEST_API_KEY) -> dict[str, str]:
        """Environment variables that point the provider's client (or a worker) at this fake."""
        raise NotImplementedError

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------------
    def queue(self, *items: Item) -> None:
        """Append replies; each request consumes the first one left."""
        with self._cond:
            self._queue.extend(items)

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._cond:
            return len(self._queue)

    def reset(self) -> None:
        """Forget queued replies, the default and the recorded requests."""
        with self._cond:
            self._queue.clear()
            self.requests.clear()
            self.default = None

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """Block until at least ``count`` requests arrived (TimeoutError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake {self.provider} server got {len(self.requests)} of {count} requests "
                                       f"within {timeout}s")
                self._cond.wait(left)
            return list(self.requests)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    # -- serving -----------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        path = urlsplit(handler.path).path
        request = Recorded(handler.command, path, {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._cond:
            self.requests.append(request)
            number = len(self.requests)
            self._cond.notify_all()
            if path not in self.paths or handler.command != "POST":
                item: Item | None = Raw(404, self._error_body(404, "not_found_error", f"no route {path}", None))
            elif self.api_key is not None and not self._authorized(request):
                item = Failure.unauthorized()
            elif self._queue:
                item = self._queue.pop(0)
            else:
                item = self.default
        if item is None:
            item = Failure.bad_request(f"fake {self.provider} server: no scripted reply left for request #{number} "
                                       f"({path}); queue more replies or set `default`")
        if callable(item) and not isinstance(item, (Reply, Failure, Raw, Drop)):
            item = item(request)
        hold = getattr(item, "hold", None)
        if hold is not None:
            hold.wait(self.hold_timeout)
        if isinstance(item, Drop):
            handler.close_connection = True
            return
        try:
            status, payload, headers = self._render(item, request)
            events = self._stream_events(payload, request) if status == 200 and isinstance(item, Reply) else None
        except Exception as e:  # a bug in the fake or a request it does not understand
            status, payload, headers = 400, self._error_body(400, "invalid_request_error",
                                                             f"fake cannot answer: {type(e).__name__}: {e}", None), {}
            events = None
        if events is None:
            data, content_type = json.dumps(payload).encode(), "application/json"
        else:  # the whole stream in one body: an SSE client reads it event by event all the same
            data = "".join(f"event: {name}\ndata: {json.dumps(event)}\n\n" for name, event in events).encode()
            content_type = "text/event-stream; charset=utf-8"
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away while the reply was held (a killed worker): nobody to answer

    def _render(self, item: Reply | Failure | Raw, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        if isinstance(item, Raw):
            return item.status, item.body, dict(item.headers)
        if isinstance(item, Failure):
            headers = dict(item.headers)
            if item.retry_after is not None:
                headers["retry-after"] = _number(item.retry_after)
            if item.retry_after_ms is not None:
                headers["retry-after-ms"] = str(item.retry_after_ms)
            message = item.message or self._context_message(item)
            return item.status, self._error_body(item.status, item.kind, message, item.code), headers
        body = request.body if isinstance(request.body, dict) else {}
        refused = self._refusal(request, body)
        if refused:
            return 400, self._error_body(400, "invalid_request_error", refused, None), {}
        return 200, self._reply_body(item, request.path, body), dict(item.headers)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    # -- per provider ------------------------------------------------------------------------------
    def _authorized(self, request: Recorded) -> bool:
        raise NotImplementedError

    def _error_body(self, status: int, kind: str, message: str, code: str | None) -> Any:
        raise NotImplementedError

    def _context_message(self, failure: Failure) -> str:
        raise NotImplementedError

    def _reply_body(self, reply: Reply, path: str, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _refusal(self, request: Recorded, body: dict[str, Any]) -> str:
        """Why the real API would refuse this request with a 400 ("" if it would not)."""
        return ""

    def _stream_events(self, payload: Any, request: Recorded) -> list[tuple[str, dict[str, Any]]] | None:
        """The server-sent events that carry ``payload`` (a rendered reply) when the request asked
        for a stream; None answers with the JSON body."""
        return None

    @property
    def native_requests(self) -> int:
        """How many requests asked for structured output natively."""
        return sum(1 for r in self.requests
                   if isinstance(r.body, dict) and self._native_schema(r, r.body) is not None)

    def _native_schema(self, request: Recorded, body: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON schema the request asks the answer to match natively, or None."""
        return None

    def _answer_text(self, reply: Reply, native: bool) -> str:
        """A structured answer as text: its JSON (cut off half-way for ``stop="length"`` under a
        native format), or prose when the fake is `native_only` and the request is not native."""
        assert reply.answer is not None
        if not native and self.native_only:
            return "Here is what I found. " + "; ".join(f"The {k} is {v}" for k, v in reply.answer.items()) + "."
        text = json.dumps(reply.answer)
        return text[:len(text) // 2] if native and reply.stop == "length" else text


#: Keywords a strict (constrained-decoding) schema may not carry.
_UNSTRICT_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
                      "maxLength", "minProperties", "maxProperties", "maxItems", "uniqueItems", "patternProperties")


def strict_schema_problem(schema: Any, path: str = "schema") -> str:
    """Why ``schema`` is outside the strict subset native structured outputs accept ("" if inside):
    every object closed with `additionalProperties: false` and (OpenAI) every property required,
    every value typed (or an enum/const/anyOf/$ref), no bounds the grammar cannot enforce."""
    if not isinstance(schema, dict):
        return f"{path}: must be an object"
    for key in _UNSTRICT_KEYWORDS:
        if key in schema:
            return f"{path}: '{key}' is not supported in structured output schemas"
    if schema.get("minItems") not in (None, 0, 1):
        return f"{path}: 'minItems' values other than 0 or 1 are not supported"
    if not ({"type", "enum", "const", "anyOf", "allOf", "$ref"} & schema.keys()):
        return f"{path}: a schema must have a 'type', 'enum', 'const', 'anyOf', 'allOf' or '$ref'"
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds:
        if schema.get("additionalProperties") is not False:
            return f"{path}: for 'object' type, 'additionalProperties' must be explicitly set to false"
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            problem = strict_schema_problem(sub, f"{path}.properties.{name}")
            if problem:
                return problem
    if "array" in kinds:
        if "items" not in schema:
            return f"{path}: 'array' type requires 'items'"
        problem = strict_schema_problem(schema["items"], f"{path}.items")
        if problem:
            return problem
    for key in ("anyOf", "allOf"):
        for i, sub in enumerate(schema.get(key) or []):
            problem = strict_schema_problem(sub, f"{path}.{key}[{i}]")
            if problem:
                return problem
    return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bearer(request: Recorded) -> str | None:
    value = request.header("authorization") or ""
    return value[len("Bearer "):] if value.startswith("Bearer ") else None


def _signature(text: str) -> str:
    return "sig-" + hashlib.sha256(text.encode()).hexdigest()[:24]


class FakeAnthropic(FakeLLMServer):
    """``POST /v1/messages`` (Anthropic Messages API). Base URL: ``server.url``."""

    paths = ("/v1/messages",)
    provider = "anthropic"

    def env(self, api_key: str = TEST_API_KEY) -> dict[str, str]:
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": api_key}

    def _authorized(self, request: Recorded) -> bool:
        # The documented header is `x-api-key`; recent SDKs send the key as a bearer token.
        return self.api_key in (request.header("x-api-key"), _bearer(request))

    def _error_body(self, status: int, kind: str, message: str, code: str | None) -> Any:
        kind = kind or _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message},
                "request_id": self._next_id("req_")}

    def _context_message(self, failure: Failure) -> str:
        return f"prompt is too long: {failure.context_tokens} tokens > {failure.context_limit} maximum"

    def _native_format(self, request: Recorded, body: dict[str, Any]) -> tuple[Any, str] | None:
        """The native format the request carries and where: GA `output_config.format`, or the
        beta `output_format`."""
        config = body.get("output_config")
        if isinstance(config, dict) and config.get("format") is not None:
            return config["format"], "output_config.format"
        if body.get("output_format") is not None:
            return body["output_format"], "output_format"
        return None

    def _native_schema(self, request: Recorded, body: dict[str, Any]) -> dict[str, Any] | None:
        found = self._native_format(request, body)
        if found is None or self._refusal(request, body):
            return None
        return found[0]["schema"]

    def _refusal(self, request: Recorded, body: dict[str, Any]) -> str:
        found = self._native_format(request, body)
        if found is not None:
            fmt, where = found
            betas = (request.header("anthropic-beta") or "").replace(" ", "").split(",")
            if where == "output_format" and ANTHROPIC_STRUCTURED_OUTPUTS_BETA not in betas:
                return "output_format: Extra inputs are not permitted"
            if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
                return f"{where}: expected {{\"type\": \"json_schema\", \"schema\": {{...}}}}"
            problem = strict_schema_problem(fmt["schema"], f"{where}.schema")
            if problem:
                return problem
        thinking = (body.get("thinking") or {}).get("type")
        if thinking in ("enabled", "adaptive") and (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            return "Thinking may not be enabled when tool_choice forces tool use."
        uses = any(isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
                   for m in body.get("messages") or [] if isinstance(m.get("content"), list) for b in m["content"])
        if uses and not body.get("tools"):
            return "Requests which include `tool_use` or `tool_result` blocks must define tools."
        return ""

    def _reply_body(self, reply: Reply, path: str, body: dict[str, Any]) -> Any:
        content: list[dict[str, Any]] = []
        if reply.thinking:
            content.append({"type": "thinking", "thinking": reply.thinking, "signature": _signature(reply.thinking)})
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for call in reply.tool_calls:
            content.append({"type": "tool_use", "id": call.id or self._next_id("toolu_"), "name": call.name,
                            "input": call.arguments})
        native = self._native_format(Recorded("POST", path, {}, body), body) is not None
        if reply.answer is not None and (native or self.native_only):
            content.append({"type": "text", "text": self._answer_text(reply, native)})
        elif reply.answer is not None:
            choice = body.get("tool_choice") or {}
            name = choice.get("name") if choice.get("type") == "tool" else ANTHROPIC_ANSWER_TOOL
            content.append({"type": "tool_use", "id": self._next_id("toolu_"), "name": name, "input": reply.answer})
        uses_tools = any(b["type"] == "tool_use" for b in content)
        stop = {"length": "max_tokens"}.get(reply.stop, reply.stop) or ("tool_use" if uses_tools else "end_turn")
        usage: dict[str, Any] = {
            "input_tokens": reply.input_tokens - reply.cached_tokens - reply.cache_write_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": reply.cache_write_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
        }
        if reply.reasoning_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
        return {"id": self._next_id("msg_"), "type": "message", "role": "assistant",
                "model": reply.model or body.get("model", ""), "content": content, "stop_reason": stop,
                "stop_sequence": None, "usage": usage}

    def _stream_events(self, payload: Any, request: Recorded) -> list[tuple[str, dict[str, Any]]] | None:
        """A request with ``"stream": true`` gets the message as the API streams it: `message_start`
        (the message with no content yet), a `ping`, per content block `content_block_start`, its
        deltas (`text_delta`, `thinking_delta` then `signature_delta`, `input_json_delta` with the
        tool input's JSON in pieces) and `content_block_stop`, then `message_delta` (stop reason and
        the final usage) and `message_stop`. Errors stay JSON with their status, as the API sends
        them before a stream starts."""
        if not (isinstance(request.body, dict) and request.body.get("stream") is True):
            return None
        message: dict[str, Any] = payload
        usage = message["usage"]
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start",
                               "message": {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                                           "usage": {**usage, "output_tokens": 1}}}),
            ("ping", {"type": "ping"}),
        ]
        for index, block in enumerate(message["content"]):
            opening, deltas = _streamed_block(block)
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": opening}))
            events.extend(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                          for delta in deltas)
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                         "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events


def _streamed_block(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A content block as its `content_block_start` payload (the block, empty) and its deltas."""
    if block["type"] == "text":
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": part} for part in _pieces(block["text"])]
    if block["type"] == "thinking":
        return ({"type": "thinking", "thinking": "", "signature": ""},
                [{"type": "thinking_delta", "thinking": part} for part in _pieces(block["thinking"])]
                + [{"type": "signature_delta", "signature": block["signature"]}])
    if block["type"] == "tool_use":
        return ({**block, "input": {}},
                [{"type": "input_json_delta", "partial_json": part} for part in _pieces(json.dumps(block["input"]))])
    raise ValueError(f"cannot stream a {block['type']!r} block")


def _pieces(text: str, size: int = 16) -> list[str]:
    """``text`` cut into pieces, so a client has to join the deltas to get it back."""
    return [text[i:i + size] for i in range(0, len(text), size)]


class FakeOpenAI(FakeLLMServer):
    """``POST /v1/chat/completions`` and ``POST /v1/responses``. Base URL: ``server.url + "/v1"``."""

    paths = ("/v1/chat/completions", "/v1/responses")
    provider = "openai"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def env(self, api_key: str = TEST_API_KEY) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": api_key}

    def _authorized(self, request: Recorded) -> bool:
        return _bearer(request) == self.api_key

    def _error_body(self, status: int, kind: str, message: str, code: str | None) -> Any:
        kind = kind or _OPENAI_ERROR_TYPES.get(status, "server_error")
        if status == 401 and code is None:
            code = "invalid_api_key"
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _context_message(self, failure: Failure) -> str:
        return (f"This model's maximum context length is {failure.context_limit} tokens. However, your messages "
                f"resulted in {failure.context_tokens} tokens. Please reduce the length of the messages.")

    def _native_format(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The request's JSON-schema format as {name, schema, strict}, or None."""
        if path.endswith("/responses"):
            fmt = (body.get("text") or {}).get("format") or {}
            return fmt if fmt.get("type") == "json_schema" else None
        fmt = body.get("response_format") or {}
        return fmt.get("json_schema") if fmt.get("type") == "json_schema" else None

    def _native_schema(self, request: Recorded, body: dict[str, Any]) -> dict[str, Any] | None:
        fmt = self._native_format(request.path, body)
        if fmt is None or self._refusal(request, body):
            return None
        return fmt.get("schema")

    def _refusal(self, request: Recorded, body: dict[str, Any]) -> str:
        fmt = self._native_format(request.path, body)
        if fmt is None:
            return ""
        if not isinstance(fmt.get("schema"), dict) or not fmt.get("name"):
            return "Invalid schema for response_format: 'name' and 'schema' are required"
        if fmt.get("strict"):
            problem = strict_schema_problem(fmt["schema"])
            if not problem:
                problem = _openai_required_problem(fmt["schema"])
            if problem:
                return f"Invalid schema for response_format '{fmt['name']}': {problem}"
        return ""

    def _reply_body(self, reply: Reply, path: str, body: dict[str, Any]) -> Any:
        native = self._native_format(path, body) is not None
        text = reply.text if reply.answer is None else reply.text + self._answer_text(reply, native)
        model = reply.model or body.get("model", "")
        if path.endswith("/responses"):
            return self._response(reply, text, model, body)
        return self._chat_completion(reply, text, model)

    def _chat_completion(self, reply: Reply, text: str, model: str) -> Any:
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": c.id or self._next_id("call_"), "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in reply.tool_calls]
        finish = {"length": "length"}.get(reply.stop, reply.stop) or ("tool_calls" if reply.tool_calls else "stop")
        prompt_details: dict[str, Any] = {"cached_tokens": reply.cached_tokens, "audio_tokens": 0}
        if reply.cache_write_tokens:
            prompt_details["cache_write_tokens"] = reply.cache_write_tokens
        return {
            "id": self._next_id("chatcmpl-"), "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                      "total_tokens": reply.input_tokens + reply.output_tokens,
                      "prompt_tokens_details": prompt_details,
                      "completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "system_fingerprint": None,
        }

    def _response(self, reply: Reply, text: str, model: str, body: dict[str, Any]) -> Any:
        output: list[dict[str, Any]] = []
        if reply.thinking:
            output.append({"type": "reasoning", "id": self._next_id("rs_"),
                           "summary": [{"type": "summary_text", "text": reply.thinking}]})
        if text:
            output.append({"type": "message", "id": self._next_id("msg_"), "status": "completed", "role": "assistant",
                           "content": [{"type": "output_text", "text": text, "annotations": []}]})
        for c in reply.tool_calls:
            output.append({"type": "function_call", "id": self._next_id("fc_"), "call_id": c.id or self._next_id("call_"),
                           "name": c.name, "arguments": json.dumps(c.arguments), "status": "completed"})
            if c.namespace:
                output[-1]["namespace"] = c.namespace
        truncated = reply.stop == "length"
        return {
            "id": self._next_id("resp_"), "object": "response", "created_at": 1_700_000_000,
            "status": "incomplete" if truncated else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
            "error": None, "model": model, "output": output, "instructions": body.get("instructions"),
            "parallel_tool_calls": True, "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
            "temperature": 1.0, "top_p": 1.0, "metadata": {}, "text": body.get("text", {"format": {"type": "text"}}),
            "usage": {"input_tokens": reply.input_tokens,
                      "input_tokens_details": {"cached_tokens": reply.cached_tokens,
                                               "cache_write_tokens": reply.cache_write_tokens},
                      "output_tokens": reply.output_tokens,
                      "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
                      "total_tokens": reply.input_tokens + reply.output_tokens},
        }


    def _stream_events(self, payload: Any, request: Recorded) -> list[tuple[str, dict[str, Any]]] | None:
        """A Responses request with ``"stream": true`` gets the response as the API streams it
        (each event numbered by ``sequence_number``): `response.created` and `response.in_progress`
        (the response with no output yet), then per output item `response.output_item.added`, its
        parts and deltas (a message's `response.content_part.added`, `response.output_text.delta`
        pieces, `…output_text.done`, `…content_part.done`; a function call's
        `response.function_call_arguments.delta` pieces and `….done`; a reasoning item's summary
        parts and `response.reasoning_summary_text.delta` pieces) and `response.output_item.done`,
        then `response.completed` (or `response.incomplete`) with the whole response and its usage.
        This is how the Codex CLI asks. Chat Completions streaming is not spoken (no client here
        asks for it): such a request gets the JSON body."""
        if not (request.path.endswith("/responses") and isinstance(request.body, dict)
                and request.body.get("stream") is True):
            return None
        response: dict[str, Any] = payload
        events: list[tuple[str, dict[str, Any]]] = []

        def emit(kind: str, **fields: Any) -> None:
            events.append((kind, {"type": kind, "sequence_number": len(events), **fields}))

        opening = {**response, "status": "in_progress", "incomplete_details": None, "output": [], "usage": None}
        emit("response.created", response=opening)
        emit("response.in_progress", response=opening)
        for index, item in enumerate(response["output"]):
            _stream_output_item(emit, index, item)
        emit("response.incomplete" if response["status"] == "incomplete" else "response.completed", response=response)
        return events


def _stream_output_item(emit: Callable[..., None], index: int, item: dict[str, Any]) -> None:
    """One item of a Responses output as its streamed events (see `FakeOpenAI._stream_events`)."""
    at = {"item_id": item["id"], "output_index": index}
    if item["type"] == "message":
        emit("response.output_item.added", output_index=index,
             item={**item, "status": "in_progress", "content": []})
        for part_index, part in enumerate(item["content"]):
            where = {**at, "content_index": part_index}
            emit("response.content_part.added", **where, part={**part, "text": ""})
            for piece in _pieces(part["text"]):
                emit("response.output_text.delta", **where, delta=piece, logprobs=[])
            emit("response.output_text.done", **where, text=part["text"], logprobs=[])
            emit("response.content_part.done", **where, part=part)
    elif item["type"] == "function_call":
        emit("response.output_item.added", output_index=index,
             item={**item, "status": "in_progress", "arguments": ""})
        for piece in _pieces(item["arguments"]):
            emit("response.function_call_arguments.delta", **at, delta=piece)
        emit("response.function_call_arguments.done", **at, arguments=item["arguments"])
    elif item["type"] == "reasoning":
        emit("response.output_item.added", output_index=index, item={**item, "summary": []})
        for summary_index, part in enumerate(item["summary"]):
            where = {**at, "summary_index": summary_index}
            emit("response.reasoning_summary_part.added", **where, part={**part, "text": ""})
            for piece in _pieces(part["text"]):
                emit("response.reasoning_summary_text.delta", **where, delta=piece)
            emit("response.reasoning_summary_text.done", **where, text=part["text"])
            emit("response.reasoning_summary_part.done", **where, part=part)
    else:
        raise ValueError(f"cannot stream a {item['type']!r} output item")
    emit("response.output_item.done", output_index=index, item=item)


def _openai_required_problem(schema: Any, path: str = "schema") -> str:
    """OpenAI's strict mode also wants every property listed in `required`."""
    if not isinstance(schema, dict):
        return ""
    properties = schema.get("properties") or {}
    missing = [name for name in properties if name not in (schema.get("required") or [])]
    if missing:
        return f"{path}: 'required' is required to be supplied and to be an array including every key in properties. " \
               f"Missing '{missing[0]}'"
    subs = [(f"{path}.properties.{n}", v) for n, v in properties.items()]
    if "items" in schema:
        subs.append((f"{path}.items", schema["items"]))
    for where, sub in subs:
        problem = _openai_required_problem(sub, where)
        if problem:
            return problem
    return ""


def servers_env(*servers: FakeLLMServer) -> Mapping[str, str]:
    """The environment for a worker that should reach all these fakes."""
    env: dict[str, str] = {}
    for s in servers:
        env.update(s.env())
    return env
