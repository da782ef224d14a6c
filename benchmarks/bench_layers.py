"""Forward+backward time of point-wise layers relative to LayerNorm, measured side by side.

    python benchmarks/bench_layers.py [--reps 30] [--repeat 1] [--shape 64 65 256] [--threads 1]

fp32 on CPU. Every variant runs one forward+backward per round, rounds interleave the
variants (so drift and other load hit all of them alike) and the medians are compared.
"Eager" runs the modules as they are (Derf/DyT take the custom autograd fast path,
generic candidates plain autograd); "compiled" wraps each whole module, the LayerNorm
baseline included, in ``torch.compile``. "plain" rows are the unified form written as
ordinary PyTorch ops, the starting point the fast path is measured against. The one-off
compile cost (first call minus a steady step) is printed too: it decides whether
``compile=True`` pays off in a one-minute proxy trial. ``--repeat N`` measures the
compiled modules N times over (each time interleaved) and prints the spread of the
ratios: on a shared machine one median is not enough.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from funcsearch.layers import Derf, DyT, PointwiseNorm, make_norm, plain_formula

GENERIC = "x/(1 + abs(x))"


class Plain(nn.Module):
    """The unified form with plain autograd (no fast path): the baseline."""

    def __init__(self, layer: PointwiseNorm) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        return plain_formula(layer.fn, x, layer.alpha, layer.shift, layer.weight, layer.bias)


def variants(dim: int) -> dict[str, nn.Module]:
    return {
        "LayerNorm": nn.LayerNorm(dim),
        "RMSNorm": nn.RMSNorm(dim),
        "Derf": Derf(dim),
        "DyT": DyT(dim),
        "generic": make_norm(GENERIC, dim),
        "Derf plain": Plain(Derf(dim)),
        "DyT plain": Plain(DyT(dim)),
    }


def step(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor) -> None:
    module(x).backward(grad)


def measure(modules: dict[str, nn.Module], shape: tuple[int, ...], reps: int,
            warmup: int = 3) -> tuple[dict[str, float], dict[str, float]]:
    """(median seconds per forward+backward, first-call seconds) for each module.

    Steps are timed in CPU time of this thread (``time.thread_time``): with one intra-op
    thread that is the work itself, and time spent descheduled on a shared machine is left
    out. First calls (compilation) are wall-clock.
    """
    torch.manual_seed(0)
    x0 = torch.randn(shape)
    grad = torch.randn(shape)
    first: dict[str, float] = {}
    for name, module in modules.items():
        start = time.perf_counter()
        step(module, x0.clone().requires_grad_(), grad)
        first[name] = time.perf_counter() - start
        for _ in range(warmup):
            step(module, x0.clone().requires_grad_(), grad)
    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(reps):
        for name, module in modules.items():
            module.zero_grad(set_to_none=True)
            x = x0.clone().requires_grad_()
            start = time.thread_time()
            step(module, x, grad)
            times[name].append(time.thread_time() - start)
    return {name: statistics.median(t) for name, t in times.items()}, first


def ratios(median: dict[str, float]) -> dict[str, float]:
    ln, derf = median["LayerNorm"], median["Derf"]
    return {"Derf / LayerNorm": derf / ln, "DyT / LayerNorm": median["DyT"] / ln,
            "RMSNorm / LayerNorm": median["RMSNorm"] / ln, "generic / Derf": median["generic"] / derf}


def report(title: str, median: dict[str, float]) -> None:
    ln = median["LayerNorm"]
    r = ratios(median)
    print(f"\n{title}: median forward+backward (ms) and ratios")
    for name, seconds in median.items():
        print(f"  {name:<12} {seconds * 1e3:8.3f} ms")
    print(f"  Derf / LayerNorm     {r['Derf / LayerNorm']:5.2f}   (plain modules: {median['Derf plain'] / ln:5.2f})")
    print(f"  DyT / LayerNorm      {r['DyT / LayerNorm']:5.2f}   (plain modules: {median['DyT plain'] / ln:5.2f})")
    print(f"  RMSNorm / LayerNorm  {r['RMSNorm / LayerNorm']:5.2f}")
    print(f"  generic / Derf       {r['generic / Derf']:5.2f}   (generic = {GENERIC})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure the compiled modules this many times (spread of ratios)")
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 65, 256])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-compiled", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = tuple(args.shape)
    print(f"torch {torch.__version__}, {args.threads} thread(s), input {'x'.join(map(str, shape))} "
          f"fp32, {args.reps} interleaved rounds")

    eager, _ = measure(variants(shape[-1]), shape, args.reps)
    report("eager", eager)
    if args.skip_compiled:
        return
    compiled_modules = {name: torch.compile(module) for name, module in variants(shape[-1]).items()}
    compiled, first = measure(compiled_modules, shape, args.reps)
    report("compiled (torch.compile of the whole layer)", compiled)
    if args.repeat > 1:
        runs = [ratios(compiled)]
        for _ in range(args.repeat - 1):
            runs.append(ratios(measure(compiled_modules, shape, args.reps, warmup=1)[0]))
        print(f"\ncompiled ratios over {args.repeat} measurements (min / median / max):")
        for key in runs[0]:
            values = sorted(run[key] for run in runs)
            spread = f"{values[0]:5.2f} / {statistics.median(values):5.2f} / {values[-1]:5.2f}"
            each = " ".join(f"{run[key]:.2f}" for run in runs)
            print(f"  {key:<20} {spread}   ({each})")
    print("\none-off compile cost, first call minus a steady step (s):")
    for name in compiled_modules:
        print(f"  {name:<12} {first[name] - compiled[name]:6.1f}")
    # a function no cache has seen: what every new candidate of a search pays
    fresh = f"x/({2 + time.time_ns() % 997} + abs(x))"
    _, first_fresh = measure({"fresh": make_norm(fresh, shape[-1], compile=True)}, shape, 1, warmup=0)
    print(f"  new expression with compile=True (cache miss): {first_fresh['fresh']:.1f} s")


if __name__ == "__main__":
    main()
