"""Reference results from full-scale training, to measure how faithfully a proxy ranks.

A reference set is a CSV file, one row per full-scale run:

| column | meaning |
| --- | --- |
| `expression` | the point-wise function f in the expression language (required; empty for a statistics-based norm, whose `name` is then `layernorm` or `rmsnorm`) |
| `value` | the full-scale metric (e.g. ImageNet top-1 %); empty when the run failed |
| `failed` | `yes`/`no` (or true/false, 1/0): the run diverged or failed |
| `study` | a group name (e.g. `shift`); fidelity can be computed per group |
| `name` | a readable label (optional) |
| `higher_is_better` | optional, `yes` by default; one value for the whole file |
| `shift` | optional: the learnable shift s the runs used (`none`, `scalar` or `vector`); one value for the whole file. When given, fidelity compares only the trials run with the same s |

Other columns are kept and ignored. Rows join with a search's trials by the function's
numeric fingerprint, so spelling does not matter (``erf(x+0)`` matches ``erf(x)``).

Shipped sets (``funcsearch fidelity --reference NAME``), all of them the *released
calibration data*: a recipe tuned on them is measured in sample against them (the paper's
other 8 searched functions are held back on purpose).

- ``paper_search_vit_b`` / ``paper_search_dit_b4`` / ``paper_search_dit_l4``: 8 of the
  paper's 16 searched functions and LayerNorm at full scale with the learnable shift
  (ViT-B top-1 %, DiT-B/4 and DiT-L/4 FID-50K), one file per metric.
- :data:`PAPER_REFERENCE`, the default: the Derf paper's property studies (Tables
1-6, ViT-Base on ImageNet-1K, 123 runs): the original columns plus ``expression``,
converted from the paper's notation by :func:`paper_formula_to_expression` (``u`` is the
input after the learnable scale; arctan is read as ``2/pi*atan``, the rescaled arctan of
the paper's search, since the paper does not say whether these studies rescale it), and
``shift = none``: the paper ran its property studies without the learnable shift, so a
search run with s (``paper_search``) is not compared with them as if it were the same
function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING

from funcsearch.errors import DataError

if TYPE_CHECKING:  # pandas and the expression parser load on first use: resolving a path stays light
    import pandas as pd

PAPER_REFERENCE = "paper_property_tables.csv"
"""File name of the default shipped reference set inside ``funcsearch/data/references/``."""
SEARCH_REFERENCES: dict[str, str] = {
    "paper_search_vit_b.csv": "ViT-B top-1 %", "paper_search_dit_b4.csv": "DiT-B/4 FID",
    "paper_search_dit_l4.csv": "DiT-L/4 FID"}
"""The shipped function-search references (8 released functions + LayerNorm, with s)."""
SHIFTS = ("none", "scalar", "vector")
"""The settings of the learnable shift s a reference may state (as in search configs)."""

_TRUE = {"yes", "true", "1", "y", "failed", "diverged"}
_FALSE = {"no", "false", "0", "n", "", "ok"}


@dataclass(frozen=True)
class ReferenceSet:
    """A validated reference table with one fingerprint per row."""

    table: pd.DataFrame  # columns: name, study, expression, value, failed, fingerprint (+ extras)
    higher_is_better: bool
    source: str
    shift: str | None = None  # the learnable shift the runs used; None = not stated


def reference_path(name_or_path: str | Path | None = None) -> Path:
    """Resolve a reference file: a path on disk, or the name of a shipped set."""
    if name_or_path is None:
        name_or_path = PAPER_REFERENCE
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = resources.files("funcsearch") / "data" / "references" / str(name_or_path)
    if shipped.is_file():
        return Path(str(shipped))
    if not str(name_or_path).endswith(".csv"):
        shipped = resources.files("funcsearch") / "data" / "references" / f"{name_or_path}.csv"
        if shipped.is_file():
            return Path(str(shipped))
    raise DataError(f"reference file not found (and no shipped set of that name: {PAPER_REFERENCE})",
                    file=str(name_or_path))


def load_reference(name_or_path: str | Path | None = None) -> ReferenceSet:
    """Read and validate a reference CSV; errors name the file, line and column."""
    import pandas as pd

    from funcsearch.expressions import fingerprint, parse_expression
    from funcsearch.named import NORM_BASELINES

    path = reference_path(name_or_path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for malformed CSV
        raise DataError(f"cannot read CSV: {exc}", file=str(path)) from None
    if "expression" not in raw.columns:
        raise DataError("missing required column 'expression'", file=str(path))
    value_column = "value" if "value" in raw.columns else None
    if value_column is None:
        numeric = [c for c in raw.columns if c.endswith("top1") or c in ("score", "metric")]
        if not numeric:
            raise DataError("missing the metric column 'value'", file=str(path))
        value_column = numeric[0]
    failed_column = "failed" if "failed" in raw.columns else ("diverged" if "diverged" in raw.columns else None)
    higher = True
    if "higher_is_better" in raw.columns:
        flags = {v.strip().lower() for v in raw["higher_is_better"] if v.strip()}
        if len(flags) > 1:
            raise DataError("column 'higher_is_better' must hold one value for the whole file", file=str(path))
        higher = not flags or flags.pop() in _TRUE
    shift = None
    if "shift" in raw.columns:
        shifts = {v.strip().lower() for v in raw["shift"] if v.strip()}
        if len(shifts) > 1:
            raise DataError(f"column 'shift' must hold one value for the whole file, not {sorted(shifts)}",
                            file=str(path))
        shift = shifts.pop() if shifts else None
        if shift is not None and shift not in SHIFTS:
            raise DataError(f"column 'shift': '{shift}' is not one of {', '.join(SHIFTS)}", file=str(path))

    rows = []
    for index, record in raw.iterrows():
        line = int(index) + 2  # header is line 1
        text = record["expression"].strip()
        norm = record.get("name", "").strip().lower()
        if not text and norm in NORM_BASELINES:  # LayerNorm / RMSNorm: joined by name
            expression = None
        elif not text:
            raise DataError(f"empty expression (allowed only for {' / '.join(NORM_BASELINES)}, "
                            "named in the 'name' column)", file=str(path), line=line, field="expression")
        else:
            expression = parse_expression(text, file=str(path), line=line, field="expression")
        failed_text = record[failed_column].strip().lower() if failed_column else ""
        if failed_text not in _TRUE | _FALSE:
            raise DataError(f"'{record[failed_column]}' is not yes/no", file=str(path), line=line,
                            field=failed_column)
        failed = failed_text in _TRUE
        value_text = record[value_column].strip()
        if value_text:
            try:
                value = float(value_text)
            except ValueError:
                raise DataError(f"'{value_text}' is not a number", file=str(path), line=line,
                                field=value_column) from None
        else:
            value = float("nan")
        if not failed and value != value:
            raise DataError("a run that did not fail needs a value", file=str(path), line=line,
                            field=value_column)
        name = record.get("name", "") or _default_name(record)
        rows.append({
            **{k: v for k, v in record.items()},
            "name": name,
            "study": record.get("study", "") or "all",
            "expression": expression.text if expression is not None else None,
            "value": value,
            "failed": failed,
            "fingerprint": fingerprint(expression) if expression is not None else norm_key(norm),
            "line": line,
        })
    table = pd.DataFrame(rows)
    return ReferenceSet(table=table, higher_is_better=higher, source=str(path), shift=shift)


def norm_key(name: str) -> str:
    """The join key of a statistics-based norm (it has no expression to fingerprint)."""
    return f"norm:{name.strip().lower()}"


def _default_name(record: pd.Series) -> str:
    base = record.get("base", "")
    variant = record.get("variant", "")
    param = record.get("param", "")
    if base:
        return "|".join(part for part in (base, variant, param) if part)
    return record["expression"]


_FLAT_ZONE = re.compile(r"^flat zone of half-width ([0-9.]+) on (.+)$")


def paper_formula_to_expression(formula: str) -> str:
    """Translate the paper table's notation (in ``u``, ``|u|``, prose for flat zones) to the
    expression language in ``x``. arctan becomes ``2/pi*atan`` (see module docstring)."""
    from funcsearch.expressions import parse_expression

    text = formula.replace("(best reading of garbled text)", "").strip()
    flat = _FLAT_ZONE.match(text)
    if flat:
        width, inner = flat.groups()
        inner_expr = paper_formula_to_expression(inner)
        return re.sub(r"\bx\b", f"(x - clip(x, -{width}, {width}))", inner_expr)
    text = re.sub(r"\|([^|]+)\|", r"abs(\1)", text)
    text = re.sub(r"\bu\b", "x", text)
    text = re.sub(r"\batan\(", "2/pi*atan(", text)
    parse_expression(text)  # validate
    return text
