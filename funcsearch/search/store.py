"""The results store: one Parquet row per trial, written durably the moment a trial ends.

Layout of ``results/<name>/``::

    trials/<trial_key>.parquet   one small file per finished trial (atomic: tmp + fsync + rename)
    trials.parquet               the consolidated table (rewritten at the end of a search)
    plan.json                    the trial keys and names of the latest search config
    search.yaml                  a copy of that config
    optuna.journal               Optuna's storage (sweeps)
    leaderboard.md / .csv        written when a search ends
    .lock                        held (fcntl) while a search writes here

Killing the search at any moment loses at most the trials still running: every finished
trial is already a renamed, fsynced file. A per-trial file always supersedes the same key
in ``trials.parquet`` (it is newer), so reading is "consolidated rows, then per-trial
files on top". This store, not Optuna's study, is the source of truth.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import math
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from funcsearch.errors import DataError, InputError
from funcsearch.layout import PLAN_FILE, TRIALS_DIR, TRIALS_FILE

STATUSES = ("ok", "diverged", "pruned", "failed")

# Fixed columns, in display order; ``metric.<name>`` float columns are added per trial.
SCHEMA = pa.schema([
    ("trial_key", pa.string()),
    ("unit_key", pa.string()),
    ("search", pa.string()),
    ("candidate", pa.string()),
    ("expression", pa.string()),
    ("names", pa.string()),            # JSON list: every name of this function
    ("family", pa.string()),
    ("is_baseline", pa.bool_()),
    ("proxy", pa.string()),
    ("seed", pa.int64()),
    ("shift", pa.string()),
    ("alpha_init", pa.float64()),
    ("hyperparameters", pa.string()),  # JSON: the swept values of this trial ({} if none)
    ("overrides", pa.string()),        # JSON: every override given to the proxy
    ("status", pa.string()),
    ("message", pa.string()),
    ("stop_epoch", pa.int64()),        # budget of the run that produced the row; null = full
    ("epochs_done", pa.int64()),
    ("primary_metric", pa.string()),
    ("higher_is_better", pa.bool_()),
    ("score", pa.float64()),           # the primary metric, NaN unless reached
    ("metrics", pa.string()),          # JSON dict of final metrics
    ("curve", pa.string()),            # JSON list: one dict per epoch
    ("diverged_step", pa.int64()),
    ("wall_time_s", pa.float64()),
    ("cpu_time_s", pa.float64()),      # CPU seconds of the trial process (load-independent cost)
    ("details", pa.string()),          # JSON: parameter count, steps, dataset fingerprint, ...
    ("node", pa.string()),
    ("started_at", pa.string()),
    ("finished_at", pa.string()),
    ("versions", pa.string()),         # JSON
    ("config", pa.string()),           # JSON: the resolved proxy config actually used
    ("config_hash", pa.string()),
    ("search_config_hash", pa.string()),
    ("reused_from", pa.string()),      # the study this trial was copied from; null = run here
    ("device", pa.string()),           # cpu or cuda (GPU name and CUDA version in versions)
    ("precision", pa.string()),        # fp32 or bf16
])
COLUMNS = tuple(SCHEMA.names)
ADDED_COLUMNS: dict[str, Any] = {"reused_from": None, "device": "cpu", "precision": "fp32"}
"""Columns newer than some stored results, with the value an older row means."""
_JSON_COLUMNS = ("names", "hyperparameters", "overrides", "metrics", "curve", "details",
                 "versions", "config")
_INT_COLUMNS = ("seed", "stop_epoch", "epochs_done", "diverged_step")
_REUSE_PREFIX = "reused from "


@dataclass
class TrialRecord:
    """One stored trial, decoded: the store's one row format.

    :meth:`encode` gives the Parquet row (JSON text columns, ``metric.<name>`` floats),
    :meth:`decode` reads one back (also rows written before the ``reused_from``, ``device``
    and ``precision`` columns existed, whose reuse was a ``reused from X;`` message prefix)."""

    trial_key: str
    unit_key: str
    search: str
    candidate: str
    expression: str | None
    proxy: str
    seed: int
    status: str
    primary_metric: str
    higher_is_better: bool
    names: list[str] = field(default_factory=list)
    family: str = ""
    is_baseline: bool = False
    shift: str = "none"
    alpha_init: float = 0.5
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    stop_epoch: int | None = None
    epochs_done: int = 0
    score: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)
    diverged_step: int | None = None
    wall_time_s: float = 0.0
    cpu_time_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    node: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    search_config_hash: str | None = None
    reused_from: str | None = None
    device: str = "cpu"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def encode(self) -> dict[str, Any]:
        """The Parquet row: JSON text for nested fields, one ``metric.<name>`` per metric."""
        row = dataclasses.asdict(self)
        for name in _JSON_COLUMNS:
            row[name] = json.dumps(row[name], sort_keys=name != "curve", default=str)
        row.update({f"metric.{k}": float(v) for k, v in self.metrics.items()})
        return row

    @classmethod
    def decode(cls, row: Mapping[str, Any]) -> "TrialRecord":
        """A record from a stored row (a dict from ``to_dict("records")`` or an encoded row)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = row.get(f.name)
            if _is_missing(value):
                value = None
            if f.name in _JSON_COLUMNS:
                value = json.loads(value) if isinstance(value, str) and value else (value or None)
            elif f.name in _INT_COLUMNS and value is not None:
                value = int(value)
            if value is None:
                if f.name in ADDED_COLUMNS:
                    value = ADDED_COLUMNS[f.name]
                elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                    continue  # the field's default
            values[f.name] = value
        if values.get("score") is None:
            values["score"] = math.nan
        message = values.get("message")
        if values.get("reused_from") is None and isinstance(message, str) and message.startswith(_REUSE_PREFIX):
            source, _, rest = message[len(_REUSE_PREFIX):].partition("; ")
            values["reused_from"], values["message"] = source, rest or None
        return cls(**values)

    @property
    def is_full(self) -> bool:
        """The row of a full run (not stopped at an early-stopping budget)."""
        return self.stop_epoch is None

    def curve_at(self, epoch: int) -> dict[str, float] | None:
        """The per-epoch metrics at ``epoch`` (1-based), if that epoch was reached."""
        for entry in self.curve:
            if int(entry.get("epoch", -1)) == epoch:
                return entry
        return None

    def pruned(self, reason: str, finished_at: str) -> "TrialRecord":
        """This trial ended by early stopping: status pruned with ``reason``, no score."""
        return dataclasses.replace(self, status="pruned", message=reason, score=math.nan,
                                   finished_at=self.finished_at or finished_at)


