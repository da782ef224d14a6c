"""Shapes of point-wise functions: one panel per function with f, f' and property marks.

    figure = plot_shapes([("erf", "erf(x)"), ("erf|flat_zone=3", "erf(x - clip(x, -3, 3))")])
    save_figure(figure, "shapes.png")

Functions are evaluated on the float64 reference (:func:`funcsearch.expressions.to_numpy`);
f' is a central difference on the same grid. Each panel shows the four property verdicts
of :func:`funcsearch.properties.check_properties` with their key number, so a glance tells
why a function was rejected. Rendering uses matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from funcsearch.errors import InputError
from funcsearch.expressions import parse_expression, to_numpy
from funcsearch.plots import IMAGE_SUFFIXES, new_figure
from funcsearch.properties import PROPERTIES, Profile, PropertyReport, check_values, load_profile

__all__ = ["plot_shapes", "resolve_shape_inputs", "property_marks"]

SHORT = {"zero_centred": "zero-c", "bounded": "bounded", "centre_sensitive": "centre",
         "monotonic": "monotonic"}


def resolve_shape_inputs(items: Sequence[str], from_paths: Sequence[str | Path] = ()
                         ) -> list[tuple[str, str]]:
    """Turn names or expressions into ``(name, expression)`` pairs.

    A name found among the candidates of ``from_paths`` (family files or folders, any of a
    candidate's names) wins; otherwise built-in names and expressions are resolved by
    :func:`funcsearch.named.resolve_function`. layernorm/rmsnorm have no shape: error."""
    from funcsearch.named import resolve_function

    lookup: dict[str, tuple[str, str]] = {}
    if from_paths:
        from funcsearch.candidates import load_candidates

        for candidate in load_candidates(list(from_paths)):
            for name in candidate.names:
                lookup.setdefault(name, (name, candidate.expression))
    out: list[tuple[str, str]] = []
    for item in items:
        if item in lookup:
            out.append(lookup[item])
            continue
        name, expression = resolve_function(item)
        if expression is None:
            raise InputError(f"{name} is a statistics-based norm: it has no point-wise shape")
        out.append((name, expression))
    return out


def _key_number(report: PropertyReport, prop: str) -> str:
    evidence = report.checks[prop].evidence

    def fmt(value: float) -> str:
        return "inf" if math.isinf(value) else "nan" if math.isnan(value) else f"{value:.2g}"

    if report.problem:
        return ""
    if prop == "zero_centred":
        return f"f(0)={fmt(evidence['f0'])}"
    if prop == "bounded":
        if report.checks[prop].passed:
            return f"sup={fmt(evidence['sup_abs'])}"
        return f"|x|^{fmt(evidence['growth_exponent'])}"
    if prop == "centre_sensitive":
        return f"flat={fmt(evidence['flat_zone_width'])}"
    if report.checks[prop].passed:
        return f"min f'={fmt(evidence['min_slope'])}"
    return f"breaks x={fmt(evidence['monotonic_break_x'])}"


def property_marks(report: PropertyReport) -> list[tuple[str, bool]]:
    """``[("ok zero-c f(0)=0", True), ("x bounded |x|^1", False), ...]`` for a panel."""
    marks = []
    for prop in PROPERTIES:
        passed = report.checks[prop].passed
        marks.append((f"{'ok' if passed else 'x '} {SHORT[prop]} {_key_number(report, prop)}".rstrip(),
                      passed))
    return marks


def plot_shapes(functions: Sequence[tuple[str, str]],
                profile: Profile | str | Path | None = None, *, x_range: float = 5.0,
                columns: int = 4) -> Any:
    """A grid of panels (f solid, f' dashed, property marks) as a Figure.

    ``functions`` are ``(name, expression)`` pairs."""
    if not functions:
        raise InputError("no functions to plot")
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    columns = max(1, min(columns, len(functions)))
    rows = math.ceil(len(functions) / columns)
    fig = new_figure(3.6 * columns, 3.1 * rows)
    axes = fig.subplots(rows, columns, squeeze=False)
    x = np.linspace(-x_range, x_range, 1001)
    for index, (name, expression) in enumerate(functions):
        ax = axes[index // columns][index % columns]
        parsed = parse_expression(expression, field=name)
        fn = to_numpy(parsed.expr)
        y = fn(x)
        slope = np.gradient(y, x)
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(x, y, color="C0", lw=1.8, label="f")
        ax.plot(x, slope, color="C1", lw=1.0, ls="--", label="f'")
        finite = np.concatenate([y[np.isfinite(y)], slope[np.isfinite(slope)]])
        if finite.size:
            low, high = np.percentile(finite, [1, 99])
            pad = 0.1 * max(high - low, 1e-6)
            ax.set_ylim(max(low - pad, -6), min(high + pad, 6))
        title = name if len(name) <= 34 else name[:31] + "..."
        formula = parsed.text if len(parsed.text) <= 48 else parsed.text[:45] + "..."
        ax.text(0.5, 1.0, formula, transform=ax.transAxes, ha="center", va="bottom",
                fontsize=6.5, color="0.35")
        report = check_values(fn, profile, name=name, expression=parsed.text)
        for row, (text, passed) in enumerate(property_marks(report)):
            ax.text(0.02, 0.97 - row * 0.085, text, transform=ax.transAxes, fontsize=6.5,
                    va="top", family="monospace", color="green" if passed else "red",
                    bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.5})
        ax.tick_params(labelsize=7)
        ax.set_title(title, fontsize=9, fontweight="bold", pad=12)
        if index == 0:
            ax.legend(loc="lower right", fontsize=7, frameon=False)
    for index in range(len(functions), rows * columns):
        axes[index // columns][index % columns].axis("off")
    fig.tight_layout()
    return fig
