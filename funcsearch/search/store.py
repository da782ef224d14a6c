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
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from funcsearch.errors import DataError, InputError

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
])
COLUMNS = tuple(SCHEMA.names)


class SearchLockedError(InputError):
    """Another search holds the results folder."""


class ResultsStore:
    """Reads and writes ``results/<name>/`` (see module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.trials_dir = self.folder / "trials"
        self.consolidated_path = self.folder / "trials.parquet"
        self.plan_path = self.folder / "plan.json"
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
    def write(self, row: Mapping[str, Any]) -> Path:
        """Write one finished trial durably and atomically (replacing an older row of its key)."""
        self._require_lock()
        table = row_table(row)
        path = self.trials_dir / f"{row['trial_key']}.parquet"
        _atomic_write(path, lambda f: pq.write_table(table, f))
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Atomically write a text file (plan, leaderboard, config copy) into the folder."""
        path = self.folder / name
        _atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return path

    def write_plan(self, plan: Sequence[Mapping[str, Any]]) -> None:
        """Record which trial keys (and names) the latest search config asks for."""
        self.write_text("plan.json", json.dumps(list(plan), indent=1))

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
        """Every stored trial, one row per trial key (per-trial files override the table)."""
        frames: list[pd.DataFrame] = []
        if self.consolidated_path.exists():
            frames.append(_read_parquet(self.consolidated_path))
        if self.trials_dir.is_dir():
            frames.extend(_read_parquet(p) for p in sorted(self.trials_dir.glob("*.parquet")))
        frames = [f for f in frames if len(f)]
        if not frames:
            return _empty_table().to_pandas()
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.drop_duplicates("trial_key", keep="last").reset_index(drop=True)
        return frame

    def read_plan(self) -> list[dict[str, Any]] | None:
        """The latest plan (list of dicts with ``trial_key`` ...) or None if never written."""
        if not self.plan_path.exists():
            return None
        return json.loads(self.plan_path.read_text())

    def read_current(self) -> pd.DataFrame:
        """Rows of the latest plan only (older configs' trials stay stored but are skipped)."""
        frame = self.read()
        plan = self.read_plan()
        if plan is None or not len(frame):
            return frame
        names = {p["trial_key"]: p for p in plan}
        frame = frame[frame["trial_key"].isin(names)].copy()
        # the plan's names win: renaming a candidate does not rerun it
        frame["candidate"] = [names[k]["candidate"] for k in frame["trial_key"]]
        frame["is_baseline"] = [bool(names[k]["is_baseline"]) for k in frame["trial_key"]]
        return frame.reset_index(drop=True)


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
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read results file: {exc}", file=str(path)) from None


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
