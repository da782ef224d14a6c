"""Two candidate levers of issue 14, measured on the vit proxy (one thread per process).

    python benchmarks/regime_levers.py lr-range --seeds 0,1 [--trained]
    python benchmarks/regime_levers.py alpha-lr --scales 0,1,30 [--fn "erf(x)"]

``lr-range``: does a function's tolerance of a large learning rate separate the functions that
fail at full scale (paper Tables 1-6) from those that train? A panel of 22 functions from the
six tables, each trained in the unified form without s (alpha init 0.5, as the tables were),
then put through a learning-rate range test: AdamW (fresh moments, no clipping), the rate
raised geometrically from 1e-4 (or, with ``--trained``, from the recipe's peak 1e-3 after a
full default training run) to 3 over 200 steps; the critical rate is the first at which the
smoothed training loss (EMA 0.8) exceeds both 4x its minimum and chance (ln 10), or the loss
is not finite. Printed: log10 of the critical rate per function and seed.

``alpha-lr``: what happens to the regime of u = alpha*x (the share of |u| > 1 and > 2 and the
99th percentile at the end of training, per site kind) when alpha learns faster or not at all?
The default recipe, with alpha in its own AdamW group at ``scale`` x the peak learning rate
(0 = frozen at its init). Printed: test loss and accuracy, u at the end, the learned alphas.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from funcsearch.proxies import training, vit
from funcsearch.proxies.trial import FunctionSpec, norm_factory

#: name -> (expression, outcome at full scale: "fails" = diverged, "worst" = the non-monotonic
#: functions that trained worst of their table, "trains"); expression None = LayerNorm
PANEL: dict[str, tuple[str | None, str]] = {
    "erf(x+2)": ("erf(x + 2)", "fails"), "erf(x)-2": ("erf(x) - 2", "fails"),
    "tanh(x-2)": ("tanh(x - 2)", "fails"), "arctan(x)+2": ("2*atan(x)/pi + 2", "fails"),
    "x": ("x", "fails"), "mix 0.5 erf": ("0.5*erf(x) + 0.5*x", "fails"),
    "mix 0.5 tanh": ("0.5*tanh(x) + 0.5*x", "fails"), "power23": ("abs(x)**(2/3)*sign(x)", "fails"),
    "erf flat zone 3": ("erf(x - clip(x, -3, 3))", "fails"), "sin": ("sin(x)", "worst"),
    "dampx": ("2*x/(1 + x^2)", "worst"), "dampexp": ("2.72*x*exp(-abs(x))", "worst"),
    "erf": ("erf(x)", "trains"), "erf(x+1)": ("erf(x + 1)", "trains"), "tanh(x)-1": ("tanh(x) - 1", "trains"),
    "clip(x,1)": ("clip(x, -1, 1)", "trains"), "asinh": ("asinh(x)", "trains"),
    "mix 0.1 erf": ("0.9*erf(x) + 0.1*x", "trains"), "logquad": ("log(1 + x**2)*sign(x)", "trains"),
    "-erf": ("-erf(x)", "trains"), "erf flat zone 1": ("erf(x - clip(x, -1, 1))", "trains"),
    "layernorm": (None, "trains"),
}


def spec_of(name: str, expression: str | None) -> FunctionSpec:
    if expression is None:
        return FunctionSpec(name=name, expression=None, shift="none")
    return FunctionSpec(name=name, expression=expression, shift="none", alpha_init=0.5)


def critical_lr(model: nn.Module, config: vit.ViTConfig, data: vit.ImageDataset, seed: int,
                lr_start: float, lr_end: float = 3.0, steps: int = 200) -> float | None:
    """The learning rate at which the range test blows up (None: it never did)."""
    generator = torch.Generator().manual_seed(1000 + seed)
    standardize = vit.Standardize(data.train_images)
    optimizer = training.make_optimizer(model, config)
    ratio = (lr_end / lr_start) ** (1 / (steps - 1))
    model.train()
    smoothed, lowest, step = None, math.inf, 0
    while step < steps:
        for batch in torch.randperm(len(data.train_labels), generator=generator).split(config.batch_size):
            if step >= steps:
                return None
            lr = lr_start * ratio ** step
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(model(standardize(data.train_images[batch])), data.train_labels[batch])
            value = float(loss.detach())
            if not math.isfinite(value):
                return lr
            smoothed = value if smoothed is None else 0.8 * smoothed + 0.2 * value
            lowest = min(lowest, smoothed)
            if step > 5 and smoothed > max(4 * lowest, math.log(10)):
                return lr
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    return None


def lr_range(seeds: list[int], trained: bool, only: list[str] | None = None) -> None:
    data = vit.PROXY.load_data(None)
    config = vit.ViTConfig()
    unknown = sorted(set(only or []) - set(PANEL))
    if unknown:
        raise SystemExit(f"unknown panel functions {unknown}; the panel has: {', '.join(PANEL)}")
    for seed in seeds:
        for name, (expression, outcome) in PANEL.items():
            if only and name not in only:
                continue
            start = time.perf_counter()
            torch.manual_seed(seed)
            norm = norm_factory(spec_of(name, expression), config)
            if trained:
                model = vit.run(config, norm, data, seed).outcome.eval_model
            else:
                model = vit.ViT(config, data.channels, data.image_size, data.num_classes, norm)
            lr = critical_lr(model, config, data, seed, config.lr if trained else 1e-4)
            print(json.dumps({"seed": seed, "function": name, "full_scale": outcome,
                              "trained_first": trained,
                              "log10_critical_lr": None if lr is None else round(math.log10(lr), 3),
                              "seconds": round(time.perf_counter() - start, 1)}), flush=True)


def alpha_lr(scales: list[float], expression: str, seed: int) -> None:
    data = vit.PROXY.load_data(None)
    plain = training.make_optimizer
    for scale in scales:
        def make_optimizer(model: nn.Module, config: vit.ViTConfig, scale: float = scale) -> torch.optim.AdamW:
            optimizer = plain(model, config)
            alphas = [p for n, p in model.named_parameters() if n.endswith(".alpha")]
            chosen = {id(p) for p in alphas}
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in chosen]
            optimizer.add_param_group({"params": alphas, "weight_decay": 0.0, "lr": config.lr * scale})
            return optimizer

        training.make_optimizer = make_optimizer  # the loop looks it up at call time
        try:
            config = vit.ViTConfig()
            torch.manual_seed(seed)
            run = vit.run(config, norm_factory(spec_of(expression, expression), config), data, seed)
        finally:
            training.make_optimizer = plain
        end = run.outcome.regime.get("end", {})
        alphas = [round(float(p), 2) for n, p in run.outcome.eval_model.named_parameters() if n.endswith(".alpha")]
        print(json.dumps({"function": expression, "alpha_lr_scale": scale, "status": run.outcome.status,
                          **{k: round(v, 4) for k, v in run.outcome.last_metrics.items() if k.startswith("test")},
                          "u_end_gt1_gt2_p99": {k: [round(v["gt1"], 2), round(v["gt2"], 2), round(v["p99"], 1)]
                                                for k, v in end.items()},
                          "alphas": alphas}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("lr-range", help="learning-rate range test on a panel of the property tables")
    one.add_argument("--seeds", default="0", help="comma-separated seeds")
    one.add_argument("--trained", action="store_true", help="train with the default recipe first")
    one.add_argument("--functions", default="", help="panel names separated by '|' (default: all)")
    two = sub.add_parser("alpha-lr", help="the regime of u with alpha at another learning rate")
    two.add_argument("--scales", default="0,1,30", help="comma-separated multiples of the peak lr")
    two.add_argument("--fn", default="erf(x)", help="expression in x")
    two.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "lr-range":
        lr_range([int(s) for s in args.seeds.split(",")], args.trained,
                 [n for n in args.functions.split("|") if n])
    else:
        alpha_lr([float(s) for s in args.scales.split(",")], args.fn, args.seed)


if __name__ == "__main__":
    main()
