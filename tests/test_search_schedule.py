"""Early stopping decisions (gate, successive halving) derived from stored rows only."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from funcsearch.search.config import EarlyStopping, GateConfig, HalvingConfig
from funcsearch.search.plan import FunctionEntry, Unit
from funcsearch.search.schedule import schedule
from funcsearch.search.store import TrialRecord

from fixtures.rows import make_record

METRICS = {"vit": ("test_acc", True)}


def unit(name: str, *, baseline: bool = False, seeds: tuple[int, ...] = (0, 1), epochs: int = 9) -> Unit:
    function = FunctionEntry(name, None if baseline else f"{name}(x)", "scalar", 0.5, baseline)
    return Unit(key=f"u-{name}", function=function, proxy="vit", hyperparameters={}, overrides={},
                shift="scalar", alpha_init=0.5, config={"epochs": epochs}, data=None,
                trials={s: f"{name}-{s}" for s in seeds}, primary_metric="test_acc",
                higher_is_better=True)


def run(accuracy: list[float], *, stop: int | None, status: str | None = None,
        **fields: Any) -> TrialRecord:
    """A stored trial whose curve has one test_acc per epoch."""
    curve = [{"epoch": float(i + 1), "test_acc": a, "train_loss": 2.0 - a} for i, a in enumerate(accuracy)]
    return make_record("t", status=status or ("ok" if stop is None else "pruned"), stop_epoch=stop,
                       epochs_done=len(curve), curve=curve, metrics={},
                       score=accuracy[-1] if stop is None and accuracy else float("nan"), **fields)


def keys(requests: list[Any]) -> set[tuple[str, int | None]]:
    return {(r.trial_key, r.stop_epoch) for r in requests}


def test_without_early_stopping_every_trial_runs_in_full_once() -> None:
    units = [unit("a"), unit("b", baseline=True)]
    plan = schedule(units, {}, EarlyStopping(), METRICS)
    assert keys(plan.requests) == {("a-0", None), ("a-1", None), ("b-0", None), ("b-1", None)}
    done = {k: run([0.5], stop=None) for k in ("a-0", "a-1", "b-0")}
    plan = schedule(units, done, EarlyStopping(), METRICS)
    assert keys(plan.requests) == {("b-1", None)}
    assert [u.key for u in plan.finished_units] == ["u-a"]


def test_gate_rejects_exploders_and_non_learners_and_lets_learners_through() -> None:
    gate = EarlyStopping(gate=GateConfig(epochs=2, require={"vit": {"test_acc": {"min": 0.3}}}))
    units = [unit("good"), unit("slow"), unit("boom"), unit("base", baseline=True)]
    plan = schedule(units, {}, gate, METRICS)
    # the gate runs the first seed of each candidate for 2 epochs; baselines skip it
    assert keys(plan.requests) == {("good-0", 2), ("slow-0", 2), ("boom-0", 2),
                                   ("base-0", None), ("base-1", None)}
    rows = {"good-0": run([0.2, 0.5], stop=2), "slow-0": run([0.1, 0.2], stop=2),
            "boom-0": run([0.2], stop=2, status="diverged", diverged_step=70,
                       message="non-finite training loss (nan)")}
    plan = schedule(units, rows, gate, METRICS)
    assert keys(plan.requests) >= {("good-0", None), ("good-1", None)}
    reasons = {d.trial_key: d.reason for d in plan.decisions}
    assert reasons["slow-0"] == "gate (seed 0): non-learner: test_acc 0.2 < 0.3 after epoch 2"
    assert reasons["slow-1"] == reasons["slow-0"]
    assert reasons["boom-1"].startswith("gate (seed 0): exploder: diverged at step 70")
    assert "boom-0" not in reasons  # its diverged row is the result and stays
    assert set(plan.eliminated_units) == {"u-slow", "u-boom"}


def test_gate_loss_drop_catches_a_flat_loss() -> None:
    gate = EarlyStopping(gate=GateConfig(epochs=3, min_loss_drop=0.1))
    flat = run([0.1, 0.1, 0.11], stop=3)
    plan = schedule([unit("flat")], {"flat-0": flat}, gate, METRICS)
    assert "non-learner: train_loss fell 0.5% from epoch 1 to 3 (< 10.0%)" in plan.decisions[0].reason


def test_successive_halving_ranks_all_at_each_rung_and_keeps_the_best_third() -> None:
    halving = EarlyStopping(halving=HalvingConfig(min_epochs=1, reduction_factor=3))
    names = ["a", "b", "c", "d", "e", "f"]
    units = [unit(n) for n in names] + [unit("base", baseline=True)]
    plan = schedule(units, {}, halving, METRICS)
    assert keys(plan.requests) == {(f"{n}-{s}", 1) for n in names for s in (0, 1)} | {
        ("base-0", None), ("base-1", None)}
    # rung 1 (epoch 1) reached by all but one trial: no decision yet
    quality = dict(zip(names, [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]))
    rows = {f"{n}-{s}": run([q + 0.01 * s], stop=1) for n, q in quality.items() for s in (0, 1)}
    partial = {k: v for k, v in rows.items() if k != "f-1"}
    assert not schedule(units, partial, halving, METRICS).decisions
    plan = schedule(units, rows, halving, METRICS)
    assert set(plan.eliminated_units) == {"u-c", "u-d", "u-e", "u-f"}
    assert {d.reason for d in plan.decisions if d.unit.key == "u-c"} == {
        "successive halving: ranked 3 of 6 on test_acc at epoch 1 (mean 0.405); the best 2 continued"}
    assert keys(plan.requests) == {("a-0", 3), ("a-1", 3), ("b-0", 3), ("b-1", 3),
                                   ("base-0", None), ("base-1", None)}
    # rung 2 (epoch 3): b overtakes a; one survivor runs in full
    rows.update({f"a-{s}": run([0.6, 0.6, 0.61], stop=3) for s in (0, 1)})
    rows.update({f"b-{s}": run([0.5, 0.7, 0.8], stop=3) for s in (0, 1)})
    plan = schedule(units, rows, halving, METRICS)
    assert "u-a" in plan.eliminated_units and "u-b" not in plan.eliminated_units
    assert keys(plan.requests) == {("b-0", None), ("b-1", None), ("base-0", None), ("base-1", None)}


def test_halving_puts_seeds_that_diverged_last() -> None:
    halving = EarlyStopping(halving=HalvingConfig(min_epochs=1, reduction_factor=2))
    units = [unit("good"), unit("great_but_unstable")]
    rows = {"good-0": run([0.5], stop=1), "good-1": run([0.5], stop=1),
            "great_but_unstable-0": run([0.9], stop=1),
            "great_but_unstable-1": run([], stop=None, status="diverged")}
    plan = schedule(units, rows, halving, METRICS)
    assert set(plan.eliminated_units) == {"u-great_but_unstable"}
    # the diverged trial keeps its row: only the truncated one is recorded as pruned
    assert [d.trial_key for d in plan.decisions] == ["great_but_unstable-0"]


def test_decisions_are_rederived_from_rows_so_a_rerun_resumes() -> None:
    halving = EarlyStopping(halving=HalvingConfig(min_epochs=1, reduction_factor=2))
    units = [unit("a", seeds=(0,)), unit("b", seeds=(0,))]
    rows = {"a-0": run([0.9, 0.9, 0.9], stop=None), "b-0": run([0.1], stop=1)}
    # the full run of 'a' holds its rung values in its curve: nothing is rerun
    plan = schedule(units, rows, halving, METRICS)
    assert not plan.requests and set(plan.eliminated_units) == {"u-b"}
    assert {u.key for u in plan.finished_units} == {"u-a", "u-b"}


def test_halving_defaults_to_one_rung_at_a_third_keeping_a_quarter() -> None:
    """The measured placement (benchmarks/halving_study.py) unless a config places rungs:
    epoch 9 of vit's 28, 10 of dit's 30, 3 of lm's 10."""
    assert HalvingConfig().rungs(28) == [9] and HalvingConfig().reduction_factor == 4
    assert HalvingConfig().rungs(30) == [10] and HalvingConfig().rungs(10) == [3]
    assert HalvingConfig().rungs(1) == []  # no rung below a one-epoch run
    assert HalvingConfig(min_epochs=1, reduction_factor=3).rungs(28) == [1, 3, 9, 27]
    assert HalvingConfig(at=[0.5, 0.1]).rungs(10) == [1, 5]
    units = [unit(n, epochs=8) for n in "abcdefgh"]
    plan = schedule(units, {}, EarlyStopping(halving=HalvingConfig()), METRICS)
    assert {r.stop_epoch for r in plan.requests} == {3}  # round(8 / 3)


