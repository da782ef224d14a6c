"""Per-candidate sweeps: one small Optuna study per (function, proxy), stored on disk.

Each Optuna trial is one hyperparameter point, i.e. one unit whose seeds are the search's
seeds; its value is the mean primary metric over the seeds that finished ok. A grid
(every param lists ``values``) is enqueued in full up front; ``tpe`` / ``random`` ask
points ``parallel`` at a time and learn from the told values. The study lives in
``optuna.journal`` in the results folder, so a rerun continues it (points asked by a
killed search are re-adopted). Optuna cannot record a diverged point faithfully (it
becomes ``FAIL``) nor a pruned one's partial curve: the results store stays the source of
truth and the leaderboard reports the best point from it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from funcsearch.search.config import FUNCTION_FIELDS, SearchConfig
from funcsearch.search.plan import FunctionEntry, Unit, make_unit, study_name, sweep_proxies

_DONE = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


class Sweeper:
    """Makes the units of a search: one per function and proxy, or one per sweep point."""

    def __init__(self, config: SearchConfig, functions: list[FunctionEntry], folder: Path,
                 device: str = "cpu") -> None:
        self.config = config
        self.device = device
        self.functions = functions
        self.folder = folder
        self.swept = set(sweep_proxies(config))
        self._storage: Any = None
        self.studies: dict[str, optuna.Study] = {}
        self.open: dict[str, list[tuple[str, int]]] = {}   # unit key -> (study, trial number)
        self.asked: dict[str, int] = {}                     # study -> points asked so far
        self.sequential: dict[str, tuple[FunctionEntry, str]] = {}

    @property
    def storage(self) -> Any:
        if self._storage is None:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._storage = JournalStorage(JournalFileBackend(str(self.folder / "optuna.journal")))
        return self._storage

    def params_for(self, function: FunctionEntry) -> dict[str, Any]:
        """Swept params that mean something to ``function`` (LayerNorm has no alpha)."""
        assert self.config.sweep is not None
        params = dict(self.config.sweep.params)
        if function.is_norm:
            params = {k: v for k, v in params.items() if k not in FUNCTION_FIELDS}
        elif not function.sweeps_shift:
            params.pop("shift", None)
        return params

    def initial_units(self) -> list[Unit]:
        units: list[Unit] = []
        for function in self.functions:
            for proxy in self.config.proxies:
                params = self.params_for(function) if proxy in self.swept else {}
                if not params:
                    units.append(make_unit(self.config, function, proxy, {}, self.device))
                else:
                    units.extend(self._start_study(function, proxy, params))
        return _unique(units)

    # -- studies -----------------------------------------------------------------------------
    def _distributions(self, params: dict[str, Any]) -> dict[str, BaseDistribution]:
        out: dict[str, BaseDistribution] = {}
        for name, p in params.items():
            if p.values is not None:
                out[name] = CategoricalDistribution(list(p.values))
            else:
                out[name] = FloatDistribution(p.low, p.high, log=p.log)
        return out

    def _start_study(self, function: FunctionEntry, proxy: str, params: dict[str, Any]) -> list[Unit]:
        sweep = self.config.sweep
        assert sweep is not None
        name = study_name(self.config, function, proxy)
        higher = make_unit(self.config, function, proxy, {}, self.device).higher_is_better
        sampler: optuna.samplers.BaseSampler
        if sweep.sampler == "random":
            sampler = optuna.samplers.RandomSampler(seed=sweep.seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=sweep.seed)
        study = optuna.create_study(study_name=name, storage=self.storage, sampler=sampler,
                                    direction="maximize" if higher else "minimize",
                                    load_if_exists=True)
        self.studies[name] = study
        units: list[Unit] = []
        existing = study.get_trials(deepcopy=False)
        for trial in existing:  # points of an earlier run of this search
            unit = make_unit(self.config, function, proxy, dict(trial.params), self.device)
            units.append(self._link(unit, name, trial.number))
            if trial.state in _DONE:
                self.open[unit.key].remove((name, trial.number))
        self.asked[name] = len(existing)
        distributions = self._distributions(params)
        if sweep.sampler == "grid":
            taken = {_point_id(t.params) for t in existing}
            for values in itertools.product(*(p.values for p in params.values())):
                point = dict(zip(params, values))
                if _point_id(point) in taken:
                    continue
                study.enqueue_trial(point)
                units.append(self._ask(name, function, proxy, distributions))
        else:
            self.sequential[name] = (function, proxy)
            units.extend(self._ask_more(name))
        return units

    def _ask(self, name: str, function: FunctionEntry, proxy: str,
             distributions: dict[str, BaseDistribution]) -> Unit:
        trial = self.studies[name].ask(distributions)
        self.asked[name] += 1
        return self._link(make_unit(self.config, function, proxy, dict(trial.params), self.device), name, trial.number)

    def _ask_more(self, name: str) -> list[Unit]:
        sweep = self.config.sweep
        assert sweep is not None and sweep.n_trials is not None
        function, proxy = self.sequential[name]
        distributions = self._distributions(self.params_for(function))
        running = sum(1 for links in self.open.values() for s, _ in links if s == name)
        units = []
        while self.asked[name] < sweep.n_trials and running < sweep.parallel:
            units.append(self._ask(name, function, proxy, distributions))
            running += 1
        return units

    def _link(self, unit: Unit, study: str, number: int) -> Unit:
        unit.study, unit.optuna_number = study, number
        self.open.setdefault(unit.key, []).append((study, number))
        return unit

    # -- results -----------------------------------------------------------------------------
    def tell(self, unit: Unit, value: float | None, pruned: bool) -> list[Unit]:
        """Report a finished unit to its studies; return new units asked in its place."""
        new: list[Unit] = []
        for name, number in self.open.pop(unit.key, []):
            study = self.studies[name]
            if pruned:
                study.tell(number, state=TrialState.PRUNED)
            elif value is None:
                study.tell(number, state=TrialState.FAIL)
            else:
                study.tell(number, value)
            if name in self.sequential:
                new.extend(self._ask_more(name))
        return new

    def is_open(self, unit: Unit) -> bool:
        return bool(self.open.get(unit.key))


def _point_id(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _unique(units: list[Unit]) -> list[Unit]:
    seen: dict[str, Unit] = {}
    for unit in units:
        seen.setdefault(unit.key, unit)
    return list(seen.values())
