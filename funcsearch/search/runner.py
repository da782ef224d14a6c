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

Ctrl-C or SIGTERM (a scheduler's preemption) cancels the runs in flight and keeps every
stored trial: rerunning the command resumes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from rich.console import Console

from funcsearch.errors import FuncsearchError, InputError, Terminated
from funcsearch.search.config import SearchConfig, load_search_config
from funcsearch.search.keys import digest
from funcsearch.search.plan import (FunctionSelection, Unit, check_data, check_shared_tasks,
                                    check_sweep_params, epoch_metric,
                                    proxy_info, resolve_proxy_config, select_functions)
from funcsearch.search.progress import Counts, SearchProgress
from funcsearch.search.schedule import Decision, RunRequest, is_complete, schedule
from funcsearch.search.store import ResultsStore, TrialRecord
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
             threads: int, proxy: Any = None) -> dict[str, Any]:
    """One run on a worker: never raises for a trial's own exception (-> ``failed``).

    ``proxy`` is the registry entry from the driver, so a proxy registered there (a plug-in
    or a test's throwaway proxy) runs on workers that never registered it."""
    import torch

    from funcsearch.proxies import TrialSpec

    torch.set_num_threads(threads)
    started = _now()
    clock = time.perf_counter()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        return stop_epoch is not None and epoch >= stop_epoch

    try:
        if trial_fn is None:
            from funcsearch.proxies import run_trial

            result = run_trial(TrialSpec.model_validate(spec), on_epoch, threads, proxy)
        else:
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

def connect(address: str | None, concurrency: int | None, cpus_per_trial: float,
            gpus_per_trial: float = 0.0, *, timeout_s: float = 10.0) -> tuple[bool, int, str]:
    """Connect to Ray; return (we started it, concurrency, description).

    Concurrency: ``concurrency`` if given, else as many trials as the cluster's CPUs and (when
    trials reserve a GPU share) its GPUs hold at once. An address that does not answer
    within ``timeout_s`` is a one-line error, not a hang."""
    if ray.is_initialized():
        owned, where = False, "the Ray cluster already connected"
    elif address:
        _check_reachable(address, timeout_s)
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
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
    fits = int(cpus // cpus_per_trial)
    if gpus_per_trial > 0:
        fits = min(fits, int(gpus / gpus_per_trial + 1e-9))
    chosen = concurrency or max(1, fits)
    shown = f"{cpus:g} CPUs" + (f", {gpus:g} GPUs" if gpus else "")
    return owned, chosen, f"{where} ({shown})"


@contextlib.contextmanager
def _sigterm_flag() -> Iterator[threading.Event]:
    """While the search loop runs, SIGTERM sets the yielded flag, and the loop raises
    :class:`Terminated` at its next turn (within half a second, after storing the runs that
    just finished), handled like Ctrl-C: runs in flight are cancelled, stored trials stay.
    Without it, ``ray.init``'s handler (``sys.exit(15)``) ended a preempted search silently;
    raising from the handler itself would surface inside Ray's C++ wait as a SystemError.
    Main thread only (where Python delivers signals); the previous handler comes back after."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_reachable(address: str, timeout_s: float) -> None:
    """A TCP connect to a ``host:port`` / ``ray://host:port`` address, so a dead address fails
    in seconds ('auto' and addresses without a port are left to Ray)."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise InputError(f"cannot connect to Ray at {address}: nothing answers there "
                         f"({exc.strerror or exc})", field="--address") from None


def resolve_device(config: SearchConfig) -> tuple[str, float]:
    """The search's device (``cpu`` or ``cuda``) and GPU share per trial, from
    ``resources`` and the connected cluster's GPUs; cuda on a cluster without GPUs is a
    one-line error at ``resources.device``, before any trial starts."""
    resources = config.resources
    gpus = float(ray.cluster_resources().get("GPU", 0))
    device = resources.device
    if device == "auto":
        device = "cuda" if gpus > 0 else "cpu"
    if device == "cuda" and gpus == 0:
        raise config.error("device cuda asked for, but the Ray cluster has no GPU", "resources", "device")
    share = resources.gpus_per_trial
    if share is None:
        share = 1.0 if device == "cuda" else 0.0
    if share > 0 and gpus == 0:
        raise config.error(f"gpus_per_trial {share:g} asked for, but the Ray cluster has no GPU",
                           "resources", "gpus_per_trial")
    return device, share


