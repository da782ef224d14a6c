"""The four properties of a normalization replacement, checked numerically with evidence.

PAPER_METHODS.md section 2: a point-wise function that stands in for normalization should be
zero-centred, bounded, centre-sensitive and monotonic. Each check here returns a verdict and
the numbers behind it, on the float64 reference (:func:`funcsearch.expressions.to_numpy`):

- zero_centred: ``f0`` = f(0) and ``odd_asymmetry`` = max |f(x) + f(-x)| / 2 (the largest
  even part), both relative to ``scale`` = max |f| on the dense grid.
- bounded: ``sup_abs`` = max |f| over every grid point (out to ``far_limit``) and
  ``growth_exponent`` = the slope of log M(r) against log r between the two radii of
  ``growth_window``, where M(r) = max |f| on |x| <= r (0 for a function that has saturated,
  1 for x, 2/3 for |x|^(2/3), about 0.08 for log(|x|+1) at r ~ 1e5..1e6). A grid misses
  the poles between its points (``tan(x/20)`` at x = +-31.4), so the places where a part of
  f can blow up are found from the sympy tree (:func:`singular_points`: ``tan(u)`` where
  cos(u) = 0, ``u**-k`` and ``log(u)`` where u = 0, located numerically within
  ``far_limit`` under a time bound) and f is probed next to each: one where |f| keeps
  growing as x approaches it (``pole_x``) fails the check.
- centre_sensitive: ``flat_zone_width`` = the largest grid |x| such that f stays within
  ``flat_tolerance * R`` of f(0) on all of [-|x|, |x|], R = max |f(x) - f(0)| on
  |x| <= ``window`` (the whole dense grid if f is flat there), and ``slope_at_0`` (central
  difference; evidence only: cubsign's slope at 0 is 0 and it is a fine candidate).
- monotonic: ``min_slope`` = the smallest slope on the dense grid in the function's own
  direction (``direction`` +1 increasing, -1 decreasing: both count as monotonic) and
  ``monotonic_break_x`` = the |x|-nearest point where it goes the wrong way (NaN if none).

Thresholds and grids come from a :class:`Profile` (``properties/default.yaml``, also shipped
as ``funcsearch/data/properties/default.yaml``). The evaluation is vectorised: one call of
the reference on one sorted, symmetric grid per function.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import sympy as sp
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from funcsearch.errors import ConfigError
from funcsearch.expressions import (X, CompileCheck, Expression, check_compiled, parse_expression,
                                    to_numpy)
from funcsearch.yamlio import load_yaml, validate_yaml


class NamedExpression(Protocol):
    """Anything with a ``name`` and an ``expression`` text (a ``Candidate``, a search's
    function entry): properties need no import of the candidates module."""

    name: str
    expression: str

__all__ = ["PROPERTIES", "Profile", "load_profile", "default_profile_path", "PropertyCheck",
           "PropertyReport", "check_properties", "check_values", "Grid", "singular_points"]

PROPERTIES: tuple[str, ...] = ("zero_centred", "bounded", "centre_sensitive", "monotonic")


# --------------------------------------------------------------------------- profile


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GridSettings(_Strict):
    """Where functions are evaluated: a dense symmetric grid plus far probes."""

    limit: float = Field(10.0, gt=0)
    points: int = Field(4001, ge=101, le=1_000_001)
    far_limit: float = Field(1.0e6, gt=0)
    far_points: int = Field(61, ge=2, le=100_000)

    @field_validator("points")
    @classmethod
    def _odd(cls, points: int) -> int:
        if points % 2 == 0:
            raise ValueError("points must be odd so that x = 0 is on the grid")
        return points

    @model_validator(mode="after")
    def _consistent(self) -> "GridSettings":
        if self.far_limit <= self.limit:
            raise ValueError("far_limit must be larger than limit")
        return self


class ZeroCentredSettings(_Strict):
    max_abs_f0: float = Field(0.05, ge=0)
    max_odd_asymmetry: float = Field(0.1, ge=0)


class BoundedSettings(_Strict):
    max_growth_exponent: float = Field(0.02, ge=0)
    growth_window: tuple[float, float] = (1.0e5, 1.0e6)

    @model_validator(mode="after")
    def _window(self) -> "BoundedSettings":
        low, high = self.growth_window
        if not 0 < low < high:
            raise ValueError("growth_window must be two radii 0 < r1 < r2")
        return self


class CentreSensitiveSettings(_Strict):
    window: float = Field(3.0, gt=0)
    flat_tolerance: float = Field(1.0e-3, gt=0)
    max_flat_zone_width: float = Field(1.0, ge=0)
    slope_step: float = Field(1.0e-4, gt=0)


class MonotonicSettings(_Strict):
    tolerance: float = Field(1.0e-9, ge=0)


class Profile(_Strict):
    """Thresholds and grids of the property checks (see properties/default.yaml)."""

    description: str = ""
    grid: GridSettings = Field(default_factory=GridSettings)
    zero_centred: ZeroCentredSettings = Field(default_factory=ZeroCentredSettings)
    bounded: BoundedSettings = Field(default_factory=BoundedSettings)
    centre_sensitive: CentreSensitiveSettings = Field(default_factory=CentreSensitiveSettings)
    monotonic: MonotonicSettings = Field(default_factory=MonotonicSettings)
    require_finite_gradient: bool = False

    @model_validator(mode="after")
    def _window_inside_grid(self) -> "Profile":
        if self.bounded.growth_window[1] > self.grid.far_limit:
            raise ValueError("bounded.growth_window must lie within grid.far_limit")
        if self.bounded.growth_window[0] < self.grid.limit:
            raise ValueError("bounded.growth_window must start beyond grid.limit")
        return self


def default_profile_path() -> Path:
    """The default profile shipped inside the package (identical to properties/default.yaml)."""
    return Path(__file__).parent / "data" / "properties" / "default.yaml"


def load_profile(path: str | Path | None = None) -> Profile:
    """Load a profile YAML; None loads the default. Errors: ``file:line: field: message``."""
    doc = load_yaml(default_profile_path() if path is None else path)
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise doc.error("a profile must be a mapping (see properties/default.yaml)")
    return validate_yaml(Profile, doc)


# --------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class Grid:
    """The sorted symmetric evaluation points of a profile and useful index sets."""

    x: np.ndarray  # sorted, symmetric: x[::-1] == -x
    dense: np.ndarray  # boolean mask of |x| <= limit
    zero: int  # index of x = 0
    step: float  # dense grid spacing

    @staticmethod
    def from_settings(settings: GridSettings) -> "Grid":
        return _grid(settings.limit, settings.points, settings.far_limit, settings.far_points)


@lru_cache(maxsize=8)
def _grid(limit: float, points: int, far_limit: float, far_points: int) -> Grid:
    half = np.linspace(0.0, limit, points // 2 + 1)
    far = np.logspace(math.log10(limit), math.log10(far_limit), far_points)[1:]
    positive = np.concatenate([half[1:], far])
    x = np.concatenate([-positive[::-1], [0.0], positive])
    x.setflags(write=False)
    dense = np.abs(x) <= limit * (1 + 1e-12)
    dense.setflags(write=False)
    return Grid(x=x, dense=dense, zero=len(positive), step=float(half[1] - half[0]))


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class PropertyCheck:
    """One property's verdict, its numbers and a one-line reading of them."""

    name: str
    passed: bool
    evidence: dict[str, float]
    detail: str


