"""Which runs to do next, derived only from the stored rows (so resuming is automatic).

Without early stopping every trial is one full run. With it, a trial may be run several
times to growing epoch budgets; trials are deterministic (same seed and threads, same
numbers), so a run stopped at epoch ``b`` is exactly the first ``b`` epochs of the full
run and its per-epoch curve can be ranked:

1. **gate** (cheap early rejection): the first ``gate.seeds`` seeds of each candidate run
   ``gate.epochs`` epochs; a candidate that diverges there (an exploder) or misses a
   threshold (a non-learner) is rejected, and all its trials are recorded as pruned with
   the reason (a gate run that diverged keeps its ``diverged`` row: that is its result).
2. **successive halving** across candidates, per proxy: at each rung epoch every surviving
   candidate (all seeds) is ranked on the per-epoch metric averaged over seeds (seeds that
   diverged first count as worst) and the best ``1/reduction_factor`` continue.
3. survivors and baselines run in full. Baselines skip the gate and are never pruned.

:func:`schedule` is a pure function of the units and the rows, called again after every
finished run; nothing about early stopping is kept anywhere else.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from funcsearch.proxies.registry import is_screen
from funcsearch.search.config import EarlyStopping, GateConfig
from funcsearch.search.plan import Unit
from funcsearch.search.store import TrialRecord

Row = TrialRecord

STAGE_ORDER = {"gate": 0, "rung": 1, "final": 2}


@dataclass(frozen=True)
class RunRequest:
    """Run ``unit``'s trial with ``seed`` up to ``stop_epoch`` (None = in full)."""

    unit: Unit
    seed: int
    stop_epoch: int | None
    stage: str

    @property
    def trial_key(self) -> str:
        return self.unit.trials[self.seed]

    def priority(self) -> tuple[int, int]:
        """Cheap decisions first; baselines fill the gaps at the end."""
        return (3 if self.unit.function.is_baseline else STAGE_ORDER[self.stage], self.seed)


@dataclass(frozen=True)
class Decision:
    """A trial ended by early stopping, with the reason to record."""

    unit: Unit
    seed: int
    reason: str

    @property
    def trial_key(self) -> str:
        return self.unit.trials[self.seed]


@dataclass
class Schedule:
    requests: list[RunRequest] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    finished_units: list[Unit] = field(default_factory=list)   # every trial terminal
    eliminated_units: dict[str, str] = field(default_factory=dict)  # unit key -> reason


def curve_at(row: Row | None, epoch: int) -> dict[str, float] | None:
    """The per-epoch metrics of ``row`` at ``epoch`` (1-based), if that epoch was reached."""
    return None if row is None else row.curve_at(epoch)


def reached(row: Row | None, budget: int | None) -> bool:
    """Whether ``row`` already covers a run to ``budget`` epochs (None = the full run)."""
    if row is None:
        return False
    if row.status in ("diverged", "failed"):
        return True  # terminal: a deterministic rerun would diverge or fail again
    if row.stop_epoch is None:
        return row.status == "ok"
    return budget is not None and row.stop_epoch >= budget


def is_complete(row: Row | None) -> bool:
    """A full run finished, or a terminal outcome."""
    return reached(row, None)


def gate_verdict(row: Row, gate: GateConfig, proxy: str) -> str | None:
    """Why ``row`` fails the gate (None = passes)."""
    if row.status == "failed":
        return f"the gate run failed ({row.message or 'error'})"
    entry = curve_at(row, gate.epochs)
    if entry is None:
        if row.status == "diverged":
            where = f" at step {row.diverged_step}" if row.diverged_step is not None else ""
            return f"exploder: diverged{where} ({row.message or 'non-finite loss'})"
        return None
    for metric, bound in gate.require.get(proxy, {}).items():  # type: ignore[call-overload]
        value = entry.get(metric)
        if value is None:
            return f"metric {metric!r} is not reported per epoch by {proxy}"
        if bound.min is not None and value < bound.min:
            return f"non-learner: {metric} {value:.4g} < {bound.min:g} after epoch {gate.epochs}"
        if bound.max is not None and value > bound.max:
            return f"non-learner: {metric} {value:.4g} > {bound.max:g} after epoch {gate.epochs}"
    if gate.min_loss_drop is not None:
        first = curve_at(row, 1)
        if first is not None and gate.loss_metric in entry and gate.loss_metric in first:
            start, end = first[gate.loss_metric], entry[gate.loss_metric]
            drop = (start - end) / abs(start) if start else 0.0
            if drop < gate.min_loss_drop:
                return (f"non-learner: {gate.loss_metric} fell {100 * drop:.1f}% from epoch 1 to "
                        f"{gate.epochs} (< {100 * gate.min_loss_drop:.1f}%)")
    return None


