"""How far can per-proxy weights take the declared aggregate? (no training)

    python benchmarks/aggregate_weights.py results/property_tables_protocol results/paper_search

The aggregate rank is a weighted rank average over the proxies (`aggregate: {weights: ...}` in a
search config; equal weights by default). This script scores every weighting on a grid (each
proxy 0, 0.5, 1, 2 or 4, the largest fixed at 4 since only ratios count, plus equal weights) on
a tables study (the six property tables: failure patterns reproduced, Spearman) and a search
study (Spearman with ViT-B and DiT-B/4), and prints the best weightings by patterns, then by
ViT-B. The best of ~60 weightings chosen on the same data is an optimistic bound, not a
measurement of a declared rule: every shipped reference is released calibration data (in
sample). It answers whether weighting alone could meet a target, not which weights to ship.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import warnings

import pandas as pd

from funcsearch.aggregate import AggregateRule
from funcsearch.fidelity import aggregate_fidelity
from funcsearch.proxies.registry import is_screen
from funcsearch.references import ReferenceSet, load_reference
from funcsearch.search.store import read_results

GRID = (0.0, 0.5, 1.0, 2.0, 4.0)


def weightings(proxies: list[str]) -> list[dict[str, float]]:
    """Every grid point whose largest weight is the grid's largest (ratios are what count), and
    equal weights."""
    points = [dict(zip(proxies, w)) for w in itertools.product(GRID, repeat=len(proxies))
              if max(w) == GRID[-1]]
    return [dict.fromkeys(proxies, 1.0)] + points


REFERENCES = {"tables": "paper_property_tables.csv", "ViT-B": "paper_search_vit_b.csv",
              "DiT-B/4": "paper_search_dit_b4.csv"}


@functools.cache
def reference(name: str) -> ReferenceSet:
    """A shipped reference set, read once for all weightings."""
    return load_reference(REFERENCES[name])


def score(tables: pd.DataFrame, search: pd.DataFrame, weights: dict[str, float]) -> dict[str, object]:
    """Patterns and Spearman of the aggregate under ``weights`` on both studies."""
    rule = AggregateRule(weights=weights)
    table = aggregate_fidelity(tables, reference("tables"), rule)
    row: dict[str, object] = {**{f"w_{p}": w for p, w in weights.items()},
                              "patterns": sum(p.reproduced for p in table.patterns),
                              "which": ", ".join(p.study for p in table.patterns if p.reproduced) or "-",
                              "tables": table.spearman.estimate}
    for name in ("ViT-B", "DiT-B/4"):
        row[name] = aggregate_fidelity(search, reference(name), rule).spearman.estimate
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", help="a results folder of the six property tables")
    parser.add_argument("search", help="a results folder of the released search functions")
    parser.add_argument("--top", type=int, default=8, help="rows to print per ordering")
    args = parser.parse_args()
    tables, search = read_results(args.tables), read_results(args.search)
    proxies = sorted(p for p in set(tables["proxy"]) & set(search["proxy"]) if not is_screen(p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = pd.DataFrame([score(tables, search, w) for w in weightings(proxies)])
    pd.set_option("display.width", 200)
    print(f"{len(rows)} weightings of {', '.join(proxies)} (in sample: the best is an optimistic bound)")
    print("equal weights:\n" + rows.head(1).to_string(index=False, float_format="%+.2f"))
    for key in (["patterns", "tables"], ["ViT-B", "DiT-B/4"]):
        best = rows.sort_values(key, ascending=False).head(args.top)
        print(f"\nbest by {' then '.join(key)}:\n" + best.to_string(index=False, float_format="%+.2f"))
    print(f"\nmost patterns on any weighting: {rows['patterns'].max()} of 6; best ViT-B {rows['ViT-B'].max():+.2f}, "
          f"best DiT-B/4 {rows['DiT-B/4'].max():+.2f}; both >= 0.7 on {int(((rows['ViT-B'] >= 0.7) & (rows['DiT-B/4'] >= 0.7)).sum())} weightings")


if __name__ == "__main__":
    main()
