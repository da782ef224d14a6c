"""Results store: atomic per-trial rows, consolidation, the folder lock, stable keys."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funcsearch.search import run_search
from funcsearch.search.keys import trial_key
from funcsearch.search.store import ResultsStore, SearchLockedError, TrialRecord
from fixtures.rows import make_record


def row(key: str, status: str = "ok", score: float = 0.9, **extra: object) -> TrialRecord:
    extra.setdefault("metrics", {} if math.isnan(score) else {"test_acc": score})
    return make_record(key, candidate=f"c-{key}", status=status, score=score, **extra)


def test_rows_are_written_one_file_each_and_consolidated(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r")
    with store.locked():
        store.write(row("a"))
        store.write(row("b", status="diverged", score=math.nan, metrics={"test_loss": 2.5}))
        assert sorted(p.name for p in store.trials_dir.iterdir()) == ["a.parquet", "b.parquet"]
        store.write(row("a", score=0.7))  # a newer row of the same trial replaces the old one
        frame = store.read()
        assert sorted(frame["trial_key"]) == ["a", "b"]
        assert frame.set_index("trial_key").loc["a", "score"] == 0.7
        store.consolidate()
        assert not list(store.trials_dir.iterdir())
        store.write(row("c"))
    frame = ResultsStore(tmp_path / "r").read()
    assert sorted(frame["trial_key"]) == ["a", "b", "c"]
    b = frame.set_index("trial_key").loc["b"]
    assert b["status"] == "diverged" and math.isnan(b["score"]) and b["metric.test_loss"] == 2.5
    assert not [p for p in (tmp_path / "r").rglob("*.tmp")]


def test_writing_needs_the_lock(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        ResultsStore(tmp_path).write(row("a"))


def test_a_second_search_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom funcsearch.search.store import ResultsStore\n"
         f"with ResultsStore({str(tmp_path)!r}).locked():\n"
         "    print('locked', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(SearchLockedError) as info:
            with ResultsStore(tmp_path).locked():
                pass
        assert "another search is writing this results folder" in str(info.value)
        assert f"pid {holder.pid}" in str(info.value)
        # the search itself asks for the lock before it starts anything
        config = tmp_path / "locked.yaml"
        config.write_text(f"name: {tmp_path.name}\noutput: {tmp_path.parent}\nbaselines: [layernorm]\n"
                          "proxies: {vit: {}}\nseeds: [0]\n")
        with pytest.raises(SearchLockedError):
            run_search(config)
    finally:
        holder.kill()
        holder.wait()
    with ResultsStore(tmp_path).locked():  # the lock dies with its holder
        pass


def test_current_rows_follow_the_latest_plan(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    with store.locked():
        store.write(row("old"))
        store.write(row("new"))
        store.write_plan([{"trial_key": "new", "candidate": "renamed", "is_baseline": True}])
    current = store.read_current()
    assert list(current["trial_key"]) == ["new"]
    assert current.loc[0, "candidate"] == "renamed" and bool(current.loc[0, "is_baseline"])
    assert json.loads((tmp_path / "plan.json").read_text())[0]["trial_key"] == "new"


def test_trial_key_changes_with_what_changes_the_run_only() -> None:
    base = dict(name="erf", expression="erf(x)", shift="scalar", alpha_init=0.5, proxy="vit",
                seed=0, resolved_config={"epochs": 3, "lr": 0.001}, data=None)
    key = trial_key(**base)
    assert key == trial_key(**base) and len(key) == 16
    assert trial_key(**{**base, "name": "derf"}) == key                   # names are not identity
    assert trial_key(**{**base, "resolved_config": {"lr": 1e-3, "epochs": 3}}) == key
    for change in ({"seed": 1}, {"proxy": "dit"}, {"alpha_init": 1.0}, {"shift": "none"},
                   {"expression": "tanh(x)"}, {"resolved_config": {"epochs": 4, "lr": 0.001}},
                   {"data": "/d.npz"}, {"root_gradient": "finite-at-0"}):
        assert trial_key(**{**base, **change}) != key, change


def test_a_setting_added_later_keys_a_trial_only_away_from_the_value_earlier_trials_ran_with() -> None:
    """alpha_gain arrived after trials were stored: at 1.0 (what they ran with) their keys stand."""
    base = dict(name="erf", expression="erf(x)", shift="scalar", alpha_init=0.5, proxy="dit",
                seed=0, data=None)
    old = trial_key(**base, resolved_config={"epochs": 3})
    assert trial_key(**base, resolved_config={"epochs": 3, "alpha_gain": 1.0}) == old
    assert trial_key(**base, resolved_config={"epochs": 3, "alpha_gain": 2.0}) != old
    assert trial_key(**base, resolved_config={"epochs": 3, "pool": "mean"}) == old  # vit's pooling
    assert trial_key(**base, resolved_config={"epochs": 3, "pool": "cls"}) != old
    off = {"mixup": 0.0, "cutmix": 0.0, "random_erase": 0.0}  # vit's mixing and erasing, off
    assert trial_key(**base, resolved_config={"epochs": 3, **off}) == old
    for setting in off:
        assert trial_key(**base, resolved_config={"epochs": 3, **off, setting: 0.25}) != old
    assert trial_key(**base, resolved_config={"epochs": 3, "layernorm_sites": []}) == old  # every site f
    assert trial_key(**base, resolved_config={"epochs": 3, "layernorm_sites": ["final"]}) != old


def test_only_expressions_with_a_root_record_the_root_gradient_rule(tmp_path: Path) -> None:
    """The plan keys a root's trials with expressions.ROOT_GRADIENT (results stored before the
    rule are not reused under it); every other function keeps the key it always had."""
    from funcsearch.search.config import parse_search_config
    from funcsearch.search.plan import make_unit, select_functions

    config = parse_search_config("name: roots\nseeds: [0]\nproxies: {vit: {overrides: {epochs: 1, warmup_epochs: 0}}}\n"
                                 "candidates: {functions: [exproot, erf], require: []}\nbaselines: []\n",
                                 "roots.yaml")
    units = {f.name: make_unit(config, f, "vit", {}) for f in select_functions(config).functions}
    for name, unit in units.items():
        common = dict(name=name, expression=unit.function.expression, shift=unit.shift,
                      alpha_init=unit.alpha_init, proxy="vit", seed=0, resolved_config=unit.config,
                      data=unit.data)
        rooted = trial_key(**common, root_gradient="finite-at-0")
        assert unit.trials[0] == (rooted if name == "exproot" else trial_key(**common)), name


def test_rows_are_durable_even_if_the_writer_is_killed(tmp_path: Path) -> None:
    """A writer killed mid-stream leaves either the old row or the new one, never a torn file."""
    code = (
        "import sys\nsys.path.insert(0, %r)\nfrom test_search_store import row\n"
        "from funcsearch.search.store import ResultsStore\n"
        "store = ResultsStore(%r)\n"
        "with store.locked():\n"
        "    i = 0\n"
        "    while True:\n"
        "        store.write(row('k%%d' %% (i %% 5), score=i / 1e6)); i += 1\n"
    ) % (str(Path(__file__).parent), str(tmp_path))
    writer = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 30
    while len(list((tmp_path / "trials").glob("*.parquet"))) < 5 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    writer.kill()
    writer.wait()
    frame = ResultsStore(tmp_path).read()  # every file parses
    assert sorted(frame["trial_key"]) == [f"k{i}" for i in range(5)]


def test_a_per_trial_file_consolidated_during_a_read_is_read_again_not_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search consolidating while another process reads: the file vanishes between the glob
    and the read; the reader starts over and finds the row in trials.parquet."""
    import funcsearch.search.store as store_module

    store = ResultsStore(tmp_path)
    with store.locked():
        store.write(row("a"))
        store.write(row("b"))
    real = store_module._read_parquet
    vanished = []

    def racing(path: Path):
        if path.parent.name == "trials" and not vanished:
            vanished.append(path)
            with store.locked():
                store.consolidate()  # the other process wins the race
        return real(path)

    monkeypatch.setattr(store_module, "_read_parquet", racing)
    frame = store.read()
    assert vanished and sorted(frame["trial_key"]) == ["a", "b"]


