"""Token streams: Iterion's pinned cases plus iterloop's deliberate lexical changes."""

from __future__ import annotations

from dsl.lexer import DEDENT, EOF, FLOAT, IDENT, INDENT, INT, NEWLINE, PROMPTLINE, PUNCT, STRING, lex


def kinds(src: str) -> list[tuple[str, str]]:
    return [(t.kind, t.value) for t in lex(src).tokens]


def test_basic_token_stream_matches_iterion() -> None:
    assert kinds('agent foo:\n  model: "gpt-4"\n') == [
        (IDENT, "agent"), (IDENT, "foo"), (PUNCT, ":"), (NEWLINE, ""), (INDENT, ""),
        (IDENT, "model"), (PUNCT, ":"), (STRING, "gpt-4"), (NEWLINE, ""), (DEDENT, ""), (EOF, ""),
    ]


def test_any_deeper_indentation_opens_one_level() -> None:
    toks = [k for k, _ in kinds("a:\n  b:\n    c\n  d\ne\n")]
    assert toks.count(INDENT) == 2 and toks.count(DEDENT) == 2


def test_prompt_body_lines_are_promptlines_and_blank_lines_are_kept() -> None:
    toks = lex("prompt p:\n  First line.\n\n    indented {{input.x}} ## not a comment\n\nagent a:\n").tokens
    lines = [t.value for t in toks if t.kind == PROMPTLINE]
    assert lines == ["First line.", "", "  indented {{input.x}} ## not a comment"]


def test_prompt_body_may_start_with_hashes_and_prompt_name_may_be_a_keyword() -> None:
    toks = lex("prompt input:\n  ## Heading\n  text\n").tokens
    assert [t.value for t in toks if t.kind == PROMPTLINE] == ["## Heading", "text"]


def test_comments_are_collected_not_tokens() -> None:
    result = lex("## This is a comment\nagent a:\n  model: \"m\"  ## inline\n")
    assert [(c.text, c.inline, c.pos.line) for c in result.comments] == [
        ("This is a comment", False, 1), ("inline", True, 3)]
    assert all(t.kind != "COMMENT" for t in result.tokens)


def test_string_list_type_is_one_token_only_without_space() -> None:
    assert (IDENT, "string[]") in kinds("x: string[]\n")
    assert kinds("x: string []\n")[2:5] == [(IDENT, "string"), (PUNCT, "["), (PUNCT, "]")]


def test_numbers() -> None:
    assert kinds("1.5 1. 1e6 -3 -2.5\n")[:7] == [
        (FLOAT, "1.5"), (INT, "1"), (PUNCT, "."), (INT, "1"), (IDENT, "e6"), (INT, "-3"), (FLOAT, "-2.5")]


def test_string_escapes_are_kept_verbatim() -> None:
    assert kinds('"a\\"b"\n')[0] == (STRING, 'a\\"b')


def test_unterminated_string_is_e004_at_the_quote() -> None:
    result = lex('  x: "abc\n')
    assert [(d.code, d.line, d.column) for d in result.diagnostics] == [("E004", 1, 6)]


def test_crlf_is_accepted() -> None:
    assert kinds('agent a:\r\n  model: "m"\r\n') == kinds('agent a:\n  model: "m"\n')


def test_tab_indentation_is_e003_once() -> None:
    result = lex("a:\n\tb: 1\n\tc: 2\n")
    assert [d.code for d in result.diagnostics] == ["E003"]


def test_bad_characters_are_e001_with_a_hint() -> None:
    result = lex("my-node # x 'y'\n")
    codes = [(d.code, d.column) for d in result.diagnostics]
    assert codes == [("E001", 1), ("E001", 9), ("E001", 13), ("E001", 15)]
    assert "my_node" in result.diagnostics[0].hint
    assert [t.value for t in result.tokens if t.kind == IDENT] == ["my_node", "x", "y"]


def test_lines_inside_brackets_join_without_layout_tokens() -> None:
    toks = [k for k, _ in kinds("a:\n  tools: [\n    x,\n    y]\n  b: 1\n")]
    assert toks.count(INDENT) == 1 and toks.count(DEDENT) == 1


def test_lone_dash_is_reported_with_arrow_hint() -> None:
    result = lex("a - b\n")
    assert [(d.code, d.column) for d in result.diagnostics] == [("E001", 3)]
    assert "'->'" in result.diagnostics[0].hint


def test_arrow_and_inconsistent_dedent() -> None:
    assert (PUNCT, "->") in kinds("a -> b\n")
    result = lex("a:\n    b\n  c\n")
    assert [d.code for d in result.diagnostics] == ["E003"]


def test_trailing_dedents_then_eof() -> None:
    toks = lex("a:\n  b:\n    c\n").tokens
    assert [t.kind for t in toks[-3:]] == [DEDENT, DEDENT, EOF]
