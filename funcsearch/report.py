"""The HTML report of a results folder: one self-contained page and the PNGs it shows.

    write_report("results/property_shift")        # -> results/property_shift/report/index.html
    write_report("results/property_shift", reference="paper_property_tables.csv", top=6)

The page (``index.html``, images as relative links to PNGs beside it, no script, no server
needed) has, in order:

1. what was run: trials per proxy and status, seeds, stored vs planned, compute time;
2. the leaderboard of each proxy with its 95% intervals over seeds (plot and table);
3. the proxies' rank agreement (aggregate rank, Spearman between proxies and between seeds);
4. the shapes of the top and bottom functions (:func:`funcsearch.plots.shapes.plot_shapes`);
5. training curves of the top entries and of every function that diverged on some seed;
6. the property evidence of each function (:func:`funcsearch.properties.check_properties`,
   verdicts with their numbers) beside its ranks;
7. fitting vs generalisation: the evaluation-mode training loss next to the test metric
   (proxies that declare ``train_eval_loss``);
8. with a reference set, the proxy's fidelity (:func:`funcsearch.fidelity.fidelity_of_results`).

Every ranking is shown with its noise: seed counts, standard deviations, t-based 95%
intervals; the fidelity intervals are bootstraps over seeds.

Also here: :func:`fit_table` (section 7's numbers) and :func:`compare_studies` (the same
functions in two results folders, joined by numeric fingerprint), used by the notebook.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from funcsearch.errors import FuncsearchError, InputError
from funcsearch.plots import save_figure
from funcsearch.ranking import (NOTE, Leaderboard, agreement_lines, aggregate_rows, aggregate_title, board_display,
                                declared_rule, display_rows, fmt, leaderboard, significant, spearman_interval)
from funcsearch.properties import PROPERTIES, Profile, load_profile

if TYPE_CHECKING:
    from funcsearch.fidelity import FidelityReport

__all__ = ["write_report", "fit_table", "compare_studies", "fidelity_html", "fidelity_section",
           "read_results"]

EVAL_LOSS = "train_eval_loss"
"""The metric of PAPER_METHODS.md section 5, by the name proxies that measure it declare it."""


def read_results(results: str | Path) -> pd.DataFrame:
    """The current trials of a results folder; a clear error if there are none."""
    from funcsearch.search.store import read_results as read_store

    return read_store(results)


# -- numbers used by the sections -----------------------------------------------------------

def _metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """The final metrics of each row (parsed from the JSON column), aligned with ``frame``."""
    parsed = [json.loads(m) if isinstance(m, str) and m else {} for m in frame["metrics"]]
    return pd.DataFrame(parsed, index=frame.index)


def _best_point_rows(frame: pd.DataFrame, board: Leaderboard, proxy: str) -> pd.DataFrame:
    """Rows of ``proxy`` at each function's reported hyperparameter point (the leaderboard's)."""
    table = board.proxies[proxy]
    point = dict(zip(table["candidate"], table["hyperparameters"]))
    rows = frame[frame["proxy"] == proxy]
    keep = [point.get(c) == (h or "{}") for c, h in zip(rows["candidate"], rows["hyperparameters"])]
    return rows[keep]


def fit_table(frame: pd.DataFrame, proxy: str, board: Leaderboard | None = None) -> pd.DataFrame | None:
    """Per function (ok seeds, the leaderboard's point): evaluation-mode training loss and
    the test metric, mean and std over seeds, in leaderboard order; None if the proxy does
    not record ``train_eval_loss``."""
    board = board or leaderboard(frame)
    rows = _best_point_rows(frame, board, proxy)
    rows = rows[rows["status"] == "ok"]
    metrics = _metrics(rows)
    if EVAL_LOSS not in metrics.columns or metrics[EVAL_LOSS].isna().all():
        return None
    metric, _ = board.primary[proxy]
    rows = rows.assign(_fit=metrics[EVAL_LOSS].astype(float), _metric=rows["score"].astype(float),
                       _test_loss=metrics.get("test_loss", pd.Series(np.nan, index=rows.index)).astype(float))
    records = []
    for _, r in board.proxies[proxy].iterrows():
        group = rows[rows["candidate"] == r["candidate"]]
        fit = group["_fit"].dropna().to_numpy()
        score = group["_metric"].dropna().to_numpy()
        test_loss = group["_test_loss"].dropna().to_numpy()
        records.append({
            "rank": r["rank"], "candidate": r["candidate"], "kind": r["kind"], "seeds_ok": len(group),
            "train_eval_loss_mean": float(fit.mean()) if len(fit) else math.nan,
            "train_eval_loss_std": float(fit.std(ddof=1)) if len(fit) > 1 else math.nan,
            "metric": metric,
            "metric_mean": float(score.mean()) if len(score) else math.nan,
            "metric_std": float(score.std(ddof=1)) if len(score) > 1 else math.nan,
            "test_loss_mean": float(test_loss.mean()) if len(test_loss) else math.nan,
            "gap_mean": float(test_loss.mean() - fit.mean()) if len(test_loss) and len(fit) else math.nan,
        })
    return pd.DataFrame.from_records(records)


def regime_table(frame: pd.DataFrame, proxy: str, board: Leaderboard | None = None) -> pd.DataFrame | None:
    """Per function of ``proxy`` (the leaderboard's order and point): the end-of-training regime
    at each site kind, seed means: columns ``<site> >1``, ``<site> >2``, ``<site> p99`` for the
    site kinds some trial recorded (``layers.convert.SITE_KINDS`` order), plus ``candidate``,
    ``kind``, ``rank`` and ``label``. None when no trial of ``proxy`` recorded a regime."""
    from funcsearch.layers.convert import SITE_KINDS
    from funcsearch.search.store import mean_end_regimes

    board = board or leaderboard(frame)
    if proxy not in board.proxies:
        return None
    rows = _best_point_rows(frame, board, proxy)
    rows = rows[rows["status"] == "ok"]
    records = []
    for _, r in board.proxies[proxy].iterrows():
        trials = rows[rows["candidate"] == r["candidate"]]
        record = {"candidate": r["candidate"], "kind": r["kind"], "rank": r["rank"],
                  "label": f"{fmt(r['rank']) or '-'}. {r['candidate']}"}
        for site, regime in mean_end_regimes(trials, SITE_KINDS).items():
            for key, value in regime.items():
                record[f"{site} {'p99' if key == 'p99' else '>' + key[2:]}"] = value
        records.append(record)
    table = pd.DataFrame(records)
    recorded = [s for s in SITE_KINDS if f"{s} >1" in table and table[f"{s} >1"].notna().any()]
    if table.empty or not recorded:
        return None
    keep = ["candidate", "kind", "rank", "label"] + [f"{s} {k}" for s in recorded for k in (">1", ">2", "p99")]
    return table[keep]


def _seed_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (proxy, fingerprint, shift): name, mean/std/n of the ok scores, seeds diverged."""
    from funcsearch.expressions import fingerprint

    frame = frame[frame["expression"].map(lambda e: isinstance(e, str) and bool(e))]
    frame = frame[frame["status"].isin(("ok", "diverged"))]
    prints = {e: fingerprint(e) for e in set(frame["expression"])}
    shift = frame["shift"].fillna("none").astype(str) if "shift" in frame else "none"
    frame = frame.assign(fingerprint=frame["expression"].map(prints), shift=shift)
    records = []
    for (proxy, fp, kind), group in frame.groupby(["proxy", "fingerprint", "shift"], sort=False):
        ok = group[group["status"] == "ok"]["score"].astype(float).to_numpy()
        records.append({"proxy": proxy, "fingerprint": fp, "shift": kind, "candidate": group["candidate"].iloc[0],
                        "expression": group["expression"].iloc[0], "mean": float(ok.mean()) if len(ok) else math.nan,
                        "std": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan, "ok": len(ok),
                        "diverged": int((group["status"] == "diverged").sum())})
    return pd.DataFrame.from_records(records, columns=["proxy", "fingerprint", "shift", "candidate", "expression",
                                                       "mean", "std", "ok", "diverged"])


def compare_studies(a: str | Path | pd.DataFrame, b: str | Path | pd.DataFrame, *,
                    proxy: str | None = None) -> pd.DataFrame:
    """The functions two studies share, joined by numeric fingerprint (spelling-proof) **and
    learnable shift** (``erf`` with s and without it are different functions), with each
    study's seed mean, std, ok and diverged seed counts, and the difference b - a.

    Folders are read with their current plan; baselines without an expression (LayerNorm,
    RMSNorm) have no fingerprint and are left out. One row per (proxy, function, shift).
    ``attrs["unpaired"]`` counts the functions both ran with different shifts (not joined).
    For the paired-by-seed comparison with intervals use
    :func:`funcsearch.compare.compare_results` (``funcsearch compare``)."""
    frames = [x if isinstance(x, pd.DataFrame) else read_results(x) for x in (a, b)]
    means = [_seed_means(f if proxy is None else f[f["proxy"] == proxy]) for f in frames]
    joined = means[0].merge(means[1], on=["proxy", "fingerprint", "shift"], suffixes=("_a", "_b"))
    joined["diff"] = joined["mean_b"] - joined["mean_a"]
    columns = ["proxy", "shift", "candidate_a", "candidate_b", "expression_a", "mean_a", "std_a", "ok_a",
               "diverged_a", "mean_b", "std_b", "ok_b", "diverged_b", "diff", "fingerprint"]
    out = joined[columns].sort_values(["proxy", "mean_a"], ascending=[True, False]).reset_index(drop=True)
    either = means[0].merge(means[1], on=["proxy", "fingerprint"], suffixes=("_a", "_b"))
    out.attrs["unpaired"] = int(len(either[either["shift_a"] != either["shift_b"]][["proxy", "fingerprint"]]
                                    .drop_duplicates().merge(out[["proxy", "fingerprint"]], how="left",
                                                             indicator=True).query("_merge == 'left_only'")))
    return out


# -- HTML helpers ---------------------------------------------------------------------------

def _e(value: object) -> str:
    return html.escape(str(value))


def _table(header: Sequence[str], body: Sequence[Sequence[str]],
           row_classes: Sequence[str] | None = None, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are trusted HTML)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    lines = []
    for i, row in enumerate(body):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f"<td>{c if raw else _e(c)}</td>" for c in row)
        lines.append(f"<tr{cls}>{cells}</tr>")
    return (f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody>"
            "</table></div>")


def _img(name: str, alt: str) -> str:
    return f'<p><a href="{_e(name)}"><img src="{_e(name)}" alt="{_e(alt)}" loading="lazy"></a></p>'


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _direction(board: Leaderboard, proxy: str) -> str:
    metric, higher = board.primary[proxy]
    return f"{metric}, {'higher' if higher else 'lower'} is better"


# -- sections -------------------------------------------------------------------------------

@dataclass
class _Context:
    folder: Path
    out: Path
    frame: pd.DataFrame
    board: Leaderboard
    top: int
    profile: Profile
    written: set[str] = field(default_factory=set)

    def image(self, name: str) -> Path:
        """Where a PNG shown by the page is written (beside index.html)."""
        self.written.add(name)
        return self.out / name


def _summary(ctx: _Context) -> str:
    from funcsearch.search.store import ResultsStore

    frame = ctx.frame
    plan = ResultsStore(ctx.folder).read_plan()
    rows = []
    for proxy, group in frame.groupby("proxy", sort=True):
        counts = group["status"].value_counts()
        seeds = sorted(int(s) for s in group["seed"].unique())
        rows.append([proxy, str(group["candidate"].nunique()), ", ".join(map(str, seeds)), str(len(group)),
                     *[str(int(counts.get(s, 0))) for s in ("ok", "diverged", "pruned", "failed")],
                     f"{group['wall_time_s'].astype(float).sum() / 3600:.2f}",
                     fmt(float(group["wall_time_s"].astype(float).median()), 3)])
    stored = (f"{len(frame)} of {len(plan)} planned trials are stored"
              + (" (the search is still running or was stopped: this page shows what is there)."
                 if len(frame) < len(plan) else ".") if plan else f"{len(frame)} trials stored.")
    return "\n".join([
        '<h2 id="summary">What was run</h2>',
        f"<p>{_e(stored)}</p>",
        _table(["proxy", "functions", "seeds", "trials", "ok", "diverged", "pruned", "failed",
                "compute (h)", "median s/trial"], rows),
        "<p class=note>How to read the rankings: each function's score is the mean over its seeds "
        f"that finished <em>ok</em>, with the sample std and a t-based 95% interval over those "
        f"seeds{_width_note(frame)}, so neighbours whose intervals overlap are not separated by "
        "this study. A function with diverged seeds ranks below every function without, whatever "
        "its mean. Differences with the best baseline are paired by seed.</p>",
    ])


def _width_note(frame: pd.DataFrame) -> str:
    """', with N seeds the interval reaches k std either side of the mean' for the usual N."""
    from scipy import stats

    seeds = frame.groupby(["proxy", "unit_key"])["seed"].nunique()
    n = int(seeds.mode().iloc[0]) if len(seeds) else 0
    if n < 2:
        return " (a function with one seed has no interval)"
    half = float(stats.t.ppf(0.975, n - 1)) / math.sqrt(n)
    return f"; with {n} seeds the interval reaches {half:.2g} std either side of the mean"


def _leaderboard_section(ctx: _Context) -> str:
    from funcsearch.plots.leaderboard import plot_leaderboard

    parts = []
    if len(ctx.board.proxies) > 1:  # the declared aggregate comes first
        parts += ['<h2 id="aggregate">Aggregate rank</h2>',
                  f"<p>{_e(aggregate_title(ctx.board))}</p>", _table(*aggregate_rows(ctx.board))]
    parts += ['<h2 id="leaderboard">Leaderboard per proxy</h2>',
             "<p class=note>The plot draws each function's difference with the best baseline, "
             "paired by seed, with the 95% interval of those paired differences: the interval "
             "behind the table's <em>beats best baseline</em> verdict. Functions with no ok seed "
             "are named in the right margin, off the scale.</p>"]
    for proxy, table in ctx.board.proxies.items():
        header, body = display_rows(table, board_display(ctx.board, proxy))
        classes = ["baseline" if k == "baseline" else ("bad" if ok == 0 else "")
                   for k, ok in zip(table["kind"], table["ok"])]
        parts.append(f"<h3>{_e(proxy)} ({_e(_direction(ctx.board, proxy))})</h3>")
        if proxy in ctx.board.screens:  # a plot ranked by its scores would show what does not count
            parts.append(f"<p class=note>{_e(proxy)} is a stability screen: its scores are listed "
                         "for reference, not ranked; what counts is its <em>diverged</em> column "
                         "(and its verdict column in the aggregate).</p>")
        else:
            name = f"leaderboard_{proxy}.png"  # one plot per proxy, beside its table: legible at 800 px
            save_figure(plot_leaderboard(ctx.board, proxy=proxy), ctx.image(name), dpi=110)
            parts.append(_img(name, f"{proxy} leaderboard plot"))
        parts.append(_table(header, body, classes))
    parts.append(f"<p class=note>{_e(NOTE)} Baselines are shaded blue; functions with no ok "
                 "seed red.</p>")
    return "\n".join(parts)


def _agreement_section(ctx: _Context) -> str:
    parts = ['<h2 id="agreement">Rank agreement</h2>']
    parts += ["<ul>"] + [f"<li>{_e(line)}</li>" for line in agreement_lines(ctx.board)] + ["</ul>"]
    parts.append("<p class=note>Spearman between proxies: over the functions both ranked, 95% "
                 "interval from Fisher's z. Seed agreement: Spearman between the rankings of two "
                 "seeds (non-ok trials tie last); low values mean the ranking is mostly seed noise."
                 "</p>")
    return "\n".join(parts)


def _expressions(ctx: _Context) -> dict[str, str]:
    frame = ctx.frame
    return {c: e for c, e in zip(frame["candidate"], frame["expression"]) if isinstance(e, str) and e}


def _order(ctx: _Context) -> list[str]:
    """Every function in aggregate-rank order (unranked last)."""
    return [str(c) for c in ctx.board.aggregate["candidate"]]


def _shapes_section(ctx: _Context) -> str:
    from funcsearch.plots.shapes import plot_shapes

    expressions = _expressions(ctx)
    ordered = [c for c in _order(ctx) if c in expressions]
    parts = ['<h2 id="shapes">Shapes of the top and bottom functions</h2>']
    if not ordered:
        return "\n".join(parts + ["<p>No point-wise function in this study.</p>"])
    if len(ordered) <= 2 * ctx.top:
        groups = [("all functions, best first", ordered)]
    else:
        groups = [(f"top {ctx.top}", ordered[:ctx.top]), (f"bottom {ctx.top}, worst last", ordered[-ctx.top:])]
    for label, names in groups:
        name = f"shapes_{_safe(label.split(',')[0])}.png"
        save_figure(plot_shapes([(n, expressions[n]) for n in names], ctx.profile, columns=3), ctx.image(name))
        parts += [f"<h3>{_e(label)} (by aggregate rank)</h3>", _img(name, f"shapes, {label}")]
    parts.append("<p class=note>f solid, f' dashed, on [-5, 5]; marks: the four property "
                 "verdicts with their key number (green = passed). Statistics-based norms "
                 "(LayerNorm, RMSNorm) have no shape.</p>")
    return "\n".join(parts)


def _curves_section(ctx: _Context) -> str:
    from funcsearch.plots.curves import plot_curves

    parts = ['<h2 id="curves">Training curves</h2>']
    for proxy, table in ctx.board.proxies.items():
        if proxy not in ctx.board.screens:  # a screen's top by score means nothing: only its divergences
            rows = _best_point_rows(ctx.frame, ctx.board, proxy)
            top = [str(c) for c in table["candidate"].head(ctx.top)]
            name = f"curves_top_{_safe(proxy)}.png"
            save_figure(plot_curves(rows, top), ctx.image(name), dpi=100)
            parts += [f"<h3>{_e(proxy)}: top {len(top)}</h3>", _img(name, f"curves of the top of {proxy}")]
        # every diverged trial, at whatever hyperparameter point it ran
        every = ctx.frame[ctx.frame["proxy"] == proxy]
        units = every[every["status"] == "diverged"][["candidate", "hyperparameters"]].drop_duplicates()
        if units.empty:
            parts.append(f"<p>No trial diverged on {_e(proxy)}.</p>")
            continue
        swept = bool(every["hyperparameters"].map(lambda h: h not in (None, "", "{}")).any())
        chosen = every.merge(units, on=["candidate", "hyperparameters"])
        if swept:
            chosen = chosen.assign(candidate=[f"{c} {h}" for c, h in zip(chosen["candidate"],
                                                                          chosen["hyperparameters"])])
        labels = list(dict.fromkeys(chosen["candidate"]))
        name = f"curves_diverged_{_safe(proxy)}.png"
        save_figure(plot_curves(chosen, labels), ctx.image(name), dpi=100)
        parts += [f"<h3>{_e(proxy)}: every function with a diverged seed ({len(labels)})</h3>",
                  _img(name, f"curves of the diverged functions of {proxy}")]
        messages = chosen[chosen["status"] == "diverged"][["candidate", "seed", "message"]]
        parts.append("<details><summary>divergence messages</summary>" + _table(
            ["function", "seed", "message"],
            [[str(r["candidate"]), str(r["seed"]), str(r["message"] or "")] for _, r in messages.iterrows()])
            + "</details>")
    parts.append("<p class=note>A diverged run's curve holds the epochs it finished; the red "
                 "cross marks where it diverged. The numbers under each panel are each seed's "
                 "final score.</p>")
    return "\n".join(parts)


def _property_section(ctx: _Context) -> str:
    from funcsearch.expressions import parse_expression
    from funcsearch.properties import check_properties

    expressions = _expressions(ctx)
    proxies = list(ctx.board.proxies)
    ranks = {p: dict(zip(t["candidate"], t["rank"])) for p, t in ctx.board.proxies.items()}
    header = ["function", *[f"rank {p}" for p in proxies], "zero-centred", "bounded",
              "centre-sensitive", "monotonic", "all four"]
    body, classes = [], []
    for name in _order(ctx):
        if name not in expressions:
            continue
        try:
            report = check_properties(parse_expression(expressions[name]), ctx.profile,
                                      compile_check=False, name=name)
        except FuncsearchError as exc:
            body.append([_e(name), *["" for _ in proxies], _e(f"cannot check: {exc}"), "", "", "", ""])
            classes.append("")
            continue
        cells = [f"{_e(name)}<br><code>{_e(expressions[name])}</code>",
                 *[_e(fmt(ranks[p].get(name)) or "-") for p in proxies]]
        for prop in PROPERTIES:
            check = report.checks[prop]
            mark = '<span class="pass">pass</span>' if check.passed else '<span class="fail">FAIL</span>'
            cells.append(f"{mark} {_e(check.detail)}")
        cells.append("yes" if report.all_passed else "no")
        body.append(cells)
        classes.append("" if report.all_passed else "weak")
    parts = ['<h2 id="properties">Property evidence</h2>',
             "<p>Each function's four property checks (default profile) with the numbers behind "
             "them, beside its rank on each proxy, best first. A property that fails while the "
             "function ranks high (or the reverse) is where the proxy and the paper's "
             "properties disagree.</p>",
             _table(header, body, classes, raw=True)]
    return "\n".join(parts)


def _fit_section(ctx: _Context) -> str:
    from funcsearch.plots.curves import plot_fit_vs_test

    parts = ['<h2 id="fit">Fitting vs generalisation</h2>',
             "<p>The evaluation-mode training loss (after training, augmentation and stochastic "
             "regularisation off, loss on the training set) measures how well a function lets the "
             "model fit; the test metric, how well it generalises. A function left of the others "
             "fits better; if it is not also higher (better), it generalises worse.</p>"]
    found = False
    for proxy in ctx.board.proxies:
        if proxy in ctx.board.screens:  # its scores do not count, so neither does their generalisation
            continue
        table = fit_table(ctx.frame, proxy, ctx.board)
        if table is None:
            parts.append(f"<p>{_e(proxy)}: no evaluation-mode training loss recorded.</p>")
            continue
        found = True
        metric, higher = ctx.board.primary[proxy]
        name = f"fit_vs_test_{_safe(proxy)}.png"
        scored = table.dropna(subset=["train_eval_loss_mean", "metric_mean"])
        if len(scored):
            d = board_display(ctx.board, proxy)
            save_figure(plot_fit_vs_test(table, metric=metric, higher=higher, scale=d.metric.scale,
                                         unit=d.unit, title=f"{proxy}: fitting vs generalisation "
                                         "(seed mean, bars +-1 std)"), ctx.image(name), dpi=110)
        rho, low, high, n = spearman_interval(scored["train_eval_loss_mean"].to_numpy(),
                                              scored["metric_mean"].to_numpy())
        correlation = ("n/a (fewer than 3 functions)" if math.isnan(rho) else
                       f"{rho:+.2f}" + (f", 95% CI [{low:+.2f}, {high:+.2f}]" if not math.isnan(low) else "")
                       + f", {n} functions")
        d = board_display(ctx.board, proxy)
        body = [[fmt(r["rank"]) or "-", str(r["candidate"]), str(r["seeds_ok"]),
                 _pm(r["train_eval_loss_mean"], r["train_eval_loss_std"]),
                 (d.value(r["metric_mean"]) + (f" ± {d.spread(r['metric_std'])}" if d.spread(r["metric_std"]) else "")),
                 fmt(r["test_loss_mean"]), fmt(r["gap_mean"])]
                for _, r in table.iterrows()]
        reading = ("negative" if higher else "positive") + " = the functions that fit better also test better"
        parts += [f"<h3>{_e(proxy)}</h3>",
                  f"<p>Spearman between evaluation-mode training loss and {_e(metric)} across "
                  f"functions (seed means): {_e(correlation)} ({reading}).</p>"]
        if len(scored):
            parts.append(_img(name, f"fitting vs generalisation on {proxy}"))
        parts.append(_table(["rank", "function", "ok seeds", "eval-mode train loss (mean ± std)",
                             d.suffix(f"{metric}, mean ± std"), "test loss", "test - train loss"], body,
                            ["baseline" if k == "baseline" else "" for k in table["kind"]]))
    if not found:
        parts.append("<p class=note>Only proxies that declare <code>train_eval_loss</code> record it.</p>")
    return "\n".join(parts)


def _regime_section(ctx: _Context) -> str:
    from funcsearch.plots.regime import plot_regime

    parts = ['<h2 id="regime">Regime</h2>',
             "<p>Where each function works: the share of its inputs u = alpha*x + s beyond 1 and "
             "beyond 2 at the end of training, per norm site kind (seed means of the ok trials at "
             "the leaderboard's point). A unit Gaussian has 32% beyond 1 and 5% beyond 2, about "
             "where full-scale training keeps u (DyT's learned alpha tracks 1/std of its input); "
             "near 100% beyond 2, a bounded function acts at that site as a sign function. A site "
             "kept at LayerNorm (<code>layernorm_sites</code>), a baseline norm and a function whose "
             "trials were stored before trials recorded their regime (2026-11-30) have no cell.</p>"]
    for proxy in ctx.board.proxies:
        table = regime_table(ctx.frame, proxy, ctx.board)
        if table is None:
            parts.append(f"<p>{_e(proxy)}: no regime recorded (trials stored before it was).</p>")
            continue
        sites = [c[:-3] for c in table.columns if c.endswith(" >1")]
        shown = table.dropna(subset=[f"{s} >1" for s in sites], how="all")
        name = f"regime_{_safe(proxy)}.png"
        save_figure(plot_regime(shown, sites, title=f"{proxy}: regime at the end of training (seed means)"),
                    ctx.image(name), dpi=100)
        body = [[str(r["label"]), *[("" if pd.isna(r[f"{s} >1"]) else
                                     f"{r[f'{s} >1']:.0%} / {r[f'{s} >2']:.0%} / {significant(float(r[f'{s} p99']))}")
                                    for s in sites]] for _, r in table.iterrows()]
        parts += [f"<h3>{_e(proxy)}</h3>", _img(name, f"regime per site kind on {proxy}"),
                  "<details><summary>the numbers: |u| &gt; 1 / &gt; 2 / 99th percentile of |u|</summary>"
                  + _table(["function", *sites], body,
                           ["baseline" if k == "baseline" else "" for k in table["kind"]]) + "</details>"]
    return "\n".join(parts)


def _pm(mean: object, std: object) -> str:
    text = fmt(mean)
    if text and std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {float(std):.2g}"
    return text


def fidelity_html(reports: Sequence[FidelityReport], source: str = "") -> str:
    """HTML of fidelity reports: the same figures as ``FidelityReport.to_markdown``."""
    from funcsearch.fidelity import STUDY_COLUMNS

    parts = []
    for r in reports:
        parts += [f"<h3>Fidelity of {_e(r.subject())}"
                  + (f" against {_e(source)}" if source else "") + "</h3>",
                  f"<p>Studies: {_e(', '.join(r.studies))}. Shared functions: {r.n_shared}; "
                  f"seeds: {r.n_seeds}.</p>",
                  _table(["measure", "value"], [list(row) for row in r.measure_rows()]),
                  _table(list(STUDY_COLUMNS), [p.cells() for p in r.patterns],
                         ["" if p.reproduced else "weak" for p in r.patterns])]
        if r.table is not None and len(r.table):
            t = r.table
            parts.append("<details><summary>per function</summary>" + _table(
                ["function", "study", "reference", "ref. failed", "proxy mean", "proxy failed",
                 "proxy rank", "reference rank"],
                [[str(x["name"]), str(x["study"]), fmt(x["reference"]), "yes" if x["reference_failed"] else "",
                  fmt(x["proxy_mean"]), "yes" if x["proxy_failed"] else "", str(x["proxy_rank"]),
                  str(x["reference_rank"])] for _, x in t.iterrows()]) + "</details>")
    parts.append("<p class=note>A proxy failure = at least half the seeds diverged; failures rank "
                 "below every working function. Bootstrap intervals resample functions and seeds "
                 "together; with few of either they are wide.</p>")
    return "\n".join(parts)


def fidelity_section(results: str | Path, reference: str | Path, fmt: str = "md", *,
                     proxy: str | None = None, bootstrap: int = 1000) -> str:
    """The fidelity of a results folder against a reference, as a section to append to a
    leaderboard in ``md`` or ``html`` (raises the user's error if it cannot be computed)."""
    from funcsearch.fidelity import fidelity_of_results
    from funcsearch.references import load_reference

    if fmt not in ("md", "html"):
        raise InputError(f"unknown format {fmt!r} for a fidelity section (md or html)", field="--format")
    source = Path(load_reference(reference).source).name
    reports = fidelity_of_results(results, reference, proxy=proxy, bootstrap=bootstrap,
                                  rule=declared_rule(results))
    if fmt == "html":
        return f"<h2>Fidelity against {_e(source)}</h2>\n{fidelity_html(reports)}\n"
    return (f"\n## Fidelity against {source}\n\n"
            + "\n\n".join(r.to_markdown() for r in reports) + "\n")


def _fidelity_section(ctx: _Context, reference: str | Path, bootstrap: int) -> str:
    from funcsearch.fidelity import fidelity_of_results
    from funcsearch.references import load_reference

    source = load_reference(reference).source  # a bad file is the user's error: raise it
    parts = ['<h2 id="fidelity">Fidelity against the reference</h2>']
    try:
        reports = fidelity_of_results(ctx.folder, reference, bootstrap=bootstrap, rule=declared_rule(ctx.folder))
    except InputError as exc:  # too few shared functions: say so, keep the rest of the page
        return "\n".join(parts + [f"<p>Not computed: {_e(exc)}</p>"])
    return "\n".join(parts + [fidelity_html(reports, Path(source).name)])


def _screen_headline(ctx: _Context, proxy: str) -> str:
    """What a stability screen decided: which functions it ranks below the rest, and which
    diverged on fewer than half of their seeds (a warning, not a verdict)."""
    rows = ctx.frame[(ctx.frame["proxy"] == proxy) & ctx.frame["status"].isin(["ok", "diverged"])]
    counts = rows.groupby("candidate")["status"].agg(runs="size", diverged=lambda s: int((s == "diverged").sum()))
    verdict = ctx.board.aggregate.set_index("candidate")[f"screen_{proxy}"]
    out = [str(c) for c in ctx.board.aggregate["candidate"] if verdict.get(c) == 1]
    warned = [str(c) for c, r in counts.iterrows() if r["diverged"] and c not in out]

    def named(names: list[str]) -> str:
        return ", ".join(f"{_e(c)} ({int(counts.loc[c, 'diverged'])} of {int(counts.loc[c, 'runs'])} seeds)"
                         for c in names)

    text = f"<li><b>{_e(proxy)}</b> (a stability screen: only its divergences count): "
    if not out and not warned:
        return text + f"none of its {len(counts)} functions diverged on any seed, so it demotes none.</li>"
    text += (f"of {len(counts)} functions, {len(out)} diverged on half or more of their seeds and rank "
             "below every other function in the aggregate" + (f": {named(out)}" if out else "") + ".")
    if warned:
        text += f" {len(warned)} diverged on fewer than half (not screened out): {named(warned)}."
    return text + "</li>"


def _headline(ctx: _Context) -> str:
    """Who won on each proxy, by how much against the best baseline, whether beyond seed noise,
    how reproducible the order is, and how far a proxy ranking can be trusted (fidelity)."""
    items = []
    for proxy, table in ctx.board.proxies.items():
        if proxy in ctx.board.screens:
            items.append(_screen_headline(ctx, proxy))
            continue
        d = board_display(ctx.board, proxy)
        metric, higher = ctx.board.primary[proxy]
        unit = d.unit if d.unit == "%" else (f" {d.unit}" if d.unit else "")
        points = "points" if d.unit == "%" else (d.unit or "")
        ranked = table[table["ok"] > 0]
        candidates = table[table["kind"] == "candidate"]
        best = table[(table["kind"] == "baseline") & (table["ok"] > 0)]
        lead = []
        if len(ranked):
            top = ranked.iloc[0]
            lead.append(f"<b>{_e(top['candidate'])}</b> ranks first ({_e(top['kind'])}, "
                        f"{_e(d.value(top['mean']))}{_e(unit)} mean over {int(top['ok'])} seeds).")
        scored = candidates[candidates["ok"] > 0]
        if len(best) and len(scored):
            base = best.iloc[0]
            cand = scored.iloc[0]
            diff = d.spread(cand["diff_vs_best_baseline"], signed=True)
            interval = d.interval(cand["diff_ci95_low"], cand["diff_ci95_high"], difference=True)
            verdict = str(cand["beats_best_baseline"] or "n/a")
            meaning = {"yes": "better than it beyond seed noise",
                       "worse": "worse than it beyond seed noise",
                       "within noise": "<b>not separable from it</b>: the interval contains 0",
                       }.get(verdict, "not compared (fewer than 2 paired seeds)")
            lead.append(f"The best candidate, <b>{_e(cand['candidate'])}</b>, differs from the best baseline "
                        f"{_e(base['candidate'])} ({_e(d.value(base['mean']))}{_e(unit)}) by "
                        f"<b>{_e(diff)} {_e(points)}</b> (paired over {_e(fmt(cand['pairs']))} seeds, 95% CI "
                        f"{_e(interval or 'n/a')}, positive = better): {meaning}.")
        verdicts = candidates["beats_best_baseline"].astype(str)
        never_ok = int(((candidates["ok"] == 0) & (candidates["diverged"] > 0)).sum())
        lead.append(f"Of {len(candidates)} candidates, {int((verdicts == 'yes').sum())} beat the best "
                    f"baseline beyond noise, {int((verdicts == 'within noise').sum())} are within noise, "
                    f"{int((verdicts == 'worse').sum())} are worse, {never_ok} diverged on every seed.")
        if d.resolution_note:
            lead.append(f"Resolution: {_e(d.resolution_note)}.")
        seeds = ctx.board.seed_agreement
        row = seeds[seeds["proxy"] == proxy]
        if len(row) and not math.isnan(float(row.iloc[0]["mean_spearman"])):
            mean = float(row.iloc[0]["mean_ranking"])
            lead.append(f"Seed agreement (how reproducible the order is, 1 = every seed ranks alike): "
                        f"Spearman {float(row.iloc[0]['mean_spearman']):+.2f}"
                        + (f"; the order of the mean over {int(row.iloc[0]['seeds'])} seeds would come "
                           f"back at about {mean:+.2f} with as many other seeds." if not math.isnan(mean) else "."))
        items.append(f"<li><b>{_e(proxy)}</b> ({_e(metric)}, {'higher' if higher else 'lower'} is better): "
                     + " ".join(lead) + "</li>")
    fidelity = ctx.board.fidelity or []
    caveat = ("<p class=caveat><b>Fidelity caveat.</b> These are rankings on small proxy tasks; "
              "whether they predict full-scale results is a separate measurement: "
              + (" ".join(_e(line) for line in fidelity) if fidelity else "not measured for this study.")
              + "</p>")
    return "\n".join(['<section class=headline id="headline"><h2>Headline</h2><ul>', *items, "</ul>",
                      caveat, "</section>"])


def _distinct(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna() if str(v) not in ("", "{}", "None")})


