"""Where runs report: deployment defaults, then the preset's `notify:`, then the request."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.notify_options import NotifySection, describe_notify, run_notify_options
from runtime.presets import PresetError, load_preset
from runtime.settings import Settings, SettingsError

DEFAULTS = Settings(notify_slack_channel="#growth", notify_webhooks=("https://hooks.example/a",),
                    ui_url="https://temporal.example")


def test_nothing_configured_reports_nowhere() -> None:
    assert run_notify_options(Settings()) is None


def test_the_deployment_defaults_apply_to_every_run() -> None:
    assert run_notify_options(DEFAULTS) == {"slack_channel": "#growth", "webhooks": ["https://hooks.example/a"],
                                            "ui_base_url": "https://temporal.example"}


def test_each_layer_overrides_only_what_it_sets() -> None:
    preset = NotifySection(slack_channel="#checkout-squad", events=["gate_opened"])
    request = NotifySection(webhooks=["https://hooks.example/b", "${ITERLOOP_WEBHOOK_B}"])
    got = run_notify_options(DEFAULTS, preset=preset, request=request, ui_base_url="http://localhost:8233")
    assert got == {"slack_channel": "#checkout-squad", "webhooks": ["https://hooks.example/b", "${ITERLOOP_WEBHOOK_B}"],
                   "events": ["gate_opened"], "ui_base_url": "https://temporal.example"}


def test_a_layer_can_turn_reporting_off() -> None:
    assert run_notify_options(DEFAULTS, request=NotifySection(enabled=False)) is None
    assert run_notify_options(DEFAULTS, preset=NotifySection(enabled=False), request=NotifySection()) is None


def test_an_empty_channel_in_a_layer_clears_the_default() -> None:
    got = run_notify_options(DEFAULTS, request=NotifySection(slack_channel=""))
    assert got is not None and got["slack_channel"] == "" and got["webhooks"] == ["https://hooks.example/a"]


def test_the_ui_base_falls_back_to_the_callers() -> None:
    got = run_notify_options(Settings(notify_slack_channel="#g"), ui_base_url="http://localhost:8233")
    assert got is not None and got["ui_base_url"] == "http://localhost:8233"


def test_settings_read_the_notify_variables() -> None:
    s = Settings.from_env({"ITERLOOP_NOTIFY_SLACK_CHANNEL": "#growth",
                           "ITERLOOP_NOTIFY_WEBHOOKS": "https://a.example/h, https://b.example/h",
                           "ITERLOOP_NOTIFY_EVENTS": "run_failed gate_opened",
                           "ITERLOOP_TEMPORAL_UI_URL": "https://ui.example/"})
    assert (s.notify_slack_channel, s.notify_webhooks, s.notify_events, s.ui_url) == (
        "#growth", ("https://a.example/h", "https://b.example/h"), ("run_failed", "gate_opened"), "https://ui.example")


def test_an_unknown_event_name_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="ITERLOOP_NOTIFY_EVENTS.*gate_open"):
        Settings.from_env({"ITERLOOP_NOTIFY_EVENTS": "gate_open"})


def test_describe_notify() -> None:
    assert describe_notify({"slack_channel": "#g", "webhooks": ["a", "b"], "events": ["run_failed"]}) == (
        "Slack #g and 2 webhooks (run_failed)")


def test_a_preset_carries_its_notify_section(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("notify:\n  slack_channel: '#growth'\n  webhooks: ['${ITERLOOP_WEBHOOK_GROWTH}']\n")
    assert load_preset(path).preset.notify == NotifySection(slack_channel="#growth", webhooks=["${ITERLOOP_WEBHOOK_GROWTH}"])


def test_a_misspelt_notify_key_is_a_preset_error(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("notify:\n  slack_chanel: '#growth'\n")
    with pytest.raises(PresetError, match="slack_chanel"):
        load_preset(path)
