"""Do the proxies rank a function by its gain at initialisation rather than by its shape? (no training)

    python benchmarks/gain_confound.py results/property_tables --reference paper_property_tables.csv
    python benchmarks/gain_confound.py results/paper_search --reference paper_search_dit_b4.csv --sigma 0.5

A function's *Gaussian gain* at scale sigma is the least-squares slope of f(u) on u for
u ~ N(0, sigma^2): E[u f(u)] / E[u^2] (for a smooth f, by Stein's lemma, E[f'(u)]). With
sigma = the initial alpha (x is about unit scale where the norms sit at initialisation) it says
how steep a norm site starts. Over the functions that train on both sides (a failure on either
side is left out: divergence is a different question), the script prints, for each proxy of a
study, the Spearman of the proxy's ranking (seed means of its primary metric, as `funcsearch
fidelity`) with that gain, of the full-scale reference with it, of the two with each other, and
the partial Spearman of proxy and reference with the gain held fixed (the shape left once the
start is accounted for). A proxy that follows the gain far more than full scale does measures
how fast a function starts, which ~1,300 steps reward and ~94,000 do not (docs/calibration.md,
thirteenth round). Every shipped reference is released calibration data: in sample.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from funcsearch.expressions import to_numpy
from funcsearch.fidelity import declared_references, measure_fidelity
from funcsearch.proxies.registry import PROXIES, get_proxy
from funcsearch.references import load_reference
from funcsearch.search.store import read_results

GRID = np.linspace(-8.0, 8.0, 32001)
"""Standard-normal quadrature grid (trapezoid rule: robust to the kinks of clipped functions)."""


def gaussian_gain(expression: str, sigma: float) -> float:
    """E[u f(u)] / E[u^2] for u ~ N(0, sigma^2), by quadrature (deterministic)."""
    u = sigma * GRID
    weights = np.exp(-0.5 * GRID**2)
    with np.errstate(all="ignore"):
        values = np.asarray(to_numpy(expression)(u), dtype=float)
    values = np.broadcast_to(values, u.shape)
    return float(np.trapezoid(weights * u * values, GRID) / np.trapezoid(weights * u * u, GRID))


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman of x and y with z held fixed (the partial correlation of their ranks)."""
    rxy, rxz, ryz = (stats.spearmanr(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    denominator = math.sqrt(max(0.0, (1 - rxz**2) * (1 - ryz**2)))
    return float("nan") if denominator == 0 else float((rxy - rxz * ryz) / denominator)


def gain_table(folder: Path, reference: str | None = None, sigma: float | None = None) -> pd.DataFrame:
    """One row per (proxy, reference): the four Spearman figures over functions that train on both sides."""
    frame = read_results(folder)
    rows = []
    for proxy in sorted(set(frame["proxy"])):
        if proxy not in PROXIES or get_proxy(proxy).task_name != proxy:
            continue  # a screen is read for its divergences only
        for name in (reference,) if reference else declared_references(proxy):
            ref = load_reference(name)
            try:
                report = measure_fidelity(frame, ref, proxy=proxy, bootstrap=0)
            except ValueError:
                continue  # no functions shared with this reference
            table = report.table
            expressions = ref.table.groupby("fingerprint")["expression"].first()
            table = table.assign(expression=expressions.reindex(table.index).to_numpy())
            working = table[~table["proxy_failed"] & ~table["reference_failed"] & table["expression"].notna()]
            alpha = sigma if sigma is not None else float(frame.loc[frame["proxy"] == proxy, "alpha_init"].iloc[0])
            gain = np.array([gaussian_gain(e, alpha) for e in working["expression"]])
            oriented_reference = working["reference"].to_numpy(float) * (1 if ref.higher_is_better else -1)
            proxy_values = working["proxy_mean"].to_numpy(float)
            rows.append({
                "proxy": proxy, "reference": Path(name).stem, "n": len(working), "sigma": alpha,
                "proxy~gain": stats.spearmanr(proxy_values, gain).statistic,
                "reference~gain": stats.spearmanr(oriented_reference, gain).statistic,
                "proxy~reference": stats.spearmanr(proxy_values, oriented_reference).statistic,
                "proxy~reference | gain": partial_spearman(proxy_values, oriented_reference, gain),
            })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a results folder, e.g. results/property_tables")
    parser.add_argument("--reference", help="one reference (default: each proxy's declared ones)")
    parser.add_argument("--sigma", type=float, help="the scale of u (default: the study's alpha_init)")
    args = parser.parse_args()
    table = gain_table(args.folder, args.reference, args.sigma)
    if table.empty:
        raise SystemExit(f"{args.folder}: no proxy shares 3 or more working functions with a reference")
    print(f"{args.folder}: Spearman over the functions that train on both sides (in sample)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:+.2f}"))


if __name__ == "__main__":
    main()