@dataclass(frozen=True)
class PropertyReport:
    """All four checks of one function plus its compile check."""

    name: str
    expression: str
    checks: dict[str, PropertyCheck]
    compile_check: CompileCheck | None = None
    require_finite_gradient: bool = False
    problem: str | None = None  # set when the function cannot be checked at all

    @property
    def passed(self) -> dict[str, bool]:
        return {name: self.checks[name].passed for name in PROPERTIES}

    @property
    def all_passed(self) -> bool:
        return all(self.passed.values())

    @property
    def evidence(self) -> dict[str, float]:
        merged: dict[str, float] = {}
        for name in PROPERTIES:
            merged.update(self.checks[name].evidence)
        return merged

    @property
    def compiles(self) -> bool:
        """Torch agrees with the reference (and, if the profile asks, has finite gradients)."""
        if self.compile_check is None:
            return True
        if not self.compile_check.values_ok:
            return False
        return self.compile_check.gradient_ok or not self.require_finite_gradient

    @property
    def kept(self) -> bool:
        """Passes all four properties and compiles."""
        return self.all_passed and self.compiles

    @property
    def reason(self) -> str:
        """Why the function is rejected ('' when kept); compile warnings are appended."""
        parts = [f"{name}: {self.checks[name].detail}" for name in PROPERTIES
                 if not self.checks[name].passed]
        if self.problem and not parts:
            parts.append(self.problem)
        check = self.compile_check
        if check is not None and not self.compiles:
            parts.append(f"compile: {check.reason}")
        return "; ".join(parts)

    @property
    def warning(self) -> str:
        """A compile problem that does not reject (gradient, when not required), or a note
        worth knowing (a root's infinite slope at 0, differentiated as 0 there)."""
        check = self.compile_check
        if check is not None and self.compiles and not check.ok and check.reason:
            return check.reason
        return (check.note or "") if check is not None else ""


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3g}"


