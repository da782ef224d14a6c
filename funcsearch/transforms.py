"""The transformation registry: each transform is one formula on a sympy function of x.

Families (see :mod:`funcsearch.families`) apply these in a pipeline to widen a set of base
functions. Every transform has a stable name used in candidate names
(``erf|translate=+2``, ``erf|clip=1|mix=0.1``), so results join across runs.

name           parameter    formula                          identity value
translate      a            f(x + a)                         0
offset         b            f(x) + b                         0
scale_x        k != 0       f(k x)                           1
scale_y        k != 0       k f(x)                           1
negate         -            -f(x)
mirror         -            f(-x)            (reflection in the y axis)
point_reflect  -            -f(-x)           (180-degree rotation about the origin)
odd            -            sign(x) f(|x|)   (odd extension of the x >= 0 half)
clip           c > 0        clip(f(x), -c, c)
mix            0 <= l <= 1  (1 - l) f(x) + l x               0
flat_zone      l >= 0       f(x - clip(x, -l, l))            0
ratio          -            f(x) / (1 + |f(x)|)
rescale        -            f(x) / sup|f|    (sup found numerically, see below)

Decisions:
- ``odd``: the result is exactly the odd mirror of the branch x >= 0: f(x) for x > 0,
  -f(-x) for x < 0 and 0 at x = 0 (the only value an odd function can take there). When
  f(0) != 0 it jumps by 2 f(0) at the origin; the property checker will show it.
- ``flat_zone``: x - clip(x, -l, l) is 0 for |x| <= l and x - sign(x) l outside, so the
  result is f(0) inside the zone and f(x - sign(x) l) outside: the branches are shifted
  outward and the function is continuous for every f. When f(0) = 0 (zero-centred bases)
  it is exactly "zero inside"; when f(0) != 0 the zone is flat at f(0) rather than 0,
  which keeps it continuous (a jump would mix two effects in one study).
- ``rescale``: sup |f| is found numerically: the largest |f| on a grid of [-10, 10]
  (step 0.005) plus log-spaced points out to |x| = 1e6, refined by a bounded 1-D search
  around an interior maximum, or by Aitken extrapolation when the maximum is the limit at
  infinity (so atan gets pi/2, not atan(1e6)). The divisor is written as a short closed
  form when one matches to 1e-9 (pi/2), else with 12 significant digits. A function that
  still grows between |x| = 1e5 and 1e6 (unbounded), is zero or is not finite cannot be
  rescaled and raises an ExpressionError.
- Identity values (the last column) leave f unchanged and add nothing to the name, as does
  ``none`` (see :mod:`funcsearch.families`).
- Every step's result is checked against the limits of a built expression
  (:func:`funcsearch.expressions.check_tree`): ``ratio`` and ``flat_zone`` use f (or x)
  twice, so 30 such steps would build a tree of 2**30 parts; the step that crosses
  :data:`funcsearch.expressions.MAX_TREE_SIZE` raises an ExpressionError instead.
- Parameters follow the parser's rules for numbers
  (:func:`funcsearch.expressions.exact_number`): finite, decimals at most 1e6 in size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np
import sympy as sp

from funcsearch.errors import ExpressionError
from funcsearch.expressions import X, check_tree, exact_number, to_numpy, to_text

__all__ = ["Transform", "TRANSFORMS", "apply_transform", "format_value", "step_label",
           "as_number", "sup_abs"]


@dataclass(frozen=True)
class Transform:
    """One registered transformation: its formula, parameter rules and name format."""

    name: str
    formula: str
    description: str
    apply: Callable[[sp.Expr, sp.Expr | None], sp.Expr]
    parameter: str | None = None  # None: the transform takes no parameter
    identity: float | None = None  # parameter value that leaves f unchanged
    signed: bool = False  # names show the sign of the parameter (+2, -0.5)
    valid: Callable[[float], bool] | None = None
    valid_text: str = ""

    def check_value(self, value: float) -> str | None:
        """Why ``value`` is not a valid parameter, or None when it is."""
        if not math.isfinite(value):
            return f"{self.name} needs a finite {self.parameter}, got {value}"
        if self.valid is not None and not self.valid(value):
            return f"{self.name} needs {self.valid_text}, got {format_value(value)}"
        return None


def _sub(expr: sp.Expr, replacement: sp.Expr) -> sp.Expr:
    """f(replacement): put ``replacement`` in place of x.

    Unlike ``xreplace`` this rebuilds Min/Max without evaluation: sympy's evaluation of
    Min/Max compares every pair of arguments symbolically and costs tens of milliseconds
    per clip, which would dominate the whole catalog."""
    if expr == X:
        return replacement
    if not expr.args or not expr.has(X):
        return expr
    if isinstance(expr, sp.Piecewise):
        return sp.Piecewise(*[(_sub(value, replacement), _sub(cond, replacement))
                              for value, cond in expr.args])
    args = [_sub(arg, replacement) for arg in expr.args]
    if isinstance(expr, (sp.Min, sp.Max)):
        return expr.func(*args, evaluate=False)
    return expr.func(*args)


def _clip(expr: sp.Expr, c: sp.Expr) -> sp.Expr:
    """clip(f, -c, c) as Min(Max(f, -c), c), unevaluated (see :func:`_sub`)."""
    return sp.Min(sp.Max(expr, -c, evaluate=False), c, evaluate=False)


def _ratio(expr: sp.Expr) -> sp.Expr:
    """f / (1 + |f|), unevaluated: sympy's evaluated division asks sign questions about f
    and costs ~10 ms per candidate."""
    denominator = sp.Add(1, sp.Abs(expr, evaluate=False), evaluate=False)
    return sp.Mul(expr, sp.Pow(denominator, -1, evaluate=False), evaluate=False)


SUP_GRID = np.unique(np.concatenate([
    np.linspace(-10.0, 10.0, 4001),
    np.logspace(1.0, 6.0, 101), -np.logspace(1.0, 6.0, 101),
]))
"""Grid on which ``rescale`` looks for sup |f|."""


def sup_abs(expr: sp.Expr) -> float:
    """sup |f|: the grid maximum, refined (interior maximum: bounded 1-D search; maximum
    at the far end: Aitken extrapolation of |f| at 1e4, 1e5, 1e6, exact for tails like
    L - c/x^p). ExpressionError if f is not finite, zero, or still grows (unbounded)."""
    fn = to_numpy(expr)
    values = np.abs(fn(SUP_GRID))
    if not np.all(np.isfinite(values)):
        bad = SUP_GRID[~np.isfinite(values)]
        raise ExpressionError(f"rescale: {to_text(expr)} is not finite at x={bad[np.argmin(np.abs(bad))]:g}")
    inner = values[np.abs(SUP_GRID) <= 1e5].max()
    outer = values.max()
    if outer > inner * (1.0 + 1e-3) and outer - inner > 1e-12:
        raise ExpressionError(f"rescale: {to_text(expr)} is unbounded (still grows beyond |x| = 1e5)")
    if outer == 0.0:
        raise ExpressionError(f"rescale: {to_text(expr)} is zero everywhere")
    index = int(np.argmax(values))
    if abs(SUP_GRID[index]) >= 1e6 * (1 - 1e-12):
        side = math.copysign(1.0, SUP_GRID[index])
        f1, f2, f3 = np.abs(fn(side * np.array([1e4, 1e5, 1e6])))
        denominator = (f3 - f2) - (f2 - f1)
        if denominator != 0 and abs(f3 - f2) < abs(f2 - f1):
            return float(max(outer, f3 - (f3 - f2) ** 2 / denominator))
        return float(outer)
    if 0 < index < len(SUP_GRID) - 1:
        from scipy.optimize import minimize_scalar

        result = minimize_scalar(lambda t: -float(np.abs(fn(np.array([t])))[0]),
                                 bounds=(SUP_GRID[index - 1], SUP_GRID[index + 1]),
                                 method="bounded", options={"xatol": 1e-12})
        return float(max(outer, -result.fun))
    return float(outer)


def _readable_constant(value: float) -> sp.Expr:
    """The value as a short closed form in pi, e, sqrt when one matches to 1e-9 relative
    (pi/2 rather than 1.5707963268), else its 12 significant digits as a rational."""
    try:
        guess = sp.nsimplify(value, [sp.pi, sp.E], tolerance=1e-10 * max(1.0, abs(value)),
                             rational=False)
        if (guess.is_number and guess.is_positive and len(str(guess)) <= 24
                and not guess.has(sp.Float) and abs(float(guess) - value) <= 1e-9 * abs(value)):
            return guess
    except (TypeError, ValueError, ArithmeticError, RecursionError):
        pass
    top = Fraction(f"{value:.12g}")
    return sp.Rational(top.numerator, top.denominator)


def _rescale(expr: sp.Expr, _: sp.Expr | None) -> sp.Expr:
    return expr / _readable_constant(sup_abs(expr))


TRANSFORMS: dict[str, Transform] = {t.name: t for t in [
    Transform("translate", "f(x + a)", "horizontal shift by -a",
              lambda f, a: _sub(f, X + a), "a", identity=0.0, signed=True),
    Transform("offset", "f(x) + b", "vertical shift by b",
              lambda f, b: f + b, "b", identity=0.0, signed=True),
    Transform("scale_x", "f(k*x)", "horizontal scaling (k < 0 also mirrors)",
              lambda f, k: _sub(f, k * X), "k", identity=1.0,
              valid=lambda k: k != 0, valid_text="k != 0"),
    Transform("scale_y", "k*f(x)", "vertical scaling (k < 0 also negates)",
              lambda f, k: k * f, "k", identity=1.0,
              valid=lambda k: k != 0, valid_text="k != 0"),
    Transform("negate", "-f(x)", "reflection in the x axis", lambda f, _: -f),
    Transform("mirror", "f(-x)", "reflection in the y axis", lambda f, _: _sub(f, -X)),
    Transform("point_reflect", "-f(-x)", "point reflection through the origin "
              "(180-degree rotation)", lambda f, _: -_sub(f, -X)),
    Transform("odd", "sign(x)*f(abs(x))", "odd extension: mirror the x >= 0 half "
              "through the origin (0 at x = 0)", lambda f, _: sp.sign(X) * _sub(f, sp.Abs(X))),
    Transform("clip", "clip(f(x), -c, c)", "clipping to [-c, c]", _clip, "c",
              valid=lambda c: c > 0, valid_text="c > 0"),
    Transform("mix", "(1 - l)*f(x) + l*x", "linear mix with the identity",
              lambda f, l: (1 - l) * f + l * X, "l", identity=0.0,
              valid=lambda l: 0 <= l <= 1, valid_text="0 <= l <= 1"),
    Transform("flat_zone", "f(x - clip(x, -l, l))", "flat zone of half-width l: f(0) "
              "for |x| <= l, f(x - sign(x)*l) outside (continuous)",
              lambda f, l: _sub(f, X - _clip(X, l)), "l", identity=0.0,
              valid=lambda l: l >= 0, valid_text="l >= 0"),
    Transform("ratio", "f(x)/(1 + abs(f(x)))", "canonical ratio: squashes any f into "
              "(-1, 1)", lambda f, _: _ratio(f)),
    Transform("rescale", "f(x)/sup(abs(f))", "rescale to [-1, 1] by the numerical "
              "sup |f| (bounded f only)", _rescale),
]}


def as_number(value: float | int | str | sp.Expr) -> sp.Expr:
    """An exact sympy constant: decimals become rationals (0.1 -> 1/10), like the parser,
    under the parser's rules for numbers (ValueError: not finite, larger than 1e6, ...)."""
    if isinstance(value, sp.Expr):
        return value
    if isinstance(value, bool):
        raise TypeError("a parameter must be a number, not a boolean")
    if isinstance(value, int | float):
        try:
            return exact_number(value)
        except ExpressionError as exc:
            raise ValueError(exc.message) from None
    raise TypeError(f"a parameter must be a number, got {type(value).__name__}")


