"""The aggregate ranking across proxies, by a rule declared before the results are seen.

A search config states how its proxies combine (``aggregate:``); the default is the rank
average of each proxy's *aggregate metric* - the metric the proxy declares as its most
faithful to full scale, chosen on the released calibration data (``Proxy.aggregate_metric``)
- with equal weights. Per proxy, functions are ranked on the seed mean of that metric
(oriented so that higher is better; a function with at least half of its seeds diverged ranks
below every working one); the aggregate score is the weighted mean of a function's ranks over
the proxies that ran it. The interval is a percentile bootstrap over seeds (each proxy's seeds
resampled), so a function's place is printed with its noise.

A proxy declared a *screen* (``Proxy.role``; e.g. ``vit_screen``) is not ranked: a function
that diverges on it (half or more of its seeds) ranks below every function that does not,
keeping its mean rank over the ranked proxies among the other screened-out functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from funcsearch.metrics import orient


@dataclass(frozen=True)
class AggregateRule:
    """Which metric of each proxy counts, and how much (default: the proxy's own choice, 1)."""

    metrics: Mapping[str, str] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)

    def metric_of(self, proxy: str, fallback: str) -> str:
        if proxy in self.metrics:
            return self.metrics[proxy]
        from funcsearch.proxies.registry import PROXIES

        entry = PROXIES.get(proxy)
        return entry.aggregate if entry is not None else fallback

    def describe(self, proxies: list[str], fallbacks: Mapping[str, str], screens: list[str] = ()) -> str:
        parts = [f"{p}: {self.metric_of(p, fallbacks.get(p, 'score'))}"
                 + (f" x{self.weights[p]:g}" if p in self.weights else "") for p in proxies]
        text = "rank average of " + ", ".join(parts)
        if screens:
            text += (f"; a function that diverges on the screen {', '.join(screens)} (half its seeds or "
                     "more) ranks below every function that does not")
        return text


def _metric_values(rows: pd.DataFrame, metric: str) -> np.ndarray:
    values = []
    for status, text in zip(rows["status"], rows["metrics"]):
        metrics = json.loads(text) if isinstance(text, str) and text else {}
        values.append(float(metrics.get(metric, math.nan)) if status == "ok" else math.nan)
    return np.asarray(values, dtype=float)


def _direction(proxy: str, metric: str, rows: pd.DataFrame) -> bool:
    from funcsearch.proxies.registry import declared_metric

    declared = declared_metric(proxy, metric)
    if declared is not None:
        return declared.higher_is_better
    return bool(rows["higher_is_better"].iloc[0])  # the stored primary metric's direction


def _diverged_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """Function x seed: 1 where that seed's run diverged, 0 where it finished."""
    flags = rows.assign(_diverged=(rows["status"] == "diverged").astype(float))
    return flags.pivot_table(index="candidate", columns="seed", values="_diverged", aggfunc="max")


def screen_verdicts(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Each stability screen's verdict per function (1 = diverged on half or more of its
    seeds, 0 = passed), for the screens of a study that also has ranked proxies (a study of
    screens alone ranks them as proxies: no verdicts)."""
    from funcsearch.proxies.registry import is_screen

    everyone = sorted(set(frame["proxy"]))
    screens = [p for p in everyone if is_screen(p)]
    if len(screens) == len(everyone):
        return {}
    return {p: (_diverged_matrix(frame[frame["proxy"] == p]).mean(axis=1) >= 0.5).astype(float)
            for p in screens}


def _ranks(scores: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Ranks (1 = best, ties averaged) of each function, from per-seed oriented scores of
    shape (..., functions, seeds); functions with half or more seeds diverged (or no score)
    rank last, tied. Leading axes are independent resamples, ranked in one pass."""
    with np.errstate(all="ignore"):
        counts = np.sum(~np.isnan(scores), axis=-1)
        mean = np.where(counts > 0, np.nansum(scores, axis=-1) / np.maximum(counts, 1), np.nan)
        failing = (np.nanmean(diverged, axis=-1) >= 0.5) | np.isnan(mean)
    key = np.where(failing, -np.inf, mean)
    return stats.rankdata(-key, method="average", axis=-1)


