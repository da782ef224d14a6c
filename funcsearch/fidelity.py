"""Proxy fidelity: how well a proxy's ranking agrees with full-scale reference results.

For the functions a search and a reference set share (joined by numeric fingerprint, among
the trials run with the reference's learnable shift s when the reference states it):

- rank agreement: Spearman and Kendall (tau-b) correlation of the proxy's seed means with
  the reference values, with a percentile bootstrap interval over seeds (seeds are
  resampled jointly, so the pairing of candidates within a seed is kept);
- top-k overlap: how many of the reference's k best working functions are among the
  proxy's k best;
- failure agreement: each reference failure must be a proxy failure or among the proxy's
  worst; each proxy failure must be a reference failure (else it is a false alarm);
- per study, how well the proxy's ranking separates the reference's bad set from the rest
  (the share of bad-other pairs it orders the same way: 1 = all below, 0 = all above);
- between two rankings (two recipes): B's Spearman minus A's on the functions both ran, with a
  paired bootstrap interval (``fidelity_difference``; ``funcsearch compare --reference``).

Conventions (stated in every report):
- a candidate *fails on the proxy* when at least half of its seeds diverged;
- failures rank below every working function, tied among themselves;
- "among the proxy's worst" = in the bottom ``max(#reference-bad, ceil(worst_fraction*n))``;
- a study without reference failures uses its worst ``ceil(worst_fraction*n)`` working
  functions as its "bad" set, so every study has a failure pattern to reproduce;
- lower-is-better metrics (FID, losses) are negated first, so "higher = better" throughout.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from funcsearch.expressions import fingerprint
from funcsearch.metrics import orient
from funcsearch.named import NORM_BASELINES
from funcsearch.ranking import spearman_interval
from funcsearch.references import ReferenceSet, norm_key

USED_STATUSES = ("ok", "diverged")


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        if math.isnan(self.estimate):
            return "n/a"
        if math.isnan(self.low) or math.isnan(self.high):
            return f"{self.estimate:+.2f} (no interval: one seed)"
        return f"{self.estimate:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


STUDY_COLUMNS = ("study", "n", "Spearman in the study", "reference bad (diverged or worst)",
                 "bad ranked below the rest (AUC)", "caught", "missed", "false alarms", "reproduced")
"""The per-study table's columns, in the order ``StudyPattern.cells`` fills them."""


@dataclass(frozen=True)
class StudyPattern:
    """Whether a proxy reproduces one study's failure pattern, and how it orders the study."""

    study: str
    n: int
    reference_bad: list[str]
    caught: list[str]
    missed: list[str]
    false_alarms: list[str]
    spearman: float = float("nan")
    """Spearman of the proxy's seed means with the reference within this study (failures tied
    last on both sides): the pattern says whether the worst are found, this how the rest is ordered."""
    separation: float = float("nan")
    """The share of (reference-bad, other) pairs of the study that the proxy ranks the same way,
    ties counted half (the area under the ROC curve of the proxy's ranking as a detector of the
    reference's bad set): 1 = every bad function below every other, 0.5 = chance, 0 = the pattern
    read backwards. A continuous form of ``reproduced``, so a recipe's progress towards a pattern
    shows before the pattern is caught."""

    @property
    def reproduced(self) -> bool:
        return not self.missed and not self.false_alarms

    def cells(self) -> list[str]:
        """One row of the per-study table (``STUDY_COLUMNS``)."""
        return [self.study, str(self.n), "-" if math.isnan(self.spearman) else f"{self.spearman:+.2f}",
                str(len(self.reference_bad)), "-" if math.isnan(self.separation) else f"{self.separation:.2f}",
                str(len(self.caught)), ", ".join(self.missed) or "-",
                ", ".join(self.false_alarms) or "-", "yes" if self.reproduced else "no"]


