"""Two results folders (or two settings of one), compared function by function and seed by seed.

    comparison = compare_results("results/property_shift", "results/ablation_shift")
    comparison = compare_results("results/ablation_shift", "results/ablation_shift",
                                 where_a={"shift": "scalar"}, where_b={"shift": "none"})
    print(comparison.render("md"))

A function is the same on both sides when its numeric fingerprint (spelling-proof:
``erf(x+0)`` is ``erf(x)``; LayerNorm and RMSNorm by name) **and** its learnable shift
agree: ``erf`` with a learnable s and ``erf`` without it are different functions of the
input, so they are never paired, unless the shift is the setting being compared (a key of
``where_a`` / ``where_b``). Within a function, trials are paired by seed; the difference
is B - A, oriented so that positive means B is better, with its t-based 95% interval over
the paired seeds (the same statistics as a leaderboard's comparison with its best baseline).
Only final (non-halving) trials at each side's best hyperparameter point are used.

With ``reference`` (a full-scale reference set, as ``funcsearch fidelity`` takes), each proxy
also gets the two sides' Spearman with it on the functions both ran and B - A with a paired
bootstrap interval (``fidelity.fidelity_difference``): is recipe B more faithful than A? When
both sides ran several proxies, each side's declared aggregate rank is compared the same way.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from funcsearch.errors import InputError
from funcsearch.metrics import orient
from funcsearch.ranking import MetricDisplay, metric_display, spearman_interval, t_interval

__all__ = ["Comparison", "compare_results", "function_key", "FORMATS"]

FORMATS = ("table", "md", "csv", "json")
NORM_NAMES = ("layernorm", "rmsnorm")


def function_key(expression: object, candidate: object, cache: dict[str, str] | None = None) -> str | None:
    """The spelling-proof identity of a function: its numeric fingerprint, or the norm's name."""
    from funcsearch.expressions import fingerprint

    if isinstance(expression, str) and expression:
        if cache is None:
            return fingerprint(expression)
        if expression not in cache:
            cache[expression] = fingerprint(expression)
        return cache[expression]
    name = str(candidate).strip().lower()
    return f"norm:{name}" if name in NORM_NAMES else None


