"""Slack interactivity: Approve / Reject clicks and answer modals become gate answers.

Slack POSTs every interaction to `/slack/interactions` as a form with one `payload` field (JSON).
The request is trusted only when it carries Slack's signature: `X-Slack-Signature` is
`v0=` + HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` keyed with the app's
signing secret. A wrong or missing signature, a timestamp more than five minutes away and a
request already seen (same signature, within those five minutes) are refused and change nothing.
The API's bearer tokens do not apply here: the signature is the authentication.

Slack wants the response within 3 seconds, and a modal must be opened with the click's
`trigger_id` within 3 seconds too, while asking a run for its state can take up to 20 seconds
(no worker up). So the request does only what must come first: check the signature, read the
gate's answer schema from the run's compiled workflow (the run's input, kept by the Temporal
server: no worker needed, at most `SYNC_SECONDS`), and open the modal when the gate has fields
besides the decision. Then it acknowledges, and the rest runs after the response
(`api.background`): the run's `state` query (only the gate opening the button was posted for can
be answered), the idempotent `answer` signal with `answered_by = slack:<user id>` (Slack's
stable id; the display name shows only in the message), and the message update saying who
decided and when. Updating the message is best effort: Slack being slow or down never holds up
the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from api.background import BackgroundWork
from api.deps import api_settings, run_service
from api.errors import ApiError, Forbidden, Unauthorized
from api.settings import ApiSettings
from dsl.ir import Schema
from runtime.command_errors import CommandError
from workflows.contract.json_values import JsonValueError, load_json
from workflows.contract.messages import NotifyRequest
from workflows.contract.slack_blocks import (
    DECISION_ACTIONS,
    FIELD_BLOCK_PREFIX,
    MODAL_CALLBACK,
    AnswerPlan,
    ButtonValue,
    answer_modal,
    answer_plan,
    decided_blocks,
    decision_note,
    gate_message,
    read_modal,
)
from workflows.contract.state import AnswerRecord, Gate, RunView

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

    from runtime.run_service import RunService
    from runtime.settings import Settings
    from workflows.contract.state import RunInput

log = logging.getLogger("iterloop.api.slack")

router = APIRouter(tags=["slack"])

#: Slack's own rule: refuse requests whose timestamp is more than five minutes from now.
MAX_REQUEST_AGE_SECONDS = 300
#: How long the request may spend reading the gate's schema before it answers Slack (which
#: gives up after 3 s, and a modal's trigger_id expires after 3 s).
SYNC_SECONDS = 2.0
#: How long, after sending a click's answer, the message update waits to see which answer the gate
#: opening took (another person's click may have been first).
RECORD_SECONDS = 5.0


class ReplayGuard:
    """The signatures of requests accepted in the last five minutes, per API process.

    Older requests are refused by their timestamp anyway, so this window is all that needs
    remembering. With several API replicas a replay may reach another one; the `answer` signal
    is idempotent per gate opening, so even then nothing is answered twice.
    """

    def __init__(self, window_seconds: float = MAX_REQUEST_AGE_SECONDS) -> None:
        self.window = window_seconds
        self._seen: dict[str, float] = {}

    def first_time(self, signature: str, now: float) -> bool:
        self._seen = {s: t for s, t in self._seen.items() if now - t <= self.window}
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True


def replay_guard(request: Request) -> ReplayGuard:
    guard = getattr(request.app.state, "slack_replay_guard", None)
    if guard is None:
        guard = request.app.state.slack_replay_guard = ReplayGuard()
    return guard


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v0=<hex>`: what Slack sends in `X-Slack-Signature` for this body and timestamp."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify_slack_request(secret: str, *, body: bytes, timestamp: str | None, signature: str | None,
                         now: float) -> None:
    """Raise `Unauthorized` unless Slack signed exactly this body within the last five minutes."""
    if not timestamp or not signature:
        raise Unauthorized("missing X-Slack-Request-Timestamp or X-Slack-Signature: not a request from Slack",
                           code="bad_signature")
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        raise Unauthorized(f"X-Slack-Request-Timestamp is not a Unix time: {timestamp[:20]!r}",
                           code="bad_signature") from None
    if age > MAX_REQUEST_AGE_SECONDS:
        raise Unauthorized(f"request timestamp is {int(age)} s away from now (more than "
                           f"{MAX_REQUEST_AGE_SECONDS} s): refused as stale; check the server's clock",
                           code="stale_request")
    if not hmac.compare_digest(slack_signature(secret, timestamp, body), signature):
        raise Unauthorized("X-Slack-Signature does not match the body: check SLACK_SIGNING_SECRET on the API",
                           code="bad_signature")


@router.post("/slack/interactions", summary="Slack interactivity (signed by Slack)")
async def slack_interactions(request: Request, settings: ApiSettings = Depends(api_settings),
                             guard: ReplayGuard = Depends(replay_guard)) -> Response:
    if not settings.slack_signing_secret:
        raise ApiError("Slack interactivity is not configured: set SLACK_SIGNING_SECRET for the API",
                       status=503, code="slack_not_configured")
    body = await request.body()
    now = time.time()
    signature = request.headers.get("x-slack-signature")
    verify_slack_request(settings.slack_signing_secret, body=body, signature=signature, now=now,
                         timestamp=request.headers.get("x-slack-request-timestamp"))
    assert signature is not None
    if not guard.first_time(signature, now):
        raise Forbidden("this request was already received: replays are refused", code="replayed_request")
    payload = _payload(body)
    interaction = SlackInteraction(request, settings, payload, now)
    kind = payload.get("type")
    if kind == "block_actions":
        return await interaction.on_click()
    if kind == "view_submission" and (payload.get("view") or {}).get("callback_id") == MODAL_CALLBACK:
        return await interaction.on_modal_submit()
    return Response(status_code=200)  # other interactions (link buttons, closed modals…) need only an ack


def _payload(body: bytes) -> dict[str, Any]:
    try:
        raw = parse_qs(body.decode(), strict_parsing=False).get("payload", [""])[0]
    except UnicodeDecodeError:
        raise ApiError("expected a form with a JSON `payload` field, as Slack sends", code="bad_request") from None
    try:
        payload = load_json(raw, what="the `payload` field")  # bounded in size and depth, no NaN
    except JsonValueError as exc:
        raise ApiError(f"{exc}; expected a form with a JSON `payload` field, as Slack sends",
                       code="bad_request") from None
    if not isinstance(payload, dict):
        raise ApiError("the `payload` field must hold a JSON object", code="bad_request")
    return payload


@dataclass(frozen=True)
class GateSchema:
    schema: Schema | None  # None: a gate without an output schema (answered {"approved": …})


class SlackInteraction:
    """One verified interaction: the run it is about, the user, and the Slack calls it makes."""

    def __init__(self, request: Request, settings: ApiSettings, payload: dict[str, Any], now: float) -> None:
        self.settings = settings
        self.payload = payload
        self.now = now
        self.runs: RunService = run_service(request)
        self.background: BackgroundWork = request.app.state.background
        user = payload.get("user") or {}
        self.user_id = str(user.get("id") or "unknown")
        self.slack = AsyncWebClient(token=settings.runtime.slack_bot_token or None,
                                    base_url=settings.runtime.slack_api_url.rstrip("/") + "/")

    # -- the two kinds of interaction: what must happen before Slack gets its response ----------

    async def on_click(self) -> Response:
        actions = [a for a in self.payload.get("actions") or [] if a.get("action_id") in DECISION_ACTIONS]
        if not actions:
            return Response(status_code=200)  # e.g. the "Open run" link button
        try:
            value = ButtonValue.decode(str(actions[0].get("value") or ""))
        except ValueError as exc:
            raise ApiError(str(exc), code="bad_request") from None
        container = self.payload.get("container") or {}
        channel = str(container.get("channel_id") or (self.payload.get("channel") or {}).get("id") or "")
        ts = str(container.get("message_ts") or (self.payload.get("message") or {}).get("ts") or "")
        blocks = (self.payload.get("message") or {}).get("blocks") or []
        schema = await self._schema_in_time(value)
        plan = answer_plan(schema.schema) if schema is not None else None
        if plan is not None and plan.needs_modal:
            await self._open_modal(answer_modal(plan, value, channel=channel, ts=ts))
            return Response(status_code=200)
        self._later(value, self._answer_click(value, channel, ts, blocks))
        return Response(status_code=200)

    async def on_modal_submit(self) -> Response:
        view_payload = self.payload.get("view") or {}
        try:
            meta = ButtonValue.decode(_metadata_value(view_payload))
        except ValueError as exc:
            raise ApiError(str(exc), code="bad_request") from None
        schema = await self._schema_in_time(meta)
        if schema is None:
            return _modal_notice("Try again", f"Run `{meta.run_id}` could not be reached in time, or its gate "
                                 f"'{meta.gate}' is not a question for people. Submit again in a moment.")
        plan = answer_plan(schema.schema)
        submission = read_modal(view_payload, plan)
        errors = field_errors(schema.schema, plan, submission.details, gate=meta.gate)
        if errors:
            return _modal_errors(errors)
        self._later(meta, self._answer_submission(meta, submission.details, submission.channel, submission.ts))
        return Response(status_code=200)  # an empty 200 closes the modal

    async def _schema_in_time(self, value: ButtonValue) -> GateSchema | None:
        """The gate's answer schema from the run's compiled workflow (its input, read from the Temporal
        server within `SYNC_SECONDS`); None when it cannot be read in time or names no human gate."""
        from runtime.temporal_runs import read_run_input
        from workflows.contract.answers import answer_schema, is_gate

        async def compiled_workflow() -> RunInput | None:
            client = await self.runs.client()
            return await read_run_input(client, client.get_workflow_handle(value.run_id))

        try:
            run_input = await asyncio.wait_for(compiled_workflow(), SYNC_SECONDS)
        except (TimeoutError, CommandError) as exc:  # Temporal slow or down: the answer goes on after the response
            log.warning("could not read the workflow of run %s within %.0f s: %s", value.run_id, SYNC_SECONDS,
                        exc or type(exc).__name__)
            return None
        node = run_input.workflow.nodes.get(value.gate) if run_input is not None else None
        if not is_gate(node):  # a human node, or a delegated agent asking (its answers are free-form)
            return None
        assert run_input is not None
        return GateSchema(answer_schema(run_input.workflow, node))

    def _later(self, value: ButtonValue, work: Coroutine[Any, Any, None]) -> None:
        self.background.start(work, name=f"Slack answer to gate '{value.gate}' of run {value.run_id}")

    # -- after the response --------------------------------------------------------------------

    async def _answer_click(self, value: ButtonValue, channel: str, ts: str, blocks: list[dict[str, Any]]) -> None:
        view, gate = await self._open_gate(value)
        if gate is None:
            await self._update(channel, ts, decided_blocks(blocks, self._closed_note(view, value)))
            return
        plan = answer_plan(gate.schema_)
        if plan.needs_modal:  # the schema could not be read in time to open the form
            log.warning("gate '%s' of run %s needs a form in Slack, but the run could not be reached within %.0f s "
                        "to open it; the click changed nothing", value.gate, value.run_id, SYNC_SECONDS)
            return
        await self._answer(value, view, gate, plan.answers(value.decision), channel, ts, blocks)

    async def _answer_submission(self, value: ButtonValue, details: dict[str, Any], channel: str, ts: str) -> None:
        view, gate = await self._open_gate(value)
        if gate is None:
            log.info("a Slack form for gate '%s' of run %s arrived after the gate closed: %s", value.gate,
                     value.run_id, self._closed_note(view, value))
            return
        plan = answer_plan(gate.schema_)
        await self._answer(value, view, gate, plan.answers(value.decision, details), channel, ts,
                           _rebuilt_gate_message(value.run_id, view, gate))

    async def _open_gate(self, value: ButtonValue) -> tuple[RunView, Gate | None]:
        """The run's state and the gate opening the click is for (None when it is not open now)."""
        from runtime.temporal_runs import query_state

        client = await self.runs.client()
        view = await query_state(client.get_workflow_handle(value.run_id), self._runtime_settings())
        gate = next((g for g in view.open_gates
                     if g.gate == value.gate and g.interaction_id == value.interaction_id), None)
        return view, gate

    def _closed_note(self, view: RunView, value: ButtonValue) -> str:
        record = next((a for a in view.answers if a.interaction_id == value.interaction_id), None)
        if record is not None:
            return f"Already answered by {_who(record.answered_by)} at {record.answered_at}."
        return f"This question is no longer open (the run is {view.status})."

    async def _answer(self, value: ButtonValue, view: RunView, gate: Gate, answers: dict[str, Any], channel: str,
                      ts: str, blocks: list[dict[str, Any]]) -> None:
        from runtime.run_service import send_answer_signal
        from workflows.contract.answers import AnswerError, coerce_answers
        from workflows.contract.state import Answer

        try:
            typed = coerce_answers(gate.schema_, answers, gate=gate.gate)
        except AnswerError as exc:
            log.warning("the Slack answer does not fit gate '%s' of run %s: %s", gate.gate, value.run_id, exc)
            return
        client = await self.runs.client()
        handle = client.get_workflow_handle(value.run_id)
        try:
            await send_answer_signal(handle, self._runtime_settings(), Answer(
                gate=gate.gate, answers=typed, answered_by=f"slack:{self.user_id}",
                interaction_id=gate.interaction_id))
        except CommandError as exc:  # e.g. another click's answer ended the run a moment ago
            log.info("the Slack answer to gate '%s' of run %s was not delivered: %s", gate.gate, value.run_id, exc)
        # Two people may click at once: the opening takes one answer, so the message shows the one it took.
        record = await self._recorded(handle, gate.interaction_id)
        if record is not None and record.answered_by != f"slack:{self.user_id}":
            note = f"Already answered by {_who(record.answered_by)} at {record.answered_at}."
        else:
            note = decision_note(answer_plan(gate.schema_), typed, user_id=self.user_id, when_unix=int(self.now))
        await self._update(channel, ts, decided_blocks(blocks, note))

    async def _recorded(self, handle: WorkflowHandle[Any, Any], interaction_id: str) -> AnswerRecord | None:
        """The answer the gate opening took, once the run has read the signal (None if it cannot be
        seen within `RECORD_SECONDS`: the message then shows this click's decision, as it was sent)."""
        from runtime.temporal_runs import query_state

        deadline = time.monotonic() + RECORD_SECONDS
        while True:
            try:
                view = await query_state(handle, self._runtime_settings())
            except CommandError:
                return None
            record = next((a for a in view.answers if a.interaction_id == interaction_id), None)
            if record is not None or time.monotonic() > deadline:
                return record
            await asyncio.sleep(0.1)

    def _runtime_settings(self) -> Settings:
        return self.runs.settings

    async def _update(self, channel: str, ts: str, blocks: list[dict[str, Any]]) -> None:
        """Best effort: the answer is already on its way whatever Slack says."""
        if not (channel and ts and self.settings.runtime.slack_bot_token):
            return
        try:
            await self.slack.chat_update(channel=channel, ts=ts, blocks=blocks, text="Answered in Slack")
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("could not update the Slack message %s/%s: %s", channel, ts, exc)
        except Exception as exc:  # aiohttp errors and the like: never fail the answer for a cosmetic update
            log.warning("could not update the Slack message %s/%s: %s: %s", channel, ts, type(exc).__name__, exc)

    async def _open_modal(self, view: dict[str, Any]) -> None:
        trigger = str(self.payload.get("trigger_id") or "")
        if not self.settings.runtime.slack_bot_token:
            raise ApiError("this gate needs a form in Slack, which needs SLACK_BOT_TOKEN on the API",
                           status=503, code="slack_not_configured")
        try:
            await self.slack.views_open(trigger_id=trigger, view=view)
        except SlackApiError as exc:
            code = exc.response.get("error") if exc.response is not None else ""
            raise ApiError(f"Slack refused to open the answer form: {code or exc}", status=502,
                           code="slack_error") from None


