"""Where each function works: a heatmap of its norm inputs' regime per site kind.

One row per function (in the leaderboard's order), two columns per site kind: the shares of
u = alpha*x + s beyond 1 and beyond 2 at the end of training (seed means). A unit Gaussian
has 32% and 5%, about where full-scale training keeps u; near 100% beyond 2, a bounded
function acts at that site as a sign function.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from funcsearch.errors import InputError
from funcsearch.plots import new_figure

MAX_ROWS = 60
"""Most functions drawn: beyond it the best and the worst half of that each (the table beside
the figure holds them all)."""


def plot_regime(table: pd.DataFrame, sites: Sequence[str], *, title: str = "") -> Any:
    """Heatmap of ``table`` (rows ``label``; columns ``<site> >1`` and ``<site> >2`` in [0, 1],
    NaN where a site recorded nothing) as a Figure."""
    columns = [f"{site} >{k}" for site in sites for k in (1, 2)]
    if table.empty or not columns:
        raise InputError("no regime to draw: no function recorded one")
    hidden = 0
    if len(table) > MAX_ROWS:
        hidden = len(table) - MAX_ROWS
        table = pd.concat([table.head(MAX_ROWS // 2), table.tail(MAX_ROWS // 2)])
    values = table[columns].to_numpy(dtype=float)
    fig = new_figure(1.2 * len(columns) + 3.2, 0.24 * len(table) + 1.6, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="YlOrRd", vmin=0.0, vmax=1.0, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 else "0.1")
    ax.set_xticks(range(len(columns)), [c.replace(">", "|u| > ") for c in columns], fontsize=8, rotation=30,
                  ha="right")
    ax.set_yticks(range(len(table)), [str(label) for label in table["label"]], fontsize=7.5)
    if hidden:
        ax.axhline(MAX_ROWS // 2 - 0.5, color="black", lw=1.5)
    for j in range(2, len(columns), 2):
        ax.axvline(j - 0.5, color="white", lw=2)
    fig.colorbar(image, ax=ax, shrink=0.6, label="share of u at the end of training")
    note = f"\n{hidden} functions between the best and worst {MAX_ROWS // 2} left out (see the table)" if hidden else ""
    ax.set_title((title or "regime at the end of training (seed means)")
                 + "\na unit Gaussian: 32% beyond 1, 5% beyond 2" + note, fontsize=9)
    return fig
