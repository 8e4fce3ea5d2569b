"""What a background worker's fingerprint keeps of the variables model strings read."""

from __future__ import annotations

from runtime.worker_fingerprint import caller_fingerprint


def test_a_secret_looking_variable_read_by_a_model_string_is_kept_only_as_a_digest() -> None:
    first = caller_fingerprint({"LLM_TOKEN": "sk-very-secret"}, offline=False, model_vars=["LLM_TOKEN"])
    second = caller_fingerprint({"LLM_TOKEN": "sk-other-secret"}, offline=False, model_vars=["LLM_TOKEN"])
    assert "sk-very-secret" not in repr(first.to_json())
    assert first.model_vars["LLM_TOKEN"].startswith("sha256:")
    assert first.model_vars != second.model_vars  # a changed value is still noticed


def test_a_model_name_is_kept_as_it_is() -> None:
    assert caller_fingerprint({"MODEL": "claude-x"}, offline=False).model_vars["MODEL"] == "claude-x"
