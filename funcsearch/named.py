"""The vocabulary of the unified form: built-in function names (the paper's 16 searched
functions, aliases), the baselines with their shift rule, and the kinds of learnable shift.

`resolve_function` turns what a user types after ``--fn`` (or lists in a config) into a
``(name, expression)`` pair: a known name keeps its name, anything else is parsed as an
expression and named by its canonical text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from funcsearch.errors import ExpressionError
from funcsearch.expressions import parse_expression

SHIFT_KINDS: tuple[str, ...] = ("scalar", "vector", "none")
"""The learnable shift s of ``gamma * f(alpha*x + s) + beta``: one scalar, one per channel,
or none. Declared here once; configs, the CLI, layers and references read it."""
ShiftKind = Literal["scalar", "vector", "none"]

PAPER_SEARCH: dict[str, str] = {
    "erf": "erf(x)",
    "tanh": "tanh(x)",
    "arctan": "2/pi*atan(x)",
    "satursin": "sin(clip(x, -pi/2, pi/2))",
    "arcsinhclip": "clip(asinh(x), -1, 1)",
    "isru": "x/sqrt(x**2 + 1)",
    "exproot": "sign(x)*(1 - exp(-sqrt(abs(x))))",
    "linearclip": "clip(x, -1, 1)",
    "expsign": "sign(x)*(1 - exp(-abs(x)))",
    "logsignclip": "clip(sign(x)*log(abs(x) + 1), -1, 1)",
    "relsign": "x/(sqrt(x**2 + 1) + 1)",
    "smoothsign": "x/(1 + abs(x))",
    "logquadclip": "clip(sign(x)*log(x**2 + 1), -1, 1)",
    "power23clip": "clip(sign(x)*abs(x)**(2/3), -1, 1)",
    "saturlog": "sign(x)*log(abs(x) + 1)/(log(abs(x) + 1) + 1)",
    "cubsign": "x**3/(abs(x)**3 + 1)",
}
"""The 16 functions of the Derf paper's search (names as in candidates/paper_search.yaml)."""

ALIASES: dict[str, str] = {"derf": "erf", "dyt": "tanh", "atan": "arctan", "identity": "x"}

EXTRA: dict[str, str] = {"x": "x", "tanh_eps": "tanh(1.205*x)"}

BUILTIN_FUNCTIONS: dict[str, str] = {**PAPER_SEARCH, **EXTRA}
"""Every built-in point-wise function by name."""

NORM_BASELINES: tuple[str, ...] = ("layernorm", "rmsnorm")
"""Statistics-based baselines: they have no point-wise expression."""



@dataclass(frozen=True)
class Baseline:
    """A baseline every search can compare against.

    ``expression`` is None for the statistics-based norms. ``shift`` is the baseline's own
    shift rule: a fixed kind (LayerNorm and RMSNorm have no point-wise shift, DyT has none by
    definition) or None to follow the search's ``function.shift`` (Derf)."""

    name: str
    expression: str | None
    shift: str | None
    description: str = ""

    @property
    def is_norm(self) -> bool:
        return self.expression is None


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("layernorm", None, "none", "LayerNorm"),
    Baseline("rmsnorm", None, "none", "RMSNorm"),
    Baseline("dyt", "tanh(x)", "none", "Dynamic tanh: tanh(alpha*x), no shift"),
    Baseline("derf", "erf(x)", None, "Dynamic erf: erf(alpha*x + s)"),
)}
"""The four baselines every search compares against."""


def shift_rule(name: str) -> str | None:
    """The fixed shift kind of a baseline or built-in name (None: it follows the setting)."""
    baseline = BASELINES.get(name.strip().lower())
    return baseline.shift if baseline is not None else None


def resolve_function(name_or_expr: str) -> tuple[str, str | None]:
    """Return ``(name, expression_text)``; the expression is None for layernorm/rmsnorm.

    Raises ExpressionError (with the offending part) when the text is neither a known name
    nor a valid expression."""
    if not isinstance(name_or_expr, str) or not name_or_expr.strip():
        raise ExpressionError(f"expected a function name or an expression, got {name_or_expr!r}")
    key = name_or_expr.strip()
    lowered = key.lower()
    if lowered in NORM_BASELINES:
        return lowered, None
    if lowered in ALIASES and ALIASES[lowered] in BUILTIN_FUNCTIONS:
        target = ALIASES[lowered]
        return lowered, BUILTIN_FUNCTIONS[target]
    if lowered in ALIASES:
        return lowered, ALIASES[lowered]
    if lowered in BUILTIN_FUNCTIONS:
        return lowered, BUILTIN_FUNCTIONS[lowered]
    expression = parse_expression(key)
    return expression.text, expression.text
