"""Built-in function names: the paper's 16 searched functions, aliases, the norm baselines.

`resolve_function` turns what a user types after ``--fn`` (or lists in a config) into a
``(name, expression)`` pair: a known name keeps its name, anything else is parsed as an
expression and named by its canonical text.
"""

from __future__ import annotations

from funcsearch.errors import ExpressionError
from funcsearch.expressions import parse_expression

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

BASELINES: dict[str, str | None] = {"layernorm": None, "rmsnorm": None, "dyt": "tanh(x)", "derf": "erf(x)"}
"""The four baselines every search compares against (DyT: tanh without shift; Derf: erf)."""


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
