"""Every trial records the regime of its point-wise functions: the distribution of u = alpha*x + s
per norm site kind at the first, middle and last training step."""

from __future__ import annotations

import pytest
import torch

from funcsearch.layers import PointwiseNorm
from funcsearch.proxies import PROXIES, FunctionSpec, TrialSpec, run_trial
from funcsearch.proxies.regime import RegimeProbe, regime_line, regime_stats


def test_stats_of_a_gaussian_are_the_textbook_shares() -> None:
    stats = regime_stats(torch.randn(200_000, generator=torch.Generator().manual_seed(0)))
    assert stats["gt1"] == pytest.approx(0.3173, abs=0.005)
    assert stats["gt2"] == pytest.approx(0.0455, abs=0.003)
    assert stats["p99"] == pytest.approx(2.576, abs=0.03)


def test_the_probe_samples_u_not_x() -> None:
    norm = PointwiseNorm("erf", 8, alpha_init=4.0)
    norm.site_kind = "mlp"
    probe = RegimeProbe(torch.nn.Sequential(norm))
    x = torch.full((2, 8), 0.3)
    with probe.capture("init"):
        norm(x)
    norm(x * 100)  # outside capture: not sampled
    summary = probe.summary()
    assert summary["init"]["mlp"] == {"gt1": 1.0, "gt2": 0.0, "p99": pytest.approx(1.2)}  # |4 * 0.3|
    assert regime_line(summary, "init").startswith("u at init: mlp |u|>1 100%")


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_a_trial_records_the_regime_per_site_kind_at_three_points(proxy: str) -> None:
    result = run_trial(TrialSpec(proxy=proxy, function=FunctionSpec(name="erf", expression="erf(x)"),
                                 seed=0, overrides=dict(PROXIES[proxy].smoke)))
    regime = result.details["regime"]
    assert list(regime) == ["init", "middle", "end"]
    for point in regime.values():
        assert {"attn", "mlp", "final", "all"} <= set(point)
        for stats in point.values():
            assert 0 <= stats["gt2"] <= stats["gt1"] <= 1 and stats["p99"] > 0


def test_layernorm_has_no_regime() -> None:
    result = run_trial(TrialSpec(proxy="vit", function=FunctionSpec(name="layernorm"), seed=0,
                                 overrides=dict(PROXIES["vit"].smoke)))
    assert "regime" not in result.details