@dataclass(frozen=True)
class FidelityReport:
    proxy: str
    metric: str
    studies: list[str]
    n_shared: int
    n_seeds: int
    spearman: Interval
    kendall: Interval
    top_k: int
    top_k_overlap: float
    reference_failures: int
    failures_caught: int
    proxy_failures: int
    false_alarms: int
    patterns: list[StudyPattern] = field(default_factory=list)
    table: pd.DataFrame | None = None  # one row per shared function
    spearman_fisher: Interval = Interval(float("nan"), float("nan"), float("nan"))
    reference: str = ""
    patterns_by_seed: tuple[int, ...] = ()
    """Patterns reproduced by each seed alone (empty with one seed): the count's seed noise."""
    spearman_by_seed: tuple[float, ...] = ()
    """The Spearman of each seed alone (empty with one seed): how far one seed's figure strays."""

    @property
    def sample(self) -> str:
        """Whether the figure is in sample: every shipped reference is released calibration
        data (recipes are tuned on it); only a reference of your own can be held out."""
        return "in-sample: released calibration data" if self._shipped else "against your reference"

    @property
    def _shipped(self) -> bool:
        return "funcsearch/data/references" in self.reference.replace("\\", "/")

    @property
    def failure_agreement(self) -> float:
        """Share of failure checks that agree: (caught + confirmed) / (ref failures + proxy failures)."""
        total = self.reference_failures + self.proxy_failures
        confirmed = self.proxy_failures - self.false_alarms
        return (self.failures_caught + confirmed) / total if total else float("nan")

    @property
    def patterns_reproduced(self) -> int:
        return sum(p.reproduced for p in self.patterns)

    def subject(self, quote: str = "") -> str:
        """What was measured: ``proxy `vit` (test_loss)`` or the aggregate rank."""
        if self.proxy == "aggregate":
            return "the aggregate rank (each function's mean rank over the proxies)"
        return f"proxy {quote}{self.proxy}{quote} ({self.metric})"

    @property
    def spearman_text(self) -> str:
        """The Spearman with its bootstrap interval; the aggregate has one value per function
        (its seed interval is in the leaderboard), so its interval is the Fisher-z one."""
        if self.proxy == "aggregate" and math.isnan(self.spearman.low):
            return f"{self.spearman.estimate:+.2f} (one value per function: see Fisher-z)"
        return str(self.spearman)

    @property
    def patterns_text(self) -> str:
        """``1/6`` and, with several seeds, what each seed alone reproduces: ``1/6 (each seed
        alone: 3, 2, 1)`` - a count from one seed can be luck."""
        text = f"{self.patterns_reproduced}/{len(self.patterns)}"
        if self.patterns_by_seed:
            text += f" (each seed alone: {', '.join(str(n) for n in self.patterns_by_seed)})"
        return text

    def measure_rows(self) -> list[tuple[str, str]]:
        """(measure, value) rows: the figures every rendering (text, Markdown, HTML) prints."""
        rows = [("Spearman (95% bootstrap over functions and seeds)", self.spearman_text),
                ("Spearman, Fisher-z 95% interval", str(self.spearman_fisher))]
        if self.spearman_by_seed:
            rows.append(("Spearman, each seed alone", ", ".join(f"{v:+.2f}" for v in self.spearman_by_seed)))
        return rows + [
            ("Kendall tau-b (95% bootstrap over functions and seeds)", str(self.kendall)),
            (f"top-{self.top_k} overlap", f"{self.top_k_overlap:.2f}"),
            ("reference divergences caught (proxy failure or among its worst)",
             f"{self.failures_caught}/{self.reference_failures}"),
            ("proxy failures that diverged at full scale too",
             f"{self.proxy_failures - self.false_alarms}/{self.proxy_failures}"),
            ("failure agreement", _agreement(self.failure_agreement)),
            ("study failure patterns reproduced", self.patterns_text),
        ]

    def summary(self) -> dict[str, Any]:
        """Flat numbers, for tables, JSON and calibration objectives."""
        return {
            "proxy": self.proxy, "metric": self.metric, "studies": ",".join(self.studies),
            "n_shared": self.n_shared, "n_seeds": self.n_seeds,
            "spearman": self.spearman.estimate, "spearman_low": self.spearman.low,
            "spearman_high": self.spearman.high, "spearman_fisher_low": self.spearman_fisher.low,
            "spearman_fisher_high": self.spearman_fisher.high, "sample": self.sample,
            "kendall": self.kendall.estimate,
            "kendall_low": self.kendall.low, "kendall_high": self.kendall.high,
            "top_k": self.top_k, "top_k_overlap": self.top_k_overlap,
            "reference_failures": self.reference_failures, "failures_caught": self.failures_caught,
            "proxy_failures": self.proxy_failures, "false_alarms": self.false_alarms,
            "failure_agreement": self.failure_agreement,
            "patterns_reproduced": self.patterns_reproduced, "patterns_total": len(self.patterns),
            "patterns_by_seed": ",".join(str(n) for n in self.patterns_by_seed),
            "spearman_by_seed": ",".join(f"{v:.4f}" for v in self.spearman_by_seed),
        }

    def to_markdown(self) -> str:
        """The figures as Markdown tables (what `funcsearch fidelity` prints)."""
        lines = [
            f"### Fidelity of {self.subject('`')} against "
            f"{Path(self.reference).stem if self.reference else 'the reference'}",
            "",
            f"Studies: {', '.join(self.studies)}. Shared functions: {self.n_shared}; seeds: {self.n_seeds}. "
            f"Figures are {self.sample}.",
            "",
            "| measure | value |",
            "| --- | --- |",
            *(f"| {label} | {value} |" for label, value in self.measure_rows()),
            "",
            "| " + " | ".join(STUDY_COLUMNS) + " |",
            "|" + " --- |" * len(STUDY_COLUMNS),
        ]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in p.cells()) + " |"  # names like erf|clip=1
                  for p in self.patterns]
        lines += ["", "A proxy failure = at least half the seeds diverged. A study's pattern is counted "
                  "when the search ran at least half of its functions. Bootstrap intervals resample "
                  "functions and seeds together; with few of either they are wide."]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = self.summary()
        out["patterns"] = [asdict(p) | {"reproduced": p.reproduced} for p in self.patterns]
        return out


