"""Search throughput (2 concurrent trials over 1) and scheduling overhead per trial, one run.

Both measurements share one local Ray cluster with 2 CPUs, started (and its two workers
warmed up: torch and the proxies imported) before anything is timed:

1. the same 8 real trials (tiny ViT proxy: 4 functions x 2 seeds) searched with
   concurrency 1, then with concurrency 2, each into a fresh results folder;
   throughput ratio = wall(1) / wall(2)                                  goal >= 1.7x
2. scheduling overhead per trial = (wall(1) - sum of the trials' own wall times) / 8:
   everything the engine adds around a trial when they run one after another (Ray
   dispatch, the durable Parquet write, re-planning, progress), plus the per-search fixed
   costs (function selection, consolidation, leaderboard) spread over the 8 trials; and
   the same for 20 no-op trials, which isolates the per-trial part.   goal < 1 s

    python benchmarks/bench_search.py

Timings are wall-clock on a shared machine: run it when nothing else is busy.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import ray
from rich.console import Console

HERE = Path(__file__).resolve().parent
TRIALS = """\
name: {name}
output: {output}
candidates: {{functions: [isru, smoothsign], require: []}}
baselines: [layernorm, derf]
proxies:
  vit: {{overrides: {{epochs: 3, warmup_epochs: 0, dim: 32, depth: 2, heads: 2}}}}
seeds: [0, 1]
"""
NOOP = """\
name: {name}
output: {output}
candidates: {{functions: ["x", "x/2", "x/3", "x/4", "x/5", "x/6", "x/7", "x/8", "x/9"], require: []}}
baselines: []
proxies: {{vit: {{overrides: {{epochs: 1, warmup_epochs: 0}}}}}}
seeds: [0, 1]
"""


def noop_trial(spec, on_epoch=None, threads=1):  # noqa: ANN001, ANN201 - a module-level stand-in
    """A trial that does no work: what is left of its wall time is the engine's."""
    from funcsearch.proxies import TrialResult

    return TrialResult(status="ok", metrics={"test_acc": 0.5}, curve=[{"epoch": 1.0}], wall_time_s=0.0)


def timed_search(text: str, folder: Path, name: str, concurrency: int, **options: object) -> tuple[float, float, int]:
    """(wall seconds, sum of the trials' own seconds, trials) of one fresh search."""
    from funcsearch.search import parse_search_config, run_search

    config = parse_search_config(text.format(name=name, output=folder), source=f"<{name}>")
    start = time.perf_counter()
    outcome = run_search(config, concurrency=concurrency, console=Console(quiet=True), live=False,
                         **options)
    wall = time.perf_counter() - start
    frame = outcome.frame
    assert (frame["status"] == "ok").all(), frame[["candidate", "status", "message"]]
    return wall, float(frame["wall_time_s"].sum()), len(frame)


@ray.remote(num_cpus=1)
def _warm_up() -> int:
    import funcsearch.proxies  # noqa: F401  - torch and the proxies, once per worker
    time.sleep(1.0)
    return 0


def main() -> None:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})
    try:
        ray.get([_warm_up.remote() for _ in range(2)])
        sys.path.insert(0, str(HERE))
        from bench_search import noop_trial as trial_fn  # importable by name on the workers

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            one, one_compute, n = timed_search(TRIALS, folder, "one", 1)
            two, two_compute, _ = timed_search(TRIALS, folder, "two", 2)
            noop, _, n_noop = timed_search(NOOP, folder, "noop", 1, trial_fn=trial_fn)
    finally:
        ray.shutdown()
    ratio = one / two
    overhead = (one - one_compute) / n
    print(f"{n} tiny ViT trials, local Ray with 2 CPUs, one torch thread per trial")
    print(f"  concurrency 1: {one:6.1f} s wall ({one_compute:.1f} s inside the trials)")
    print(f"  concurrency 2: {two:6.1f} s wall ({two_compute:.1f} s inside the trials)")
    print(f"throughput, 2 concurrent over 1:           {ratio:.2f}x   (goal >= 1.7x)")
    print(f"scheduling overhead per trial (real trials): {overhead:.3f} s (goal < 1 s)")
    print(f"scheduling overhead per trial ({n_noop} no-op trials): {noop / n_noop:.3f} s")
    print(f"trial slow-down when 2 run side by side: {two_compute / one_compute:.2f}x "
          "(memory bandwidth / other load)")


if __name__ == "__main__":
    main()
