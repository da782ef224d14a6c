"""Run a search on Ray: plan the trials, schedule runs, store every result as it lands.

``run_search(config)`` (or ``funcsearch search CONFIG``):

1. selects the functions (baselines, candidates filtered by their properties) and makes
   the units (function x proxy x sweep point), see :mod:`.plan` and :mod:`.sweep`;
2. takes the results folder's lock and reads what is stored: finished trials are never
   run again (failed ones are: a failure is a bug or a broken input, not a result);
3. connects to Ray (a local cluster it starts, sized to the concurrency, or ``--address``)
   and keeps ``concurrency`` runs in flight, each with ``cpus_per_trial`` CPUs and
   ``threads_per_trial`` torch threads. A run whose worker or node dies is retried by Ray
   (``max_retries``); a run that raises comes back as ``failed`` with the message;
4. writes each finished run to the store at once (atomic), asks :func:`.schedule.schedule`
   what to run next (early stopping), and tells Optuna sweeps their points' values;
5. at the end consolidates the store and writes ``leaderboard.md`` / ``.csv``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from rich.console import Console

from funcsearch.errors import FuncsearchError, InputError
from funcsearch.search.config import SearchConfig, load_search_config
from funcsearch.search.keys import digest
from funcsearch.search.plan import (FunctionSelection, Unit, check_sweep_params, epoch_metric,
                                    hyperparameters_json, resolve_proxy_config, select_functions)
from funcsearch.search.progress import Counts, SearchProgress
from funcsearch.search.schedule import Decision, RunRequest, is_complete, schedule
from funcsearch.search.store import ResultsStore
from funcsearch.search.sweep import Sweeper

TrialFunction = Callable[..., Any]  # (TrialSpec, on_epoch, threads) -> TrialResult


@dataclass
class SearchOutcome:
    """What a search did: its folder, its trials (current plan) and the leaderboard."""

    folder: Path
    frame: pd.DataFrame
    counts: Counts
    runs: int                     # runs executed by this invocation
    wall_time_s: float
    dropped: list[tuple[str, str]] = field(default_factory=list)
    leaderboard: Any = None


# -- the Ray task ------------------------------------------------------------------------------

@ray.remote
def _execute(trial_fn: TrialFunction | None, spec: dict[str, Any], stop_epoch: int | None,
             threads: int) -> dict[str, Any]:
    """One run on a worker: never raises for a trial's own exception (-> ``failed``)."""
    import torch

    from funcsearch.proxies import TrialSpec

    torch.set_num_threads(threads)
    started = _now()
    clock = time.perf_counter()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        return stop_epoch is not None and epoch >= stop_epoch

    try:
        if trial_fn is None:
            from funcsearch.proxies import run_trial as trial_fn  # noqa: PLW0127
        result = trial_fn(TrialSpec.model_validate(spec), on_epoch, threads)
        out = result.model_dump() if hasattr(result, "model_dump") else dict(result)
    except Exception as exc:  # a bug or a bad input: recorded, the search goes on
        out = {"status": "failed", "message": _describe(exc), "metrics": {}, "curve": [],
               "diverged_step": None, "wall_time_s": time.perf_counter() - clock,
               "config": {}, "versions": {}}
    out["started_at"] = started
    out["finished_at"] = _now()
    node = ray.get_runtime_context().get_node_id()
    out["node"] = f"{socket.gethostname()} pid {os.getpid()} node {node[:8]}"
    return out


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"[:1000]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# -- Ray connection -----------------------------------------------------------------------------