def _agreement(value: float) -> str:
    """Failure agreement for display: n/a when neither side has a failure to agree on."""
    return "n/a (no failures on either side)" if math.isnan(value) else f"{value:.2f}"


def _oriented(trials: pd.DataFrame) -> pd.Series:
    higher = trials["higher_is_better"] if "higher_is_better" in trials else True
    return pd.Series(orient(trials["score"], higher), index=trials.index)


def seed_matrix(trials: pd.DataFrame, proxy: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Per-function, per-seed oriented scores and divergence flags for one proxy.

    Returns (scores, diverged, metric): both frames are indexed by fingerprint with seeds as
    columns; scores are NaN where a seed diverged or is missing."""
    rows = trials[(trials["proxy"] == proxy) & trials["status"].isin(USED_STATUSES)].copy()
    if rows.empty:
        raise ValueError(f"no ok/diverged trials for proxy '{proxy}'")
    if "stop_epoch" in rows:  # rows of a shortened budget (successive halving) are not final
        full = rows["stop_epoch"].isna()
        rows = rows[full] if full.any() else rows
    cache: dict[str, str] = {}
    rows["fingerprint"] = [cache.setdefault(e, fingerprint(e)) if isinstance(e, str) and e
                           else (norm_key(c) if str(c).lower() in NORM_BASELINES else None)
                           for e, c in zip(rows["expression"], rows["candidate"])]
    rows = rows[rows["fingerprint"].notna()]
    rows["oriented"] = _oriented(rows)
    rows["diverged"] = rows["status"] == "diverged"
    scores = rows.pivot_table(index="fingerprint", columns="seed", values="oriented", aggfunc="mean")
    diverged = rows.pivot_table(index="fingerprint", columns="seed", values="diverged", aggfunc="max")
    scores = scores.reindex(index=diverged.index, columns=diverged.columns)  # all-diverged rows too
    metric = str(rows["primary_metric"].iloc[0]) if "primary_metric" in rows else "score"
    scores.attrs["names"] = rows.groupby("fingerprint")["candidate"].first().to_dict()
    return scores, diverged.astype(float), metric


def matching_shift(trials: pd.DataFrame, reference: ReferenceSet, proxy: str) -> pd.DataFrame:
    """The trials run with the reference's learnable shift s (all when either side does not say).

    ``erf`` with a learnable s and ``erf`` without it share an expression but are different
    functions of the input; comparing a search run with s against references run without it
    (or averaging the two, as an s ablation would) measures the wrong thing."""
    if reference.shift is None or "shift" not in trials:
        return trials
    pointwise = trials["expression"].fillna("").astype(str) != ""
    # LayerNorm / RMSNorm have no learnable shift to disagree on: they always compare
    keep = (trials["shift"].fillna(reference.shift).astype(str) == reference.shift) | ~pointwise
    mine = (trials["proxy"] == proxy) & pointwise
    if mine.any() and not (keep & mine).any():
        found = ", ".join(sorted(set(trials.loc[mine, "shift"].astype(str))))
        raise ValueError(f"the reference was run with shift={reference.shift} and this search's "
                         f"'{proxy}' functions with shift={found}: they are different functions, "
                         "so the reference says nothing about this ranking")
    return trials[keep]


def _values(scores: np.ndarray, diverged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seed means with failures at -inf, and the failure flags, from per-seed arrays.

    A function fails when at least half its seeds diverged, or when no seed finished."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            divergence = np.nanmean(diverged, axis=1)
            means = np.nanmean(scores, axis=1)
    failed = (divergence >= 0.5) | np.isnan(means)
    return np.where(failed, -np.inf, means), failed


def _correlations(proxy_values: np.ndarray, reference_values: np.ndarray) -> tuple[float, float]:
    a = _finite_ranks(proxy_values)
    b = _finite_ranks(reference_values)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    spearman = stats.spearmanr(a, b).statistic
    kendall = stats.kendalltau(a, b).statistic
    return float(spearman), float(kendall)


def separation(values: np.ndarray, bad: Sequence[int], others: Sequence[int]) -> float:
    """The share of (bad, other) pairs in which ``values`` (higher = better, failures at -inf)
    put the bad one lower, ties counted half: the Mann-Whitney AUC; NaN without a pair."""
    if not len(bad) or not len(others):
        return float("nan")
    low = np.where(np.isneginf(values), -1e300, values)
    b, o = low[list(bad)][:, None], low[list(others)][None, :]
    return float(((b < o) + 0.5 * (b == o)).mean())


def _finite_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (average for ties) where -inf (failure) ties at the bottom."""
    return stats.rankdata(np.where(np.isneginf(values), -1e300, values))


def _studies(reference: ReferenceSet, studies: Sequence[str] | None) -> pd.DataFrame:
    """The reference's rows, of ``studies`` only when given (an unknown study is an error)."""
    ref = reference.table
    if studies:
        unknown = sorted(set(studies) - set(ref["study"]))
        if unknown:
            raise ValueError(f"unknown studies {unknown}; the reference has {sorted(set(ref['study']))}")
        ref = ref[ref["study"].isin(studies)]
    return ref


def _reference_by_function(ref: pd.DataFrame, reference: ReferenceSet) -> pd.DataFrame:
    """One row per fingerprint: the oriented reference value (higher = better), whether it
    failed at full scale, its name and its studies."""
    sign = 1.0 if reference.higher_is_better else -1.0
    return ref.groupby("fingerprint").agg(
        value=("value", lambda v: sign * float(np.nanmean(v)) if v.notna().any() else float("nan")),
        failed=("failed", "max"),
        name=("name", "first"),
        study=("study", lambda s: ",".join(sorted(set(s)))),
    )


def _reference_values(ref_by_fp: pd.DataFrame, shared: Sequence[str]) -> np.ndarray:
    """The oriented reference values of ``shared`` functions, full-scale failures at -inf."""
    return np.where(ref_by_fp.loc[shared, "failed"].to_numpy(bool), -np.inf,
                    ref_by_fp.loc[shared, "value"].to_numpy(float))


def measure_fidelity(
    trials: pd.DataFrame,
    reference: ReferenceSet,
    *,
    proxy: str,
    studies: Sequence[str] | None = None,
    top_k: int = 5,
    worst_fraction: float = 0.25,
    bootstrap: int = 1000,
    seed: int = 0,
) -> FidelityReport:
    """Compare one proxy's results with a reference set (see the module docstring)."""
    ref = _studies(reference, studies)
    sign = 1.0 if reference.higher_is_better else -1.0
    ref_by_fp = _reference_by_function(ref, reference)
    trials = matching_shift(trials, reference, proxy)
    scores, diverged, metric = seed_matrix(trials, proxy)
    shared = [fp for fp in ref_by_fp.index if fp in scores.index]
    if len(shared) < 3:
        count = f"{len(shared)} function{'' if len(shared) == 1 else 's'}"
        raise ValueError(f"only {count} shared between the results and the reference, 3 or more are "
                         "needed; did the search run the reference's functions?")
    score_arr = scores.loc[shared].to_numpy(dtype=float)
    diverged_arr = diverged.loc[shared].to_numpy(dtype=float)
    proxy_values, proxy_failed = _values(score_arr, diverged_arr)
    ref_values = _reference_values(ref_by_fp, shared)
    ref_failed = np.isneginf(ref_values)

    spearman, kendall = _correlations(proxy_values, ref_values)
    rng = np.random.default_rng(seed)
    n_seeds = score_arr.shape[1]
    n_functions = len(shared)
    boot_s, boot_k = [], []
    for _ in range(bootstrap):  # functions and seeds resampled together
        rows = rng.integers(0, n_functions, n_functions)
        pick = rng.integers(0, n_seeds, n_seeds)
        values, _ = _values(score_arr[rows][:, pick], diverged_arr[rows][:, pick])
        s, k = _correlations(values, ref_values[rows])
        if not math.isnan(s):
            boot_s.append(s)
            boot_k.append(k)
    _, fisher_low, fisher_high, _ = spearman_interval(_finite_ranks(proxy_values), _finite_ranks(ref_values))

    def interval(estimate: float, samples: list[float]) -> Interval:
        if not samples:
            return Interval(estimate, float("nan"), float("nan"))
        low, high = np.percentile(samples, [2.5, 97.5])
        return Interval(estimate, float(low), float(high))

    search_names = scores.attrs.get("names", {})
    names = [search_names.get(fp) or ref_by_fp.loc[fp, "name"] for fp in shared]  # the search's own names
    n = len(shared)
    study_sizes = ref.groupby("study")["fingerprint"].nunique().to_dict()
    working = ~ref_failed
    k = max(1, min(top_k, int(working.sum())))
    ref_order = [i for i in np.argsort(-np.where(working, ref_values, -np.inf), kind="stable") if working[i]]
    proxy_order = list(np.argsort(-np.where(np.isneginf(proxy_values), -1e300, proxy_values), kind="stable"))
    overlap = len(set(ref_order[:k]) & set(proxy_order[:k])) / k

    def worst_set(indices: list[int], bad_count: int, values: np.ndarray = proxy_values) -> set[int]:
        size = max(bad_count, math.ceil(worst_fraction * len(indices)))
        ordered = sorted(indices, key=lambda i: (values[i] if not np.isneginf(values[i]) else -1e300))
        return set(ordered[:size])

    study_of = ref_by_fp.loc[shared, "study"].tolist()
    study_names = sorted({s for joined in study_of for s in joined.split(",")})

    def study_patterns(values: np.ndarray, failed: np.ndarray) -> list[StudyPattern]:
        out = []
        for study in study_names:
            members = [i for i in range(n) if study in study_of[i].split(",")]
            if 2 * len(members) < study_sizes.get(study, 0):
                continue  # a study is a pattern only where the search ran most of it (not a shared base)
            bad = [i for i in members if ref_failed[i]]
            if not bad:
                size = math.ceil(worst_fraction * len(members))
                bad = sorted(members, key=lambda i: ref_values[i])[:size]
            worst = worst_set(members, len(bad), values)
            caught = [i for i in bad if failed[i] or i in worst]
            false_alarms = [i for i in members if failed[i] and not ref_failed[i]]
            out.append(StudyPattern(
                study=study, n=len(members), reference_bad=[names[i] for i in bad],
                caught=[names[i] for i in caught], missed=[names[i] for i in bad if i not in caught],
                false_alarms=[names[i] for i in false_alarms],
                spearman=_correlations(values[members], ref_values[members])[0],
                separation=separation(values, bad, [i for i in members if i not in bad]),
            ))
        return out

    patterns = study_patterns(proxy_values, proxy_failed)
    per_seed = [_values(score_arr[:, [j]], diverged_arr[:, [j]]) for j in range(n_seeds)] if n_seeds > 1 else []
    by_seed = tuple(sum(p.reproduced for p in study_patterns(*values)) for values in per_seed) \
        if not np.isnan(diverged_arr).any() else ()
    spearman_by_seed = tuple(_correlations(values, ref_values)[0] for values, _ in per_seed)

    all_worst = worst_set(list(range(n)), int(ref_failed.sum()))
    caught_total = sum(1 for i in range(n) if ref_failed[i] and (proxy_failed[i] or i in all_worst))
    table = pd.DataFrame({
        "name": names,
        "study": study_of,
        "reference": [float("nan") if f else sign * v for v, f in zip(ref_values, ref_failed)],
        "reference_failed": ref_failed,
        "proxy_mean": [float("nan") if np.isneginf(v) else v for v in proxy_values],
        "proxy_failed": proxy_failed,
        "proxy_rank": stats.rankdata(-_finite_ranks(proxy_values), method="min").astype(int),
        "reference_rank": stats.rankdata(-_finite_ranks(ref_values), method="min").astype(int),
    }, index=pd.Index(shared, name="fingerprint"))
    return FidelityReport(
        proxy=proxy, metric=metric, studies=study_names, n_shared=n, n_seeds=n_seeds,
        spearman=interval(spearman, boot_s), kendall=interval(kendall, boot_k),
        spearman_fisher=Interval(spearman, fisher_low, fisher_high), reference=reference.source,
        top_k=k, top_k_overlap=overlap,
        reference_failures=int(ref_failed.sum()), failures_caught=caught_total,
        proxy_failures=int(proxy_failed.sum()),
        false_alarms=int((proxy_failed & ~ref_failed).sum()),
        patterns=patterns, table=table.sort_values("proxy_rank"), patterns_by_seed=by_seed,
        spearman_by_seed=spearman_by_seed,
    )


@dataclass(frozen=True)
class FidelityDifference:
    """Two rankings of the same functions (two recipes, two studies) against one reference:
    each side's Spearman on the functions both ran, and B - A with a paired bootstrap interval
    (the same functions drawn for both sides, each side's seeds drawn on their own), so that
    "is recipe B more faithful than A" is answered with its noise rather than by two figures
    whose own intervals overlap."""

    proxy: str
    reference: str
    n_shared: int
    seeds_a: int
    seeds_b: int
    spearman_a: float
    spearman_b: float
    difference: Interval

    def line(self) -> str:
        name = Path(self.reference).stem if self.reference else "the reference"
        return (f"Fidelity vs {name} ({self.n_shared} functions run by both; seeds {self.seeds_a} / "
                f"{self.seeds_b}): Spearman A {self.spearman_a:+.2f}, B "
                f"{self.spearman_b:+.2f}; B - A {self.difference} (paired bootstrap over functions"
                + (", each side's seeds resampled)" if max(self.seeds_a, self.seeds_b) > 1 else ")"))


def fidelity_difference(trials_a: pd.DataFrame, trials_b: pd.DataFrame, reference: ReferenceSet, *,
                        proxy: str, studies: Sequence[str] | None = None, bootstrap: int = 1000,
                        seed: int = 0) -> FidelityDifference:
    """B's Spearman with ``reference`` minus A's, on the functions both sides and the reference
    share, with a 95% percentile interval (see :class:`FidelityDifference`)."""
    ref_by_fp = _reference_by_function(_studies(reference, studies), reference)
    scores_a, diverged_a, _ = seed_matrix(matching_shift(trials_a, reference, proxy), proxy)
    scores_b, diverged_b, _ = seed_matrix(matching_shift(trials_b, reference, proxy), proxy)
    shared = [fp for fp in ref_by_fp.index if fp in scores_a.index and fp in scores_b.index]
    if len(shared) < 3:
        raise ValueError(f"only {len(shared)} functions are shared by both sides and the reference; "
                         "3 or more are needed")
    ref_values = _reference_values(ref_by_fp, shared)
    a_scores, a_div = scores_a.loc[shared].to_numpy(float), diverged_a.loc[shared].to_numpy(float)
    b_scores, b_div = scores_b.loc[shared].to_numpy(float), diverged_b.loc[shared].to_numpy(float)

    def spearman(scores: np.ndarray, diverged: np.ndarray, reference_values: np.ndarray) -> float:
        return _correlations(_values(scores, diverged)[0], reference_values)[0]

    rho_a, rho_b = spearman(a_scores, a_div, ref_values), spearman(b_scores, b_div, ref_values)
    rng = np.random.default_rng(seed)
    n = len(shared)
    draws = []
    for _ in range(bootstrap):
        rows = rng.integers(0, n, n)
        pick_a = rng.integers(0, a_scores.shape[1], a_scores.shape[1])
        pick_b = rng.integers(0, b_scores.shape[1], b_scores.shape[1])
        sa = spearman(a_scores[rows][:, pick_a], a_div[rows][:, pick_a], ref_values[rows])
        sb = spearman(b_scores[rows][:, pick_b], b_div[rows][:, pick_b], ref_values[rows])
        if not (math.isnan(sa) or math.isnan(sb)):
            draws.append(sb - sa)
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (float("nan"), float("nan"))
    return FidelityDifference(proxy=proxy, reference=reference.source, n_shared=n,
                              seeds_a=a_scores.shape[1], seeds_b=b_scores.shape[1],
                              spearman_a=float(rho_a), spearman_b=float(rho_b),
                              difference=Interval(float(rho_b - rho_a), float(low), float(high)))


def declared_references(proxy: str) -> tuple[str, ...]:
    """The full-scale references a proxy declares (its own task's results first); a proxy of no
    registered kind is compared with the shipped paper tables."""
    from funcsearch.proxies.registry import PROXIES
    from funcsearch.references import PAPER_REFERENCE

    return tuple(PROXIES[proxy].references) if proxy in PROXIES else (PAPER_REFERENCE,)


def aggregate_fidelity(trials: pd.DataFrame, reference: ReferenceSet, rule: Any = None, *,
                       studies: Sequence[str] | None = None, top_k: int = 5) -> FidelityReport:
    """Fidelity of the declared aggregate ranking (:mod:`funcsearch.aggregate`) to a reference:
    each function's mean rank across the proxies, compared like one proxy's score. One value per
    function, so the interval is Fisher-z (the aggregate's own seed interval is in the
    leaderboard)."""
    return measure_fidelity(aggregate_rows(trials, rule), reference, proxy="aggregate", studies=studies,
                            top_k=top_k, bootstrap=0)


def aggregate_rows(trials: pd.DataFrame, rule: Any = None) -> pd.DataFrame:
    """The declared aggregate ranking as trial-like rows of a proxy named ``aggregate`` (one
    row per function, score = minus its aggregate rank: its mean rank), so that every fidelity
    measure reads it as it reads one proxy. A function a screen failed is a failure of the
    aggregate (status ``diverged``): below every function that passed, as in the leaderboard,
    but tied there with the others the screens failed (as every proxy's failures are), and
    counted among the proxy failures and false alarms, as a screen's verdict should be."""
    from funcsearch.aggregate import aggregate_ranking

    table, _ = aggregate_ranking(trials, rule, bootstrap=0)
    first = trials.drop_duplicates("candidate").set_index("candidate")
    names = table["candidate"]
    status = np.where(table["screened_out"].astype(bool), "diverged", "ok")
    return pd.DataFrame({
        "candidate": names.to_numpy(), "proxy": "aggregate", "seed": 0, "status": status,
        "score": -table["aggregate_rank"].to_numpy(float), "higher_is_better": True,
        "primary_metric": "aggregate rank",
        "expression": first["expression"].reindex(names).to_numpy(),
        "shift": first["shift"].reindex(names).to_numpy() if "shift" in first else None,
    })


def fidelity_lines(results: str | Path | pd.DataFrame, reference: str | Path | None = None,
                   proxy: str | None = None, rule: Any = None) -> list[str]:
    """One sentence per proxy and reference for the end of a leaderboard: the fidelity measured
    on this study's functions, or why it cannot be measured here. Without ``reference``, each
    proxy is compared with the full-scale references it declares (its own task's results);
    proxies of no registered kind fall back to the shipped paper tables. With several proxies,
    the declared aggregate (``rule``, default the default rule) is measured against each of
    their references too. A ranking is printed with its noise and its fidelity."""
    from funcsearch.references import load_reference
    from funcsearch.search.store import read_results

    from funcsearch.aggregate import screen_verdicts

    frame = results if isinstance(results, pd.DataFrame) else read_results(Path(results))
    proxies = sorted(set(frame["proxy"])) if proxy is None else [proxy]
    verdicts = screen_verdicts(frame)
    lines = []
    for each in proxies:
        if each in verdicts:  # a screen is read for its divergences, never its scores
            lines.append(_screen_line(frame, each, verdicts[each], reference))
            continue
        names = (reference,) if reference is not None else declared_references(each)
        if not names:
            lines.append(f"Fidelity {each}: not measured (the proxy declares no full-scale reference).")
            continue
        reasons = []
        for name in names:
            reference_set = load_reference(name)
            label = Path(reference_set.source).name
            try:
                report = measure_fidelity(frame, reference_set, proxy=each)
            except ValueError as exc:
                reasons.append(f"{label}: {exc}")
                continue
            s = report.spearman
            interval = "" if math.isnan(s.low) else f" [{s.low:+.2f}, {s.high:+.2f}]"
            caught = (f"; reference divergences caught {report.failures_caught}/{report.reference_failures}"
                      if report.reference_failures else "")
            lines.append(f"Fidelity {each} vs {label} ({report.sample}): Spearman {s.estimate:+.2f}"
                         f"{interval} over {report.n_shared} shared functions{caught} "
                         "(`funcsearch fidelity` gives the full measure).")
            reasons = []
            break
        if reasons:
            lines.append(f"Fidelity {each}: not measured on this study ({'; '.join(reasons)}). The fidelity "
                         "of a proxy recipe is measured on reference studies with `funcsearch calibrate`.")
    if proxy is None and len(proxies) > 1:  # the declared aggregate, against every reference declared
        from funcsearch.proxies.registry import PROXIES

        declared = [reference] if reference is not None else list(dict.fromkeys(
            name for each in proxies if each in PROXIES for name in declared_references(each)))
        for name in declared:
            reference_set = load_reference(name)
            try:
                report = aggregate_fidelity(frame, reference_set, rule)
            except ValueError:  # another shift, or too few shared functions: nothing to say
                continue
            f = report.spearman_fisher
            interval = "" if math.isnan(f.low) else f" [{f.low:+.2f}, {f.high:+.2f}] (Fisher-z)"
            lines.append(f"Fidelity of the aggregate rank vs {Path(reference_set.source).name} ({report.sample}): "
                         f"Spearman {report.spearman.estimate:+.2f}{interval} over {report.n_shared} shared functions.")
    return lines


def _screen_line(frame: pd.DataFrame, screen: str, verdict: pd.Series, reference: str | Path | None) -> str:
    """A stability screen's sentence: which functions it failed, and, where a reference shares
    them, how many of those train at full scale (false alarms)."""
    from funcsearch.references import load_reference

    out = sorted(str(c) for c in verdict[verdict == 1].index)
    head = (f"Fidelity {screen}: a stability screen, read only for its divergences: {len(out)} of "
            f"{len(verdict)} functions failed it (half their seeds or more diverged)"
            + (f": {', '.join(out)}" if out else ""))
    reasons = []
    for name in (reference,) if reference is not None else declared_references(screen):
        reference_set = load_reference(name)
        try:
            report = measure_fidelity(frame, reference_set, proxy=screen)
        except ValueError as exc:
            reasons.append(f"{Path(reference_set.source).name}: {exc}")
            continue
        return (f"{head}; vs {Path(reference_set.source).name} ({report.sample}), over {report.n_shared} "
                f"shared functions: {report.proxy_failures} failed it, {report.false_alarms} of them "
                "false alarms (they train at full scale).")
    return head + (f"; not compared with a full-scale reference here ({'; '.join(reasons)})." if reasons else ".")


def fidelity_of_results(results: str | Path, reference: str | Path | None = None, *,
                        proxy: str | None = None, studies: Sequence[str] | None = None,
                        top_k: int = 5, bootstrap: int = 1000, rule: Any = None) -> list[FidelityReport]:
    """Fidelity of every proxy (or one) of a results folder against a reference set; without
    ``reference``, against every full-scale reference each proxy declares that this study can
    be compared with (a proxy of no registered kind: the shipped paper tables). With several
    proxies and no ``proxy`` chosen, the declared aggregate rank (``rule``: the search's
    ``aggregate:``, default the default rule) comes first, against the same references."""
    from funcsearch.errors import InputError
    from funcsearch.references import load_reference

    from funcsearch.search.store import read_results

    folder = Path(results)
    frame = read_results(folder)
    proxies = sorted(set(frame["proxy"])) if proxy is None else [proxy]
    reports, reasons = [], []
    for name in proxies:
        if reference is not None:
            names: tuple[str | Path, ...] = (reference,)
        else:
            names = declared_references(name)
            if not names:
                reasons.append(f"{name}: the proxy declares no full-scale reference (give --reference)")
        for each in names:
            reference_set = load_reference(each)
            try:
                reports.append(measure_fidelity(frame, reference_set, proxy=name, studies=studies,
                                                top_k=top_k, bootstrap=bootstrap))
            except ValueError as exc:
                reasons.append(f"{name} vs {Path(reference_set.source).name}: {exc}")
    if proxy is None and len(proxies) > 1:
        from funcsearch.proxies.registry import PROXIES

        declared = [reference] if reference is not None else list(dict.fromkeys(
            name for each in proxies if each in PROXIES for name in declared_references(each)))
        aggregates = []
        for each in declared:
            try:
                aggregates.append(aggregate_fidelity(frame, load_reference(each), rule, studies=studies,
                                                     top_k=top_k))
            except ValueError:  # another shift, or too few shared functions: nothing to say
                continue
        reports = aggregates + reports
    if not reports:
        raise InputError(f"{folder}: no proxy can be compared with "
                         f"{'its declared references' if reference is None else reference} "
                         f"({'; '.join(reasons)})")
    return reports
