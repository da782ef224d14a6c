"""The one training loop both proxies share.

AdamW with decoupled weight decay on matrices only, linear warmup then a cosine or
constant learning rate, global gradient-norm clipping, an optional EMA of the weights
(used for evaluation), a per-epoch callback that may stop the run (``pruned``), and
divergence detection: a non-finite training loss, a loss above ``divergence_factor`` times
the first step's loss, or non-finite evaluation metrics end the run as ``diverged`` with
the step, never with an exception.

Determinism: the batch order and every random draw of the proxy's loss come from one
``torch.Generator`` on the trial's device, seeded with the trial seed, so the same seed,
device and thread count give the same numbers. Forward passes run under the runtime's
autocast (``precision: bf16``); the backward pass and the optimizer stay in float32.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from pathlib import Path
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.device import Runtime
from funcsearch.proxies.regime import RegimeProbe

#: ``loss(model, batch_indices, generator) -> scalar loss`` on a batch of training examples
BatchLoss = Callable[[nn.Module, Tensor, torch.Generator], Tensor]
#: ``evaluate(model) -> metrics``, called in eval mode under ``torch.no_grad()``
Evaluate = Callable[[nn.Module], dict[str, float]]
#: ``on_epoch(epoch, metrics) -> stop?``
EpochCallback = Callable[[int, dict[str, float]], bool]

Status = Literal["ok", "diverged", "pruned"]


@dataclass
class TrainTask:
    """What the loop needs from a proxy: a model, a batch loss and an evaluation."""

    model: nn.Module
    num_train: int
    batch_loss: BatchLoss
    evaluate: Evaluate


@dataclass
class TrainOutcome:
    """How a run ended; ``eval_model`` is the EMA model when EMA is on, else the model."""

    status: Status
    curve: list[dict[str, float]]
    steps: int
    eval_model: nn.Module
    diverged_step: int | None = None
    message: str | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)
    regime: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # see proxies.regime
    first_loss: float | None = None  # the divergence threshold's reference (kept across a resume)


@dataclass
class ProxyRun:
    """What a proxy's ``run`` returns: the loop's outcome, end-of-run metrics, facts."""

    outcome: TrainOutcome
    final_metrics: dict[str, float]
    details: dict[str, float | int | str]


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str,
              min_lr_ratio: float = 0.0) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not norms, biases, gains or ``no_weight_decay()``)."""
    skip = set(getattr(model, "no_weight_decay", lambda: set())())
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 and name not in skip else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                             eps=config.adam_eps, fused=True)


