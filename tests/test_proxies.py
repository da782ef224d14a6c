"""The ViT / DiT proxies, the shared training loop, the FID feature space and `funcsearch train`.

Every run here uses a tiny config (a few seconds), never the defaults.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from funcsearch.errors import ConfigError
from funcsearch.layers import PointwiseNorm
from funcsearch.proxies import (
    PROXIES,
    FunctionSpec,
    TrialSpec,
    make_trial_spec,
    parse_set_options,
    run_trial,
)
from funcsearch.proxies.dit import DiTConfig
from funcsearch.proxies.vit import ViTConfig
from funcsearch.proxies import fid
from funcsearch.proxies.data import load_digits_dataset
from funcsearch.proxies.dit import DiT
from funcsearch.proxies.training import lr_factor
from funcsearch.proxies.trial import norm_factory
from funcsearch.proxies.vit import ViT

TINY_VIT = dict(PROXIES["vit"].smoke)  # the registry's smoke recipes
TINY_DIT = dict(PROXIES["dit"].smoke)
LAYERNORM = FunctionSpec(name="layernorm")
ERF = FunctionSpec(name="derf", expression="erf(x)")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees one session-wide cache folder, never the user's."""
    folder = tmp_path_factory.getbasetemp() / "funcsearch-cache"
    monkeypatch.setenv("FUNCSEARCH_CACHE", str(folder))
    return folder


def _trial(proxy: str, function: FunctionSpec, seed: int = 0, **overrides: object) -> TrialSpec:
    base = PROXIES[proxy].smoke
    return TrialSpec(proxy=proxy, function=function, seed=seed, overrides={**base, **overrides})


# --------------------------------------------------------------------------- learning
@pytest.mark.parametrize("function", [LAYERNORM, ERF], ids=["layernorm", "erf"])
def test_short_vit_run_learns(function: FunctionSpec) -> None:
    result = run_trial(_trial("vit", function))
    assert result.status == "ok", result.message
    losses = [point["train_loss"] for point in result.curve]
    assert len(losses) == 3 and losses[-1] < 0.85 * losses[0]
    assert result.metrics["test_acc"] > 0.2  # chance is 0.1
    assert set(result.metrics) >= {"test_acc", "test_loss", "train_eval_loss", "train_loss"}
    assert 0.0 <= result.metrics["test_acc"] <= 1.0
    assert result.config["depth"] == 2 and result.seed == 0 and result.threads == 1
    assert set(result.versions) >= {"python", "torch", "numpy", "funcsearch", "funcsearch_source", "cpu"}
    assert len(result.versions["funcsearch_source"]) == 12
    assert result.versions["cpu"].endswith(", " + torch.backends.cpu.get_cpu_capability())
    assert result.wall_time_s > 0


@pytest.mark.parametrize("function", [LAYERNORM, ERF], ids=["layernorm", "erf"])
def test_short_dit_run_learns(function: FunctionSpec) -> None:
    result = run_trial(_trial("dit", function))
    assert result.status == "ok", result.message
    heldout = [point["heldout_loss"] for point in result.curve]
    assert heldout[-1] < heldout[0]
    assert heldout[-1] < 0.4  # the zero-initialised output starts at E[noise^2] = 1
    assert "fid" not in result.metrics  # fid_samples=0 skips it


def test_dit_fid_is_finite_and_cached_classifier_is_reused(private_cache: Path) -> None:
    result = run_trial(_trial("dit", LAYERNORM, fid_samples=100, sample_steps=5))
    assert result.status == "ok", result.message
    assert math.isfinite(result.metrics["fid"]) and result.metrics["fid"] > 0
    key = result.details["fid_classifier"]
    assert (private_cache / "fid" / f"{key}.pt").is_file()
    assert not list((private_cache / "fid").glob("*.tmp"))


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("proxy", ["vit", "dit"])
def test_same_seed_gives_identical_numbers_and_another_seed_does_not(proxy: str) -> None:
    extra = {"epochs": 2} if proxy == "vit" else {"epochs": 2, "fid_samples": 50, "sample_steps": 3}
    first = run_trial(_trial(proxy, ERF, seed=3, **extra))
    second = run_trial(_trial(proxy, ERF, seed=3, **extra))
    other = run_trial(_trial(proxy, ERF, seed=4, **extra))
    assert first.metrics == second.metrics
    assert first.curve == second.curve
    assert first.metrics != other.metrics