def _provenance(ctx: _Context) -> str:
    """How these numbers were made: config, shift, recipe or preset, code versions, device, data."""
    from funcsearch import __version__

    frame = ctx.frame
    for column in ("versions", "details", "config", "overrides", "shift", "alpha_init", "node", "config_hash"):
        if column not in frame:  # rows stored before a column existed
            frame = frame.assign(**{column: None})
    rows = []
    for proxy, group in frame.groupby("proxy", sort=True):
        versions: dict[str, set[str]] = {}
        for text in group["versions"].dropna():
            try:
                for k, v in json.loads(text).items():
                    versions.setdefault(k, set()).add(str(v))
            except ValueError:
                continue
        datasets = set()
        for text in group["details"].dropna():
            try:
                datasets.add(str(json.loads(text).get("dataset", "")))
            except ValueError:
                continue
        device = ", ".join(f"{d}/{p}" for d, p in sorted(set(zip(
            group.get("device", pd.Series("cpu", index=group.index)).fillna("cpu"),
            group.get("precision", pd.Series("fp32", index=group.index)).fillna("fp32")))))
        gpu = ", ".join(sorted(versions.get("gpu", set())))
        rows.append([proxy, ", ".join(_distinct(group["shift"])) or "-",
                     ", ".join(_distinct(group["alpha_init"])) or "-",
                     "; ".join(_distinct(group["overrides"])) or "the proxy's defaults",
                     str(group["config_hash"].nunique()),
                     "; ".join(f"{k} {', '.join(sorted(v))}" for k, v in sorted(versions.items()) if k != "gpu"),
                     device + (f" ({gpu})" if gpu else "") + f", {group['node'].nunique()} node(s)",
                     ", ".join(sorted(d for d in datasets if d)) or "-"])
    parts = ['<h2 id="provenance">Provenance</h2>',
             _table(["proxy", "learnable shift s", "alpha init", "recipe (config overrides)",
                     "distinct resolved configs", "code versions (as recorded by the trials)",
                     "device / precision", "dataset"], rows)]
    for proxy, group in frame.groupby("proxy", sort=True):
        configs = group["config"].dropna()
        if len(configs):
            try:
                text = json.dumps(json.loads(configs.iloc[0]), indent=1, sort_keys=True)
            except ValueError:
                text = str(configs.iloc[0])
            parts.append(f"<details><summary>resolved recipe of {_e(proxy)} (one trial's)</summary>"
                         f"<pre>{_e(text)}</pre></details>")
    config = ctx.folder / "search.yaml"
    if config.exists():
        parts.append(f"<details><summary>search config ({_e(config)})</summary><pre>"
                     f"{_e(config.read_text(encoding='utf-8', errors='replace'))}</pre></details>")
    parts.append(f"<p class=note>Page written by funcsearch {_e(__version__)}{_e(_git_commit())}; "
                 "the trials' own versions are in the table.</p>")
    return "\n".join(parts)


