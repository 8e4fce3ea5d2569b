"""Conversation sessions across nodes and loop iterations, as plain functions over plain data.

Every LLM node visit has a conversation, stored by the LLM activity in the artifact store; the
workflow only keeps `session id → conversation reference`. A node's `session:` decides where its
conversation starts (Iterion's meaning, `reference/iterion-runtime.md` §2.2, made real for
direct model calls):

- `fresh` (default): a new conversation.
- `inherit`: continue the parent session and keep its id, so the next inheritor sees this
  node's turns too.
- `fork`: start from a copy of the parent session under a new id; the parent is unchanged.
- `artifacts_only`: a new conversation whose first message also carries the run's published
  artifacts — what earlier nodes chose to share, not how they talked.

The parent is the `_session_id` in the node's input when a `with` mapping gives one (Iterion's
explicit form: `with { _session_id: "{{outputs.x._session_id}}" }`); otherwise the latest
session of the node's branch (or of the branch it forked from), so `inherit` on the node after
another agent does what its name says without a mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SESSION_KEY = "_session_id"
SESSIONS_KEPT = 200  # bounds the state carried through continue-as-new


@dataclass(frozen=True)
class SessionPlan:
    """Where one visit's conversation starts and under which id it is stored afterwards."""

    session_id: str
    conversation_ref: str = ""  # "" = a new conversation
    parent: str = ""
    warning: str = ""


def new_session_id(node_id: str, visit: int) -> str:
    return f"{node_id}#{visit}"


def latest_in_branch(branch: str, branch_sessions: dict[str, str]) -> str:
    """The latest session of ``branch``, else of the branches it was forked from ("" if none)."""
    while True:
        if branch in branch_sessions:
            return branch_sessions[branch]
        if not branch:
            return ""
        branch = branch.rpartition("/")[0]


def plan_session(mode: str, *, node_id: str, visit: int, node_input: dict[str, Any], branch: str,
                 sessions: dict[str, str], branch_sessions: dict[str, str]) -> SessionPlan:
    own = new_session_id(node_id, visit)
    if mode not in ("inherit", "fork"):
        return SessionPlan(own)
    explicit = node_input.get(SESSION_KEY)
    parent = explicit if isinstance(explicit, str) and explicit else latest_in_branch(branch, branch_sessions)
    if not parent:
        return SessionPlan(own)
    ref = sessions.get(parent)
    if ref is None:
        return SessionPlan(own, warning=f"session {parent!r} was not created by any LLM node of this run "
                                        f"(check the `_session_id` mapping into '{node_id}'); starting a fresh "
                                        "conversation")
    return SessionPlan(parent if mode == "inherit" else own, ref, parent)


def remember(sessions: dict[str, str], branch_sessions: dict[str, str], *, session_id: str,
             conversation_ref: str, branch: str) -> None:
    """Record a visit's conversation; the oldest sessions are forgotten beyond `SESSIONS_KEPT`."""
    sessions.pop(session_id, None)  # re-insert: dict order is recency
    sessions[session_id] = conversation_ref
    branch_sessions[branch] = session_id
    while len(sessions) > SESSIONS_KEPT:
        del sessions[next(iter(sessions))]


def repair_request(reason: str, schema_name: str) -> str:
    """The user message that asks a model to fix an answer that did not match the schema."""
    return (f"Your previous answer does not match the required output schema '{schema_name}': {reason}. "
            "Answer again with only the corrected JSON object, with every required field and nothing else.")
