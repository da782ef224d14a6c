"""The checked catalog: every candidate of some family files with its property verdicts.

    table = build_catalog(["candidates/"])   # expanded, deduplicated, compiled, checked
    funcsearch candidates candidates/        # the same, printed

Downstream of both :mod:`funcsearch.candidates` (loading, deduplication) and
:mod:`funcsearch.properties` (the checks): neither of those imports the other.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from funcsearch.candidates import _deduplicate, load_raw_candidates
from funcsearch.errors import InputError
from funcsearch.expressions import Expression
from funcsearch.properties import PROPERTIES, Profile, check_properties, load_profile

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build_catalog", "catalog_counts", "catalog_renderables", "write_catalog", "EVIDENCE_COLUMNS"]

EVIDENCE_COLUMNS = ("f0", "odd_asymmetry", "scale", "sup_abs", "growth_exponent",
                    "flat_zone_width", "slope_at_0", "min_slope", "monotonic_break_x",
                    "direction")


def build_catalog(paths: Sequence[str | Path], profile: "Profile | str | Path | None" = None
                  ) -> "pd.DataFrame":
    """Expand, deduplicate, compile-check and property-check every candidate.

    One row per unique candidate: name, names (comma-separated), family, expression,
    fingerprint, description, one boolean column per property, the evidence numbers,
    compile_ok / compile_note, kept and reason (why rejected). ``df.attrs["raw_per_family"]``
    counts the raw (pre-dedup) candidates of each family.
    """
    import pandas as pd


    if profile is None or isinstance(profile, (str, Path)):
        profile = load_profile(profile)
    raw = load_raw_candidates(paths)
    rows = []
    for candidate, expr in _deduplicate(raw):
        # the tree we already have: no re-parse of the canonical text
        report = check_properties(Expression(candidate.expression, expr), profile,
                                  name=candidate.name)
        evidence = report.evidence
        check = report.compile_check
        row = {
            "name": candidate.name,
            "names": ", ".join(candidate.names),
            "family": candidate.family,
            "expression": candidate.expression,
            "fingerprint": candidate.fingerprint,
            "description": candidate.description,
        }
        row.update(report.passed)
        row.update({column: float(evidence.get(column, math.nan)) for column in EVIDENCE_COLUMNS})
        row["compile_ok"] = bool(check.ok) if check is not None else False
        row["compile_note"] = (check.reason or "") if check is not None else (report.problem or "")
        row["kept"] = report.kept
        row["reason"] = report.reason
        rows.append(row)
    columns = (["name", "names", "family", "expression", "fingerprint", "description",
                *PROPERTIES, *EVIDENCE_COLUMNS, "compile_ok", "compile_note", "kept", "reason"])
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["raw_per_family"] = dict(Counter(item.family for item in raw))
    return table


def catalog_counts(table: "pd.DataFrame") -> "pd.DataFrame":
    """Per family: raw (before dedup), unique (primary family) and kept counts, plus a total."""
    import pandas as pd

    raw = table.attrs.get("raw_per_family", {})
    families = list(dict.fromkeys([*raw, *table["family"]]))
    rows = []
    for family in families:
        mine = table[table["family"] == family]
        rows.append({"family": family, "raw": int(raw.get(family, 0)), "unique": len(mine),
                     "kept": int(mine["kept"].sum())})
    counts = pd.DataFrame(rows, columns=["family", "raw", "unique", "kept"])
    total = {"family": "total", "raw": int(counts["raw"].sum()), "unique": len(table),
             "kept": int(table["kept"].sum())}
    return pd.concat([counts, pd.DataFrame([total])], ignore_index=True)


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3g}"


def _mark(passed: bool, text: str) -> str:
    return f"[green]✓[/] {text}" if passed else f"[red]✗[/] {text}"


def catalog_renderables(table: "pd.DataFrame", show: str = "all") -> list[object]:
    """Rich renderables for ``funcsearch candidates``: the table and the per-family counts.

    ``show`` is "all", "kept" or "rejected". Each property column shows its verdict and key
    number: f(0); sup|f| (or the growth exponent when unbounded); the flat-zone width; the
    min slope (or where monotonicity breaks)."""
    from rich.table import Table

    if show not in ("all", "kept", "rejected"):
        raise InputError(f"show must be all, kept or rejected, got {show!r}")
    rows = table if show == "all" else table[table["kept"] == (show == "kept")]
    listing = Table(title=f"{len(rows)} candidates ({show})", show_lines=False, header_style="bold")
    for column, style in (("name", "cyan"), ("formula", None), ("zero-centred f(0)", None),
                          ("bounded sup|f|", None), ("centre flat width", None),
                          ("monotonic min f'", None), ("kept / why rejected", None)):
        listing.add_column(column, style=style, overflow="fold")
    for row in rows.itertuples(index=False):
        bounded_text = (_number(row.sup_abs) if row.bounded
                        else f"grows |x|^{_number(row.growth_exponent)}")
        monotonic_text = (_number(row.min_slope) if row.monotonic
                          else f"breaks at {_number(row.monotonic_break_x)}")
        status = "[green]kept[/]" if row.kept else f"[red]{row.reason}[/]"
        if row.kept and row.compile_note:
            status += f" [yellow](warning: {row.compile_note})[/]"
        listing.add_row(
            row.name, row.expression,
            _mark(row.zero_centred, _number(row.f0)), _mark(row.bounded, bounded_text),
            _mark(row.centre_sensitive, _number(row.flat_zone_width)),
            _mark(row.monotonic, monotonic_text), status)
    counts = catalog_counts(table)
    summary = Table(title="counts per family (raw: before deduplication)", header_style="bold")
    for column in counts.columns:
        summary.add_column(column, justify="left" if column == "family" else "right")
    for record in counts.itertuples(index=False):
        summary.add_row(*[str(value) for value in record])
    return [listing, summary]


def write_catalog(table: "pd.DataFrame", out: str | Path) -> Path:
    """Write the catalog as Parquet (.parquet) or CSV (.csv), chosen by the extension."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError("the output must end in .parquet or .csv", file=str(out), field="--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = table.copy()
    plain.attrs = {}
    if suffix == ".parquet":
        plain.to_parquet(out, index=False)
    else:
        plain.to_csv(out, index=False)
    return out