def test_halving_refuses_two_placements() -> None:
    with pytest.raises(ValidationError, match="either at .* or min_epochs"):
        HalvingConfig(at=[0.5], min_epochs=2)


def test_runs_go_function_by_function_across_proxies() -> None:
    """A search stopped early holds every proxy of the functions it reached (whole rows for the
    aggregate), seed by seed, baselines last: not all of one proxy before the next."""
    from funcsearch.search.runner import run_order

    def on(proxy: str, name: str, baseline: bool = False) -> Unit:
        base = unit(name, baseline=baseline)
        return Unit(**{**base.__dict__, "key": f"{proxy}-{name}", "proxy": proxy,
                       "trials": {s: f"{proxy}-{name}-{s}" for s in (0, 1)}})

    plan_order = [on(p, n, n == "ln") for n in ("ln", "a", "b") for p in ("vit", "dit")]
    units = {u.key: u for u in plan_order}
    metrics = {"vit": ("test_acc", True), "dit": ("fid", False)}
    requests = schedule(list(reversed(plan_order)), {}, EarlyStopping(), metrics).requests
    assert [r.trial_key for r in run_order(requests, units)] == [
        "vit-a-0", "dit-a-0", "vit-b-0", "dit-b-0", "vit-a-1", "dit-a-1", "vit-b-1", "dit-b-1",
        "vit-ln-0", "dit-ln-0", "vit-ln-1", "dit-ln-1"]


def test_a_stability_screen_runs_every_trial_in_full_whatever_the_early_stopping() -> None:
    """A screen's verdict is divergence, which neither a gate nor a rung's ranking judges."""
    early = EarlyStopping(gate=GateConfig(epochs=2, require={"vit_screen": {"test_acc": {"min": 0.3}}}),
                          halving=HalvingConfig(min_epochs=1, reduction_factor=3))
    units = [Unit(**{**vars(unit(n)), "key": f"s-{n}", "proxy": "vit_screen"}) for n in "abcdef"]
    plan = schedule(units, {}, early, {"vit_screen": ("test_acc", True)})
    assert keys(plan.requests) == {(f"{n}-{s}", None) for n in "abcdef" for s in (0, 1)}
    assert not plan.decisions