def _git_commit() -> str:
    """' (git abc1234)' when the package runs from a git checkout, else ''."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (git {out.stdout.strip()})" if out.returncode == 0 and out.stdout.strip() else ""


IMAGE_PREFIXES = ("leaderboard", "shapes_", "curves_", "fit_vs_test_", "regime_")
"""Names of the PNGs a report writes (older ones of these names are removed when rewritten)."""

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1300px;
padding:0 16px;color:#222}
h1{font-size:24px}h2{margin-top:36px;border-bottom:1px solid #ccc;padding-bottom:4px}h3{font-size:16px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr.baseline td{background:#eaf2fb}tr.bad td{background:#fdecec}
tr.weak td{background:#fff7e6}
img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:12.5px}
.pass{color:#17803d;font-weight:600}.fail{color:#c62828;font-weight:600}code{font-size:11.5px}
nav a{margin-right:14px}details{margin:6px 0}
.headline{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:4px 16px 8px;margin:16px 0}
.headline h2{margin-top:10px;border:none}.headline li{margin:6px 0}
.caveat{background:#fff7e6;border-left:4px solid #e8a33d;padding:6px 10px}
.scroll{overflow-x:auto;max-width:100%}pre{white-space:pre-wrap;font-size:11.5px}
@media (max-width:900px){body{margin:12px auto;padding:0 8px}table{font-size:11.5px}th,td{padding:2px 4px}}
"""


