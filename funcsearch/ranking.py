"""Leaderboards (the ranking module): per-proxy ranking with seed statistics, read from a results store.

For every proxy and function (candidates and baselines in one table):

- mean and standard deviation of the primary metric over the seeds that finished ``ok``,
  with a t-based 95% interval, and counts of ok / diverged / pruned / failed seeds;
- a rank: functions with every seed ok first (by mean), then those with some diverged
  seeds (fewer first), then those stopped early (pruned; the longer they lasted, the
  better), then those that diverged everywhere. Failed trials (bugs, bad input) are
  counted but never ranked;
- the paired comparison with the best baseline: per seed, the difference candidate minus
  baseline (signed so that positive is better), its mean and t-based 95% interval; a
  candidate *beats* the best baseline when the whole interval is above 0;
- with a sweep, the best point of each function is the one reported, as in the paper's
  DiT protocol: the point with the most seeds ok, then the best mean over seeds.

Across proxies: the aggregate rank by the rule the search declares (:mod:`funcsearch.aggregate`,
printed first, with its seed interval), the Spearman correlation
between proxies' rankings (95% interval from Fisher's z with the Fieller variance), and
per proxy the agreement across seeds (Spearman between the per-seed rankings, for every
pair of seeds).
"""

from __future__ import annotations

import html
import io
import json
import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from funcsearch.aggregate import AggregateRule, aggregate_ranking
from funcsearch.errors import InputError
from funcsearch.layout import CONFIG_FILE
from funcsearch.metrics import Metric, orient

FORMATS = ("table", "md", "csv", "json", "html")


@dataclass
class Leaderboard:
    """Every table of a leaderboard (see module docstring); render with ``render``."""

    proxies: dict[str, pd.DataFrame]
    aggregate: pd.DataFrame
    proxy_agreement: pd.DataFrame
    seed_agreement: pd.DataFrame
    primary: dict[str, tuple[str, bool]] = field(default_factory=dict)
    title: str = "leaderboard"
    fidelity: list[str] = field(default_factory=list)  # sentences, from funcsearch.fidelity.fidelity_lines
    displays: dict[str, MetricDisplay] = field(default_factory=dict)  # proxy -> how its metric is shown
    aggregate_rule: str = ""  # the declared rule the aggregate follows (funcsearch.aggregate)

    @property
    def screens(self) -> list[str]:
        """The proxies this board reads as stability screens (their verdicts are aggregate
        columns; a search of screens alone ranks them as proxies)."""
        return [p for p in self.proxies if f"screen_{p}" in self.aggregate.columns]

    def to_frame(self) -> pd.DataFrame:
        """One long table: a row per (proxy, function), with the aggregate rank joined."""
        frames = [t.assign(proxy=p) for p, t in self.proxies.items()]
        if not frames:
            return pd.DataFrame()
        frame = pd.concat(frames, ignore_index=True)
        if len(self.aggregate):
            frame = frame.merge(self.aggregate[["candidate", "mean_rank", "aggregate_rank"]],
                                on="candidate", how="left")
        first = ["proxy", "rank", "candidate", "kind"]
        return frame[first + [c for c in frame.columns if c not in first]]

    def render(self, fmt: str = "md") -> str:
        """Text in ``md``, ``csv``, ``json`` or ``html`` (``table`` is drawn by
        :func:`rich_renderables`); numbers in each metric's display unit."""
        if fmt == "csv":
            return _csv(self)
        if fmt == "json":
            return _json(self)
        if fmt == "md":
            return _markdown(self)
        if fmt == "html":
            return _html(self)
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})",
                         field="--format")


# -- statistics ----------------------------------------------------------------------------