def test_rows_are_scored_by_their_proxys_declared_primary_metric() -> None:
    """vit once ranked on test accuracy and now declares test loss: stored rows are re-read from
    the metrics they recorded (nothing retrained, one metric per study); a proxy that is not
    registered, or whose finished row lacks the metric, keeps its stored scores."""
    from fixtures.rows import make_frame, make_record

    from funcsearch.search.store import declared_scores

    def records(*rows: dict) -> list:
        return [make_record(**row) for row in rows]

    frame = make_frame(records(
        {"trial_key": "a", "proxy": "vit", "score": 0.9, "metrics": {"test_acc": 0.9, "test_loss": 0.3}},
        {"trial_key": "b", "proxy": "vit", "status": "diverged", "score": math.nan, "metrics": {}},
        {"trial_key": "c", "proxy": "elsewhere", "primary_metric": "acc", "score": 0.5, "metrics": {"acc": 0.5}},
        {"trial_key": "d", "proxy": "dit", "primary_metric": "fid", "higher_is_better": False, "score": 20.0,
         "metrics": {"fid": 20.0}},
    ))
    scored = declared_scores(frame).set_index("trial_key")
    assert (scored.loc["a", "primary_metric"], scored.loc["a", "score"], bool(scored.loc["a", "higher_is_better"])) \
        == ("test_loss", 0.3, False)
    assert scored.loc["b", "primary_metric"] == "test_loss" and math.isnan(scored.loc["b", "score"])
    assert (scored.loc["c", "primary_metric"], scored.loc["c", "score"]) == ("acc", 0.5)
    assert (scored.loc["d", "primary_metric"], scored.loc["d", "score"]) == ("fid", 20.0)
    unreadable = make_frame(records({"trial_key": "e", "proxy": "vit", "score": 0.8, "metrics": {"test_acc": 0.8}},
                                    {"trial_key": "f", "proxy": "vit", "score": 0.7,
                                     "metrics": {"test_acc": 0.7, "test_loss": 0.5}}))
    kept = declared_scores(unreadable)
    assert list(kept["primary_metric"]) == ["test_acc", "test_acc"] and list(kept["score"]) == [0.8, 0.7]
