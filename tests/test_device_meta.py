"""Every proxy's forward pass is device-agnostic: built on PyTorch's ``meta`` device (shapes
only, no data), it runs without a CPU tensor slipping in. A tensor made without
``device=`` inside ``forward`` fails here as it fails on a GPU (the sin-cos timestep
embedding of dit did, found by benchmarks/gpu_check.py on an H200), with no GPU needed."""

from __future__ import annotations

import pytest
import torch

from funcsearch.proxies.dit import DiT, DiTConfig
from funcsearch.proxies.lm import GPT, LMConfig
from funcsearch.proxies.trial import FunctionSpec, norm_factory
from funcsearch.proxies.vit import ViT, ViTConfig

META = torch.device("meta")
ERF = FunctionSpec(name="erf", expression="erf(x)")


@pytest.mark.parametrize("function", [ERF, FunctionSpec(name="layernorm")], ids=["erf", "layernorm"])
def test_the_dit_forward_pass_runs_on_the_meta_device(function: FunctionSpec) -> None:
    config = DiTConfig()
    model = DiT(config, 1, (8, 8), 10, norm_factory(function, config)).to(META)
    x = torch.empty(4, 1, 8, 8, device=META)
    t = torch.zeros(4, dtype=torch.int64, device=META)
    y = torch.zeros(4, dtype=torch.int64, device=META)
    out = model(x, t, y)
    assert out.device == META and out.shape == x.shape


def test_the_vit_and_lm_forward_passes_run_on_the_meta_device() -> None:
    vit_config, lm_config = ViTConfig(), LMConfig()
    vit = ViT(vit_config, 1, (8, 8), 10, norm_factory(ERF, vit_config)).to(META)
    assert vit(torch.empty(4, 1, 8, 8, device=META)).shape == (4, 10)
    gpt = GPT(lm_config, 50, norm_factory(ERF, lm_config)).to(META)
    ids = torch.zeros(2, lm_config.context, dtype=torch.int64, device=META)
    assert gpt(ids).shape == (2, lm_config.context, 50)
