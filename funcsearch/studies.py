"""An index of the studies under a results folder: what ran, how long it took, who won.

One row per search (a folder with ``plan.json`` or ``trials.parquet``): planned, stored,
new and reused trials, their outcomes, the busy wall time of the trials this study ran
itself (the union of their [started, finished] intervals, so parallel trials count once
and reused trials, which another study paid for, not at all), their CPU time, and the
top of each proxy's leaderboard with its seed spread, and the two things that say how
far to trust that top: the agreement between seeds (noise) and the rank agreement with the
shipped full-scale reference where the study shares 3 or more functions with it, run with
the same learnable shift (fidelity). Calibration folders (with ``recipes.parquet``) get a
line each. ``render_index`` writes the lot as Markdown, the page a new user reads first
(``results/README.md``).

Summaries are cached beside each study (``summary.json``), keyed by a hash of what they are
computed from (the trials, plan and config files, the reference file, ``top`` and the code
that computes it, :data:`SUMMARY_CODE`), so the index of unchanged studies reads in well under a second
without importing pandas or torch; a changed or running study is summarized afresh.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funcsearch.layout import (CONFIG_FILE, PLAN_FILE, RECIPES_FILE, SUMMARY_FILE, TRIALS_DIR, TRIALS_FILE,
                               is_results_folder)

if TYPE_CHECKING:  # loaded only when a summary is (re)computed: a cached index stays light
    import pandas as pd

    from funcsearch.references import ReferenceSet

SUMMARY_CODE = ("studies.py", "ranking.py", "aggregate.py", "metrics.py", "fidelity.py", "references.py",
                "layout.py", "search/store.py", "proxies/*.py")
"""The modules whose code decides a summary (what it holds, how it is computed, each proxy's
declared metrics): their bytes are part of every cache key, so an upgrade never shows a
stale summary."""


@functools.lru_cache(maxsize=1)
def _code_key() -> str:
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for pattern in SUMMARY_CODE:
        for path in sorted(package.glob(pattern)):
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Entry:
    """One leaderboard line in a study summary (``text``: as displayed, in the metric's unit)."""

    candidate: str
    mean: float
    std: float
    ok: int
    diverged: int
    seeds: int
    text: str = ""


@dataclass
class Fidelity:
    """Spearman with the reference (Fisher-z 95% interval) over ``n`` shared functions."""

    estimate: float
    low: float
    high: float
    n: int


@dataclass
class StudySummary:
    """What one search folder holds (see module docstring)."""

    name: str
    folder: Path
    description: str
    planned: int
    stored: int
    new: int
    reused: int
    status: dict[str, int]
    busy_wall_s: float
    cpu_s: float
    top: dict[str, list[Entry]] = field(default_factory=dict)
    metric: dict[str, tuple[str, bool]] = field(default_factory=dict)
    heading: dict[str, str] = field(default_factory=dict)  # proxy -> "vit (test_acc, %, higher is better)"
    seed_agreement: dict[str, float] = field(default_factory=dict)  # proxy -> mean Spearman between seeds
    mean_ranking: dict[str, float] = field(default_factory=dict)    # proxy -> expected agreement of the seed mean
    fidelity: dict[str, Fidelity] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every planned trial is stored."""
        return self.stored >= self.planned

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "folder": None}

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> "StudySummary":
        data = {**data, "folder": folder}
        data["top"] = {p: [Entry(**e) for e in entries] for p, entries in data["top"].items()}
        data["metric"] = {p: (str(m), bool(h)) for p, (m, h) in data["metric"].items()}
        data["fidelity"] = {p: Fidelity(**f) for p, f in data["fidelity"].items()}
        return cls(**data)


@dataclass
class CalibrationSummary:
    """What one calibration folder holds: recipes tried and the default's figures."""

    name: str
    folder: Path
    proxy: str
    recipes: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "folder": None}

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> "CalibrationSummary":
        return cls(**{**data, "folder": folder})


