"""Search throughput (2 concurrent trials over 1) and scheduling overhead per trial, one run.

The same 6 real trials (ViT proxy at its default size, 2 epochs; 3 functions x 2 seeds)
are timed four ways, all after warm-up (workers started, torch and the proxies imported):

- ``plain 1`` / ``plain 2``: ``run_trial`` in a process pool of 1 / 2 processes, no engine:
  what this machine itself gives when two trials run side by side (its ceiling);
- ``search 1`` / ``search 2``: ``run_search`` with concurrency 1 / 2 on a local Ray
  cluster with 2 CPUs (one torch thread per trial), each into a fresh results folder.

The four are interleaved and repeated (``--repeats``, default 2) and the fastest of each is
kept: on a shared machine, the least disturbed measurement is the one that shows what the
engine can do. Every measurement is printed too.

Printed: the search's throughput ratio ``search 1 / search 2`` (goal >= 1.7x), the machine's
ratio ``plain 1 / plain 2`` and their quotient (how much of the machine's parallelism the
engine delivers); the scheduling overhead per trial ``(search 1 - plain 1) / 6`` (everything
the engine adds around a trial: Ray dispatch, the durable Parquet write, re-planning,
progress, plus per-search fixed costs such as consolidation and the leaderboard spread over
6 trials; goal < 1 s), and the same for 18 no-op trials, which isolates the per-trial part.

    python benchmarks/bench_search.py

Wall-clock timings on a shared machine: run it when nothing else is busy.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import ray
from rich.console import Console

HERE = Path(__file__).resolve().parent
FUNCTIONS = ["isru", "smoothsign", "layernorm"]
SEEDS = [0, 1]
OVERRIDES = {"epochs": 2, "warmup_epochs": 0}
TRIALS = f"""\
name: {{name}}
output: {{output}}
reuse: false
candidates: {{{{functions: [isru, smoothsign], require: []}}}}
baselines: [layernorm]
proxies:
  vit: {{{{overrides: {{{{epochs: {OVERRIDES['epochs']}, warmup_epochs: 0}}}}}}}}
seeds: {SEEDS}
"""
NOOP = """\
name: {name}
output: {output}
reuse: false
candidates: {{functions: ["x", "x/2", "x/3", "x/4", "x/5", "x/6", "x/7", "x/8", "x/9"], require: []}}
baselines: []
proxies: {{vit: {{overrides: {{epochs: 1, warmup_epochs: 0}}}}}}
seeds: [0, 1]
"""


def noop_trial(spec, on_epoch=None, threads=1):  # noqa: ANN001, ANN201 - a module-level stand-in
    """A trial that does no work: what is left of its wall time is the engine's."""
    from funcsearch.proxies import TrialResult

    return TrialResult(status="ok", metrics={"test_acc": 0.5}, curve=[{"epoch": 1.0}], wall_time_s=0.0)


def plain_trial(function: str, seed: int) -> float:
    """One trial without the engine (in a pool process); returns its status check."""
    import torch

    from funcsearch.named import resolve_function
    from funcsearch.proxies import FunctionSpec, TrialSpec, run_trial

    torch.set_num_threads(1)
    name, expression = resolve_function(function)
    spec = TrialSpec(proxy="vit", function=FunctionSpec(name=name, expression=expression),
                     seed=seed, overrides=OVERRIDES)
    assert run_trial(spec, None, 1).status == "ok"
    return 0.0


def _warm(_: int) -> None:
    import funcsearch.proxies  # noqa: F401
    time.sleep(1.0)


def timed_plain(workers: int) -> float:
    os.environ["OMP_NUM_THREADS"] = "1"  # as Ray gives its one-CPU workers
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        list(pool.map(_warm, range(workers)))
        start = time.perf_counter()
        list(pool.map(plain_trial, *zip(*[(f, s) for f in FUNCTIONS for s in SEEDS])))
        return time.perf_counter() - start


def timed_search(text: str, folder: Path, name: str, concurrency: int, **options: object) -> tuple[float, int]:
    """(wall seconds, trials) of one fresh search."""
    from funcsearch.search import parse_search_config, run_search

    config = parse_search_config(text.format(name=name, output=folder), source=f"<{name}>")
    start = time.perf_counter()
    outcome = run_search(config, concurrency=concurrency, console=Console(quiet=True), live=False,
                         **options)
    wall = time.perf_counter() - start
    assert (outcome.frame["status"] == "ok").all(), outcome.frame[["candidate", "status", "message"]]
    return wall, len(outcome.frame)


@ray.remote(num_cpus=1)
def _warm_up() -> int:
    import funcsearch.proxies  # noqa: F401  - torch and the proxies, once per worker
    time.sleep(1.0)
    return 0


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    repeats = parser.parse_args().repeats
    n = len(FUNCTIONS) * len(SEEDS)
    times: dict[str, list[float]] = {"plain 1": [], "plain 2": [], "search 1": [], "search 2": []}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})
    try:
        ray.get([_warm_up.remote() for _ in range(2)])
        sys.path.insert(0, str(HERE))
        from bench_search import noop_trial as trial_fn  # importable by name on the workers

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for r in range(repeats):
                order = ["plain 1", "search 1", "plain 2", "search 2"]
                for what in order if r % 2 == 0 else order[::-1]:
                    workers = int(what[-1])
                    if what.startswith("plain"):
                        times[what].append(timed_plain(workers))
                    else:
                        times[what].append(timed_search(TRIALS, folder, f"{what[-1]}-{r}", workers)[0])
                    print(f"  {what}: {times[what][-1]:6.1f} s", flush=True)
            noop, n_noop = timed_search(NOOP, folder, "noop", 1, trial_fn=trial_fn)
    finally:
        ray.shutdown()
    best = {k: min(v) for k, v in times.items()}
    engine, machine = best["search 1"] / best["search 2"], best["plain 1"] / best["plain 2"]
    print(f"{n} ViT trials (default size, {OVERRIDES['epochs']} epochs), one torch thread each; "
          f"fastest of {repeats}")
    print(f"  plain processes, 1 at a time: {best['plain 1']:6.1f} s   2 at a time: {best['plain 2']:6.1f} s")
    print(f"  search on Ray,   1 at a time: {best['search 1']:6.1f} s   2 at a time: {best['search 2']:6.1f} s")
    print(f"throughput of 2 concurrent trials over 1, search:  {engine:.2f}x (goal >= 1.7x)")
    print(f"  the same trials as plain processes (machine):    {machine:.2f}x")
    print(f"  share of the machine's parallelism delivered:    {engine / machine:.2f}")
    print(f"scheduling overhead per trial, real trials:        "
          f"{(best['search 1'] - best['plain 1']) / n:.3f} s (goal < 1 s)")
    print(f"scheduling overhead per trial, {n_noop} no-op trials:    {noop / n_noop:.3f} s")


if __name__ == "__main__":
    main()