def _nearest(x: np.ndarray, mask: np.ndarray) -> float:
    """The masked point nearest to 0 (the positive one of a symmetric pair)."""
    bad = x[mask]
    if not bad.size:
        return math.nan
    closest = np.abs(bad).min()
    return float(bad[np.abs(bad) == closest].max())


def check_values(fn: Callable[[np.ndarray], np.ndarray], profile: Profile,
                 name: str = "", expression: str = "", *,
                 singular: Sequence[float] = ()) -> PropertyReport:
    """Run the four checks on an element-wise float64 function (no compile check).

    ``singular``: places where f may have a pole (see :func:`singular_points`); the
    bounded check probes f next to each."""
    grid = Grid.from_settings(profile.grid)
    x = grid.x
    with np.errstate(all="ignore"):
        y = np.asarray(fn(x), dtype=np.float64)
    if y.shape != x.shape:
        y = np.broadcast_to(y, x.shape).astype(np.float64)
    finite = np.isfinite(y)
    dense = grid.dense
    if not np.all(finite[dense]):
        where = _nearest(x, dense & ~finite)
        problem = f"not finite at x={where:g}"
        checks = {p: PropertyCheck(p, False, {}, problem) for p in PROPERTIES}
        checks["bounded"] = PropertyCheck("bounded", False, {"sup_abs": math.inf}, problem)
        return PropertyReport(name, expression, checks, problem=problem)

    y_dense = y[dense]
    x_dense = x[dense]
    scale = float(np.max(np.abs(y_dense)))
    if scale == 0.0:
        problem = "zero everywhere on the grid"
        checks = {p: PropertyCheck(p, False, {"scale": 0.0}, problem) for p in PROPERTIES}
        return PropertyReport(name, expression, checks, problem=problem)
    with np.errstate(all="ignore"):
        checks = {
            "zero_centred": _zero_centred(y, finite, grid, scale, profile),
            "bounded": _bounded(x, y, finite, scale, profile, fn, singular),
            "centre_sensitive": _centre_sensitive(fn, x_dense, y_dense, grid, scale, profile),
            "monotonic": _monotonic(x, y, finite, x_dense, y_dense, grid, scale, profile),
        }
    return PropertyReport(name, expression, checks)


def _zero_centred(y: np.ndarray, finite: np.ndarray, grid: Grid, scale: float,
                  profile: Profile) -> PropertyCheck:
    settings = profile.zero_centred
    f0 = float(y[grid.zero]) + 0.0  # no -0
    both = finite & finite[::-1]
    even = np.abs(y + y[::-1])[both] / 2.0
    asymmetry = float(even.max() / scale) if even.size else math.inf
    relative_f0 = abs(f0) / scale
    problems = []
    if relative_f0 > settings.max_abs_f0:
        problems.append(f"|f(0)|={_fmt(abs(f0))} is {_fmt(relative_f0)} of sup|f| "
                        f"(max {_fmt(settings.max_abs_f0)})")
    if asymmetry > settings.max_odd_asymmetry:
        problems.append(f"odd asymmetry {_fmt(asymmetry)} > {_fmt(settings.max_odd_asymmetry)}")
    detail = "; ".join(problems) or f"f(0)={_fmt(f0)}, odd asymmetry {_fmt(asymmetry)}"
    return PropertyCheck("zero_centred", not problems,
                         {"f0": f0, "odd_asymmetry": asymmetry, "scale": scale}, detail)