def busy_seconds(started: pd.Series, finished: pd.Series) -> float:
    """Length of the union of the intervals [started, finished] (timestamps as text)."""
    import pandas as pd

    spans = pd.DataFrame({"s": pd.to_datetime(started, utc=True, errors="coerce"),
                          "f": pd.to_datetime(finished, utc=True, errors="coerce")}).dropna()
    total = 0.0
    end: pd.Timestamp | None = None
    begin: pd.Timestamp | None = None
    for s, f in spans.sort_values("s").itertuples(index=False):
        if end is None or s > end:
            if end is not None:
                total += (end - begin).total_seconds()
            begin, end = s, f
        else:
            end = max(end, f)
    if end is not None:
        total += (end - begin).total_seconds()
    return total


def _cpu_seconds(frame: pd.DataFrame) -> float:
    """Summed CPU time; trials stored before CPU time was recorded count their wall time
    (one torch thread per trial, so the two agree to a few percent)."""
    import pandas as pd

    wall = pd.to_numeric(frame["wall_time_s"], errors="coerce")
    cpu = pd.to_numeric(frame["cpu_time_s"], errors="coerce") if "cpu_time_s" in frame else wall * math.nan
    return float(cpu.fillna(wall).sum())


def summarize_study(folder: str | Path, top: int = 3, reference: ReferenceSet | None = None) -> StudySummary:
    """Summarize one search's results folder (partial searches included); with a reference,
    measure each proxy's fidelity to it where they share 3 or more functions."""
    from funcsearch.fidelity import measure_fidelity
    from funcsearch.ranking import leaderboard, metric_display
    from funcsearch.search.store import ResultsStore, reused_mask

    folder = Path(folder)
    store = ResultsStore(folder)
    frame = store.read_current()
    plan = store.read_plan() or []
    description = ""
    config_path = folder / CONFIG_FILE
    if config_path.exists():  # only its description: read, not validated (no proxy import)
        from funcsearch.yamlio import load_yaml

        try:
            data = load_yaml(config_path).data
            description = str(data.get("description") or "") if isinstance(data, dict) else ""
        except Exception:  # noqa: BLE001 - an index must not fail on one odd folder
            description = ""
    reused = reused_mask(frame)
    new = frame[~reused.to_numpy()] if len(frame) else frame
    summary = StudySummary(
        name=folder.name, folder=folder, description=description,
        planned=len(plan) or len(frame), stored=len(frame), new=len(new),
        reused=int(reused.sum()),
        status={str(k): int(v) for k, v in frame["status"].value_counts().items()} if len(frame) else {},
        busy_wall_s=busy_seconds(new["started_at"], new["finished_at"]) if len(new) else 0.0,
        cpu_s=_cpu_seconds(new) if len(new) else 0.0,
    )
    if len(frame):
        board = leaderboard(frame, bootstrap=0)
        summary.metric = dict(board.primary)
        for proxy, table in board.proxies.items():
            metric, higher = board.primary[proxy]
            d = metric_display(proxy, metric, higher)
            summary.heading[proxy] = (f"{proxy} ({metric}{', ' + d.unit if d.unit else ''}, "
                                      f"{'higher' if higher else 'lower'} is better)")
            ranked = table[table["rank"].notna()].head(top)
            summary.top[proxy] = [_entry(Entry(r.candidate, float(r.mean), float(r.std), int(r.ok),
                                               int(r.diverged), int(r.seeds)), d.value, d.spread)
                                  for r in ranked.itertuples(index=False)]
        summary.seed_agreement = {str(r.proxy): float(r.mean_spearman)
                                  for r in board.seed_agreement.itertuples(index=False)
                                  if not math.isnan(r.mean_spearman)}
        summary.mean_ranking = {str(r.proxy): float(r.mean_ranking)
                                for r in board.seed_agreement.itertuples(index=False)
                                if not math.isnan(r.mean_ranking)}
        for proxy in board.proxies if reference is not None else ():
            try:  # no bootstrap here (it was 90% of the index's time): the Fisher-z interval
                report = measure_fidelity(frame, reference, proxy=proxy, bootstrap=0)
            except ValueError:  # nothing comparable (other functions, or another shift): no figure
                continue
            fisher = getattr(report, "spearman_fisher", None)
            low, high = (fisher.low, fisher.high) if fisher is not None else (math.nan, math.nan)
            summary.fidelity[proxy] = Fidelity(report.spearman.estimate, low, high, report.n_shared)
    return summary