def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) of a t-based interval; NaN where n is too small."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return (math.nan,) * 4
    mean = float(values.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def spearman_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float, int]:
    """(rho, low, high, n): Spearman's rho with a Fisher-z interval (se = sqrt(1.06/(n-3)))."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    if n < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan, math.nan, math.nan, n
    rho = float(stats.spearmanr(a, b).statistic)
    if n <= 3 or abs(rho) > 1 - 1e-9:
        return rho, math.nan, math.nan, n
    z, se = math.atanh(rho), math.sqrt(1.06 / (n - 3))
    q = float(stats.norm.ppf(0.5 + level / 2))
    return rho, math.tanh(z - q * se), math.tanh(z + q * se), n


def mean_ranking_agreement(single: float, seeds: int) -> float:
    """The agreement to expect between the mean ranking of ``seeds`` seeds and that of as many
    other seeds, from the mean agreement ``single`` of two one-seed rankings (Spearman-Brown:
    k r / (1 + (k - 1) r)); nan unless 0 < single and seeds >= 2.

    What a leaderboard prints is a mean over its seeds, so this, not ``single``, is how well
    its order would come back in a rerun. Checked on paper_search rerun on a GPU
    (docs/gpu.md): a seed on the other device agrees no better than another seed, and the
    3-seed means agreed at vit +0.82, dit +0.99, lm +0.98 where this predicts (from the
    pooled one-seed agreement of the six runs) +0.85, +0.98, +0.98."""
    if math.isnan(single) or single <= 0 or seeds < 2:
        return math.nan
    return seeds * single / (1 + (seeds - 1) * single)


# -- building -------------------------------------------------------------------------------

def leaderboard(source: str | Path | pd.DataFrame, proxy: str | None = None,
                rule: AggregateRule | None = None, bootstrap: int = 300) -> Leaderboard:
    """Build the leaderboard of a results folder (or of its trials frame). The aggregate
    follows ``rule``, else the rule the folder's search config declares, else the default
    (see :mod:`funcsearch.aggregate`), with a ``bootstrap`` interval (0: none)."""
    title = "leaderboard"
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        from funcsearch.search.store import read_results

        frame = read_results(source)
        title = Path(source).name
        rule = rule or declared_rule(source)
    if proxy is not None:
        if proxy not in set(frame["proxy"]):
            raise InputError(f"no trials of proxy {proxy!r} (stored: "
                             f"{', '.join(sorted(set(frame['proxy'])))})", field="--proxy")
        frame = frame[frame["proxy"] == proxy]
    frame = _best_units(frame)
    tables: dict[str, pd.DataFrame] = {}
    primary: dict[str, tuple[str, bool]] = {}
    for name, rows in frame.groupby("proxy", sort=True):
        metric = str(rows["primary_metric"].iloc[0])
        higher = bool(rows["higher_is_better"].iloc[0])
        primary[str(name)] = (metric, higher)
        tables[str(name)] = _proxy_table(rows, higher)
    aggregate, rule_text = _aggregate(frame, tables, rule, bootstrap)
    return Leaderboard(
        proxies=tables,
        aggregate=aggregate,
        aggregate_rule=rule_text,
        proxy_agreement=_proxy_agreement(tables),
        seed_agreement=_seed_agreement(frame, primary),
        primary=primary,
        title=title,
        displays={p: metric_display(p, m, h, frame[frame["proxy"] == p]) for p, (m, h) in primary.items()},
    )


def _signed(frame: pd.DataFrame) -> pd.Series:
    """Scores turned so that higher is always better."""
    return pd.Series(orient(frame["score"], frame["higher_is_better"]), index=frame.index)


def _best_units(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep, per (proxy, function), the hyperparameter point with the best mean over seeds."""
    frame = frame.copy()
    frame["_signed"] = _signed(frame).where(frame["status"] == "ok")
    if frame["unit_key"].nunique() == frame.groupby(["proxy", "candidate"], sort=False).ngroups:
        return frame.reset_index(drop=True)  # one point per function: nothing to choose (no sweep)
    units = frame.groupby(["proxy", "candidate", "unit_key"], sort=False)["_signed"].agg(["mean", "count"])
    # most seeds ok first (a point that diverged on a seed is worse), then the best mean
    order = units.reset_index().sort_values(["count", "mean"], ascending=False, na_position="last",
                                            kind="stable")
    best = set(order.drop_duplicates(["proxy", "candidate"])["unit_key"])
    return frame[frame["unit_key"].isin(best)].reset_index(drop=True)


