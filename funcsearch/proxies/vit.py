"""The ViT proxy: a small pre-norm Vision Transformer classifier.

Patch embedding, a learned position embedding, ``depth`` blocks
``x + attn(norm_attn(x))`` then ``x + mlp(norm_mlp(x))``, a final norm and a linear head
on the mean of the normed tokens (``pool: mean``, the default) or, as in ViT-B, on a
class token's normed state (``pool: cls``; the final norm then sees that token alone). The
class token made vit's seeds agree better on paper_search but ranked the six property tables
less like full scale, so it is not the default (docs/calibration.md, seventh round).
Every norm site comes from the ``norm`` factory the trial passes in, so LayerNorm, RMSNorm
and any point-wise candidate drop in unchanged.

The Derf paper trains ViT-B with DeiT's regularization (label smoothing, mixup, cutmix, random
erasing, drop path, RandAugment); vit has every one as a knob, all off by default, and the
preset ``vit_paper_regularization`` turns them on. Measured in sample, it did not move vit
towards full scale (docs/calibration.md, thirteenth round), so the defaults stay as they were.

Metrics (``test_acc`` is a fraction in [0, 1]):
- per epoch: ``test_acc``, ``test_loss`` (plain cross-entropy on the test split);
- at the end: ``train_eval_loss``, the evaluation-mode training loss (PAPER_METHODS.md
  section 5): plain cross-entropy over the training split, eval mode, no augmentation,
  no label smoothing, no dropout / drop path, EMA weights when EMA is on.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from funcsearch.errors import ConfigError
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.data import ImageDataset, load_dataset
from funcsearch.metrics import Metric
from funcsearch.proxies.augment import augment, mix_batch, random_erase
from funcsearch.proxies.blocks import MLP, Attention, drop_path
from funcsearch.proxies.device import Runtime
from funcsearch.proxies.proxy import NormFactory, Proxy
from funcsearch.proxies.training import EpochCallback, ProxyRun, TrainTask, train


class ViTConfig(TrainConfig):
    """Every knob of the ViT proxy; defaults: ~300k parameters, about half a minute on one core."""

    patch_size: int = Field(2, ge=1)
    dim: int = Field(64, ge=1)
    depth: int = Field(6, ge=1)
    heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    pos_embed_std: float = Field(1.0, ge=0, description="init std of the learned position embedding")
    init_std: float = Field(0.02, gt=0, description="init std of linear layers")
    dropout: float = Field(0.0, ge=0, lt=1)
    drop_path: float = Field(0.0, ge=0, lt=1, description="stochastic depth rate of the last block")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    aug_shift: int = Field(0, ge=0, description="random translation by up to this many pixels")
    aug_flip: bool = Field(False, description="random horizontal flips (off for digits)")
    mixup: float = Field(0.0, ge=0, description="mixup's Beta(a, a) parameter a; 0 = off (the paper's ViT: 0.8)")
    cutmix: float = Field(0.0, ge=0, description="cutmix's Beta(a, a) parameter a; 0 = off (the paper's ViT: 1.0)")
    random_erase: float = Field(0.0, ge=0, le=1,
                                description="chance that an image has a random box replaced by noise (the paper's ViT: 0.25)")
    eval_batch_size: int = Field(512, ge=1)
    pool: Literal["mean", "cls"] = Field(
        "mean", description="head input: the mean of the normed tokens, or a class token (as ViT-B)")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> "ViTConfig":
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) is not divisible by heads ({self.heads})")
        return self


# --------------------------------------------------------------------------- model
class Block(nn.Module):
    """Pre-norm Transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, norm: NormFactory,
                 dropout: float, drop_path_rate: float) -> None:
        super().__init__()
        self.norm_attn = norm(dim, "attn")
        self.attn = Attention(dim, heads, dropout)
        self.norm_mlp = norm(dim, "mlp")
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout)
        self.drop_path_rate = drop_path_rate

    def forward(self, x: Tensor) -> Tensor:
        x = x + drop_path(self.attn(self.norm_attn(x)), self.drop_path_rate, self.training)
        x = x + drop_path(self.mlp(self.norm_mlp(x)), self.drop_path_rate, self.training)
        return x


class ViT(nn.Module):
    """Patches -> tokens + position -> blocks -> final norm -> mean pool -> class logits."""

    def __init__(self, config: ViTConfig, channels: int, image_size: tuple[int, int],
                 num_classes: int, norm: NormFactory) -> None:
        super().__init__()
        height, width = image_size
        p = config.patch_size
        if height % p or width % p:
            raise ConfigError(f"patch_size {p} does not divide the image size {height}x{width}",
                              field="patch_size")
        num_patches = (height // p) * (width // p)
        self.patch_embed = nn.Conv2d(channels, config.dim, kernel_size=p, stride=p)
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches, config.dim) * config.pos_embed_std)
        # a class token starts at zero (as the original ViT); only pool: cls has one
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim)) if config.pool == "cls" else None
        rates = [config.drop_path * i / max(1, config.depth - 1) for i in range(config.depth)]
        self.blocks = nn.ModuleList(
            Block(config.dim, config.heads, config.mlp_ratio, norm, config.dropout, rate) for rate in rates
        )
        self.norm_final = norm(config.dim, "final")
        self.head = nn.Linear(config.dim, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=config.init_std)
                nn.init.zeros_(module.bias)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward(self, images: Tensor) -> Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.blocks:
            x = block(x)
        if self.cls_token is not None:
            return self.head(self.norm_final(x[:, 0]))
        return self.head(self.norm_final(x).mean(dim=1))