@dataclass
class Comparison:
    """The paired comparison of two sides (see the module docstring)."""

    label_a: str
    label_b: str
    table: pd.DataFrame                 # one row per (proxy, function)
    displays: dict[str, MetricDisplay] = field(default_factory=dict)
    agreement: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)
    unpaired: dict[str, list[str]] = field(default_factory=dict)  # proxy -> sentences
    key: tuple[str, ...] = ()
    fidelity: dict[str, str] = field(default_factory=dict)  # proxy -> the fidelity-difference line

    def render(self, fmt: str = "md") -> str:
        if fmt == "md":
            return self._markdown()
        if fmt == "csv":
            buffer = io.StringIO()
            self._display_frame().to_csv(buffer, index=False)
            return buffer.getvalue()
        if fmt == "json":
            return json.dumps({"a": self.label_a, "b": self.label_b, "paired_on": list(self.key),
                               "rows": json.loads(self._display_frame().to_json(orient="records")),
                               "spearman": {p: dict(zip(("rho", "low", "high", "n"), v))
                                            for p, v in self.agreement.items()},
                               "unpaired": self.unpaired, "fidelity": self.fidelity},
                              indent=2, default=_json_default) + "\n"
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})", field="--format")

    def _display_frame(self) -> pd.DataFrame:
        """The table with numbers in each metric's display unit and a ``unit`` column."""
        frame = self.table.copy()
        if len(frame):
            scale = frame["proxy"].map(lambda p: self.displays[p].metric.scale)
            for column in ("mean_a", "mean_b", "diff", "diff_ci95_low", "diff_ci95_high"):
                frame[column] = frame[column].astype(float) * scale
            frame.insert(1, "unit", frame["proxy"].map(lambda p: self.displays[p].unit))
        return frame

    def rows(self, proxy: str) -> tuple[list[str], list[list[str]]]:
        d = self.displays[proxy]
        header = ["function", "shift", "pairs", d.suffix("mean A"), d.suffix("mean B"),
                  d.suffix("B vs A, + = B better"), "95% CI", "verdict"]
        body = []
        for _, r in self.table[self.table["proxy"] == proxy].iterrows():
            body.append([str(r["function"]), str(r["shift"]), str(r["pairs"]), d.value(r["mean_a"]),
                         d.value(r["mean_b"]), d.spread(r["diff"], signed=True),
                         d.interval(r["diff_ci95_low"], r["diff_ci95_high"], difference=True), str(r["verdict"])])
        return header, body

    def summary_lines(self, proxy: str) -> list[str]:
        lines = []
        rows = self.table[self.table["proxy"] == proxy]
        counts = rows["verdict"].value_counts()
        lines.append(f"{len(rows)} functions paired on {', '.join(self.key)}: B better on "
                     f"{int(counts.get('B better', 0))}, A better on {int(counts.get('A better', 0))}, "
                     f"within noise on {int(counts.get('within noise', 0))}.")
        if proxy in self.agreement:
            rho, low, high, n = self.agreement[proxy]
            if math.isnan(rho):
                lines.append(f"Spearman of the seed means: n/a ({n} functions; 3 or more needed).")
            else:
                interval = "" if math.isnan(low) else f", 95% CI [{low:+.2f}, {high:+.2f}]"
                lines.append(f"Spearman of the seed means: {rho:+.2f}{interval} over {n} functions.")
        if proxy in self.fidelity:
            lines.append(self.fidelity[proxy])
        lines += self.unpaired.get(proxy, [])
        return lines

    def _markdown(self) -> str:
        parts = [f"# Comparison: A = {self.label_a}, B = {self.label_b}", ""]
        for proxy in sorted(self.displays):
            d = self.displays[proxy]
            parts += [f"## {proxy} ({d.metric.name}, {'higher' if d.metric.higher_is_better else 'lower'} "
                      "is better)", ""]
            header, body = self.rows(proxy)
            if body:
                parts.append("| " + " | ".join(header) + " |")
                parts.append("|" + "|".join("---" for _ in header) + "|")
                parts += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
                parts.append("")
            parts += [f"- {line}" for line in self.summary_lines(proxy)] + [""]
        if "aggregate" in self.fidelity:
            parts += ["## aggregate rank (each side's declared rule)", "", f"- {self.fidelity['aggregate']}", ""]
        parts += [NOTE, ""]
        return "\n".join(parts)

    def rich_renderables(self) -> list[object]:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        out: list[object] = []
        for proxy in sorted(self.displays):
            header, body = self.rows(proxy)
            t = Table(title=f"{proxy}: A = {self.label_a}, B = {self.label_b}", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False)
            for h in header:
                t.add_column(h, overflow="fold", min_width=16 if h == "function" else 12 if h == "verdict" else None,
                             justify="left" if h in ("function", "shift", "verdict") else "right")
            for row in body:
                t.add_row(*row)
            out.append(t)
            out += [Text(line) for line in self.summary_lines(proxy)]
        if "aggregate" in self.fidelity:
            out.append(Text(f"aggregate rank (each side's declared rule): {self.fidelity['aggregate']}"))
        out.append(Text(NOTE, style="dim"))
        return out


NOTE = ("Paired by function (fingerprint and shift) and seed; B - A oriented so that positive = B "
        "better; 95% CI t-based over the paired seeds; a verdict needs 2 or more pairs and an "
        "interval that excludes 0.")


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if math.isnan(float(value)) else float(value)
    return str(value)


