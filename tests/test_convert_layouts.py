"""convert_norms on channels-first norms (timm/ConvNeXt's LayerNorm2d), keeping gamma/beta,
calibrating gamma from one batch, and the timm-style norm_layer factory."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from funcsearch.errors import InputError
from funcsearch.layers import (ChannelsFirstPointwiseNorm, PointwiseNorm, convert_norms, is_channels_first,
                               norm_layer)


class LayerNorm2d(nn.LayerNorm):
    """timm's LayerNorm2d: a LayerNorm over the channels of an NCHW input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class OddNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # some layout of its own
        return super().forward(x)


class ConvStage(nn.Module):
    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.norm = LayerNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


def test_layernorm2d_gets_a_channels_first_layer_that_scales_the_channel_axis() -> None:
    torch.manual_seed(0)
    model, replaced = convert_norms(ConvStage(8), "erf")
    assert isinstance(model.norm, ChannelsFirstPointwiseNorm) and replaced[0].old_type == "LayerNorm2d"
    with torch.no_grad():
        model.norm.weight.copy_(torch.arange(1.0, 9.0))
    x = torch.randn(2, 3, 5, 7)  # width 7 != channels 8: a channels-last layer would fail here
    out = model(x)
    assert out.shape == (2, 8, 5, 7)
    z = torch.erf(0.5 * model.conv(x))
    assert torch.allclose(out, z * torch.arange(1.0, 9.0).view(1, 8, 1, 1), atol=1e-6)


def test_width_equal_to_channels_still_scales_the_channels() -> None:
    model, _ = convert_norms(ConvStage(8), "erf")
    with torch.no_grad():
        model.norm.weight.copy_(torch.arange(1.0, 9.0))
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 8, 8, 8)
    z = torch.erf(0.5 * model.conv(torch.zeros(1, 3, 8, 8)))  # constant per channel
    zero_out = model(torch.zeros(1, 3, 8, 8))
    assert torch.allclose(zero_out, z * torch.arange(1.0, 9.0).view(1, 8, 1, 1), atol=1e-6)


def test_data_format_attribute_and_unknown_subclasses() -> None:
    norm = nn.LayerNorm(4)
    norm.data_format = "channels_first"
    assert is_channels_first(norm)
    with pytest.raises(InputError, match=r"blocks\.norm .*OddNorm.*layouts"):
        convert_norms(nn.ModuleDict({"blocks": nn.ModuleDict({"norm": OddNorm(4)})}), "erf")
    model, _ = convert_norms(nn.ModuleDict({"norm": OddNorm(4)}), "erf", layouts={"OddNorm": "channels_last"})
    assert type(model["norm"]) is PointwiseNorm
    with pytest.raises(InputError, match="channels-first"):
        convert_norms(ConvStage(4), "layernorm")


def test_keep_affine_copies_gamma_and_beta() -> None:
    model = nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6))
    with torch.no_grad():
        model[1].weight.copy_(torch.linspace(0.5, 2, 6))
        model[1].bias.copy_(torch.linspace(-1, 1, 6))
    fresh, _ = convert_norms(nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6)), "erf")
    assert torch.equal(fresh[1].weight, torch.ones(6))
    kept, _ = convert_norms(model, "erf", keep_affine=True)
    assert torch.equal(kept[1].weight, torch.linspace(0.5, 2, 6))
    assert torch.equal(kept[1].bias, torch.linspace(-1, 1, 6))


def test_calibrate_matches_the_old_norms_scale_on_the_batch() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32))
    batch = torch.randn(64, 16) * 5
    before = model(batch).detach()
    converted, _ = convert_norms(model, "erf", calibrate=batch)
    after = converted(batch).detach()
    assert torch.allclose(after.std(0), before.std(0), rtol=1e-3)
    assert torch.allclose(after.mean(0), before.mean(0), atol=1e-4)
    uncalibrated, _ = convert_norms(nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32)), "erf")
    assert not torch.allclose(uncalibrated(batch).std(0), before.std(0), rtol=0.1)


def test_calibrate_reports_a_batch_the_model_cannot_run() -> None:
    with pytest.raises(InputError, match="calibrat"):
        convert_norms(nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32)), "erf", calibrate=torch.randn(2, 3))


def test_norm_layer_factory_builds_layers_like_a_timm_constructor() -> None:
    factory = norm_layer("erf", shift="vector", alpha_init=0.3)
    layer = factory(24, eps=1e-6)
    assert isinstance(layer, PointwiseNorm) and layer.normalized_shape == (24,)
    assert layer.shift.shape == (24,) and float(layer.alpha.detach()) == pytest.approx(0.3)
    assert factory(8, elementwise_affine=False).weight is None
    assert isinstance(norm_layer("tanh", channels_first=True)(8), ChannelsFirstPointwiseNorm)
    assert pickle.loads(pickle.dumps(factory))(4).normalized_shape == (4,)

    class Block(nn.Module):  # the constructor pattern of timm models
        def __init__(self, dim: int, norm_layer: type[nn.Module] = nn.LayerNorm) -> None:
            super().__init__()
            self.norm1 = norm_layer(dim)
            self.fc = nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.norm1(x))

    block = Block(12, norm_layer=norm_layer("erf"))
    assert isinstance(block.norm1, PointwiseNorm) and block(torch.randn(2, 12)).shape == (2, 12)
    with pytest.raises(InputError):
        norm_layer("not a function(")
