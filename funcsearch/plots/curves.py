"""Training curves of chosen functions, and fitting against generalisation.

    figure = plot_curves(trials_of_one_proxy, ["erf", "layernorm"])
    figure = plot_fit_vs_test(fit_table, metric="test_acc", higher=True)

``plot_curves`` draws one panel per function: every seed's training loss (solid, left axis)
and its per-epoch evaluation metric (dashed, right axis), one colour per seed. A diverged
seed ends in a red cross at the epoch where it diverged (its curve holds only the epochs
that finished), so a glance shows whether a function fails early, late or on one seed only.

``plot_fit_vs_test`` is the paper's generalisation analysis (PAPER_METHODS.md section 5):
the evaluation-mode training loss (how well the model fits its training set, without
augmentation or dropout) against the test metric, seed means with +-1 std bars. Points to
the left fit better; a point that fits well but tests worse generalises worse.
Both return a Figure (see :mod:`funcsearch.plots`). The scatter labels only the functions
a reader looks for (baselines, the best and worst few, the outliers of the fit/test
relation), so 50 functions stay readable; the rest are unlabelled points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from funcsearch.errors import InputError
from funcsearch.plots import new_figure

__all__ = ["curve_metric", "parse_curve", "plot_curves", "plot_fit_vs_test"]

DIVERGED_COLOUR = "#d62728"
BASELINE_COLOUR = "#d62728"
CANDIDATE_COLOUR = "#1f77b4"


def parse_curve(value: Any) -> list[dict[str, float]]:
    """A stored curve (JSON text or list) as a list of per-epoch dicts; [] when missing."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str) or not value:
        return []
    return json.loads(value)


def curve_metric(trials: pd.DataFrame) -> str | None:
    """The per-epoch evaluation metric to draw beside the training loss: the primary metric
    when it is logged every epoch, else the proxy's halving metric (both as the proxy
    declares them), else any per-epoch metric but the training loss."""
    keys: set[str] = set()
    for value in trials["curve"]:
        for point in parse_curve(value):
            keys.update(point)
    if not len(trials):
        return None
    primary = str(trials["primary_metric"].iloc[0])
    if primary in keys:
        return primary
    from funcsearch.proxies.registry import PROXIES

    proxy = PROXIES.get(str(trials["proxy"].iloc[0]))
    if proxy is not None and proxy.halving_metric in keys:
        return proxy.halving_metric
    return next((k for k in sorted(keys) if k not in ("epoch", "step", "lr", "train_loss")), None)


def _diverged_epoch(row: pd.Series, curve: list[dict[str, float]]) -> float:
    """Where a diverged run stopped, in epochs (from its step and the curve's steps/epoch)."""
    step = row.get("diverged_step")
    if curve and step is not None and not (isinstance(step, float) and math.isnan(step)):
        last = curve[-1]
        if last.get("step") and last.get("epoch"):
            return float(step) / (float(last["step"]) / float(last["epoch"]))
    return float(len(curve)) + 0.5