def apply_transform(expr: sp.Expr, name: str, value: float | int | sp.Expr | None = None) -> sp.Expr:
    """Apply the transform ``name`` with parameter ``value`` to a function of :data:`X`.

    Raises KeyError for an unknown name, ValueError for a missing/invalid/extra parameter
    and ExpressionError when ``rescale`` meets an unbounded function or the result breaks
    the limits of a built expression (:func:`funcsearch.expressions.check_tree`).
    """
    transform = TRANSFORMS[name]
    if transform.parameter is None:
        if value is not None:
            raise ValueError(f"{name} takes no parameter, got {value!r}")
        result = transform.apply(expr, None)
    else:
        if value is None:
            raise ValueError(f"{name} needs a parameter {transform.parameter}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} needs a finite {transform.parameter}, got {value}")
        number = as_number(value)
        check_tree(number)
        problem = transform.check_value(float(number))
        if problem:
            raise ValueError(problem)
        result = transform.apply(expr, number)
    try:
        check_tree(result)
    except ExpressionError as exc:
        raise ExpressionError(f"{name}: {exc.message}") from None
    return result


def format_value(value: float | int, signed: bool = False) -> str:
    """Fixed, shortest formatting of a parameter: 2.0 -> "2", 0.1 -> "0.1", 1e-5 -> "1e-05".

    ``signed`` adds "+" to positive values (translate=+2). The same number always gives
    the same text, however it was spelled in the YAML (2, 2.0, 2.00).
    """
    number = float(value)
    if number == 0:
        text = "0"
    elif number.is_integer() and abs(number) < 1e15:
        text = str(int(number))
    else:
        text = repr(number)
    if signed and number > 0:
        text = "+" + text
    return text


def step_label(name: str, value: float | int | str | None = None) -> str:
    """The name part of one step: ``translate=+2``, ``clip=1``, ``negate``, ``clip=pi/2``.

    A string value is the canonical text of a constant expression (spaces removed)."""
    transform = TRANSFORMS[name]
    if transform.parameter is None or value is None:
        return name
    if isinstance(value, str):
        text = value.replace(" ", "")
        if transform.signed and not text.startswith("-"):
            text = "+" + text
        return f"{name}={text}"
    return f"{name}={format_value(value, transform.signed)}"
