"""The GPU check: one run (at most about 5 minutes on one GPU) that says whether the GPU path works.

    python benchmarks/gpu_check.py [--device cuda] [--out docs/gpu_check.md]

1. **Same trial, two devices.** The smoke recipe of every registered proxy, seed 0, erf, on
   the GPU and on the CPU: the same status, and every final metric within the stated
   tolerance (the weights start equal - models are built on the CPU and moved - but GPU
   kernels round differently). On the H200 (docs/gpu.md) vit and dit's FID fell outside it:
   a 3-epoch run at a high learning rate amplifies rounding, so this part catches a broken
   device path, not a ranking change; whether the GPU ranks as the CPU does is a paired
   study over seeds (``funcsearch compare``).
2. **Packing trials on one GPU.** A short search (vit smoke recipe, 16 functions, one seed)
   with ``gpus_per_trial: 0.125`` (eight trials share the GPU) against the same search one
   trial at a time (``concurrency: 1``): trials per minute of each, and the ratio.
3. **The layer on the GPU.** Forward+backward of Derf against LayerNorm on a
   (64, 256, 768) activation, eager and ``torch.compile``d, fp32 and bf16 autocast: the
   median time of each and the ratio Derf / LayerNorm, measured side by side (rounds
   interleave the two).
4. **The default recipe on the GPU.** erf, seed 0, each proxy's default recipe (the one
   every committed study ran) on the GPU in fp32 and bf16 autocast: wall time and primary
   metric beside the CPU trial of the same key stored in ``results/paper_search`` (one torch
   thread on this project's 2-core machine). The CPU figure is read, not rerun.

``--out`` is rewritten after each part, so a run stopped at its time limit keeps what it
measured.

With ``--device cpu`` every part runs on the CPU (a dry run of the script itself: part 1
then compares the CPU with itself). Prints Markdown; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

TOLERANCE = (0.05, 0.02)
"""|gpu - cpu| <= 5% of |cpu| + 0.02, per final metric."""


def same_trial_two_devices(device: str, lines: list[str]) -> bool:
    from funcsearch.proxies import PROXIES, FunctionSpec, TrialSpec, run_trial

    lines += ["## 1. The smoke trial of every proxy on both devices (seed 0, erf)", "",
              f"Tolerance per final metric: |{device} - cpu| <= {TOLERANCE[0]:.0%} of |cpu| + {TOLERANCE[1]}.", "",
              "| proxy | status cpu / " + device + " | metric | cpu | " + device + " | within | wall s cpu / " + device + " |",
              "|---|---|---|---|---|---|---|"]
    good = True
    for name, proxy in PROXIES.items():
        overrides = dict(proxy.smoke)
        if "fid_samples" in overrides:  # measure the FID path too (features on the device)
            overrides.update(fid_samples=200, sample_steps=10)
        results = {}
        for where in ("cpu", device):
            spec = TrialSpec(proxy=name, seed=0, overrides=overrides, device=where,
                             function=FunctionSpec(name="erf", expression="erf(x)"))
            results[where] = run_trial(spec, threads=1)
        cpu, other = results["cpu"], results[device]
        same = cpu.status == other.status
        good &= same
        for metric in sorted(cpu.metrics):
            a, b = cpu.metrics[metric], other.metrics.get(metric, math.nan)
            within = abs(a - b) <= TOLERANCE[0] * abs(a) + TOLERANCE[1]
            good &= within
            lines.append(f"| {name} | {cpu.status} / {other.status} | {metric} | {a:.4g} | {b:.4g} | "
                         f"{'yes' if within else 'NO'} | {cpu.wall_time_s:.1f} / {other.wall_time_s:.1f} |")
    lines.append("")
    return good


def packing(device: str, lines: list[str]) -> None:
    import ray

    from funcsearch.named import PAPER_SEARCH
    from funcsearch.search import run_search
    from funcsearch.search.config import parse_search_config

    gpus = 1 if device == "cuda" else 0
    cpus = max(2, min(os.cpu_count() or 2, 16))
    ray.init(address="local", num_cpus=cpus, num_gpus=gpus or 1, include_dashboard=False,
             log_to_driver=False)  # on the CPU dry run the one GPU is logical
    lines += ["## 2. Eight trials per GPU against one at a time", "",
              f"vit smoke recipe, the paper's {len(PAPER_SEARCH)} functions, seed 0; Ray with {cpus} CPUs"
              f" and 1 {'GPU' if gpus else 'logical GPU'}.", "",
              "| setting | trials | wall s | trials per minute |", "|---|---|---|---|"]
    rates = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            from funcsearch.proxies import PROXIES

            smoke = ", ".join(f"{k}: {v}" for k, v in PROXIES["vit"].smoke.items())
            functions = ", ".join(f"'{e}'" for e in PAPER_SEARCH.values())
            for label, resources in (("gpus_per_trial 0.125", "{device: %s, gpus_per_trial: 0.125}" % device),
                                     ("one at a time", "{device: %s, gpus_per_trial: 1, concurrency: 1}" % device)):
                text = (f"name: pack{len(rates)}\noutput: {tmp}\nreuse: false\nbaselines: []\n"
                        f"candidates: {{functions: [{functions}], require: []}}\n"
                        f"proxies: {{vit: {{overrides: {{{smoke}}}}}}}\nseeds: [0]\nresources: {resources}\n")
                config = parse_search_config(text, "gpu_check.yaml")
                start = time.perf_counter()
                outcome = run_search(config, live=False, write_leaderboard=False)
                wall = time.perf_counter() - start
                rates[label] = outcome.runs / wall * 60
                lines.append(f"| {label} | {outcome.runs} | {wall:.1f} | {rates[label]:.1f} |")
    finally:
        ray.shutdown()
    lines += ["", f"Throughput ratio (0.125 GPU per trial / one at a time): "
                  f"{rates['gpus_per_trial 0.125'] / rates['one at a time']:.2f}x", ""]


def _time(module: nn.Module, x: torch.Tensor, grad: torch.Tensor, precision: str) -> float:
    if x.grad is not None:
        x.grad = None
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        y = module(x)
    y.float().backward(grad)
    sync()
    return time.perf_counter() - start


def layer_benchmark(device: str, lines: list[str], reps: int) -> None:
    from funcsearch.layers import Derf

    shape = (64, 256, 768) if device == "cuda" else (8, 65, 256)
    lines += ["## 3. Derf against LayerNorm, forward+backward", "",
              f"Activation {shape}, median of {reps} interleaved rounds after warm-up.", "",
              "| mode | precision | LayerNorm ms | Derf ms | Derf / LayerNorm |", "|---|---|---|---|---|"]
    for mode in ("eager", "compiled"):
        for precision in ("fp32", "bf16"):
            modules = {"LayerNorm": nn.LayerNorm(shape[-1]).to(device), "Derf": Derf(shape[-1]).to(device)}
            if mode == "compiled":
                try:
                    modules = {k: torch.compile(m) for k, m in modules.items()}
                except Exception as exc:  # pragma: no cover - report, go on
                    lines.append(f"| {mode} | {precision} | compile failed: {exc} | | |")
                    continue
            x = torch.randn(shape, device=device, requires_grad=True)
            grad = torch.randn(shape, device=device)
            times: dict[str, list[float]] = {k: [] for k in modules}
            try:
                for _ in range(3):
                    for name, module in modules.items():
                        _time(module, x, grad, precision)
                for _ in range(reps):
                    for name, module in modules.items():
                        times[name].append(_time(module, x, grad, precision))
            except Exception as exc:  # pragma: no cover
                lines.append(f"| {mode} | {precision} | failed: {str(exc).splitlines()[0]} | | |")
                continue
            ln, derf = (statistics.median(times[k]) * 1e3 for k in ("LayerNorm", "Derf"))
            lines.append(f"| {mode} | {precision} | {ln:.3f} | {derf:.3f} | {derf / ln:.2f} |")
    lines.append("")


def default_recipe(device: str, lines: list[str], study: Path) -> None:
    from funcsearch.proxies import PROXIES, FunctionSpec, TrialSpec, run_trial
    from funcsearch.search.store import ResultsStore

    stored = ResultsStore(study).read_current()
    erf = stored[(stored.expression == "erf(x)") & (stored.seed == 0)]
    lines += ["## 4. The default recipe on the GPU (erf, seed 0)", "",
              f"CPU figures are the stored trials of `{study}` (one torch thread, 2-core machine),"
              " read, not rerun.", "",
              f"| proxy | precision | metric | stored cpu | {device} | wall s stored cpu | wall s {device} |"
              " cpu / " + device + " wall |", "|---|---|---|---|---|---|---|---|"]
    for name, proxy in PROXIES.items():
        rows = erf[erf.proxy == name]
        if rows.empty:
            lines.append(f"| {name} | | no stored CPU trial of erf seed 0 | | | | | |")
            continue
        row = rows.iloc[0]
        overrides = row["overrides"]
        overrides = json.loads(overrides) if isinstance(overrides, str) else dict(overrides or {})
        for precision in ("fp32", "bf16"):
            spec = TrialSpec(proxy=name, seed=0, overrides=overrides, device=device,
                             precision=precision,
                             function=FunctionSpec(name="erf", expression="erf(x)", shift=row["shift"],
                                                   alpha_init=float(row["alpha_init"])))
            result = run_trial(spec, threads=1)
            metric = row["primary_metric"]
            value = result.metrics.get(metric, math.nan)
            lines.append(f"| {name} | {precision} | {metric} ({result.status}) | {row['score']:.4g} | "
                         f"{value:.4g} | {row['wall_time_s']:.1f} | {result.wall_time_s:.1f} | "
                         f"{row['wall_time_s'] / result.wall_time_s:.2f} |")
            print(lines[-1], flush=True)
    lines.append("")


def _write(lines: list[str], out: Path | None) -> None:
    if out:
        out.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--skip", nargs="*", default=[], choices=["trials", "packing", "layers", "default"])
    parser.add_argument("--study", type=Path, default=Path("results/paper_search"),
                        help="committed study whose stored CPU trials part 4 compares with")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA GPU here (use --device cpu for a dry run)")
    start = time.perf_counter()
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (dry run)"
    lines = [f"# GPU check on {where}", "",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}; `python benchmarks/gpu_check.py"
             f" --device {args.device}`", ""]
    ok = True
    if "trials" not in args.skip:
        ok = same_trial_two_devices(args.device, lines)
        _write(lines, args.out)
    if "packing" not in args.skip:
        packing(args.device, lines)
        _write(lines, args.out)
    if "layers" not in args.skip:
        layer_benchmark(args.device, lines, args.reps)
        _write(lines, args.out)
    if "default" not in args.skip:
        default_recipe(args.device, lines, args.study)
    lines.append(f"Whole check: {time.perf_counter() - start:.0f} s; same status and metrics within "
                 f"tolerance on every proxy: {'yes' if ok else 'NO'}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