def plot_curves(trials: pd.DataFrame, functions: Sequence[str], *,
                title: str = "", columns: int = 3) -> Any:
    """One panel per function of ``functions`` (candidate names of ``trials``, one proxy):
    every seed's training loss and evaluation metric per epoch, as a Figure. Text is 8-9 pt
    on panels 3.4 in wide, so a page that scales the image to 800 px still reads it."""
    if not functions:
        raise InputError("no functions to draw curves of")
    if trials["proxy"].nunique() > 1:
        raise InputError("plot_curves draws one proxy at a time; filter the trials first")
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    metric = curve_metric(trials)
    seeds = sorted(int(s) for s in trials["seed"].unique())
    colour = {seed: f"C{i % 10}" for i, seed in enumerate(seeds)}
    columns = max(1, min(columns, len(functions)))
    rows = math.ceil(len(functions) / columns)
    fig = new_figure(3.4 * columns, 2.6 * rows + 0.7, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for index, name in enumerate(functions):
        ax = axes[index // columns][index % columns]
        right = ax.twinx() if metric else None
        group = trials[trials["candidate"] == name].sort_values("seed")
        outcome = []
        for _, row in group.iterrows():
            curve = parse_curve(row["curve"])
            seed = int(row["seed"])
            epochs = [p.get("epoch", i + 1) for i, p in enumerate(curve)]
            losses = [p.get("train_loss", math.nan) for p in curve]
            ax.plot(epochs, losses, color=colour[seed], lw=1.3, marker=".", markersize=3)
            if right is not None and metric:
                right.plot(epochs, [p.get(metric, math.nan) for p in curve], color=colour[seed],
                           lw=1.0, ls="--", marker=".", markersize=3)
            if row["status"] == "diverged":
                x = _diverged_epoch(row, curve)
                y = losses[-1] if losses and math.isfinite(losses[-1]) else None
                if y is None:
                    ax.axvline(x, color=DIVERGED_COLOUR, lw=1.0, ls=":")
                else:
                    ax.plot([x], [y], marker="X", color=DIVERGED_COLOUR, markersize=8)
                outcome.append(f"s{seed}: diverged")
            elif row["status"] == "ok":
                score = float(row["score"])
                outcome.append(f"s{seed}: {score:.3g}" if math.isfinite(score) else f"s{seed}: ok")
            else:
                outcome.append(f"s{seed}: {row['status']}")
        any_diverged = bool((group["status"] == "diverged").any())
        label = name if len(name) <= 36 else name[:35] + "…"
        ax.set_title(label, fontsize=9.5, fontweight="bold",
                     color=DIVERGED_COLOUR if any_diverged else "black")
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel("epoch\n" + "  ".join(outcome), fontsize=8, labelpad=1)
        ax.set_ylabel("train loss", fontsize=8)
        if right is not None:
            right.tick_params(labelsize=8)
            right.yaxis.set_major_locator(MaxNLocator(5))
            right.set_ylabel(metric, fontsize=8)
        if group.empty:
            ax.text(0.5, 0.5, "no trials", transform=ax.transAxes, ha="center")
    for index in range(len(functions), rows * columns):
        axes[index // columns][index % columns].axis("off")
    handles = [Line2D([], [], color="0.2", lw=1.3, label="train loss (left)")]
    if metric:
        handles.append(Line2D([], [], color="0.2", lw=1.0, ls="--", label=f"{metric} (right)"))
    handles += [Line2D([], [], color=colour[s], lw=2, label=f"seed {s}") for s in seeds]
    handles.append(Line2D([], [], color=DIVERGED_COLOUR, marker="X", lw=0, label="diverged"))
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 3 * columns),
               fontsize=8.5, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_fit_vs_test(table: pd.DataFrame, *, metric: str, higher: bool, title: str = "",
                     scale: float = 1.0, unit: str = "", labels: int = 12) -> Any:
    """Scatter of evaluation-mode training loss (x) against the test metric (y), as a Figure.

    ``table`` has one row per function: ``candidate``, ``kind``, ``train_eval_loss_mean``,
    ``train_eval_loss_std``, ``metric_mean``, ``metric_std`` (see
    :func:`funcsearch.report.fit_table`); the metric is multiplied by ``scale`` for display
    (``unit``). At most ``labels`` points are named (baselines, then the best and worst by the
    metric, then the farthest from the fit/test trend); the figure says how many are not."""
    table = table.dropna(subset=["train_eval_loss_mean", "metric_mean"])
    if table.empty:
        raise InputError("no function has both an evaluation-mode training loss and a test metric")
    fig = new_figure(7.5, 5.2, layout="constrained")
    ax = fig.subplots()
    x = table["train_eval_loss_mean"].to_numpy(dtype=float)
    y = table["metric_mean"].to_numpy(dtype=float) * scale
    for (_, r), xi, yi in zip(table.iterrows(), x, y):
        baseline = r["kind"] == "baseline"
        ax.errorbar(xi, yi, xerr=_bar(r["train_eval_loss_std"]), yerr=_bar(r["metric_std"], scale),
                    fmt="s" if baseline else "o", color=BASELINE_COLOUR if baseline else CANDIDATE_COLOUR,
                    markersize=4.5, capsize=2, lw=0.8, alpha=0.9, zorder=3 if baseline else 2)
    chosen = _labelled(table, x, y, higher, labels)
    for i in chosen:
        name = str(table["candidate"].iloc[i])
        ax.annotate(name if len(name) <= 26 else name[:25] + "…", (x[i], y[i]), textcoords="offset points",
                    xytext=(5, 4), fontsize=8, color="0.15",
                    bbox={"facecolor": "white", "alpha": 0.6, "edgecolor": "none", "pad": 0.3})
    if (x > 0).all() and x.max() / x.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel("evaluation-mode training loss (lower = fits the training set better)", fontsize=9)
    ax.set_ylabel(f"{metric}{f' ({unit})' if unit else ''} ({'higher' if higher else 'lower'} is better)",
                  fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    hidden = len(table) - len(chosen)
    ax.set_title((title or "fitting vs generalisation (seed mean, bars +-1 std over seeds)")
                 + (f"\n{hidden} of {len(table)} points unnamed (see the table below)" if hidden else ""),
                 fontsize=9.5)
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], ls="", marker="o", color=CANDIDATE_COLOUR, label="candidate"),
                       Line2D([], [], ls="", marker="s", color=BASELINE_COLOUR, label="baseline")],
              fontsize=8, loc="best")
    return fig


def _labelled(table: pd.DataFrame, x: Any, y: Any, higher: bool, limit: int) -> list[int]:
    """Which points to name: baselines, the 3 best and 3 worst by the metric, then the
    largest residuals from a straight fit of the metric on the (log) loss, up to ``limit``."""
    import numpy as np

    if len(table) <= limit:
        return list(range(len(table)))
    order = list(np.argsort(-y if higher else y, kind="stable"))
    chosen: list[int] = [i for i in range(len(table)) if table["kind"].iloc[i] == "baseline"]
    for i in order[:3] + order[-3:]:
        if i not in chosen:
            chosen.append(int(i))
    lx = np.log(x) if (x > 0).all() else x
    if np.ptp(lx) > 0:
        slope, intercept = np.polyfit(lx, y, 1)
        residual = np.abs(y - (slope * lx + intercept))
        for i in np.argsort(-residual, kind="stable"):
            if len(chosen) >= limit:
                break
            if int(i) not in chosen:
                chosen.append(int(i))
    return chosen[:max(limit, len([c for c in chosen if table["kind"].iloc[c] == "baseline"]))]


def _bar(std: object, scale: float = 1.0) -> float | None:
    value = float(std) if std is not None else math.nan
    return None if math.isnan(value) else value * scale
