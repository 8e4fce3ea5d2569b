"""Issue 18's acceptance: the real Claude Code CLI, in a project where `iterloop skill install`
put the skill, offers the model the `iterloop` skill.

`claude -p` (the version the Makefile pins; `make setup` installs it into .tools/node/) runs in a
fresh project against the local fake of the Messages API (tests/fakes/llm_servers.py, which
streams as the CLI asks), with HOME a fresh directory and an environment built from scratch, so no
user configuration, user skill or real key leaks in. What the CLI sent the model is the evidence:
its first request lists `iterloop`, with SKILL.md's description, among the skills available to
its `Skill` tool; when the model calls that tool, the next request carries SKILL.md's body. A
project without the skill is the control: the same listing, without `iterloop`.

The pinned version asks for nothing but `POST /v1/messages` (streamed) with
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1; `test_the_cli_calls_only_the_messages_api` names any
other endpoint a new pin starts to call, so the fake can learn it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.llm_servers import TEST_API_KEY, FakeAnthropic, Recorded, Reply, ToolUse

from runtime.claude_code import LOCAL_INSTALL, ClaudeCodeNotFound, find_claude_binary
from runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Write an .iter workflow that plans a growth experiment, runs it and reviews the result."
ANSWER = "Here is growth.iter; `iterloop validate growth.iter` accepts it."
#: How the pinned version introduces the skills its `Skill` tool can load (one `- name: description`
#: line each); a new pin that words it differently fails `listed_skills` with the request's text.
LISTING_HEADER = "skills are available for use with the Skill tool"
CLAUDE_TIMEOUT = 120


@dataclass
class Session:
    """One `claude -p` run: its exit code and output, and every request the fake received."""

    returncode: int
    stdout: str
    stderr: str
    requests: list[Recorded]

    def result(self) -> dict[str, Any]:
        assert self.returncode == 0, f"claude exited {self.returncode}\nstdout: {self.stdout[-2000:]}\n" \
                                     f"stderr: {self.stderr[-3000:]}"
        return json.loads(self.stdout)


@pytest.fixture(scope="module")
def claude() -> Path:
    try:
        # The pinned version, never a user's own on PATH (which `find_claude_binary` prefers).
        return find_claude_binary(Settings(claude_bin=str(LOCAL_INSTALL)))
    except ClaudeCodeNotFound as e:  # never a skip: `make test` runs `make setup`, which installs it
        problem = str(e)
    pytest.fail(f"this test runs the real Claude Code CLI: {problem}", pytrace=False)


def install_skill(project: Path) -> None:
    project.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "cli", "skill", "install", "--dir", str(project)], cwd=project,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"iterloop skill install failed:\n{done.stdout}\n{done.stderr}"


def run_claude(claude: Path, project: Path, home: Path, *replies: Reply) -> Session:
    home.mkdir(parents=True, exist_ok=True)
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        fake.queue(*replies)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
               "TMPDIR": str(home), **fake.env(), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        done = subprocess.run([str(claude), "-p", PROMPT, "--output-format", "json"], cwd=project, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CLAUDE_TIMEOUT,
                              check=False)
        return Session(done.returncode, done.stdout, done.stderr, list(fake.requests))


@pytest.fixture(scope="module")
def with_skill(claude: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Session, Path]:
    """The model loads the skill (a `Skill` tool call), then answers; with the installed SKILL.md."""
    root = tmp_path_factory.mktemp("claude-with-skill")
    install_skill(root / "project")
    session = run_claude(claude, root / "project", root / "home",
                         Reply(tool_calls=[ToolUse("Skill", {"skill": "iterloop"})]), Reply(text=ANSWER))
    return session, root / "project" / ".claude" / "skills" / "iterloop" / "SKILL.md"


@pytest.fixture(scope="module")
def without_skill(claude: Path, tmp_path_factory: pytest.TempPathFactory) -> Session:
    root = tmp_path_factory.mktemp("claude-without-skill")
    (root / "project").mkdir()
    return run_claude(claude, root / "project", root / "home", Reply(text=ANSWER))


# -- reading what the CLI sent -----------------------------------------------------------------------


def request_texts(body: dict[str, Any]) -> list[str]:
    """Every text of a Messages API request: system blocks, message blocks (tool results too) and
    tool descriptions, wherever a CLI version chooses to put its skill listing."""
    def texts(content: Any) -> list[str]:
        if isinstance(content, str):
            return [content]
        found: list[str] = []
        for block in content or []:
            if block.get("type") == "text":
                found.append(block["text"])
            elif block.get("type") == "tool_result":
                found.extend(texts(block.get("content")))
        return found

    every = texts(body.get("system"))
    for message in body.get("messages") or []:
        every.extend(texts(message.get("content")))
    every.extend(tool.get("description", "") for tool in body.get("tools") or [])
    return every


def listed_skills(request: Recorded) -> dict[str, str]:
    """The skills the request offers the model (name → description), from the listing's lines."""
    for text in request_texts(request.body):
        _, header, rest = text.partition(LISTING_HEADER)
        if not header:
            continue
        skills: dict[str, str] = {}
        for line in rest.splitlines()[1:]:
            if line.startswith("- "):
                name, _, description = line[2:].partition(": ")
                skills[name] = description
            elif skills:
                break
        return skills
    mentions = [text[max(0, i - 200):i + 300] for text in request_texts(request.body)
                for i in [text.find("skill")] if i >= 0]
    pytest.fail(f"no skill listing ('{LISTING_HEADER}') in the request; the texts that mention skills:\n"
                + "\n---\n".join(mentions))


