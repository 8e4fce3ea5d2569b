"""Which tools a node may call: `tool_policy` allowlists (`*`, `a.b.*`, exact names).

The workflow checks every model tool call against the effective policy before it runs, and the
LLM activity offers only the tools the policy allows; both read this one definition.
"""

from __future__ import annotations

from dsl import ir

DEFAULT_TOOL_MAX_STEPS = 5  # Iterion's default when a node leaves `tool_max_steps` unset


def effective_tool_policy(wf: ir.Workflow, node: ir.Node) -> list[str] | None:
    """The allowlist that governs ``node``: its own `tool_policy` replaces (never extends) the
    workflow's; None means no policy anywhere, so every tool is allowed."""
    own = getattr(node, "tool_policy", None)
    return list(own) if own is not None else (list(wf.tool_policy) if wf.tool_policy is not None else None)


def tool_allowed(name: str, policy: list[str] | None) -> bool:
    """Whether ``policy`` lets a node call tool ``name``: `*` allows everything, `a.b.*` any name
    in namespace `a.b.`, anything else only that exact name. An empty list denies everything."""
    if policy is None:
        return True
    for pattern in policy:
        if pattern == "*" or pattern == name:
            return True
        if pattern.endswith(".*") and name.startswith(pattern[:-1]):
            return True
    return False


def policy_denial(name: str, policy: list[str] | None) -> str:
    return (f"tool '{name}' is not in the allowlist ({', '.join(policy or []) or 'empty'}); "
            "add it to the node's or the workflow's tool_policy")