def _read(side: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(side, pd.DataFrame):
        return side.copy(), "A"
    from funcsearch.search.store import read_results

    return read_results(side), Path(side).name


def _filter(frame: pd.DataFrame, where: Mapping[str, Any], field: str) -> pd.DataFrame:
    for column, value in where.items():
        if column not in frame:
            raise InputError(f"no column {column!r} in the trials (columns include shift, alpha_init, "
                             "proxy, candidate, family)", field=field)
        frame = frame[frame[column].astype(str) == str(value)]
    if frame.empty:
        raise InputError(f"no trials where {', '.join(f'{k}={v}' for k, v in where.items())}", field=field)
    return frame


def _final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """ok/diverged trials at full budget, with each (proxy, candidate)'s best point."""
    from funcsearch.ranking import _best_units

    frame = frame[frame["status"].isin(("ok", "diverged"))]
    if "stop_epoch" in frame:
        frame = frame[frame["stop_epoch"].isna()]
    return _best_units(frame) if len(frame) else frame


def compare_results(a: str | Path | pd.DataFrame, b: str | Path | pd.DataFrame, *,
                    proxy: str | None = None, where_a: Mapping[str, Any] | None = None,
                    where_b: Mapping[str, Any] | None = None, label_a: str | None = None,
                    label_b: str | None = None, reference: str | Path | None = None) -> Comparison:
    """Pair the trials of ``a`` and ``b`` by function and seed (see the module docstring)."""
    where_a, where_b = dict(where_a or {}), dict(where_b or {})
    frame_a, name_a = _read(a)
    frame_b, name_b = _read(b)
    if isinstance(b, pd.DataFrame):
        name_b = "B"
    frame_a = _filter(frame_a, where_a, "--a") if where_a else frame_a
    frame_b = _filter(frame_b, where_b, "--b") if where_b else frame_b
    if proxy is not None:
        frame_a, frame_b = frame_a[frame_a["proxy"] == proxy], frame_b[frame_b["proxy"] == proxy]
    settled = set(where_a) | set(where_b)
    key = ("function",) + (() if "shift" in settled else ("shift",)) + ("seed",)
    label_a = label_a or name_a + "".join(f" {k}={v}" for k, v in where_a.items())
    label_b = label_b or name_b + "".join(f" {k}={v}" for k, v in where_b.items())
    if label_a == label_b:
        label_a, label_b = f"A ({label_a})", f"B ({label_b})"
    cache: dict[str, str] = {}
    sides = []
    for frame in (frame_a, frame_b):
        frame = _final_rows(frame)
        frame = frame.assign(function_key=[function_key(e, c, cache) for e, c in
                                           zip(frame["expression"], frame["candidate"])],
                             shift=frame["shift"].fillna("none").astype(str) if "shift" in frame else "none")
        frame = frame[frame["function_key"].notna()]
        frame = frame.assign(oriented=orient(frame["score"].astype(float), frame["higher_is_better"])
                             * np.where(frame["status"] == "ok", 1.0, np.nan))
        sides.append(frame)
    join = ["proxy", "function_key"] + (["shift"] if "shift" in key else [])
    records, displays, agreement, unpaired = [], {}, {}, {}
    for proxy_name in sorted(set(sides[0]["proxy"]) & set(sides[1]["proxy"])):
        rows_a = sides[0][sides[0]["proxy"] == proxy_name]
        rows_b = sides[1][sides[1]["proxy"] == proxy_name]
        metric, higher = str(rows_a["primary_metric"].iloc[0]), bool(rows_a["higher_is_better"].iloc[0])
        if str(rows_b["primary_metric"].iloc[0]) != metric:
            unpaired[proxy_name] = [f"not compared: A ranks on {metric}, B on {rows_b['primary_metric'].iloc[0]}"]
            continue
        displays[proxy_name] = metric_display(proxy_name, metric, higher, rows_a)
        means_a, means_b = [], []
        functions_a = rows_a.groupby(join[1:], sort=False)
        for group_key, group_a in functions_a:
            group_key = group_key if isinstance(group_key, tuple) else (group_key,)
            mask = np.ones(len(rows_b), dtype=bool)
            for column, value in zip(join[1:], group_key):
                mask &= (rows_b[column] == value).to_numpy()
            group_b = rows_b[mask]
            if group_b.empty:
                continue
            by_seed_a = group_a.groupby("seed")["oriented"].first()
            by_seed_b = group_b.groupby("seed")["oriented"].first()
            seeds = sorted(set(by_seed_a.index) & set(by_seed_b.index))
            diffs = (by_seed_b[seeds] - by_seed_a[seeds]).dropna().to_numpy()
            mean, _, low, high = t_interval(diffs)
            ok_a = group_a[group_a["status"] == "ok"]["score"].astype(float)
            ok_b = group_b[group_b["status"] == "ok"]["score"].astype(float)
            verdict = ("n/a" if len(diffs) < 2 else "B better" if low > 0 else "A better" if high < 0
                       else "within noise")
            div_a, div_b = int((group_a["status"] == "diverged").sum()), int((group_b["status"] == "diverged").sum())
            if div_a or div_b:
                verdict += f" (diverged A {div_a}/{len(group_a)}, B {div_b}/{len(group_b)})"
            records.append({
                "proxy": proxy_name, "function": str(group_a["candidate"].iloc[0]),
                "function_b": str(group_b["candidate"].iloc[0]),
                "shift": str(group_a["shift"].iloc[0]) if "shift" in key else
                f"{group_a['shift'].iloc[0]} / {group_b['shift'].iloc[0]}",
                "pairs": len(diffs), "mean_a": float(ok_a.mean()) if len(ok_a) else math.nan,
                "mean_b": float(ok_b.mean()) if len(ok_b) else math.nan,
                "diff": mean,
                "diff_ci95_low": low, "diff_ci95_high": high, "verdict": verdict,
                "fingerprint": group_key[0]})
            if len(ok_a) and len(ok_b):
                means_a.append(float(ok_a.mean()))
                means_b.append(float(ok_b.mean()))
        rho, low, high, n = spearman_interval(np.array(means_a), np.array(means_b))
        agreement[proxy_name] = (rho, low, high, n)
        notes = _unpaired_notes(rows_a, rows_b, join, records, proxy_name)
        if notes:
            unpaired[proxy_name] = notes
    table = pd.DataFrame.from_records(records, columns=[
        "proxy", "function", "function_b", "shift", "pairs", "mean_a", "mean_b", "diff", "diff_ci95_low",
        "diff_ci95_high", "verdict", "fingerprint"])
    if not len(table) and not unpaired:
        raise InputError("the two sides share no function on any proxy (same fingerprint"
                         + (" and shift" if "shift" in key else "") + ")")
    fidelity = _fidelity_lines(frame_a, frame_b, sorted(displays), reference,
                               rules=(_rule(a), _rule(b))) if reference else {}
    return Comparison(label_a, label_b, table, displays, agreement, unpaired, key, fidelity)


def _rule(side: str | Path | pd.DataFrame) -> Any:
    """The aggregate rule a results folder's search declares (None: the default rule)."""
    from funcsearch.ranking import declared_rule

    return None if isinstance(side, pd.DataFrame) else declared_rule(side)


def _fidelity_lines(frame_a: pd.DataFrame, frame_b: pd.DataFrame, proxies: list[str],
                    reference: str | Path, rules: tuple[Any, Any] = (None, None)) -> dict[str, str]:
    """Per proxy (and, when both sides ran several proxies, for each side's declared aggregate
    rank first), the fidelity difference against ``reference``, or why it was not measured."""
    from funcsearch.fidelity import aggregate_rows, fidelity_difference
    from funcsearch.references import load_reference

    ref = load_reference(reference)  # an unknown or malformed reference is a one-line error
    sides = [frame_a, frame_b]
    if len(proxies) > 1 and all(frame["proxy"].nunique() > 1 for frame in sides):
        # each side's declared aggregate (the rule its search declares), as one more "proxy"
        sides = [pd.concat([frame, aggregate_rows(frame, rule)], ignore_index=True)
                 for frame, rule in zip(sides, rules)]
        proxies = ["aggregate"] + proxies
    lines = {}
    for proxy in proxies:
        try:
            lines[proxy] = fidelity_difference(*sides, ref, proxy=proxy).line()
        except ValueError as exc:
            lines[proxy] = f"Fidelity vs {Path(ref.source).stem}: not measured ({exc})"
    return lines


def _unpaired_notes(rows_a: pd.DataFrame, rows_b: pd.DataFrame, join: list[str],
                    records: list[dict[str, Any]], proxy: str) -> list[str]:
    """Why functions present on both sides were not paired (their shift differs)."""
    if "shift" not in join:
        return []
    paired = {r["fingerprint"] for r in records if r["proxy"] == proxy}
    shifts_a = rows_a.groupby("function_key")["shift"].agg(lambda s: sorted(set(s)))
    shifts_b = rows_b.groupby("function_key")["shift"].agg(lambda s: sorted(set(s)))
    skipped = [fp for fp in shifts_a.index if fp in shifts_b.index and fp not in paired]
    if not skipped:
        return []
    a = sorted({x for fp in skipped for x in shifts_a[fp]})
    b = sorted({x for fp in skipped for x in shifts_b[fp]})
    return [f"{len(skipped)} functions ran on both sides with different learnable shifts (A: shift="
            f"{', '.join(a)}; B: shift={', '.join(b)}) and are not paired: they are different functions "
            "of the input. To compare the shift settings, name it: --a shift=... --b shift=..."]
