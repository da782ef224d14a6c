"""How far a proxy reads one property table backwards: the lead of full scale's worst group (no training)

    python benchmarks/table_lead.py results/property_tables results/probe_vit_depth_12 --seed 0
    python benchmarks/table_lead.py results/probe_vit_width_* --table monotonic --proxy vit

Every proxy ranks Table 6 (monotonicity) backwards: the three non-monotonic functions, which
full scale puts last, are among its best. The probes of issue 14 that vary one knob (width,
depth) judge it by the *lead*: the mean of the proxy's primary metric over the functions full
scale ranks worst (for Table 6 the ``non_monotonic`` variant) minus its mean over the rest of
the table (LayerNorm and other baselines left out), oriented so that a **negative lead means
full scale's worst look better on the proxy**. Printed per study: the two group means, the
lead, how many of the worst group are among the proxy's best (as many places as the group
has), LayerNorm, and the table's Spearman with full scale on the seeds read. Every shipped
reference is released calibration data: in sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from funcsearch.fidelity import measure_fidelity
from funcsearch.references import ReferenceSet, load_reference
from funcsearch.search.store import read_results

REFERENCE = "paper_property_tables.csv"
WORST_VARIANT = {"monotonic": "non_monotonic"}
"""The table's group that full scale ranks worst without failing (the others are read from failures)."""


def lead_row(folder: Path, proxy: str, table: str, seed: int | None,
             reference: ReferenceSet | None = None) -> dict[str, object]:
    """The lead of one study's proxy on one table (seed ``None``: the mean over its seeds)."""
    frame = read_results(folder)
    frame = frame[frame["proxy"] == proxy]
    if seed is not None:
        frame = frame[frame["seed"] == seed]
    if frame.empty:
        raise SystemExit(f"{folder}: no {proxy} trials" + (f" on seed {seed}" if seed is not None else ""))
    reference = reference or load_reference(REFERENCE)
    report = measure_fidelity(frame, reference, proxy=proxy, studies=[table], bootstrap=0)
    members = report.table  # the table's functions only (studies=[table])
    if table in WORST_VARIANT:
        variant = reference.table.drop_duplicates("fingerprint").set_index("fingerprint")["variant"]
        worst = members.index.map(variant) == WORST_VARIANT[table]
    else:
        worst = members["reference_failed"].to_numpy(bool)
    oriented = members["proxy_mean"].to_numpy(float)  # higher = better, whatever the metric
    # negative lead = the worst group looks better, in the metric's own units
    lead = float(np.nanmean(oriented[~worst]) - np.nanmean(oriented[worst]))
    sign = 1.0 if bool(frame["higher_is_better"].iloc[0]) else -1.0  # back to the metric itself
    worst_mean, rest_mean = sign * float(np.nanmean(oriented[worst])), sign * float(np.nanmean(oriented[~worst]))
    order = members.sort_values("proxy_rank")
    best_places = order.index[: int(worst.sum())]
    layernorm = frame[(frame["candidate"].str.lower() == "layernorm") & (frame["status"] == "ok")]["score"]
    return {
        "study": folder.name, "seeds": "all" if seed is None else str(seed),
        "worst group": round(worst_mean, 3), "rest": round(rest_mean, 3), "lead": round(lead, 3),
        "worst among best": f"{int(np.isin(best_places, members.index[worst]).sum())}/{int(worst.sum())}",
        "LayerNorm": round(float(layernorm.mean()), 3) if len(layernorm) else "not run",
        "table Spearman": round(report.spearman.estimate, 2),
        "best three": ", ".join(order["name"].head(3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path, help="results folders")
    parser.add_argument("--proxy", default="vit")
    parser.add_argument("--table", default="monotonic", help="a study of paper_property_tables.csv")
    parser.add_argument("--seed", type=int, default=None, help="read one seed (default: the seed means)")
    args = parser.parse_args()
    reference = load_reference(REFERENCE)
    table = pd.DataFrame([lead_row(folder, args.proxy, args.table, args.seed, reference) for folder in args.studies])
    print(f"{args.proxy}, table '{args.table}' ({REFERENCE}, in sample); lead < 0: full scale's worst "
          "look better on the proxy")
    print("| " + " | ".join(table.columns) + " |")
    print("|" + " --- |" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(str(value) for value in row) + " |")


if __name__ == "__main__":
    main()