def _proxy_table(rows: pd.DataFrame, higher: bool) -> pd.DataFrame:
    records = []
    for name, group in rows.groupby("candidate", sort=False):
        ok = group[group["status"] == "ok"]
        mean, std, low, high = t_interval(ok["score"].astype(float).to_numpy())
        counts = group["status"].value_counts()
        records.append({
            "candidate": name,
            "kind": "baseline" if bool(group["is_baseline"].iloc[0]) else "candidate",
            "expression": group["expression"].iloc[0],
            "hyperparameters": group["hyperparameters"].iloc[0] or "{}",
            "seeds": len(group),
            "ok": int(counts.get("ok", 0)),
            "diverged": int(counts.get("diverged", 0)),
            "pruned": int(counts.get("pruned", 0)),
            "failed": int(counts.get("failed", 0)),
            "mean": mean,
            "std": std,
            "ci95_low": low,
            "ci95_high": high,
            "_epochs": float(group["epochs_done"].astype(float).mean()),
            **_regime_means(group),
        })
    table = pd.DataFrame.from_records(records)
    sign = 1.0 if higher else -1.0
    table["_tier"] = np.select(
        [(table["ok"] > 0) & (table["diverged"] == 0), table["ok"] > 0,
         (table["pruned"] > 0) & (table["diverged"] == 0), table["diverged"] > 0],
        [0, 1, 2, 3], default=9)
    table["_key"] = np.where(table["_tier"] <= 1, -sign * table["mean"], -table["_epochs"])
    table = table.sort_values(["_tier", "diverged", "_key"], na_position="last").reset_index(drop=True)
    ranked = table["_tier"] < 9
    keys = list(zip(table["_tier"], table["diverged"], table["_key"].round(12)))
    ranks: list[float] = []
    for i, key in enumerate(keys):
        if not ranked[i]:
            ranks.append(math.nan)
        elif i and keys[i - 1] == key and ranked[i - 1]:
            ranks.append(ranks[-1])  # ties share the better rank
        else:
            ranks.append(float(i + 1))
    table.insert(0, "rank", ranks)
    _compare_with_best_baseline(table, rows, sign)
    if table[["u_gt1", "u_gt2", "u_p99"]].isna().all().all():
        table = table.drop(columns=["u_gt1", "u_gt2", "u_p99"])  # trials older than the regime record
    return table.drop(columns=["_tier", "_key", "_epochs"])


def _regime_means(group: pd.DataFrame) -> dict[str, float]:
    """Seed means of the end-of-training regime: ``u_gt1``, ``u_gt2``, ``u_p99``."""
    from funcsearch.search.store import mean_end_regime

    return {f"u_{k}": v for k, v in mean_end_regime(group).items()}


def _compare_with_best_baseline(table: pd.DataFrame, rows: pd.DataFrame, sign: float) -> None:
    """Add the paired-by-seed difference with the best-ranked baseline (in place)."""
    for column in ("best_baseline", "diff_vs_best_baseline", "diff_ci95_low", "diff_ci95_high",
                   "pairs", "beats_best_baseline"):
        table[column] = None
    baselines = table[(table["kind"] == "baseline") & (table["ok"] > 0)]
    if not len(baselines):
        return
    best = str(baselines.iloc[0]["candidate"])  # the table is sorted by rank
    by_seed = rows[rows["status"] == "ok"].pivot_table(index="seed", columns="candidate",
                                                       values="score", aggfunc="first")
    for i, name in enumerate(table["candidate"]):
        table.at[i, "best_baseline"] = best
        if name == best:
            continue
        if name not in by_seed.columns or best not in by_seed.columns:
            table.at[i, "pairs"] = 0
            table.at[i, "beats_best_baseline"] = "n/a"
            continue
        diffs = (sign * (by_seed[name] - by_seed[best])).dropna().to_numpy()
        mean, _, low, high = t_interval(diffs)
        table.at[i, "pairs"] = len(diffs)
        table.at[i, "diff_vs_best_baseline"] = mean
        table.at[i, "diff_ci95_low"] = low
        table.at[i, "diff_ci95_high"] = high
        if len(diffs) < 2:
            verdict = "n/a"
        elif low > 0:
            verdict = "yes"
        elif high < 0:
            verdict = "worse"
        else:
            verdict = "within noise"
        table.at[i, "beats_best_baseline"] = verdict


