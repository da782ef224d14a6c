"""Safe expressions of ``x``: untrusted text -> sympy -> numpy reference and torch.

User text is never given to ``eval``, ``exec``, ``sympify`` or ``parse_expr``. It is parsed
by Python's ``ast`` (syntax only, nothing runs) and the tree is walked against a whitelist,
building sympy objects directly. The only symbol that ever exists is :data:`X`; names in
the text select from fixed tables and never become symbols (sympy's code generation would
run code hidden in symbol names).

Evaluation never generates code either: :func:`to_numpy` and :func:`to_torch` walk the
sympy tree and call the backend's functions, so a compiled candidate is a closure over a
tree we built ourselves.

The language (documented for users in README.md):

- numbers: decimals of size at most :data:`MAX_LITERAL` (``1e6``), integers of size at most
  :data:`MAX_INTEGER` (``10**100``: canonical fractions such as ``1234567*x/10000000``
  write exact decimals with integers); the variable ``x``, the constants ``pi``, ``e``;
- ``+ - * / **`` and unary minus; ``^`` is read as ``**`` (math notation);
- functions: see :data:`FUNCTIONS` (``clip(f, lo, hi)``, ``min``/``max`` of 2 to
  :data:`MAX_COMPARED` arguments, nested ``min``/``max`` of the same kind counted together,
  ``where(condition, a, b)`` with comparisons ``< <= > >=`` joined by ``and``/``or``;
  ``piecewise`` is an alias of ``where``);
- limits on the text: :data:`MAX_LENGTH` characters, :data:`MAX_BRACKETS` nested brackets,
  :data:`MAX_DEPTH` tree depth, :data:`MAX_NODES` nodes;
- limits on the built tree (:func:`check_tree`, after every node and every transform):
  constant exponents of size at most :data:`MAX_EXPONENT`; every constant part evaluates
  (in float64, bottom-up, before sympy is asked anything about it) to a real number of size
  at most :data:`MAX_CONSTANT` (``exp(exp(20))`` is refused, it would hang sympy's exact
  evaluation); every fraction has numerator and denominator at most :data:`MAX_INTEGER`;
  at most :data:`MAX_TREE_SIZE` parts counted as a tree (a part used twice counts twice)
  and :data:`MAX_TREE_DEPTH` levels;
- the canonical text (:func:`to_text`) of an accepted expression parses back: the tree
  limits above are those of the text, and :func:`parse_expression` refuses, with the
  reason, an expression whose canonical text would be refused (``sigmoid`` nested 22 deep
  is 22 brackets typed but 44 written out). It parses back to the same function, and
  nearly always to the same tree: sympy builds a printed ``2*(1 + y/2)`` as ``2 + y``.
"""

from __future__ import annotations

import ast
import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import sympy as sp
from sympy.printing.str import StrPrinter

from funcsearch.errors import ExpressionError

X: sp.Symbol = sp.Symbol("x", real=True)
"""The one and only symbol: the input of the point-wise function."""

MAX_LENGTH = 1000
MAX_DEPTH = 64
MAX_BRACKETS = 40
MAX_NODES = 400
MAX_EXPONENT = 16
MAX_COMPARED = 8
"""Most arguments of one ``min``/``max`` (after sympy flattens ``max(max(a, b), c)``): sympy
compares every pair symbolically, so 40 arguments took 6-20 s to build; 8 take under 1 s."""
MAX_LITERAL = 1e6
"""Largest size of a decimal literal (``1e6``; ``1e9*x`` is refused)."""
MAX_INTEGER = 10**100
"""Largest integer literal, and largest numerator/denominator of any fraction in a tree."""
MAX_CONSTANT = 1e100
"""Largest size of any constant part of an expression (evaluated in float64)."""
MAX_TREE_SIZE = 2000
"""Most parts of a built expression counted as a tree (shared parts counted each time)."""
MAX_TREE_DEPTH = 2 * MAX_DEPTH
"""Most levels of a built expression."""