# --------------------------------------------------------------------------- task
class Standardize:
    """Per-channel standardisation with training-split statistics."""

    def __init__(self, train_images: Tensor) -> None:
        self.mean = train_images.mean(dim=(0, 2, 3), keepdim=True)
        self.std = train_images.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)

    def __call__(self, images: Tensor) -> Tensor:
        return (images - self.mean) / self.std


def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> tuple[float, float]:
    """(top-1 accuracy in [0, 1], mean cross-entropy) of ``model`` on standardised ``images``."""
    correct, loss = 0, 0.0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start:start + batch_size])
        target = labels[start:start + batch_size]
        loss += float(F.cross_entropy(logits.float(), target, reduction="sum"))
        correct += int((logits.argmax(dim=1) == target).sum())
    return correct / len(labels), loss / len(labels)


def run(config: ViTConfig, norm: NormFactory, dataset: ImageDataset, seed: int,
        on_epoch: EpochCallback | None = None, runtime: Runtime | None = None) -> ProxyRun:
    """Build the model (global RNG seeded by the caller; built on the CPU so that every
    device starts from the same weights), move it and the data to the runtime's device,
    train it and measure it."""
    runtime = runtime or Runtime()
    device = runtime.torch_device
    model = ViT(config, dataset.channels, dataset.image_size, dataset.num_classes, norm).to(device)
    standardize = Standardize(dataset.train_images.to(device))
    train_images, train_labels = dataset.train_images.to(device), dataset.train_labels.to(device)
    test_images, test_labels = standardize(dataset.test_images.to(device)), dataset.test_labels.to(device)

    def batch_loss(model: nn.Module, batch: Tensor, generator: torch.Generator) -> Tensor:
        images = augment(train_images[batch], config.aug_shift, config.aug_flip, generator)
        targets: Tensor = train_labels[batch]
        if config.mixup > 0 or config.cutmix > 0:
            images, targets = mix_batch(images, targets, dataset.num_classes, config.mixup, config.cutmix,
                                        generator)
        logits = model(random_erase(standardize(images), config.random_erase, generator))
        return F.cross_entropy(logits.float(), targets, label_smoothing=config.label_smoothing)

    def per_epoch(model: nn.Module) -> dict[str, float]:
        accuracy, loss = evaluate(model, test_images, test_labels, config.eval_batch_size)
        return {"test_acc": accuracy, "test_loss": loss}

    task = TrainTask(model, len(train_labels), batch_loss, per_epoch)
    outcome = train(task, config, seed, on_epoch, runtime)
    final: dict[str, float] = {}
    if outcome.status == "ok":
        outcome.eval_model.eval()
        with torch.no_grad(), runtime.autocast():
            _, final["train_eval_loss"] = evaluate(outcome.eval_model, standardize(train_images),
                                                   train_labels, config.eval_batch_size)
    params = sum(p.numel() for p in model.parameters())
    return ProxyRun(outcome, final, {"parameters": params, "eval_examples": len(test_labels),
                                     "eval_what": "test images"})


PROXY = Proxy(
    name="vit",
    config_class=ViTConfig,
    run=run,
    load_data=load_dataset,
    metrics=(
        Metric("test_acc", True, True, "test accuracy", "%", 100.0, minimum=0.0, maximum=1.0),
        Metric("test_loss", False, True, "test loss", "nats", minimum=0.0),
        Metric("train_loss", False, True, "training loss", "nats", minimum=0.0),
        Metric("train_eval_loss", False, False, "eval-mode training loss", "nats", minimum=0.0),
    ),
    # test loss, not accuracy, ranks (chosen on the released calibration data, in sample): over
    # the committed studies its Spearman with the full-scale tables is higher in 6 of 8 (property
    # shift +0.59 vs +0.47, mix +0.69 vs +0.29, the ViT-B search results +0.03 vs -0.13) and its
    # seeds agree more on paper_search (+0.76 vs +0.60); 360 test images make accuracy move in
    # steps of 0.28 points. Stored rows are re-read from their recorded metrics (store.declared_scores).
    primary_metric="test_loss",
    # the rung ranks on test loss too: on paper_search's curves (18 functions) a rung at 10% of
    # training keeping a third saves 43% of the CPU at Spearman +0.85 with the full runs' order,
    # at 20% 38% at +0.93 (a rung on test accuracy: 42% at +0.83; benchmarks/halving_study.py)
    halving_metric="test_loss",
    smoke={"epochs": 3, "depth": 2, "dim": 32, "warmup_epochs": 0.5, "lr": 3e-3},
    description="pre-norm ViT classifier on 8x8 digits; ranks on test_loss (test_acc: top-1 accuracy)",
    data_help="CIFAR-10 python folder or .npz of images (default: the embedded digits)",
    references=("paper_search_vit_b.csv", "paper_property_tables.csv"),
    # the embedded digits' fixed test split (checked by tests/test_proxies.py): accuracy moves in
    # steps of one image, 1/360 = 0.28 points; trials record their own eval size in details
    extra={"eval_set": {"examples": 360, "what": "test images", "metrics": ["test_acc"],
                        "dataset": "digits-b7291dfff74c9fc4"}},
)
