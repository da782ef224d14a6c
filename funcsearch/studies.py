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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from funcsearch.fidelity import Interval, measure_fidelity
from funcsearch.ranking import is_results_folder, leaderboard, metric_display
from funcsearch.references import ReferenceSet, load_reference
from funcsearch.search.store import ResultsStore, reused_mask



@dataclass
class Entry:
    """One leaderboard line in a study summary."""

    candidate: str
    mean: float
    std: float
    ok: int
    diverged: int
    seeds: int


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
    seed_agreement: dict[str, float] = field(default_factory=dict)  # proxy -> mean Spearman between seeds
    fidelity: dict[str, tuple[Interval, int]] = field(default_factory=dict)  # proxy -> (Spearman, functions)

    @property
    def complete(self) -> bool:
        """Every planned trial is stored."""
        return self.stored >= self.planned


@dataclass
class CalibrationSummary:
    """What one calibration folder holds: recipes tried and the default's figures."""

    name: str
    folder: Path
    proxy: str
    recipes: int
    seconds: float


def busy_seconds(started: pd.Series, finished: pd.Series) -> float:
    """Length of the union of the intervals [started, finished] (timestamps as text)."""
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
    wall = pd.to_numeric(frame["wall_time_s"], errors="coerce")
    cpu = pd.to_numeric(frame["cpu_time_s"], errors="coerce") if "cpu_time_s" in frame else wall * math.nan
    return float(cpu.fillna(wall).sum())


def summarize_study(folder: str | Path, top: int = 3, reference: ReferenceSet | None = None) -> StudySummary:
    """Summarize one search's results folder (partial searches included); with a reference,
    measure each proxy's fidelity to it where they share 3 or more functions."""
    folder = Path(folder)
    store = ResultsStore(folder)
    frame = store.read_current()
    plan = store.read_plan() or []
    description = ""
    config_path = folder / "search.yaml"
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
        board = leaderboard(frame)
        summary.metric = dict(board.primary)
        for proxy, table in board.proxies.items():
            ranked = table[table["rank"].notna()].head(top)
            summary.top[proxy] = [Entry(r.candidate, float(r.mean), float(r.std), int(r.ok), int(r.diverged),
                                        int(r.seeds))
                                  for r in ranked.itertuples(index=False)]
        summary.seed_agreement = {str(r.proxy): float(r.mean_spearman)
                                  for r in board.seed_agreement.itertuples(index=False)
                                  if not math.isnan(r.mean_spearman)}
        for proxy in board.proxies if reference is not None else ():
            try:  # no bootstrap here (it was 90% of the index's time): the Fisher-z interval
                report = measure_fidelity(frame, reference, proxy=proxy, bootstrap=0)
            except ValueError:  # nothing comparable (other functions, or another shift): no figure
                continue
            fisher = getattr(report, "spearman_fisher", None)
            low, high = (fisher.low, fisher.high) if fisher is not None else (math.nan, math.nan)
            summary.fidelity[proxy] = (Interval(report.spearman.estimate, low, high), report.n_shared)
    return summary


def summarize_calibration(folder: str | Path) -> CalibrationSummary:
    """Summarize one calibration folder (``recipes.parquet``)."""
    folder = Path(folder)
    recipes = pd.read_parquet(folder / "recipes.parquet")
    calibration = recipes[recipes["split"] == "calibration"]
    proxy = str(recipes["proxy"].iloc[0]) if len(recipes) else ""
    seconds = float((calibration["seconds_per_trial"] * calibration["trials"]).sum())
    return CalibrationSummary(name=folder.name, folder=folder, proxy=proxy,
                              recipes=int(calibration["recipe"].nunique()), seconds=seconds)


def summarize_studies(root: str | Path, top: int = 3, reference: str | Path | None = None,
                      ) -> tuple[list[StudySummary], list[CalibrationSummary]]:
    """Every search and calibration folder directly under ``root``, by name; fidelity is
    measured against ``reference`` (default: the shipped paper tables)."""
    root = Path(root)
    if not root.is_dir():
        from funcsearch.errors import DataError

        raise DataError("results folder not found", file=str(root))
    reference_set = load_reference(reference)
    studies: list[StudySummary] = []
    calibrations: list[CalibrationSummary] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            if is_results_folder(folder):
                studies.append(summarize_study(folder, top=top, reference=reference_set))
            elif (folder / "recipes.parquet").exists():
                calibrations.append(summarize_calibration(folder))
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


def _entry(entry: Entry, metric: tuple[str, bool], proxy: str, escape: bool = True) -> str:
    """``name mean +- std`` in the metric's display unit and resolution."""
    name = entry.candidate.replace("|", "\\|") if escape else entry.candidate  # a bare | splits a cell
    if entry.ok == 0:
        return f"{name} (diverged on {entry.diverged}/{entry.seeds} seeds)"
    d = metric_display(proxy, metric[0], metric[1])
    spread = "" if math.isnan(entry.std) else f" +- {d.spread(entry.std)}"
    seeds = "" if entry.ok == entry.seeds else f" ({entry.ok}/{entry.seeds} ok)"
    return f"{name} {d.value(entry.mean)}{spread}{seeds}"


def _metric_heading(summary: StudySummary, proxy: str) -> str:
    metric, higher = summary.metric[proxy]
    d = metric_display(proxy, metric, higher)
    unit = f", {d.unit}" if d.unit else ""
    return f"{proxy} ({metric}{unit}, {'higher' if higher else 'lower'} is better)"


def _trust(summary: StudySummary, proxy: str) -> str:
    """Noise and fidelity of one proxy's ranking, in a few words."""
    parts = []
    if proxy in summary.seed_agreement:
        parts.append(f"seeds {summary.seed_agreement[proxy]:+.2f}")
    if proxy in summary.fidelity:
        spearman, n = summary.fidelity[proxy]
        interval = "" if math.isnan(spearman.low) else f" [{spearman.low:+.2f}, {spearman.high:+.2f}]"
        parts.append(f"reference {spearman.estimate:+.2f}{interval} ({n} functions)")
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
        f"seed ranks alike); *reference* is the Spearman with the full-scale reference ({reference_label}) "
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
            f"{_metric_heading(s, proxy)}: " + "; ".join(_entry(e, s.metric[proxy], proxy) for e in entries)
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
    records = []
    for s in studies:
        for proxy in s.top or {"": []}:
            fidelity = s.fidelity.get(proxy)
            record = {"study": s.name, "proxy": proxy, "planned": s.planned, "stored": s.stored,
                      "new": s.new, "reused": s.reused, "complete": s.complete,
                      **{status: s.status.get(status, 0) for status in ("ok", "diverged", "failed")},
                      "busy_min": round(s.busy_wall_s / 60, 1), "cpu_h": round(s.cpu_s / 3600, 2),
                      "metric": s.metric.get(proxy, ("", True))[0] if proxy else "",
                      "top": "; ".join(_entry(e, s.metric[proxy], proxy, escape=False) for e in s.top.get(proxy, [])),
                      "seed_agreement": s.seed_agreement.get(proxy, math.nan),
                      "reference_spearman": fidelity[0].estimate if fidelity else math.nan,
                      "reference_low": fidelity[0].low if fidelity else math.nan,
                      "reference_high": fidelity[0].high if fidelity else math.nan,
                      "reference_functions": fidelity[1] if fidelity else 0}
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
            tops.add_row(f"{s.name}\n{_metric_heading(s, proxy)}",
                         "\n".join(_entry(e, s.metric[proxy], proxy, escape=False) for e in entries),
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