class Cbrt(sp.Function):
    """The real cube root as one node: ``cbrt(a) = sign(a)*abs(a)**(1/3)``.

    One node, so that ``cbrt(cbrt(...))`` does not double the tree at each level (the
    written-out form uses its argument twice). A constant argument evaluates exactly
    (``cbrt(8)`` is 2, ``cbrt(-2)`` is ``-2**(1/3)``)."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr | None:
        if arg.is_number:
            return sp.sign(arg) * sp.Abs(arg) ** sp.Rational(1, 3)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Rational(1, 3) / Cbrt(self.args[0]) ** 2

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_positive

    def _eval_is_negative(self) -> bool | None:
        return self.args[0].is_negative

    def _eval_is_zero(self) -> bool | None:
        return self.args[0].is_zero

    def _eval_evalf(self, prec: int) -> sp.Expr:
        arg = self.args[0]._eval_evalf(prec)
        if arg is None:
            return None  # type: ignore[return-value]
        return (sp.sign(arg) * sp.Abs(arg) ** sp.Rational(1, 3))._eval_evalf(prec)


def _sigmoid(arg: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-arg))


def _clip(value: sp.Expr, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    # Unevaluated: sympy's Min/Max evaluation compares arguments symbolically and costs
    # 50-100 ms per clip (more when nested), which dominated the catalog build.
    return sp.Min(sp.Max(value, lo, evaluate=False), hi, evaluate=False)


# name -> (builder, minimum number of arguments, maximum number or None for unbounded)
FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int, int | None]] = {
    "erf": (sp.erf, 1, 1),
    "erfc": (sp.erfc, 1, 1),
    "tanh": (sp.tanh, 1, 1),
    "atan": (sp.atan, 1, 1),
    "arctan": (sp.atan, 1, 1),
    "asinh": (sp.asinh, 1, 1),
    "arcsinh": (sp.asinh, 1, 1),
    "sinh": (sp.sinh, 1, 1),
    "cosh": (sp.cosh, 1, 1),
    "exp": (sp.exp, 1, 1),
    "log": (sp.log, 1, 1),
    "sqrt": (sp.sqrt, 1, 1),
    "cbrt": (Cbrt, 1, 1),
    "abs": (sp.Abs, 1, 1),
    "sign": (sp.sign, 1, 1),
    "sin": (sp.sin, 1, 1),
    "cos": (sp.cos, 1, 1),
    "tan": (sp.tan, 1, 1),
    "sigmoid": (_sigmoid, 1, 1),
    "clip": (_clip, 3, 3),
    "min": (sp.Min, 2, None),
    "max": (sp.Max, 2, None),
}
"""Whitelisted functions. ``where``/``piecewise`` are handled separately (they take a condition)."""

CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}
CONDITIONALS = ("where", "piecewise")

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_COMPARE = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}


@dataclass(frozen=True)
class Expression:
    """A parsed, whitelisted function of :data:`X`."""

    source: str
    expr: sp.Expr

    @property
    def text(self) -> str:
        """Canonical text in the expression language (parses back, see :func:`parse_expression`)."""
        return to_text(self.expr)

    def __str__(self) -> str:
        return self.text


class _Reject(Exception):
    """Internal: a rejection with the offending node; turned into ExpressionError."""

    def __init__(self, message: str, node: ast.AST | None = None) -> None:
        super().__init__(message)
        self.node = node


def parse_expression(
    text: str,
    *,
    file: str | None = None,
    line: int | None = None,
    field: str | None = None,
) -> Expression:
    """Parse untrusted text into an :class:`Expression`, or raise a located ExpressionError.

    The canonical text of the result (:attr:`Expression.text`) parses back: an expression
    whose canonical text would be refused (too long once written out, say) is refused
    here, with the reason. Limits met only once sympy has built the tree (``(x**16)**16``
    is ``x**256``; ``exp(exp(20))`` overflows) are refused at the offending part."""
    try:
        expr = _parse_text(text)
        if isinstance(text, str):
            _check_parses_back(expr, text.strip().replace("^", "**"))
    except ExpressionError as exc:
        raise exc.located(file=file, line=line, field=field) from None
    return Expression(source=text, expr=expr)


def _parse_text(text: Any) -> sp.Expr:
    """Text -> checked sympy tree; ExpressionError (not located) with the offending part."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression as text, got {type(text).__name__} "
                              f"{_shorten(repr(text), 60)}")
    shown = _shorten(text)
    stripped = text.strip()
    if not stripped:
        raise ExpressionError("empty expression")
    # '^' means power (math notation). Translating the token keeps Python's precedence of
    # '**' (binding tighter than * and /); reading it as BitXor would silently mis-parse.
    tree = _syntax_tree(text, stripped.replace("^", "**"), shown)
    source = stripped.replace("^", "**")
    try:
        expr = _Builder(source).build(tree.body)
    except _Reject as exc:
        part = ""
        if exc.node is not None:
            segment = ast.get_source_segment(source, exc.node)
            if segment is not None and segment != source and segment not in str(exc):
                part = f" ('{_shorten(segment, 60)}')"
        raise ExpressionError(f'{exc}{part} in "{shown}"') from None
    except RecursionError:
        raise ExpressionError(f'expression nested too deeply in "{shown}"') from None
    if not isinstance(expr, sp.Expr) or expr.is_Boolean:
        raise ExpressionError(f'"{shown}" is a condition, not a function of x')
    return expr