def declared_rule(folder: str | Path) -> AggregateRule | None:
    """The aggregate rule of a results folder's search config (None when it has none)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        from funcsearch.yamlio import load_yaml

        data = load_yaml(path).data
        declared = data.get("aggregate") if isinstance(data, dict) else None
        if not isinstance(declared, dict):
            return None
        return AggregateRule(dict(declared.get("metrics") or {}),
                             {k: float(v) for k, v in (declared.get("weights") or {}).items()})
    except Exception:  # noqa: BLE001 - an unreadable copy means the default rule
        return None


def _aggregate(frame: pd.DataFrame, tables: dict[str, pd.DataFrame],
               rule: AggregateRule | None, bootstrap: int) -> tuple[pd.DataFrame, str]:
    columns = ["aggregate_rank", "candidate", "kind", "mean_rank", "ci95_low", "ci95_high", "proxies"]
    if not tables:
        return pd.DataFrame(columns=columns), ""
    table, text = aggregate_ranking(frame, rule, bootstrap=bootstrap)
    metrics = dict(table.attrs.get("metrics", {}))
    kinds = {c: k for t in tables.values() for c, k in zip(t["candidate"], t["kind"])}
    table.insert(2, "kind", table["candidate"].map(kinds).fillna("candidate"))
    rank_columns = [c for c in table.columns if c.startswith("rank_")]
    table["proxies"] = table[rank_columns].notna().sum(axis=1)
    table = table.rename(columns={"aggregate_score": "mean_rank"})
    listed = set(table["candidate"])
    missing = [c for c in kinds if c not in listed]  # nothing ok or diverged: unranked, last
    if missing:
        table = pd.concat([table, pd.DataFrame({"candidate": missing, "kind": [kinds[c] for c in missing]})],
                          ignore_index=True)
    table.attrs["metrics"] = metrics
    return table, text


def _proxy_agreement(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    records = []
    for a, b in combinations(sorted(tables), 2):
        joined = tables[a][["candidate", "rank"]].merge(
            tables[b][["candidate", "rank"]], on="candidate", suffixes=("_a", "_b")).dropna()
        rho, low, high, n = spearman_interval(joined["rank_a"].to_numpy(), joined["rank_b"].to_numpy())
        records.append({"proxy_a": a, "proxy_b": b, "functions": n, "spearman": rho,
                        "ci95_low": low, "ci95_high": high})
    return pd.DataFrame.from_records(
        records, columns=["proxy_a", "proxy_b", "functions", "spearman", "ci95_low", "ci95_high"])


def _seed_agreement(frame: pd.DataFrame, primary: dict[str, tuple[str, bool]]) -> pd.DataFrame:
    """Per proxy: Spearman between per-seed rankings (non-ok trials tie for last)."""
    records = []
    for proxy, rows in frame.groupby("proxy", sort=True):
        rows = rows[rows["status"] != "failed"]
        signed = _signed(rows).where(rows["status"] == "ok", -np.inf)
        table = rows.assign(_v=signed).pivot_table(index="candidate", columns="seed", values="_v",
                                                  aggfunc="first")
        rhos, lows, highs, sizes = [], [], [], []
        for s, t in combinations(table.columns, 2):
            both = table[[s, t]].dropna()
            a = both[s].replace(-np.inf, -1e300).to_numpy()
            b = both[t].replace(-np.inf, -1e300).to_numpy()
            rho, low, high, n = spearman_interval(a, b)
            if not math.isnan(rho):
                rhos.append(rho), lows.append(low), highs.append(high), sizes.append(n)
        records.append({
            "proxy": proxy, "seeds": len(table.columns), "seed_pairs": len(rhos),
            "functions": min(sizes) if sizes else 0,
            "mean_spearman": float(np.mean(rhos)) if rhos else math.nan,
            "min_spearman": float(np.min(rhos)) if rhos else math.nan,
            "max_spearman": float(np.max(rhos)) if rhos else math.nan,
            "ci95_low": lows[0] if len(rhos) == 1 else math.nan,
            "ci95_high": highs[0] if len(rhos) == 1 else math.nan,
            "mean_ranking": mean_ranking_agreement(float(np.mean(rhos)) if rhos else math.nan,
                                                   len(table.columns)),
        })
    return pd.DataFrame.from_records(records, columns=[
        "proxy", "seeds", "seed_pairs", "functions", "mean_spearman", "min_spearman",
        "max_spearman", "ci95_low", "ci95_high", "mean_ranking"])


def top_functions(results: str | Path, top: int) -> list[tuple[str, str]]:
    """``(name, expression)`` of the ``top`` best point-wise functions, by aggregate rank.

    LayerNorm and RMSNorm have no point-wise shape and are skipped; unranked functions
    (only failed trials) come last.
    """
    board = leaderboard(results)
    frames = pd.concat([t[["candidate", "expression"]] for t in board.proxies.values()])
    expressions = dict(zip(frames["candidate"], frames["expression"]))
    order = list(board.aggregate["candidate"])
    chosen = [(name, expressions[name]) for name in order
              if isinstance(expressions.get(name), str) and expressions[name]]
    return chosen[:top]


# -- rendering ------------------------------------------------------------------------------
#
# Every number is shown in its metric's display unit (the proxy's declaration: accuracy in %),
# with no more digits than the measurement resolves: where the evaluation set's size is known
# (one example = scale / size, e.g. 100/360 = 0.28 points of accuracy), values get the decimals
# of that step; elsewhere 4 significant digits, and spreads 2.


@dataclass(frozen=True)
class MetricDisplay:
    """How one proxy's primary metric is shown: its declaration, and the evaluation set's size
    where it bounds the resolution (``eval_examples``, a count of ``eval_what``)."""

    metric: Metric
    eval_examples: int | None = None
    eval_what: str = "evaluation examples"

    @property
    def unit(self) -> str:
        return self.metric.unit

    @property
    def step(self) -> float | None:
        """What one evaluation example is worth in the display unit; None when unknown."""
        return self.metric.scale / self.eval_examples if self.eval_examples else None

    @property
    def decimals(self) -> int | None:
        step = self.step
        return None if step is None else max(0, math.ceil(-math.log10(step) - 1e-9))

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The metric's declared range in the display unit (a percentage without one: [0, 100]):
        intervals are clipped to it."""
        m = self.metric
        if m.minimum is None and m.maximum is None:
            return (0.0, 100.0) if m.unit == "%" else None
        low = -math.inf if m.minimum is None else m.minimum * m.scale
        high = math.inf if m.maximum is None else m.maximum * m.scale
        return (min(low, high), max(low, high))

    def scaled(self, value: object) -> float:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.nan
        return float(value) * self.metric.scale

    def value(self, value: object) -> str:
        """A score (mean, interval end) in the display unit."""
        x = self.scaled(value)
        if math.isnan(x):
            return ""
        if self.decimals is not None:
            return f"{x:.{self.decimals}f}"
        return fmt(x)

    def spread(self, value: object, signed: bool = False) -> str:
        """A std, half-width or difference: one decimal more than the step, else 2 significant."""
        x = self.scaled(value)
        if math.isnan(x):
            return ""
        if self.decimals is not None:
            text = f"{x:.{self.decimals + 1}f}"
        else:
            text = significant(x, 2)
        return ("+" + text) if signed and x >= 0 and not text.startswith("+") else text

    def interval(self, low: object, high: object, *, difference: bool = False) -> str:
        lo, hi = self.scaled(low), self.scaled(high)
        if math.isnan(lo):
            return ""
        if not difference and self.bounds is not None:
            lo, hi = max(lo, self.bounds[0]), min(hi, self.bounds[1])
        show = (lambda v: self.spread(v / self.metric.scale)) if difference else \
            (lambda v: self.value(v / self.metric.scale))
        return f"[{show(lo)}, {show(hi)}]"

    @property
    def heading(self) -> str:
        return self.metric.heading

    def suffix(self, text: str) -> str:
        """``text (unit)`` for a column heading."""
        return f"{text} ({self.unit})" if self.unit else text

    @property
    def resolution_note(self) -> str:
        """'360 test images: one is 0.28 points' where the size is known, else ''."""
        if not self.eval_examples:
            return ""
        unit = "points" if self.unit == "%" else self.unit
        return (f"{self.eval_examples} {self.eval_what}: one is {significant(self.step or 0, 2)} "
                f"{unit}".rstrip())


