"""The agent skill: `iterloop skill install` and `iterloop skill generate`.

The skill (SKILL.md, references/, examples/) teaches coding agents to write `.iter` workflows.
Its canonical place is `skills/iterloop/` at the repository root, where the `skills` installer
(`npx skills add … --skill iterloop`) and Claude Code's plugin layout look for it. The Python
package ships the same files: pyproject.toml maps the package `runtime.skill_files` onto that
directory (`[tool.setuptools.package-dir]`), so a wheel holds them under `runtime/skill_files/`.
`skill_source` therefore looks there first (an installed package) and then at the checkout, with
one copy of the files in the repository and no symlink.

Part of the skill is generated from the code (`GENERATED`: diagnostics, properties, builtin
tools); `generate_skill` rewrites those files in the checkout, and tests/skill/ fails when the
committed files and the code disagree. The builtin tools' schemas come from the activities, which
the runtime may not import, so the caller (cli.py) passes them in.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from runtime.command_errors import EXIT_FAILED, EXIT_OK, UsageError
from runtime.skill_reference import diagnostics_reference, properties_reference
from runtime.skill_tools import tools_reference
from workflows.contract.tool_docs import BuiltinToolSchema

SKILL_NAME = "iterloop"
_HERE = Path(__file__).resolve().parent
#: Where a built package keeps the skill (pyproject.toml maps `runtime.skill_files` to skills/iterloop).
PACKAGED_SKILL = _HERE / "skill_files"
#: The repository root of a source checkout, and the skill's canonical place in it.
REPO_ROOT = _HERE.parent
CHECKOUT_SKILL = REPO_ROOT / "skills" / SKILL_NAME

#: Generated file (relative to the skill) → what renders it from the tools' schemas and
#: docs/language.md's text.
GENERATED: dict[str, Callable[[list[BuiltinToolSchema], str], str]] = {
    "references/diagnostics.md": lambda _tools, language_doc: diagnostics_reference(language_doc),
    "references/properties.md": lambda _tools, _doc: properties_reference(),
    "references/builtin-tools.md": lambda tools, _doc: tools_reference(tools),
}

#: What an installation is made of: everything in the skill directory but caches.
_IGNORED_PARTS = {"__pycache__", ".DS_Store"}


def skill_source() -> Path:
    """The skill directory this iterloop carries: the packaged copy, else the checkout's."""
    for candidate in (PACKAGED_SKILL, CHECKOUT_SKILL):
        if (candidate / "SKILL.md").is_file():
            return candidate
    raise UsageError(f"the iterloop skill is missing from this installation (looked in {PACKAGED_SKILL} and "
                     f"{CHECKOUT_SKILL}); reinstall iterloop")


def skill_files(directory: Path) -> dict[str, bytes]:
    """Relative path (POSIX) → content of every file of a skill directory."""
    return {path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*"))
            if path.is_file() and not _IGNORED_PARTS & set(path.relative_to(directory).parts)}


# -- generate --------------------------------------------------------------------------------------


def generated_files(tools: list[BuiltinToolSchema], language_doc: str) -> dict[str, str]:
    """Every generated file of the skill, rendered in memory (relative path → text)."""
    return {path: render(tools, language_doc) for path, render in GENERATED.items()}


def language_doc_text(root: Path = REPO_ROOT) -> str:
    """docs/language.md of a source checkout (the diagnostics' causes and examples come from it)."""
    path = root / "docs" / "language.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise UsageError(f"`iterloop skill generate` runs in a source checkout of iterloop: {path} is missing"
                         ) from None


def generate_skill(tools: list[BuiltinToolSchema], *, check: bool = False, as_json: bool = False,
                   skill_dir: Path = CHECKOUT_SKILL, language_doc: str | None = None) -> int:
    """Rewrite the generated files of ``skill_dir`` (only those that change); with ``check``, write
    nothing and exit 1 if any is out of date."""
    if not (skill_dir / "SKILL.md").is_file():
        raise UsageError(f"`iterloop skill generate` runs in a source checkout of iterloop: {skill_dir}/SKILL.md "
                         "is missing")
    wanted = generated_files(tools, language_doc if language_doc is not None else language_doc_text())
    statuses: dict[str, str] = {}
    for relative, text in wanted.items():
        path = skill_dir / relative
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            statuses[relative] = "unchanged"
        elif check:
            statuses[relative] = "out_of_date"
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            statuses[relative] = "written"
    stale = [p for p, s in statuses.items() if s == "out_of_date"]
    code = EXIT_FAILED if stale else EXIT_OK
    if as_json:
        print(json.dumps({"directory": str(skill_dir), "check": check,
                          "files": [{"path": p, "status": s} for p, s in statuses.items()], "exit_code": code},
                         indent=2))
    else:
        for relative, status in statuses.items():
            print(f"{status.replace('_', ' ')}: {skill_dir / relative}")
        if stale:
            print("run `iterloop skill generate` to update them")
    return code


# -- install ---------------------------------------------------------------------------------------


def install_target(project: Path) -> Path:
    """Where Claude Code looks for a project's skills: PROJECT/.claude/skills/iterloop."""
    return project / ".claude" / "skills" / SKILL_NAME


def install_skill(project: Path, *, force: bool = False, as_json: bool = False) -> int:
    """Copy the skill into ``project``'s `.claude/skills/iterloop/`. An identical copy is left as it
    is; a different one (an older iterloop's, or edited) is replaced only with ``force``."""
    source = skill_source()
    files = skill_files(source)
    target = install_target(project)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory")
    if target.is_dir() and skill_files(target) == files:
        status = "unchanged"
    elif target.is_dir() and not force:
        raise UsageError(f"{target} holds a different copy of the skill; give --force to replace it")
    else:
        status = "replaced" if target.is_dir() else "installed"
        _copy_atomically(files, target)
    if as_json:
        print(json.dumps({"directory": str(target), "status": status, "source": str(source),
                          "files": sorted(files), "exit_code": EXIT_OK}, indent=2))
    else:
        verb = {"installed": "installed", "replaced": "replaced", "unchanged": "already up to date:"}[status]
        print(f"{verb} the iterloop skill in {target} ({len(files)} files)")
    return EXIT_OK


def _copy_atomically(files: dict[str, bytes], target: Path) -> None:
    """Write ``files`` beside ``target`` first, then swap, so a failed copy never leaves half a skill."""
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{SKILL_NAME}.", dir=target.parent))
        for relative, content in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        if target.is_symlink():  # `npx skills add` links a shared copy: replace the link, keep that copy
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        staging.rename(target)
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"cannot write the skill to {target}: {exc.strerror or exc}") from None