def test_a_local_npz_dataset_trains_both_proxies(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    images = np.zeros((60, 8, 8, 3), np.uint8)
    for label in range(3):  # one bright quadrant-ish band per class, plus noise
        images[labels == label, :, 2 * label:2 * label + 3, :] = 200
    images = np.clip(images + rng.integers(0, 40, images.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "bands.npz"
    np.savez(path, images=images, labels=labels)
    vit = run_trial(TrialSpec(proxy="vit", function=ERF, seed=0, data=str(path),
                              overrides={**TINY_VIT, "epochs": 8, "batch_size": 8}))
    assert vit.status == "ok" and vit.metrics["test_acc"] > 0.5
    dit = run_trial(TrialSpec(proxy="dit", function=ERF, seed=0, data=str(path), overrides=TINY_DIT))
    assert dit.status == "ok" and dit.details["dataset"].startswith("bands-")


# --------------------------------------------------------------------------- failure modes
def test_absurd_learning_rate_is_recorded_as_diverged_not_raised() -> None:
    result = run_trial(_trial("vit", FunctionSpec(name="x", expression="x"), lr=100.0))
    assert result.status == "diverged"
    assert isinstance(result.diverged_step, int) and result.diverged_step >= 1
    assert "loss" in (result.message or "")
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_exp_in_every_norm_site_diverges_with_a_non_finite_loss() -> None:
    result = run_trial(_trial("vit", FunctionSpec(name="exp", expression="exp(x)"), lr=1e-2, epochs=4))
    assert result.status == "diverged"
    assert result.diverged_step is not None


def test_epoch_callback_returning_true_prunes_the_trial() -> None:
    seen: list[tuple[int, dict[str, float]]] = []

    def stop_after_first(epoch: int, metrics: dict[str, float]) -> bool:
        seen.append((epoch, metrics))
        return True

    result = run_trial(_trial("vit", LAYERNORM), on_epoch=stop_after_first)
    assert result.status == "pruned"
    assert len(result.curve) == 1 and [e for e, _ in seen] == [1]
    assert "test_acc" in seen[0][1] and "train_eval_loss" not in result.metrics


# --------------------------------------------------------------------------- config
def test_unknown_override_key_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        run_trial(_trial("vit", LAYERNORM, learning_rate=1e-3))
    assert caught.value.field == "learning_rate"
    assert "learning_rate" in str(caught.value)


def test_bad_override_value_names_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        DiTConfig.from_overrides({"schedule": "linear"})
    assert caught.value.field == "schedule"
    with pytest.raises(ConfigError, match="sample_steps"):
        DiTConfig.from_overrides({"sample_steps": 100})
    with pytest.raises(ConfigError, match="beta_end"):
        DiTConfig.from_overrides({"beta_start": 0.1, "beta_end": 0.01})
    with pytest.raises(ConfigError, match="divisible by heads"):
        ViTConfig.from_overrides({"dim": 30, "heads": 4})


def test_set_options_are_read_as_yaml() -> None:
    parsed = parse_set_options(["lr=3e-3", "ema_decay=null", "schedule=constant", "aug_flip=true"])
    assert parsed == {"lr": 0.003, "ema_decay": None, "schedule": "constant", "aug_flip": True}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_options(["lr"])


def test_registry_names_primary_metrics() -> None:
    assert PROXIES["vit"].primary_metric == "test_loss" and not PROXIES["vit"].higher_is_better
    assert PROXIES["vit"].halving_metric == "test_loss" and PROXIES["vit"].metric("test_acc").maximum == 1.0
    assert PROXIES["dit"].primary_metric == "fid" and not PROXIES["dit"].higher_is_better
    assert PROXIES["vit"].config_class is ViTConfig


def test_schedule_warms_up_then_follows_cosine_or_stays_constant() -> None:
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine", min_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(80, 100, 10, "constant") == 1.0


# --------------------------------------------------------------------------- norm sites
def _norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (PointwiseNorm, nn.LayerNorm, nn.RMSNorm))]


def test_every_norm_site_of_both_models_comes_from_the_factory() -> None:
    config = ViTConfig.from_overrides({"depth": 3, "alpha_init_final": 1.5})
    norm = norm_factory(FunctionSpec(name="derf", expression="erf(x)", alpha_init=0.7), config)
    vit_norms = _norms(ViT(config, 1, (8, 8), 10, norm))
    assert len(vit_norms) == 2 * 3 + 1 and all(isinstance(m, PointwiseNorm) for m in vit_norms)
    assert [float(m.alpha.detach()) for m in vit_norms] == pytest.approx([0.7] * 6 + [1.5])

    dit_config = DiTConfig.from_overrides({"depth": 2})
    dit_norms = _norms(DiT(dit_config, 1, (8, 8), 10, norm_factory(ERF, dit_config)))
    assert len(dit_norms) == 2 * 2 + 1
    assert all(isinstance(m, PointwiseNorm) and m.weight is None for m in dit_norms)  # affine off
    assert [float(m.alpha.detach()) for m in dit_norms] == pytest.approx([2 * ERF.alpha_init] * 5)  # dit's gain

    rms = norm_factory(FunctionSpec(name="rmsnorm"), config)
    assert all(isinstance(m, nn.RMSNorm) for m in _norms(ViT(config, 1, (8, 8), 10, rms)))


def test_layernorm_sites_keep_layernorm_there_and_the_function_elsewhere() -> None:
    config = ViTConfig.from_overrides({"depth": 2, "layernorm_sites": ["final"]})
    model = ViT(config, 1, (8, 8), 10, norm_factory(ERF, config))
    assert isinstance(model.norm_final, nn.LayerNorm) and model.norm_final.site_kind == "final"
    blocks = [m for m in _norms(model) if m is not model.norm_final]
    assert len(blocks) == 4 and all(isinstance(m, PointwiseNorm) for m in blocks)
    config = ViTConfig.from_overrides({"depth": 2, "layernorm_sites": ["attn", "mlp"]})
    model = ViT(config, 1, (8, 8), 10, norm_factory(ERF, config))
    assert [type(m) for m in _norms(model)] == [nn.LayerNorm] * 4 + [PointwiseNorm]
    with pytest.raises(ConfigError, match="layernorm_sites"):
        ViTConfig.from_overrides({"layernorm_sites": ["head"]})


def test_alpha_gain_scales_the_functions_alpha_where_no_site_sets_its_own() -> None:
    config = ViTConfig.from_overrides({"depth": 2, "alpha_gain": 2.0, "alpha_init_final": 1.5})
    norm = norm_factory(FunctionSpec(name="derf", expression="erf(x)", alpha_init=0.7), config)
    alphas = [float(m.alpha.detach()) for m in _norms(ViT(config, 1, (8, 8), 10, norm))]
    assert alphas == pytest.approx([1.4] * 4 + [1.5])  # per-site values stay absolute
    with pytest.raises(ConfigError, match="alpha_gain"):
        ViTConfig.from_overrides({"alpha_gain": 0})


def test_a_class_token_pool_norms_that_token_alone_and_trains() -> None:
    config = ViTConfig.from_overrides({"depth": 1, "dim": 16, "heads": 2, "pool": "cls"})
    model = ViT(config, 1, (8, 8), 10, norm_factory(ERF, config))
    seen: list[tuple[int, ...]] = []
    model.norm_final.register_forward_pre_hook(lambda module, inputs: seen.append(tuple(inputs[0].shape)))
    logits = model(torch.randn(3, 1, 8, 8))
    assert logits.shape == (3, 10) and seen == [(3, 16)]  # the class token's state, not 16 patches
    logits.sum().backward()
    assert model.cls_token is not None and model.cls_token.grad.abs().sum() > 0
    assert ViT(ViTConfig.from_overrides({"depth": 1}), 1, (8, 8), 10,
               norm_factory(ERF, ViTConfig())).cls_token is None  # the default pools the mean
    with pytest.raises(ConfigError, match="pool"):
        ViTConfig.from_overrides({"pool": "max"})


def test_adaln_zero_init_is_a_recorded_option() -> None:
    for zero in (True, False):
        config = DiTConfig.from_overrides({"depth": 1, "adaln_zero_init": zero})
        model = DiT(config, 1, (8, 8), 10, norm_factory(ERF, config))
        weight = model.blocks[0].adaLN_modulation[-1].weight
        assert bool(torch.all(weight == 0)) is zero
    result = run_trial(_trial("dit", ERF, epochs=1, adaln_zero_init=False))
    assert result.config["adaln_zero_init"] is False


def test_adaln_zero_init_norms_only_is_the_papers_rule() -> None:
    """Zero-initialised for a LayerNorm model, not for a point-wise one (Derf paper, DiT)."""
    config = DiTConfig.from_overrides({"depth": 1, "adaln_zero_init": "norms_only"})
    for function, zero in ((LAYERNORM, True), (ERF, False)):
        model = DiT(config, 1, (8, 8), 10, norm_factory(function, config))
        for layer in (model.blocks[0].adaLN_modulation[-1], model.final_layer.adaLN_modulation[-1]):
            assert bool(torch.all(layer.weight == 0)) is zero
    with pytest.raises(ConfigError, match="adaln_zero_init: .*boolean.*; or .*'norms_only'"):
        DiTConfig.from_overrides({"adaln_zero_init": "sometimes"})  # both forms it takes are named


# --------------------------------------------------------------------------- FID pieces
def test_frechet_distance_is_zero_for_equal_statistics_and_grows_with_the_gap() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    mean, cov = a.mean(0), np.cov(a, rowvar=False)
    assert fid.frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-6)
    assert fid.frechet_distance(mean, cov, mean + 1.0, cov) == pytest.approx(4.0, rel=1e-6)