# -- rows ----------------------------------------------------------------------------------------

def _record(config: SearchConfig, unit: Unit, seed: int, stop_epoch: int | None,
            result: dict[str, Any], extra_versions: dict[str, str]) -> TrialRecord:
    """The store record of one finished run."""
    status, message = result["status"], result.get("message")
    raw = {k: float(v) for k, v in (result.get("metrics") or {}).items()}
    metrics = {k: v for k, v in raw.items() if math.isfinite(v)}
    curve = result.get("curve") or []
    if status == "ok" and unit.primary_metric not in metrics:  # a NaN result is a divergence
        status = "diverged"
        message = (f"non-finite {unit.primary_metric} ({raw[unit.primary_metric]})"
                   if unit.primary_metric in raw else f"no {unit.primary_metric} reported")
    score = metrics.get(unit.primary_metric) if status == "ok" else None
    details = result.get("details") or {}
    return TrialRecord(
        trial_key=unit.trials[seed], unit_key=unit.key, search=config.name,
        candidate=unit.function.name, expression=unit.function.expression,
        names=list(unit.function.names or (unit.function.name,)), family=unit.function.family,
        is_baseline=unit.function.is_baseline, proxy=unit.proxy, seed=seed, shift=unit.shift,
        alpha_init=unit.alpha_init, hyperparameters=dict(unit.hyperparameters),
        overrides=dict(unit.overrides), status=status, message=message,
        stop_epoch=stop_epoch if status == "pruned" else None, epochs_done=len(curve),
        primary_metric=unit.primary_metric, higher_is_better=unit.higher_is_better,
        score=math.nan if score is None else score, metrics=metrics, curve=curve,
        diverged_step=result.get("diverged_step"), wall_time_s=float(result.get("wall_time_s") or 0.0),
        cpu_time_s=details.get("cpu_time_s"), details=json.loads(json.dumps(details, default=str)),
        node=result.get("node"), started_at=result.get("started_at"),
        finished_at=result.get("finished_at") or _now(),
        versions={**(result.get("versions") or {}), **extra_versions},
        config=result.get("config") or unit.config, config_hash=digest(unit.config),
        search_config_hash=config.hash(), device=result.get("device") or unit.device,
        precision=result.get("precision") or unit.precision,
    )


def _decision_record(config: SearchConfig, decision: Decision, stored: TrialRecord | None,
                     extra_versions: dict[str, str]) -> TrialRecord | None:
    """Record that early stopping ended a trial (None if already recorded)."""
    if stored is not None:
        if stored.status == "pruned" and stored.message == decision.reason:
            return None
        return stored.pruned(decision.reason, _now())
    empty = {"status": "pruned", "message": decision.reason, "metrics": {}, "curve": [],
             "wall_time_s": 0.0, "config": decision.unit.config}
    record = _record(config, decision.unit, decision.seed, 0, empty, extra_versions)
    record.stop_epoch = 0
    return record


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
    check_shared_tasks(config)
    check_data(config)
    metrics = {proxy: epoch_metric(config, proxy) for proxy in config.proxies}
    for proxy in config.proxies:  # bad overrides are reported before anything starts
        resolve_proxy_config(config, proxy, {}, ("proxies", proxy, "overrides"))
    store = ResultsStore(config.results_folder(output))
    _check_output(store.folder, config)
    with store.locked():
        gpus_asked = config.resources.gpus_per_trial or (1.0 if config.resources.device == "cuda" else 0.0)
        try:
            owned, width, where = connect(address or config.ray.address,
                                          concurrency or config.resources.concurrency,
                                          config.resources.cpus_per_trial, gpus_asked)
        except InputError as exc:
            if address is None and config.ray.address:  # from the config: name its line
                raise config.error(exc.message, "ray", "address") from None
            raise
        try:
            device, gpus_per_trial = resolve_device(config)
            sweeper = Sweeper(config, selection.functions, store.folder, device)
            units = {u.key: u for u in sweeper.initial_units()}
            with _sigterm_flag() as terminated:
                runs = _search_loop(config, selection, store, sweeper, units, metrics, width, where,
                                    trial_fn, console, live, gpus_per_trial, terminated)
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
            from funcsearch.ranking import leaderboard

            board = leaderboard(current, rule=config.aggregate.rule())
            board.title = config.name
            board.fidelity = fidelity_lines(current, rule=config.aggregate.rule())
            store.write_text("leaderboard.md", board.render("md"))
            store.write_text("leaderboard.csv", board.render("csv"))
    return SearchOutcome(store.folder, current, counts, runs, time.monotonic() - start,
                         selection.dropped, board)


