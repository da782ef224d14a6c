"""Hostile search configs, flags and stores: each gets exactly one error line naming the file,
line and field (or the flag), a non-zero exit, no traceback, within 10 seconds; finished
trials are never lost."""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from funcsearch.cli import main

VALID = ("name: h\ncandidates: {functions: [isru], require: []}\nbaselines: []\n"
         "proxies: {vit: {overrides: {epochs: 1, warmup_epochs: 0}}}\nseeds: [0]\n")


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``funcsearch ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["funcsearch", *args]
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


CONFIG_CASES = [
    ("seed 2^64", VALID.replace("seeds: [0]", "seeds: [18446744073709551616]"), ":5: seeds[0]:"),
    ("seed true", VALID.replace("seeds: [0]", "seeds: [true]"), ":5: seeds[0]:"),
    ("negative seed", VALID.replace("seeds: [0]", "seeds: [-1]"), ":5: seeds[0]:"),
    ("unknown proxy", VALID.replace("{vit:", "{vot:"), ":4: proxies.vot: unknown proxy 'vot'"),
    ("infinite lr", VALID.replace("epochs: 1,", "epochs: 1, lr: .inf,"), ":4: proxies.vit.overrides"),
    ("nan override", VALID.replace("epochs: 1,", "epochs: 1, lr: .nan,"), ":4: proxies.vit.overrides"),
    ("unknown override", VALID.replace("epochs: 1,", "epochz: 1,"), ":4: proxies.vit.overrides.epochz"),
    ("gate metric unknown", VALID + "early_stopping: {gate: {require: {vit: {accuracy: {min: 0.5}}}}}\n",
     ":6: early_stopping.gate.require.vit.accuracy: vit reports no per-epoch metric 'accuracy'"),
    ("gate proxy not trained", VALID + "early_stopping: {gate: {require: {dit: {heldout_loss: {max: 1}}}}}\n",
     ":6: early_stopping.gate.require.dit: proxy 'dit' is not trained"),
    ("halving metric unknown", VALID + "early_stopping: {halving: {metric: {vit: fid}}}\n",
     ":6: early_stopping.halving.metric.vit: vit reports no per-epoch metric 'fid'"),
    ("halving placed twice", VALID + "early_stopping: {halving: {at: [0.5], min_epochs: 2}}\n",
     ":6: early_stopping.halving: give either at (fractions of training) or min_epochs"),
    ("missing data", VALID.replace("warmup_epochs: 0}}", "warmup_epochs: 0}, data: nowhere.npz}"),
     ":4: proxies.vit.data: no such file or folder: nowhere.npz"),
    ("cuda without gpus share", VALID + "resources: {device: cuda, gpus_per_trial: 0}\n",
     ":6: resources.gpus_per_trial: device cuda needs gpus_per_trial > 0"),
    ("bad device", VALID + "resources: {device: tpu}\n", ":6: resources.device:"),
    ("bad precision", VALID.replace("warmup_epochs: 0}}", "warmup_epochs: 0}, precision: fp8}"),
     ":4: proxies.vit.precision:"),
    ("negative gpus", VALID + "resources: {gpus_per_trial: -1}\n", ":6: resources.gpus_per_trial:"),
    ("unknown baseline", VALID.replace("baselines: []", "baselines: [groupnorm]"), ":3: baselines[0]:"),
    ("sweep of an unknown proxy", VALID + "sweep: {params: {lr: {values: [0.1]}}, proxies: [lm2]}\n",
     ":6: sweep.proxies[0]: sweep names proxy 'lm2'"),
    ("not a mapping", "- just\n- a list\n", ":1: a search config is a mapping"),
    ("empty file", "", ":1: a search config is a mapping"),
    ("bad shift", VALID + "function: {shift: diagonal}\n", ":6: function.shift:"),
    ("alpha zero", VALID + "function: {alpha_init: 0}\n", ":6: function.alpha_init:"),
    ("nothing to train", VALID.replace("candidates: {functions: [isru], require: []}\n", ""),
     "nothing to train"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("label", "text", "expected"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_search_config_is_one_line_at_its_place(tmp_path: Path, label: str, text: str,
                                                      expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = cli("search", str(path), "--output", str(tmp_path / "results"))
    assert code == 2
    line = one_error_line(err)
    assert str(path) in line and expected in line, line
    assert not (tmp_path / "results" / "h" / "trials").exists()


FLAG_CASES = [
    (["train", "--proxy", "vit", "--fn", "erf", "--alpha-init", "-1"], "--alpha-init: alpha init must be"),
    (["train", "--proxy", "vit", "--fn", "erf", "--set", "lr=.inf"], "--set: lr must be a finite number"),
    (["train", "--proxy", "vit", "--fn", "erf(", "--set", "epochs=1"], "--fn: syntax error"),
    (["train", "--proxy", "vit", "--fn", "__import__('os')"], "--fn:"),
    (["train", "--proxy", "nope", "--fn", "erf"], "--proxy: unknown proxy 'nope'"),
    (["train", "--proxy", "vit", "--fn", "erf", "--precision", "fp8"], "--precision:"),
    (["train", "--proxy", "vit", "--fn", "erf", "--device", "tpu"], "--device: unknown device 'tpu'"),
    (["train", "--proxy", "vit", "--fn", "erf", "--shift", "diagonal"], "--shift:"),
    (["train", "--proxy", "vit", "--fn", "erf", "--set", "epochs"], "--set: expected key=value"),
    (["train", "--proxy", "vit", "--fn", "erf", "--data", "/nonexistent/x.npz"], "/nonexistent/x.npz"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("args", "expected"), FLAG_CASES, ids=[" ".join(a[4:]) or a[2] for a, _ in FLAG_CASES])
def test_a_bad_flag_is_one_line_naming_it(args: list[str], expected: str) -> None:
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert expected in one_error_line(err)


@pytest.mark.timeout(120)
def test_an_output_that_is_a_file_or_read_only_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "h.yaml"
    config.write_text(VALID)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli("search", str(config), "--output", str(blocker))
    assert code == 2 and "--output: the output path is a file" in one_error_line(err)
    if os.geteuid() != 0:  # root writes anywhere: the read-only case needs a normal user
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o555)
        code, _, err = cli("search", str(config), "--output", str(locked))
        assert code == 2 and "not writable" in one_error_line(err)


def _store(folder: Path) -> None:
    from funcsearch.search.store import ResultsStore

    from fixtures.rows import make_record

    store = ResultsStore(folder)
    with store.locked():
        store.write(make_record("k1"))
        store.consolidate()
    store.write_plan([{"trial_key": "k1", "candidate": "c", "is_baseline": False}])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("damage", ["plan not json", "plan not a list", "foreign table", "truncated table"])
def test_a_damaged_results_folder_is_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "study"
    _store(folder)
    if damage == "plan not json":
        (folder / "plan.json").write_text("{not json")
    elif damage == "plan not a list":
        (folder / "plan.json").write_text(json.dumps({"trial_key": "k1"}))
    elif damage == "foreign table":
        import pandas as pd

        pd.DataFrame({"a": [1], "b": ["x"]}).to_parquet(folder / "trials.parquet")
    else:
        data = (folder / "trials.parquet").read_bytes()
        (folder / "trials.parquet").write_bytes(data[: len(data) // 2])
    code, _, err = cli("leaderboard", str(folder))
    line = one_error_line(err)
    assert code == 2 and str(folder) in line


@pytest.mark.timeout(120)
def test_one_corrupt_study_does_not_hide_the_others(tmp_path: Path) -> None:
    from fixtures.results_fixture import write_results

    write_results(tmp_path / "good")
    write_results(tmp_path / "bad")
    (tmp_path / "bad" / "trials.parquet").write_bytes(b"PAR1 garbage")
    code, out, err = cli("studies", str(tmp_path))
    assert code == 0 and "good" in out
    assert "warning:" in err and "bad" in err and "Traceback" not in err


def test_convert_norms_refuses_a_torchscript_model() -> None:
    import torch
    from torch import nn

    from funcsearch.errors import InputError
    from funcsearch.layers import convert_norms

    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    for compiled in (torch.jit.script(model), torch.jit.trace(model, torch.randn(2, 4))):
        with pytest.raises(InputError, match="TorchScript"):
            convert_norms(compiled, "erf")
