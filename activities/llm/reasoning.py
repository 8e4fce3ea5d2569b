"""`reasoning_effort` (`low | medium | high | extra_high`) mapped to each provider's controls.

| iterloop     | OpenAI `reasoning_effort` | Anthropic, Claude 4.6 and later | Anthropic, earlier models       |
|--------------|---------------------------|---------------------------------|---------------------------------|
| `low`        | `low`                     | adaptive thinking, effort `low` | thinking `budget_tokens` 2,048  |
| `medium`     | `medium`                  | adaptive, `medium`              | 8,192                           |
| `high`       | `high`                    | adaptive, `high`                | 16,384                          |
| `extra_high` | `xhigh`                   | adaptive, `max`                 | 32,768                          |

OpenAI only accepts the parameter on reasoning models: it is sent for `o1…`, `o3…`, `o4…` and
`gpt-5…` models and left out for the others (`gpt-4.1`, OpenAI-compatible servers' models).
Claude models from 4.6 on (`claude-opus-4-6`, `claude-sonnet-4-6`, …) take adaptive thinking
(`thinking: {type: adaptive}` with `output_config.effort`), which Anthropic recommends over fixed
budgets for them; older models get a fixed thinking budget. Thinking tokens count towards
`max_tokens`, so the budget of the table is added to the answer's own limit (as headroom for
adaptive thinking too). Reasoning tokens are billed as output tokens by both providers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dsl.ir import REASONING_EFFORT_ALIASES
from workflows.contract.env_refs import expand_env
from workflows.contract.messages import LLMTurnRequest
from workflows.contract.vocabulary import REASONING_EFFORTS

EFFORTS = REASONING_EFFORTS
ANTHROPIC_THINKING_BUDGET = {"low": 2048, "medium": 8192, "high": 16384, "extra_high": 32768}
OPENAI_EFFORT = {"low": "low", "medium": "medium", "high": "high", "extra_high": "xhigh"}
ANTHROPIC_EFFORT = {"low": "low", "medium": "medium", "high": "high", "extra_high": "max"}
_CLAUDE_VERSION = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)-(\d{1,2})(?:-|$)")
_OPENAI_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def effort_of(req: LLMTurnRequest) -> str:
    """The turn's effort: ``req.reasoning_effort``, where the workflow put the effective one (an
    input's `_reasoning_effort` when valid, else the node's; it strips that key from the input),
    `${VAR:-level}` expanded from the worker's environment and `xhigh`/`max` read as `extra_high`;
    "" when none or not one of `EFFORTS`."""
    return effective_effort(req.reasoning_effort)


def effective_effort(written: str, env: Mapping[str, str] | None = None) -> str:
    """An effort as a node wrote it, as the worker runs it: `${VAR:-level}` expanded from the
    environment, `xhigh`/`max` read as `extra_high`; "" when none or not one of `EFFORTS`. Model
    turns and the delegation backends (each mapping it to its own CLI's levels) share it."""
    effort = written
    if "$" in effort:  # "${VAR:-high}" (current Iterion's form): the worker's choice
        effort = expand_env(effort, env).strip()
    effort = REASONING_EFFORT_ALIASES.get(effort, effort)  # Iterion's `xhigh` / `max`
    return effort if effort in EFFORTS else ""


def openai_reasons(model_id: str) -> bool:
    """Whether an OpenAI model takes `reasoning_effort` (and a `developer` system message)."""
    return model_id.lower().startswith(_OPENAI_REASONING_PREFIXES)


def claude_version(model_id: str) -> tuple[int, int] | None:
    """A Claude model's (major, minor) version from its name (`claude-sonnet-4-6` → (4, 6)), or
    None when the name does not say (`claude-3-5-sonnet…`, a gateway's alias)."""
    m = _CLAUDE_VERSION.match(model_id.lower())
    return (int(m.group(1)), int(m.group(2))) if m is not None else None


def anthropic_adaptive(model_id: str) -> bool:
    """Whether a Claude model takes adaptive thinking (4.6 and later) rather than a fixed budget."""
    version = claude_version(model_id)
    return version is not None and version >= (4, 6)
