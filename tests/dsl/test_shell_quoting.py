"""Where a command's templates sit, read as `sh` reads quotes (dsl/shell_quoting.py), and C116."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsl
from dsl.shell_quoting import template_places

X = "{{vars.x}}"


@pytest.mark.parametrize(("command", "places"), [
    (f"echo {X}", ["unquoted"]),
    (f"echo pre{X}post {X}{X}", ["unquoted", "unquoted", "unquoted"]),
    (f"echo ${{HOME}}{X}", ["unquoted"]),
    (f"echo '{X}'", ["single"]),
    (f"echo 'Result: '{X}", ["unquoted"]),
    (f"sh -c 'echo {X}'", ["single"]),
    (f"sh -c 'echo $1' sh {X}", ["unquoted"]),
    (f'echo "a {X}"', ["double"]),
    (f"""echo "it's" {X}""", ["unquoted"]),  # a ' inside "…" opens nothing
    (f"""echo 'say "hi' {X}""", ["unquoted"]),  # a " inside '…' opens nothing
    (f"echo \\'{X}", ["unquoted"]),  # an escaped quote opens nothing
    (f'echo \\"{X}\\"', ["unquoted"]),  # how a .iter string writes a literal quote
    (f"echo \\{X}", ["escaped"]),
    (f"echo 'a\\' {X}", ["unquoted"]),  # no escapes inside single quotes: the quote closes
    (f'echo "a\\" {X}"', ["double"]),  # \" inside double quotes does not close them
    (f"echo $(printf %s {X})", ["unquoted"]),
    (f'echo "$(printf %s {X})"', ["double"]),
    (f"echo $(echo ')') {X}", ["unquoted"]),  # a quoted ) does not end the substitution
    (f"echo $((1 + (2))) {X}", ["unquoted"]),
    (f"echo `echo {X}`", ["unquoted"]),
    (f"echo hi # don't {X}\necho {X}", ["comment", "unquoted"]),
    (f"a=b#c {X}", ["unquoted"]),  # # inside a word is not a comment
    (f"cat <<EOF\n{X}\nEOF\necho {X}", ["heredoc", "unquoted"]),
    (f"cat <<-'E' | sort\n\tline {X}\n\tE\necho '{X}'", ["heredoc", "single"]),
    (f"cat <<< {X}", ["unquoted"]),  # a here-string is a word
])
def test_each_template_gets_the_quoting_context_sh_gives_it(command: str, places: list[str]) -> None:
    assert [p.place for p in template_places(command)] == places


def test_offsets_and_lengths_point_at_the_templates() -> None:
    command = "echo '{{ vars.x }}' {{vars.y}}"
    found = template_places(command)
    assert [command[p.offset : p.offset + p.length] for p in found] == ["{{ vars.x }}", "{{vars.y}}"]


def test_a_malformed_template_leaves_the_report_to_c004() -> None:
    assert template_places("echo '{{vars.x'") == []


def tool(command: str) -> str:
    return f'vars:\n  x: string = "a"\ntool t:\n  command: "{command}"\nworkflow w:\n  entry: t\n  t -> done\n'


@pytest.mark.parametrize(("command", "what", "fix"), [
    ("sh -c 'echo {{vars.x}}'", "inside single quotes", "sh -c 'echo $1' sh {{vars.x}}"),
    ("echo 'a' 'b {{vars.x}}'", "inside single quotes", "'Result: '{{vars.x}}"),
    ("echo \\{{vars.x}}", "after a backslash", "Remove the backslash"),
])
def test_c116_says_where_the_template_is_and_how_to_write_it(command: str, what: str, fix: str) -> None:
    result = dsl.check_source(tool(command))
    [d] = [d for d in result.diagnostics if d.code == "C116"]
    assert d.severity == "error" and not result.ok
    assert what in d.message and "{{vars.x}}" in d.message and "tool 't'" in d.message
    assert fix in d.hint and d.length == len("{{vars.x}}")


def test_safe_forms_compile_without_c116() -> None:
    for command in ("printf %s {{vars.x}}", "echo 'Result: '{{vars.x}}", "sh -c 'echo $1' sh {{vars.x}}",
                    "test -f {{vars.x}} || { echo 'missing' >&2; exit 3; }", "echo {{vars.x}} ${HOME} # '{{vars.x}}'"):
        result = dsl.check_source(tool(command))
        assert result.ok, [d.render() for d in result.diagnostics]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["'", '"', "\\", "$(", "(", ")", "`", "#", " ", "\n", "<<", "<<-", "<<<", "EOF",
                                 "\t", ";", "a", "$", X]), max_size=30).map("".join))
def test_any_command_gets_one_place_per_template_and_never_an_error(command: str) -> None:
    assert len(template_places(command)) == command.count(X)


@pytest.mark.parametrize(("command", "program"), [
    ("eval {{vars.x}}", "eval"), ("sh -c {{vars.x}}", "sh -c"), ("/bin/bash -c {{vars.x}} x", "bash -c"),
    ("python3 -c {{vars.x}}", "python3 -c"), ("node -e {{vars.x}}", "node -e"),
    ("echo -c {{vars.x}}", None), ("sh -c 'echo $1' sh {{vars.x}}", None), ("sh -c x{{vars.x}}", None),
])
def test_c117_warns_when_a_template_is_the_program_of_an_interpreter(command: str, program: str | None) -> None:
    result = dsl.check_source(tool(command))
    hits = [d for d in result.diagnostics if d.code == "C117"]
    if program is None:
        assert hits == []
        return
    [d] = hits
    assert d.severity == "warning" and result.ok and f"`{program}`" in d.message
