"""One trial's CPU cost under two versions of funcsearch, measured side by side.

    python benchmarks/source_cost.py --base 062cd7d [--proxy vit] [--fn erf] [--set K=V ...]
                                     [--repeat 1]

When a study's trials cost more than an older study's records say, this tells the code
from the machine: the same trial (same proxy, function, seed and overrides) runs under a
git worktree of ``--base`` and under this checkout *at the same time*, one torch thread
each, so whatever else loads the machine loads both alike. It prints each side's CPU
seconds (the trial's own record), their ratio, and whether the two gave the same metrics
(the same seed should give the same result on the same machine, across versions too,
unless a change was meant to alter training). ``--repeat N`` runs N such pairs.

Needs a git checkout (the worktree is made in a temporary folder and removed after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def trial_command(args: argparse.Namespace) -> list[str]:
    """The ``funcsearch train`` command line both sides run."""
    cmd = [sys.executable, "-m", "funcsearch.cli", "train", "--proxy", args.proxy,
           "--fn", args.fn, "--seed", str(args.seed), "--threads", "1"]
    for item in args.set:
        cmd += ["--set", item]
    return cmd


def parse_result(text: str) -> dict:
    """The JSON record ``funcsearch train`` prints on stdout."""
    return json.loads(text[text.index("{"):])


def run_pair(cmd: list[str], base_tree: Path) -> tuple[dict, dict]:
    """Start the base and the current trial together; wait for both."""
    procs = {}
    for side, tree in (("base", base_tree), ("current", ROOT)):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        procs[side] = subprocess.Popen(cmd, cwd=tempfile.gettempdir(), env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = {}
    for side, proc in procs.items():
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the {side} trial failed (exit {proc.returncode})")
        out[side] = parse_result(stdout)
    return out["base"], out["current"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--proxy", default="vit")
    parser.add_argument("--fn", default="erf")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="override K=V (repeatable)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    cmd = trial_command(args)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree),
                        args.base], check=True)
        try:
            ratios = []
            for i in range(args.repeat):
                base, current = run_pair(cmd, tree)
                b, c = base["details"]["cpu_time_s"], current["details"]["cpu_time_s"]
                same = base["metrics"] == current["metrics"]
                ratios.append(c / b)
                print(f"pair {i + 1}: base {b:.1f} CPU s, current {c:.1f} CPU s, "
                      f"current/base {c / b:.2f}; metrics {'identical' if same else 'differ'}")
                if not same:
                    print(f"  base    {base['metrics']}\n  current {current['metrics']}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False)
    if len(ratios) > 1:
        print(f"current/base: median {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}) over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