def _search_loop(config: SearchConfig, selection: FunctionSelection, store: ResultsStore,
                 sweeper: Sweeper, units: dict[str, Unit], metrics: dict[str, tuple[str, bool]],
                 width: int, where: str, trial_fn: TrialFunction | None, console: Console,
                 live: bool | None, gpus_per_trial: float, terminated: threading.Event) -> int:
    versions = _extra_versions()
    _write_plan(config, store, units)

    rows = {k: r for k, r in store.records().items() if r.status != "failed"}  # failures are retried
    owners = {k: u for u in units.values() for k in u.trials.values()}
    planned = set(owners)
    reused = _reuse_sibling_trials(config, store, owners, rows)
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
    remote = _execute.options(num_cpus=resources.cpus_per_trial, num_gpus=gpus_per_trial,
                              max_retries=resources.max_retries, retry_exceptions=False)
    fn_ref = ray.put(trial_fn) if trial_fn is not None else None
    proxy_refs = {name: ray.put(proxy_info(name)) for name in config.proxies}
    in_flight: dict[Any, tuple[RunRequest, str]] = {}
    failed_now: set[str] = set()
    progress = SearchProgress(console, config.name, width, live=live)
    try:
        with progress:
            _loop(config, store, sweeper, units, rows, metrics, width, remote, fn_ref, proxy_refs,
                  in_flight, failed_now, versions, progress, terminated)
    except BaseException:
        _cancel_unfinished(list(in_flight))
        raise
    return progress.runs


def _cancel_unfinished(refs: list[Any]) -> None:
    """Stop the runs still going (on an existing cluster they would go on, unrecorded): a
    KeyboardInterrupt in each one's worker. Runs that already finished are left alone, and no
    worker is killed: force-cancelling a run as it finishes crashed Ray's own bookkeeping in
    the driver ("Tried to complete task that was not pending"), so Ctrl-C ended in a stack
    trace instead of exit code 130. Never masks the interruption being handled."""
    import ray

    try:
        _, unfinished = ray.wait(refs, num_returns=len(refs), timeout=0) if refs else ([], [])
        for ref in unfinished:
            ray.cancel(ref, force=False)
    except Exception:  # noqa: BLE001 - the search is ending anyway; its trials are stored
        pass


def _loop(config: SearchConfig, store: ResultsStore, sweeper: Sweeper, units: dict[str, Unit],
          rows: dict[str, TrialRecord], metrics: dict[str, tuple[str, bool]], width: int,
          remote: Any, fn_ref: Any, proxy_refs: dict[str, Any],
          in_flight: dict[Any, tuple[RunRequest, str]],
          failed_now: set[str], versions: dict[str, str], progress: SearchProgress,
          terminated: threading.Event) -> None:
    """Schedule, submit, wait, store; until nothing is left to run (or SIGTERM came)."""
    resources = config.resources
    while True:
        if terminated.is_set():
            raise Terminated("SIGTERM")
        plan = schedule(list(units.values()), rows, config.early_stopping, metrics)
        for decision in plan.decisions:
            record = _decision_record(config, decision, rows.get(decision.trial_key), versions)
            if record is not None:
                store.write(record)
                rows[decision.trial_key] = record
            # an eliminated trial will not continue: its rung state goes
            (store.folder / "checkpoints" / f"{decision.trial_key}.pt").unlink(missing_ok=True)
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
        todo = run_order([r for r in plan.requests
                          if r.trial_key not in busy and r.trial_key not in failed_now], units)
        for request in _dedupe(todo)[:max(0, width - len(in_flight))]:
            spec = request.unit.spec(request.seed)
            if _stops_early(config):  # a promoted trial continues from its rung's state
                spec["checkpoint"] = str(store.folder / "checkpoints" / f"{request.trial_key}.pt")
            ref = remote.remote(fn_ref, spec, request.stop_epoch,
                                resources.threads_per_trial, proxy_refs[request.unit.proxy])
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
            record = _record(config, request.unit, request.seed, request.stop_epoch, result, versions)
            store.write(record)
            progress.runs += 1
            rows[request.trial_key] = record
            if record.status == "failed":
                failed_now.add(request.trial_key)
            partial = request.stop_epoch is not None and record.status == "pruned"
            progress.finished(_label(request), "partial" if partial else record.status,
                              _detail(record, metrics[request.unit.proxy][0]), record.wall_time_s,
                              full=request.stop_epoch is None)


