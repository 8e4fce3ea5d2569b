"""Exit codes of the runtime commands, and the errors that end a command with one.

Exit codes (`docs/runtime.md` lists them for users):

    0    the run finished (or was started with --detach; or the command did what it was asked)
    1    the run failed, the file has compile errors, or an answer was rejected
    2    usage error: bad option or value, unknown run id, Temporal unreachable; bad input (a file
         that is not a regular file or is too large, JSON too deep or with NaN, text not UTF-8)
    3    the run waits for a human answer (and there is no terminal to ask on), or is paused
    4    the run is parked as failed_resumable (fix the cause, then `iterloop retry`)
    5    the run stopped because a budget was exceeded, or waits for a raise (`iterloop budget`)
    130  the run was cancelled (or Ctrl-C stopped following it; the run itself goes on)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WAITING = 3
EXIT_PARKED = 4
EXIT_BUDGET = 5
EXIT_CANCELLED = 130

#: The exit code of a command that followed a run to this status.
STATUS_EXIT_CODES = {"running": EXIT_OK, "finished": EXIT_OK, "failed": EXIT_FAILED, "waiting_human": EXIT_WAITING,
                     "failed_resumable": EXIT_PARKED, "budget_exceeded": EXIT_BUDGET, "cancelled": EXIT_CANCELLED,
                     "waiting_budget": EXIT_BUDGET, "paused": EXIT_WAITING}


class CommandError(Exception):
    """A problem to report to the user as `iterloop: message`, ending the command with ``exit_code``."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CommandError):
    """The command line asks for something impossible: a bad option value, an unknown var."""

    exit_code = EXIT_USAGE


class InvalidFilter(UsageError):
    """A run-list filter (status, workflow, gate) that no run can match: not a name (the API: 400)."""


class RunNotFound(UsageError):
    """No run with that id in the namespace."""


class TemporalUnavailable(UsageError):
    """The Temporal server cannot be reached, or no worker answers for the run."""


class RunAlreadyExists(UsageError):
    """A run with the requested id exists already (run ids are never reused)."""


class NodeNotParked(UsageError):
    """`retry --node N` names a node that is not parked."""


class NoRewindPoint(UsageError):
    """`rewind --to N` / `fork --at N` names a node the run cannot be rewound to."""


class InvalidScript(UsageError):
    """Scripted model outputs given inline (the API's `script`) do not have a script's shape."""


class RunEnded(CommandError):
    """The run has ended: there is no gate to answer and nothing to retry or cancel."""


class NothingToRetry(CommandError):
    """The run has no parked node."""


class ControlRejected(CommandError):
    """The run refused a live-control request (a limit not above the one in force, an unknown loop,
    a pause of a paused run); nothing was changed."""


class AnswerRejected(CommandError):
    """The run refused a gate answer (unknown gate or field, wrong type); nothing was recorded."""


class GateOpeningClosed(AnswerRejected):
    """The gate opening an answer was for is closed: answered already (by whom, when), or the gate
    is not open and the answer was not sent in advance; nothing was recorded."""


def short_error(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), to quote in ours."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
