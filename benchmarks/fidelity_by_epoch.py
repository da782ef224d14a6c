"""How faithful each proxy's ranking is at every epoch of its stored runs (no training).

    python benchmarks/fidelity_by_epoch.py results/paper_search
    python benchmarks/fidelity_by_epoch.py results/paper_search --reference paper_search_vit_b.csv

For every proxy of a study and every full-scale reference it can be compared with: the Spearman
between the ranking at epoch e (the proxy's halving metric on its per-epoch curve, seed means,
a diverged seed failing the function as in `funcsearch fidelity`) and the reference, for every
e. Where the figure stops rising long before the end, training longer on the same schedule is
not what the ranking lacks. A point on a cosine schedule is not a shorter run (its learning
rate has not decayed): a longer budget itself is measured by training it (docs/calibration.md,
twelfth round). Every shipped reference is released calibration data: in sample.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from funcsearch.fidelity import declared_references, measure_fidelity
from funcsearch.proxies.registry import PROXIES, declared_metric, get_proxy
from funcsearch.references import load_reference
from funcsearch.search.store import read_results


def curves_by_epoch(frame: pd.DataFrame) -> list[dict[int, dict]]:
    """Each trial's curve as epoch -> entry, parsed once (an empty dict where none was stored)."""
    return [{int(e["epoch"]): e for e in json.loads(c)} if isinstance(c, str) else {} for c in frame["curve"]]


def at_epoch(frame: pd.DataFrame, curves: list[dict[int, dict]], metric: str, epoch: int) -> pd.DataFrame:
    """The proxy's trials with ``score`` replaced by ``metric`` at ``epoch`` of each curve (NaN
    where a curve stops earlier: a diverged trial keeps its status and fails the function)."""
    out = frame.copy()
    out["score"] = [float(c[epoch][metric]) if metric in c.get(epoch, {}) else float("nan") for c in curves]
    out["primary_metric"] = metric
    out["higher_is_better"] = declared_metric(str(frame["proxy"].iloc[0]), metric).higher_is_better
    return out


def fidelity_by_epoch(folder: Path, reference: str | None = None) -> pd.DataFrame:
    """One row per (proxy, reference, epoch): the Spearman of the epoch's ranking and of the
    final primary metric (the last row of each block is what `funcsearch fidelity` reports
    when the halving metric is the primary one)."""
    frame = read_results(folder)
    frame = frame[frame["status"].isin(["ok", "diverged"])]
    if "stop_epoch" in frame:
        frame = frame[frame["stop_epoch"].isna()]
    rows = []
    for proxy in sorted(set(frame["proxy"])):
        if proxy not in PROXIES or get_proxy(proxy).task_name != proxy:
            continue  # a screen is read for its divergences only
        trials = frame[frame["proxy"] == proxy]
        metric = get_proxy(proxy).halving_metric
        curves = curves_by_epoch(trials)
        epochs = sorted(set().union(*curves))
        for name in (reference,) if reference else declared_references(proxy):
            ref = load_reference(name)
            try:
                final = measure_fidelity(trials, ref, proxy=proxy, bootstrap=0).spearman.estimate
            except ValueError:
                continue
            for epoch in epochs:
                report = measure_fidelity(at_epoch(trials, curves, metric, epoch), ref, proxy=proxy, bootstrap=0)
                rows.append({"proxy": proxy, "reference": Path(ref.source).stem, "metric": metric,
                             "epoch": epoch, "of": epochs[-1], "spearman": report.spearman.estimate,
                             "final_primary": final, "n": report.n_shared})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--reference", default=None, help="one reference instead of each proxy's declared ones")
    args = parser.parse_args()
    for folder in args.results:
        table = fidelity_by_epoch(folder, args.reference)
        if table.empty:
            print(f"{folder}: no proxy shares 3 functions with a reference")
            continue
        print(f"{folder} (in sample: released calibration data)")
        for (proxy, ref), block in table.groupby(["proxy", "reference"], sort=False):
            first, last = block.iloc[0], int(block["of"].iloc[0])
            shown = {1, last, *(max(1, round(last * k / 8)) for k in range(1, 8))}  # eighths of training
            cells = "  ".join(f"e{int(r.epoch)} {r.spearman:+.2f}" for r in block.itertuples() if r.epoch in shown)
            print(f"  {proxy} ({first.metric} per epoch, {int(first.n)} functions) vs {ref}: {cells}"
                  f"  | final {block['final_primary'].iloc[0]:+.2f} ({get_proxy(proxy).primary_metric})")


if __name__ == "__main__":
    main()