def _reuse_sibling_trials(config: SearchConfig, store: ResultsStore, planned: dict[str, Unit],
                          rows: dict[str, TrialRecord]) -> int:
    """Copy finished trials with a planned key (``planned``: key -> its unit) from the other
    searches of the same output folder (``results/*``): the key hashes everything that
    decides a run's numbers, so a trial stored by another study is this study's trial too (its
    ``reused_from`` says where it came from). A copy takes this study's proxy and overrides:
    a run of a shared task (``vit`` with the screen's settings) is this study's screen run.
    Returns how many were copied."""
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
        for row in hits.to_dict("records"):
            record = TrialRecord.decode(row)
            if not is_complete(record) or record.trial_key not in missing:
                continue
            unit = planned[record.trial_key]
            record.search, record.proxy, record.overrides = config.name, unit.proxy, dict(unit.overrides)
            record.reused_from = record.reused_from or sibling.name
            store.write(record)
            rows[record.trial_key] = record
            missing.discard(record.trial_key)
            copied += 1
        if not missing:
            break
    return copied


def _stops_early(config: SearchConfig) -> bool:
    early = config.early_stopping
    return any(part is not None and part.enabled for part in (early.gate, early.halving))


def run_order(requests: list[RunRequest], units: dict[str, Unit]) -> list[RunRequest]:
    """Cheap decisions first, then seed by seed, and within that the plan's order: function by
    function, every proxy of a function in turn, so that a search stopped early holds whole
    rows (every proxy of the functions it reached) for the aggregate, not one proxy's."""
    position = {key: i for i, key in enumerate(units)}
    return sorted(requests, key=lambda r: (*r.priority(), position.get(r.unit.key, len(position))))


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


def _detail(record: TrialRecord, epoch_metric_name: str) -> str:
    if record.status == "ok":
        return f"{record.primary_metric}={record.score:.4g}"
    if record.status == "pruned":
        value = record.curve[-1].get(epoch_metric_name) if record.curve else None
        shown = f"{epoch_metric_name}={value:.4g} " if isinstance(value, float) else ""
        return f"{shown}at epoch {record.epochs_done}"
    return str(record.message or "")[:160]


def _unit_value(unit: Unit, rows: dict[str, TrialRecord]) -> float | None:
    scores = [rows[k].score for k in unit.trials.values()
              if k in rows and rows[k].status == "ok" and not math.isnan(rows[k].score)]
    return sum(scores) / len(scores) if scores else None


def _counts(units: dict[str, Unit], rows: dict[str, TrialRecord],
            eliminated: dict[str, str]) -> Counts:
    counts = Counts()
    for unit in units.values():
        for key in unit.trials.values():
            counts.total += 1
            row = rows.get(key)
            if unit.key in eliminated and (row is None or not is_complete(row)):
                counts.pruned += 1
            elif row is not None and is_complete(row):
                setattr(counts, row.status, getattr(counts, row.status) + 1)
    return counts


def _check_output(folder: Path, config: SearchConfig) -> None:
    """The results folder must be creatable and writable: one line naming it otherwise."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise InputError("the output path is a file, not a folder", file=str(parent),
                                 field="--output")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError("the output folder is not writable", file=str(parent), field="--output")
            return


def _write_plan(config: SearchConfig, store: ResultsStore, units: dict[str, Unit]) -> None:
    store.write_plan([row for unit in units.values() for row in unit.plan_rows()])
    if config.source and Path(config.source).exists():
        store.write_text("search.yaml", Path(config.source).read_text(encoding="utf-8"))


__all__ = ["run_search", "SearchOutcome", "connect", "FuncsearchError"]
