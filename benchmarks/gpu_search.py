"""Run a search config on this machine's GPU through the library (no installed CLI needed).

    python benchmarks/gpu_search.py search_configs/paper_search_gpu.yaml --output DIR

Starts a local Ray cluster with every CPU (at most 16) and the GPUs torch sees, runs the
search (resumable: stored trials are kept) and writes its leaderboard.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import ray
import torch

from funcsearch.search import run_search
from funcsearch.search.config import load_search_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    config = load_search_config(args.config)
    if args.output is not None:
        config = config.model_copy(update={"output": str(args.output)})
    ray.init(address="local", num_cpus=min(os.cpu_count() or 1, 16), num_gpus=torch.cuda.device_count(),
             include_dashboard=False, log_to_driver=False)
    try:
        outcome = run_search(config, live=False)
        print(f"{outcome.runs} trials run")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
