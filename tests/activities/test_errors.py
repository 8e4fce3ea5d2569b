"""The activities' one error tree: every class names a vocabulary type and takes its
retryability from the vocabulary, and nothing in activities decides retryability on its own."""

from __future__ import annotations

import ast
import inspect
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

import activities.errors as errors_module
from activities.errors import (
    ActivityError,
    BadRequestError,
    ConnectorError,
    FlagError,
    ModelError,
    NotifyError,
    NotifyUnavailableError,
    RateLimitedError,
    UnknownMetricError,
    UnknownNameError,
)
from workflows.contract.vocabulary import ERROR_TYPES, RETRYABLE

ACTIVITIES = Path(__file__).resolve().parents[2] / "activities"


def error_classes() -> list[type[ActivityError]]:
    """Every class of the tree (they are all defined in `activities.errors`)."""
    return [c for _, c in inspect.getmembers(errors_module, inspect.isclass)
            if issubclass(c, ActivityError) and c.__module__ == errors_module.__name__]


def instance(cls: type[ActivityError], **kwargs: object) -> ActivityError:
    if issubclass(cls, UnknownNameError):
        return cls("source", "name", ["known"])
    return cls("message", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_names_a_vocabulary_type_and_its_retryability(cls: type[ActivityError]) -> None:
    assert cls.error_type in ERROR_TYPES
    assert cls.retryable() == (cls.error_type in RETRYABLE)
    err = instance(cls)
    assert isinstance(err, ApplicationError)
    assert (err.type, err.non_retryable) == (cls.error_type, cls.error_type not in RETRYABLE)
    assert len(err.details) == 1 and isinstance(err.details[0], dict)  # always one mapping


def test_every_retryable_type_has_a_class() -> None:
    assert RETRYABLE <= {c.error_type for c in error_classes()}


def test_a_servers_delay_is_kept_only_for_a_failure_that_is_retried() -> None:
    wait = timedelta(seconds=17)
    assert RateLimitedError("quota", next_retry_delay=wait).next_retry_delay == wait
    assert NotifyUnavailableError("later", next_retry_delay=wait).next_retry_delay == wait
    assert BadRequestError("never", next_retry_delay=wait).next_retry_delay is None


def test_the_domain_branches_catch_their_own() -> None:
    assert issubclass(UnknownMetricError, ConnectorError) and not issubclass(UnknownMetricError, FlagError)
    for branch in (ModelError, ConnectorError, FlagError, NotifyError):
        assert issubclass(branch, ActivityError)
    err = UnknownMetricError("ga4", "x", ["b", "a"])
    assert (err.message, err.details[0]) == ("ga4: unknown metric 'x'; known metrics: a, b",
                                             {"source": "ga4", "metric": "x", "known": ["a", "b"]})


def _python_files() -> list[Path]:
    return sorted(p for p in ACTIVITIES.rglob("*.py") if p.name != "errors.py" or p.parent != ACTIVITIES)


def test_no_activity_builds_an_application_error_or_decides_retryability_itself() -> None:
    """Raising `ApplicationError(...)` or passing `non_retryable=` anywhere but `activities/errors.py`
    would decide retryability at the raise, where it can drift from the vocabulary."""
    offenders = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name == "ApplicationError" or any(k.arg == "non_retryable" for k in node.keywords):
                    offenders.append(f"{path.relative_to(ACTIVITIES.parent)}:{node.lineno}")
    assert offenders == []


def test_every_exception_class_an_activity_defines_outside_the_tree_is_not_a_temporal_error() -> None:
    """Helper exceptions (a notification target's `DeliveryError`, statistics' input errors) stay
    inside activities; only `activities.errors` defines what crosses to the workflow."""
    outside = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if "ApplicationError" in bases or "ActivityError" in bases:
                    outside.append(f"{path.relative_to(ACTIVITIES.parent)}:{node.name}")
    assert outside == []
