"""Leaderboard plot: each function's score per proxy with its 95% interval over seeds.

One panel per proxy, functions in rank order (best on top), baselines in a second colour,
the best baseline's mean as a dashed line. Error bars are the t-based 95% interval (a
function with a single ok seed gets a point without a bar). Functions with no ok seed are
listed at the bottom, marked diverged / pruned / failed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from funcsearch.errors import InputError
from funcsearch.ranking import Leaderboard, leaderboard

CANDIDATE_COLOUR = "#1f77b4"
BASELINE_COLOUR = "#d62728"


def plot_leaderboard(source: str | Path | pd.DataFrame | Leaderboard, out: str | Path,
                     *, proxy: str | None = None, top: int | None = None) -> Path:
    """Draw the leaderboard of ``source`` (a results folder, frame or Leaderboard) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = source if isinstance(source, Leaderboard) else leaderboard(source, proxy=proxy)
    tables = {p: t for p, t in board.proxies.items() if proxy is None or p == proxy}
    if not tables:
        raise InputError(f"no trials of proxy {proxy!r}", field="--proxy")
    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError("the plot file must end in .png, .pdf or .svg", field="--out")
    rows = max(len(t) if top is None else min(top, len(t)) for t in tables.values())
    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 0.75 + 0.32 * rows + 1),
                             squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items()):
        _panel(ax, board, name, table if top is None else table.head(top))
    fig.suptitle(f"{board.title}: mean over seeds with 95% interval", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def _panel(ax: object, board: Leaderboard, proxy: str, table: pd.DataFrame) -> None:
    metric, higher = board.primary[proxy]
    scored = table[table["ok"] > 0]
    unscored = table[table["ok"] == 0]
    labels = [f"{_rank(r)} {r['candidate']}" for _, r in table.iterrows()]
    positions = list(range(len(table)))[::-1]
    position_of = dict(zip(table.index, positions))
    for index, r in scored.iterrows():
        y = position_of[index]
        colour = BASELINE_COLOUR if r["kind"] == "baseline" else CANDIDATE_COLOUR
        low, high = r["ci95_low"], r["ci95_high"]
        xerr = None
        if isinstance(low, float) and not math.isnan(low):
            xerr = [[r["mean"] - low], [high - r["mean"]]]
        ax.errorbar(r["mean"], y, xerr=xerr, fmt="o", color=colour, capsize=3, markersize=5)
        if r["diverged"]:
            ax.annotate(f"{r['diverged']} diverged", (r["mean"], y), textcoords="offset points",
                        xytext=(6, 4), fontsize=7, color="#7f7f7f")
    best = table[(table["kind"] == "baseline") & (table["ok"] > 0)]
    if len(best):
        ax.axvline(best.iloc[0]["mean"], color=BASELINE_COLOUR, linestyle="--", linewidth=0.8,
                   label=f"best baseline ({best.iloc[0]['candidate']})")
        ax.legend(loc="best", fontsize=7)
    if len(unscored):
        x = ax.get_xlim()[0] if len(scored) else 0.0
        for index, r in unscored.iterrows():
            outcome = ("failed" if r["failed"] and not (r["diverged"] or r["pruned"])
                       else "diverged" if r["diverged"] else "pruned")
            ax.plot([x], [position_of[index]], marker="x", color="#7f7f7f")
            ax.annotate(outcome, (x, position_of[index]), textcoords="offset points",
                        xytext=(6, -3), fontsize=7, color="#7f7f7f")
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(f"{metric} ({'higher' if higher else 'lower'} is better)")
    ax.set_title(proxy)
    ax.grid(axis="x", alpha=0.3)


def _rank(row: pd.Series) -> str:
    rank = row["rank"]
    return "-" if rank is None or (isinstance(rank, float) and math.isnan(rank)) else f"{int(rank)}."
