"""Proxy presets: a search names a recipe file; its own overrides apply on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from funcsearch.errors import ConfigError
from funcsearch.search.config import load_search_config
from funcsearch.search.plan import resolve_proxy_config


def _write(tmp_path: Path, preset_proxy: str = "vit") -> Path:
    (tmp_path / "proxies").mkdir()
    (tmp_path / "proxies" / "vit_small.yaml").write_text(
        f"proxy: {preset_proxy}\noverrides: {{depth: 2, dim: 32, lr: 0.004}}\nfidelity: {{spearman: 0.5}}\n")
    config = tmp_path / "s.yaml"
    config.write_text("name: s\ncandidates: {functions: [isru]}\nproxies:\n"
                      "  vit: {preset: vit_small, overrides: {lr: 0.002}}\nseeds: [0]\n")
    return config


def test_preset_overrides_apply_under_the_search_overrides(tmp_path: Path) -> None:
    config = load_search_config(_write(tmp_path))
    resolved = resolve_proxy_config(config, "vit", {}, ("proxies", "vit"))
    assert (resolved["depth"], resolved["dim"], resolved["lr"]) == (2, 32, 0.002)


def test_preset_of_another_proxy_is_refused_with_its_location(tmp_path: Path) -> None:
    config = load_search_config(_write(tmp_path, preset_proxy="dit"))
    with pytest.raises(ConfigError, match=r"vit_small.yaml:1: proxy: this preset is for proxy 'dit'"):
        resolve_proxy_config(config, "vit", {}, ("proxies", "vit"))


def test_missing_preset_is_reported_at_the_config_line(tmp_path: Path) -> None:
    path = _write(tmp_path)
    path.write_text(path.read_text().replace("vit_small", "nope"))
    config = load_search_config(path)
    with pytest.raises(ConfigError, match=r"s.yaml:4: proxies.vit.preset: proxy preset 'nope' not found"):
        resolve_proxy_config(config, "vit", {}, ("proxies", "vit"))


def test_the_vit_screen_is_the_calibrated_vit_recipe() -> None:
    """vit_screen's defaults are the vit_calibrated preset it was measured as (docs/calibration.md)."""
    from funcsearch.presets import load_preset
    from funcsearch.proxies.registry import PROXIES

    calibrated = PROXIES["vit"].config_class.from_overrides(load_preset("vit_calibrated", "vit"))
    screen = PROXIES["vit_screen"].config_class()
    assert screen.model_dump() == calibrated.model_dump()
    assert PROXIES["vit_screen"].role == "screen" and PROXIES["vit"].role == "rank"