def _declared(proxy: str, metric: str) -> Metric | None:
    from funcsearch.proxies.registry import declared_metric

    return declared_metric(proxy, metric)


def _eval_set(proxy: str, metric: str, unit: str, frame: pd.DataFrame | None) -> tuple[int | None, str]:
    """(size, what) of the evaluation set that bounds ``metric``'s resolution, if known.

    From the trials' details (``eval_examples``, ``eval_what``) when they record it, else from
    the proxy's declaration ``extra["eval_set"] = {"examples": n, "what": "test images",
    "metrics": [...], "dataset": fingerprint}`` (for its embedded dataset only)."""
    if frame is not None and "details" in frame and len(frame):
        sizes, whats = [], []
        for text in frame["details"]:
            try:
                details = json.loads(text) if isinstance(text, str) and text else {}
            except ValueError:
                details = {}
            if details.get("eval_examples"):
                sizes.append(int(details["eval_examples"]))
                whats.append(str(details.get("eval_what", "evaluation examples")))
        if sizes and len(set(sizes)) == 1 and unit == "%":
            return sizes[0], whats[0]
    from funcsearch.proxies.registry import PROXIES

    entry = PROXIES.get(proxy)
    declared = (entry.extra.get("eval_set") if entry is not None else None) or {}
    if not isinstance(declared, dict) or metric not in declared.get("metrics", ()):
        return None, ""
    dataset = declared.get("dataset")
    if dataset and frame is not None and "details" in frame and len(frame):
        used = {json.loads(t).get("dataset") for t in frame["details"] if isinstance(t, str) and t}
        if used != {dataset}:
            return None, ""
    size = declared.get("examples")
    return (int(size), str(declared.get("what", "evaluation examples"))) if size else (None, "")


def metric_display(proxy: str, metric: str, higher_is_better: bool,
                   frame: pd.DataFrame | None = None) -> MetricDisplay:
    """The display of ``proxy``'s ``metric``: as the proxy declares it, or (a proxy not
    registered here) the stored name and direction with scale 1."""
    declared = _declared(proxy, metric) or Metric(metric, higher_is_better, True, metric)
    size, what = _eval_set(proxy, metric, declared.unit, frame)
    return MetricDisplay(declared, size, what or "evaluation examples")


