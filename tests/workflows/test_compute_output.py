"""A compute node's output, without Temporal: the pure part of `workflows/nodes/compute.py`."""

from __future__ import annotations

import pytest
import runs

from workflows.inputs import DataContext
from workflows.nodes.base import NodeFailed
from workflows.nodes.compute import compute_output


def test_a_computed_output_is_checked_against_the_output_schema() -> None:
    wf = runs.compile_ok('schema n:\n  count: int\ncompute c:\n  output: n\n  expr:\n    count: "\'three\'"\n'
                         "workflow w:\n  entry: c\n  c -> done\n")
    with pytest.raises(NodeFailed, match="output does not match its schema 'n': field 'count' expected"):
        compute_output(wf.nodes["c"], wf, {}, DataContext())  # type: ignore[arg-type]


def test_fields_read_the_input_the_edge_mapped_and_the_run_data() -> None:
    wf = runs.compile_ok('vars:\n  k: int = 10\ncompute c:\n  expr:\n    total: "sum(input.xs) * vars.k"\n'
                         '    names: "map(input.people, upper(item.name))"\nworkflow w:\n  entry: c\n  c -> done\n')
    out = compute_output(wf.nodes["c"], wf, {"xs": [1, 2], "people": [{"name": "ada"}]},  # type: ignore[arg-type]
                         DataContext(vars={"k": 10}))
    assert out == {"total": 30, "names": ["ADA"]}