def _who(answered_by: str) -> str:
    """`slack:U42ADA` as a Slack mention (Slack shows the person's current name); anyone else as recorded."""
    return f"<@{answered_by[6:]}>" if answered_by.startswith("slack:") and answered_by[6:] else answered_by


def field_errors(schema: Schema | None, plan: AnswerPlan, details: dict[str, Any], *, gate: str) -> dict[str, str]:
    """Per detail field, why its value does not fit the gate's schema (empty when all fit)."""
    from workflows.contract.answers import AnswerError, coerce_answers

    errors: dict[str, str] = {}
    if schema is None:
        return errors
    for f in plan.details:
        try:
            coerce_answers(Schema(name=schema.name, fields=[f]), {f.name: details.get(f.name)}, gate=gate)
        except AnswerError as exc:
            errors[f.name] = str(exc)
    return errors


def _modal_errors(errors: dict[str, str]) -> JSONResponse:
    """Keep the modal open and show each message under its input (Slack's `response_action`)."""
    return JSONResponse({"response_action": "errors",
                         "errors": {FIELD_BLOCK_PREFIX + name: msg[:150] for name, msg in errors.items()}})


def _modal_notice(title: str, message: str) -> JSONResponse:
    """Replace the modal's content with a message (Slack's `response_action: update`)."""
    return JSONResponse({"response_action": "update", "view": {
        "type": "modal", "title": {"type": "plain_text", "text": title[:24]},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": message}}]}})


def _metadata_value(view: dict[str, Any]) -> str:
    """The modal's click, re-encoded as a button value (the modal's metadata holds the same keys)."""
    try:
        meta = load_json(view.get("private_metadata") or "", what="private_metadata")
        return ButtonValue(meta["r"], meta["g"], meta["i"], meta["d"]).encode()
    except (ValueError, TypeError, KeyError):
        raise ValueError("not an iterloop answer modal") from None


def _rebuilt_gate_message(run_id: str, view: RunView, gate: Gate) -> list[dict[str, Any]]:
    """The gate's message as posted (a modal submission does not carry the message's blocks)."""
    _, blocks = gate_message(NotifyRequest(event="gate_opened", run_id=run_id, workflow=view.workflow,
                                           gate=gate.gate, interaction_id=gate.interaction_id,
                                           instructions=gate.instructions, questions=gate.questions,
                                           answer_schema=gate.schema_))
    return blocks