def board_display(board: Leaderboard, proxy: str) -> MetricDisplay:
    if proxy not in board.displays:
        metric, higher = board.primary[proxy]
        board.displays[proxy] = metric_display(proxy, metric, higher)
    return board.displays[proxy]


def fmt(value: object, digits: int = 4) -> str:
    """Compact number: 4 significant digits, blank for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        if float(value).is_integer() and abs(float(value)) < 1e6:
            return str(int(value))
        return f"{float(value):.{digits}g}"
    return str(value)


def _interval(low: object, high: object, digits: int = 4) -> str:
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return ""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def _swept(table: pd.DataFrame) -> bool:
    return any(h not in ("{}", "", None) for h in table["hyperparameters"])


def _point(hyperparameters: str | None) -> str:
    params = json.loads(hyperparameters or "{}")
    return ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in params.items())


def _verdict(r: pd.Series, best: str = "(best baseline)") -> str:
    """The comparison with the best baseline; a function with no ok seed says why."""
    if r["candidate"] == r["best_baseline"]:
        return best
    if r["ok"] == 0:
        return "diverged" if r["diverged"] else ("pruned" if r["pruned"] else "failed")
    return str(r["beats_best_baseline"] or "")


def display_rows(table: pd.DataFrame, display: MetricDisplay | None = None
                 ) -> tuple[list[str], list[list[str]]]:
    """Header and string cells of a per-proxy table, for every text format (display units)."""
    d = display or MetricDisplay(Metric("score", True, True, "score"))
    swept = _swept(table)
    header = ["rank", "function", "kind"] + (["best point"] if swept else []) + [
        "ok", "div", "pruned", "failed", d.suffix("mean"), d.suffix("std"), "95% CI",
        d.suffix("diff vs best baseline"), "diff 95% CI", "beats best baseline"]
    regime = "u_gt1" in table.columns
    if regime:
        header.append("|u|>1 / >2 / p99 at end")
    body = []
    for _, r in table.iterrows():
        cells = [fmt(r["rank"]) or "-", str(r["candidate"]), str(r["kind"])]
        if swept:
            cells.append(_point(r["hyperparameters"]))
        cells += [str(r["ok"]), str(r["diverged"]), str(r["pruned"]), str(r["failed"]),
                  d.value(r["mean"]), d.spread(r["std"]), d.interval(r["ci95_low"], r["ci95_high"]),
                  d.spread(r["diff_vs_best_baseline"], signed=True),
                  d.interval(r["diff_ci95_low"], r["diff_ci95_high"], difference=True), _verdict(r)]
        if regime:
            cells.append("" if _nan(r["u_gt1"]) else
                         f"{r['u_gt1']:.0%} / {r['u_gt2']:.0%} / {significant(float(r['u_p99']))}")
        body.append(cells)
    return header, body


def aggregate_rows(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    proxies = [p for p in board.proxies if f"rank_{p}" in board.aggregate.columns]
    screens = board.screens
    metrics = board.aggregate.attrs.get("metrics", {})
    header = ["rank", "function", "kind", "mean rank", "95% CI",
              *[f"rank {p}" + (f" ({metrics[p]})" if p in metrics else "") for p in proxies],
              *[f"screen {p}" for p in screens]]
    body = [[fmt(r["aggregate_rank"]) or "-", str(r["candidate"]), str(r["kind"]), fmt(r["mean_rank"], 3),
             _interval(r.get("ci95_low"), r.get("ci95_high"), 3),
             *[fmt(r[f"rank_{p}"]) for p in proxies],
             *[_screen_cell(r[f"screen_{p}"]) for p in screens]]
            for _, r in board.aggregate.iterrows()]
    return header, body


def _screen_cell(failed: object) -> str:
    """A screen's verdict on one function: diverged (ranked below the rest), passed, or not run."""
    if _nan(failed):
        return "-"
    return "diverged" if float(failed) >= 0.5 else "pass"  # type: ignore[arg-type]


def aggregate_title(board: Leaderboard) -> str:
    """``Aggregate rank: rank average of dit: fid, vit: test_loss (declared before the results)``."""
    rule = board.aggregate_rule or "mean of per-proxy ranks"
    return f"Aggregate rank: {rule} (the rule is declared before the results; 95% CI over seeds)"


def _rho_interval(low: object, high: object) -> str:
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return ""
    return f"[{float(low):+.2f}, {float(high):+.2f}]"


