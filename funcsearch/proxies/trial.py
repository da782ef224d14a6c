"""One trial: a function in every norm site of one proxy, trained with one seed.

``run_trial`` is the contract the search relies on (docs/architecture.md): it never raises
for a training failure (divergence is the status ``diverged``); bad input (an unknown
setting, a bad expression, an unreadable dataset) raises a ``FuncsearchError``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from funcsearch import __version__
from funcsearch.errors import InputError
from funcsearch.named import SHIFT_KINDS, ShiftKind
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.device import Precision, Runtime, resolve_device
from funcsearch.proxies.proxy import Proxy
from funcsearch.proxies.registry import get_proxy

#: keys of the per-epoch curve that are bookkeeping, not metrics
_BOOKKEEPING = ("epoch", "step", "lr")


class FunctionSpec(BaseModel):
    """What goes in every norm site."""

    model_config = ConfigDict(extra="forbid")

    name: str                      # stable display / join name, e.g. "erf|translate=+2"
    expression: str | None = None  # None for layernorm / rmsnorm (then ``name`` says which)
    shift: ShiftKind = "scalar"
    alpha_init: float = Field(0.5, gt=0)


class TrialSpec(BaseModel):
    """One trial: proxy, function, seed, config overrides, dataset, device and precision."""

    model_config = ConfigDict(extra="forbid")

    proxy: str                                               # a registered proxy's name
    function: FunctionSpec
    seed: int = Field(ge=0, lt=2**63)
    overrides: dict[str, Any] = Field(default_factory=dict)  # any field of the proxy's config
    data: str | None = None                                  # local dataset path; None = embedded
    device: Literal["cpu", "cuda"] = "cpu"
    precision: Precision = "fp32"
    checkpoint: str | None = None  # where a run stopped early keeps its state (not in the key)


class TrialResult(BaseModel):
    """How a trial ended and what it measured."""

    status: Literal["ok", "diverged", "failed", "pruned"]
    metrics: dict[str, float]           # final metrics (finite; those not reached are missing)
    curve: list[dict[str, float]]       # one dict per epoch: epoch, step, lr, train_loss, metrics
    diverged_step: int | None = None
    message: str | None = None
    wall_time_s: float = 0.0
    config: dict[str, Any] = Field(default_factory=dict)   # the resolved proxy config
    versions: dict[str, str] = Field(default_factory=dict)  # python, torch, numpy, funcsearch, its source digest (+ gpu, cuda)
    device: str = "cpu"                                      # where it ran: cpu or cuda
    precision: str = "fp32"                                  # fp32 or bf16 (autocast)
    # additions to the architecture contract
    seed: int | None = None
    threads: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)   # parameters, steps, dataset, ...


def versions() -> dict[str, str]:
    """Library versions, ``funcsearch_source`` (a digest of this package's code) and ``cpu``
    (the processor and the kernels torch picks for it), since a trial is chaotic (rounding alone
    moves vit's erf test loss from 0.155 to 0.127 at the same key, docs/gpu.md): the same seed
    gives the same result only with the same code on the same kind of machine."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "funcsearch": __version__, "funcsearch_source": source_digest(),
            "cpu": cpu_name()}


@functools.cache
def cpu_name() -> str:
    """The processor's model name and torch's CPU kernel level, e.g. ``AMD EPYC, AVX2``: two
    machines with the same libraries can still round differently."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}"


@functools.cache
def source_digest() -> str:
    """12 hex digits of SHA-256 over every ``.py`` file of the installed funcsearch package
    (relative path and bytes, in path order)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def norm_factory(function: FunctionSpec, config: TrainConfig) -> Callable[..., nn.Module]:
    """``norm(dim, site, affine=True)`` building ``function`` through ``layers.make_norm``.

    The alpha init is the function's times the proxy's ``alpha_gain``, unless the config sets
    one for the site (``alpha_init_attn`` / ``alpha_init_mlp`` / ``alpha_init_final``: absolute).
    A site kind in ``config.layernorm_sites`` keeps LayerNorm whatever the function.
    """
    from funcsearch.layers import make_norm

    target = function.expression if function.expression is not None else function.name
    site_alpha = {"attn": config.alpha_init_attn, "mlp": config.alpha_init_mlp,
                  "final": config.alpha_init_final}

    def norm(dim: int, site: str, affine: bool = True) -> nn.Module:
        alpha = site_alpha[site]
        module = make_norm("layernorm", dim, affine=affine) if site in config.layernorm_sites else \
            make_norm(target, dim, shift=function.shift,
                      alpha_init=function.alpha_init * config.alpha_gain if alpha is None else alpha,
                      affine=affine)
        module.site_kind = site  # read by the regime probe (proxies.regime)
        return module

    return norm


def run_trial(spec: TrialSpec, on_epoch: Callable[[int, dict[str, float]], bool] | None = None,
              threads: int = 1, proxy: Proxy | None = None) -> TrialResult:
    """Train ``spec.function`` in every norm site of ``spec.proxy`` with ``spec.seed``.

    ``on_epoch(epoch, metrics)`` returning True stops the run (status ``pruned``).
    ``torch.set_num_threads(threads)`` holds for the run (restored afterwards). ``proxy``
    is the registry entry (looked up by name when None; a search passes it to its workers,
    so a proxy registered only in the driver process runs too).
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    proxy = proxy or get_proxy(spec.proxy)
    runtime = Runtime(resolve_device(spec.device, field="device"), spec.precision, spec.checkpoint)
    config = proxy.config_class.from_overrides(spec.overrides)
    dataset = proxy.load_data(spec.data)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(spec.seed)
        report = proxy.run(config, norm_factory(spec.function, config), dataset, spec.seed, on_epoch,
                           runtime)
    finally:
        torch.set_num_threads(previous_threads)
    outcome = report.outcome
    status, message, diverged_step = outcome.status, outcome.message, outcome.diverged_step
    bad = sorted(k for k, v in report.final_metrics.items() if not math.isfinite(v))
    if bad and status == "ok":
        status, message, diverged_step = "diverged", f"non-finite {', '.join(bad)} at the end", outcome.steps
    metrics = {k: v for k, v in outcome.last_metrics.items() if k not in _BOOKKEEPING}
    metrics.update({k: v for k, v in report.final_metrics.items() if math.isfinite(v)})
    details = {"steps": outcome.steps, "dataset": getattr(dataset, "fingerprint", ""),
               "cpu_time_s": time.process_time() - cpu_start, **report.details}
    if outcome.regime:
        details["regime"] = outcome.regime
    facts = runtime.facts()
    where = {k: facts[k] for k in ("gpu", "cuda") if k in facts}
    return TrialResult(
        status=status, metrics=metrics, curve=outcome.curve, diverged_step=diverged_step,
        message=message, wall_time_s=time.perf_counter() - start, config=config.model_dump(),
        versions={**versions(), **where}, seed=spec.seed, threads=threads, details=details,
        device=runtime.device, precision=runtime.precision,
    )


def make_trial_spec(proxy: str, function: str, *, seed: int = 0, settings: list[str] | None = None,
                    data: str | None = None, shift: str | None = None,
                    alpha_init: float = 0.5, device: str = "cpu", precision: str = "fp32") -> TrialSpec:
    """A validated ``TrialSpec`` from command-line text (``--set key=value`` items).

    ``function`` is a built-in name (``erf``, ``derf``, ``dyt``, ...), ``layernorm`` /
    ``rmsnorm``, or an expression in ``x``. ``shift`` defaults to the baseline's own rule
    (none for ``dyt``, ``layernorm``, ``rmsnorm``), else ``"scalar"``. ``device`` may be
    ``auto``; ``cuda`` without a GPU is an ``InputError`` before anything trains.
    """
    from funcsearch.named import resolve_function, shift_rule
    from funcsearch.proxies.config import parse_set_options

    entry = get_proxy(proxy, field="--proxy")
    try:
        name, expression = resolve_function(function)
    except InputError as exc:
        raise exc.located(field="--fn") from None
    fixed = shift_rule(function)
    if shift is None:
        shift = fixed or "scalar"
    if shift not in SHIFT_KINDS:
        raise InputError(f"shift must be one of {', '.join(SHIFT_KINDS)}, got {shift!r}", field="--shift")
    if not (isinstance(alpha_init, (int, float)) and math.isfinite(alpha_init) and alpha_init > 0):
        raise InputError(f"alpha init must be a finite number > 0, got {alpha_init!r}", field="--alpha-init")
    from funcsearch.proxies.device import PRECISIONS

    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}",
                         field="--precision")
    resolved_device = resolve_device(device)
    overrides = parse_set_options(settings or [])
    entry.config_class.from_overrides(overrides, source="--set")  # fail before training
    entry.load_data(data)
    return TrialSpec(proxy=proxy, seed=seed, overrides=overrides, data=data,
                     device=resolved_device, precision=precision,  # type: ignore[arg-type]
                     function=FunctionSpec(name=name, expression=expression, shift=shift,  # type: ignore[arg-type]
                                           alpha_init=alpha_init))