def connect(address: str | None, concurrency: int | None, cpus_per_trial: float) -> tuple[bool, int, str]:
    """Connect to Ray; return (we started it, concurrency, description)."""
    if ray.is_initialized():
        owned, where = False, "the Ray cluster already connected"
    elif address:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            cause = str(exc.__cause__ or "")
            if "Authentication" in cause or "auth" in text.lower():
                text += " (a cluster started with `ray start` uses token authentication: " \
                        "set RAY_AUTH_MODE=token for this command too)"
            raise InputError(f"cannot connect to Ray at {address}: {text}", field="--address") from None
        owned, where = False, f"Ray cluster at {address}"
    else:
        wanted = concurrency or os.cpu_count() or 1
        ray.init(address="local", num_cpus=max(1, math.ceil(wanted * cpus_per_trial)),
                 include_dashboard=False, log_to_driver=False)
        owned, where = True, "local Ray cluster"
    cpus = float(ray.cluster_resources().get("CPU", 1))
    chosen = concurrency or max(1, int(cpus // cpus_per_trial))
    return owned, chosen, f"{where} ({cpus:g} CPUs)"


# -- rows ----------------------------------------------------------------------------------------

def _decode(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row with its JSON curve parsed and missing numbers as None."""
    out = dict(row)
    curve = out.get("curve")
    out["curve"] = json.loads(curve) if isinstance(curve, str) and curve else (curve or [])
    for name in ("stop_epoch", "diverged_step", "epochs_done"):
        value = out.get(name)
        out[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
    return out


def _row(config: SearchConfig, unit: Unit, seed: int, stop_epoch: int | None,
         result: dict[str, Any], extra_versions: dict[str, str]) -> dict[str, Any]:
    """The store row of one finished run."""
    status, message = result["status"], result.get("message")
    raw = {k: float(v) for k, v in (result.get("metrics") or {}).items()}
    metrics = {k: v for k, v in raw.items() if math.isfinite(v)}
    curve = result.get("curve") or []
    if status == "ok" and unit.primary_metric not in metrics:  # a NaN result is a divergence
        status = "diverged"
        message = (f"non-finite {unit.primary_metric} ({raw[unit.primary_metric]})"
                   if unit.primary_metric in raw else f"no {unit.primary_metric} reported")
    score = metrics.get(unit.primary_metric) if status == "ok" else None
    row: dict[str, Any] = {
        "trial_key": unit.trials[seed],
        "unit_key": unit.key,
        "search": config.name,
        "candidate": unit.function.name,
        "expression": unit.function.expression,
        "names": json.dumps(list(unit.function.names or (unit.function.name,))),
        "family": unit.function.family,
        "is_baseline": unit.function.is_baseline,
        "proxy": unit.proxy,
        "seed": seed,
        "shift": unit.shift,
        "alpha_init": unit.alpha_init,
        "hyperparameters": hyperparameters_json(unit.hyperparameters),
        "overrides": json.dumps(unit.overrides, sort_keys=True),
        "status": status,
        "message": message,
        "stop_epoch": stop_epoch if status == "pruned" else None,
        "epochs_done": len(curve),
        "primary_metric": unit.primary_metric,
        "higher_is_better": unit.higher_is_better,
        "score": math.nan if score is None else score,
        "metrics": json.dumps(metrics, sort_keys=True),
        "curve": json.dumps(curve),
        "diverged_step": result.get("diverged_step"),
        "wall_time_s": float(result.get("wall_time_s") or 0.0),
        "cpu_time_s": (result.get("details") or {}).get("cpu_time_s"),
        "details": json.dumps(result.get("details") or {}, sort_keys=True, default=str),
        "node": result.get("node"),
        "started_at": result.get("started_at"),
        "finished_at": result.get("finished_at") or _now(),
        "versions": json.dumps({**(result.get("versions") or {}), **extra_versions}, sort_keys=True),
        "config": json.dumps(result.get("config") or unit.config, sort_keys=True),
        "config_hash": digest(unit.config),
        "search_config_hash": config.hash(),
    }
    row.update({f"metric.{k}": v for k, v in metrics.items()})
    return row


def _decision_row(config: SearchConfig, decision: Decision, stored: dict[str, Any] | None,
                  extra_versions: dict[str, str]) -> dict[str, Any] | None:
    """Row recording that early stopping ended a trial (None if already recorded)."""
    if stored is not None:
        if stored["status"] == "pruned" and stored.get("message") == decision.reason:
            return None
        row = {k: v for k, v in stored.items() if not k.startswith("_")}
        row["curve"] = json.dumps(stored["curve"])
        row.update(status="pruned", message=decision.reason, score=math.nan,
                   finished_at=row.get("finished_at") or _now())
        return row
    empty = {"status": "pruned", "message": decision.reason, "metrics": {}, "curve": [],
             "wall_time_s": 0.0, "config": decision.unit.config}
    row = _row(config, decision.unit, decision.seed, 0, empty, extra_versions)
    row["stop_epoch"] = 0
    return row


def _extra_versions() -> dict[str, str]:
    import optuna
    import pyarrow

    return {"ray": ray.__version__, "optuna": optuna.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__}


# -- the search -----------------------------------------------------------------------------------

def run_search(config: SearchConfig | str | Path, *, address: str | None = None,
               output: str | Path | None = None, concurrency: int | None = None,
               trial_fn: TrialFunction | None = None, console: Console | None = None,
               live: bool | None = None, write_leaderboard: bool = True) -> SearchOutcome:
    """Run (or resume) a search; see the module docstring. ``trial_fn`` replaces ``run_trial``."""
    if not isinstance(config, SearchConfig):
        config = load_search_config(config)
    console = console or Console()
    start = time.monotonic()

    selection = select_functions(config)
    check_sweep_params(config)
    metrics = {proxy: epoch_metric(config, proxy) for proxy in config.proxies}
    for proxy in config.proxies:  # bad overrides are reported before anything starts
        resolve_proxy_config(config, proxy, {}, ("proxies", proxy, "overrides"))
    store = ResultsStore(config.results_folder(output))
    with store.locked():
        sweeper = Sweeper(config, selection.functions, store.folder)
        units = {u.key: u for u in sweeper.initial_units()}
        owned, width, where = connect(address or config.ray.address,
                                      concurrency or config.resources.concurrency,
                                      config.resources.cpus_per_trial)
        try:
            runs = _search_loop(config, selection, store, sweeper, units, metrics, width, where,
                                trial_fn, console, live)
        finally:
            if owned:
                ray.shutdown()
        store.consolidate()
        plan_keys = {p["trial_key"] for p in store.read_plan() or []}
        current = store.read_current()
        counts = Counts(total=len(plan_keys))
        for status in current["status"]:
            setattr(counts, status, getattr(counts, status) + 1)
        board = None
        if write_leaderboard and len(current):
            from funcsearch.fidelity import fidelity_lines
            from funcsearch.leaderboard import leaderboard

            board = leaderboard(current)
            board.title = config.name
            board.fidelity = fidelity_lines(current)
            store.write_text("leaderboard.md", board.render("md"))
            store.write_text("leaderboard.csv", board.render("csv"))
    return SearchOutcome(store.folder, current, counts, runs, time.monotonic() - start,
                         selection.dropped, board)


def _search_loop(config: SearchConfig, selection: FunctionSelection, store: ResultsStore,
                 sweeper: Sweeper, units: dict[str, Unit], metrics: dict[str, tuple[str, bool]],
                 width: int, where: str, trial_fn: TrialFunction | None, console: Console,
                 live: bool | None) -> int:
    versions = _extra_versions()
    _write_plan(config, store, units)

    rows = {r["trial_key"]: _decode(r) for r in store.read().to_dict("records")}
    rows = {k: r for k, r in rows.items() if r["status"] != "failed"}  # failures are retried
    planned = {k for u in units.values() for k in u.trials.values()}
    reused = _reuse_sibling_trials(config, store, planned, rows)
    stored = sum(1 for k in planned if is_complete(rows.get(k)))
    n_candidates = sum(1 for f in selection.functions if not f.is_baseline)
    console.print(
        f"[bold]{config.name}[/]: {len(selection.functions) - n_candidates} baselines + "
        f"{n_candidates} candidates"
        + (f" ({len(selection.dropped)} left out)" if selection.dropped else "")
        + f" x {len(config.proxies)} proxies x {len(config.seeds)} seeds -> {len(planned)} trials, "
        f"{stored} already stored" + (f" ({reused} reused from sibling searches)" if reused else "")
        + f"; {where}, {width} at a time; results in {store.folder}",
        highlight=False)
    for name, reason in selection.dropped[:10]:
        console.print(f"  left out {name}: {reason}", highlight=False, style="dim")
    if len(selection.dropped) > 10:
        console.print(f"  ... and {len(selection.dropped) - 10} more left out", style="dim")

    resources = config.resources
    remote = _execute.options(num_cpus=resources.cpus_per_trial, max_retries=resources.max_retries,
                              retry_exceptions=False)
    fn_ref = ray.put(trial_fn) if trial_fn is not None else None
    in_flight: dict[Any, tuple[RunRequest, str]] = {}
    failed_now: set[str] = set()
    progress = SearchProgress(console, config.name, width, live=live)
    try:
        with progress:
            _loop(config, store, sweeper, units, rows, metrics, width, remote, fn_ref, in_flight,
                  failed_now, versions, progress)
    except BaseException:
        for ref in in_flight:  # on an existing cluster the runs would go on, unrecorded
            ray.cancel(ref, force=True)
        raise
    return progress.runs


def _loop(config: SearchConfig, store: ResultsStore, sweeper: Sweeper, units: dict[str, Unit],
          rows: dict[str, dict[str, Any]], metrics: dict[str, tuple[str, bool]], width: int,
          remote: Any, fn_ref: Any, in_flight: dict[Any, tuple[RunRequest, str]],
          failed_now: set[str], versions: dict[str, str], progress: SearchProgress) -> None:
    """Schedule, submit, wait, store; until nothing is left to run."""
    resources = config.resources
    while True:
        plan = schedule(list(units.values()), rows, config.early_stopping, metrics)
        for decision in plan.decisions:
            row = _decision_row(config, decision, rows.get(decision.trial_key), versions)
            if row is not None:
                store.write(row)
                rows[decision.trial_key] = _decode(row)
        added = False
        for unit in plan.finished_units:
            if sweeper.is_open(unit):
                for new in sweeper.tell(unit, _unit_value(unit, rows),
                                        pruned=unit.key in plan.eliminated_units):
                    if new.key not in units:
                        units[new.key] = new
                        added = True
        if added:
            _write_plan(config, store, units)
            continue
        busy = {request.trial_key for request, _ in in_flight.values()}
        todo = sorted((r for r in plan.requests
                       if r.trial_key not in busy and r.trial_key not in failed_now),
                      key=RunRequest.priority)
        for request in _dedupe(todo)[:max(0, width - len(in_flight))]:
            ref = remote.remote(fn_ref, request.unit.spec(request.seed), request.stop_epoch,
                                resources.threads_per_trial)
            run_id = f"{request.trial_key}@{request.stop_epoch or 'full'}"
            in_flight[ref] = (request, run_id)
        progress.update(_counts(units, rows, plan.eliminated_units),
                        [(rid, _label(req)) for req, rid in in_flight.values()])
        if not in_flight:
            break
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
        for ref in ready:
            request, _ = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:  # retries exhausted: worker / node lost
                result = {"status": "failed", "message": f"{type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:1000],
                          "metrics": {}, "curve": [], "wall_time_s": 0.0}
            row = _row(config, request.unit, request.seed, request.stop_epoch, result, versions)
            store.write(row)
            progress.runs += 1
            rows[request.trial_key] = _decode(row)
            if row["status"] == "failed":
                failed_now.add(request.trial_key)
            partial = request.stop_epoch is not None and row["status"] == "pruned"
            progress.finished(_label(request), "partial" if partial else row["status"],
                              _detail(row, metrics[request.unit.proxy][0]), row["wall_time_s"],
                              full=request.stop_epoch is None)


def _reuse_sibling_trials(config: SearchConfig, store: ResultsStore, planned: set[str],
                          rows: dict[str, dict[str, Any]]) -> int:
    """Copy finished trials with a planned key from the other searches of the same output
    folder (``results/*``): the key hashes everything that decides a run's numbers, so a
    trial stored by another study is this study's trial too. Returns how many were copied."""
    if not config.reuse:
        return 0
    missing = {k for k in planned if not is_complete(rows.get(k))}
    copied = 0
    parent = store.folder.parent
    if not missing or not parent.is_dir():
        return 0
    for sibling in sorted(p for p in parent.iterdir() if p.is_dir() and p != store.folder):
        other = ResultsStore(sibling)
        if not other.consolidated_path.exists() and not other.trials_dir.is_dir():
            continue
        try:
            frame = other.read()
        except FuncsearchError:
            continue  # an unreadable sibling is its own problem, not this search's
        if not len(frame):
            continue
        hits = frame[frame["trial_key"].isin(missing) & frame["status"].isin(["ok", "diverged"])]
        for record in hits.to_dict("records"):
            decoded = _decode(dict(record))
            if not is_complete(decoded) or record["trial_key"] not in missing:
                continue
            record["search"] = config.name
            record["message"] = f"reused from {sibling.name}" + (f"; {record['message']}" if record.get("message") else "")
            store.write(record)
            rows[record["trial_key"]] = _decode(record)
            missing.discard(record["trial_key"])
            copied += 1
        if not missing:
            break
    return copied


def _dedupe(requests: list[RunRequest]) -> list[RunRequest]:
    """One run per trial at a time (the longest budget asked for wins)."""
    best: dict[str, RunRequest] = {}
    for request in requests:
        held = best.get(request.trial_key)
        if held is None or (held.stop_epoch is not None and
                            (request.stop_epoch is None or request.stop_epoch > held.stop_epoch)):
            best[request.trial_key] = request
    return sorted(best.values(), key=RunRequest.priority)


def _label(request: RunRequest) -> str:
    budget = f" to epoch {request.stop_epoch}" if request.stop_epoch is not None else ""
    return f"{request.unit.label} seed {request.seed}{budget}"


def _detail(row: dict[str, Any], epoch_metric_name: str) -> str:
    if row["status"] == "ok":
        return f"{row['primary_metric']}={row['score']:.4g}"
    if row["status"] == "pruned":
        curve = json.loads(row["curve"]) if row["curve"] else []
        value = curve[-1].get(epoch_metric_name) if curve else None
        shown = f"{epoch_metric_name}={value:.4g} " if isinstance(value, float) else ""
        return f"{shown}at epoch {row['epochs_done']}"
    return str(row.get("message") or "")[:160]


def _unit_value(unit: Unit, rows: dict[str, dict[str, Any]]) -> float | None:
    scores = [rows[k]["score"] for k in unit.trials.values()
              if k in rows and rows[k]["status"] == "ok" and not math.isnan(rows[k]["score"])]
    return sum(scores) / len(scores) if scores else None


def _counts(units: dict[str, Unit], rows: dict[str, dict[str, Any]],
            eliminated: dict[str, str]) -> Counts:
    counts = Counts()
    for unit in units.values():
        for key in unit.trials.values():
            counts.total += 1
            row = rows.get(key)
            if unit.key in eliminated and (row is None or not is_complete(row)):
                counts.pruned += 1
            elif row is not None and is_complete(row):
                setattr(counts, row["status"], getattr(counts, row["status"]) + 1)
    return counts


def _write_plan(config: SearchConfig, store: ResultsStore, units: dict[str, Unit]) -> None:
    store.write_plan([row for unit in units.values() for row in unit.plan_rows()])
    if config.source and Path(config.source).exists():
        store.write_text("search.yaml", Path(config.source).read_text(encoding="utf-8"))


__all__ = ["run_search", "SearchOutcome", "connect", "FuncsearchError"]