def summarize_calibration(folder: str | Path) -> CalibrationSummary:
    """Summarize one calibration folder (``recipes.parquet``)."""
    import pandas as pd

    folder = Path(folder)
    recipes = pd.read_parquet(folder / RECIPES_FILE)
    calibration = recipes[recipes["split"] == "calibration"]
    proxy = str(recipes["proxy"].iloc[0]) if len(recipes) else ""
    seconds = float((calibration["seconds_per_trial"] * calibration["trials"]).sum())
    return CalibrationSummary(name=folder.name, folder=folder, proxy=proxy,
                              recipes=int(calibration["recipe"].nunique()), seconds=seconds)


def summary_key(folder: Path, inputs: tuple[str, ...], extra: str = "") -> str:
    """Hash of what a folder's summary is computed from: its input files' bytes, the per-trial
    files a running search adds (name, size and time), ``extra`` (the reference file's bytes,
    ``top``) and the code (:data:`SUMMARY_CODE`)."""
    digest = hashlib.sha256(f"{_code_key()}|{extra}".encode())
    for name in inputs:
        path = folder / name
        digest.update(f"|{name}:".encode())
        digest.update(path.read_bytes() if path.is_file() else b"<absent>")
    pending = folder / TRIALS_DIR
    for path in sorted(pending.glob("*.parquet")) if pending.is_dir() else ():
        stat = path.stat()
        digest.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _cached(folder: Path, key: str, compute: Any, kind: type, refresh: bool) -> Any:
    """The folder's summary from ``summary.json`` when its key matches, else computed and
    stored there (a read-only folder is summarized without storing)."""
    path = folder / SUMMARY_FILE
    if not refresh and path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached.get("key") == key:
                return kind.from_json(cached["summary"], folder)
        except (ValueError, KeyError, TypeError):  # an odd or older cache: summarized afresh
            pass
    summary = compute()
    try:
        path.write_text(json.dumps({"key": key, "summary": summary.to_json()}, indent=1, sort_keys=True) + "\n",
                        encoding="utf-8")
    except OSError:
        pass
    return summary


def summarize_studies(root: str | Path, top: int = 3, reference: str | Path | None = None, *,
                      refresh: bool = False) -> tuple[list[StudySummary], list[CalibrationSummary]]:
    """Every search and calibration folder directly under ``root``, by name; fidelity is
    measured against ``reference`` (default: the shipped paper tables). Unchanged folders
    are read from their cached summaries unless ``refresh``."""
    from funcsearch.references import reference_path

    root = Path(root)
    if not root.is_dir():
        from funcsearch.errors import DataError

        raise DataError("results folder not found", file=str(root))
    reference_file = reference_path(reference)
    reference_key = hashlib.sha256(reference_file.read_bytes()).hexdigest()
    loaded: list[ReferenceSet] = []

    def reference_set() -> ReferenceSet:  # parsed once, and only when a study is summarized afresh
        if not loaded:
            from funcsearch.references import load_reference

            loaded.append(load_reference(reference_file))
        return loaded[0]

    studies: list[StudySummary] = []
    calibrations: list[CalibrationSummary] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            if is_results_folder(folder):
                key = summary_key(folder, (TRIALS_FILE, PLAN_FILE, CONFIG_FILE),
                                  f"top={top}|reference={reference_key}")
                studies.append(_cached(folder, key, lambda f=folder: summarize_study(f, top, reference_set()),
                                       StudySummary, refresh))
            elif (folder / RECIPES_FILE).exists():
                key = summary_key(folder, (RECIPES_FILE,))
                calibrations.append(_cached(folder, key, lambda f=folder: summarize_calibration(f),
                                            CalibrationSummary, refresh))
        except Exception as exc:  # noqa: BLE001 - one unreadable study must not hide the others
            warn_unreadable(folder, exc)
    return studies, calibrations


def warn_unreadable(folder: Path, exc: Exception) -> None:
    """One line on stderr for a study that cannot be read; the index goes on without it."""
    import sys

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"warning: {folder}: skipped, cannot be read: {text}", file=sys.stderr)


def _minutes(seconds: float) -> str:
    return "-" if not seconds else f"{seconds / 60:.0f} min"


