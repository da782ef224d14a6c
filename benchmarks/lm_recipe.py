"""Measure an lm proxy recipe: CPU cost, whether it separates functions, seed agreement.

Runs (function, seed) trials of the ``lm`` proxy with ``--workers`` processes side by side,
one torch thread each (how the search runs them), and prints:

- one line per function: val_bpc per seed (``div`` = diverged), mean, std, and the CPU and
  wall seconds per trial (CPU seconds depend far less than wall seconds on how busy the
  machine is, but cache sharing still inflates them on a loaded machine);
- the separation checks: erf(x + 2) and the flat zone of 3 against erf, as the difference
  of means in units of erf's seed std (and whether every seed of the worse function is
  worse than every seed of erf);
- over the paper's 16 functions (``--functions paper16``), the Spearman correlation of
  val_bpc between every pair of seeds and its mean (diverged runs tied last, and again over
  the functions that finished on both seeds).

``--jsonl`` keeps every finished trial (keyed by recipe, function and seed), so an
interrupted run resumes and several recipes can share one file.

    python benchmarks/lm_recipe.py --functions checks --seeds 2 --workers 2 --jsonl /tmp/lm_recipe.jsonl
    python benchmarks/lm_recipe.py --functions paper16 checks --seeds 3 --workers 2 \\
        --jsonl /tmp/lm_recipe.jsonl --recipe default          # the figures of docs/lm.md
    python benchmarks/lm_recipe.py --functions checks --set init_std=0.02 --recipe nanogpt-init
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

CHECKS: dict[str, str | None] = {
    "erf": "erf(x)",
    "erf(x+2)": "erf(x + 2)",
    "erf|flat_zone=3": "erf(x - clip(x, -3, 3))",
    "layernorm": None,
}
"""The separation checks: the two functions that must come out worse than erf, and LayerNorm."""


def paper16() -> dict[str, str]:
    from funcsearch.named import PAPER_SEARCH

    return dict(PAPER_SEARCH)


def _functions(groups: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for group in groups:
        if group == "checks":
            out.update(CHECKS)
        elif group == "paper16":
            out.update(paper16())
        elif group in CHECKS:
            out[group] = CHECKS[group]
        else:
            out[group] = group  # an expression
    return out


def _run(name: str, expression: str | None, seed: int, overrides: dict[str, Any],
         shift: str) -> dict[str, Any]:
    from funcsearch.proxies.trial import FunctionSpec, TrialSpec, run_trial

    spec = TrialSpec(proxy="lm", seed=seed, overrides=overrides,
                     function=FunctionSpec(name=name, expression=expression,
                                           shift="none" if expression is None else shift))  # type: ignore[arg-type]
    result = run_trial(spec, threads=1)
    return {"function": name, "seed": seed, "status": result.status, "metrics": result.metrics,
            "wall_s": result.wall_time_s, "cpu_s": result.details.get("cpu_time_s"),
            "message": result.message, "diverged_step": result.diverged_step,
            "curve": [round(e.get("val_bpc", math.nan), 4) for e in result.curve]}


def _value(row: dict[str, Any] | None) -> float | None:
    if row is None or row["status"] != "ok":
        return None
    return row["metrics"].get("val_bpc")


def table(rows: dict[tuple[str, int], dict[str, Any]], functions: list[str], seeds: list[int]) -> str:
    header = ["function", *(f"seed {s}" for s in seeds), "mean", "std", "CPU s", "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in functions:
        runs = [rows.get((name, s)) for s in seeds]
        if not any(runs):
            continue
        values = [_value(r) for r in runs]
        cells = ["-" if r is None else ("div" if v is None else f"{v:.4f}") for r, v in zip(runs, values)]
        ok = [v for v in values if v is not None]
        mean = f"{statistics.fmean(ok):.4f}" if ok else "-"
        std = f"{statistics.stdev(ok):.4f}" if len(ok) > 1 else "-"
        done = [r for r in runs if r is not None]
        cpu = statistics.fmean(r["cpu_s"] for r in done)
        wall = statistics.fmean(r["wall_s"] for r in done)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} | {std} | {cpu:.1f} | {wall:.1f} |")
    return "\n".join(lines)


def separation(rows: dict[tuple[str, int], dict[str, Any]], seeds: list[int]) -> list[str]:
    """erf(x+2) and the flat zone against erf: gap in erf seed stds, and full separation."""
    base = [_value(rows.get(("erf", s))) for s in seeds]
    base_ok = [v for v in base if v is not None]
    if not base_ok:
        return []
    spread = statistics.stdev(base_ok) if len(base_ok) > 1 else float("nan")
    out = []
    for name in ("erf(x+2)", "erf|flat_zone=3"):
        runs = [rows.get((name, s)) for s in seeds]
        if not any(runs):
            continue
        values = [_value(r) for r in runs if r is not None]
        diverged = sum(v is None for v in values)
        ok = [v for v in values if v is not None]
        if ok:
            gap = statistics.fmean(ok) - statistics.fmean(base_ok)
            clear = min(ok) > max(base_ok)
            out.append(f"- {name}: {gap:+.4f} bits/char vs erf ({gap / spread:+.1f} erf seed stds), "
                       f"{diverged} diverged; every seed worse than every erf seed: {clear}")
        else:
            out.append(f"- {name}: all {diverged} runs diverged")
    return out


def seed_agreement(rows: dict[tuple[str, int], dict[str, Any]], functions: list[str],
                   seeds: list[int]) -> list[str]:
    """Spearman of val_bpc between pairs of seeds over ``functions`` (diverged tied last)."""
    from scipy import stats

    out, values, finished_values = [], [], []
    for a, b in itertools.combinations(seeds, 2):
        pairs = [(rows.get((f, a)), rows.get((f, b))) for f in functions]
        if any(x is None or y is None for x, y in pairs):
            continue
        xs = [_value(x) if _value(x) is not None else math.inf for x, _ in pairs]
        ys = [_value(y) if _value(y) is not None else math.inf for _, y in pairs]
        rho = float(stats.spearmanr(xs, ys).statistic)
        both = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
        rho_ok = float(stats.spearmanr(*zip(*both)).statistic) if len(both) >= 3 else math.nan
        values.append(rho)
        finished_values.append(rho_ok)
        out.append(f"- seeds {a} vs {b}: Spearman {rho:+.3f} (n = {len(pairs)}, diverged tied last); "
                   f"{rho_ok:+.3f} over the {len(both)} that finished on both seeds")
    if values:
        out.append(f"- mean over {len(values)} seed pairs: {statistics.fmean(values):+.3f} "
                   f"(finished on both: {statistics.fmean(finished_values):+.3f})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", nargs="+", default=["checks"],
                        help="groups 'checks', 'paper16', names of the checks, or expressions")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--shift", default="scalar", choices=["scalar", "vector", "none"])
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="lm config override key=value (repeatable)")
    parser.add_argument("--recipe", default=None, help="label of this recipe in the jsonl "
                        "(default: the overrides as text)")
    parser.add_argument("--jsonl", type=Path, default=None, help="append finished trials here; resume from it")
    args = parser.parse_args()

    from funcsearch.proxies.config import parse_set_options
    from funcsearch.proxies.lm import LMConfig

    overrides = parse_set_options(args.settings)
    LMConfig.from_overrides(overrides, source="--set")
    recipe = args.recipe or (json.dumps(overrides, sort_keys=True) + f" shift={args.shift}")
    functions = _functions(args.functions)
    seeds = list(range(args.seeds))
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    if args.jsonl and args.jsonl.exists():
        for line in args.jsonl.read_text().splitlines():
            row = json.loads(line) if line.strip() else None
            if row and row.get("recipe") == recipe:
                rows[(row["function"], row["seed"])] = row
    jobs = [(f, s) for s in seeds for f in functions if (f, s) not in rows]
    print(f"recipe {recipe}: {len(jobs)} trials to run ({len(rows)} already in {args.jsonl}), "
          f"{args.workers} workers x 1 thread", file=sys.stderr)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run, f, functions[f], s, overrides, args.shift) for f, s in jobs]
        for future in as_completed(futures):
            row = {"recipe": recipe, **future.result()}
            rows[(row["function"], row["seed"])] = row
            if args.jsonl:
                args.jsonl.parent.mkdir(parents=True, exist_ok=True)
                with args.jsonl.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
            print(f"[{time.perf_counter() - start:6.0f}s] {row['function']} seed {row['seed']}: "
                  f"{row['status']} val_bpc {row['metrics'].get('val_bpc', math.nan):.4f} "
                  f"curve {row['curve']} ({row['cpu_s']:.0f} CPU s)", file=sys.stderr)
    names = list(functions)
    print(f"recipe: {recipe}\n")
    print(table(rows, names, seeds))
    lines = separation(rows, seeds)
    if lines:
        print("\nseparation from erf:\n" + "\n".join(lines))
    paper = [f for f in paper16() if f in functions]
    if len(paper) >= 3:
        lines = seed_agreement(rows, paper, seeds)
        if lines:
            print(f"\nseed agreement over {len(paper)} paper functions (val_bpc):\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
