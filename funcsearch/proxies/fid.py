"""FID in the feature space of a small classifier trained once per dataset and cached.

Inception features mean nothing on 8x8 digits, so the DiT proxy measures sample quality
with its own feature extractor: a small CNN trained (deterministically, with a fixed
recipe) on the same training split. Its 64-d penultimate embedding is the feature space;
the Frechet distance compares the Gaussian fitted to generated samples with the one
fitted to the training images.

The trained classifier and the reference statistics are cached on disk under
``$FUNCSEARCH_CACHE`` (default ``~/.cache/funcsearch``) in ``fid/``, keyed by the dataset
fingerprint and a hash of the recipe. The first process to need it trains it while
holding a file lock; the file appears by atomic rename, so processes racing for it train
it once and never read half a file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from funcsearch.proxies.data import ImageDataset

#: bump when the network or the statistics change in a way the recipe does not show
FEATURE_VERSION = 1


class ClassifierRecipe(BaseModel):
    """How the feature classifier is trained (part of the cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = 32
    feature_dim: int = 64
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1


class FeatureNet(nn.Module):
    """conv-conv-pool-conv-global pool -> ``features`` (64-d embedding) -> class logits."""

    def __init__(self, channels: int, num_classes: int, width: int, feature_dim: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.embed = nn.Linear(2 * width, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, images: Tensor) -> Tensor:
        return self.embed(self.convs(images))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(F.relu(self.features(images)))


class FeatureSpace:
    """A trained ``FeatureNet`` plus the training images' feature mean and covariance."""

    def __init__(self, net: FeatureNet, mean: np.ndarray, cov: np.ndarray, key: str,
                 test_acc: float) -> None:
        self.net, self.mean, self.cov, self.key, self.test_acc = net, mean, cov, key, test_acc

    @torch.no_grad()
    def statistics(self, images: Tensor, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Feature mean and covariance of ``images``, computed on the images' device."""
        self.net.to(images.device)
        feats = torch.cat([self.net.features(images[s:s + batch_size].float())
                           for s in range(0, len(images), batch_size)]).double().cpu().numpy()
        return feats.mean(axis=0), np.cov(feats, rowvar=False)


def cache_dir() -> Path:
    """``$FUNCSEARCH_CACHE`` or ``~/.cache/funcsearch``."""
    return Path(os.environ.get("FUNCSEARCH_CACHE") or Path.home() / ".cache" / "funcsearch")


def cache_key(dataset: ImageDataset, recipe: ClassifierRecipe) -> str:
    recipe_text = json.dumps({"version": FEATURE_VERSION, **recipe.model_dump()}, sort_keys=True)
    return f"{dataset.fingerprint}-{hashlib.sha256(recipe_text.encode()).hexdigest()[:12]}"


_MEMO: dict[str, FeatureSpace] = {}


def feature_space(dataset: ImageDataset, recipe: ClassifierRecipe | None = None) -> FeatureSpace:
    """The cached feature space of ``dataset``; trains and stores it on first use."""
    recipe = recipe or ClassifierRecipe()
    key = cache_key(dataset, recipe)
    if key in _MEMO:
        return _MEMO[key]
    folder = cache_dir() / "fid"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.pt"
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        state = _read(path)
        if state is None:
            state = _train_state(dataset, recipe)
            _write_atomic(path, state)
    net = FeatureNet(dataset.channels, dataset.num_classes, recipe.width, recipe.feature_dim)
    net.load_state_dict(state["state_dict"])
    net.eval()
    space = FeatureSpace(net, state["mean"].numpy(), state["cov"].numpy(), key, float(state["test_acc"]))
    _MEMO[key] = space
    return space


def _read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # a foreign or damaged file: retrain and replace it
        return None


def _write_atomic(path: Path, state: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(state, temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is shared
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _train_state(dataset: ImageDataset, recipe: ClassifierRecipe) -> dict[str, Any]:
    """Train the classifier with the fixed recipe; return weights and reference statistics."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        generator = torch.Generator().manual_seed(recipe.seed)
        with torch.random.fork_rng():
            torch.manual_seed(recipe.seed)
            net = FeatureNet(dataset.channels, dataset.num_classes, recipe.width, recipe.feature_dim)
        optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        images, labels = dataset.train_images, dataset.train_labels
        steps = recipe.epochs * -(-len(labels) // recipe.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=steps)
        net.train()
        for _ in range(recipe.epochs):
            for batch in torch.randperm(len(labels), generator=generator).split(recipe.batch_size):
                loss = F.cross_entropy(net(images[batch]), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
        net.eval()
        with torch.no_grad():
            predictions = torch.cat([net(dataset.test_images[s:s + 1000]).argmax(1)
                                     for s in range(0, len(dataset.test_labels), 1000)])
            test_acc = float((predictions == dataset.test_labels).float().mean())
        space = FeatureSpace(net, np.zeros(0), np.zeros(0), "", test_acc)
        mean, cov = space.statistics(images)
    finally:
        torch.set_num_threads(previous_threads)
    return {"state_dict": net.state_dict(), "mean": torch.from_numpy(mean),
            "cov": torch.from_numpy(cov), "test_acc": test_acc, "recipe": recipe.model_dump()}


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """``|m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))`` (as in pytorch-fid, float64)."""
    diff = mean1 - mean2
    covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():
        offset = np.eye(cov1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def frechet_distance_to_data(dataset: ImageDataset, samples: Tensor) -> tuple[float, str]:
    """(FID of ``samples`` (in [0, 1]) against the training images, feature-space key).

    Non-finite samples give ``nan`` (the trial then records the run as diverged).
    """
    space = feature_space(dataset)
    if not torch.isfinite(samples).all():
        return float("nan"), space.key
    mean, cov = space.statistics(samples)
    return frechet_distance(space.mean, space.cov, mean, cov), space.key