def _entry(entry: Entry, value: Any, spread: Any) -> Entry:
    """``entry`` with its display text: ``name mean +- std`` in the metric's unit and resolution."""
    if entry.ok == 0:
        entry.text = f"{entry.candidate} (diverged on {entry.diverged}/{entry.seeds} seeds)"
        return entry
    deviation = "" if math.isnan(entry.std) else f" +- {spread(entry.std)}"
    seeds = "" if entry.ok == entry.seeds else f" ({entry.ok}/{entry.seeds} ok)"
    entry.text = f"{entry.candidate} {value(entry.mean)}{deviation}{seeds}"
    return entry


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a bare | would split it)."""
    return text.replace("|", "\\|")


def _trust(summary: StudySummary, proxy: str) -> str:
    """Noise and fidelity of one proxy's ranking, in a few words."""
    parts = []
    if proxy in summary.seed_agreement:
        mean = summary.mean_ranking.get(proxy)
        parts.append(f"seeds {summary.seed_agreement[proxy]:+.2f}"
                     + (f" (their mean {mean:+.2f})" if mean is not None else ""))
    if proxy in summary.fidelity:
        f = summary.fidelity[proxy]
        interval = "" if math.isnan(f.low) else f" [{f.low:+.2f}, {f.high:+.2f}]"
        parts.append(f"reference {f.estimate:+.2f}{interval} ({f.n} functions)")
    return f"{proxy}: {', '.join(parts)}" if parts else f"{proxy}: -"


PAPER_LABEL = "the paper's ViT-B property tables, run without the learnable shift"


