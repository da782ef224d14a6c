"""Candidates: load family files, deduplicate by fingerprint, and build the checked catalog.

    candidates = load_candidates(["candidates/"])        # expanded + deduplicated
    table = build_catalog(["candidates/"])                # + property verdicts and evidence

A folder means the ``*.yaml`` / ``*.yml`` files directly inside it, in name order (so
``candidates/`` is the catalog and ``candidates/property_studies/`` is asked for
separately). Two spellings of one function (same numeric fingerprint, see
:func:`funcsearch.expressions.fingerprint`) become one candidate that keeps every name.
Its primary name is a built-in name if it has one (``erf`` rather than ``derf``), else the
name with the fewest transformation steps, else the first loaded.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from funcsearch.errors import ConfigError, InputError
import sympy as sp

from funcsearch.expressions import Expression, fingerprint, to_text
from funcsearch.families import RawCandidate, expand_family, load_family

if TYPE_CHECKING:
    import pandas as pd

    from funcsearch.properties import Profile

__all__ = ["Candidate", "family_files", "load_raw_candidates", "load_candidates", "deduplicate",
           "build_catalog", "find_candidate", "catalog_counts", "catalog_renderables",
           "write_catalog"]


@dataclass(frozen=True)
class Candidate:
    """One unique function of the catalog, with every name that produced it."""

    name: str  # primary stable name, e.g. "erf|translate=+2"
    expression: str  # canonical expression text in x, parseable by parse_expression
    names: tuple[str, ...]  # every name that produced the same function (dedup keeps all)
    family: str  # family (file stem) of the primary name
    fingerprint: str  # numeric fingerprint (dedup key)
    description: str = ""


def family_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (their ``*.yaml``/``*.yml``, not recursive) into files."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise InputError("no family files (*.yaml) in this folder", file=str(path))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("no such file or folder", file=str(path))
    unique: list[Path] = []
    seen: set[Path] = set()
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


def load_raw_candidates(paths: Sequence[str | Path]) -> list[RawCandidate]:
    """Every expanded candidate of every family file, before deduplication."""
    raw: list[RawCandidate] = []
    for file in family_files(paths):
        raw.extend(expand_family(load_family(file)))
    return raw


def _primary_key(index: int, item: RawCandidate) -> tuple[int, int, int]:
    from funcsearch.named import BUILTIN_FUNCTIONS

    return (0 if item.name in BUILTIN_FUNCTIONS else 1, item.steps, index)


def deduplicate(raw: Sequence[RawCandidate]) -> list[Candidate]:
    """Merge raw candidates with equal fingerprints; keep all names, pick the primary.

    One name that stands for two different functions (e.g. two files both defining a base
    ``smooth`` differently) is an error naming both places."""
    return [candidate for candidate, _ in _deduplicate(raw)]


def _deduplicate(raw: Sequence[RawCandidate]) -> list[tuple[Candidate, "sp.Expr"]]:
    by_name: dict[str, tuple[str, RawCandidate]] = {}
    groups: dict[str, list[tuple[int, RawCandidate]]] = {}
    known: dict["sp.Expr", str] = {}  # the same tree from several files is hashed once
    for index, item in enumerate(raw):
        key = known.get(item.expr)
        if key is None:
            key = known[item.expr] = fingerprint(item.expr)
        previous = by_name.get(item.name)
        if previous is not None and previous[0] != key:
            other = previous[1]
            raise ConfigError(
                f"name {item.name!r} stands for two different functions: "
                f"{to_text(other.expr)} ({other.file}:{other.line}) and {to_text(item.expr)}",
                file=item.file, line=item.line)
        by_name[item.name] = (key, item)
        groups.setdefault(key, []).append((index, item))
    out: list[tuple[Candidate, sp.Expr]] = []
    for key, members in groups.items():
        ordered = sorted(members, key=lambda pair: _primary_key(*pair))
        primary = ordered[0][1]
        names = tuple(dict.fromkeys(item.name for _, item in ordered))
        candidate = Candidate(name=primary.name, expression=to_text(primary.expr), names=names,
                              family=primary.family, fingerprint=key,
                              description=primary.description)
        out.append((candidate, primary.expr))
    return out


def load_candidates(paths: Sequence[str | Path]) -> list[Candidate]:
    """Files or folders of family YAML, expanded and deduplicated (first-seen order)."""
    return deduplicate(load_raw_candidates(paths))


def find_candidate(candidates: Iterable[Candidate], name: str) -> Candidate | None:
    """The candidate that has ``name`` among its names, or None."""
    for candidate in candidates:
        if name == candidate.name or name in candidate.names:
            return candidate
    return None


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

    from funcsearch.properties import PROPERTIES, check_properties, load_profile

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