def schedule(units: list[Unit], rows: Mapping[str, Row], early: EarlyStopping,
             metrics: Mapping[str, tuple[str, bool]]) -> Schedule:
    """The runs still needed and every early-stopping decision (see module docstring)."""
    out = Schedule()
    by_proxy: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        by_proxy[unit.proxy].append(unit)
    for proxy, group in by_proxy.items():
        _schedule_group(group, rows, early, metrics[proxy], out)
    eliminated = out.eliminated_units
    for unit in units:
        if unit.key in eliminated or all(is_complete(rows.get(k)) for k in unit.trials.values()):
            out.finished_units.append(unit)
    return out


def _schedule_group(group: list[Unit], rows: Mapping[str, Row], early: EarlyStopping,
                    metric: tuple[str, bool], out: Schedule) -> None:
    gate = early.gate if early.gate is not None and early.gate.enabled else None
    halving = early.halving if early.halving is not None and early.halving.enabled else None
    if group and is_screen(group[0].proxy):  # a screen's verdict is divergence, not a ranked score
        gate = halving = None
    competitors = [u for u in group if not u.function.is_baseline]
    for unit in group:
        if unit.function.is_baseline:
            _request_full(unit, rows, out)

    # 1. the gate
    passed: list[Unit] = []
    waiting = False
    for unit in competitors:
        if gate is None:
            passed.append(unit)
            continue
        verdict, pending = None, []
        for seed in unit.seeds[:gate.seeds]:
            row = rows.get(unit.trials[seed])
            if not reached(row, gate.epochs):
                pending.append(RunRequest(unit, seed, gate.epochs, "gate"))
                continue
            verdict = gate_verdict(row, gate, unit.proxy)  # type: ignore[arg-type]
            if verdict:
                verdict = f"gate (seed {seed}): {verdict}"
                break
        if verdict:
            _eliminate(unit, verdict, rows, out)
        elif pending:
            out.requests.extend(pending)
            waiting = True
        else:
            passed.append(unit)

    # 2. successive halving, rung by rung (a rung is ranked only when every competitor is there)
    alive = passed
    if halving is not None and alive:
        epochs = min(int(u.config["epochs"]) for u in group)
        name, higher = metric
        for budget in halving.rungs(epochs):
            missing = [RunRequest(u, s, budget, "rung") for u in alive for s in u.seeds
                       if not reached(rows.get(u.trials[s]), budget)]
            if missing or waiting:
                out.requests.extend(missing)
                return
            ranked = sorted(alive, key=lambda u: _rung_key(u, rows, budget, name, higher))
            keep = max(1, math.ceil(len(ranked) / halving.reduction_factor))
            for place, unit in enumerate(ranked[keep:], start=keep + 1):
                mean = _rung_mean(unit, rows, budget, name)
                shown = f"mean {mean:.4g}" if mean is not None else "no seed reached it"
                _eliminate(unit, f"successive halving: ranked {place} of {len(ranked)} on {name} "
                                 f"at epoch {budget} ({shown}); the best {keep} continued",
                           rows, out)
            alive = ranked[:keep]
    # 3. survivors run in full
    for unit in alive:
        _request_full(unit, rows, out)


def _request_full(unit: Unit, rows: Mapping[str, Row], out: Schedule) -> None:
    for seed, key in unit.trials.items():
        if not is_complete(rows.get(key)):
            out.requests.append(RunRequest(unit, seed, None, "final"))


def _eliminate(unit: Unit, reason: str, rows: Mapping[str, Row], out: Schedule) -> None:
    out.eliminated_units[unit.key] = reason
    for seed, key in unit.trials.items():
        row = rows.get(key)
        if row is not None and row.status in ("diverged", "failed", "ok") and is_complete(row):
            continue  # a real outcome stays as it is
        out.decisions.append(Decision(unit, seed, reason))


def _rung_values(unit: Unit, rows: Mapping[str, Row], budget: int, name: str) -> tuple[int, list[float]]:
    bad, values = 0, []
    for key in unit.trials.values():
        entry = curve_at(rows.get(key), budget)
        if entry is None or name not in entry or not math.isfinite(entry[name]):
            bad += 1
        else:
            values.append(float(entry[name]))
    return bad, values


def _rung_mean(unit: Unit, rows: Mapping[str, Row], budget: int, name: str) -> float | None:
    _, values = _rung_values(unit, rows, budget, name)
    return sum(values) / len(values) if values else None


def _rung_key(unit: Unit, rows: Mapping[str, Row], budget: int, name: str,
              higher: bool) -> tuple[int, float]:
    bad, values = _rung_values(unit, rows, budget, name)
    if not values:
        return bad, math.inf
    mean = sum(values) / len(values)
    return bad, -mean if higher else mean
