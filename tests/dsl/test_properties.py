"""`dsl.properties` lists exactly the properties the parser reads, block by block.

The table is what the agent skill's property reference is generated from, so it must follow the
parser: the test records the property names the parser's readers accept while it parses a file
holding every kind of block, and compares them with the table.
"""

from __future__ import annotations

from typing import Any

import pytest

from dsl import parser
from dsl.properties import BLOCK_PROPERTIES

EVERY_BLOCK = """\
mcp_server s:
  transport: http
  url: "http://x"
agent a:
  model: "m"
  mcp:
    servers: [s]
judge j:
  model: "m"
router r:
  mode: fan_out_all
join jn:
  strategy: wait_all
human h:
  interaction: human
tool t:
  command: "true"
wait w1:
  duration: "1h"
compute c:
  input: s
  output: s
  await: wait_all
  expr:
    x: "1"
subbot sb:
  bot: "child.iter"
workflow w:
  entry: a
  mcp:
    servers: [s]
  budget:
    max_tokens: 1
  a -> done
"""


def _owner_kind(owner: str) -> str:
    """The block kind of a parser owner string ('agent a', the mcp block of …, the budget)."""
    if owner.startswith("the mcp block"):
        return "mcp"
    if owner == "the budget":
        return "budget"
    return owner.strip("'").split()[0]


@pytest.fixture
def accepted(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    original = parser._Parser.props

    def recording(self: Any, owner: str, target: Any, handlers: dict[str, Any], *ignored: Any) -> Any:
        seen.setdefault(_owner_kind(owner), set()).update(handlers)
        return original(self, owner, target, handlers, *ignored)

    monkeypatch.setattr(parser._Parser, "props", recording)
    _tree, diagnostics = parser.parse(EVERY_BLOCK)
    assert not diagnostics, [d.render() for d in diagnostics]
    return seen


@pytest.mark.parametrize("kind", sorted(set(BLOCK_PROPERTIES) - {"workflow"}))
def test_the_table_lists_exactly_what_the_parser_reads(accepted: dict[str, set[str]], kind: str) -> None:
    assert {p.name for p in BLOCK_PROPERTIES[kind]} == accepted[kind]


def test_every_block_the_parser_reads_properties_of_is_in_the_table(accepted: dict[str, set[str]]) -> None:
    assert set(accepted) <= set(BLOCK_PROPERTIES)


def test_workflow_properties_match_the_parser() -> None:
    assert {p.name for p in BLOCK_PROPERTIES["workflow"]} == set(parser._WORKFLOW_PROPS)


def test_every_property_says_what_to_write_and_what_it_does() -> None:
    for kind, properties in BLOCK_PROPERTIES.items():
        names = [p.name for p in properties]
        assert len(names) == len(set(names)), kind
        assert all(p.value and p.meaning for p in properties), kind
