"""One trial: a function in every norm site of one proxy, trained with one seed.

``run_trial`` is the contract the search relies on (docs/architecture.md): it never raises
for a training failure (divergence is the status ``diverged``); bad input (an unknown
setting, a bad expression, an unreadable dataset) raises a ``FuncsearchError``.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

import funcsearch
from funcsearch.errors import InputError
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.data import load_dataset
from funcsearch.proxies.registry import PROXIES

#: keys of the per-epoch curve that are bookkeeping, not metrics
_BOOKKEEPING = ("epoch", "step", "lr")


class FunctionSpec(BaseModel):
    """What goes in every norm site."""

    model_config = ConfigDict(extra="forbid")

    name: str                      # stable display / join name, e.g. "erf|translate=+2"
    expression: str | None = None  # None for layernorm / rmsnorm (then ``name`` says which)
    shift: Literal["scalar", "vector", "none"] = "scalar"
    alpha_init: float = 0.5


class TrialSpec(BaseModel):
    """One trial: proxy, function, seed, config overrides and dataset."""

    model_config = ConfigDict(extra="forbid")

    proxy: Literal["vit", "dit"]
    function: FunctionSpec
    seed: int
    overrides: dict[str, Any] = Field(default_factory=dict)  # any field of the proxy's config
    data: str | None = None                                  # local dataset path; None = digits


class TrialResult(BaseModel):
    """How a trial ended and what it measured."""

    status: Literal["ok", "diverged", "failed", "pruned"]
    metrics: dict[str, float]           # final metrics (finite; those not reached are missing)
    curve: list[dict[str, float]]       # one dict per epoch: epoch, step, lr, train_loss, metrics
    diverged_step: int | None = None
    message: str | None = None
    wall_time_s: float = 0.0
    config: dict[str, Any] = Field(default_factory=dict)   # the resolved proxy config
    versions: dict[str, str] = Field(default_factory=dict)  # python, torch, numpy, funcsearch
    # additions to the architecture contract
    seed: int | None = None
    threads: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)   # parameters, steps, dataset, ...


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "funcsearch": funcsearch.__version__}


def norm_factory(function: FunctionSpec, config: TrainConfig) -> Callable[..., nn.Module]:
    """``norm(dim, site, affine=True)`` building ``function`` through ``layers.make_norm``.

    The alpha init is the function's unless the config sets one for the site
    (``alpha_init_attn`` / ``alpha_init_mlp`` / ``alpha_init_final``).
    """
    from funcsearch.layers import make_norm

    target = function.expression if function.expression is not None else function.name
    site_alpha = {"attn": config.alpha_init_attn, "mlp": config.alpha_init_mlp,
                  "final": config.alpha_init_final}

    def norm(dim: int, site: str, affine: bool = True) -> nn.Module:
        alpha = site_alpha[site]
        return make_norm(target, dim, shift=function.shift,
                         alpha_init=function.alpha_init if alpha is None else alpha, affine=affine)

    return norm


def run_trial(spec: TrialSpec, on_epoch: Callable[[int, dict[str, float]], bool] | None = None,
              threads: int = 1) -> TrialResult:
    """Train ``spec.function`` in every norm site of ``spec.proxy`` with ``spec.seed``.

    ``on_epoch(epoch, metrics)`` returning True stops the run (status ``pruned``).
    ``torch.set_num_threads(threads)`` holds for the run (restored afterwards).
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    proxy = PROXIES[spec.proxy]
    config = proxy.config_class.from_overrides(spec.overrides)
    dataset = load_dataset(spec.data)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(spec.seed)
        report = proxy.run(config, norm_factory(spec.function, config), dataset, spec.seed, on_epoch)
    finally:
        torch.set_num_threads(previous_threads)
    outcome = report.outcome
    status, message, diverged_step = outcome.status, outcome.message, outcome.diverged_step
    bad = sorted(k for k, v in report.final_metrics.items() if not math.isfinite(v))
    if bad and status == "ok":
        status, message, diverged_step = "diverged", f"non-finite {', '.join(bad)} at the end", outcome.steps
    metrics = {k: v for k, v in outcome.last_metrics.items() if k not in _BOOKKEEPING}
    metrics.update({k: v for k, v in report.final_metrics.items() if math.isfinite(v)})
    details = {"steps": outcome.steps, "dataset": dataset.fingerprint,
               "cpu_time_s": time.process_time() - cpu_start, **report.details}
    return TrialResult(
        status=status, metrics=metrics, curve=outcome.curve, diverged_step=diverged_step,
        message=message, wall_time_s=time.perf_counter() - start, config=config.model_dump(),
        versions=versions(), seed=spec.seed, threads=threads, details=details,
    )


def make_trial_spec(proxy: str, function: str, *, seed: int = 0, settings: list[str] | None = None,
                    data: str | None = None, shift: str | None = None,
                    alpha_init: float = 0.5) -> TrialSpec:
    """A validated ``TrialSpec`` from command-line text (``--set key=value`` items).

    ``function`` is a built-in name (``erf``, ``derf``, ``dyt``, ...), ``layernorm`` /
    ``rmsnorm``, or an expression in ``x``. ``shift`` defaults to ``"scalar"`` (``"none"``
    for ``dyt``, which has no shift by definition).
    """
    from funcsearch.named import resolve_function
    from funcsearch.proxies.config import parse_set_options

    if proxy not in PROXIES:
        raise InputError(f"unknown proxy {proxy!r} (known: {', '.join(PROXIES)})", field="--proxy")
    name, expression = resolve_function(function)
    if shift is None:
        shift = "none" if function.strip().lower() == "dyt" else "scalar"
    if shift not in ("scalar", "vector", "none"):
        raise InputError(f"shift must be scalar, vector or none, got {shift!r}", field="--shift")
    overrides = parse_set_options(settings or [])
    PROXIES[proxy].config_class.from_overrides(overrides, source="--set")  # fail before training
    load_dataset(data)
    return TrialSpec(proxy=proxy, seed=seed, overrides=overrides, data=data,  # type: ignore[arg-type]
                     function=FunctionSpec(name=name, expression=expression, shift=shift,  # type: ignore[arg-type]
                                           alpha_init=alpha_init))
