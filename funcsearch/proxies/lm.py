"""The LM proxy: a small character-level GPT (after nanoGPT's ``model.py``).

Token embedding + learned position embedding, ``depth`` pre-norm blocks
``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))`` with causal self-attention, a final norm
``ln_f`` and a head tied to the token embedding. The norm sites keep GPT-2's names
(``ln_1``, ``ln_2``, ``ln_f``) and come from the ``norm`` factory the trial passes in
(sites "attn", "mlp", "final"). Initialisation as nanoGPT - normal(0, ``init_std``) for
linear layers and embeddings, zero biases, residual projections (``attn.proj``,
``mlp.proj``) scaled by ``1/sqrt(2 depth)`` - but with ``init_std`` 0.2 rather than 0.02:
at 0.02 the norm inputs of this small model stay ~0.03, inside the linear part of every
point-wise function, and none of them learns beyond unigram statistics (docs/lm.md).

Training: an "epoch" is ``steps_per_epoch`` optimizer steps (the shared loop's evaluation
interval); each step draws ``batch_size`` random windows of ``context + 1`` characters
from the training split with the trial's generator, so the batches depend on the seed only.
Data: :mod:`funcsearch.proxies.text` (default: CPython 3.11.7's ``pydoc_data/topics.py``, shipped).

Metrics:
- per epoch: ``val_bpc``, the mean next-character cross-entropy over fixed validation
  windows, in bits per character; ``train_loss`` (nats, the shared loop's mean training
  loss over the epoch);
- at the end: ``train_eval_loss``, the evaluation-mode loss (PAPER_METHODS.md section 5)
  on fixed windows of the training split, in bits per character like ``val_bpc`` so the
  two compare directly (the generalisation gap).

Evaluation windows are evenly spaced over the split (``eval_windows`` of them, the first
starting at 0 and the last ending at the split's end), computed on the CPU and moved to the
device once: every trial, seed and device scores exactly the same characters (256 evenly
spaced windows land within 0.003 bits of the whole split; 256 random ones scatter by 0.035).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from funcsearch.errors import DataError
from funcsearch.metrics import Metric
from funcsearch.proxies.blocks import MLP, Attention
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.device import Runtime
from funcsearch.proxies.proxy import NormFactory, Proxy
from funcsearch.proxies.text import TextDataset, load_text
from funcsearch.proxies.training import EpochCallback, ProxyRun, TrainTask, train

LN2 = math.log(2.0)


class LMConfig(TrainConfig):
    """Every knob of the LM proxy; defaults: ~200k parameters, under a minute on one core.

    ``epochs`` counts evaluation intervals of ``steps_per_epoch`` steps each (the schedule's
    ``warmup_epochs`` too). Optimiser defaults follow nanoGPT / GPT-2: betas (0.9, 0.95),
    weight decay 0.1 on matrices (embeddings included, as nanoGPT), grad clip 1."""

    epochs: int = Field(10, ge=1, description="evaluation intervals of steps_per_epoch steps")
    steps_per_epoch: int = Field(45, ge=1, description="optimizer steps per evaluation interval")
    batch_size: int = Field(32, ge=1, description="windows per step")
    lr: float = Field(3e-3, gt=0)
    warmup_epochs: float = Field(1.0, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.1, ge=0)
    beta2: float = Field(0.95, ge=0, lt=1)
    context: int = Field(64, ge=1, description="characters per window (block size)")
    dim: int = Field(64, ge=1)
    depth: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    init_std: float = Field(0.2, gt=0, description="init std of linear layers (nanoGPT: 0.02)")
    embed_std: float | None = Field(None, gt=0, description="init std of the token (= tied head) and "
                                    "position embeddings; null = init_std")
    eval_windows: int = Field(256, ge=1, description="validation windows scored per evaluation")
    train_eval_windows: int = Field(256, ge=1, description="training windows of train_eval_loss")
    eval_batch_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> "LMConfig":
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) is not divisible by heads ({self.heads})")
        return self


# --------------------------------------------------------------------------- model
class Block(nn.Module):
    """Pre-norm GPT block with causal self-attention."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, norm: NormFactory, dropout: float) -> None:
        super().__init__()
        self.ln_1 = norm(dim, "attn")
        self.attn = Attention(dim, heads, dropout, causal=True)
        self.ln_2 = norm(dim, "mlp")
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Characters -> token + position embeddings -> blocks -> ln_f -> tied head -> logits."""

    def __init__(self, config: LMConfig, vocab_size: int, norm: NormFactory) -> None:
        super().__init__()
        self.context = config.context
        self.wte = nn.Embedding(vocab_size, config.dim)
        self.wpe = nn.Embedding(config.context, config.dim)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(
            Block(config.dim, config.heads, config.mlp_ratio, norm, config.dropout)
            for _ in range(config.depth)
        )
        self.ln_f = norm(config.dim, "final")
        self.lm_head = nn.Linear(config.dim, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as nanoGPT
        for module in self.modules():
            if isinstance(module, nn.Linear) and module is not self.lm_head:
                nn.init.normal_(module.weight, mean=0.0, std=config.init_std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        embed_std = config.init_std if config.embed_std is None else config.embed_std
        nn.init.normal_(self.wte.weight, mean=0.0, std=embed_std)
        nn.init.normal_(self.wpe.weight, mean=0.0, std=embed_std)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):  # residual projections, as GPT-2
                nn.init.normal_(param, mean=0.0, std=config.init_std / math.sqrt(2 * config.depth))

    def forward(self, ids: Tensor) -> Tensor:
        tokens = ids.shape[1]
        if tokens > self.context:
            raise ValueError(f"sequence of {tokens} exceeds the context length {self.context}")
        positions = torch.arange(tokens, device=ids.device)
        x = self.drop(self.wte(ids) + self.wpe(positions))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


# --------------------------------------------------------------------------- task
def window_starts(length: int, context: int, count: int) -> Tensor:
    """``count`` evenly spaced starts of ``context + 1``-character windows in a split of
    ``length`` characters (the first at 0, the last ending at the split's end), on the CPU."""
    last = length - context - 1
    if count == 1 or last == 0:
        return torch.zeros(1, dtype=torch.int64)
    return torch.tensor([round(i * last / (count - 1)) for i in range(count)], dtype=torch.int64)


def gather_windows(ids: Tensor, starts: Tensor, context: int) -> Tensor:
    """``(len(starts), context + 1)`` windows of ``ids`` (on ``ids``' device)."""
    offsets = torch.arange(context + 1, device=ids.device)
    return ids[starts.to(ids.device)[:, None] + offsets]


def mean_bits(model: nn.Module, windows: Tensor, batch_size: int) -> float:
    """Mean next-character cross-entropy over every position of ``windows``, in bits."""
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        chunk = windows[start:start + batch_size]
        logits = model(chunk[:, :-1]).float()
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1),
                                       reduction="sum"))
        count += chunk[:, 1:].numel()
    return total / count / LN2


