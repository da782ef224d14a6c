"""Time the whole candidate catalog: expand, deduplicate, compile-check, property-check.

    python benchmarks/bench_candidates.py [PATH ...] [--repeat 2]

Runs in one fresh process and prints, per phase, seconds and the share of the total, then
candidates per second for the cold first build (imports and sympy caches empty, what a
user of ``funcsearch candidates candidates/`` waits for) and for warm rebuilds in the same
process (the ratio says how much is one-off start-up). Goal (issue 2): the full catalog in
under 10 s on the 2-core development machine. Timings taken while other jobs run are noisy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(REPO / "candidates")])
    parser.add_argument("--repeat", type=int, default=2, help="warm rebuilds after the cold one")
    args = parser.parse_args()

    start = time.perf_counter()
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import scipy.special  # noqa: F401
    import torch

    torch.set_num_threads(1)
    from funcsearch.candidates import _deduplicate, build_catalog, load_raw_candidates
    from funcsearch.expressions import Expression, check_compiled
    from funcsearch.properties import check_properties, load_profile

    phases: dict[str, float] = {"imports": time.perf_counter() - start}

    mark = time.perf_counter()
    raw = load_raw_candidates(args.paths)
    phases["expand (YAML, parse, transforms)"] = time.perf_counter() - mark

    mark = time.perf_counter()
    unique = _deduplicate(raw)
    phases["dedup (fingerprint, canonical text)"] = time.perf_counter() - mark

    profile = load_profile()
    mark = time.perf_counter()
    reports = [check_properties(Expression(c.expression, e), profile, compile_check=False)
               for c, e in unique]
    phases["property checks (numpy)"] = time.perf_counter() - mark

    mark = time.perf_counter()
    compiled = [check_compiled(e) for _, e in unique]
    phases["compile checks (torch vs reference)"] = time.perf_counter() - mark
    cold = time.perf_counter() - start

    total = sum(phases.values())
    print(f"catalog {', '.join(args.paths)}: {len(raw)} raw, {len(unique)} unique, "
          f"{sum(r.all_passed for r in reports)} pass all four properties, "
          f"{sum(c.ok for c in compiled)} compile cleanly")
    print(f"{'phase':40s} {'seconds':>8s} {'share':>6s}")
    for name, seconds in phases.items():
        print(f"{name:40s} {seconds:8.2f} {seconds / total:6.1%}")
    print(f"{'cold total (fresh process)':40s} {cold:8.2f}")
    print(f"cold: {len(raw) / cold:.0f} raw candidates/s, {len(unique) / cold:.0f} unique/s "
          f"(goal: full catalog < 10 s -> {'met' if cold < 10 else 'NOT met'})")

    warm_times = []
    for _ in range(max(args.repeat, 0)):
        mark = time.perf_counter()
        table = build_catalog(args.paths, profile)
        warm_times.append(time.perf_counter() - mark)
    if warm_times:
        warm = min(warm_times)
        print(f"warm build_catalog (best of {len(warm_times)}): {warm:.2f} s, "
              f"{len(raw) / warm:.0f} raw candidates/s, {len(table)} rows; "
              f"cold/warm = {cold / warm:.2f}x")


if __name__ == "__main__":
    main()
