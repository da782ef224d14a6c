"""The catalog in candidates/: counts, the paper's 16, property studies, dedup, both commands."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from funcsearch.catalog import build_catalog, catalog_counts
from funcsearch.candidates import (
    deduplicate,
    find_candidate,
    load_candidates,
    load_raw_candidates,
)
from funcsearch.cli import app
from funcsearch.errors import ConfigError
from funcsearch.expressions import fingerprint, parse_expression
from funcsearch.named import BUILTIN_FUNCTIONS, PAPER_SEARCH
from funcsearch.properties import PROPERTIES
from funcsearch.transforms import format_value

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = REPO / "candidates"
STUDIES = CANDIDATES / "property_studies"
FAMILIES = ["natural", "polynomial", "rational", "exponential", "logarithmic", "trigonometric", "cdf"]
PAPER_TABLE = REPO / "funcsearch" / "data" / "references" / "paper_property_tables.csv"


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return build_catalog([CANDIDATES])


@pytest.fixture(scope="module")
def studies() -> pd.DataFrame:
    return build_catalog([STUDIES])


def test_one_file_per_family_exists():
    for family in [*FAMILIES, "baselines", "paper_search"]:
        assert (CANDIDATES / f"{family}.yaml").is_file(), family


@pytest.mark.slow
def test_catalog_has_1000_raw_and_100_kept_unique_candidates(catalog):
    raw = load_raw_candidates([CANDIDATES / f"{f}.yaml" for f in FAMILIES])
    assert len(raw) >= 1000
    assert catalog["fingerprint"].is_unique
    assert int(catalog["kept"].sum()) >= 100
    counts = catalog_counts(catalog).set_index("family")
    assert counts.loc["total", "raw"] == sum(catalog.attrs["raw_per_family"].values())
    for family in FAMILIES:
        assert counts.loc[family, "raw"] > 0 and counts.loc[family, "kept"] > 0


@pytest.mark.slow
def test_every_catalog_expression_parses_back_to_its_fingerprint(catalog):
    for row in catalog.itertuples():
        assert fingerprint(parse_expression(row.expression)) == row.fingerprint, row.name


@pytest.mark.slow
def test_kept_means_all_four_properties_and_rejected_says_why(catalog):
    kept = catalog[catalog["kept"]]
    assert kept[list(PROPERTIES)].all(axis=None)
    rejected = catalog[~catalog["kept"]]
    assert (rejected["reason"].str.len() > 0).all()


def test_paper_search_file_holds_exactly_the_builtin_sixteen():
    raw = load_raw_candidates([CANDIDATES / "paper_search.yaml"])
    assert [c.name for c in raw] == list(PAPER_SEARCH)
    for candidate in raw:
        assert fingerprint(candidate.expr) == fingerprint(BUILTIN_FUNCTIONS[candidate.name]), candidate.name


def test_paper_search_functions_are_all_kept():
    table = build_catalog([CANDIDATES / "paper_search.yaml"])
    assert len(table) == 16 and table["kept"].all(), table.loc[~table["kept"], "reason"].tolist()


def test_dedup_merges_two_spellings_and_keeps_both_names(tmp_path):
    (tmp_path / "a.yaml").write_text(textwrap.dedent("""\
        bases:
          - {name: halftanh, expression: "tanh(x/2)"}
          - {name: sigmoid2, expression: "2*sigmoid(x) - 1"}
          - {name: erfish, expression: "erf(x)"}
        """))
    (tmp_path / "b.yaml").write_text(textwrap.dedent("""\
        bases:
          - {name: erf, expression: "erf(x)"}
          - {name: tanhy, expression: "tanh(x)"}
        pipeline:
          - {transform: scale_x, values: [1, 0.5]}
        """))
    candidates = load_candidates([tmp_path])
    names = {c.name: c.names for c in candidates}
    assert names["halftanh"] == ("halftanh", "sigmoid2", "tanhy|scale_x=0.5")
    # a built-in name wins the primary slot even when loaded later
    assert names["erf"] == ("erf", "erfish")
    assert find_candidate(candidates, "erfish").name == "erf"


def test_catalog_dedups_tanh_half_and_the_centred_sigmoid(catalog):
    row = catalog[catalog["names"].str.split(", ").apply(lambda n: "sigmoid2" in n)]
    assert len(row) == 1
    names = row.iloc[0]["names"].split(", ")
    assert "tanh|scale_x=0.5" in names and "cdf_logistic" in names


def test_one_name_for_two_functions_is_an_error_naming_both_files(tmp_path):
    (tmp_path / "a.yaml").write_text("bases:\n  - {name: smooth, expression: \"tanh(x)\"}\n")
    (tmp_path / "b.yaml").write_text("bases:\n  - {name: smooth, expression: \"erf(x)\"}\n")
    with pytest.raises(ConfigError) as info:
        deduplicate(load_raw_candidates([tmp_path]))
    message = str(info.value)
    assert "'smooth' stands for two different functions" in message
    assert str(tmp_path / "a.yaml") + ":2" in message and message.startswith(str(tmp_path / "b.yaml") + ":2:")


# ------------------------------------------------------------------ property studies

STUDY_GRIDS = {
    "shift": [(base, transform, p) for base in ("erf", "tanh", "arctan")
              for transform in ("translate", "offset")
              for p in (-2, -1, -0.5, -0.1, 0, 0.1, 0.5, 1, 2)],
    "clip": [(base, "clip", p) for base in ("asinh", "logsign", "linear")
             for p in (None, 0.5, 0.8, 1, 2, 3, 5)],
    "mix": [(base, "mix", p) for base in ("erf", "tanh", "arctan", "isru") for p in (0, 0.01, 0.1, 0.5)],
    "growth": [(base, None, None) for base in ("logsign", "asinh", "logquad", "power23", "linear")],
    "flatzone": [(base, "flat_zone", p) for base in ("erf", "tanh", "arctan")
                 for p in (0, 0.1, 0.5, 1, 2, 3)],
    "monotonic": [(base, None, None) for base in ("erf", "tanh", "arctan", "negerf", "negtanh",
                                                  "negarctan", "sin", "dampx", "dampexp")],
}
IDENTITY = {"translate": 0, "offset": 0, "mix": 0, "flat_zone": 0}


def study_name(base: str, transform: str | None, param: float | None) -> str:
    if transform is None or param is None or IDENTITY.get(transform) == param:
        return base
    return f"{base}|{transform}={format_value(param, transform in ('translate', 'offset'))}"


def names_in(table: pd.DataFrame) -> dict[str, pd.Series]:
    return {name: row for _, row in table.iterrows() for name in row["names"].split(", ")}


def test_every_study_design_point_is_a_named_candidate(studies):
    known = names_in(studies)
    for study, grid in STUDY_GRIDS.items():
        for base, transform, param in grid:
            assert study_name(base, transform, param) in known, (study, base, transform, param)


def test_study_verdicts_follow_the_designs(studies):
    known = names_in(studies)
    for base, transform, param in STUDY_GRIDS["shift"]:
        row = known[study_name(base, transform, param)]
        assert row["zero_centred"] == (param == 0), (base, transform, param)
    for base, _, param in STUDY_GRIDS["clip"]:
        assert known[study_name(base, "clip", param)]["bounded"] == (param is not None)
    for base, _, param in STUDY_GRIDS["mix"]:
        assert known[study_name(base, "mix", param)]["bounded"] == (param == 0)
    for base, _, _ in STUDY_GRIDS["growth"]:
        assert not known[base]["bounded"]
    for base, _, param in STUDY_GRIDS["flatzone"]:
        assert known[study_name(base, "flat_zone", param)]["centre_sensitive"] == (param <= 1)
    for base, _, _ in STUDY_GRIDS["monotonic"]:
        assert known[base]["monotonic"] == (base not in ("sin", "dampx", "dampexp"))


def test_paper_reference_table_joins_on_study_names(studies):
    known = names_in(studies)
    variant_to_transform = {"horizontal": "translate", "vertical": "offset", "clip": "clip",
                            "linear_mix": "mix", "flat_zone": "flat_zone"}
    with PAPER_TABLE.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    for row in rows:
        transform = variant_to_transform.get(row["variant"])
        param = float(row["param"]) if row["param"] else None
        assert study_name(row["base"], transform, param) in known, row


# ------------------------------------------------------------------ commands

runner = CliRunner()


def test_candidates_command_prints_table_and_counts_and_writes_files(tmp_path):
    out = tmp_path / "catalog.csv"
    result = runner.invoke(app, ["candidates", str(STUDIES / "monotonic.yaml"),
                                 str(STUDIES / "flatzone.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "dampexp" in result.output and "erf|flat_zone=3" in result.output
    assert "breaks at 1" in result.output and "kept" in result.output
    assert "counts per family" in result.output and "total" in result.output
    table = pd.read_csv(out)
    assert set(table["name"]) >= {"negerf", "sin", "tanh|flat_zone=2"}
    assert not table.set_index("name").loc["sin", "kept"]

    parquet = tmp_path / "catalog.parquet"
    result = runner.invoke(app, ["candidates", str(STUDIES / "monotonic.yaml"), "--kept",
                                 "--out", str(parquet)])
    assert result.exit_code == 0, result.output
    assert "negerf" in result.output and "dampexp" not in result.output
    assert len(pd.read_parquet(parquet)) == 9  # the file holds all, --kept filters the listing

    result = runner.invoke(app, ["candidates", str(STUDIES / "monotonic.yaml"), "--rejected"])
    assert result.exit_code == 0 and "dampexp" in result.output and "negerf" not in result.output


def test_candidates_command_uses_a_user_profile(tmp_path):
    profile = tmp_path / "lenient.yaml"
    profile.write_text("centre_sensitive:\n  max_flat_zone_width: 5\n")
    result = runner.invoke(app, ["candidates", str(STUDIES / "flatzone.yaml"), "--rejected",
                                 "--profile", str(profile)])
    assert result.exit_code == 0, result.output
    assert "0 candidates (rejected)" in result.output


def test_candidates_command_reports_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("bases:\n  - {name: a, expression: \"erf(x)\"}\npipeline:\n  - {transform: spin}\n")
    process = subprocess.run([sys.executable, "-m", "funcsearch.cli", "candidates", str(bad)],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in process.stderr
    assert f"{bad}:4: pipeline[0].transform: unknown transform 'spin'" in " ".join(lines)


def test_plot_shapes_command_draws_names_candidates_and_expressions(tmp_path):
    out = tmp_path / "shapes.png"
    result = runner.invoke(app, ["plot", "shapes", "erf", "erf|flat_zone=3", "erf(x+2)",
                                 "--from", str(STUDIES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_plot_shapes_refuses_unknown_names_and_norms(tmp_path):
    from funcsearch.errors import InputError

    result = runner.invoke(app, ["plot", "shapes", "no_such_function", "--out", str(tmp_path / "a.png")])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert "not an allowed name" in str(result.exception)
    result = runner.invoke(app, ["plot", "shapes", "layernorm", "--out", str(tmp_path / "a.png")])
    assert isinstance(result.exception, InputError) and "no point-wise shape" in str(result.exception)
    result = runner.invoke(app, ["plot", "shapes", "erf", "--out", str(tmp_path / "a.txt")])
    assert isinstance(result.exception, InputError) and ".png" in str(result.exception)


def test_plot_marks_show_the_failing_property():
    from funcsearch.plots.shapes import property_marks
    from funcsearch.properties import check_properties

    marks = dict((text.split()[1], passed) for text, passed in
                 property_marks(check_properties("sin(x)", compile_check=False)))
    assert marks == {"zero-c": True, "bounded": True, "centre": True, "monotonic": False}


@pytest.mark.slow
def test_catalog_and_studies_load_together_without_name_conflicts():
    together = load_candidates([CANDIDATES, STUDIES])
    names = [name for candidate in together for name in candidate.names]
    assert len(names) == len(set(names))
    assert find_candidate(together, "dampx").names == find_candidate(together, "rationalbump").names
