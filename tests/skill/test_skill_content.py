"""The agent skill (skills/iterloop/) says what the code does: its examples validate cleanly, its
catalogues list every diagnostic code, builtin tool and property, its generated files are the ones
the code renders today, and its front matter is what Claude Code and the `skills` installer accept."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

import dsl
from activities.tools.registry import tool_schemas
from dsl.diagnostics import CODES
from dsl.properties import BLOCK_PROPERTIES
from runtime import skill
from runtime.language_commands import compile_options
from runtime.skill_tools import describe
from workflows.contract.tool_catalog import BUILTIN_TOOLS

SKILL = skill.CHECKOUT_SKILL
EXAMPLES = sorted((SKILL / "examples").glob("*.iter"))
TESTS = Path(__file__).resolve().parents[1]


def reference(name: str) -> str:
    return (SKILL / "references" / name).read_text(encoding="utf-8")


def front_matter() -> dict[str, object]:
    text = (SKILL / "SKILL.md").read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "SKILL.md starts with YAML front matter between --- lines"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict)
    return data


# -- examples ---------------------------------------------------------------------------------------


def test_the_skill_has_at_least_ten_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_validates_without_errors_or_warnings(path: Path) -> None:
    result = dsl.check_file(path, options=compile_options(default_model=""))
    assert result.ok and not result.diagnostics, [d.render() for d in result.diagnostics]


def test_skill_md_lists_every_example_and_names_only_files_that_exist() -> None:
    text = (SKILL / "SKILL.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:examples|references)/[\w.-]+)`", text))
    assert {f"examples/{p.name}" for p in EXAMPLES} <= named
    missing = sorted(n for n in named if not (SKILL / n).is_file())
    assert not missing, missing


def test_every_pattern_names_an_example_that_exists() -> None:
    named = set(re.findall(r"`examples/([\w.-]+\.iter)`", reference("patterns.md")))
    assert len(named) >= 10
    assert named <= {p.name for p in EXAMPLES}


# -- catalogues -------------------------------------------------------------------------------------


def emittable_codes() -> set[str]:
    """The codes tests/dsl/test_diagnostic_codes.py shows the validator emitting (its own rule)."""
    spec = importlib.util.spec_from_file_location("diagnostic_code_cases", TESTS / "dsl" / "test_diagnostic_codes.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {case[0] for case in module.CASES} | {"C024", "C105", "C018", "E100"}


def test_the_diagnostics_catalogue_is_every_code_the_validator_emits() -> None:
    documented = set(re.findall(r"^## ([EC]\d{3}) — ", reference("diagnostics.md"), re.MULTILINE))
    assert documented == set(CODES)
    assert emittable_codes() <= documented


def test_every_code_in_the_catalogue_has_a_cause_and_a_fix() -> None:
    text = reference("diagnostics.md")
    for code, info in CODES.items():
        section = text.split(f"## {code} — ", 1)[1].split("\n## ", 1)[0]
        assert info.hint in section, code
        assert re.search(r"\*(error|warning) · \w+", section), f"{code}: no cause"
        assert "Fix" in section, f"{code}: no fix (docs/language.md §10.3)"


def test_every_builtin_tool_is_documented_with_its_arguments() -> None:
    text = reference("builtin-tools.md")
    for tool in tool_schemas():
        assert f"## `{tool.name}`" in text
        section = text.split(f"## `{tool.name}`", 1)[1].split("\n## ", 1)[0]
        for argument in tool.input_schema.get("properties", {}):
            assert f"| `{argument}` |" in section, (tool.name, argument)
    assert {t.name for t in tool_schemas()} == set(BUILTIN_TOOLS)


def test_every_property_of_every_block_is_documented() -> None:
    text = reference("properties.md")
    sections = text.split("\n## ")
    for kind, properties in BLOCK_PROPERTIES.items():
        [section] = [s for s in sections if s.startswith((f"`{kind} ", f"`{kind}:"))]
        for prop in properties:
            assert f"| `{prop.name}` |" in section, (kind, prop.name)


def test_the_generated_files_match_the_code() -> None:
    wanted = skill.generated_files(tool_schemas(), skill.language_doc_text())
    stale = [path for path, text in wanted.items() if (SKILL / path).read_text(encoding="utf-8") != text]
    assert not stale, (f"{', '.join(stale)} in skills/iterloop/ disagree with the code: run `iterloop skill generate` "
                       "(or `.venv/bin/python -m cli skill generate`) and commit the result")


def test_every_generated_file_says_it_is_generated() -> None:
    for path in skill.GENERATED:
        assert (SKILL / path).read_text(encoding="utf-8").startswith("<!-- Generated by `iterloop skill generate`")


# -- front matter -----------------------------------------------------------------------------------


def test_front_matter_has_a_valid_name_matching_the_directory() -> None:
    name = front_matter()["name"]
    assert isinstance(name, str)
    assert re.fullmatch(r"[a-z0-9-]{1,64}", name)
    assert name == SKILL.name == skill.SKILL_NAME


def test_front_matter_description_says_when_to_use_it_within_the_limit() -> None:
    description = front_matter()["description"]
    assert isinstance(description, str)
    assert 0 < len(description) <= 1024
    assert "<" not in description and ">" not in description  # XML-like tags are refused
    for word in (".iter", "validate", "run"):
        assert word in description


# -- the JSON Schema phrases of the tool reference ---------------------------------------------------


def test_describe_renders_bounds_lists_enums_and_nullables() -> None:
    assert describe({"type": "integer", "minimum": 1, "maximum": 366}, {}) == "integer, ≥ 1, ≤ 366"
    assert describe({"type": "array", "items": {"type": "string"}}, {}) == "list of string"
    assert describe({"enum": ["a", "b"]}, {}) == '"a" \\| "b"'
    assert describe({"anyOf": [{"type": "string"}, {"type": "null"}]}, {}) == "string (or null)"
    defs = {"Choice": {"properties": {"name": {}, "settings": {}}}}
    assert describe({"$ref": "#/$defs/Choice"}, defs) == "object {name, settings}"


def test_generate_rewrites_only_stale_files_and_check_writes_nothing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "iterloop"
    for relative, content in skill.skill_files(SKILL).items():
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_bytes(content)
    (copy / "references" / "properties.md").write_text("stale\n", encoding="utf-8")
    tools, doc = tool_schemas(), skill.language_doc_text()

    assert skill.generate_skill(tools, check=True, skill_dir=copy, language_doc=doc) == 1
    assert "out of date" in capsys.readouterr().out
    assert (copy / "references" / "properties.md").read_text(encoding="utf-8") == "stale\n"

    assert skill.generate_skill(tools, skill_dir=copy, language_doc=doc) == 0
    out = capsys.readouterr().out
    assert "written: " in out and out.count("unchanged: ") == len(skill.GENERATED) - 1
    assert skill.skill_files(copy) == skill.skill_files(SKILL)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_in_the_canonical_layout(path: Path) -> None:
    from dsl.unparse import format_source  # the formatter is imported where it is used, as in runtime

    text = path.read_text(encoding="utf-8")
    assert format_source(text) == text, f"run `iterloop fmt {path.relative_to(SKILL.parents[1])}`"


def test_the_minimal_file_in_skill_md_validates_without_findings() -> None:
    text = (SKILL / "SKILL.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```iter\n(.*?)```", text, re.DOTALL)
    result = dsl.check_source(block, options=compile_options(default_model=""))
    assert result.ok and not result.diagnostics, [d.render() for d in result.diagnostics]
