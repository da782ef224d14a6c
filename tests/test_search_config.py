"""Search config schema: valid configs load, and every error names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from funcsearch.errors import ConfigError
from funcsearch.search.config import load_search_config, parse_search_config
from funcsearch.search.plan import check_shared_tasks, check_sweep_params, make_unit, select_functions

REPO = Path(__file__).resolve().parents[1]

VALID = """\
name: demo
candidates:
  functions: [isru, "x/(1+abs(x))"]
baselines: [layernorm, dyt]
proxies:
  vit:
    overrides:
      epochs: 2
seeds: [0, 1]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config = load_search_config(path)
        select_functions(config)
        check_sweep_params(config)
        check_shared_tasks(config)
        for function in select_functions(config).functions:
            for proxy in config.proxies:
                make_unit(config, function, proxy, {})
    return str(info.value)


def test_shipped_configs_validate() -> None:
    import yaml

    paths = sorted((REPO / "search_configs").glob("*.yaml"))
    assert REPO / "search_configs" / "quickstart.yaml" in paths
    # other tools keep their configs here too (e.g. calibrate_*.yaml): search configs have proxies:
    paths = [p for p in paths if "proxies" in (yaml.safe_load(p.read_text()) or {})]
    assert len(paths) >= 4
    for path in paths:
        config = load_search_config(path)
        assert config.name == path.stem
        config.candidates.require = []  # the property checks have their own tests (and take time)
        assert select_functions(config).functions
        check_sweep_params(config)
        check_shared_tasks(config)


def test_valid_config_has_defaults_and_filters_nothing_it_should_keep(tmp_path: Path) -> None:
    config = load_search_config(write(tmp_path, VALID))
    assert config.resources.cpus_per_trial == 1 and config.resources.threads_per_trial == 1
    assert config.results_folder() == Path("results/demo")
    names = [f.name for f in select_functions(config).functions]
    assert names == ["layernorm", "dyt", "isru", "x/(1 + abs(x))"]


@pytest.mark.parametrize(("text", "expected"), [
    (VALID.replace("seeds: [0, 1]", "seeds: [0, 0]"), "search.yaml:9: seeds: seeds must be distinct"),
    (VALID.replace("      epochs: 2", "      epochs: 2\n    bogus: 1"), "search.yaml:9: proxies.vit.bogus:"),
    (VALID.replace("  vit:", "  vot:"), "search.yaml:6: proxies.vot:"),
    (VALID.replace("name: demo\n", ""), "search.yaml:1: name: field required"),
    (VALID.replace("[layernorm, dyt]", "[layernorm, groupnorm]"), "search.yaml:4: baselines[1]:"),
    (VALID + "resources:\n  concurrency: 0\n", "search.yaml:11: resources.concurrency:"),
    (VALID + "sweep:\n  params:\n    lr: {low: 1.0, high: 0.1}\n",
     "search.yaml:12: sweep.params.lr: low (1.0) must be below high (0.1)"),
    (VALID + "proxies: {}\n", "duplicate key 'proxies'"),
    (VALID.replace("name: demo", "name: ../escape"), "search.yaml:1: name:"),
])
def test_schema_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_bad_proxy_override_is_located_at_its_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("epochs: 2", "epochs: -3"))
    assert "search.yaml:8: proxies.vit.overrides.epochs:" in message
    message = error_of(tmp_path, VALID.replace("epochs: 2", "epoch: 2"))
    assert "search.yaml:8: proxies.vit.overrides.epoch: unknown vit setting 'epoch'" in message


def test_bad_candidate_expression_is_located(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace('"x/(1+abs(x))"', '"__import__(1)"'))
    assert "search.yaml:3: candidates.functions[1]:" in message


def test_unknown_sweep_param_is_located(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "sweep:\n  params:\n    learning_rate: {values: [0.1]}\n")
    assert "search.yaml:12: sweep.params.learning_rate: 'learning_rate' is neither" in message


def test_missing_family_path_is_located(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("  functions:", "  paths: [nope/none.yaml]\n  functions:"))
    assert "search.yaml:3: candidates.paths[0]: no such file or folder" in message


def test_property_filter_drops_failing_candidates_with_the_reason(tmp_path: Path) -> None:
    config = load_search_config(write(tmp_path, VALID.replace("isru,", '"erf(x+2)",')))
    selection = select_functions(config)
    (name, reason), = selection.dropped
    assert name == "erf(2 + x)" and reason.startswith("zero_centred:")
    assert name not in [f.name for f in selection.functions]
    config.candidates.require = ["bounded"]  # erf(x+2) is bounded: kept
    assert name in [f.name for f in select_functions(config).functions]


def test_candidate_equal_to_a_baseline_is_trained_once(tmp_path: Path) -> None:
    config = load_search_config(write(tmp_path, VALID.replace("isru,", "erf, tanh,")
                                      .replace("[layernorm, dyt]", "[derf, dyt]")))
    selection = select_functions(config)
    names = [f.name for f in selection.functions]
    assert names.count("derf") == 1 and "erf" not in names
    assert "tanh" in names  # dyt has no shift, tanh (scalar shift) is another function
    assert ("erf", "same function as derf") in selection.dropped


