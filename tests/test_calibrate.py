"""Calibration end to end on a tiny budget: real Ray, real Optuna storage, real proxies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from funcsearch.calibrate import (CalibrationConfig, calibrate, load_calibration_config,
                                  select_reference_functions)
from funcsearch.errors import ConfigError
from funcsearch.references import load_reference

TINY = {"epochs": 1, "warmup_epochs": 0, "dim": 16, "depth": 1, "heads": 2, "batch_size": 256}


def test_subset_per_study_keeps_failures_and_spreads_working_functions() -> None:
    reference = load_reference()
    rows = select_reference_functions(reference, ["shift", "growth"], per_study=4)
    shift = rows[rows["study"] == "shift"]
    assert len(shift) == 4 and shift["failed"].sum() == 2
    assert set(rows[rows["study"] == "growth"]["failed"]) == {True, False}


def test_config_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text("name: c\nproxy: vit\ncalibrate_on: [growth]\nspace:\n  depht: {values: [1, 2]}\n")
    with pytest.raises(ConfigError, match=r"cal.yaml:5: space.depht: unknown vit setting 'depht'"):
        load_calibration_config(path)
    path.write_text("name: c\nproxy: vit\ncalibrate_on: [growth]\nhold_out: [growth]\nspace:\n  lr: {low: 1, high: 0}\n")
    with pytest.raises(ConfigError, match="cal.yaml"):
        load_calibration_config(path)
    path.write_text("name: c\nproxy: vit\ncalibrate_on: [growth]\nspace:\n  lr: {low: 0.001, high: 0.01}\n"
                    "start_with:\n  - {lr: 0.005}\n  - {lr: 0.5}\n")
    with pytest.raises(ConfigError, match=r"cal.yaml:8: start_with\[1\]\.lr: 0.5 is outside \[0.001, 0.01\]"):
        load_calibration_config(path)



def test_a_calibration_with_another_shift_than_the_reference_is_refused(tmp_path: Path) -> None:
    config = CalibrationConfig(name="cal", proxy="vit", calibrate_on=["growth"], shift="scalar",
                               space={"lr": {"values": [0.001, 0.003]}}, output=str(tmp_path))
    with pytest.raises(ConfigError, match="shift: .*run with shift=none; a calibration with shift=scalar"):
        calibrate(config)
    assert not (tmp_path / "cal").exists()  # refused before anything ran or was written


@pytest.mark.ray
def test_calibration_runs_resumes_and_writes_a_preset(ray_cluster: None, tmp_path: Path) -> None:
    preset = tmp_path / "vit_tiny_calibrated.yaml"
    config = CalibrationConfig(
        name="cal", proxy="vit", calibrate_on=["growth"], hold_out=["flatzone"], functions_per_study=3,
        seeds=[0], n_recipes=2, base=TINY, space={"lr": {"values": [0.001, 0.003, 0.03]}},
        start_with=[{"lr": 0.03}], output=str(tmp_path), preset_out=str(preset), concurrency=2,
    )
    table = calibrate(config)
    calibration = table[table["split"] == "calibration"]
    assert len(calibration) == 2 and calibration["default"].sum() == 1
    # the recipe after the default is the one given in start_with
    assert '"lr": 0.03' in calibration[calibration["default"] == False]["overrides"].iloc[0]  # noqa: E712
    assert set(table["split"]) == {"calibration", "holdout"}
    assert calibration["n_shared"].min() == 3
    assert table["objective"].between(-0.5, 1.0).all()
    written = yaml.safe_load(preset.read_text())
    assert written["proxy"] == "vit" and written["overrides"]["dim"] == 16
    assert written["fidelity"]["calibration"]["n_shared"] == 3
    report = (tmp_path / "cal" / "calibration.md").read_text()
    assert report.startswith("# Calibration `cal`") and "Recipes tried: 2." in report
    assert (tmp_path / "cal" / "calibration.png").read_bytes().startswith(b"\x89PNG")
    trials_before = sum(len(pd.read_parquet(p)) for p in (tmp_path / "cal" / "recipes").rglob("trials/*.parquet"))

    # resume with a larger budget: earlier recipes are not retrained, one new recipe runs
    again = calibrate(config.model_copy(update={"n_recipes": 3}))
    assert len(again[again["split"] == "calibration"]) == 3
    trials_after = sum(len(pd.read_parquet(p)) for p in (tmp_path / "cal" / "recipes").rglob("trials/*.parquet"))
    assert trials_after - trials_before <= 3  # at most the new recipe's 3 functions x 1 seed
