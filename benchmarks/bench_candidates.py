"""Time the whole candidate catalog: expand, deduplicate, compile-check, property-check.

    python benchmarks/bench_candidates.py [PATH ...] [--repeat 2]

Runs in one fresh process and prints, per phase, seconds and the share of the total, then
candidates per second for the cold first build (imports and sympy caches empty, what a
user of ``funcsearch candidates candidates/`` waits for) and for warm rebuilds in the same
process (the ratio says how much is one-off start-up). Goal (issue 2): the full catalog in
under 10 s on the 2-core development machine. Wall times taken while other jobs run are
noisy; the CPU seconds of this process (also printed) hardly depend on that load.
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
    cpu_start = time.process_time()
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import scipy.special  # noqa: F401
    import torch

    torch.set_num_threads(1)
    from funcsearch.candidates import _deduplicate, load_raw_candidates
    from funcsearch.catalog import build_catalog
    from funcsearch.expressions import Expression, check_compiled
    from funcsearch.properties import check_properties, load_profile

    phases: dict[str, tuple[float, float]] = {
        "imports": (time.perf_counter() - start, time.process_time() - cpu_start)}

    def timed(name: str, work):  # (wall, cpu) seconds of one phase
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        phases[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return result

    raw = timed("expand (YAML, parse, transforms)", lambda: load_raw_candidates(args.paths))
    unique = timed("dedup (fingerprint, canonical text)", lambda: _deduplicate(raw))
    profile = load_profile()
    reports = timed("property checks (numpy)", lambda: [
        check_properties(Expression(c.expression, e), profile, compile_check=False)
        for c, e in unique])
    compiled = timed("compile checks (torch vs reference)",
                     lambda: [check_compiled(e) for _, e in unique])
    cold = time.perf_counter() - start
    cold_cpu = time.process_time() - cpu_start

    total = sum(wall for wall, _ in phases.values())
    print(f"catalog {', '.join(args.paths)}: {len(raw)} raw, {len(unique)} unique, "
          f"{sum(r.all_passed for r in reports)} pass all four properties, "
          f"{sum(c.ok for c in compiled)} compile cleanly")
    print(f"{'phase':40s} {'wall s':>8s} {'share':>6s} {'cpu s':>8s}")
    for name, (wall, cpu) in phases.items():
        print(f"{name:40s} {wall:8.2f} {wall / total:6.1%} {cpu:8.2f}")
    print(f"{'cold total (fresh process)':40s} {cold:8.2f} {'':6s} {cold_cpu:8.2f}")
    print(f"cold: {len(raw) / cold:.0f} raw candidates/s, {len(unique) / cold:.0f} unique/s wall; "
          f"{len(raw) / cold_cpu:.0f} raw/s per CPU second "
          f"(goal: full catalog < 10 s -> wall {'met' if cold < 10 else 'NOT met'}, "
          f"cpu {'met' if cold_cpu < 10 else 'NOT met'}; cpu/wall = {cold_cpu / cold:.2f}, "
          "well below 1 means other jobs took the CPU)")

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