def aggregate_ranking(frame: pd.DataFrame, rule: AggregateRule | None = None, *,
                      bootstrap: int = 500, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """(table, rule text): one row per function, best first, with ``aggregate_score`` (the
    weighted mean rank), its 95% bootstrap interval, ``aggregate_rank`` and each proxy's rank;
    with screens, each screen's verdict (``screen_<proxy>``: 1 diverged, 0 passed) and
    ``screened_out``, which puts a function below every other whatever its mean rank (its
    interval stays that of its mean rank)."""
    rule = rule or AggregateRule()
    frame = frame[frame["status"].isin(["ok", "diverged"])]
    if "stop_epoch" in frame:
        frame = frame[frame["stop_epoch"].isna()]
    verdicts = screen_verdicts(frame)  # a screen's verdict: 1 = diverged on half or more of its seeds
    proxies = [p for p in sorted(set(frame["proxy"])) if p not in verdicts]  # screens alone: ranked
    fallbacks = {p: str(frame.loc[frame["proxy"] == p, "primary_metric"].iloc[0]) for p in proxies}
    per_proxy: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    notes = {}
    for proxy in proxies:
        rows = frame[frame["proxy"] == proxy].copy()
        metric = rule.metric_of(proxy, fallbacks[proxy])
        values = _metric_values(rows, metric)
        if np.isnan(values).all() and metric != fallbacks[proxy]:  # results that never recorded it
            notes[proxy] = f"{proxy}: {metric} not recorded, {fallbacks[proxy]} used"
            metric = fallbacks[proxy]
            values = _metric_values(rows, metric)
        rows["_value"] = orient(values, _direction(proxy, metric, rows))
        scores = rows.pivot_table(index="candidate", columns="seed", values="_value", aggfunc="mean", dropna=False)
        diverged = _diverged_matrix(rows)
        per_proxy[proxy] = (scores.reindex(index=diverged.index, columns=diverged.columns), diverged)
    weights = {p: float(rule.weights.get(p, 1.0)) for p in proxies}
    functions = sorted(set().union(*(per_proxy[p][0].index for p in proxies)))  # screens rank nothing
    position = {name: i for i, name in enumerate(functions)}

    def combine(ranks: dict[str, np.ndarray]) -> np.ndarray:
        total = count = 0.0
        for proxy, values in ranks.items():
            present = ~np.isnan(values)
            total = total + np.where(present, values, 0.0) * weights[proxy]
            count = count + present * weights[proxy]
        with np.errstate(all="ignore"):
            return total / count

    def spread(proxy: str, values: np.ndarray) -> np.ndarray:  # ranks onto all functions (nan: not run)
        index = per_proxy[proxy][0].index
        out = np.full(values.shape[:-1] + (len(functions),), np.nan)
        out[..., [position[c] for c in index]] = values
        return out

    arrays = {p: (s.to_numpy(float), d.to_numpy(float)) for p, (s, d) in per_proxy.items()}
    ranks = {p: spread(p, _ranks(*arrays[p])) for p in proxies}
    estimate = pd.Series(combine(ranks), index=functions)
    demoted = pd.Series(False, index=functions)
    for verdict in verdicts.values():
        demoted |= verdict.reindex(functions).eq(1.0)
    rng = np.random.default_rng(seed)
    samples = None
    if bootstrap:
        picks: dict[str, list[np.ndarray]] = {p: [] for p in proxies}
        for _ in range(bootstrap):  # each proxy's seeds resampled (drawn in the historic order)
            for proxy, (scores, _d) in arrays.items():
                picks[proxy].append(rng.integers(0, scores.shape[1], scores.shape[1]))
        resampled = {}
        for proxy, (scores, diverged) in arrays.items():
            pick = np.asarray(picks[proxy])
            resampled[proxy] = spread(proxy, _ranks(scores[:, pick].transpose(1, 0, 2),
                                                    diverged[:, pick].transpose(1, 0, 2)))
        samples = combine(resampled)
    table = pd.DataFrame({"candidate": estimate.index, "aggregate_score": estimate.to_numpy()})
    table["ci95_low"] = table["ci95_high"] = np.nan  # no bootstrap: no interval
    if samples is not None:
        with np.errstate(all="ignore"):
            table["ci95_low"], table["ci95_high"] = np.nanpercentile(samples, [2.5, 97.5], axis=0)
    for proxy, values in ranks.items():
        table[f"rank_{proxy}"] = values
    for proxy, verdict in verdicts.items():
        table[f"screen_{proxy}"] = verdict.reindex(table["candidate"]).to_numpy()  # 1 diverged, 0 passed
    table["screened_out"] = demoted.reindex(table["candidate"]).to_numpy()
    order_key = table["aggregate_score"] + table["screened_out"] * (len(functions) + 1)
    table = table.assign(_key=order_key).sort_values(["_key", "candidate"]).reset_index(drop=True)
    table.insert(0, "aggregate_rank", table["_key"].rank(method="min").astype(int))
    table = table.drop(columns="_key")
    table.attrs["metrics"] = {p: fallbacks[p] if p in notes else rule.metric_of(p, fallbacks[p]) for p in proxies}
    table.attrs["screens"] = list(verdicts)
    text = rule.describe(proxies, fallbacks, list(verdicts))
    return table, text + (f" ({'; '.join(notes.values())})" if notes else "")
