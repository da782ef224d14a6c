"""The proxies' reference table: LayerNorm, DyT, Derf, erf(x+2) and f(x)=x, several seeds.

Runs every (proxy, function, seed) trial at the proxy defaults, ``--workers`` processes side
by side with one torch thread each (how the search runs them), and prints a markdown table
of mean +- std per metric, the number of diverged runs, and the wall and CPU seconds per
trial (CPU seconds do not depend on how busy the machine is). ``--jsonl`` keeps every
finished trial, so an interrupted run resumes where it stopped.

    python benchmarks/proxy_table.py --seeds 3 --workers 2 --jsonl results/proxy_table.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

FUNCTIONS: dict[str, dict[str, Any]] = {
    "LayerNorm": {"name": "layernorm", "expression": None},
    "DyT (tanh, no shift)": {"name": "dyt", "expression": "tanh(x)", "shift": "none"},
    "Derf (erf)": {"name": "derf", "expression": "erf(x)"},
    "erf(x+2)": {"name": "erf(x+2)", "expression": "erf(x + 2)"},
    "f(x)=x": {"name": "identity", "expression": "x"},
}


def metric_columns(proxy: str) -> list[tuple[str, str, float]]:
    """(name, heading, display scale) of every metric the proxy declares, training loss aside."""
    from funcsearch.proxies import get_proxy

    return [(m.name, m.heading, m.scale) for m in get_proxy(proxy).metrics if m.name != "train_loss"]


def _run(proxy: str, label: str, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    from funcsearch.proxies import FunctionSpec, TrialSpec, run_trial

    spec = TrialSpec(proxy=proxy, seed=seed, overrides=overrides,  # type: ignore[arg-type]
                     function=FunctionSpec(**FUNCTIONS[label]))
    result = run_trial(spec, threads=1)
    return {"proxy": proxy, "function": label, "seed": seed, "status": result.status,
            "metrics": result.metrics, "wall_s": result.wall_time_s,
            "cpu_s": result.details.get("cpu_time_s"), "message": result.message}


def _cell(values: list[float], scale: float) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    reference = std if std > 0 else abs(mean)
    decimals = min(6, max(0, 1 - math.floor(math.log10(reference)))) if reference > 0 else 2
    return f"{mean:.{decimals}f} +- {std:.{decimals}f}"


def table(rows: list[dict[str, Any]], proxies: list[str]) -> str:
    """Markdown: one line per function, mean +- std over seeds of the runs that finished."""
    lines = []
    for proxy in proxies:
        metrics = metric_columns(proxy)
        header = ["function", *(title for _, title, _ in metrics), "diverged", "wall s/trial", "CPU s/trial"]
        lines += [f"**{proxy}**", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for label in FUNCTIONS:
            runs = [r for r in rows if r["proxy"] == proxy and r["function"] == label]
            if not runs:
                continue
            ok = [r for r in runs if r["status"] == "ok"]
            cells = [_cell([r["metrics"][key] for r in ok if key in r["metrics"]], scale)
                     for key, _, scale in metrics]
            diverged = sum(r["status"] == "diverged" for r in runs)
            wall = statistics.fmean(r["wall_s"] for r in runs)
            cpu = statistics.fmean(r["cpu_s"] for r in runs if r["cpu_s"] is not None)
            lines.append(f"| {label} | " + " | ".join(cells)
                         + f" | {diverged}/{len(runs)} | {wall:.1f} | {cpu:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    from funcsearch.proxies import PROXIES, parse_set_options

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--proxies", nargs="+", default=list(PROXIES), choices=list(PROXIES))
    parser.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="config override key=value (repeatable); prefix <proxy>. for one proxy")
    parser.add_argument("--jsonl", type=Path, default=None, help="append finished trials here; resume from it")
    args = parser.parse_args()

    parsed = parse_set_options(args.settings)
    overrides = {proxy: {key.split(".", 1)[-1]: value for key, value in parsed.items()
                         if "." not in key or key.startswith(proxy + ".")} for proxy in PROXIES}
    rows: list[dict[str, Any]] = []
    if args.jsonl and args.jsonl.exists():
        rows = [json.loads(line) for line in args.jsonl.read_text().splitlines() if line.strip()]
    done = {(r["proxy"], r["function"], r["seed"]) for r in rows}
    jobs = [(p, f, s) for p in args.proxies for s in range(args.seeds) for f in args.functions
            if (p, f, s) not in done]
    print(f"{len(jobs)} trials to run ({len(done)} already in {args.jsonl}), "
          f"{args.workers} workers x 1 thread", file=sys.stderr)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run, p, f, s, overrides[p]) for p, f, s in jobs]
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            if args.jsonl:
                args.jsonl.parent.mkdir(parents=True, exist_ok=True)
                with args.jsonl.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
            primary = {k: round(v, 4) for k, v in row["metrics"].items() if not math.isnan(v)}
            print(f"[{time.perf_counter() - start:6.0f}s] {row['proxy']} {row['function']} "
                  f"seed {row['seed']}: {row['status']} {primary} ({row['wall_s']:.0f}s)", file=sys.stderr)
    selected = [r for r in rows if r["proxy"] in args.proxies and r["function"] in args.functions
                and r["seed"] < args.seeds]
    print(table(selected, args.proxies))
    if parsed:
        print(f"overrides: {parsed}")


if __name__ == "__main__":
    main()