def agreement_lines(board: Leaderboard) -> list[str]:
    """Rank agreement as sentences with their noise."""
    lines = []
    for _, r in board.proxy_agreement.iterrows():
        if math.isnan(r["spearman"]):
            lines.append(f"Spearman {r['proxy_a']} vs {r['proxy_b']}: n/a "
                         f"({r['functions']} functions in both)")
        else:
            lines.append(f"Spearman {r['proxy_a']} vs {r['proxy_b']}: {r['spearman']:+.2f} "
                         f"95% CI {_rho_interval(r['ci95_low'], r['ci95_high']) or 'n/a (n<=3)'}, "
                         f"{r['functions']} functions")
    for _, r in board.seed_agreement.iterrows():
        if r["seed_pairs"] == 0:
            lines.append(f"Seed agreement {r['proxy']}: n/a ({r['seeds']} seed(s))")
        elif r["seed_pairs"] == 1:
            lines.append(f"Seed agreement {r['proxy']}: Spearman {r['mean_spearman']:+.2f} "
                         f"95% CI {_rho_interval(r['ci95_low'], r['ci95_high']) or 'n/a'} "
                         f"(seeds {r['seeds']}, {r['functions']} functions)")
        else:
            lines.append(f"Seed agreement {r['proxy']}: mean Spearman {r['mean_spearman']:+.2f} "
                         f"over {r['seed_pairs']} seed pairs (min {r['min_spearman']:+.2f}, "
                         f"max {r['max_spearman']:+.2f}, {r['functions']} functions)")
        if not math.isnan(r["mean_ranking"]):
            lines[-1] += (f"; the mean of its {r['seeds']} seeds would reproduce at about "
                          f"{r['mean_ranking']:+.2f} with {r['seeds']} other seeds (Spearman-Brown)")
    return lines


def _direction(board: Leaderboard, proxy: str) -> str:
    """``test_acc, higher is better; 360 test images: one is 0.28 points`` (the unit is in the
    column headings)."""
    from funcsearch.proxies.registry import is_screen

    metric, higher = board.primary[proxy]
    note = board_display(board, proxy).resolution_note
    screen = "; a stability screen: only its divergences count in the aggregate" if is_screen(proxy) else ""
    return f"{metric}, {'higher' if higher else 'lower'} is better" + (f"; {note}" if note else "") + screen


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines)


def _markdown(board: Leaderboard) -> str:
    parts = [f"# Leaderboard: {board.title}", ""]
    if len(board.proxies) > 1:
        parts += [f"## {aggregate_title(board)}", "", _md_table(*aggregate_rows(board)), ""]
    for proxy, table in board.proxies.items():
        parts += [f"## {proxy} ({_direction(board, proxy)})", "",
                  _md_table(*display_rows(table, board_display(board, proxy))), ""]
    parts += ["## Rank agreement", ""] + [f"- {line}" for line in agreement_lines(board)] + [""]
    if board.fidelity:
        parts += ["## Fidelity", ""] + [f"- {line}" for line in board.fidelity] + [""]
    parts += [NOTE, ""]
    return "\n".join(parts)