def test_shift_variants_train_each_candidate_once_per_variant(tmp_path: Path) -> None:
    """An ablation of s lists variants; each gets its own name and key, norms and DyT one."""
    config = load_search_config(write(tmp_path, VALID + "function:\n  shift: [none, scalar, vector]\n"))
    functions = select_functions(config).functions
    assert [(f.name, f.shift) for f in functions] == [
        ("layernorm", "none"), ("dyt", "none"),
        ("isru|s=none", "none"), ("isru|s=scalar", "scalar"), ("isru|s=vector", "vector"),
        ("x/(1 + abs(x))|s=none", "none"), ("x/(1 + abs(x))|s=scalar", "scalar"),
        ("x/(1 + abs(x))|s=vector", "vector")]
    keys = {make_unit(config, f, "vit", {}).trials[0] for f in functions}
    assert len(keys) == len(functions)
    # the scalar variant is the same trial as in a search without variants (so it is reused)
    plain = load_search_config(write(tmp_path, VALID))
    isru = next(f for f in select_functions(plain).functions if f.name == "isru")
    scalar = next(f for f in functions if f.name == "isru|s=scalar")
    assert make_unit(plain, isru, "vit", {}).trials[0] == make_unit(config, scalar, "vit", {}).trials[0]
    message = error_of(tmp_path, VALID + "function:\n  shift: [none, none]\n")
    assert "search.yaml:11: function.shift: shift variants repeat" in message


def test_the_worker_runs_exactly_the_config_the_trial_key_hashes(tmp_path: Path) -> None:
    """Preset, overrides and sweep values all reach the trial (not only the key)."""
    from funcsearch.proxies import PROXIES, TrialSpec

    (tmp_path / "proxies").mkdir()
    (tmp_path / "proxies" / "small.yaml").write_text("proxy: vit\noverrides: {depth: 2, dim: 32}\n")
    config = load_search_config(write(tmp_path, VALID.replace(
        "    overrides:\n      epochs: 2", "    preset: small\n    overrides:\n      epochs: 2")))
    function = select_functions(config).functions[-1]
    unit = make_unit(config, function, "vit", {"lr": 0.004, "alpha_init": 1.0})
    spec = TrialSpec.model_validate(unit.spec(1))
    ran = PROXIES["vit"].config_class.from_overrides(spec.overrides).model_dump(mode="json")
    assert ran == unit.config
    assert (ran["depth"], ran["dim"], ran["epochs"], ran["lr"]) == (2, 32, 2, 0.004)
    assert spec.function.alpha_init == 1.0 and spec.seed == 1
    assert unit.overrides == {"depth": 2, "dim": 32, "epochs": 2, "lr": 0.004}


def test_the_commented_blocks_of_quickstart_are_valid_settings() -> None:
    """quickstart.yaml is the commented reference: each block it shows commented out
    (early stopping, sweep, aggregate, devices, lm) parses and checks once uncommented."""
    import re

    path = Path(__file__).resolve().parent.parent / "search_configs" / "quickstart.yaml"
    text = path.read_text()
    uncommented = re.sub(r"(?m)^( *)# ( *[a-z_]+:)", r"\1\2", text)
    assert uncommented.count("\n") == text.count("\n") and uncommented != text
    config = parse_search_config(uncommented, str(path))
    check_sweep_params(config)
    assert config.early_stopping.gate is not None and config.early_stopping.halving is not None
    assert config.sweep is not None and config.aggregate.metrics and "lm" in config.proxies
    assert config.resources.gpus_per_trial == 0.25


def test_a_proxy_that_shares_a_task_shares_its_trial_keys(tmp_path: Path) -> None:
    """vit_screen is the vit task with the vit_calibrated recipe as defaults: its runs are vit
    runs at those settings (the same keys, so either study reuses the other's), and plain vit's
    are not."""
    body = "name: k\nseeds: [0]\ncandidates: {functions: [erf], require: []}\nbaselines: []\nproxies: "
    keys = {}
    for label, proxies in (("screen", "{vit_screen: {}}"), ("preset", "{vit: {preset: vit_calibrated}}"),
                           ("vit", "{vit: {}}")):
        config = parse_search_config(body + proxies + "\n", f"{label}.yaml")
        (function,) = select_functions(config).functions
        keys[label] = make_unit(config, function, next(iter(config.proxies)), {}).trials[0]
    assert keys["screen"] == keys["preset"] != keys["vit"]


def test_two_proxies_that_train_the_same_runs_are_refused(tmp_path: Path) -> None:
    text = VALID.replace("  vit:\n    overrides:\n      epochs: 2\n",
                         "  vit:\n    preset: vit_calibrated\n  vit_screen: {}\n")
    message = error_of(tmp_path, text)
    assert "search.yaml:8: proxies.vit_screen" in message, message
    assert "trains the same runs as proxies.vit" in message, message
    other = load_search_config(write(tmp_path, text.replace("vit_screen: {}", "vit_screen: {overrides: {lr: 0.01}}")))
    check_shared_tasks(other)  # other settings, other runs: accepted