def render_index(studies: list[StudySummary], calibrations: list[CalibrationSummary],
                 root: str | Path = "results", reference_label: str = PAPER_LABEL) -> str:
    """The Markdown index of a results folder (see module docstring)."""
    root = Path(root)
    lines = [
        "# Results",
        "",
        "Every study run on this repository's proxies, written by `funcsearch studies "
        f"{root.as_posix()} --out {(root / 'README.md').as_posix()}`. "
        "*new* trials ran in the study itself; *reused* ones were copied from a sibling study "
        "with the same trial key. *busy* is the wall time during which the study's own trials "
        "ran (parallel trials counted once); *CPU* is their summed CPU time. Top 3 per proxy: "
        "mean +- standard deviation over seeds, in each metric's unit; the differences "
        "between them are usually within seed noise: read each study's leaderboard for the "
        "intervals and paired comparisons. *noise and fidelity*, per proxy: *seeds* is the mean "
        "Spearman between the rankings of two seeds (how reproducible the order is; 1 = every "
        "seed ranks alike), and *their mean* how well the order of the mean over the study's seeds "
        "would come back with as many other seeds (Spearman-Brown from the former); *reference* is "
        f"the Spearman with the full-scale reference ({reference_label}) "
        "over the functions both ran with the same shift, with its Fisher-z 95% interval "
        "(`funcsearch fidelity` gives the full measure, with bootstrap intervals); no figure where fewer than 3 "
        "functions are shared.",
        "",
        "| study | trials (new + reused) / planned | ok / diverged / failed | busy | CPU | top 3 "
        "| noise and fidelity |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in studies:
        link = f"[{s.name}]({s.name}/report/index.html)" if (s.folder / "report" / "index.html").exists() \
            else f"[{s.name}]({s.name}/leaderboard.md)"
        counts = " / ".join(str(s.status.get(k, 0)) for k in ("ok", "diverged", "failed"))
        done = "" if s.complete else " (**incomplete**)"
        tops = "<br>".join(
            f"{s.heading[proxy]}: " + "; ".join(_cell(e.text) for e in entries)
            for proxy, entries in s.top.items())
        trust = "<br>".join(_trust(s, proxy) for proxy in s.top)
        lines.append(f"| {link} | {s.stored} ({s.new} + {s.reused}) / {s.planned}{done} | {counts} | "
                     f"{_minutes(s.busy_wall_s)} | {s.cpu_s / 3600:.1f} h | {tops} | {trust} |")
    if calibrations:
        lines += ["", "## Proxy calibrations", "",
                  "| calibration | proxy | recipes | CPU on the calibration split |", "| --- | --- | --- | --- |"]
        for c in calibrations:
            lines.append(f"| [{c.name}]({c.name}/calibration.md) | {c.proxy} | {c.recipes} | "
                         f"{c.seconds / 3600:.1f} h |")
    return "\n".join(lines) + "\n"


STUDIES_FORMATS = ("table", "md", "csv", "json")


def studies_frame(studies: list[StudySummary]) -> "pd.DataFrame":
    """One row per (study, proxy): counts, times, the top entries and the trust figures
    (numbers in each metric's display unit)."""
    import pandas as pd

    records = []
    for s in studies:
        for proxy in s.top or {"": []}:
            fidelity = s.fidelity.get(proxy)
            record = {"study": s.name, "proxy": proxy, "planned": s.planned, "stored": s.stored,
                      "new": s.new, "reused": s.reused, "complete": s.complete,
                      **{status: s.status.get(status, 0) for status in ("ok", "diverged", "failed")},
                      "busy_min": round(s.busy_wall_s / 60, 1), "cpu_h": round(s.cpu_s / 3600, 2),
                      "metric": s.metric.get(proxy, ("", True))[0] if proxy else "",
                      "top": "; ".join(e.text for e in s.top.get(proxy, [])),
                      "seed_agreement": s.seed_agreement.get(proxy, math.nan),
                      "seed_mean_agreement": s.mean_ranking.get(proxy, math.nan),
                      "reference_spearman": fidelity.estimate if fidelity else math.nan,
                      "reference_low": fidelity.low if fidelity else math.nan,
                      "reference_high": fidelity.high if fidelity else math.nan,
                      "reference_functions": fidelity.n if fidelity else 0}
            records.append(record)
    return pd.DataFrame.from_records(records)


def studies_text(studies: list[StudySummary], fmt: str) -> str:
    """The index as ``csv`` or ``json`` (one row per study and proxy)."""
    frame = studies_frame(studies)
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        import json

        return json.dumps(json.loads(frame.to_json(orient="records")), indent=1) + "\n"
    from funcsearch.errors import InputError

    raise InputError(f"unknown format {fmt!r} (choose from {', '.join(STUDIES_FORMATS)})", field="--format")


def studies_renderables(studies: list[StudySummary], calibrations: list[CalibrationSummary]) -> list[object]:
    """Rich tables for a terminal (100 columns): one line per study, then its top entries and
    how far to trust them, per proxy (no Markdown escapes, wrapped between words)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    overview = Table(title="studies", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    overview.add_column("study", style="bold", overflow="fold", min_width=16)
    overview.add_column("trials (new+reused)/planned", justify="right")
    overview.add_column("ok/div/failed", justify="right")
    overview.add_column("busy", justify="right")
    overview.add_column("CPU", justify="right")
    for s in studies:
        counts = "/".join(str(s.status.get(k, 0)) for k in ("ok", "diverged", "failed"))
        overview.add_row(s.name, f"{s.stored} ({s.new}+{s.reused})/{s.planned}"
                         + ("" if s.complete else " incomplete"), counts, _minutes(s.busy_wall_s),
                         f"{s.cpu_s / 3600:.1f} h")
    tops = Table(title="top 3 per proxy (mean +- std over seeds) and how far to trust them",
                 title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_lines=True)
    tops.add_column("study / proxy", overflow="fold", min_width=18, ratio=1)
    tops.add_column("top 3", overflow="fold", min_width=30, ratio=3)
    tops.add_column("seeds, reference", overflow="fold", min_width=16, ratio=1)
    for s in studies:
        for proxy, entries in s.top.items():
            tops.add_row(f"{s.name}\n{s.heading[proxy]}", "\n".join(e.text for e in entries),
                         _trust(s, proxy).split(": ", 1)[1].replace(", reference", "\nreference"))
    out: list[object] = [overview, tops,
                         Text("seeds: mean Spearman between two seeds' rankings (1 = reproducible); "
                              "reference: Spearman with the full-scale reference over the shared functions, "
                              "Fisher-z 95% interval (funcsearch fidelity for the full measure).", style="dim")]
    if calibrations:
        calib = Table(title="proxy calibrations", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("calibration", "proxy", "recipes", "CPU"):
            calib.add_column(column)
        for c in calibrations:
            calib.add_row(c.name, c.proxy, str(c.recipes), f"{c.seconds / 3600:.1f} h")
        out.append(calib)
    return out