def write_report(results: str | Path, out: str | Path | None = None, *,
                 reference: str | Path | None = None, top: int = 5,
                 profile: str | Path | Profile | None = None, bootstrap: int = 1000) -> Path:
    """Write ``index.html`` and its PNGs for a results folder; returns the page's path.

    ``out`` defaults to ``<results>/report``; ``reference`` (a CSV path or a shipped set's
    name) adds the fidelity section; ``top`` is how many functions the shapes and curves
    show at each end of the ranking; ``bootstrap`` is the number of resamples behind the
    fidelity intervals."""
    if top < 1:
        raise InputError("must be 1 or more", field="--top")
    folder = Path(results)
    frame = read_results(folder)
    rule = declared_rule(folder)  # the aggregate the search declared, as its leaderboard uses
    board = leaderboard(frame, rule=rule)
    board.title = folder.name
    out_dir = Path(out) if out is not None else folder / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = _Context(folder=folder, out=out_dir, frame=frame, board=board, top=top,
                   profile=profile if isinstance(profile, Profile) else load_profile(profile))
    sections = [("summary", "What was run", _summary), ("leaderboard", "Leaderboard", _leaderboard_section),
                ("agreement", "Rank agreement", _agreement_section), ("shapes", "Shapes", _shapes_section),
                ("curves", "Training curves", _curves_section), ("properties", "Properties", _property_section),
                ("fit", "Fitting vs generalisation", _fit_section), ("regime", "Regime", _regime_section)]
    try:
        from funcsearch.fidelity import fidelity_lines

        board.fidelity = fidelity_lines(frame, rule=rule)
    except Exception as exc:  # noqa: BLE001 - the caveat then says why; the page is still written
        board.fidelity = [f"fidelity not measured ({type(exc).__name__}: {exc})"]
    body = [build(ctx) for _, _, build in sections]
    if reference is not None:
        sections.append(("fidelity", "Fidelity", _fidelity_section))
        body.append(_fidelity_section(ctx, reference, bootstrap))
    sections.insert(0, ("headline", "Headline", _headline))
    body.insert(0, _headline(ctx))
    sections.append(("provenance", "Provenance", _provenance))
    body.append(_provenance(ctx))
    nav = "<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in sections) + "</nav>"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>funcsearch report: {_e(folder.name)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>funcsearch report: {_e(folder.name)}</h1>",
        f"<p class=note>Results folder <code>{_e(folder)}</code>; written {stamp} by "
        "<code>funcsearch report</code>. Images are the PNG files beside this page; provenance "
        "(config, shift, recipe, versions, device) is at the end.</p>",
        nav, *body, "</body></html>", ""])
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    for stale in out_dir.glob("*.png"):  # images of an earlier report that this one does not show
        if stale.name.startswith(IMAGE_PREFIXES) and stale.name not in ctx.written:
            stale.unlink()
    return path