def _bounded(x: np.ndarray, y: np.ndarray, finite: np.ndarray, scale: float,
             profile: Profile, fn: Callable[[np.ndarray], np.ndarray] | None = None,
             singular: Sequence[float] = ()) -> PropertyCheck:
    settings = profile.bounded
    magnitude = np.where(finite, np.abs(y), np.inf)
    sup = float(magnitude.max())
    r1, r2 = settings.growth_window
    radius = np.abs(x)
    m1 = float(magnitude[radius <= r1 * (1 + 1e-12)].max())
    m2 = float(magnitude[radius <= r2 * (1 + 1e-12)].max())
    if not math.isfinite(m2):
        growth = math.inf
    elif m1 <= 0.0:
        growth = 0.0 if m2 <= 0.0 else math.inf
    else:
        growth = math.log(m2 / m1) / math.log(r2 / r1)
    passed = math.isfinite(sup) and growth <= settings.max_growth_exponent
    pole = _first_pole(fn, singular, scale, profile.grid.far_limit) if passed and fn else None
    if pole is not None:
        return PropertyCheck("bounded", False, {"sup_abs": math.inf, "growth_exponent": growth,
                                                "pole_x": pole},
                             f"pole near x={pole:.6g} (|f| grows without bound there; "
                             f"the grid's sup|f| is {_fmt(sup)})")
    if passed:
        detail = f"sup|f|={_fmt(sup)}"
    elif not math.isfinite(sup):
        detail = f"not finite at x={_nearest(x, ~finite):g}"
    else:
        detail = (f"grows like |x|^{_fmt(growth)} between |x|={r1:g} and {r2:g} "
                  f"(max {_fmt(settings.max_growth_exponent)}), sup|f|={_fmt(sup)}")
    return PropertyCheck("bounded", passed, {"sup_abs": sup, "growth_exponent": growth}, detail)


def _centre_sensitive(fn: Callable[[np.ndarray], np.ndarray], x_dense: np.ndarray,
                      y_dense: np.ndarray, grid: Grid, scale: float,
                      profile: Profile) -> PropertyCheck:
    settings = profile.centre_sensitive
    zero = int(np.argmin(np.abs(x_dense)))
    f0 = y_dense[zero]
    change = np.abs(y_dense - f0)
    radius = np.abs(x_dense)
    # Tolerance relative to how much f moves in the central window (sup|f| would make it
    # meaningless for fast-growing f such as sinh); the whole grid if f is flat there.
    reference = float(change[radius <= settings.window].max())
    if reference == 0.0:
        reference = float(change.max())
    outside = change > settings.flat_tolerance * reference
    if outside.any():
        first_out = float(radius[outside].min())
        inside = radius[radius < first_out]
        width = float(inside.max()) if inside.size else 0.0
    else:
        width = float(radius.max())
    h = settings.slope_step
    with np.errstate(all="ignore"):
        ends = np.asarray(fn(np.array([-h, h])), dtype=np.float64)
    slope = float((ends[1] - ends[0]) / (2 * h))
    passed = width <= settings.max_flat_zone_width + 1e-9
    if passed:
        detail = f"flat-zone width {_fmt(width)}, slope at 0 {_fmt(slope)}"
    else:
        detail = (f"flat (within {_fmt(settings.flat_tolerance)} of its range) for |x| <= "
                  f"{_fmt(width)} (max {_fmt(settings.max_flat_zone_width)})")
    return PropertyCheck("centre_sensitive", passed,
                         {"flat_zone_width": width, "slope_at_0": slope}, detail)