def _syntax_tree(text: str, source: str, shown: str) -> ast.Expression:
    """The limits on the text (length, characters, brackets, depth, parts) and its ast."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long, the limit is {MAX_LENGTH}")
    for position, char in enumerate(text):
        if not (32 <= ord(char) < 127):
            raise ExpressionError(
                f"character {char!r} (U+{ord(char):04X}) at position {position + 1} is not "
                f'allowed in "{shown}": expressions are plain ASCII'
            )
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth > MAX_BRACKETS:
            raise ExpressionError(f'brackets nested deeper than {MAX_BRACKETS} levels in "{shown}"')
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f'syntax error{where} in "{shown}": {exc.msg}') from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f'cannot parse "{shown}": {_one_line(str(exc))}') from None

    nodes = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, level = stack.pop()
        nodes += 1
        if level > MAX_DEPTH:
            raise ExpressionError(f'expression nested deeper than {MAX_DEPTH} levels in "{shown}"')
        if nodes > MAX_NODES:
            raise ExpressionError(f'expression has more than {MAX_NODES} parts in "{shown}"')
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return tree


def _check_parses_back(expr: sp.Expr, typed: str | None = None) -> str:
    """The canonical text of ``expr``, after checking that :func:`parse_expression` accepts
    it (skipped when it is the text just parsed). ExpressionError says why it would not."""
    try:
        canonical = to_text(expr)
    except RecursionError:
        raise ExpressionError("expression nested too deeply to be written out") from None
    if canonical == typed:
        return canonical
    try:
        _parse_text(canonical)
    except ExpressionError as exc:
        raise ExpressionError(f"its canonical form would not parse back: {exc.message}") from None
    return canonical


def check_parses_back(expr: sp.Expr) -> str:
    """The canonical text of a built tree (e.g. the end of a transform pipeline) after
    checking that :func:`parse_expression` would accept it; ExpressionError (one line)
    when it would be refused.

    The tree is checked (:func:`check_tree`) and its text against the limits on text.
    Parsing the text in full (sympy re-evaluates it, ~2 ms) is done only for a tree that
    holds a number larger than ``1e6`` (numerator or denominator): re-evaluation only
    combines a tree's numbers (``5*(1 + exp(-x))`` -> ``5 + 5*exp(-x)``), and with numbers
    of at most 1e6 that stays far inside every limit."""
    try:
        info = _TreeCheck().info(expr)
    except _Reject as exc:
        raise ExpressionError(str(exc)) from None
    try:
        canonical = to_text(expr)
    except RecursionError:
        raise ExpressionError("expression nested too deeply to be written out") from None
    try:
        if info.big:
            _parse_text(canonical)
        else:
            _syntax_tree(canonical, canonical, _shorten(canonical))
    except ExpressionError as exc:
        raise ExpressionError(f"its canonical form would not parse back: {exc.message}") from None
    return canonical


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int = 80) -> str:
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- tree limits


def _sign(value: float) -> float:
    return float((value > 0) - (value < 0))


_FLOAT_FUNCTIONS: dict[Any, Callable[[float], float]] = {
    sp.erf: math.erf, sp.erfc: math.erfc, sp.tanh: math.tanh, sp.atan: math.atan,
    sp.asinh: math.asinh, sp.sinh: math.sinh, sp.cosh: math.cosh, sp.exp: math.exp,
    sp.log: math.log, sp.sin: math.sin, sp.cos: math.cos, sp.tan: math.tan, sp.Abs: abs,
    sp.sign: _sign, Cbrt: lambda v: math.copysign(abs(v) ** (1.0 / 3.0), v),
}
"""float64 versions of the whitelisted functions, for the bottom-up constant check."""

_RELATION_TYPES = (sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan, sp.GreaterThan)


class _Info:
    """What the tree check knows about one node."""

    __slots__ = ("size", "depth", "has_x", "value", "big")

    def __init__(self, size: int, depth: int, has_x: bool, value: Any, big: bool) -> None:
        self.size = size
        self.depth = depth
        self.has_x = has_x
        self.value = value  # float (or bool for a condition) for constant parts, else None
        self.big = big  # holds a number larger than 1e6 (numerator or denominator) or a float


class _TreeCheck:
    """Graph-aware limits on a built sympy tree: each distinct node is looked at once
    (memoized, across calls: a node's verdict depends on the node alone), so a tree that
    shares parts (``f/(1 + abs(f))``) is measured as the tree it stands for without being
    walked as one. Raises ``_Reject`` on the first problem."""

    known: dict[sp.Basic, _Info] = {}  # shared memo of checked nodes (cleared when large)

    def info(self, expr: sp.Basic) -> _Info:
        known = self.known
        found = known.get(expr)
        if found is not None:
            return found
        if len(known) > 200_000:
            known.clear()
        stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
        while stack:
            node, ready = stack.pop()
            if node in known:
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((arg, False) for arg in node.args if arg not in known)
                if len(stack) > 4 * MAX_TREE_SIZE + 64:
                    raise _Reject(f"expression grows to more than {MAX_TREE_SIZE} parts once built")
                continue
            known[node] = self._node(node, [known[arg] for arg in node.args])
        return known[expr]

    def _node(self, node: sp.Basic, args: list[_Info]) -> _Info:
        size = 1
        depth = 0
        has_x = False
        big = False
        for a in args:
            size += a.size
            if a.depth > depth:
                depth = a.depth
            has_x = has_x or a.has_x
            big = big or a.big
        depth += 1
        if size > MAX_TREE_SIZE:
            raise _Reject(f"expression grows to more than {MAX_TREE_SIZE} parts once built "
                          "(a part used twice counts twice)")
        if depth > MAX_TREE_DEPTH:
            raise _Reject(f"expression nested deeper than {MAX_TREE_DEPTH} levels once built")
        kind = _KINDS.get(type(node))
        if kind is None:
            kind = _KINDS[type(node)] = _kind(node)
        value: Any = None
        if kind == "symbol":
            if node != X:
                raise _Reject(f"unknown symbol {_shorten(str(node), 40)}")
            has_x = True
        elif kind == "number":
            if isinstance(node, sp.Rational):
                if abs(node.p) > MAX_INTEGER or node.q > MAX_INTEGER:
                    raise _Reject(f"number {_shorten(str(node), 40)} is too large or too precise "
                                  "(numerator and denominator must be at most 1e100)")
                value = float(node.p) / float(node.q) if node.q != 1 else float(node.p)
                big = abs(node.p) > MAX_LITERAL or node.q > MAX_LITERAL
            else:
                value = self._evaluate(node, lambda: float(node))
                big = True
        elif kind == "infinite":
            raise _Reject("contains an infinite or undefined constant (division by zero?)")
        elif kind == "imaginary":
            raise _Reject("contains an imaginary constant (I): constants must be real numbers")
        elif kind == "unknown":
            name = getattr(node.func, "__name__", type(node).__name__)
            raise _Reject(f"'{_shorten(name, 40)}' cannot be written in the expression language")
        elif kind == "pow":
            exponent = args[1]
            if not exponent.has_x:
                if not abs(exponent.value) <= MAX_EXPONENT:
                    raise _Reject(f"constant exponent must be at most {MAX_EXPONENT} in size, "
                                  f"got {_shorten(to_text(node), 40)}")
                if not has_x:
                    base = args[0].value
                    value = self._evaluate(node, lambda: math.pow(base, exponent.value))
        elif not has_x:
            values = [a.value for a in args]
            if kind == "add":
                value = self._evaluate(node, lambda: math.fsum(values))
            elif kind == "mul":
                value = self._evaluate(node, lambda: math.prod(values))
            elif kind == "function":
                fn = _FLOAT_FUNCTIONS[type(node)]
                value = self._evaluate(node, lambda: fn(values[0]))
            elif kind == "min":
                value = self._evaluate(node, lambda: min(values))
            elif kind == "max":
                value = self._evaluate(node, lambda: max(values))
            elif kind == "constant":
                value = float(node)
            elif kind == "boolean":
                value = bool(node)
            elif kind == "relation":
                a, b = values
                value = {sp.StrictLessThan: a < b, sp.LessThan: a <= b,
                         sp.StrictGreaterThan: a > b, sp.GreaterThan: a >= b}[type(node)]
            elif kind == "and":
                value = all(values)
            elif kind == "or":
                value = any(values)
            elif kind == "piecewise":
                chosen = math.nan
                for pair in node.args:
                    if self.known[pair.args[1]].value:
                        chosen = self.known[pair.args[0]].value
                        break
                value = self._evaluate(node, lambda: chosen)
        return _Info(size, depth, has_x, value, big)

    @staticmethod
    def _evaluate(node: sp.Basic, compute: Callable[[], float]) -> float:
        try:
            value = float(compute())
        except OverflowError:
            value = math.inf
        except (ValueError, ZeroDivisionError, TypeError):
            value = math.nan
        if math.isnan(value):
            raise _Reject(f"constant {_shorten(to_text(node), 60)} is undefined or not a real number")
        if not abs(value) <= MAX_CONSTANT:
            raise _Reject(f"constant {_shorten(to_text(node), 60)} overflows (its size must be "
                          f"at most {MAX_CONSTANT:g})")
        return value


_KINDS: dict[type, str] = {}
"""Node class -> what the tree check does with it (filled by :func:`_kind`)."""


def _kind(node: sp.Basic) -> str:
    if isinstance(node, sp.Symbol):
        return "symbol"
    if node in (sp.zoo, sp.nan, sp.oo, -sp.oo):
        return "infinite"
    if node is sp.I:
        return "imaginary"
    if isinstance(node, (sp.Rational, sp.Float)):
        return "number"
    if node in (sp.pi, sp.E):
        return "constant"
    if isinstance(node, sp.logic.boolalg.BooleanAtom):
        return "boolean"
    if isinstance(node, sp.Pow):
        return "pow"
    if isinstance(node, sp.Add):
        return "add"
    if isinstance(node, sp.Mul):
        return "mul"
    if type(node) in _FLOAT_FUNCTIONS:
        return "function"
    if isinstance(node, sp.Min):
        return "min"
    if isinstance(node, sp.Max):
        return "max"
    if isinstance(node, _RELATION_TYPES):
        return "relation"
    if isinstance(node, sp.And):
        return "and"
    if isinstance(node, sp.Or):
        return "or"
    if isinstance(node, sp.Piecewise):
        return "piecewise"
    if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair):
        return "pair"
    return "unknown"


def check_tree(expr: sp.Basic) -> None:
    """Check a built tree against the limits (size and depth counted as a tree, constant
    parts real and at most :data:`MAX_CONSTANT` in size, exponents, fractions, only parts the
    language can write). ExpressionError (one line, not located) on the first problem."""
    try:
        _TreeCheck().info(expr)
    except _Reject as exc:
        raise ExpressionError(str(exc)) from None


class _Builder:
    """Walks a Python AST against the whitelist and builds sympy objects.

    Every node it builds is checked (:class:`_TreeCheck`) before it is used as the argument
    of the next: sympy is never handed a constant it cannot evaluate quickly."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.checker = _TreeCheck()

    def build(self, node: ast.AST) -> sp.Expr:
        result = self._build(node)
        try:
            self.checker.info(result)
        except _Reject as exc:
            if exc.node is None:
                exc.node = node
            raise
        return result

    def _value(self, expr: sp.Basic) -> float | None:
        """The float64 value of a checked constant part (None when it depends on x)."""
        info = self.checker.info(expr)
        return None if info.has_x else info.value

    def _build(self, node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            if node.id == "x":
                return X
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            if node.id in FUNCTIONS or node.id in CONDITIONALS:
                raise _Reject(f"'{node.id}' is a function: call it, e.g. {node.id}(x)", node)
            raise _Reject(f"'{_shorten(node.id, 40)}' is not an allowed name", node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.build(node.operand)
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand)
            raise _Reject(f"operator '{type(node.op).__name__}' is not allowed", node)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id != "x":
                raise _Reject(f"'{_shorten(root.id, 40)}' is not an allowed name (attribute access)", node)
            raise _Reject("attribute access is not allowed", node)
        if isinstance(node, ast.Compare | ast.BoolOp):
            raise _Reject("a comparison is only allowed as the condition of where(...)", node)
        kind = {
            ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
            ast.DictComp: "comprehension", ast.GeneratorExp: "generator", ast.Subscript:
            "subscript", ast.Starred: "starred argument", ast.NamedExpr: "assignment",
            ast.JoinedStr: "f-string", ast.IfExp: "if-expression (use where(...))",
            ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict", ast.Set: "set",
            ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
        }.get(type(node), type(node).__name__)
        raise _Reject(f"{kind} is not allowed", node)

    def _number(self, node: ast.Constant) -> sp.Expr:
        try:
            return exact_number(node.value)
        except ExpressionError as exc:
            raise _Reject(exc.message, node) from None

    def _binop(self, node: ast.BinOp) -> sp.Expr:
        if type(node.op) not in _BINOPS:
            raise _Reject(f"operator '{type(node.op).__name__}' is not allowed", node)
        left = self.build(node.left)
        right = self.build(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            if right.is_zero:
                raise _Reject("division by zero", node)
            return left / right
        # **: checked on float64 values before sympy computes anything
        exponent = self._value(right)
        if exponent is not None:
            if abs(exponent) > MAX_EXPONENT:
                raise _Reject(f"constant exponent must be at most {MAX_EXPONENT} in size", node)
            base = self._value(left)
            if base is not None:
                if base == 0 and exponent < 0:
                    raise _Reject("division by zero", node)
                try:
                    magnitude = abs(base) ** exponent if base else 0.0
                except OverflowError:
                    magnitude = math.inf
                if not magnitude < MAX_CONSTANT:
                    raise _Reject(f"constant power larger than {MAX_CONSTANT:g}", node)
        return left**right

    def _call(self, node: ast.Call) -> sp.Expr:
        if isinstance(node.func, ast.Attribute):
            self.build(node.func)
        if not isinstance(node.func, ast.Name):
            raise _Reject("only calls of whitelisted functions by name are allowed", node.func)
        name = node.func.id
        if node.keywords:
            raise _Reject(f"{name}() takes no keyword arguments", node)
        if name in CONDITIONALS:
            if len(node.args) != 3:
                raise _Reject(f"{name}(condition, a, b) takes 3 arguments", node)
            condition = self._condition(node.args[0])
            then, other = self.build(node.args[1]), self.build(node.args[2])
            return sp.Piecewise((then, condition), (other, True))
        if name not in FUNCTIONS:
            raise _Reject(f"'{_shorten(name, 40)}' is not an allowed function", node.func)
        builder, low, high = FUNCTIONS[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            wanted = f"{low}" if low == high else f"at least {low}"
            raise _Reject(f"{name}() takes {wanted} argument(s), got {count}", node)
        args = [self.build(arg) for arg in node.args]
        if builder in (sp.Min, sp.Max):
            compared = sum(len(a.args) if isinstance(a, builder) else 1 for a in args)
            if compared > MAX_COMPARED:
                raise _Reject(f"{name}() compares at most {MAX_COMPARED} arguments (nested {name}() "
                              f"counted together), got {compared}", node)
        return builder(*args)

    def _condition(self, node: ast.AST) -> sp.Basic:
        if isinstance(node, ast.BoolOp):
            parts = [self._condition(value) for value in node.values]
            return sp.And(*parts) if isinstance(node.op, ast.And) else sp.Or(*parts)
        if isinstance(node, ast.Compare):
            terms = [self.build(node.left)] + [self.build(c) for c in node.comparators]
            relations = []
            for op, (a, b) in zip(node.ops, zip(terms, terms[1:])):
                if type(op) not in _COMPARE:
                    raise _Reject(f"comparison '{type(op).__name__}' is not allowed (use < <= > >=)", node)
                relations.append(_COMPARE[type(op)](a, b))
            return sp.And(*relations)
        raise _Reject("the condition of where() must be a comparison such as x > 0", node)


def exact_number(value: Any) -> sp.Rational:
    """A number typed by a user (a literal, or a parameter in a family file) as an exact
    sympy rational, under the literal rules: finite; a decimal at most :data:`MAX_LITERAL`
    in size; an integer, and the numerator and denominator of a decimal's exact fraction,
    at most :data:`MAX_INTEGER`. ExpressionError (one line, not located) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"constant {_shorten(repr(value), 40)} is not a number")
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise ExpressionError(f"number {_shorten(str(value), 24)} is larger than 1e100")
        return sp.Integer(value)
    if not math.isfinite(value):
        raise ExpressionError(f"non-finite constant {value!r}")
    if abs(value) > MAX_LITERAL:
        raise ExpressionError(f"number {value!r} is larger than {MAX_LITERAL:g}")
    # Exact decimal -> rational, so 0.5 and 1/2 are the same tree.
    fraction = Fraction(repr(value))
    if fraction.denominator > MAX_INTEGER:
        raise ExpressionError(f"number {value!r} is too small or too precise (as an exact "
                              "fraction its denominator is larger than 1e100)")
    return sp.Rational(fraction.numerator, fraction.denominator)


# --------------------------------------------------------------------------- printing


class _TextPrinter(StrPrinter):
    """Prints sympy trees back in the expression language."""

    def _print_Abs(self, expr: sp.Abs) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Cbrt(self, expr: Cbrt) -> str:
        return f"cbrt({self._print(expr.args[0])})"

    def _print_Exp1(self, expr: Any) -> str:
        return "e"

    def _print_Pi(self, expr: Any) -> str:
        return "pi"

    def _print_Max(self, expr: sp.Max) -> str:
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Min(self, expr: sp.Min) -> str:
        args = expr.args
        if len(args) == 2:
            inner = [a for a in args if isinstance(a, sp.Max) and len(a.args) == 2]
            if inner:
                maximum = inner[0]
                hi = args[0] if args[1] is maximum else args[1]
                lows = [a for a in maximum.args if not a.free_symbols]
                values = [a for a in maximum.args if a.free_symbols]
                if len(lows) == 1 and len(values) == 1 and not hi.free_symbols:
                    return f"clip({self._print(values[0])}, {self._print(lows[0])}, {self._print(hi)})"
        return "min(" + ", ".join(self._print(a) for a in args) + ")"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        pieces = list(expr.args)
        value, condition = pieces[-1]
        text = self._print(value) if condition == sp.true else "nan"
        for value, condition in reversed(pieces[:-1] if condition == sp.true else pieces):
            text = f"where({self._print(condition)}, {self._print(value)}, {text})"
        return text

    def _print_And(self, expr: sp.And) -> str:
        return " and ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr: sp.Or) -> str:
        return " or ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Relational(self, expr: Any) -> str:
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"


def to_text(expr: sp.Expr) -> str:
    """Canonical text of a sympy tree, in the expression language."""
    return _TextPrinter({"order": "none"}).doprint(expr)


# --------------------------------------------------------------------------- evaluation


class _Backend:
    """Element-wise operations of one array library, used by the tree walker."""

    def __init__(self, name: str, ops: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.ops = ops


def _numpy_backend() -> _Backend:
    from scipy import special

    return _Backend(
        "numpy",
        {
            "erf": special.erf, "erfc": special.erfc, "tanh": np.tanh, "atan": np.arctan,
            "asinh": np.arcsinh, "sinh": np.sinh, "cosh": np.cosh, "exp": np.exp,
            "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan, "abs": np.abs,
            "sign": np.sign, "sqrt": np.sqrt, "cbrt": np.cbrt,
            # binary ops take the input ``like`` as the torch ones do (numpy broadcasts scalars)
            "pow": lambda a, b, like: np.power(a, b),
            "maximum": lambda a, b, like: np.maximum(a, b),
            "minimum": lambda a, b, like: np.minimum(a, b),
            "where": lambda c, a, b, like: np.where(c, a, b),
            "and": lambda a, b, like: np.logical_and(a, b),
            "or": lambda a, b, like: np.logical_or(a, b),
            "full_like": lambda t, v: np.full_like(t, v),
            "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
        },
    )


ROOT_GRADIENT = "finite-at-0"
"""How compiled roots differentiate at an input of exactly 0 (see :func:`root_pow`). Recorded in
the trial key of every expression with a root (:func:`has_root`), so results computed before
the rule existed (a NaN gradient there) are never reused as if computed under it."""


def root_pow(base: Any, exponent: float) -> Any:
    """``base ** exponent`` for 0 < exponent < 1 with a finite gradient at ``base == 0``.

    The slope of a root is infinite at 0; autograd's ``inf * 0`` (the chain through ``abs`` or
    ``sign``, whose derivative is 0 there) turns one exact zero into a NaN gradient that
    poisons the whole step. The function is continuous at 0, so its gradient there is taken as
    0, the sub-gradient PyTorch gives ``abs`` at 0 for the same reason. Elsewhere the gradient
    is PyTorch's own formula (``grad / (2 sqrt)`` for the square root, ``p * base**(p-1)``
    otherwise)."""
    return _RootPow.apply(base, float(exponent))


def _root_pow_class() -> Any:
    import torch

    class RootPow(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, base: Any, exponent: float) -> Any:
            result = torch.sqrt(base) if exponent == 0.5 else torch.pow(base, exponent)
            ctx.exponent = exponent
            ctx.save_for_backward(base, result)
            return result

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            base, result = ctx.saved_tensors
            zero = base == 0
            if ctx.exponent == 0.5:
                slope_grad = grad / (2 * torch.where(zero, torch.ones_like(result), result))
            else:
                safe = torch.where(zero, torch.ones_like(base), base)
                slope_grad = grad * (ctx.exponent * safe.pow(ctx.exponent - 1))
            return torch.where(zero, torch.zeros_like(slope_grad), slope_grad), None

    return RootPow


class _LazyRootPow:
    """Builds the autograd class on first use (importing this module stays torch-free)."""

    _cls: Any = None

    def apply(self, base: Any, exponent: float) -> Any:
        if _LazyRootPow._cls is None:
            _LazyRootPow._cls = _root_pow_class()
        return _LazyRootPow._cls.apply(base, exponent)


_RootPow = _LazyRootPow()


def has_root(expr: Expression | sp.Basic | str) -> bool:
    """Whether the compiled form of ``expr`` takes a root (a power strictly between 0 and 1, a
    square or cube root), i.e. whether :data:`ROOT_GRADIENT` applies to it."""
    tree = _as_sympy(expr)
    return any((isinstance(node, sp.Pow) and node.exp.is_number and 0 < node.exp < 1)
               or isinstance(node, Cbrt) for node in sp.preorder_traversal(tree))


def _torch_backend() -> _Backend:
    import torch

    def as_tensor_like(value: Any, like: Any) -> Any:
        return value if isinstance(value, torch.Tensor) else torch.full_like(like, float(value))

    def binary(fn: Callable[..., Any]) -> Callable[..., Any]:
        def apply(a: Any, b: Any, like: Any) -> Any:
            return fn(as_tensor_like(a, like), as_tensor_like(b, like))

        return apply

    def where(condition: Any, a: Any, b: Any, like: Any) -> Any:
        return torch.where(condition, as_tensor_like(a, like), as_tensor_like(b, like))

    def cbrt(value: Any) -> Any:
        return torch.sign(value) * root_pow(torch.abs(value), 1.0 / 3.0)

    def power(base: Any, exponent: Any, like: Any) -> Any:
        if isinstance(base, torch.Tensor) and isinstance(exponent, float) and 0.0 < exponent < 1.0:
            return root_pow(base, exponent)
        if isinstance(exponent, torch.Tensor) or isinstance(base, torch.Tensor):
            return torch.pow(base, exponent)
        return torch.full_like(like, float(base) ** float(exponent))

    def sqrt(value: Any) -> Any:
        return root_pow(value, 0.5)

    return _Backend(
        "torch",
        {
            "erf": torch.erf, "erfc": torch.erfc, "tanh": torch.tanh, "atan": torch.atan,
            "asinh": torch.asinh, "sinh": torch.sinh, "cosh": torch.cosh, "exp": torch.exp,
            "log": torch.log, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
            "abs": torch.abs, "sign": torch.sign, "sqrt": sqrt, "cbrt": cbrt, "pow": power,
            "maximum": binary(torch.maximum), "minimum": binary(torch.minimum), "where": where,
            "and": binary(torch.logical_and), "or": binary(torch.logical_or),
            "full_like": lambda t, v: torch.full_like(t, v),
            "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
        },
    )


_UNARY = {
    sp.erf: "erf", sp.erfc: "erfc", sp.tanh: "tanh", sp.atan: "atan", sp.asinh: "asinh",
    sp.sinh: "sinh", sp.cosh: "cosh", sp.exp: "exp", sp.log: "log", sp.sin: "sin",
    sp.cos: "cos", sp.tan: "tan", sp.Abs: "abs", sp.sign: "sign", Cbrt: "cbrt",
}
_RELATIONS = {sp.StrictLessThan: "lt", sp.LessThan: "le", sp.StrictGreaterThan: "gt", sp.GreaterThan: "ge"}
_FOLDS = {sp.Max: "maximum", sp.Min: "minimum", sp.And: "and", sp.Or: "or"}


def _constants_to_floats(expr: sp.Basic) -> sp.Basic:
    """Replace every constant subtree (pi, sqrt(2), erf(1), ...) by one float.

    The exact evaluation (``sp.N``) keeps reference values as they always were; the tree
    check before it (float64, bottom-up) refuses the constants that would make it hang
    (``exp(exp(20))``), also in trees that did not come from :func:`parse_expression`."""
    check_tree(expr)
    return _fold_constants(expr)


def _fold_constants(expr: sp.Basic) -> sp.Basic:
    if isinstance(expr, sp.Number) or isinstance(expr, sp.logic.boolalg.BooleanAtom):
        return expr
    if isinstance(expr, sp.Expr) and not expr.free_symbols:
        return sp.Float(sp.N(expr, 20), 17)
    if not expr.args:
        return expr
    if isinstance(expr, sp.Piecewise):
        return sp.Piecewise(*[(_fold_constants(e), _fold_constants(c)) for e, c in expr.args])
    args = [_fold_constants(a) for a in expr.args]
    try:
        return expr.func(*args, evaluate=False)
    except TypeError:
        return expr.func(*args)


def _walker(expr: sp.Basic, backend: _Backend) -> Callable[[Any], Any]:
    """Turn a sympy tree into a closure calling the backend's element-wise functions."""
    ops = backend.ops
    is_torch = backend.name == "torch"

    def compile_node(node: sp.Basic) -> Callable[[Any], Any]:
        if node == X:
            return lambda t: t
        if isinstance(node, sp.Number):
            if isinstance(node, sp.Integer) and abs(node.p) < 2**53:
                value: float | int = int(node)
            else:
                value = float(node)
            return lambda t: value
        if node in (sp.true, sp.false):
            truth = bool(node)
            return lambda t: ops["full_like"](t, 1.0) > 0.5 if truth else ops["full_like"](t, 0.0) > 0.5
        if isinstance(node, sp.Add):
            parts = [compile_node(a) for a in node.args]

            def add(t: Any) -> Any:
                total = parts[0](t)
                for part in parts[1:]:
                    total = total + part(t)
                return total

            return add
        if isinstance(node, sp.Mul):
            parts = [compile_node(a) for a in node.args]

            def mul(t: Any) -> Any:
                total = parts[0](t)
                for part in parts[1:]:
                    total = total * part(t)
                return total

            return mul
        if isinstance(node, sp.Pow):
            base, exponent = node.args
            base_fn = compile_node(base)
            if exponent == sp.Rational(1, 2):
                return lambda t: ops["sqrt"](base_fn(t))
            if exponent == -1:
                return lambda t: 1.0 / base_fn(t)
            if isinstance(exponent, sp.Integer):
                power = int(exponent) if is_torch else float(exponent)
                return lambda t: ops["pow"](base_fn(t), power, t)
            exponent_fn = compile_node(exponent)
            return lambda t: ops["pow"](base_fn(t), exponent_fn(t), t)
        if node.func in _UNARY:
            name = _UNARY[node.func]
            (arg,) = node.args
            arg_fn = compile_node(arg)
            fn = ops[name]
            if is_torch:
                import torch

                def unary_torch(t: Any) -> Any:
                    value = arg_fn(t)
                    if not isinstance(value, torch.Tensor):
                        value = torch.full_like(t, float(value))
                    return fn(value)

                return unary_torch
            return lambda t: fn(arg_fn(t))
        if type(node) in _FOLDS:  # max, min, and, or of any number of arguments
            name = _FOLDS[type(node)]
            parts = [compile_node(a) for a in node.args]

            def fold(t: Any) -> Any:
                result = parts[0](t)
                for part in parts[1:]:
                    result = ops[name](result, part(t), t)
                return result

            return fold
        if isinstance(node, sp.Piecewise):
            pieces = [(compile_node(e), compile_node(c)) for e, c in node.args]

            def piecewise(t: Any) -> Any:
                value_fn, _ = pieces[-1]
                result = value_fn(t)
                for value_fn, cond_fn in reversed(pieces[:-1]):
                    result = ops["where"](cond_fn(t), value_fn(t), result, t)
                return result

            return piecewise
        if type(node) in _RELATIONS:
            name = _RELATIONS[type(node)]
            lhs, rhs = compile_node(node.lhs), compile_node(node.rhs)

            def relation(t: Any) -> Any:
                a, b = lhs(t), rhs(t)
                if not hasattr(a, "shape"):
                    a = ops["full_like"](t, float(a))
                return ops[name](a, b)

            return relation
        raise ExpressionError(f"cannot compile '{node.func.__name__}' in {to_text(expr)}")

    body = compile_node(_constants_to_floats(expr))

    def evaluate(t: Any) -> Any:
        value = body(t)
        if not hasattr(value, "shape") or getattr(value, "shape", None) != getattr(t, "shape", None):
            value = ops["full_like"](t, 0.0) + value
        return value

    return evaluate


def _as_sympy(expr: Expression | sp.Expr | str) -> sp.Expr:
    if isinstance(expr, Expression):
        return expr.expr
    if isinstance(expr, str):
        return parse_expression(expr).expr
    return expr


def to_numpy(expr: Expression | sp.Expr | str) -> Callable[[np.ndarray], np.ndarray]:
    """The float64 reference: an element-wise numpy/scipy function (warnings silenced)."""
    body = _walker(_as_sympy(expr), _numpy_backend())

    def reference(values: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(body(np.asarray(values, dtype=np.float64)), dtype=np.float64)

    return reference


def to_torch(expr: Expression | sp.Expr | str) -> Callable[[Any], Any]:
    """An element-wise, differentiable torch function of any shape and floating dtype."""
    return _walker(_as_sympy(expr), _torch_backend())


def compile_function(text: str) -> Callable[[Any], Any]:
    """Parse untrusted text and compile it to a torch function (the layers' entry point)."""
    return to_torch(parse_expression(text))


# --------------------------------------------------------------------------- checks


CHECK_GRID = np.unique(np.concatenate([np.linspace(-10.0, 10.0, 2001), [0.0, -1e-6, 1e-6]]))
"""Points where compiled functions are checked: [-10, 10] step 0.01, with 0 and +-1e-6."""
FLOAT64_TOLERANCE = (1e-9, 1e-9)  # (absolute, relative) torch float64 vs reference
FLOAT32_TOLERANCE = (1e-5, 1e-4)  # (absolute, relative) torch float32 vs reference at the same points


@dataclass(frozen=True)
class CompileCheck:
    """Outcome of checking a compiled torch function against the float64 reference."""

    values_ok: bool
    gradient_ok: bool
    max_abs_error_float32: float
    reason: str | None = None
    note: str | None = None  # worth knowing, not a problem (e.g. a root's infinite slope at 0)

    @property
    def ok(self) -> bool:
        return self.values_ok and self.gradient_ok


def _first_bad(points: np.ndarray, mask: np.ndarray) -> str:
    bad = points[mask]
    if np.any(bad == 0.0):
        return "x=0"
    nearest = bad[np.argmin(np.abs(bad))]
    return f"x={nearest:g}" + (f" (and {bad.size - 1} more points)" if bad.size > 1 else "")


def check_compiled(expr: Expression | sp.Expr | str) -> CompileCheck:
    """Compare torch (float64 and float32) with the float64 reference on :data:`CHECK_GRID`,
    and require a finite autograd gradient at every grid point, 0 included."""
    import torch

    sym = _as_sympy(expr)
    reference = to_numpy(sym)
    torch_fn = to_torch(sym)
    grid = CHECK_GRID
    expected = reference(grid)
    if not np.all(np.isfinite(expected)):
        where = _first_bad(grid, ~np.isfinite(expected))
        return CompileCheck(False, False, math.nan, f"not finite at {where} (undefined there)")

    t64 = torch.tensor(grid, dtype=torch.float64, requires_grad=True)
    out64 = torch_fn(t64)
    got64 = out64.detach().numpy()
    atol, rtol = FLOAT64_TOLERANCE
    mismatch = ~np.isclose(got64, expected, atol=atol, rtol=rtol)
    if np.any(mismatch):
        where = _first_bad(grid, mismatch)
        return CompileCheck(False, False, math.nan, f"torch float64 disagrees with the reference at {where}")

    grid32 = grid.astype(np.float32)
    got32 = torch_fn(torch.tensor(grid32)).numpy().astype(np.float64)
    expected32 = reference(grid32.astype(np.float64))
    atol, rtol = FLOAT32_TOLERANCE
    error32 = np.abs(got32 - expected32)
    max_error = float(np.nanmax(error32)) if error32.size else 0.0
    mismatch = ~(error32 <= atol + rtol * np.abs(expected32))
    if np.any(mismatch):
        where = _first_bad(grid, mismatch)
        return CompileCheck(False, False, max_error, f"torch float32 disagrees with the reference at {where}")

    if not out64.requires_grad:  # a constant function: zero slope everywhere
        return CompileCheck(True, True, max_error, None)
    (gradient,) = torch.autograd.grad(out64.sum(), t64)
    bad_gradient = ~np.isfinite(gradient.numpy())
    if np.any(bad_gradient):
        where = _first_bad(grid, bad_gradient)
        what = "infinite slope" if where == "x=0" else "non-finite gradient"
        return CompileCheck(True, False, max_error, f"{what} at {where}")
    near = np.abs(grid) == 1e-6
    if has_root(sym) and np.any(np.abs(gradient.numpy()[near]) > 100):  # steep enough to matter
        return CompileCheck(True, True, max_error, None,
                            "infinite slope at x=0 (the compiled gradient there is 0: expressions.root_pow)")
    return CompileCheck(True, True, max_error, None)


FINGERPRINT_POINTS = np.concatenate(
    [np.linspace(-7.3, 7.3, 97), [-100.0, -25.0, -0.013, 0.0, 0.013, 25.0, 100.0],
     # far points: clip(sign(x)*log(|x|+1), -5, 5) differs from the unclipped one only
     # beyond |x| = 147, and the clip study needs both
     [-1e6, -1e4, -1e3, 1e3, 1e4, 1e6]]
) * (1 + math.sqrt(2) * 1e-3)
"""Irrational-looking points: with decimal points, (1-l) f + l x at l = 0.01 lands exactly on a
rounding boundary (1.0310625), and two spellings of one function round apart."""
FINGERPRINT_DECIMALS = 6


def fingerprint(expr: Expression | sp.Expr | str) -> str:
    """A numeric identity: reference values at fixed points, rounded, hashed.

    Two spellings of one function (``tanh(x/2)`` and ``2*sigmoid(x)-1``) get the same
    fingerprint; this is how the catalog deduplicates."""
    values = to_numpy(expr)(FINGERPRINT_POINTS)
    rounded = np.round(values, FINGERPRINT_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    # beyond 1e4 in size, 10 significant digits (rounding noise of x^5 at 1e6 is ~1e14)
    tokens = ["nan" if np.isnan(v) else ("inf" if v > 0 else "-inf") if np.isinf(v)
              else f"{v:.6f}" if abs(v) < 1e4 else f"{v:.9e}" for v in rounded]
    return hashlib.sha1(",".join(tokens).encode()).hexdigest()[:16]