def reused_mask(frame: pd.DataFrame) -> pd.Series:
    """Which rows of a results frame were copied from another study: the ``reused_from``
    column, or the ``reused from X;`` message prefix of rows stored before that column."""
    messages = frame["message"] if "message" in frame else pd.Series("", index=frame.index)
    mask = messages.fillna("").astype(str).str.startswith(_REUSE_PREFIX)
    if "reused_from" in frame:
        mask = mask | frame["reused_from"].notna()
    return mask


def mean_end_regime(frame: pd.DataFrame, site: str = "all") -> dict[str, float]:
    """Mean over a frame's trials of the end-of-training regime at one site kind (``"all"``:
    every point-wise site pooled; ``gt1``, ``gt2``: shares of |u| above 1 and 2; ``p99``; see
    funcsearch.proxies.regime); NaN where no trial recorded it (trials stored before the regime
    was, or a site kept at LayerNorm)."""
    return mean_end_regimes(frame, (site,))[site]


def mean_end_regimes(frame: pd.DataFrame, sites: Sequence[str]) -> dict[str, dict[str, float]]:
    """:func:`mean_end_regime` for several site kinds at once, each trial's details decoded once."""
    values = {site: {"gt1": [], "gt2": [], "p99": []} for site in sites}
    for text in frame["details"] if "details" in frame else ():
        try:
            details = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            continue
        end = (details.get("regime") or {}).get("end", {})
        for site, lists in values.items():
            pooled = end.get(site)
            if pooled:
                for key in lists:
                    lists[key].append(float(pooled[key]))
    return {site: {k: (sum(v) / len(v) if v else math.nan) for k, v in lists.items()}
            for site, lists in values.items()}


