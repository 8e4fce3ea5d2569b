"""What the delegation backends share once a CLI has streamed its events.

Each backend (`claude_code.py`, `codex.py`) reads its own CLI's event format; what they do with it
is the same: keep the session id and a bounded list of steps (live through ``on_step``), clip text
for history, find the JSON object in a final message, and turn the final text into a
`DelegateResult` against the node's output schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from activities.llm.structured_output import answer_spec
from workflows.contract.delegation import (
    MAX_STEPS_KEPT,
    DelegateRequest,
    DelegateResult,
    DelegateStep,
    interaction_json_schema,
)

SUMMARY_CHARS = 200  # one step's summary
TEXT_CHARS = 20_000  # the final message kept in a result


def answer_json_schema(req: DelegateRequest) -> dict[str, Any] | None:
    """The JSON Schema the CLI is told the answer must match: the node's output schema, with the keys
    an agent asks a person with when the node has `interaction:`; None without an output schema."""
    if req.output_schema is None:
        return None
    schema = answer_spec(req.output_schema).json_schema
    return interaction_json_schema(schema) if req.interaction else schema


class StepStream:
    """The state every backend's parser keeps: the CLI's session id and the steps it streamed."""

    def __init__(self, on_step: Callable[[DelegateStep], None]) -> None:
        self.on_step = on_step
        self.session_id = ""
        self.steps: list[DelegateStep] = []
        self.steps_dropped = 0

    def _keep(self, step: DelegateStep) -> None:
        """Every step goes to ``on_step`` (the heartbeat); the first `MAX_STEPS_KEPT` go to history."""
        if len(self.steps) < MAX_STEPS_KEPT:
            self.steps.append(step)
        else:
            self.steps_dropped += 1
        self.on_step(step)

    def answer(self, req: DelegateRequest, text: str, common: dict[str, Any], *,
               structured: Any = None) -> DelegateResult:
        """The final result: free text for a node without an output schema, else the JSON object the
        CLI returned as structured output or wrote in ``text`` (invalid when there is none)."""
        if req.output_schema is None:
            return DelegateResult(status="final", output={"text": text}, **common)
        answer = structured if structured is not None else json_object_in(text)
        if not isinstance(answer, dict):
            return DelegateResult(status="invalid", invalid_reason="the agent gave no JSON object as its answer",
                                  **common)
        return DelegateResult(status="final", output=answer, **common)

    def common(self, text: str, usage: Any) -> dict[str, Any]:
        """The fields every result of this stream carries."""
        return {"text": clip(text, TEXT_CHARS), "usage": usage, "session_id": self.session_id,
                "steps": self.steps, "steps_dropped": self.steps_dropped}


def json_object_in(text: str) -> Any:
    """The JSON object an answer holds: the whole text, else the last fenced block, else from the
    first `{` to the last `}`."""
    candidates = [text.strip()]
    if "```" in text:
        candidates += [part.removeprefix("json").strip() for part in text.split("```")[1::2]][::-1]
    if "{" in text:
        candidates.append(text[text.index("{"):text.rindex("}") + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return clip(line, SUMMARY_CHARS)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
