"""The proxy tasks candidates are trained on: a tiny ViT and a tiny DiT.

Public contract (docs/architecture.md): ``run_trial(spec) -> TrialResult`` and the
``PROXIES`` registry (config class, ``primary_metric``, ``higher_is_better`` per proxy).
"""

from __future__ import annotations

from funcsearch.proxies.config import TrainConfig, parse_set_options
from funcsearch.proxies.data import ImageDataset, load_dataset
from funcsearch.proxies.dit import DiTConfig
from funcsearch.proxies.registry import PROXIES, Proxy
from funcsearch.proxies.trial import FunctionSpec, TrialResult, TrialSpec, make_trial_spec, run_trial
from funcsearch.proxies.vit import ViTConfig

__all__ = [
    "PROXIES", "Proxy", "TrainConfig", "ViTConfig", "DiTConfig", "FunctionSpec", "TrialSpec",
    "TrialResult", "run_trial", "make_trial_spec", "parse_set_options", "ImageDataset", "load_dataset",
]
