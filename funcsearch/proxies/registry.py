"""The proxy registry: each proxy's config class, run function and primary metric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from funcsearch.proxies import dit, vit
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.training import ProxyRun


@dataclass(frozen=True)
class Proxy:
    """One proxy task: how to configure it, run it and rank its trials."""

    name: str
    config_class: type[TrainConfig]
    run: Callable[..., ProxyRun]
    primary_metric: str
    higher_is_better: bool
    description: str


PROXIES: dict[str, Proxy] = {
    "vit": Proxy("vit", vit.ViTConfig, vit.run, "test_acc", True,
                 "pre-norm ViT classifier; test_acc is top-1 accuracy in [0, 1]"),
    "dit": Proxy("dit", dit.DiTConfig, dit.run, "fid", False,
                 "DiT-style class-conditional diffusion; fid in a small classifier's feature space"),
}
