"""How high can any proxy's Spearman with a full-scale reference be? A simulation, not a measurement.

    python benchmarks/reference_ceiling.py                          # the three search references
    python benchmarks/reference_ceiling.py paper_search_vit_b --sd 0.1 0.2

A full-scale result is itself one noisy run: its seed-to-seed spread is not published, so the
reference's own reliability cannot be measured here. This script says what it would cost under
an *assumed* seed standard deviation ``sd`` (in the reference's unit). Each draw adds
N(0, sd) to every function's published value (taken as its true mean) and rounds to the
published precision; it prints

- the Spearman a *perfect* proxy (one that ranks by the true means) gets against one such run,
- the Spearman between two such runs (how well full scale agrees with itself),
- the limit the published ties alone set (a proxy that breaks no tie the reference has).

Failed runs (an empty value) rank last together in every draw. A target Spearman above the
first figure is out of reach for any proxy at that sd: read a proxy's fidelity against it.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from funcsearch.references import SEARCH_REFERENCES, load_reference

DEFAULT_SDS = {"paper_search_vit_b.csv": (0.05, 0.1, 0.2), "paper_search_dit_b4.csv": (0.25, 0.5, 1.0),
               "paper_search_dit_l4.csv": (0.25, 0.5, 1.0)}
"""Assumed seed sds: ImageNet top-1 points, FID points (the script prints each one it used)."""


def decimals(values: np.ndarray) -> int:
    """The published precision: the fewest decimals that reproduce every value."""
    finite = values[np.isfinite(values)]
    for places in range(6):
        if np.allclose(np.round(finite, places), finite, atol=1e-9):
            return places
    return 6


def ceiling(values: np.ndarray, higher: bool, sd: float, draws: int, seed: int) -> tuple[float, float, float, float]:
    """(perfect proxy vs one run: mean, 10th percentile; run vs run: mean, 10th percentile)."""
    rng = np.random.default_rng(seed)
    sign = 1.0 if higher else -1.0
    truth = np.where(np.isfinite(values), sign * values, -np.inf)
    places = decimals(values)

    def one_run() -> np.ndarray:
        noisy = np.round(values + rng.normal(0.0, sd, len(values)), places)
        return np.where(np.isfinite(values), sign * noisy, -np.inf)

    perfect, mutual = [], []
    for _ in range(draws):
        first, second = one_run(), one_run()
        perfect.append(stats.spearmanr(truth, first)[0])
        mutual.append(stats.spearmanr(first, second)[0])
    return (float(np.nanmean(perfect)), float(np.nanpercentile(perfect, 10)),
            float(np.nanmean(mutual)), float(np.nanpercentile(mutual, 10)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("references", nargs="*", default=list(SEARCH_REFERENCES),
                        help="shipped reference names or CSV paths (default: the three search references)")
    parser.add_argument("--sd", type=float, nargs="+", help="assumed seed sds (default: per reference)")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.references:
        reference = load_reference(name)
        values = reference.table["value"].astype(float).to_numpy()
        key = name if name.endswith(".csv") else f"{name}.csv"
        sds = args.sd or DEFAULT_SDS.get(key, (0.1, 0.2, 0.5))
        sign = 1.0 if reference.higher_is_better else -1.0
        ranked = np.where(np.isfinite(values), sign * values, -np.inf)
        tie_limit = stats.spearmanr(ranked, ranked + 1e-9 * np.arange(len(values)))[0]
        print(f"{name}: {len(values)} functions, published to {decimals(values)} decimals; "
              f"tie limit {tie_limit:+.2f}")
        for sd in sds:
            perfect, perfect_p10, mutual, mutual_p10 = ceiling(values, reference.higher_is_better, sd,
                                                               args.draws, args.seed)
            print(f"  assumed seed sd {sd:g}: perfect proxy vs one run {perfect:+.2f} (p10 {perfect_p10:+.2f});"
                  f" run vs run {mutual:+.2f} (p10 {mutual_p10:+.2f})")


if __name__ == "__main__":
    main()
