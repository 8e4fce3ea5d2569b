"""Reading the YAML/JSON files users point iterloop at: each failure names the file, what went
wrong and where, in the caller's words and error class."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.llm.pricing import PriceFileError, PriceTable
from workflows.contract.data_files import read_data_file
from workflows.contract.scripts import ScriptLoadError, load_script


class RecipeError(ValueError):
    pass


def read(path: Path) -> object:
    return read_data_file(path, what="recipe file", missing_hint="check --recipe", error=RecipeError)


def test_yaml_and_json_are_parsed_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("a: [1, 2]\n", encoding="utf-8")
    (tmp_path / "r.json").write_text('{"a": [1, 2]}', encoding="utf-8")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    assert read(tmp_path / "r.yaml") == read(tmp_path / "r.json") == {"a": [1, 2]}
    assert read(tmp_path / "empty.yaml") is None


def test_a_missing_file_is_the_callers_error_with_its_hint(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"recipe file '.*nope\.yaml' does not exist; check --recipe"):
        read(tmp_path / "nope.yaml")


def test_an_unreadable_file_says_why(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"a: caf\xe9\n")
    with pytest.raises(RecipeError, match=r"cannot read recipe file '.*latin1\.yaml': .*utf-8"):
        read(tmp_path / "latin1.yaml")
    with pytest.raises(RecipeError, match="cannot read recipe file"):
        read(tmp_path)  # a directory


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("bad.yaml", "a:\n  b: [unclosed\n", r"recipe file '.*bad\.yaml:3:1' is not valid YAML: "),
    ("bad.json", '{"a": 1,\n "b": }', r"recipe file '.*bad\.json:2:7' is not valid JSON: Expecting value"),
])
def test_a_syntax_error_names_line_and_column(tmp_path: Path, name: str, text: str, problem: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError, match=problem):
        read(tmp_path / name)


def test_price_files_and_scripts_report_syntax_errors_with_their_position(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"models": {\n  "m": {"input": 1,}}}', encoding="utf-8")
    with pytest.raises(PriceFileError, match=r"price file '.*prices\.json:2:\d+' is not valid JSON"):
        PriceTable.load(prices)
    script = tmp_path / "script.yaml"
    script.write_text("planner: {a: 1\n", encoding="utf-8")
    with pytest.raises(ScriptLoadError, match=r"script file '.*script\.yaml:\d+:\d+' is not valid YAML"):
        load_script(script)