def curves_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch curves of a results frame as one long table:
    ``trial_key, proxy, candidate, seed, epoch, metric, value`` (decoded once)."""
    records = []
    for key, proxy, candidate, seed, text in zip(frame["trial_key"], frame["proxy"], frame["candidate"],
                                                 frame["seed"], frame["curve"]):
        curve = json.loads(text) if isinstance(text, str) and text else (text if isinstance(text, list) else [])
        for entry in curve:
            epoch = entry.get("epoch")
            for metric, value in entry.items():
                if metric in ("epoch", "step", "lr"):
                    continue
                records.append((key, proxy, candidate, seed, epoch, metric, value))
    return pd.DataFrame(records, columns=["trial_key", "proxy", "candidate", "seed", "epoch",
                                          "metric", "value"])


class SearchLockedError(InputError):
    """Another search holds the results folder."""


class ResultsStore:
    """Reads and writes ``results/<name>/`` (see module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.trials_dir = self.folder / TRIALS_DIR
        self.consolidated_path = self.folder / TRIALS_FILE
        self.plan_path = self.folder / PLAN_FILE
        self._lock_fd: int | None = None

    # -- locking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator["ResultsStore"]:
        """Hold the folder's lock; refuse with a clear message if another search has it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.trials_dir.mkdir(exist_ok=True)
        path = self.folder / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            with contextlib.suppress(OSError):
                holder = Path(path).read_text().strip()
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise SearchLockedError(
                    "another search is writing this results folder"
                    + (f" ({holder})" if holder else "")
                    + "; wait for it to end or choose another name/output",
                    file=str(self.folder),
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        os.fsync(fd)
        self._lock_fd = fd
        for stale in [*self.folder.glob(".*.tmp"), *self.trials_dir.glob(".*.tmp")]:
            stale.unlink(missing_ok=True)  # left by a writer killed mid-write
        try:
            yield self
        finally:
            self._lock_fd = None
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("ResultsStore: this operation needs `with store.locked():`")

    # -- writing ----------------------------------------------------------------------------
    def write(self, record: TrialRecord) -> Path:
        """Write one finished trial durably and atomically (replacing an older row of its key)."""
        self._require_lock()
        table = row_table(record.encode())
        path = self.trials_dir / f"{record.trial_key}.parquet"
        _atomic_write(path, lambda f: pq.write_table(table, f))
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Atomically write a text file (plan, leaderboard, config copy) into the folder."""
        path = self.folder / name
        _atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return path

    def write_plan(self, plan: Sequence[Mapping[str, Any]]) -> None:
        """Record which trial keys (and names) the latest search config asks for."""
        self.write_text(PLAN_FILE, json.dumps(list(plan), indent=1))

    def consolidate(self) -> pd.DataFrame:
        """Merge per-trial files into ``trials.parquet`` (atomic), then remove them."""
        self._require_lock()
        files = sorted(self.trials_dir.glob("*.parquet"))
        frame = self.read()
        if not files and self.consolidated_path.exists():
            return frame
        table = frame_table(frame)
        _atomic_write(self.consolidated_path, lambda f: pq.write_table(table, f))
        for path in files:
            path.unlink(missing_ok=True)
        _fsync_dir(self.trials_dir)
        return frame

    # -- reading ----------------------------------------------------------------------------
    def read(self) -> pd.DataFrame:
        """Every stored trial, one row per trial key (per-trial files override the table).

        A per-trial file that vanishes between listing and reading was consolidated by a
        running search meanwhile: the read starts over, so it sees the consolidated row."""
        for _ in range(5):
            frames: list[pd.DataFrame] = []
            if self.consolidated_path.exists():
                frames.append(_read_parquet(self.consolidated_path))
            vanished = False
            if self.trials_dir.is_dir():
                for path in sorted(self.trials_dir.glob("*.parquet")):
                    try:
                        frames.append(_read_parquet(path))
                    except FileNotFoundError:
                        vanished = True
                        break
            if not vanished:
                break
        frames = [f for f in frames if len(f)]
        if not frames:
            return _empty_table().to_pandas()
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.drop_duplicates("trial_key", keep="last").reset_index(drop=True)
        for name, default in ADDED_COLUMNS.items():
            if name not in frame.columns:
                frame[name] = default
            elif default is not None:
                frame[name] = frame[name].fillna(default)
        return frame

    def records(self) -> dict[str, TrialRecord]:
        """Every stored trial, decoded once, by trial key."""
        return {str(r["trial_key"]): TrialRecord.decode(r) for r in self.read().to_dict("records")}

    def read_plan(self) -> list[dict[str, Any]] | None:
        """The latest plan (list of dicts with ``trial_key`` ...) or None if never written."""
        if not self.plan_path.exists():
            return None
        try:
            plan = json.loads(self.plan_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"not a plan (JSON list of trials): {exc}", file=str(self.plan_path)) from None
        if not isinstance(plan, list) or not all(isinstance(p, dict) and "trial_key" in p for p in plan):
            raise DataError("not a plan: expected a JSON list of {trial_key, candidate, ...} objects "
                            "(delete it: the next search rewrites it)", file=str(self.plan_path))
        return plan

    def read_current(self) -> pd.DataFrame:
        """Rows of the latest plan only (older configs' trials stay stored but are skipped),
        scored by each proxy's declared primary metric (:func:`declared_scores`)."""
        frame = self.read()
        plan = self.read_plan()
        if plan is None or not len(frame):
            return declared_scores(frame)
        names = {p["trial_key"]: p for p in plan}
        frame = frame[frame["trial_key"].isin(names)].copy()
        # the plan's names win: renaming a candidate does not rerun it
        frame["candidate"] = [names[k]["candidate"] for k in frame["trial_key"]]
        frame["is_baseline"] = [bool(names[k]["is_baseline"]) for k in frame["trial_key"]]
        return declared_scores(frame.reset_index(drop=True))


def declared_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every row scored by its proxy's *declared* primary metric.

    A proxy owns its primary metric; a row's ``score`` is that metric as declared when the row
    ran. When a declaration changes (vit: test accuracy, then test loss), the stored rows are
    re-read from the metrics they recorded, so a study never ranks on two metrics at once and
    nothing is retrained. Rows of a proxy that is not registered here, or of a proxy with a
    finished row that never recorded the declared metric, keep their stored scores."""
    if not len(frame) or "primary_metric" not in frame:
        return frame
    from funcsearch.proxies.registry import PROXIES

    frame = frame.copy()
    for proxy, rows in frame.groupby("proxy"):
        entry = PROXIES.get(str(proxy))
        if entry is None:
            continue
        declared = entry.primary
        stale = rows.index[rows["primary_metric"] != declared.name]
        if not len(stale):
            continue
        values = []
        for index in stale:
            text = frame.at[index, "metrics"]
            metrics = json.loads(text) if isinstance(text, str) and text else {}
            if frame.at[index, "status"] == "ok" and declared.name not in metrics:
                break  # cannot re-read this row: the proxy keeps its stored scores
            value = metrics.get(declared.name)
            values.append(float(value) if frame.at[index, "status"] == "ok" else math.nan)
        else:
            frame.loc[stale, "score"] = values
            frame.loc[stale, "primary_metric"] = declared.name
            frame.loc[stale, "higher_is_better"] = declared.higher_is_better
    return frame


def row_table(row: Mapping[str, Any]) -> pa.Table:
    """A one-row Arrow table with the fixed schema plus ``metric.*`` float columns."""
    unknown = [k for k in row if k not in COLUMNS and not k.startswith("metric.")]
    if unknown:
        raise ValueError(f"unknown result columns: {unknown}")
    if row.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {row.get('status')!r}")
    arrays, fields = [], list(SCHEMA)
    for name in COLUMNS:
        value = row.get(name)
        value = None if _is_missing(value) else value
        if value is not None and pa.types.is_integer(SCHEMA.field(name).type):
            value = int(value)
        arrays.append(pa.array([value], type=SCHEMA.field(name).type))
    for name in sorted(k for k in row if k.startswith("metric.") and not _is_missing(row[k])):
        arrays.append(pa.array([float(row[name])], type=pa.float64()))
        fields.append(pa.field(name, pa.float64()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def frame_table(frame: pd.DataFrame) -> pa.Table:
    """Arrow table of a results frame with the fixed column types restored."""
    arrays, fields = [], []
    extra = sorted(c for c in frame.columns if c not in COLUMNS)
    for name in [*COLUMNS, *extra]:
        field = SCHEMA.field(name) if name in COLUMNS else pa.field(name, pa.float64())
        values = frame[name].tolist() if name in frame.columns else [None] * len(frame)
        values = [None if _is_missing(v) else v for v in values]
        if pa.types.is_integer(field.type):
            values = [None if v is None else int(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
        fields.append(field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(value != value)  # NaN (float or numpy)
    except (TypeError, ValueError):
        return False


def _empty_table() -> pa.Table:
    return pa.Table.from_arrays([pa.array([], type=f.type) for f in SCHEMA], schema=SCHEMA)


def _read_parquet(path: Path) -> pd.DataFrame:
    """One results file; ``FileNotFoundError`` passes (the caller re-reads), anything else
    unreadable or foreign is a ``DataError`` naming the file."""
    try:
        frame = pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read results file: {str(exc).splitlines()[0] if str(exc) else exc}",
                        file=str(path)) from None
    missing = [c for c in ("trial_key", "status", "proxy", "candidate", "seed") if c not in frame.columns]
    if missing and len(frame.columns):
        raise DataError(f"not a funcsearch trials table (no column {', '.join(missing)})", file=str(path))
    return frame


def _atomic_write(path: Path, write: Any) -> None:
    """Write via a temporary sibling, fsync it, rename over ``path``, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_results(results: str | Path) -> pd.DataFrame:
    """The current trials of a results folder; a clear error if it is missing or empty."""
    folder = Path(results)
    if not folder.is_dir():
        raise DataError("results folder not found", file=str(folder))
    frame = ResultsStore(folder).read_current()
    if not len(frame):
        raise DataError("no trials stored yet in this results folder", file=str(folder))
    return frame
