"""The search on a real local Ray cluster (shared, session-scoped; see conftest.py).

End to end with the real proxies (tiny settings), failure handling with stand-in trials
(tests/_fake_trials.py), Optuna sweeps and early stopping, and resuming after SIGKILL.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from funcsearch.proxies.registry import PROXIES
from funcsearch.search import run_search
from funcsearch.search.store import ResultsStore

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TINY_VIT = "{epochs: 1, warmup_epochs: 0, dim: 16, depth: 1, heads: 2, batch_size: 128}"
TINY_DIT = ("{epochs: 1, warmup_epochs: 0, dim: 16, depth: 1, heads: 2, batch_size: 128, "
            "fid_samples: 100, sample_steps: 5}")


def write_config(tmp_path: Path, body: str, name: str = "t") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\noutput: {tmp_path / 'results'}\n{body}")
    return path


def fake(name: str):  # the stand-in trial functions live in tests/_fake_trials.py
    import _fake_trials

    return getattr(_fake_trials, name)


def test_tiny_search_end_to_end_then_resume_and_rerun_only_what_changed(ray_cluster: None,
                                                                         tmp_path: Path) -> None:
    body = ("candidates: {functions: [isru]}\nbaselines: [layernorm, derf]\n"
            f"proxies:\n  vit: {{overrides: {TINY_VIT}}}\n  dit: {{overrides: {TINY_DIT}}}\n"
            "seeds: [0, 1]\n")
    path = write_config(tmp_path, body)
    outcome = run_search(path, live=False)
    folder = tmp_path / "results" / "t"
    assert outcome.folder == folder and outcome.runs == 12
    frame = ResultsStore(folder).read()
    assert len(frame) == 12 and frame["trial_key"].is_unique
    assert set(frame["status"]) == {"ok"}, frame[["candidate", "proxy", "status", "message"]]
    assert sorted(set(frame["candidate"])) == ["derf", "isru", "layernorm"]
    for _, row in frame.iterrows():
        metrics, curve = json.loads(row["metrics"]), json.loads(row["curve"])
        assert math.isfinite(row["score"]) and row["score"] == metrics[row["primary_metric"]]
        assert len(curve) == 1 and curve[0]["epoch"] == 1
        assert json.loads(row["config"])["epochs"] == 1 and row["wall_time_s"] > 0
        assert {"torch", "ray", "optuna", "funcsearch"} <= set(json.loads(row["versions"]))
    dit = frame[frame["proxy"] == "dit"]
    assert set(dit["primary_metric"]) == {"fid"} and not dit["higher_is_better"].any()
    # the leaderboard files: one row per function and proxy, both proxies, the agreement
    csv = pd.read_csv(folder / "leaderboard.csv")
    assert len(csv) == 6 and set(csv["proxy"]) == {"vit", "dit"}
    assert set(csv[csv["kind"] == "baseline"]["candidate"]) == {"layernorm", "derf"}
    assert (csv["ok"] == 2).all() and csv["mean"].notna().all()
    md = (folder / "leaderboard.md").read_text()
    assert "## dit (fid, lower is better)" in md and "Spearman dit vs vit" in md
    # isru and erf only, with the learnable shift: the fidelity section says why there is no figure
    assert "- Fidelity vit: not measured on this study" in md
    assert outcome.leaderboard is not None and list(outcome.leaderboard.proxies) == ["dit", "vit"]

    again = run_search(path, live=False)  # resume: everything is stored, nothing is redone
    assert again.runs == 0 and len(ResultsStore(folder).read()) == 12

    changed = write_config(tmp_path, body.replace("sample_steps: 5", "sample_steps: 4"))
    third = run_search(changed, live=False)  # one dit setting changed: only dit reruns
    assert third.runs == 6
    after = ResultsStore(folder).read().set_index("trial_key")
    vit_before = frame[frame["proxy"] == "vit"].set_index("trial_key")
    assert (after.loc[vit_before.index, "started_at"] == vit_before["started_at"]).all()
    assert len(after) == 18 and len(ResultsStore(folder).read_current()) == 12


def test_a_trial_that_raises_is_failed_a_nan_trial_is_diverged_the_rest_finish(
        ray_cluster: None, tmp_path: Path) -> None:
    body = ("candidates: {functions: ['tanh(x)', 'sinh(x)', 'cosh(x)'], require: []}\n"
            "baselines: [layernorm]\nproxies: {vit: {overrides: {epochs: 2}}}\nseeds: [0, 1]\n")
    outcome = run_search(write_config(tmp_path, body), trial_fn=fake("fake_trial"), live=False)
    frame = outcome.frame.set_index(["candidate", "seed"])
    assert len(frame) == 8
    assert set(frame.loc["sinh(x)", "status"]) == {"failed"}
    assert frame.loc[("sinh(x)", 0), "message"].startswith("ValueError: boom: sinh(x)")
    assert set(frame.loc["cosh(x)", "status"]) == {"diverged"}
    assert frame.loc[("cosh(x)", 0), "message"] == f"non-finite {PROXIES['vit'].primary_metric} (nan)"
    assert set(frame.loc["tanh(x)", "status"]) == set(frame.loc["layernorm", "status"]) == {"ok"}
    assert (outcome.counts.ok, outcome.counts.failed, outcome.counts.diverged) == (4, 2, 2)
    board = outcome.leaderboard.proxies["vit"].set_index("candidate")
    assert board.loc["cosh(x)", "rank"] == 3 and math.isnan(board.loc["sinh(x)", "rank"])
    # a rerun retries the failures (a bug, not a result) and nothing else
    assert run_search(write_config(tmp_path, body), trial_fn=fake("fake_trial"), live=False).runs == 2


def test_sweep_uses_an_optuna_study_on_disk_and_reports_the_best_point(ray_cluster: None,
                                                                       tmp_path: Path) -> None:
    body = ("candidates: {functions: ['x/(1+abs(x))'], require: []}\nbaselines: [layernorm]\n"
            "proxies: {vit: {overrides: {epochs: 2}}}\nseeds: [0, 1]\n"
            "sweep: {params: {lr: {values: [0.001, 0.003]}, alpha_init: {values: [0.5, 1.0]}}}\n")
    outcome = run_search(write_config(tmp_path, body), trial_fn=fake("fake_trial"), live=False)
    assert outcome.runs == 2 * (4 + 2)  # 4 points for the candidate, 2 for layernorm (no alpha)
    frame = outcome.frame
    storage = JournalStorage(JournalFileBackend(str(outcome.folder / "optuna.journal")))
    studies = {s.study_name.split("|")[1]: s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert set(studies) == {"layernorm", "x/(1 + abs(x))"}
    study = optuna.load_study(study_name=studies["x/(1 + abs(x))"], storage=storage)
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    for trial in study.trials:  # each point's value is the mean over seeds in the store
        rows = frame[(frame["candidate"] == "x/(1 + abs(x))")
                     & (frame["hyperparameters"] == json.dumps(trial.params, sort_keys=True))]
        assert len(rows) == 2 and trial.value == pytest.approx(rows["score"].mean())
    best = outcome.leaderboard.proxies["vit"].set_index("candidate")
    assert json.loads(best.loc["x/(1 + abs(x))", "hyperparameters"])["lr"] == 0.003  # the fake likes 3e-3
    assert run_search(write_config(tmp_path, body), trial_fn=fake("fake_trial"), live=False).runs == 0


def test_gate_and_successive_halving_record_every_trial_once(ray_cluster: None, tmp_path: Path) -> None:
    names = ["tanh(x)", "x/(1+abs(x))", "2/pi*atan(x)", "erf(x/2)", "x/sqrt(1+x**2)", "atan(x)"]
    body = (f"candidates: {{functions: {json.dumps(names)}, require: []}}\nbaselines: [layernorm]\n"
            "proxies: {vit: {overrides: {epochs: 9}}}\nseeds: [0, 1]\n"
            "early_stopping:\n  gate: {epochs: 1, require: {vit: {test_acc: {min: 0.07}}}}\n"
            "  halving: {min_epochs: 1, reduction_factor: 3}\n")
    outcome = run_search(write_config(tmp_path, body), trial_fn=fake("fake_trial"), live=False)
    frame = outcome.frame
    assert len(frame) == 14 and frame["trial_key"].is_unique
    statuses = frame.groupby("candidate")["status"].agg(lambda s: "/".join(sorted(set(s))))
    assert statuses["layernorm"] == "ok"
    assert (statuses == "ok").sum() == 2  # the baseline and the one survivor of halving
    pruned = frame[frame["status"] == "pruned"]
    assert pruned["message"].str.match(r"^(gate \(seed 0\): non-learner|successive halving)").all()
    assert pruned["score"].isna().all()
    assert run_search(write_config(tmp_path, body), trial_fn=fake("fake_trial"), live=False).runs == 0


def test_resume_after_sigkill_loses_no_trial_and_runs_none_twice(ray_cluster: None,
                                                                 tmp_path: Path) -> None:
    import ray

    body = ("candidates: {functions: [isru, smoothsign]}\nbaselines: [layernorm, derf]\n"
            "proxies: {vit: {overrides: {epochs: 2, warmup_epochs: 0, dim: 16, depth: 1, heads: 2,"
            " batch_size: 64}}}\nseeds: [0, 1]\n")
    path = write_config(tmp_path, body)
    trials_dir = tmp_path / "results" / "t" / "trials"
    log = tmp_path / "search.log"
    search = subprocess.Popen(
        [sys.executable, "-m", "funcsearch.cli", "search", str(path), "--address",
         ray.get_runtime_context().gcs_address], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(trials_dir.glob("*.parquet"))) < 3:
        assert search.poll() is None, f"the search ended before it could be killed:\n{log.read_text()}"
        time.sleep(0.1)
    search.send_signal(signal.SIGKILL)
    search.wait()
    before = ResultsStore(tmp_path / "results" / "t").read().set_index("trial_key")
    assert 3 <= len(before) < 8
    outcome = run_search(path, live=False)  # the same command again
    after = ResultsStore(tmp_path / "results" / "t").read().set_index("trial_key")
    assert len(after) == 8 and after.index.is_unique and set(after["status"]) == {"ok"}
    assert outcome.runs == 8 - len(before)  # none run twice ...
    for column in ("started_at", "node", "wall_time_s"):  # ... and the stored ones untouched
        assert (after.loc[before.index, column] == before[column]).all()
    assert sorted(after.index) == sorted(p["trial_key"] for p in json.loads(
        (tmp_path / "results" / "t" / "plan.json").read_text()))


def test_a_study_reuses_finished_trials_of_a_sibling_search(ray_cluster: None, tmp_path: Path) -> None:
    proxies = f"proxies:\n  vit: {{overrides: {TINY_VIT}}}\nseeds: [0, 1]\nbaselines: []\n"
    first = write_config(tmp_path, "candidates: {functions: [isru, smoothsign], require: []}\n" + proxies, "first")
    assert run_search(first, trial_fn=fake("fake_trial"), live=False).runs == 4
    second = write_config(tmp_path, "candidates: {functions: [isru, erf], require: []}\n" + proxies, "second")
    outcome = run_search(second, trial_fn=fake("fake_trial"), live=False)
    assert outcome.runs == 2  # erf only: isru's two trials are copied from "first"
    frame = ResultsStore(tmp_path / "results" / "second").read()
    assert len(frame) == 4 and frame["trial_key"].is_unique
    copied = frame[frame["reused_from"] == "first"]
    assert len(copied) == 2 and set(copied["search"]) == {"second"}
    assert not frame["message"].fillna("").str.contains("reused").any()  # its own column, not a message
    alone = write_config(tmp_path, "reuse: false\ncandidates: {functions: [isru], require: []}\n" + proxies, "alone")
    assert run_search(alone, trial_fn=fake("fake_trial"), live=False).runs == 2
    # vit_screen is the vit task with other defaults: "first"'s vit runs at the screen's settings
    # (TINY_VIT plus the screen's lr and no clipping) are the screen's runs, copied as its own
    hot = write_config(tmp_path, "candidates: {functions: [isru, smoothsign], require: []}\n"
                       f"proxies:\n  vit: {{overrides: {TINY_VIT[:-1]}, lr: 8.5e-3, grad_clip: null}}}}\n"
                       "seeds: [0, 1]\nbaselines: []\n", "hot")
    assert run_search(hot, trial_fn=fake("fake_trial"), live=False).runs == 4
    screen = write_config(tmp_path, "candidates: {functions: [isru, smoothsign], require: []}\n"
                          f"proxies:\n  vit_screen: {{overrides: {TINY_VIT}}}\nseeds: [0, 1]\nbaselines: []\n",
                          "screen")
    assert run_search(screen, trial_fn=fake("fake_trial"), live=False).runs == 0
    frame = ResultsStore(tmp_path / "results" / "screen").read()
    assert len(frame) == 4 and set(frame["reused_from"]) == {"hot"} and set(frame["proxy"]) == {"vit_screen"}
    assert all(json.loads(o) == yaml.safe_load(TINY_VIT) for o in frame["overrides"])


def test_halving_continues_promoted_trials_from_their_rung_checkpoint(ray_cluster: None, tmp_path: Path) -> None:
    """Real vit trials: rung at half of 4 epochs; the survivor's full row equals a run that was
    never stopped, and no checkpoint is left behind."""
    from funcsearch.proxies import FunctionSpec, TrialSpec, run_trial

    overrides = "{epochs: 4, warmup_epochs: 0, dim: 16, depth: 1, heads: 2, batch_size: 128}"
    body = ("candidates: {functions: [isru, smoothsign, erf], require: []}\nbaselines: []\n"
            f"proxies: {{vit: {{overrides: {overrides}}}}}\nseeds: [0]\n"
            "early_stopping: {halving: {at: [0.5], reduction_factor: 3}}\n")
    outcome = run_search(write_config(tmp_path, body), live=False)
    frame = ResultsStore(outcome.folder).read()
    survivor = frame[frame["status"] == "ok"]
    assert len(survivor) == 1 and (frame["status"] == "pruned").sum() == 2
    row = survivor.iloc[0]
    full = run_trial(TrialSpec(proxy="vit", seed=0, overrides=json.loads(row["config"]),
                               function=FunctionSpec(name=row["candidate"], expression=row["expression"])))
    assert json.loads(row["curve"]) == full.curve and row["score"] == full.metrics[PROXIES["vit"].primary_metric]
    assert not list((outcome.folder / "checkpoints").glob("*.pt"))
