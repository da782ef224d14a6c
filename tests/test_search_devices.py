"""Devices end to end without a GPU: Ray's logical GPU resources schedule trials, device and
precision are part of the trial key (CPU fp32 keys unchanged), cuda without a GPU is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from funcsearch.errors import InputError
from funcsearch.search import run_search
from funcsearch.search.config import parse_search_config
from funcsearch.search.keys import digest, trial_key
from funcsearch.search.plan import make_unit, select_functions
from funcsearch.search.store import ResultsStore

BODY = ("candidates: {functions: [isru, smoothsign, erf, tanh], require: []}\nbaselines: []\n"
        "proxies: {vit: {overrides: {epochs: 1, warmup_epochs: 0}}}\nseeds: [0]\n")


def _config(tmp_path: Path, extra: str = "", name: str = "gpu") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\noutput: {tmp_path / 'results'}\n{BODY}{extra}")
    return path


def _max_overlap(frame) -> int:
    spans = [(d["start"], d["end"]) for d in map(json.loads, frame["details"])]
    return max(sum(1 for s, e in spans if s < t < e) for t in [s + 1e-3 for s, _ in spans])


@pytest.mark.ray
def test_half_gpu_trials_run_two_per_logical_gpu_and_whole_ones_one_at_a_time(ray_cluster: None,
                                                                                tmp_path: Path) -> None:
    import _fake_trials

    half = run_search(_config(tmp_path, "resources: {gpus_per_trial: 0.5}\n", "half"),
                      trial_fn=_fake_trials.resource_trial, live=False)
    frame = ResultsStore(half.folder).read()
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}
    assert {json.loads(d)["gpu"] for d in frame["details"]} == {0.5}  # Ray reserved half a GPU each
    assert _max_overlap(frame) == 2  # one logical GPU holds two of them at once
    whole = run_search(_config(tmp_path, "reuse: false\nresources: {gpus_per_trial: 1}\n", "whole"),
                       trial_fn=_fake_trials.resource_trial, live=False)
    frame = ResultsStore(whole.folder).read()
    assert {json.loads(d)["gpu"] for d in frame["details"]} == {1.0}
    assert _max_overlap(frame) == 1  # two CPUs, but one GPU: one at a time


@pytest.mark.ray
def test_cuda_on_a_cluster_without_gpus_is_one_line_before_any_trial(tmp_path: Path) -> None:
    """A fresh local cluster (this machine has no GPU): the error names the config line."""
    path = _config(tmp_path, "resources: {device: cuda}\n", "cuda")
    script = ("from funcsearch.cli import main; import sys; sys.argv = ['funcsearch', 'search', %r, "
              "'--concurrency', '1']; main()" % str(path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr
    assert lines[-1].startswith("error: ") and "cuda.yaml:" in lines[-1] and "resources.device" in lines[-1]
    assert not (tmp_path / "results" / "cuda" / "trials").exists() or \
        not list((tmp_path / "results" / "cuda" / "trials").iterdir())


def test_device_and_precision_are_in_the_key_and_cpu_fp32_keys_are_unchanged(tmp_path: Path) -> None:
    base = parse_search_config(f"name: k\n{BODY}", "k.yaml")
    function = select_functions(base).functions[0]
    cpu = make_unit(base, function, "vit", {})
    cuda = make_unit(base, function, "vit", {}, device="cuda")
    bf16 = make_unit(parse_search_config(f"name: k\n{BODY}".replace(
        "{vit: {overrides: {epochs: 1, warmup_epochs: 0}}}", "{vit: {overrides: {epochs: 1, warmup_epochs: 0}, precision: bf16}}"), "k.yaml"),
        function, "vit", {})
    assert len({cpu.trials[0], cuda.trials[0], bf16.trials[0]}) == 3
    assert (cuda.device, bf16.precision) == ("cuda", "bf16")
    # the key of a CPU fp32 trial is the document it always hashed (no runtime entry, and no
    # alpha_gain at the 1.0, pool at the mean, mixup, cutmix and random erasing at the 0, and
    # no site kept at LayerNorm, that every trial before them ran with)
    added = ("alpha_gain", "pool", "mixup", "cutmix", "random_erase", "layernorm_sites")
    assert tuple(cpu.config[k] for k in added) == (1.0, "mean", 0.0, 0.0, 0.0, [])
    before = {k: v for k, v in cpu.config.items() if k not in added}
    legacy = digest({"function": function.expression, "shift": cpu.shift, "alpha_init": cpu.alpha_init,
                     "proxy": "vit", "config": before, "data": None, "seed": 0})
    assert cpu.trials[0] == legacy == trial_key(name=function.name, expression=function.expression,
                                                shift=cpu.shift, alpha_init=cpu.alpha_init, proxy="vit",
                                                seed=0, resolved_config=cpu.config, data=None)


def test_train_with_cuda_and_no_gpu_is_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "funcsearch.cli", "train", "--proxy", "vit", "--fn", "erf",
                           "--device", "cuda"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: --device: device cuda asked for, but torch sees no CUDA GPU here "
        f"(torch {__import__('torch').__version__}, CUDA build: no)"]
    assert done.stdout == ""


def test_make_trial_spec_refuses_cuda_without_a_gpu() -> None:
    from funcsearch.proxies import make_trial_spec

    with pytest.raises(InputError, match="--device: device cuda asked for"):
        make_trial_spec("vit", "erf", device="cuda")
