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

__all__ = ["build_catalog", "catalog_counts", "catalog_renderables", "catalog_text", "write_catalog",
           "EVIDENCE_COLUMNS", "CATALOG_FORMATS"]

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


def _rows(table: "pd.DataFrame", show: str) -> "pd.DataFrame":
    if show not in ("all", "kept", "rejected"):
        raise InputError(f"show must be all, kept or rejected, got {show!r}")
    return table if show == "all" else table[table["kept"] == (show == "kept")]


def _cells(row: object) -> tuple[str, str, str, str, str]:
    """(f(0), bounded, flat width, monotonic, status) as plain text for one catalog row."""
    bounded_text = _number(row.sup_abs) if row.bounded else f"grows |x|^{_number(row.growth_exponent)}"
    monotonic_text = _number(row.min_slope) if row.monotonic else f"breaks at {_number(row.monotonic_break_x)}"
    status = "kept" if row.kept else str(row.reason)
    if row.kept and row.compile_note:
        status += f" (warning: {row.compile_note})"
    return _number(row.f0), bounded_text, _number(row.flat_zone_width), monotonic_text, status


NAME_WIDTH = 28
"""Width of the terminal listing's name / formula column (100 columns in all)."""


def _break_name(name: str, width: int = NAME_WIDTH - 2) -> str:
    """A long name broken into lines at its ``|`` transforms, so a terminal never cuts a
    transform in two (a single part wider than the column is still folded)."""
    lines, line = [], ""
    for part in name.split("|"):
        piece = part if not line else "|" + part
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = "|" + part
        else:
            line += piece
    return "\n".join(lines + [line])


def catalog_renderables(table: "pd.DataFrame", show: str = "all") -> list[object]:
    """Rich renderables for ``funcsearch candidates``: the table and the per-family counts.

    ``show`` is "all", "kept" or "rejected". Each property column shows its verdict and key
    number: f(0); sup|f| (or the growth exponent when unbounded); the flat-zone width; the
    min slope (or where monotonicity breaks). Laid out for 100 columns: the name (broken at
    its ``|`` transforms) above its formula (wrapped at the spaces canonical text puts around
    + and - and after commas); a token is cut only when it is wider than the whole column."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    rows = _rows(table, show)
    listing = Table(title=f"{len(rows)} candidates ({show})", show_lines=False, header_style="bold",
                    box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left", collapse_padding=True,
                    expand=True)
    listing.add_column("name / formula", overflow="fold", min_width=20, max_width=NAME_WIDTH, ratio=1)
    for heading, width in (("f(0)", 6), ("sup|f|", 9), ("flat", 7), ("min f'", 16)):
        listing.add_column(heading, overflow="fold", width=width)
    listing.add_column("kept / why rejected", overflow="fold", min_width=20, ratio=1)
    for row in rows.itertuples(index=False):
        f0, bounded_text, flat, monotonic_text, status = _cells(row)
        listing.add_row(
            f"[cyan]{escape(_break_name(str(row.name)))}[/]\n[dim]{escape(str(row.expression))}[/]",
            _mark(row.zero_centred, f0), _mark(row.bounded, bounded_text),
            _mark(row.centre_sensitive, flat), _mark(row.monotonic, monotonic_text),
            "[green]kept[/]" + status[4:] if row.kept else f"[red]{status}[/]")
    counts = catalog_counts(table)
    summary = Table(title="counts per family (raw: before deduplication)", header_style="bold",
                    box=box.SIMPLE_HEAD, title_justify="left")
    for column in counts.columns:
        summary.add_column(column, justify="left" if column == "family" else "right")
    for record in counts.itertuples(index=False):
        summary.add_row(*[str(value) for value in record])
    note = ("zero-centred: f(0); bounded: sup|f| (or the growth exponent); centre-sensitive: "
            "flat-zone width; monotonic: min f' (or where it breaks). ✓ passed, ✗ failed.")
    from rich.text import Text

    return [listing, summary, Text(note, style="dim")]


CATALOG_FORMATS = ("table", "md", "csv", "json")


def catalog_text(table: "pd.DataFrame", show: str = "all", fmt: str = "md") -> str:
    """The catalog listing as Markdown (``md``), or every column as ``csv`` / ``json``."""
    import json

    rows = _rows(table, show)
    if fmt in ("csv", "json"):
        plain = rows.copy()
        plain.attrs = {}
        if fmt == "csv":
            return plain.to_csv(index=False)
        return json.dumps(json.loads(plain.to_json(orient="records")), indent=1) + "\n"
    if fmt != "md":
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(CATALOG_FORMATS)})",
                         field="--format")
    header = ["name", "formula", "zero-centred f(0)", "bounded sup\\|f\\|", "centre flat width",
              "monotonic min f'", "kept / why rejected"]
    lines = [f"# {len(rows)} candidates ({show})", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in rows.itertuples(index=False):
        f0, bounded_text, flat, monotonic_text, status = _cells(row)
        marks = ["pass" if ok else "FAIL" for ok in (row.zero_centred, row.bounded,
                                                       row.centre_sensitive, row.monotonic)]
        cells = [row.name, f"`{row.expression}`", f"{marks[0]} {f0}", f"{marks[1]} {bounded_text}",
                 f"{marks[2]} {flat}", f"{marks[3]} {monotonic_text}", status]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    counts = catalog_counts(table)
    lines += ["", "| " + " | ".join(counts.columns) + " |", "|" + "|".join("---" for _ in counts.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in record) + " |" for record in counts.itertuples(index=False)]
    return "\n".join(lines) + "\n"


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
