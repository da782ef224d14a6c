"""Calibration plot: every recipe tried, fidelity against cost.

Left: Spearman (with its bootstrap interval over seeds) against CPU seconds per trial; right:
share of the studies' failure patterns reproduced against the same cost. Calibration-split
recipes are dots (the default recipe a square, the chosen one a star); hold-out figures of the
default and chosen recipe are hollow markers, so in-sample and held-out numbers never mix.
The time limit of the calibration is a dashed vertical line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

CALIBRATION_COLOUR = "#1f77b4"
HOLDOUT_COLOUR = "#d62728"


def plot_calibration(table: pd.DataFrame, out: str | Path | None = None, *, title: str = "",
                     max_trial_seconds: float | None = None, chosen: str | None = None) -> Any:
    """The recipes of a calibration table (``recipes.parquet``) as a Figure; with ``out``
    (kept for :mod:`funcsearch.calibrate`), also saved there."""
    from matplotlib.lines import Line2D

    from funcsearch.plots import new_figure, save_figure

    valid = table[table["recipe"].astype(bool)] if "recipe" in table else table
    fig = new_figure(11, 4.2)
    axes = fig.subplots(1, 2)
    panels = (("spearman", "Spearman vs reference"), ("pattern_share", "failure patterns reproduced"))
    for ax, (column, label) in zip(axes, panels):
        for split, colour, hollow in (("calibration", CALIBRATION_COLOUR, False), ("holdout", HOLDOUT_COLOUR, True)):
            part = valid[valid["split"] == split]
            for _, r in part.iterrows():
                x = r["seconds_per_trial"]
                y = (r["patterns_reproduced"] / r["patterns_total"] if column == "pattern_share"
                     and r.get("patterns_total") else r.get(column, math.nan))
                if y is None or (isinstance(y, float) and math.isnan(y)):
                    continue
                marker = "*" if r["recipe"] == chosen else ("s" if r.get("default") else "o")
                size = 160 if marker == "*" else 45
                ax.scatter([x], [y], marker=marker, s=size, zorder=3,
                           facecolors="none" if hollow else colour, edgecolors=colour)
                if column == "spearman" and not math.isnan(r.get("spearman_low", math.nan)):
                    ax.plot([x, x], [r["spearman_low"], r["spearman_high"]], color=colour, alpha=0.35, lw=1)
        if max_trial_seconds:
            ax.axvline(max_trial_seconds, ls="--", color="grey", lw=1)
        ax.set_xlabel("CPU seconds per trial (mean)")
        ax.set_ylabel(label)
        ax.set_ylim(-1.05 if column == "spearman" else -0.05, 1.05)
        ax.grid(alpha=0.3)
    # the legend's markers are drawn as the points are: filled dots, squares and stars for
    # the calibration split, hollow markers (of the same shapes) for the hold-out split
    handles = [Line2D([], [], ls="", marker="o", markersize=6.5, color=CALIBRATION_COLOUR,
                      label="recipe (calibration split)"),
               Line2D([], [], ls="", marker="s", markersize=6.5, color=CALIBRATION_COLOUR, label="default recipe"),
               Line2D([], [], ls="", marker="*", markersize=12.5, color=CALIBRATION_COLOUR, label="chosen recipe"),
               Line2D([], [], ls="", marker="o", markersize=6.5, markerfacecolor="none",
                      markeredgecolor=HOLDOUT_COLOUR, color=HOLDOUT_COLOUR, label="hold-out (default: square, chosen: star)"),
               Line2D([], [], ls="-", color=CALIBRATION_COLOUR, alpha=0.35, label="95% bootstrap interval")]
    axes[1].legend(handles=handles, fontsize=8, loc="lower right")
    fig.suptitle(title or "calibration: fidelity against cost", fontsize=11)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out, dpi=120)
    return fig
