"""The expression language of `compute` nodes and quoted edge conditions (`when "lift > 0.02"`).

Why a language of its own: decisions such as "stop when two reviews in a row approve" or
"route on lift > 2 %" must not need a model or a shell, and they run *inside* the Temporal
workflow, so evaluation has to be pure (no I/O, no clock, no randomness) and bounded (a
malicious or careless expression cannot hang a workflow task or grow its memory). Hence:

* expressions are parsed once, at compile time, into a tree of plain JSON lists that travels in
  the IR (``Expression.tree``), so a run never re-parses and replays see the same data;
* evaluation walks that tree with a step budget, a depth limit and caps on the size of every
  string and list it builds; every failure is an ``ExpressionError`` (never another exception),
  whose message names the expression and the offending value.

Grammar (lowest precedence first)::

    or    := and ( ("||" | "or") and )*
    and   := not ( ("&&" | "and") not )*
    not   := ("!" | "not") not | cmp
    cmp   := add ( ("==" | "!=" | "<" | "<=" | ">" | ">=") add )?
    add   := mul ( ("+" | "-") mul )*
    mul   := unary ( ("*" | "/" | "%") unary )*
    unary := "-" unary | postfix
    postfix := primary ( "." NAME | "[" expr "]" )*
    primary := number | string | true | false | null | "[" items "]" | "{" key: expr, … "}"
             | NAME "(" args ")" | NAME ( "." NAME )* | "(" expr ")"

Strings take single or double quotes (single ones read best inside a `.iter` string).
References: ``vars.X``, ``input.X``, ``outputs.NODE[.FIELD…]``, ``loop.NAME.iteration|max|
previous_output[.FIELD…]``, ``run.id|elapsed_seconds|cost_usd|tokens``, and, inside ``map`` and
``filter``, ``item``. In an edge condition a bare name (``approved``) is a field of the edge
source's output, as in Iterion. A reference to something absent is ``null``.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Limits that keep compile and evaluation cheap whatever the input.
MAX_SOURCE_CHARS = 4_000
MAX_DEPTH = 48  # nesting of the syntax tree
MAX_ITEMS = 10_000  # items of a list or object an expression builds
MAX_STRING_CHARS = 100_000
STEP_BUDGET = 200_000  # evaluation steps (tree nodes visited + items touched by functions)
MAX_INT = 2**63 - 1

NAMESPACES = ("vars", "input", "outputs", "loop", "run")
LOOP_FIELDS = ("iteration", "max", "previous_output")
RUN_FIELDS = ("id", "elapsed_seconds", "cost_usd", "tokens")
KEYWORDS = {"true": True, "false": False, "null": None}
_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}
#: Function → (min args, max args; None = any). ``if``, ``map`` and ``filter`` evaluate lazily.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "length": (1, 1), "concat": (1, None), "unique": (1, 1), "contains": (2, 2), "join": (1, 2),
    "if": (3, 3), "map": (2, 2), "filter": (2, 2), "sum": (1, 1), "min": (1, None), "max": (1, None),
    "round": (1, 2), "floor": (1, 1), "ceil": (1, 1), "abs": (1, 1), "keys": (1, 1), "values": (1, 1),
    "sort": (1, 1), "slice": (2, 3), "flatten": (1, 1), "tail": (1, 1), "first": (1, 1), "last": (1, 1),
    "lower": (1, 1), "upper": (1, 1), "default": (2, 2),
}


class ExpressionError(ValueError):
    """Anything wrong with an expression. ``offset`` (0-based, into the source) is set for
    compile-time errors so the compiler can point a caret at it; ``kind`` is one of "syntax",
    "function", "reference" (compile time) or "runtime"."""

    def __init__(self, message: str, offset: int = 0, kind: str = "runtime") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.kind = kind


# -- lexing -------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Tok:
    kind: str  # "num", "str", "name", "op", "end"
    value: Any
    offset: int


_OPS2 = ("&&", "||", "==", "!=", "<=", ">=")
_DIGITS = frozenset("0123456789")  # str.isdigit() also accepts "¹" and other digits int() refuses
_OPS1 = "+-*/%<>!()[]{},.:"


def _lex(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in _DIGITS:
            j = i
            while j < n and src[j] in _DIGITS:
                j += 1
            is_float = j + 1 < n and src[j] == "." and src[j + 1] in _DIGITS
            if is_float:
                j += 1
                while j < n and src[j] in _DIGITS:
                    j += 1
            if j < n and src[j] in "eE" and (j + 1 < n and (src[j + 1] in _DIGITS or
                                                            (src[j + 1] in "+-" and j + 2 < n and src[j + 2] in _DIGITS))):
                is_float = True
                j += 2
                while j < n and src[j] in _DIGITS:
                    j += 1
            text = src[i:j]
            if is_float:
                value: Any = float(text)
                if not math.isfinite(value):
                    raise ExpressionError(f"number {text} is too large", i, "syntax")
            else:
                if len(text) > 19 or int(text) > MAX_INT:
                    raise ExpressionError(f"integer {text} is too large (at most {MAX_INT})", i, "syntax")
                value = int(text)
            toks.append(_Tok("num", value, i))
            i = j
        elif ch in "'\"":
            j, out = i + 1, []
            while True:
                if j >= n:
                    raise ExpressionError("unterminated string: add the closing quote", i, "syntax")
                c = src[j]
                if c == ch:
                    break
                if c == "\\" and j + 1 < n:
                    nxt = src[j + 1]
                    out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                    j += 2
                    continue
                out.append(c)
                j += 1
            toks.append(_Tok("str", "".join(out), i))
            i = j + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            if word in _WORD_OPS:
                toks.append(_Tok("op", _WORD_OPS[word], i))
            else:
                toks.append(_Tok("name", word, i))
            i = j
        elif src[i:i + 2] in _OPS2:
            toks.append(_Tok("op", src[i:i + 2], i))
            i += 2
        elif ch in _OPS1:
            toks.append(_Tok("op", ch, i))
            i += 1
        else:
            raise ExpressionError(f"unexpected character {ch!r}", i, "syntax")
    toks.append(_Tok("end", None, n))
    return toks


# -- parsing ------------------------------------------------------------------------------------
# The tree is JSON lists: ["lit", v] ["ref", ns, [path…]] ["field", [path…]] ["item", [path…]]
# ["get", obj, key] ["not", x] ["neg", x] ["and", a, b] ["or", a, b] ["op", OP, a, b]
# ["list", [x…]] ["obj", [[k, x]…]] ["call", NAME, [x…]]


class _Parser:
    def __init__(self, src: str, bare_fields: bool) -> None:
        self.src = src
        self.toks = _lex(src)
        self.i = 0
        self.depth = 0
        self.bare_fields = bare_fields
        self.in_lambda = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def expect(self, op: str, context: str) -> None:
        if not self.is_op(op):
            raise ExpressionError(f"expected '{op}' {context}, found {self.describe(self.tok)}", self.tok.offset, "syntax")
        self.take()

    @staticmethod
    def describe(tok: _Tok) -> str:
        return "the end of the expression" if tok.kind == "end" else repr(str(tok.value))

    def nested(self, fn: Callable[[], list[Any]]) -> list[Any]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels", self.tok.offset, "syntax")
        try:
            return fn()
        finally:
            self.depth -= 1

    def parse(self) -> list[Any]:
        tree = self.expr()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {self.describe(self.tok)} after a complete expression",
                                  self.tok.offset, "syntax")
        return tree

    def expr(self) -> list[Any]:
        return self.nested(self.or_)

    def or_(self) -> list[Any]:
        left = self.and_()
        while self.is_op("||"):
            self.take()
            left = ["or", left, self.and_()]
        return left

    def and_(self) -> list[Any]:
        left = self.not_()
        while self.is_op("&&"):
            self.take()
            left = ["and", left, self.not_()]
        return left

    def not_(self) -> list[Any]:
        if self.is_op("!"):
            self.take()
            return self.nested(lambda: ["not", self.not_()])
        return self.cmp()

    def cmp(self) -> list[Any]:
        left = self.add()
        if self.is_op("==", "!=", "<", "<=", ">", ">="):
            op = self.take().value
            left = ["op", op, left, self.add()]
        return left

    def add(self) -> list[Any]:
        left = self.mul()
        while self.is_op("+", "-"):
            op = self.take().value
            left = ["op", op, left, self.mul()]
        return left

    def mul(self) -> list[Any]:
        left = self.unary()
        while self.is_op("*", "/", "%"):
            op = self.take().value
            left = ["op", op, left, self.unary()]
        return left

    def unary(self) -> list[Any]:
        if self.is_op("-"):
            self.take()
            return self.nested(lambda: ["neg", self.unary()])
        return self.postfix()

    def postfix(self) -> list[Any]:
        node = self.primary()
        while self.is_op(".", "["):
            if self.take().value == ".":
                if self.tok.kind != "name":
                    raise ExpressionError(f"expected a field name after '.', found {self.describe(self.tok)}",
                                          self.tok.offset, "syntax")
                node = ["get", node, ["lit", self.take().value]]
            else:
                key = self.expr()
                self.expect("]", "to close the index")
                node = ["get", node, key]
        return node

    def primary(self) -> list[Any]:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.take()
            return ["lit", tok.value]
        if self.is_op("("):
            self.take()
            inner = self.expr()
            self.expect(")", "to close the parenthesis")
            return inner
        if self.is_op("["):
            self.take()
            items = self.items("]")
            return ["list", items]
        if self.is_op("{"):
            self.take()
            pairs: list[list[Any]] = []
            while not self.is_op("}"):
                key = self.tok
                if key.kind not in ("name", "str"):
                    raise ExpressionError(f"expected a key in the object, found {self.describe(key)}", key.offset, "syntax")
                self.take()
                self.expect(":", f"after the key {key.value!r}")
                pairs.append([str(key.value), self.expr()])
                if not self.is_op(","):
                    break
                self.take()
            self.expect("}", "to close the object")
            return ["obj", pairs]
        if tok.kind == "name":
            self.take()
            if tok.value in KEYWORDS:
                return ["lit", KEYWORDS[tok.value]]
            if self.is_op("("):
                return self.call(tok)
            return self.reference(tok)
        raise ExpressionError(f"expected a value, found {self.describe(tok)}", tok.offset, "syntax")

    def items(self, close: str) -> list[Any]:
        items: list[Any] = []
        while not self.is_op(close):
            items.append(self.expr())
            if not self.is_op(","):
                break
            self.take()
        self.expect(close, f"to close the {'list' if close == ']' else 'call'}")
        return items

    def call(self, name_tok: _Tok) -> list[Any]:
        name = name_tok.value
        if name not in FUNCTIONS:
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known functions: {', '.join(sorted(FUNCTIONS))}"
            raise ExpressionError(f"unknown function '{name}'{hint}", name_tok.offset, "function")
        self.take()  # '('
        lazy_item = name in ("map", "filter")
        args: list[Any] = []
        while not self.is_op(")"):
            if lazy_item and len(args) == 1:
                self.in_lambda += 1
                try:
                    args.append(self.expr())
                finally:
                    self.in_lambda -= 1
            else:
                args.append(self.expr())
            if not self.is_op(","):
                break
            self.take()
        self.expect(")", f"to close the call of {name}")
        low, high = FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            want = str(low) if low == high else (f"at least {low}" if high is None else f"{low} to {high}")
            raise ExpressionError(f"{name}() takes {want} argument{'s' if want != '1' else ''}, got {len(args)}",
                                  name_tok.offset, "function")
        return ["call", name, args]

    def reference(self, tok: _Tok) -> list[Any]:
        path = [tok.value]
        while self.is_op(".") and self.toks[self.i + 1].kind == "name":
            self.take()
            path.append(self.take().value)
        head = path[0]
        if head == "item" and self.in_lambda:
            return ["item", path[1:]]
        if head in NAMESPACES:
            if len(path) < 2:
                raise ExpressionError(f"'{head}' needs a field: write {head}.NAME", tok.offset, "reference")
            if head == "loop" and (len(path) < 3 or path[2] not in LOOP_FIELDS):
                raise ExpressionError(f"'{'.'.join(path)}': a loop reference reads loop.NAME.FIELD with FIELD one "
                                      f"of {', '.join(LOOP_FIELDS)}", tok.offset, "reference")
            if head == "run" and path[1] not in RUN_FIELDS:
                raise ExpressionError(f"unknown run field '{path[1]}'; expected one of {', '.join(RUN_FIELDS)}",
                                      tok.offset, "reference")
            return ["ref", head, path[1:]]
        if self.bare_fields:
            return ["field", path]
        close = difflib.get_close_matches(head, [*NAMESPACES, "item"], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ExpressionError(f"unknown reference '{'.'.join(path)}'{hint}: a reference starts with one of "
                              f"{', '.join(NAMESPACES)}", tok.offset, "reference")


def parse(source: str, *, bare_fields: bool = False) -> list[Any]:
    """Parse ``source`` into the JSON tree the evaluator walks; raises ExpressionError.

    ``bare_fields`` (edge conditions) lets a bare name read a field of the edge source's output.
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(f"expression is {len(source)} characters long; the limit is {MAX_SOURCE_CHARS}",
                              0, "syntax")
    if not source.strip():
        raise ExpressionError("empty expression", 0, "syntax")
    try:
        return _Parser(source, bare_fields).parse()
    except RecursionError:  # unreachable with MAX_DEPTH, kept so no other exception escapes
        raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels", 0, "syntax") from None


