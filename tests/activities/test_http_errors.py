"""The one HTTP status → failure mapping, and what each kind of service makes of it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.errors import ActivityError
from activities.http_errors import (
    CONNECTOR_FAILURES,
    FLAG_FAILURES,
    MODEL_FAILURES,
    NOTIFY_FAILURES,
    FailureVocabulary,
    HttpFailure,
    http_failure,
)
from workflows.contract.vocabulary import RETRYABLE

VOCABULARIES = {"models": MODEL_FAILURES, "connectors": CONNECTOR_FAILURES, "flags": FLAG_FAILURES,
                "notify": NOTIFY_FAILURES}


@pytest.mark.parametrize(("status", "failure"), [
    (401, HttpFailure.AUTH), (403, HttpFailure.FORBIDDEN), (404, HttpFailure.NOT_FOUND),
    (409, HttpFailure.CONFLICT), (429, HttpFailure.RATE_LIMITED),
    (408, HttpFailure.UNAVAILABLE), (425, HttpFailure.UNAVAILABLE), (500, HttpFailure.UNAVAILABLE),
    (502, HttpFailure.UNAVAILABLE), (503, HttpFailure.UNAVAILABLE), (529, HttpFailure.UNAVAILABLE),
    (400, HttpFailure.REJECTED), (405, HttpFailure.REJECTED), (413, HttpFailure.REJECTED),
    (422, HttpFailure.REJECTED), (301, HttpFailure.REJECTED), (307, HttpFailure.REJECTED),
])
def test_a_status_is_one_failure(status: int, failure: HttpFailure) -> None:
    assert http_failure(status) is failure


# (status → error type) for each vocabulary; the retry column follows from the vocabulary.
TABLE = {
    401: ("ModelAuthFailed", "ConnectorAuthFailed", "FlagProviderAuthFailed", "NotifyRejected"),
    403: ("ModelPermissionDenied", "ConnectorAuthFailed", "FlagProviderAuthFailed", "NotifyRejected"),
    404: ("ModelNotFound", "BadRequest", "FlagNotFound", "NotifyRejected"),
    408: ("ModelUnavailable", "ConnectorUnavailable", "FlagProviderUnavailable", "NotifyUnavailable"),
    409: ("ModelUnavailable", "BadRequest", "FlagConflict", "NotifyRejected"),
    422: ("BadRequest", "BadRequest", "BadRequest", "NotifyRejected"),
    425: ("ModelUnavailable", "ConnectorUnavailable", "FlagProviderUnavailable", "NotifyUnavailable"),
    429: ("ModelRateLimited", "RateLimited", "RateLimited", "NotifyUnavailable"),
    500: ("ModelUnavailable", "ConnectorUnavailable", "FlagProviderUnavailable", "NotifyUnavailable"),
}


@pytest.mark.parametrize("status", sorted(TABLE))
def test_each_service_names_each_status(status: int) -> None:
    got = tuple(v.error_class(status).error_type for v in VOCABULARIES.values())
    assert got == TABLE[status]
    for vocabulary, error_type in zip(VOCABULARIES.values(), got):
        assert vocabulary.retryable(status) == (error_type in RETRYABLE)


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_every_vocabulary_covers_every_failure(name: str) -> None:
    vocabulary: FailureVocabulary[ActivityError] = VOCABULARIES[name]
    assert set(vocabulary.errors) == set(HttpFailure)
    if name != "notify":  # Slack and webhooks word each target's failure themselves
        assert set(vocabulary.wording) == set(HttpFailure)


def test_a_connector_rate_limit_carries_the_servers_delay_and_says_so() -> None:
    err = CONNECTOR_FAILURES.service_error("mixpanel", 429, " too many queries ", retry_after="45", hint="Set X.")
    assert (err.type, err.non_retryable, err.next_retry_delay) == ("RateLimited", False, timedelta(seconds=45))
    assert err.message == ("mixpanel rate limit or quota exceeded (HTTP 429): too many queries; "
                           "retrying in 45 s as the server asked")
    assert err.details[0] == {"source": "mixpanel", "status": 429, "retry_after_seconds": 45.0}


def test_rejected_credentials_name_what_to_set_and_are_not_retried() -> None:
    err = FLAG_FAILURES.service_error("growthbook", 401, "bad key", retry_after="30", hint="Set GROWTHBOOK_API_KEY.")
    assert err.message == "growthbook rejected the credentials (HTTP 401): bad key. Set GROWTHBOOK_API_KEY."
    assert (err.type, err.non_retryable, err.next_retry_delay) == ("FlagProviderAuthFailed", True, None)
    assert err.details[0] == {"provider": "growthbook", "status": 401}
    bare = CONNECTOR_FAILURES.service_error("ga4", 403, "")
    assert bare.message == "ga4 denied access (HTTP 403)."


def test_the_same_status_reads_differently_per_service() -> None:
    assert CONNECTOR_FAILURES.service_error("amplitude", 404, "nope").message == \
        "amplitude refused the query (HTTP 404): nope"
    assert FLAG_FAILURES.service_error("unleash", 404, "nope").message == "unleash: not found (HTTP 404): nope"
    assert FLAG_FAILURES.service_error("unleash", 409, "taken").message == "unleash: conflict (HTTP 409): taken"
    outage = FLAG_FAILURES.service_error("unleash", 503, "", retry_after="3")
    assert (outage.message, outage.next_retry_delay) == ("unleash is unavailable (HTTP 503)", timedelta(seconds=3))


def test_model_wording_uses_the_callers_fields() -> None:
    err = MODEL_FAILURES.error(404, where="node 'plan' (openai model 'gpt-9')", provider="openai",
                               quoted="HTTP 404: no such model", after="", key_var="OPENAI_API_KEY",
                               base_url="https://api.openai.com/v1", model="gpt-9")
    assert err.type == "ModelNotFound" and err.non_retryable
    assert err.message == ("node 'plan' (openai model 'gpt-9'): openai does not know this model (HTTP 404: no such "
                           "model); check the node's `model:` (sent as 'gpt-9' to https://api.openai.com/v1)")
