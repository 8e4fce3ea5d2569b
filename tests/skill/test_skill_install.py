"""`iterloop skill install` and `iterloop skill generate`, run as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runtime import skill

REPO = Path(__file__).resolve().parents[2]


def iterloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "cli", *args], check=False, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def installed_files(project: Path) -> dict[str, bytes]:
    return skill.skill_files(project / ".claude" / "skills" / "iterloop")


def test_install_copies_the_skill_into_the_current_project(tmp_path: Path) -> None:
    done = iterloop("skill", "install", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert installed_files(tmp_path) == skill.skill_files(skill.CHECKOUT_SKILL)
    assert ".claude/skills/iterloop" in done.stdout and "installed" in done.stdout


def test_install_dir_chooses_the_project(tmp_path: Path) -> None:
    project = tmp_path / "elsewhere"
    done = iterloop("skill", "install", "--dir", str(project), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (project / ".claude" / "skills" / "iterloop" / "SKILL.md").is_file()
    assert not (tmp_path / ".claude").exists()


def test_installing_the_same_copy_again_changes_nothing(tmp_path: Path) -> None:
    assert iterloop("skill", "install", cwd=tmp_path).returncode == 0
    again = iterloop("skill", "install", "--json", cwd=tmp_path)
    assert again.returncode == 0
    assert json.loads(again.stdout)["status"] == "unchanged"


def test_a_different_copy_is_kept_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    assert iterloop("skill", "install", cwd=tmp_path).returncode == 0
    edited = tmp_path / ".claude" / "skills" / "iterloop" / "SKILL.md"
    edited.write_text("my own notes\n", encoding="utf-8")

    refused = iterloop("skill", "install", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "--force" in refused.stderr
    assert edited.read_text(encoding="utf-8") == "my own notes\n"

    forced = iterloop("skill", "install", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert installed_files(tmp_path) == skill.skill_files(skill.CHECKOUT_SKILL)
    assert not [p for p in edited.parent.parent.iterdir() if p.name.startswith(".iterloop.")]  # no staging left


def test_install_json_says_where_and_what(tmp_path: Path) -> None:
    done = iterloop("skill", "install", "--json", "--dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == 0 and doc["status"] == "installed"
    assert Path(doc["directory"]) == tmp_path / ".claude" / "skills" / "iterloop"
    assert "SKILL.md" in doc["files"] and "references/diagnostics.md" in doc["files"]


def test_install_json_reports_a_refusal_as_json(tmp_path: Path) -> None:
    target = tmp_path / ".claude" / "skills" / "iterloop"
    target.mkdir(parents=True)
    (target / "SKILL.md").write_text("other\n", encoding="utf-8")
    done = iterloop("skill", "install", "--json", cwd=tmp_path)
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == 2 and "--force" in doc["error"]


def test_generate_check_finds_the_committed_skill_up_to_date(tmp_path: Path) -> None:
    done = iterloop("skill", "generate", "--check", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {f["status"] for f in json.loads(done.stdout)["files"]} == {"unchanged"}


def test_force_replaces_a_linked_copy_without_touching_what_it_links_to(tmp_path: Path) -> None:
    shared = tmp_path / "shared-skill"
    shared.mkdir()
    (shared / "SKILL.md").write_text("another installer's copy\n", encoding="utf-8")
    link = tmp_path / "project" / ".claude" / "skills" / "iterloop"
    link.parent.mkdir(parents=True)
    link.symlink_to(shared, target_is_directory=True)

    done = iterloop("skill", "install", "--force", "--dir", str(tmp_path / "project"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not link.is_symlink() and installed_files(tmp_path / "project") == skill.skill_files(skill.CHECKOUT_SKILL)
    assert (shared / "SKILL.md").read_text(encoding="utf-8") == "another installer's copy\n"
