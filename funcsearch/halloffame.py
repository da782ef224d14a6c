"""The hall of fame: per proxy and for the aggregate rank, the Pareto front of score against
expression complexity and measured layer latency.

    fame = hall_of_fame("results/paper_search")
    print(fame.render("md"))
    export_function("isru", "torch")            # any row, ready to paste (funcsearch.export)

*Complexity* is the operation count of the function's sympy tree (``sympy.count_ops``: erf(x)
is 1). *Latency* is the forward + backward time of a ``PointwiseNorm`` of the function on a
(32, 65, 128) float32 activation, as a ratio to ``nn.LayerNorm`` timed alternately in the same
run (ratios, not seconds: they carry across machines better; the median of ``repeats``). A
function is on the front when no other function is at least as good on all three and strictly
better on one. The score is the seed mean of the primary metric (a function with a diverged
seed is not on the front); the aggregate's score is the mean rank across proxies. Baselines
(LayerNorm, RMSNorm) have no formula: they are listed for their latency, not on the front.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from funcsearch.errors import InputError
from funcsearch.ranking import MetricDisplay, board_display, fmt, leaderboard

FORMATS = ("table", "md", "csv", "json")
__all__ = ["HallOfFame", "hall_of_fame", "layer_latency", "pareto_front", "FORMATS"]

SHAPE = (32, 65, 128)


def pareto_front(frame: pd.DataFrame, better: dict[str, bool]) -> np.ndarray:
    """Mask of the rows no other row dominates; ``better[column]`` is True when higher is
    better on that column. Rows with a NaN objective are never on the front."""
    values = np.column_stack([frame[c].to_numpy(float) * (1.0 if up else -1.0) for c, up in better.items()]) \
        if len(frame) else np.empty((0, len(better)))
    valid = ~np.isnan(values).any(axis=1)
    front = np.zeros(len(frame), dtype=bool)
    for i in np.flatnonzero(valid):
        others = values[valid]
        dominated = np.any(np.all(others >= values[i], axis=1) & np.any(others > values[i], axis=1))
        front[i] = not dominated
    return front


def layer_latency(expressions: dict[str, str | None], *, repeats: int = 7, shape: tuple[int, ...] = SHAPE,
                  ) -> dict[str, float]:
    """Forward + backward time of each function's layer over LayerNorm's, measured alternately
    (``None`` as the expression = the name is ``layernorm`` or ``rmsnorm``)."""
    import torch
    from torch import nn

    from funcsearch.layers import make_norm

    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    reference = nn.LayerNorm(shape[-1])

    def timed(module: nn.Module, inner: int = 5) -> float:
        start = time.perf_counter()
        for _ in range(inner):
            module(x).sum().backward()
        return time.perf_counter() - start

    out: dict[str, float] = {}
    for name, expression in expressions.items():
        try:
            layer = make_norm(expression if expression else name, shape[-1])
        except Exception:  # noqa: BLE001 - a function that cannot be built has no latency
            out[name] = math.nan
            continue
        timed(layer), timed(reference)  # warm-up
        ratios = [timed(layer) / timed(reference) for _ in range(repeats)]
        out[name] = float(np.median(ratios))
    return out


@dataclass
class HallOfFame:
    """Per proxy (and ``"aggregate"``) one table: function, expression, score, complexity,
    latency ratio, on_front; front rows first."""

    title: str
    tables: dict[str, pd.DataFrame]
    displays: dict[str, MetricDisplay] = field(default_factory=dict)
    higher: dict[str, bool] = field(default_factory=dict)

    def front(self, proxy: str) -> pd.DataFrame:
        table = self.tables[proxy]
        return table[table["on_front"]]

    def _cells(self, proxy: str, r: pd.Series) -> list[str]:
        d = self.displays.get(proxy)
        score = d.value(r["score"]) if d is not None else fmt(r["score"], 3)
        expression = r["expression"] if isinstance(r["expression"], str) else "(statistics-based)"
        return [str(r["candidate"]), expression, score,
                fmt(r["complexity"]), "" if math.isnan(r["latency"]) else f"{r['latency']:.2f}x",
                "yes" if r["on_front"] else ""]

    def _header(self, proxy: str) -> list[str]:
        d = self.displays.get(proxy)
        score = d.suffix(d.metric.name) if d is not None else "mean rank"
        return ["function", "f(x)", score, "complexity (ops)", "latency vs LayerNorm", "on front"]

    def _heading(self, proxy: str) -> str:
        if proxy == "aggregate":
            return "aggregate (mean rank across proxies, lower is better)"
        d = self.displays[proxy]
        return f"{proxy} ({d.metric.name}, {'higher' if self.higher[proxy] else 'lower'} is better)"

    def render(self, fmt_: str = "md", *, front_only: bool = False) -> str:
        if fmt_ in ("csv", "json"):
            frame = pd.concat([t.assign(proxy=p) for p, t in self.tables.items()], ignore_index=True)
            if front_only:
                frame = frame[frame["on_front"]]
            if fmt_ == "csv":
                buffer = io.StringIO()
                frame.to_csv(buffer, index=False)
                return buffer.getvalue()
            return json.dumps(json.loads(frame.to_json(orient="records")), indent=1) + "\n"
        if fmt_ != "md":
            raise InputError(f"unknown format {fmt_!r} (choose from {', '.join(FORMATS)})", field="--format")
        parts = [f"# Hall of fame: {self.title}", ""]
        for proxy, table in self.tables.items():
            header = self._header(proxy)
            parts += [f"## {self._heading(proxy)}", "", "| " + " | ".join(header) + " |",
                      "|" + "|".join("---" for _ in header) + "|"]
            for _, r in (table[table["on_front"]] if front_only else table).iterrows():
                parts.append("| " + " | ".join(c.replace("|", "\\|") for c in self._cells(proxy, r)) + " |")
            parts.append("")
        parts += [NOTE, ""]
        return "\n".join(parts)

    def rich_renderables(self, front_only: bool = True) -> list[object]:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        out: list[object] = []
        for proxy, table in self.tables.items():
            t = Table(title=self._heading(proxy), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
            for h in self._header(proxy):
                t.add_column(h, overflow="fold", min_width=14 if h in ("function", "f(x)") else None,
                             justify="left" if h in ("function", "f(x)", "on front") else "right")
            for _, r in (table[table["on_front"]] if front_only else table).iterrows():
                t.add_row(*self._cells(proxy, r), style="cyan" if r["kind"] == "baseline" else None)
            out.append(t)
        out.append(Text(NOTE + (" Only the front is shown (--all for every function)." if front_only else ""),
                        style="dim"))
        return out


NOTE = ("Front = no other function is at least as good on score, complexity and latency and better on "
        "one. Complexity: sympy count_ops. Latency: forward + backward of the layer over nn.LayerNorm's, "
        "measured alternately in one run (median). Export any row: funcsearch export NAME --format "
        "latex|sympy|torch --results FOLDER.")


def hall_of_fame(results: str | Path | pd.DataFrame, *, latency: bool = True, repeats: int = 7) -> HallOfFame:
    """Build the hall of fame of a results folder (see the module docstring)."""
    from funcsearch.export import complexity

    board = leaderboard(results)
    title = Path(results).name if not isinstance(results, pd.DataFrame) else board.title
    functions: dict[str, str | None] = {}
    kinds: dict[str, str] = {}
    for table in board.proxies.values():
        for _, r in table.iterrows():
            expression = r["expression"] if isinstance(r["expression"], str) and r["expression"] else None
            functions.setdefault(str(r["candidate"]), expression)
            kinds.setdefault(str(r["candidate"]), str(r["kind"]))
    ops = {}
    for name, expression in functions.items():
        try:
            ops[name] = float(complexity(expression)) if expression else math.nan
        except Exception:  # noqa: BLE001
            ops[name] = math.nan
    latencies = layer_latency(functions, repeats=repeats) if latency else {n: math.nan for n in functions}
    tables: dict[str, pd.DataFrame] = {}
    displays, higher = {}, {}
    objectives = {"score": True, "complexity": False} | ({"latency": False} if latency else {})
    for proxy, table in board.proxies.items():
        _, up = board.primary[proxy]
        clean = table[(table["ok"] > 0) & (table["diverged"] == 0)]
        frame = pd.DataFrame({"candidate": clean["candidate"].astype(str), "kind": clean["kind"],
                              "expression": clean["candidate"].map(functions),
                              "score": clean["mean"].astype(float)})
        tables[proxy] = _finish(frame, ops, latencies, {**objectives, "score": up})
        displays[proxy] = board_display(board, proxy)
        higher[proxy] = up
    if len(board.proxies) > 1:
        agg = board.aggregate.dropna(subset=["mean_rank"])
        frame = pd.DataFrame({"candidate": agg["candidate"].astype(str), "kind": agg["kind"],
                              "expression": agg["candidate"].map(functions), "score": agg["mean_rank"].astype(float)})
        tables["aggregate"] = _finish(frame, ops, latencies, {**objectives, "score": False})
    return HallOfFame(title, tables, displays, higher)


def _finish(frame: pd.DataFrame, ops: dict[str, float], latencies: dict[str, float],
            objectives: dict[str, bool]) -> pd.DataFrame:
    frame = frame.assign(complexity=frame["candidate"].map(ops).astype(float),
                         latency=frame["candidate"].map(latencies).astype(float)).reset_index(drop=True)
    frame["on_front"] = pareto_front(frame, objectives)
    frame["_base"] = frame["kind"] == "baseline"
    frame = frame.sort_values(["on_front", "_base", "score"], ascending=[False, True, not objectives["score"]],
                              kind="stable")
    return frame.drop(columns="_base").reset_index(drop=True)
