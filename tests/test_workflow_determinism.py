"""The interpreter's code never reads a clock, randomness, the environment or a file.

The workflow sandbox would refuse such calls at run time, but the worker passes the interpreter
(`workflows/`) through the sandbox (worker.py `PASSTHROUGH_MODULES`: one copy of its code for all
runs instead of one per run). So the rule the sandbox enforced is checked here, on the source:
the interpreter and its node kinds may only use Temporal's deterministic replacements
(`workflow.now()`, `workflow.random()`, `workflow.uuid4()`, `workflow.sleep()`, activities for I/O).
`workflows/contract/` is shared with the clients and the activities (which read script and data files
and the worker's environment) and is checked for the clock and randomness rules only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from worker import PASSTHROUGH_MODULES

ROOT = Path(__file__).resolve().parents[1]
INTERPRETER = sorted([*ROOT.glob("workflows/*.py"), *ROOT.glob("workflows/nodes/*.py")])
CONTRACT = sorted(ROOT.glob("workflows/contract/*.py"))

#: Modules whose mere import in interpreter code means a side effect or nondeterminism.
FORBIDDEN_IMPORTS = {"os", "random", "secrets", "uuid", "time", "socket", "subprocess", "threading",
                     "multiprocessing", "pathlib", "httpx", "requests", "urllib", "shutil", "tempfile"}
#: Calls that read a clock or randomness (a replay would decide differently).
NONDETERMINISTIC_CALLS = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today", "time.time",
                          "time.time_ns", "time.monotonic", "time.perf_counter", "random.random",
                          "uuid.uuid1", "uuid.uuid4", "os.urandom", "os.getenv"}
#: Builtins that do I/O.
IO_BUILTINS = {"open", "input", "print"}


def _dotted(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _problems(path: Path, *, interpreter: bool, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(root)
    found: list[str] = []
    for node in ast.walk(tree):
        if interpreter and isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_IMPORTS:
                    found.append(f"{rel}:{node.lineno}: imports {name}")
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in NONDETERMINISTIC_CALLS or name.endswith((".now", ".utcnow")) and name != "workflow.now":
                found.append(f"{rel}:{node.lineno}: calls {name}() (use workflow.now()/workflow.random())")
            if interpreter and name in IO_BUILTINS:
                found.append(f"{rel}:{node.lineno}: calls {name}() (I/O belongs in an activity)")
        if interpreter and isinstance(node, ast.Attribute) and _dotted(node) == "os.environ":
            found.append(f"{rel}:{node.lineno}: reads os.environ")
    return sorted(found, key=lambda f: int(f.split(":")[1]))


def test_the_interpreter_is_passed_through_the_sandbox() -> None:
    """What this file guards: without the passthrough the sandbox would check these rules itself."""
    assert "workflows" in PASSTHROUGH_MODULES


@pytest.mark.parametrize("path", INTERPRETER, ids=lambda p: str(p.relative_to(ROOT)))
def test_interpreter_code_has_no_clock_randomness_or_io(path: Path) -> None:
    assert _problems(path, interpreter=True) == []


@pytest.mark.parametrize("path", CONTRACT, ids=lambda p: str(p.relative_to(ROOT)))
def test_contract_code_reads_no_clock_or_randomness(path: Path) -> None:
    assert _problems(path, interpreter=False) == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scanner itself: each kind of offence in a file is reported with its line."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom datetime import datetime\nx = datetime.now()\ny = os.environ['A']\n"
                   "open('f')\nfrom temporalio import workflow\nz = workflow.now()\n")
    found = _problems(bad, interpreter=True, root=tmp_path)
    assert found == ["bad.py:1: imports os", "bad.py:3: calls datetime.now() (use workflow.now()/workflow.random())",
                     "bad.py:4: reads os.environ", "bad.py:5: calls open() (I/O belongs in an activity)"]
