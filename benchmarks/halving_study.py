"""Where to put successive-halving rungs, measured on committed full runs (no training).

    python benchmarks/halving_study.py results/paper_search [more results folders]
    python benchmarks/halving_study.py results/paper_search --metric vit=test_loss   # another rung metric

For every proxy of each study: (1) the Spearman between the ranking at epoch e (the proxy's
halving metric, seed means) and the final ranking (its primary metric), for every e; (2) a
simulation of successive halving with one rung at a fraction f of the epochs keeping the best
1/r of the candidates (baselines always continue), from the stored curves: the CPU it would
save (a stopped trial costs its share of epochs, a promoted one continues from its rung's
checkpoint) and the Spearman between the halving's final order (survivors by their final
score, then the eliminated by their rung score) and the full runs' order.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from funcsearch.metrics import orient
from funcsearch.proxies.registry import declared_metric, get_proxy
from funcsearch.search.store import read_results


def per_epoch_table(frame: pd.DataFrame, metric: str, higher: bool) -> pd.DataFrame:
    """candidate x epoch: seed mean of the oriented per-epoch metric (-inf once diverged)."""
    rows = []
    for candidate, curve in zip(frame["candidate"], frame["curve"]):
        for entry in json.loads(curve) if isinstance(curve, str) else []:
            if metric in entry:
                rows.append((candidate, int(entry["epoch"]), float(orient([entry[metric]], higher)[0])))
    table = pd.DataFrame(rows, columns=["candidate", "epoch", "value"])
    return table.pivot_table(index="candidate", columns="epoch", values="value", aggfunc="mean")


def final_scores(frame: pd.DataFrame) -> pd.Series:
    """Seed mean of the oriented primary score; a function with a diverged seed ranks last."""
    oriented = pd.Series(orient(frame["score"], frame["higher_is_better"]), index=frame.index)
    oriented[frame["status"] != "ok"] = -np.inf
    return oriented.groupby(frame["candidate"]).mean()


def agreement_by_epoch(frame: pd.DataFrame, proxy: str, metric: str | None = None) -> tuple[pd.Series, str]:
    metric = metric or get_proxy(proxy).halving_metric
    table = per_epoch_table(frame, metric, declared_metric(proxy, metric).higher_is_better)
    final = final_scores(frame).reindex(table.index)
    out = {}
    for epoch in table.columns:
        column = table[epoch].fillna(-np.inf)
        out[int(epoch)] = stats.spearmanr(column.replace(-np.inf, -1e300), final.replace(-np.inf, -1e300)).statistic
    return pd.Series(out), metric


def simulate(frame: pd.DataFrame, proxy: str, fraction: float, keep: float,
             metric: str | None = None) -> tuple[float, float, int]:
    """(CPU saved share, Spearman with the full order, rung epoch) of one rung at ``fraction``
    ranked on ``metric`` (default: the proxy's halving metric)."""
    epochs = int(frame["epochs_done"].max())
    rung = max(1, round(fraction * epochs))
    metric = metric or get_proxy(proxy).halving_metric
    table = per_epoch_table(frame, metric, declared_metric(proxy, metric).higher_is_better)
    final = final_scores(frame)
    baselines = set(frame.loc[frame["is_baseline"].astype(bool), "candidate"])
    competitors = [c for c in table.index if c not in baselines]
    at_rung = table.reindex(competitors)[rung].fillna(-np.inf) if rung in table.columns else pd.Series(-np.inf, index=competitors)
    ordered = at_rung.sort_values(ascending=False)
    n_keep = max(1, math.ceil(len(ordered) * keep))
    survivors = set(ordered.index[:n_keep]) | baselines
    cost = frame["cpu_time_s"].fillna(frame["wall_time_s"]).groupby(frame["candidate"]).sum()
    full = float(cost.sum())
    saved = float(sum(cost[c] * (1 - rung / epochs) for c in cost.index if c not in survivors))
    # the halving's order: survivors by final score, then the eliminated by their rung score
    order = sorted(survivors, key=lambda c: -final[c] if np.isfinite(final[c]) else math.inf)
    order += [c for c in ordered.index[n_keep:]]
    halving_rank = pd.Series(range(len(order)), index=order)
    full_rank = (-final.replace(-np.inf, -1e300)).rank(method="average")
    rho = stats.spearmanr(halving_rank.reindex(full_rank.index), full_rank).statistic
    return saved / full, float(rho), rung


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--keep", type=float, nargs="+", default=[1 / 3, 1 / 2])
    parser.add_argument("--metric", action="append", default=[], metavar="PROXY=METRIC",
                        help="rank the rung on this per-epoch metric instead of the proxy's halving metric")
    args = parser.parse_args()
    chosen = dict(item.split("=", 1) for item in args.metric)
    for folder in args.results:
        frame = read_results(folder)
        frame = frame[frame["stop_epoch"].isna()]
        for proxy in sorted(set(frame["proxy"])):
            rows = frame[frame["proxy"] == proxy]
            agreement, metric = agreement_by_epoch(rows, proxy, chosen.get(proxy))
            epochs = int(rows["epochs_done"].max())
            print(f"## {Path(folder).name} / {proxy}: rank by {metric} at epoch e vs the final "
                  f"{get_proxy(proxy).primary_metric} rank ({rows['candidate'].nunique()} functions, "
                  f"{epochs} epochs)\n")
            print("| epoch | " + " | ".join(str(e) for e in agreement.index) + " |")
            print("|---" * (len(agreement) + 1) + "|")
            print("| Spearman | " + " | ".join(f"{v:+.2f}" for v in agreement) + " |\n")
            print("| rung at | keep | rung epoch | CPU saved | Spearman with full runs |")
            print("|---|---|---|---|---|")
            for fraction in (0.1, 0.2, 0.25, 1 / 3, 0.5):
                for keep in args.keep:
                    saved, rho, rung = simulate(rows, proxy, fraction, keep, chosen.get(proxy))
                    print(f"| {fraction:.2f} of training | 1/{round(1 / keep)} | {rung} | {saved:.0%} | {rho:+.2f} |")
            print()


if __name__ == "__main__":
    main()