def references(tree: Any) -> list[tuple[str, list[str]]]:
    """(namespace, path) of every reference in a tree, in order; bare fields are ("field", path)."""
    found: list[tuple[str, list[str]]] = []

    def walk(node: Any) -> None:
        tag = node[0]
        if tag == "ref":
            found.append((node[1], list(node[2])))
        elif tag == "field":
            found.append(("field", list(node[1])))
        elif tag in ("not", "neg"):
            walk(node[1])
        elif tag in ("and", "or", "get"):
            walk(node[1])
            walk(node[2])
        elif tag == "op":
            walk(node[2])
            walk(node[3])
        elif tag in ("list", "call"):
            for item in node[-1]:
                walk(item)
        elif tag == "obj":
            for _, value in node[1]:
                walk(value)

    walk(tree)
    return found


# -- evaluation ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Scope:
    """What references read. Plain data the interpreter assembles from run state."""

    vars: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    loop: dict[str, dict[str, Any]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # bare names in edge conditions


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def truthy(value: Any) -> bool:
    """Iterion's truthiness: null, false, 0, "", empty list/object, and the strings "false", "no"
    and "0" (models often answer booleans as strings) are false; everything else is true."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0")
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (list, dict)):
        return bool(value)
    return True


def _lookup(value: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


class _Eval:
    def __init__(self, scope: Scope, source: str) -> None:
        self.scope = scope
        self.source = source
        self.steps = 0
        self.items: list[Any] = []

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"expression {self.source!r}: {message}")

    def spend(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > STEP_BUDGET:
            raise self.fail(f"exceeded the evaluation budget of {STEP_BUDGET} steps")

    def sized(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            raise self.fail(f"a string of {len(value)} characters exceeds the limit of {MAX_STRING_CHARS}")
        if isinstance(value, (list, dict)) and len(value) > MAX_ITEMS:
            raise self.fail(f"a {type_name(value)} of {len(value)} items exceeds the limit of {MAX_ITEMS}")
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise self.fail(f"integer result {value} is outside the 64-bit range")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"result {value} is not a finite number")
        return value

    def ev(self, node: Any) -> Any:
        self.spend()
        tag = node[0]
        if tag == "lit":
            return node[1]
        if tag == "ref":
            ns, path = node[1], node[2]
            if ns == "loop":
                return _lookup(self.scope.loop.get(path[0], {}), path[1:])
            return _lookup(getattr(self.scope, ns), path)
        if tag == "field":
            return _lookup(self.scope.fields, node[1])
        if tag == "item":
            if not self.items:
                raise self.fail("'item' is only defined inside map() and filter()")
            return _lookup(self.items[-1], node[1])
        if tag == "get":
            obj, key = self.ev(node[1]), self.ev(node[2])
            if isinstance(obj, dict) and isinstance(key, str):
                return obj.get(key)
            if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
                return obj[key] if -len(obj) <= key < len(obj) else None
            if obj is None:
                return None
            raise self.fail(f"cannot index a {type_name(obj)} ({_show(obj)}) with {type_name(key)} {_show(key)}")
        if tag == "not":
            return not truthy(self.ev(node[1]))
        if tag == "neg":
            value = self.ev(node[1])
            if not _is_number(value):
                raise self.fail(f"cannot negate {type_name(value)} {_show(value)}")
            return self.sized(-value)
        if tag == "and":
            return truthy(self.ev(node[1])) and truthy(self.ev(node[2]))
        if tag == "or":
            return truthy(self.ev(node[1])) or truthy(self.ev(node[2]))
        if tag == "op":
            return self.binary(node[1], self.ev(node[2]), self.ev(node[3]))
        if tag == "list":
            return self.sized([self.ev(x) for x in node[1]])
        if tag == "obj":
            return self.sized({key: self.ev(x) for key, x in node[1]})
        if tag == "call":
            return self.sized(self.call(node[1], node[2]))
        raise self.fail(f"malformed expression tree (node {tag!r})")

    def binary(self, op: str, a: Any, b: Any) -> Any:
        if op == "==":
            self.spend(_size(a) + _size(b))
            return _equal(a, b)
        if op == "!=":
            self.spend(_size(a) + _size(b))
            return not _equal(a, b)
        if op in ("<", "<=", ">", ">="):
            if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
                raise self.fail(f"cannot compare {type_name(a)} {_show(a)} {op} {type_name(b)} {_show(b)}")
            self.spend(len(a) if isinstance(a, str) else 1)
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if op == "+":
            if isinstance(a, str) and isinstance(b, str):
                self.spend(len(a) + len(b))
                if len(a) + len(b) > MAX_STRING_CHARS:
                    raise self.fail(f"a string of {len(a) + len(b)} characters exceeds the limit of {MAX_STRING_CHARS}")
                return a + b
            if isinstance(a, list) and isinstance(b, list):
                self.spend(len(a) + len(b))
                if len(a) + len(b) > MAX_ITEMS:
                    raise self.fail(f"a list of {len(a) + len(b)} items exceeds the limit of {MAX_ITEMS}")
                return a + b
        if not (_is_number(a) and _is_number(b)):
            raise self.fail(f"cannot apply '{op}' to {type_name(a)} {_show(a)} and {type_name(b)} {_show(b)}")
        if op in ("/", "%") and b == 0:
            raise self.fail(f"division by zero ({_show(a)} {op} {_show(b)})")
        try:
            if op == "+":
                result = a + b
            elif op == "-":
                result = a - b
            elif op == "*":
                result = a * b
            elif op == "/":
                result = a / b
                if isinstance(a, int) and isinstance(b, int) and a % b == 0:
                    result = a // b
            else:
                result = math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else a % b
        except (OverflowError, ValueError) as exc:
            raise self.fail(f"'{op}' on {_show(a)} and {_show(b)} failed: {exc}") from None
        return self.sized(result)

    # -- functions -----------------------------------------------------------------------------
    def call(self, name: str, arg_nodes: list[Any]) -> Any:
        if name == "if":
            return self.ev(arg_nodes[1]) if truthy(self.ev(arg_nodes[0])) else self.ev(arg_nodes[2])
        if name in ("map", "filter"):
            seq = self.list_arg(name, self.ev(arg_nodes[0]))
            out = []
            for item in seq:
                self.items.append(item)
                try:
                    value = self.ev(arg_nodes[1])
                finally:
                    self.items.pop()
                if name == "map":
                    out.append(value)
                elif truthy(value):
                    out.append(item)
            return out
        args = [self.ev(a) for a in arg_nodes]
        return getattr(self, f"fn_{name}")(*args)

    def list_arg(self, fn: str, value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{fn}() expects a list, got {type_name(value)} {_show(value)}")
        self.spend(len(value))
        return value

    def numbers(self, fn: str, values: list[Any]) -> list[int | float]:
        for v in values:
            if not _is_number(v):
                raise self.fail(f"{fn}() expects numbers, got {type_name(v)} {_show(v)}")
        return values

    def fn_length(self, x: Any) -> int:
        if x is None:
            return 0
        if isinstance(x, (str, list, dict)):
            return len(x)
        raise self.fail(f"length() expects a string, list or object, got {type_name(x)} {_show(x)}")

    def fn_concat(self, *parts: Any) -> Any:
        if all(isinstance(p, str) for p in parts):
            total = sum(len(p) for p in parts)
            self.spend(total)
            if total > MAX_STRING_CHARS:
                raise self.fail(f"a string of {total} characters exceeds the limit of {MAX_STRING_CHARS}")
            return "".join(parts)
        out: list[Any] = []
        for p in parts:
            seq = self.list_arg("concat", p)
            if len(out) + len(seq) > MAX_ITEMS:
                raise self.fail(f"a list of more than {MAX_ITEMS} items exceeds the limit")
            out.extend(seq)
        return out

    def fn_unique(self, x: Any) -> list[Any]:
        out: list[Any] = []
        for item in self.list_arg("unique", x):
            self.spend(len(out))
            if not any(_equal(item, seen) for seen in out):
                out.append(item)
        return out

    def fn_contains(self, container: Any, needle: Any) -> bool:
        if container is None:
            return False
        if isinstance(container, str):
            if not isinstance(needle, str):
                raise self.fail(f"contains() on a string looks for a string, got {type_name(needle)} {_show(needle)}")
            self.spend(len(container))
            return needle in container
        if isinstance(container, dict):
            return needle in container if isinstance(needle, str) else False
        return any(_equal(item, needle) for item in self.list_arg("contains", container))

    def fn_join(self, x: Any, sep: Any = ",") -> str:
        if not isinstance(sep, str):
            raise self.fail(f"join() separator must be a string, got {type_name(sep)} {_show(sep)}")
        parts = [p if isinstance(p, str) else _text(p) for p in self.list_arg("join", x)]
        total = sum(len(p) for p in parts) + len(sep) * max(0, len(parts) - 1)
        self.spend(total)
        if total > MAX_STRING_CHARS:
            raise self.fail(f"a string of {total} characters exceeds the limit of {MAX_STRING_CHARS}")
        return sep.join(parts)

    def fn_sum(self, x: Any) -> int | float:
        values = self.numbers("sum", self.list_arg("sum", x))
        total: int | float = 0
        for v in values:
            total = self.sized(total + v)
        return total

    def _extreme(self, fn: str, args: tuple[Any, ...], pick: Callable[..., Any]) -> Any:
        values = self.list_arg(fn, args[0]) if len(args) == 1 else list(args)
        if not values:
            return None
        if all(isinstance(v, str) for v in values):
            return pick(values)
        return pick(self.numbers(fn, values))

    def fn_min(self, *args: Any) -> Any:
        return self._extreme("min", args, min)

    def fn_max(self, *args: Any) -> Any:
        return self._extreme("max", args, max)

    def fn_round(self, x: Any, digits: Any = 0) -> int | float:
        self.numbers("round", [x])
        if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 15:
            raise self.fail(f"round() digits must be an integer from 0 to 15, got {_show(digits)}")
        if isinstance(x, int):
            return x
        return round(x) if digits == 0 else round(x, digits)

    def fn_floor(self, x: Any) -> int:
        self.numbers("floor", [x])
        return math.floor(x)

    def fn_ceil(self, x: Any) -> int:
        self.numbers("ceil", [x])
        return math.ceil(x)

    def fn_abs(self, x: Any) -> int | float:
        self.numbers("abs", [x])
        return abs(x)

    def fn_keys(self, x: Any) -> list[str]:
        if x is None:
            return []
        if not isinstance(x, dict):
            raise self.fail(f"keys() expects an object, got {type_name(x)} {_show(x)}")
        self.spend(len(x))
        return list(x)

    def fn_values(self, x: Any) -> list[Any]:
        if x is None:
            return []
        if not isinstance(x, dict):
            raise self.fail(f"values() expects an object, got {type_name(x)} {_show(x)}")
        self.spend(len(x))
        return list(x.values())

    def fn_sort(self, x: Any) -> list[Any]:
        values = self.list_arg("sort", x)
        self.spend(len(values) * max(1, len(values).bit_length()))
        if all(isinstance(v, str) for v in values):
            return sorted(values)
        return sorted(self.numbers("sort", values))

    def fn_slice(self, x: Any, start: Any, end: Any = None) -> Any:
        for v in (start, end):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise self.fail(f"slice() bounds must be integers, got {type_name(v)} {_show(v)}")
        if isinstance(x, str):
            return x[start:end]
        return self.list_arg("slice", x)[start:end]

    def fn_flatten(self, x: Any) -> list[Any]:
        out: list[Any] = []
        for item in self.list_arg("flatten", x):
            more = item if isinstance(item, list) else [item]
            self.spend(len(more))
            if len(out) + len(more) > MAX_ITEMS:
                raise self.fail(f"a list of more than {MAX_ITEMS} items exceeds the limit")
            out.extend(more)
        return out

    def fn_tail(self, x: Any) -> list[Any]:
        return self.list_arg("tail", x)[1:]

    def fn_first(self, x: Any) -> Any:
        seq = self.list_arg("first", x)
        return seq[0] if seq else None

    def fn_last(self, x: Any) -> Any:
        seq = self.list_arg("last", x)
        return seq[-1] if seq else None

    def fn_lower(self, x: Any) -> str:
        if not isinstance(x, str):
            raise self.fail(f"lower() expects a string, got {type_name(x)} {_show(x)}")
        return x.lower()

    def fn_upper(self, x: Any) -> str:
        if not isinstance(x, str):
            raise self.fail(f"upper() expects a string, got {type_name(x)} {_show(x)}")
        return x.upper()

    def fn_default(self, x: Any, fallback: Any) -> Any:
        return fallback if x is None else x


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _size(v: Any) -> int:
    """A cheap upper bound of the work comparing ``v`` costs (top level only)."""
    return len(v) if isinstance(v, (str, list, dict)) else 1


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _text(v: Any) -> str:
    """How join() writes a non-string item: JSON (null, true, 1.5, [1, 2], {"a": 1})."""
    try:
        return json.dumps(v, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except ValueError:  # NaN or an infinity read from the data
        return str(v)


def evaluate(tree: Any, scope: Scope, source: str = "") -> Any:
    """The value of a parsed expression in ``scope``. Pure; raises only ExpressionError."""
    try:
        return _Eval(scope, source).ev(tree)
    except ExpressionError:
        raise
    except (RecursionError, TypeError, IndexError, KeyError, ArithmeticError, ValueError) as exc:
        # Input data nested too deep for comparison, or a tree not made by parse(): still the
        # language's own error, so callers have a single thing to catch.
        raise ExpressionError(f"expression {source!r}: cannot evaluate ({type(exc).__name__}: {exc})") from None


def evaluate_source(source: str, scope: Scope, *, bare_fields: bool = False) -> Any:
    """Parse and evaluate in one go (tests and one-off uses; runs use the IR's parsed tree)."""
    return evaluate(parse(source, bare_fields=bare_fields), scope, source)
