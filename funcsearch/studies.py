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
from funcsearch.ranking import fmt, is_results_folder, leaderboard
from funcsearch.references import ReferenceSet, load_reference
from funcsearch.search.store import ResultsStore

REUSED_PREFIX = "reused from "


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
    if config_path.exists():
        from funcsearch.search.config import load_search_config

        try:
            description = load_search_config(config_path).description
        except Exception:  # noqa: BLE001 - an index must not fail on one odd folder
            description = ""
    messages = frame["message"] if "message" in frame else pd.Series([], dtype=object)
    reused_mask = messages.fillna("").astype(str).str.startswith(REUSED_PREFIX)
    new = frame[~reused_mask.to_numpy()] if len(frame) else frame
    summary = StudySummary(
        name=folder.name, folder=folder, description=description,
        planned=len(plan) or len(frame), stored=len(frame), new=len(new),
        reused=int(reused_mask.sum()),
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
            try:
                report = measure_fidelity(frame, reference, proxy=proxy)
            except ValueError:  # nothing comparable (other functions, or another shift): no figure
                continue
            summary.fidelity[proxy] = (report.spearman, report.n_shared)
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


def _entry(entry: Entry, metric: tuple[str, bool], proxy: str) -> str:
    name = entry.candidate.replace("|", "\\|")  # a bare | would split the Markdown cell
    if entry.ok == 0:
        return f"{name} (diverged on {entry.diverged}/{entry.seeds} seeds)"
    from funcsearch.proxies.registry import declared_metric

    declared = declared_metric(proxy, metric[0])
    scale = declared.scale if declared is not None else 1.0
    spread = "" if math.isnan(entry.std) else f" +- {fmt(entry.std * scale, 2)}"
    seeds = "" if entry.ok == entry.seeds else f" ({entry.ok}/{entry.seeds} ok)"
    return f"{name} {fmt(entry.mean * scale, 3)}{spread}{seeds}"


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
        "mean +- standard deviation over seeds (accuracy in %, FID as is); the differences "
        "between them are usually within seed noise: read each study's leaderboard for the "
        "intervals and paired comparisons. *noise and fidelity*, per proxy: *seeds* is the mean "
        "Spearman between the rankings of two seeds (how reproducible the order is; 1 = every "
        f"seed ranks alike); *reference* is the Spearman with the full-scale reference ({reference_label}) "
        "over the functions both ran with the same shift, with its 95% bootstrap interval over seeds "
        "(`funcsearch fidelity` gives the full measure); no figure where fewer than 3 "
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
            f"{proxy} ({s.metric[proxy][0]}, {'higher' if s.metric[proxy][1] else 'lower'} is better): "
            + "; ".join(_entry(e, s.metric[proxy], proxy) for e in entries)
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