def _check_fits(dataset: TextDataset, context: int) -> None:
    for split, ids in (("training", dataset.train), ("validation", dataset.val)):
        if len(ids) < context + 1:
            raise DataError(f"{split} split has {len(ids)} characters, fewer than one window "
                            f"of context {context} + 1", file=dataset.source or dataset.name)


def run(config: LMConfig, norm: NormFactory, dataset: TextDataset, seed: int,
        on_epoch: EpochCallback | None = None, runtime: Runtime | None = None) -> ProxyRun:
    """Build the model on the CPU (global RNG seeded by the caller), move it and the data to
    the runtime's device once, train it and measure it."""
    runtime = runtime or Runtime()
    device = runtime.torch_device
    _check_fits(dataset, config.context)
    model = GPT(config, dataset.vocab_size, norm).to(device)
    train_ids = dataset.train.to(device)
    val_windows = gather_windows(dataset.val, window_starts(len(dataset.val), config.context,
                                                           config.eval_windows), config.context).to(device)
    span = len(train_ids) - config.context  # window starts 0 .. span - 1
    offsets = torch.arange(config.context + 1, device=device)

    def batch_loss(model: nn.Module, batch: Tensor, generator: torch.Generator) -> Tensor:
        # the batch's indices only set how many windows; their starts come from the generator
        starts = torch.randint(0, span, (len(batch),), generator=generator, device=generator.device)
        windows = train_ids[starts.to(device)[:, None] + offsets]
        logits = model(windows[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))

    def per_epoch(model: nn.Module) -> dict[str, float]:
        return {"val_bpc": mean_bits(model, val_windows, config.eval_batch_size)}

    task = TrainTask(model, config.steps_per_epoch * config.batch_size, batch_loss, per_epoch)
    outcome = train(task, config, seed, on_epoch, runtime)
    final: dict[str, float] = {}
    if outcome.status == "ok":
        train_windows = gather_windows(dataset.train, window_starts(
            len(dataset.train), config.context, config.train_eval_windows), config.context).to(device)
        outcome.eval_model.eval()
        with torch.no_grad(), runtime.autocast():
            final["train_eval_loss"] = mean_bits(outcome.eval_model, train_windows, config.eval_batch_size)
    params = sum(p.numel() for p in model.parameters())
    return ProxyRun(outcome, final, {"parameters": params, "vocab_size": dataset.vocab_size,
                                     "train_chars": len(dataset.train), "val_chars": len(dataset.val),
                                     "tokens_seen": outcome.steps * config.batch_size * config.context})


PROXY = Proxy(
    name="lm",
    config_class=LMConfig,
    run=run,
    load_data=load_text,
    metrics=(
        Metric("val_bpc", False, True, "validation loss", "bits/char", minimum=0.0),
        Metric("train_loss", False, True, "training loss", "nats", minimum=0.0),
        Metric("train_eval_loss", False, False, "eval-mode training loss", "bits/char", minimum=0.0),
    ),
    primary_metric="val_bpc",
    halving_metric="val_bpc",
    smoke={"epochs": 2, "steps_per_epoch": 10, "depth": 1, "dim": 32, "context": 32,
           "batch_size": 16, "warmup_epochs": 0.5, "eval_windows": 32, "train_eval_windows": 32},
    description="character-level GPT (nanoGPT-style, tied head); val_bpc: validation bits per character",
    data_help="local UTF-8 text file or folder of .txt files (default: CPython 3.11.7's pydoc_data/topics.py, shipped)",
)