def test_feature_space_ranks_real_test_images_far_closer_than_noise() -> None:
    data = load_digits_dataset()
    real, _ = fid.frechet_distance_to_data(data, data.test_images)
    noise, _ = fid.frechet_distance_to_data(data, torch.rand(360, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert real < 0.1 * noise
    assert fid.feature_space(data).test_acc > 0.9


def test_feature_space_is_read_back_from_disk_without_retraining(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_digits_dataset()
    first = fid.feature_space(data)
    monkeypatch.setattr(fid, "_MEMO", {})
    monkeypatch.setattr(fid, "_train_state", lambda *a, **k: pytest.fail("retrained"))
    second = fid.feature_space(data)
    assert second is not first
    np.testing.assert_array_equal(second.mean, first.mean)


# --------------------------------------------------------------------------- command line
def test_make_trial_spec_resolves_names_and_checks_settings() -> None:
    spec = make_trial_spec("dit", "dyt", seed=2, settings=["lr=1e-3"])
    assert spec.function.expression == "tanh(x)" and spec.function.shift == "none"
    assert spec.overrides == {"lr": 0.001}
    with pytest.raises(ConfigError, match="'depht'"):
        make_trial_spec("vit", "erf", settings=["depht=2"])


def test_train_command_prints_the_trial_result_as_json(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from funcsearch import cli

    args = ["funcsearch", "train", "--proxy", "vit", "--fn", "erf", "--seed", "1"]
    for key, value in {**TINY_VIT, "epochs": 1}.items():
        args += ["--set", f"{key}={value}"]
    monkeypatch.setattr(sys, "argv", args)
    cli.main()
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["status"] == "ok"
    assert "curve" not in printed and "test_acc" in printed["metrics"]
    assert printed["config"]["depth"] == 2 and printed["seed"] == 1
    assert set(printed["details"]["regime"]) == {"init", "middle", "end"}
    assert "u at init: attn |u|>1" in captured.err and "u at end:" in captured.err  # the regime, printed


def test_train_command_reports_an_unknown_setting_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from funcsearch import cli

    monkeypatch.setattr(sys, "argv", ["funcsearch", "train", "--proxy", "vit", "--fn", "erf",
                                      "--set", "epoch=1"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "epoch" in err and "--set" in err and "Traceback" not in err


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_every_registered_proxy_runs_its_smoke_recipe_in_bf16_autocast_on_the_cpu(proxy: str) -> None:
    spec = TrialSpec(proxy=proxy, function=ERF, seed=0, overrides=dict(PROXIES[proxy].smoke),
                     precision="bf16")
    result = run_trial(spec)
    assert result.status == "ok", result.message
    assert (result.device, result.precision) == ("cpu", "bf16")
    epoch_metrics = {m.name for m in PROXIES[proxy].epoch_metrics}
    assert epoch_metrics <= set(result.curve[-1])  # every declared per-epoch metric is reported
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_a_proxy_declares_its_vocabulary_consistently() -> None:
    for proxy in PROXIES.values():
        names = [m.name for m in proxy.metrics]
        assert proxy.primary_metric in names and proxy.halving_metric in names
        assert proxy.metric(proxy.halving_metric).per_epoch
        assert set(proxy.smoke) <= set(proxy.config_class.model_fields)


@pytest.mark.parametrize("proxy", ["vit", "dit"])
def test_a_run_continued_from_its_early_stop_checkpoint_equals_an_uninterrupted_run(proxy: str, tmp_path: Path) -> None:
    """Successive halving promotes a trial by continuing it, not by retraining from epoch 0."""
    overrides = {**PROXIES[proxy].smoke, "epochs": 4}
    if proxy == "vit":
        # the global RNG must be restored too (drop path, dropout), and the trial's generator
        # (mixup, cutmix, random erasing)
        overrides.update(drop_path=0.1, dropout=0.1, mixup=0.8, cutmix=1.0, random_erase=0.25)
    full = run_trial(TrialSpec(proxy=proxy, function=ERF, seed=5, overrides=overrides))
    checkpoint = tmp_path / "trial.pt"
    spec = TrialSpec(proxy=proxy, function=ERF, seed=5, overrides=overrides, checkpoint=str(checkpoint))
    stopped = run_trial(spec, on_epoch=lambda epoch, metrics: epoch >= 2)
    assert stopped.status == "pruned" and checkpoint.is_file()
    continued = run_trial(spec)
    assert continued.status == "ok" and continued.metrics == full.metrics
    assert continued.curve == full.curve
    assert continued.details["steps"] == full.details["steps"]
    assert continued.details["regime"] == full.details["regime"]
    assert not checkpoint.exists()  # a finished trial keeps no state


def test_mixup_and_cutmix_mix_targets_by_what_they_mix_in() -> None:
    """The paper's ViT regularization: each mixed target is a distribution whose weight on the
    reversed batch's label is the share of that image mixed in (cutmix: the pasted area)."""
    from funcsearch.proxies.augment import mix_batch, random_erase

    generator = torch.Generator().manual_seed(0)
    images = torch.arange(4 * 64, dtype=torch.float32).reshape(4, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 3])
    for _ in range(20):
        mixed, targets = mix_batch(images, labels, 10, 0.0, 1.0, generator)  # cutmix alone
        torch.testing.assert_close(targets.sum(dim=1), torch.ones(4))
        pasted = (mixed != images).float().mean(dim=(1, 2, 3))  # every pixel differs between images
        torch.testing.assert_close(targets[torch.arange(4), labels.flip(0)], pasted)
        mixed, targets = mix_batch(images, labels, 10, 0.8, 0.0, generator)  # mixup alone
        lam = float(targets[0, 0])
        torch.testing.assert_close(mixed, lam * images + (1 - lam) * images.flip(0))
    assert torch.equal(random_erase(images, 0.0, generator), images)
    erased = random_erase(images, 1.0, generator)
    changed = (erased != images).float().mean(dim=(1, 2, 3))
    assert bool(((changed > 0) & (changed <= 1 / 3 + 1e-6)).all())  # one box, at most a third


def test_the_vit_declares_the_embedded_test_split_it_really_has() -> None:
    digits = load_digits_dataset()
    declared = PROXIES["vit"].extra["eval_set"]
    assert (declared["examples"], declared["dataset"]) == (len(digits.test_labels), digits.fingerprint)