def _monotonic(x: np.ndarray, y: np.ndarray, finite: np.ndarray, x_dense: np.ndarray,
               y_dense: np.ndarray, grid: Grid, scale: float, profile: Profile) -> PropertyCheck:
    tolerance = profile.monotonic.tolerance * scale
    xs, ys = x[finite], y[finite]
    steps = np.diff(ys)
    # The direction is that of f nearest to x = 0 (so sin "breaks" at pi/2, not at 0).
    moving = np.abs(steps) > tolerance
    if moving.any():
        midpoints_all = (xs[1:] + xs[:-1]) / 2.0
        nearest = int(np.argmin(np.where(moving, np.abs(midpoints_all), np.inf)))
        direction = 1.0 if steps[nearest] > 0 else -1.0
    else:
        direction = 1.0
    wrong = direction * steps < -tolerance
    if wrong.any():
        # the other direction may fit (e.g. a function that only falls)
        other_wrong = -direction * steps < -tolerance
        if not other_wrong.any():
            direction, wrong = -direction, other_wrong
    slopes = direction * np.diff(y_dense) / np.diff(x_dense)
    min_slope = float(slopes.min()) + 0.0
    if wrong.any():
        midpoints = (xs[1:] + xs[:-1]) / 2.0
        break_x = _nearest(midpoints, wrong)
        detail = (f"goes {'down' if direction > 0 else 'up'} near x={break_x:.3g} "
                  f"(min slope {_fmt(min_slope)})")
        return PropertyCheck("monotonic", False, {"min_slope": min_slope,
                             "monotonic_break_x": break_x, "direction": direction}, detail)
    detail = f"{'increasing' if direction > 0 else 'decreasing'}, min slope {_fmt(min_slope)}"
    return PropertyCheck("monotonic", True, {"min_slope": min_slope,
                         "monotonic_break_x": math.nan, "direction": direction}, detail)


POLE_SEARCH_SECONDS = 2.0
"""Time bound of :func:`singular_points` for one function (it returns what it found)."""
_MAX_SINGULAR_PARTS = 20
_MAX_CANDIDATES_PER_PART = 24


def singular_points(expr: sp.Expr, limit: float = 1.0e6,
                    time_limit: float = POLE_SEARCH_SECONDS) -> list[float]:
    """Places (|x| <= ``limit``, nearest to 0 first) where a part of f may blow up.

    The parts are found in the sympy tree: ``tan(u)`` (poles where cos(u) = 0), ``u**-k``
    and ``log(u)`` (where u = 0). Their zeros are found numerically, not by sympy's
    solvers (which can take unbounded time): sign changes of u on a search grid refined
    by Brent's method, and local minima of |u| (double zeros, ``1/(x - a)**2``) refined
    by a bounded search. At most :data:`POLE_SEARCH_SECONDS` in all. A place is only a
    candidate: :func:`check_values` decides by probing f next to it."""
    deadline = time.monotonic() + time_limit
    parts: list[sp.Expr] = []
    seen: set[sp.Basic] = set()
    stack: list[sp.Basic] = [expr]
    while stack and len(parts) < _MAX_SINGULAR_PARTS:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.args)
        if isinstance(node, sp.tan):
            part = sp.cos(node.args[0])
        elif isinstance(node, sp.Pow) and node.exp.is_number and node.exp.is_negative:
            part = node.base
        elif isinstance(node, sp.log):
            part = node.args[0]
        else:
            continue
        if part.has(X) and part not in parts:
            parts.append(part)
    if not parts:
        return []
    from scipy.optimize import brentq, minimize_scalar

    grid = _search_grid(float(limit))
    points: list[float] = []
    for part in parts:
        if time.monotonic() > deadline:
            break
        try:
            h = to_numpy(part)
        except Exception:  # a part that cannot be evaluated has nothing to say
            continue

        def at(t: float, h: Callable[[np.ndarray], np.ndarray] = h) -> float:
            return float(h(np.array([t]))[0])

        with np.errstate(all="ignore"):
            values = np.asarray(h(grid), dtype=np.float64)
            if values.shape != grid.shape:
                continue
            finite = np.isfinite(values)
            sign = np.sign(values)
            change = np.flatnonzero(finite[:-1] & finite[1:] & (sign[:-1] * sign[1:] < 0))
            exact = np.flatnonzero(finite & (values == 0.0))
            magnitude = np.where(finite, np.abs(values), np.inf)
            interior = np.arange(1, len(grid) - 1)
            minima = interior[(magnitude[1:-1] < magnitude[:-2]) & (magnitude[1:-1] <= magnitude[2:])]
            points.extend(float(grid[i]) for i in exact)
            for i in sorted(change, key=lambda i: abs(grid[i]))[:_MAX_CANDIDATES_PER_PART]:
                if time.monotonic() > deadline:
                    break
                try:
                    points.append(float(brentq(at, grid[i], grid[i + 1], xtol=1e-15,
                                               rtol=1e-15, maxiter=200)))
                except (ValueError, RuntimeError):
                    continue
            near_change = set(change) | {i + 1 for i in change}
            for i in sorted(minima, key=lambda i: abs(grid[i]))[:_MAX_CANDIDATES_PER_PART]:
                if time.monotonic() > deadline:
                    break
                if i in near_change:  # a simple zero, found above
                    continue
                result = minimize_scalar(lambda t: abs(at(t)), bounds=(grid[i - 1], grid[i + 1]),
                                         method="bounded",
                                         options={"xatol": 1e-14 * max(1.0, abs(grid[i]))})
                points.append(float(result.x))
    return sorted({p for p in points if math.isfinite(p) and abs(p) <= limit}, key=abs)