class EMA:
    """Exponential moving average of a model's parameters, kept in a copy of the model."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for averaged, current in zip(self.model.parameters(), model.parameters()):
            averaged.lerp_(current, 1.0 - self.decay)
        for averaged, current in zip(self.model.buffers(), model.buffers()):
            averaged.copy_(current)


def train(task: TrainTask, config: TrainConfig, seed: int,
          on_epoch: EpochCallback | None = None, runtime: Runtime | None = None) -> TrainOutcome:
    """Train ``task.model`` (already on ``runtime.device``) for ``config.epochs``; see the
    module docstring."""
    runtime = runtime or Runtime()
    model = task.model
    generator = runtime.generator(seed)
    steps_per_epoch = math.ceil(task.num_train / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_factor(s, total_steps, warmup_steps, config.schedule, config.min_lr_ratio),
    )
    ema = EMA(model, config.ema_decay) if config.ema_decay else None
    eval_model = ema.model if ema else model
    probe = RegimeProbe(model)
    probe_at = {1: "init", max(1, total_steps // 2): "middle", total_steps: "end"}
    state = Resumable(model, optimizer, scheduler, ema, generator)
    try:
        outcome = _train_loop(task, config, on_epoch, model, generator, optimizer, scheduler, ema,
                              eval_model, total_steps, probe, probe_at, runtime, state)
    finally:
        probe.close()
    outcome.regime = {**state.regime, **probe.summary()}
    if runtime.checkpoint:
        if outcome.status == "pruned":
            state.save(runtime.checkpoint, outcome, probe.summary())
        else:  # finished or diverged: nothing left to continue
            Path(runtime.checkpoint).unlink(missing_ok=True)
    return outcome


class Resumable:
    """Everything that decides the rest of a run: saved when a run stops early, loaded by a
    longer run of the same trial, so that continuing gives the numbers of an uninterrupted run
    (model, optimizer, schedule, EMA, the trial's generator and the global RNG)."""

    VERSION = 1

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                 ema: EMA | None, generator: torch.Generator) -> None:
        self.model, self.optimizer, self.scheduler, self.ema, self.generator = model, optimizer, scheduler, ema, generator
        self.regime: dict[str, Any] = {}

    def save(self, path: str, outcome: "TrainOutcome", regime: dict[str, Any]) -> None:
        state = {"version": self.VERSION, "epoch": len(outcome.curve), "step": outcome.steps,
                 "curve": outcome.curve, "first_loss": outcome.first_loss, "regime": regime,
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(),
                 "ema": self.ema.model.state_dict() if self.ema else None,
                 "generator": self.generator.get_state(), "rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        torch.save(state, temporary)
        os.replace(temporary, target)

    def load(self, path: str | None) -> dict[str, Any] | None:
        """The saved state (and restore it), or None when there is none to continue from."""
        if not path or not Path(path).is_file():
            return None
        try:
            state = torch.load(path, weights_only=False, map_location="cpu")
        except Exception:  # a damaged checkpoint is no reason to fail: start from epoch 0
            return None
        if state.get("version") != self.VERSION:
            return None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.model.load_state_dict(state["ema"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.regime = state.get("regime") or {}
        return state


def _train_loop(task: TrainTask, config: TrainConfig, on_epoch: EpochCallback | None, model: nn.Module,
                generator: torch.Generator, optimizer: torch.optim.Optimizer, scheduler: Any,
                ema: EMA | None, eval_model: nn.Module, total_steps: int, probe: RegimeProbe,
                probe_at: dict[int, str], runtime: Runtime, state: "Resumable") -> TrainOutcome:

    curve: list[dict[str, float]] = []
    first_loss: float | None = None
    step = 0
    start = 1
    saved = state.load(runtime.checkpoint)
    if saved is not None and saved["epoch"] < config.epochs:
        curve, first_loss, step, start = list(saved["curve"]), saved["first_loss"], saved["step"], saved["epoch"] + 1
        for epoch, metrics in enumerate(curve, start=1):  # the callback sees every epoch once more
            if on_epoch is not None and on_epoch(epoch, dict(metrics)):
                return TrainOutcome("pruned", curve[:epoch], step, eval_model, None,
                                    f"stopped by the epoch callback after epoch {epoch}", metrics,
                                    first_loss=first_loss)
    for epoch in range(start, config.epochs + 1):
        model.train()
        order = torch.randperm(task.num_train, generator=generator, device=generator.device)
        loss_sum = 0.0
        for batch in order.split(config.batch_size):
            point = probe_at.get(step + 1)
            with runtime.autocast(), (probe.capture(point) if point else contextlib.nullcontext()):
                loss = task.batch_loss(model, batch, generator).float()
            value = float(loss.detach())
            step += 1
            if first_loss is None:
                first_loss = value
            reason = _divergence(value, first_loss, config.divergence_factor)
            if reason:
                return TrainOutcome("diverged", curve, step, eval_model, step, reason,
                                    curve[-1] if curve else {}, first_loss=first_loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema:
                ema.update(model)
            loss_sum += value * len(batch)

        metrics = {"epoch": float(epoch), "step": float(step),
                   "lr": optimizer.param_groups[0]["lr"],
                   "train_loss": loss_sum / task.num_train}
        eval_model.eval()
        with torch.no_grad(), runtime.autocast():
            metrics.update(task.evaluate(eval_model))
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            return TrainOutcome("diverged", curve, step, eval_model, step,
                                f"non-finite {', '.join(bad)} after epoch {epoch}",
                                curve[-1] if curve else {}, first_loss=first_loss)
        curve.append(metrics)
        if on_epoch is not None and on_epoch(epoch, dict(metrics)):
            return TrainOutcome("pruned", curve, step, eval_model, None,
                                f"stopped by the epoch callback after epoch {epoch}", metrics,
                                first_loss=first_loss)
    return TrainOutcome("ok", curve, step, eval_model, None, None, curve[-1], first_loss=first_loss)


def _divergence(loss: float, first_loss: float, factor: float) -> str | None:
    if not math.isfinite(loss):
        return f"non-finite training loss ({loss})"
    if first_loss > 0 and loss > factor * first_loss:
        return f"training loss {loss:.4g} exceeded {factor:g} x the first loss {first_loss:.4g}"
    return None