def front_matter(skill_md: Path) -> tuple[dict[str, Any], str]:
    """SKILL.md's YAML front matter and its body."""
    _, head, body = skill_md.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(head), body


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- the checks ---------------------------------------------------------------------------------------


def test_claude_exits_0_with_the_fakes_answer(with_skill: tuple[Session, Path]) -> None:
    session, _ = with_skill
    result = session.result()
    assert result["is_error"] is False and result["result"] == ANSWER, result
    assert all(r.body.get("stream") is True for r in session.requests)  # the streaming fake answered


def test_the_first_request_lists_the_iterloop_skill(with_skill: tuple[Session, Path]) -> None:
    session, skill_md = with_skill
    session.result()
    meta, _ = front_matter(skill_md)
    listed = listed_skills(session.requests[0])
    assert "iterloop" in listed, f"`iterloop` is not among the skills Claude Code offered: {sorted(listed)}"
    assert meta.get("description"), f"{skill_md} has no `description` in its front matter: {meta}"
    shown, written = one_line(listed["iterloop"]), one_line(meta["description"])
    cut = shown.endswith("…") and written.startswith(shown[:-1])
    assert not cut, (f"Claude Code shows only the first {len(shown) - 1} of the description's {len(written)} "
                     "characters; shorten SKILL.md's description so the model sees all of it")
    assert shown == written, f"the listing's description differs from SKILL.md's\n  listed:   {shown}\n" \
                             f"  SKILL.md: {written}"


def test_the_skill_tool_loads_skill_md_into_the_conversation(with_skill: tuple[Session, Path]) -> None:
    session, skill_md = with_skill
    session.result()
    assert len(session.requests) == 2, [r.path for r in session.requests]
    _, body = front_matter(skill_md)
    sent = "\n".join(request_texts(session.requests[1].body))
    opening = [line for line in body.splitlines() if line.strip()][:3]
    missing = [line for line in opening if line not in sent]
    assert not missing, f"SKILL.md's opening lines did not reach the model after the Skill call: {missing}"


def test_a_project_without_the_skill_is_offered_no_iterloop(without_skill: Session) -> None:
    """The control: the listing is there, so the checks above are not vacuous, and names no iterloop."""
    assert without_skill.result()["result"] == ANSWER
    listed = listed_skills(without_skill.requests[0])
    assert listed and "iterloop" not in listed, sorted(listed)


def test_the_cli_calls_only_the_messages_api(with_skill: tuple[Session, Path], without_skill: Session) -> None:
    calls = {(r.method, r.path) for r in [*with_skill[0].requests, *without_skill.requests]}
    assert calls == {("POST", "/v1/messages")}, f"teach tests/fakes/llm_servers.py these: {calls}"
