"""`reasoning_effort` (`low | medium | high | extra_high`) mapped to each provider's controls.

| iterloop     | OpenAI `reasoning_effort` | Anthropic extended thinking `budget_tokens` |
|--------------|---------------------------|---------------------------------------------|
| `low`        | `low`                     | 2,048                                       |
| `medium`     | `medium`                  | 8,192                                       |
| `high`       | `high`                    | 16,384                                      |
| `extra_high` | `xhigh`                   | 32,768                                      |

OpenAI only accepts the parameter on reasoning models: it is sent for `o1…`, `o3…`, `o4…` and
`gpt-5…` models and left out for the others (`gpt-4.1`, OpenAI-compatible servers' models).
Anthropic's thinking tokens count towards `max_tokens`, so the budget is added to the answer's
own limit. Reasoning tokens are billed as output tokens by both.
"""

from __future__ import annotations

from workflows.messages import LLMTurnRequest

EFFORTS = ("low", "medium", "high", "extra_high")
ANTHROPIC_THINKING_BUDGET = {"low": 2048, "medium": 8192, "high": 16384, "extra_high": 32768}
OPENAI_EFFORT = {"low": "low", "medium": "medium", "high": "high", "extra_high": "xhigh"}
_OPENAI_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def effort_of(req: LLMTurnRequest) -> str:
    """The turn's effort: the node's (the workflow already applied an input's `_reasoning_effort`),
    else an `_reasoning_effort` input key; "" when none or not one of `EFFORTS`."""
    for value in (req.reasoning_effort, req.input.get("_reasoning_effort")):
        if isinstance(value, str) and value in EFFORTS:
            return value
    return ""


def openai_reasons(model_id: str) -> bool:
    """Whether an OpenAI model takes `reasoning_effort` (and a `developer` system message)."""
    return model_id.lower().startswith(_OPENAI_REASONING_PREFIXES)
