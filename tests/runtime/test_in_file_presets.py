"""`--config NAME` picks a preset the workflow file declares (`presets:`, Iterion's form).

Pure tests: no server. Files always win over preset names (tests/runtime/test_presets.py covers
the YAML presets themselves).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dsl
from runtime.presets import PresetError, prepare_run

SOURCE = """\
vars:
  topic: string = "general"
presets:
  quick:
    topic: "rate limiting"
agent a:
  model: "m"
workflow w:
  entry: a
  a -> done
"""


@pytest.fixture
def workflow() -> dsl.Workflow:
    result = dsl.check_source(SOURCE)
    assert result.ok and result.workflow is not None
    return result.workflow


def test_a_bare_name_runs_the_files_own_preset(workflow: dsl.Workflow, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    prepared = prepare_run(Path("quick"), workflow, skip_gates=False, stop_after=[])
    assert prepared.inputs == {"topic": "rate limiting"}
    assert prepared.workflow is workflow
    assert any("preset quick" in note for note in prepared.notes)


def test_an_unknown_name_lists_the_files_presets(workflow: dsl.Workflow, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PresetError, match="its presets: quick"):
        prepare_run(Path("quik"), workflow, skip_gates=False, stop_after=[])


def test_a_file_of_that_name_wins_over_the_preset(workflow: dsl.Workflow, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").write_text("vars:\n  topic: from the file\n")
    prepared = prepare_run(Path("quick"), workflow, skip_gates=False, stop_after=[])
    assert prepared.inputs == {"topic": "from the file"}