@lru_cache(maxsize=8)
def _search_grid(limit: float) -> np.ndarray:
    inner = np.linspace(-min(limit, 10.0), min(limit, 10.0), 8001)
    if limit <= 10.0:
        return inner
    outer = np.logspace(1.0, math.log10(limit), 4000)
    return np.unique(np.concatenate([-outer[::-1], inner, outer]))


def _first_pole(fn: Callable[[np.ndarray], np.ndarray], points: Sequence[float],
                scale: float, limit: float) -> float | None:
    """The first place in ``points`` next to which |f| keeps growing without bound: f is
    infinite there, or |f| at distances 1e-3, 1e-6, 1e-9 (relative) grows by steps that do
    not shrink (a pole, or a logarithm) to more than twice the grid's sup |f|."""
    for x0 in list(points)[:200]:
        if not abs(x0) <= limit:
            continue
        span = max(1.0, abs(x0))
        deltas = np.array([1e-3, 1e-6, 1e-9]) * span
        probe = np.concatenate([[x0], x0 - deltas, x0 + deltas])
        with np.errstate(all="ignore"):
            values = np.abs(np.asarray(fn(probe), dtype=np.float64))
        if values.shape != probe.shape:
            continue
        if np.isinf(values[0]):
            return float(x0)
        for side in (values[1:4], values[4:7]):
            if np.isinf(side).any() and not np.isnan(side).any():
                return float(x0)
            if not np.all(np.isfinite(side)):
                continue
            first, second = side[1] - side[0], side[2] - side[1]
            if first > 0 and second >= 0.5 * first and side[2] > 2 * scale:
                return float(x0)
    return None


def check_properties(candidate: "NamedExpression | Expression | str", profile: Profile | None = None,
                     *, compile_check: bool = True, name: str | None = None) -> PropertyReport:
    """Check the four properties of a candidate, an Expression, a built-in name or text.

    With ``compile_check`` the torch compilation is checked too (see
    :func:`funcsearch.expressions.check_compiled`); its outcome is in the report.
    ``name`` overrides the name shown in the report.
    """
    profile = profile or _default_profile()
    text: str | None
    if isinstance(candidate, Expression):
        name, expr, text = name or candidate.source, candidate.expr, candidate.source
    elif isinstance(candidate, str):
        from funcsearch.named import resolve_function

        resolved, text = resolve_function(candidate)
        if text is None:
            raise ConfigError(f"{resolved} is a statistics-based norm, not a point-wise "
                              "function: it has no properties to check")
        name = name or resolved
        expr = parse_expression(text).expr
    else:
        name, text = name or candidate.name, candidate.expression
        expr = parse_expression(text).expr
    singular = singular_points(expr, profile.grid.far_limit)
    report = check_values(to_numpy(expr), profile, name=name, expression=text, singular=singular)
    if not compile_check or report.problem:
        return report
    compiled = check_compiled(expr)
    return PropertyReport(report.name, report.expression, report.checks, compiled,
                          profile.require_finite_gradient)


@lru_cache(maxsize=1)
def _default_profile() -> Profile:
    return load_profile(None)
