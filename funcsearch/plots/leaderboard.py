"""Leaderboard plot: the same comparison as the table's verdict, drawn.

One panel per proxy, functions in rank order (best on top). By default
(``kind="difference"``) each function is drawn at its difference with the best baseline,
paired by seed, with the t-based 95% interval of those paired differences: exactly the
interval behind the table's *beats best baseline* verdict, so a point whose bar crosses 0
is "within noise" in the table too. Right is always better (the difference is oriented by
the metric's direction), the best baseline sits at 0, and numbers are in the metric's
display unit (accuracy in %). ``kind="score"`` draws the seed means with their unpaired
95% intervals instead (clipped to [0, 100] for a percentage).

Functions with no ok seed are not drawn on the scale: their outcome ("diverged 3/3") is
written in a column right of the panel, as is any partial divergence, so a diverged run
can never look best (or worst) on the axis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from funcsearch.errors import InputError
from funcsearch.plots import new_figure
from funcsearch.ranking import Leaderboard, MetricDisplay, board_display, leaderboard

CANDIDATE_COLOUR = "#1f77b4"
BASELINE_COLOUR = "#d62728"
VERDICT_COLOURS = {"yes": "#1a9850", "worse": "#b2182b", "within noise": "#4a6fa5", "n/a": "#7f7f7f"}
OUTCOME_COLOUR = "#b2182b"
KINDS = ("difference", "score")


def plot_leaderboard(source: str | Path | pd.DataFrame | Leaderboard, *, proxy: str | None = None,
                     top: int | None = None, kind: str = "difference") -> Any:
    """The leaderboard of ``source`` (a results folder, frame or Leaderboard) as a Figure."""
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r} (choose {' or '.join(KINDS)})", field="--kind")
    board = source if isinstance(source, Leaderboard) else leaderboard(source, proxy=proxy)
    tables = {p: t for p, t in board.proxies.items() if proxy is None or p == proxy}
    if not tables:
        raise InputError(f"no trials of proxy {proxy!r}", field="--proxy")
    if top is not None:
        tables = {p: t.head(top) for p, t in tables.items()}
    rows = max(len(t) for t in tables.values())
    longest = max(len(str(c)) for t in tables.values() for c in t["candidate"])
    label_width = min(3.2, 0.9 + 0.06 * min(longest, 36))
    figure = new_figure(len(tables) * (4.2 + label_width + 0.9), 1.6 + 0.21 * rows,
                        layout="constrained")
    axes = figure.subplots(1, len(tables), squeeze=False)[0]
    for ax, (name, table) in zip(axes, tables.items()):
        _panel(ax, board, name, table, kind)
    what = ("difference with the best baseline, paired by seed\n(95% interval of the paired "
            "differences, as in the table's verdict)" if kind == "difference"
            else "mean over seeds with its 95% interval")
    figure.suptitle(f"{board.title}: {what}", fontsize=9.5)
    return figure


def _label(row: pd.Series) -> str:
    rank = row["rank"]
    rank_text = "-" if rank is None or (isinstance(rank, float) and math.isnan(rank)) else f"{int(rank)}."
    name = str(row["candidate"])
    return f"{rank_text} {name if len(name) <= 36 else name[:35] + '…'}"


def _number(value: object) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _outcome(row: pd.Series) -> str:
    """What happened to the seeds that did not finish ok ("" when all did)."""
    seeds = int(row["seeds"])
    parts = [f"{word} {int(row[column])}/{seeds}" for column, word in
             (("diverged", "diverged"), ("pruned", "pruned"), ("failed", "failed")) if int(row[column])]
    return ", ".join(parts)


def _panel(ax: Any, board: Leaderboard, proxy: str, table: pd.DataFrame, kind: str) -> None:
    d: MetricDisplay = board_display(board, proxy)
    metric, higher = board.primary[proxy]
    positions = list(range(len(table)))[::-1]
    best = table[(table["kind"] == "baseline") & (table["ok"] > 0)]
    best_name = str(best.iloc[0]["candidate"]) if len(best) else None
    for y, (_, r) in zip(positions, table.iterrows()):
        baseline = r["kind"] == "baseline"
        marker = "s" if baseline else "o"
        if r["ok"] == 0:
            continue  # off the scale: written in the outcome column
        if kind == "difference":
            if r["candidate"] == best_name:
                ax.plot([0], [y], marker="*", markersize=10, color=BASELINE_COLOUR, zorder=3)
                continue
            mean = d.scaled(r["diff_vs_best_baseline"])
            low, high = d.scaled(r["diff_ci95_low"]), d.scaled(r["diff_ci95_high"])
            verdict = str(r["beats_best_baseline"] or "n/a")
        else:
            mean, low, high = d.scaled(r["mean"]), d.scaled(r["ci95_low"]), d.scaled(r["ci95_high"])
            if d.bounds is not None and not math.isnan(low):
                low, high = max(low, d.bounds[0]), min(high, d.bounds[1])
            verdict = "baseline" if baseline else "candidate"
        if math.isnan(mean):
            continue
        colour = (VERDICT_COLOURS.get(verdict, "#7f7f7f") if kind == "difference"
                  else BASELINE_COLOUR if baseline else CANDIDATE_COLOUR)
        if math.isnan(low):  # one seed or one pair: a hollow point, no interval
            ax.plot([mean], [y], marker=marker, markersize=5, markerfacecolor="white", color=colour)
        else:
            ax.errorbar([mean], [y], xerr=[[mean - low], [high - mean]], fmt=marker, color=colour,
                        capsize=2.5, markersize=4.5, lw=1.1)
    if kind == "difference":
        ax.axvline(0, color=BASELINE_COLOUR, linestyle="--", linewidth=0.9)
        if best_name:
            best_value = d.value(best.iloc[0]["mean"]) + (d.unit if d.unit == "%" else "")
            sign = "" if higher else " (sign flipped: lower is better)"
            ax.set_xlabel(d.suffix(f"{metric} difference with {best_name}") + f"{sign}\n"
                          f"right = better; {best_name} = {best_value} at 0", fontsize=8)
        else:
            ax.set_xlabel(f"{metric}: no baseline with an ok seed to compare with", fontsize=8)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], ls="", marker="o", color=c, label=v)
                   for v, c in VERDICT_COLOURS.items() if v != "n/a"]
        handles.append(Line2D([], [], ls="", marker="*", markersize=9, color=BASELINE_COLOUR,
                              label="best baseline"))
        handles.append(Line2D([], [], ls="", marker="s", color="0.4", label="baseline"))
        if ax is ax.figure.axes[0]:  # one legend for the figure, below the panels, off the data
            ax.figure.legend(handles=handles, fontsize=7.5, loc="outside lower center",
                             ncol=len(handles), frameon=False)
    else:
        if not higher:
            ax.invert_xaxis()  # right = better on every panel
        ax.set_xlabel(f"{d.heading if d.metric.label != metric else d.suffix(metric)}"
                      f" ({'higher' if higher else 'lower'} is better; right = better)", fontsize=8)
        if len(best):
            ax.axvline(d.scaled(best.iloc[0]["mean"]), color=BASELINE_COLOUR, ls="--", lw=0.9)
    outcomes = [(y, _outcome(r)) for y, (_, r) in zip(positions, table.iterrows()) if _outcome(r)]
    transform = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for y, text in outcomes:
        ax.text(1.02, y, text, transform=transform, fontsize=7, va="center", ha="left",
                color=OUTCOME_COLOUR, clip_on=False)
    if outcomes:
        ax.text(1.02, 1.0, "not ok", transform=ax.transAxes, fontsize=7, va="bottom",
                color=OUTCOME_COLOUR, fontweight="bold")
    ax.set_yticks(positions)
    ax.set_yticklabels([_label(r) for _, r in table.iterrows()], fontsize=7.5)
    for tick, (_, r) in zip(ax.get_yticklabels(), table.iterrows()):
        if r["kind"] == "baseline":
            tick.set_color(BASELINE_COLOUR)
    ax.set_ylim(-0.7, len(table) - 0.3)
    note = f"; {d.resolution_note}" if d.resolution_note else ""
    ax.set_title(f"{proxy}{note}", fontsize=9, loc="left")
    ax.tick_params(axis="x", labelsize=7.5)
    ax.grid(axis="x", alpha=0.3)