def _csv(board: Leaderboard) -> str:
    """One row per (proxy, function), numbers in each metric's display unit (column ``unit``)."""
    frame = board.to_frame()
    if len(frame):
        scale = frame["proxy"].map(lambda p: board_display(board, p).metric.scale)
        for column in ("mean", "std", "ci95_low", "ci95_high", "diff_vs_best_baseline",
                       "diff_ci95_low", "diff_ci95_high"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce") * scale
        frame.insert(4, "metric", frame["proxy"].map(lambda p: board.primary[p][0]))
        frame.insert(5, "unit", frame["proxy"].map(lambda p: board_display(board, p).unit))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def _json(board: Leaderboard) -> str:
    """The leaderboard as JSON: per proxy its metric (unit, direction, evaluation set) and rows
    in display units, the aggregate and the agreement lines."""
    def clean(value: object) -> object:
        if isinstance(value, (float, np.floating)):
            return None if math.isnan(float(value)) else float(value)
        if isinstance(value, np.integer):
            return int(value)
        return value

    rows = json.loads(pd.read_csv(io.StringIO(_csv(board))).to_json(orient="records")) if board.proxies else []
    proxies = {}
    for proxy in board.proxies:
        d = board_display(board, proxy)
        metric, higher = board.primary[proxy]
        proxies[proxy] = {"metric": metric, "label": d.metric.label, "unit": d.unit,
                          "higher_is_better": higher, "eval_examples": d.eval_examples,
                          "eval_what": d.eval_what if d.eval_examples else None,
                          "rows": [r for r in rows if r["proxy"] == proxy]}
    aggregate = [{k: clean(v) for k, v in r.items()} for r in board.aggregate.to_dict("records")]
    return json.dumps({"title": board.title, "proxies": proxies, "aggregate": aggregate,
                       "agreement": agreement_lines(board), "fidelity": board.fidelity,
                       "note": NOTE}, indent=2) + "\n"


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{rows}</tbody>\n</table>"


def _html(board: Leaderboard) -> str:
    parts = [f"<h1>Leaderboard: {html.escape(board.title)}</h1>"]
    if len(board.proxies) > 1:
        parts += [f"<h2>{html.escape(aggregate_title(board))}</h2>", _html_table(*aggregate_rows(board))]
    for proxy, table in board.proxies.items():
        parts += [f"<h2>{html.escape(proxy)} ({html.escape(_direction(board, proxy))})</h2>",
                  _html_table(*display_rows(table, board_display(board, proxy)))]
    parts += ["<h2>Rank agreement</h2><ul>"] + [
        f"<li>{html.escape(line)}</li>" for line in agreement_lines(board)] + ["</ul>"]
    if board.fidelity:
        parts += ["<h2>Fidelity</h2><ul>"] + [f"<li>{html.escape(line)}</li>" for line in board.fidelity] + ["</ul>"]
    parts.append(f"<p>{html.escape(NOTE)}</p>")
    return "\n".join(parts) + "\n"


NOTE = ("mean/std over seeds that finished ok; 95% CI t-based (percentages clipped to [0, 100]); "
        "diff = paired by seed, positive = better than the best baseline; 'yes' = whole 95% CI "
        "above 0, 'worse' = whole CI below 0.")


def significant(value: float, digits: int = 2) -> str:
    """``value`` with about ``digits`` significant digits, without an exponent below 1e6."""
    if value == 0 or not math.isfinite(value) or abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


TERMINAL_WIDTH = 100
"""Terminal tables are laid out for this width when the output is not a terminal."""


def rich_renderables(board: Leaderboard) -> list[object]:
    """Rich tables for the terminal (``--format table``): the same numbers as the Markdown in
    fewer, narrower columns (std, CI ends and the kind are in ``--format md``), laid out to fit
    100 columns with the function names kept whole where they fit (wrapped, never cut)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out: list[object] = []
    if len(board.proxies) > 1:
        header, body = aggregate_rows(board)  # per-proxy columns by proxy name: the title has the metrics
        proxies = [p for p in board.proxies if f"rank_{p}" in board.aggregate.columns]
        header = ["#", "function", "kind", "mean rank", "95% CI", *proxies, *board.screens]
        t = Table(title=aggregate_title(board) + "; one column per proxy: its rank",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for h in header:
            t.add_column(h, justify="left" if h in ("function", "kind") else "right",
                         overflow="fold", min_width=18, ratio=1) if h == "function" else \
                t.add_column(h, justify="left" if h == "kind" else "right", no_wrap=True)
        for row in body:
            t.add_row(*row, style="cyan" if row[2] == "baseline" else None)
        out.append(t)
    for proxy, table in board.proxies.items():
        d = board_display(board, proxy)
        swept = _swept(table)
        t = Table(title=f"{proxy}: {_direction(board, proxy)}", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        t.add_column("#", justify="right", no_wrap=True)
        t.add_column("function", overflow="fold", min_width=18, ratio=3)
        if swept:
            t.add_column("best point", overflow="fold", min_width=10, ratio=1)
        t.add_column("ok/div/pr/fail", justify="right", no_wrap=True)
        t.add_column(d.suffix("mean") + " ± 95%", justify="right", max_width=16)
        t.add_column("vs best baseline ± 95%", justify="right", max_width=18)
        t.add_column("beats best", justify="left", max_width=12)
        for _, r in table.iterrows():
            row = [fmt(r["rank"]) or "-", str(r["candidate"])]
            if swept:
                row.append(_point(r["hyperparameters"]))
            mean = d.value(r["mean"])
            if mean and not _nan(r["ci95_low"]):
                mean += f" ± {d.spread((float(r['ci95_high']) - float(r['ci95_low'])) / 2)}"
            diff = d.spread(r["diff_vs_best_baseline"], signed=True)
            if diff and not _nan(r["diff_ci95_low"]):
                diff += f" ± {d.spread((float(r['diff_ci95_high']) - float(r['diff_ci95_low'])) / 2)}"
            verdict = _verdict(r, "(best)")
            row += [f"{r['ok']}/{r['diverged']}/{r['pruned']}/{r['failed']}", mean, diff, verdict]
            style = "cyan" if r["kind"] == "baseline" else ("red" if r["ok"] == 0 else None)
            t.add_row(*row, style=style)
        out.append(t)
    out += [Text(line) for line in agreement_lines(board)]
    out += [Text(line) for line in board.fidelity]
    out.append(Text(NOTE + " Baselines in cyan, functions with no ok seed in red.", style="dim"))
    return out


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
