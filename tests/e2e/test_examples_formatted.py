"""Every shipped example is in the canonical layout: `iterloop fmt --check` passes on each one.

Users copy the examples; a copy that `fmt --check` (in their pre-commit hook or CI) would rewrite
is a bad first impression, and it means the formatter and the examples drifted apart.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.iter"))


def test_there_are_examples_to_check() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_fmt_check_passes_on_the_shipped_example(path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cli", "fmt", "--check", str(path)], cwd=ROOT, check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"`iterloop fmt {path.relative_to(ROOT)}` would change it:\n{result.stdout}"
