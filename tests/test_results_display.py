"""Results people read: plots that agree with their tables and leave matplotlib's global state
alone, one display unit per metric with no false precision, terminal tables that fit 100
columns, --format on every reporting command, funcsearch compare (paired by function, shift
and seed), the hall of fame and function export, and the report's headline and provenance."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from fixtures.results_fixture import OTHER_FUNCTIONS, write_results
from funcsearch.cli import app
from funcsearch.compare import compare_results
from funcsearch.errors import InputError
from funcsearch.export import export_function, torch_snippet
from funcsearch.halloffame import hall_of_fame, pareto_front
from funcsearch.metrics import Metric
from funcsearch.aggregate import AggregateRule
from funcsearch.ranking import MetricDisplay, board_display, leaderboard
from funcsearch.report import compare_studies, write_report
from funcsearch.search.store import read_results

runner = CliRunner()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results(tmp_path_factory.mktemp("r") / "study")


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results(tmp_path_factory.mktemp("o") / "other", functions=OTHER_FUNCTIONS, seed=1)


def _with_shift(folder: Path, target: Path, shift: str) -> Path:
    from fixtures.results_fixture import write_results as _write  # noqa: F401 - same layout
    import pyarrow.parquet as pq

    from funcsearch.search.store import ResultsStore, frame_table

    frame = read_results(folder)
    frame["shift"] = shift
    target.mkdir(parents=True, exist_ok=True)
    pq.write_table(frame_table(frame), ResultsStore(target).consolidated_path)
    return target


# -- plots ------------------------------------------------------------------------------------

def test_plots_return_figures_and_leave_the_backend_and_pyplot_alone(study: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from funcsearch.plots.curves import plot_curves, plot_fit_vs_test
    from funcsearch.plots.leaderboard import plot_leaderboard
    from funcsearch.plots.shapes import plot_shapes
    from funcsearch.report import fit_table

    backend = matplotlib.get_backend()
    before = plt.get_fignums()
    frame = read_results(study)
    board = leaderboard(frame)
    figures = [plot_leaderboard(board), plot_leaderboard(board, kind="score"),
               plot_shapes([("erf", "erf(x)")]),
               plot_curves(frame[frame["proxy"] == "vit"], ["erf", "layernorm"]),
               plot_fit_vs_test(fit_table(frame, "vit", board), metric="test_acc", higher=True, scale=100, unit="%")]
    assert all(isinstance(f, Figure) for f in figures)
    assert matplotlib.get_backend() == backend and plt.get_fignums() == before


def test_leaderboard_plot_draws_the_verdicts_interval_and_keeps_diverged_runs_off_the_scale(study: Path) -> None:
    from funcsearch.plots.leaderboard import plot_leaderboard

    board = leaderboard(study, proxy="vit")
    table = board.proxies["vit"]
    figure = plot_leaderboard(board)
    ax = figure.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "diverged 3/3" in texts  # erf|translate=+2 diverged on every vit seed: named in the margin
    xs = [x for line in ax.get_lines() for x in line.get_xdata()]
    drawn = table[(table["ok"] > 0) & (table["candidate"] != table["best_baseline"])]
    d = board_display(board, "vit")
    for _, r in drawn.iterrows():  # each bar spans the paired interval of the table, in the metric's unit
        assert any(math.isclose(x, d.scaled(r["diff_ci95_low"]), rel_tol=1e-9) for x in xs)
        assert any(math.isclose(x, d.scaled(r["diff_ci95_high"]), rel_tol=1e-9) for x in xs)
    assert min(xs) > -100 and max(xs) < 100


def test_score_plot_bounds_percentage_intervals() -> None:
    d = MetricDisplay(Metric("acc", True, True, "accuracy", "%", 100.0))
    assert d.interval(0.95, 1.04) == "[95, 100]"
    assert d.interval(-0.01, 0.2) == "[0, 20]"
    loss = MetricDisplay(Metric("test_loss", False, True, "test loss", "nats", minimum=0.0))
    assert loss.interval(-0.115, 0.4035) == "[0, 0.4035]"  # a loss is never negative
    assert loss.interval(-0.2, 0.1, difference=True) == "[-0.20, 0.10]"  # differences are not clipped
    assert MetricDisplay(Metric("r", True, False, "r")).interval(-2.0, 3.0) == "[-2, 3]"


# -- units and precision -------------------------------------------------------------------------

def test_accuracy_is_shown_in_percent_with_the_evaluation_sets_resolution() -> None:
    d = MetricDisplay(Metric("test_acc", True, True, "test accuracy", "%", 100.0), 360, "test images")
    assert d.value(0.9722222) == "97.2" and d.spread(-0.0009259, signed=True) == "-0.09"
    assert d.resolution_note == "360 test images: one is 0.28 points"
    free = MetricDisplay(Metric("fid", False, False, "FID"))
    assert free.value(18.2134) == "18.21" and free.spread(0.8312) == "0.83"


def test_markdown_and_csv_leaderboards_use_the_display_unit(study: Path) -> None:
    board = leaderboard(study)  # vit ranks on test loss (nats, display scale 1)
    md = board.render("md")
    assert "## vit (test_loss, lower is better)" in md and "mean (nats)" in md
    vit = board.proxies["vit"]
    assert f"{vit.iloc[0]['mean']:.4g}" in md
    frame = pd.read_csv(__import__("io").StringIO(board.render("csv")))
    row = frame[(frame["proxy"] == "vit")].iloc[0]
    assert row["unit"] == "nats" and row["mean"] == pytest.approx(vit.iloc[0]["mean"])
    data = json.loads(board.render("json"))
    assert data["proxies"]["vit"]["unit"] == "nats" and data["proxies"]["dit"]["higher_is_better"] is False
    # accuracy, where a table shows it (the rule may name it), is in % with its resolution
    acc = leaderboard(study, rule=AggregateRule({"vit": "test_acc"}))
    assert "vit: test_acc" in acc.render("md")


# -- terminal and formats -------------------------------------------------------------------------

def _table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_terminal_tables_fit_100_columns_and_keep_names_whole(study: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    result = runner.invoke(app, ["leaderboard", str(study)])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in _table_lines(result.output)) <= 100
    for name in ("erf|translate=-1", "erf|translate=+2", "layernorm"):
        assert name in result.output
    monkeypatch.setenv("COLUMNS", "80")
    narrow = runner.invoke(app, ["leaderboard", str(study)]).output
    assert "erf|translate=-1" in narrow.replace("\n", "") or "erf|translate=-" in narrow


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_leaderboard_and_studies_formats(study: Path, fmt: str) -> None:
    result = runner.invoke(app, ["leaderboard", str(study), "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        assert "vit" in json.loads(result.output)["proxies"]
    studies = runner.invoke(app, ["studies", str(study.parent), "--format", fmt])
    assert studies.exit_code == 0, studies.output
    if fmt == "csv":
        assert studies.output.splitlines()[0].startswith("study,proxy")
    if fmt == "json":
        assert {r["study"] for r in json.loads(studies.output)} == {"study"}


def test_studies_table_has_no_markdown_escapes(study: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    result = runner.invoke(app, ["studies", str(study.parent)])
    assert result.exit_code == 0, result.output
    assert "\\|" not in result.output and "<br>" not in result.output
    assert max(len(line) for line in _table_lines(result.output)) <= 100


def test_terminal_aggregate_keeps_every_proxy_column(study: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    lines = _table_lines(runner.invoke(app, ["leaderboard", str(study)]).output)
    header = next(line for line in lines if "mean rank" in line)
    assert header.split()[-2:] == ["dit", "vit"]  # whole, not cropped at the right edge
    board = leaderboard(study)
    for name in board.aggregate["candidate"]:
        row = next(line for line in lines if line.split()[1:2] == [name])
        assert row.split()[-1].replace(".", "").isdigit(), row


def test_terminal_candidates_fit_100_columns_without_cutting_names_or_verdicts(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    families = Path(__file__).resolve().parents[1] / "candidates"
    output = runner.invoke(app, ["candidates", str(families / "cdf.yaml"),
                                 str(families / "property_studies" / "monotonic.yaml")]).output
    lines = _table_lines(output)
    assert max(len(line) for line in lines) <= 100
    assert "✗ breaks at 1.57" in output and "kept / why rejected" in output
    names = [line.split()[0] for line in lines if line.startswith(" cdf_normal")]
    assert names and all(not name.endswith(("=", "=0.", "|")) for name in names)  # broken at | only
    assert any(line.split()[0] == "|mix=0.1" for line in lines)


def test_candidates_formats(tmp_path: Path) -> None:
    family = Path(__file__).resolve().parents[1] / "candidates" / "property_studies" / "shift.yaml"
    md = runner.invoke(app, ["candidates", str(family), "--format", "md"])
    assert md.exit_code == 0 and "| erf\\|translate=-2 | `erf(-2 + x)` |" in md.output
    data = json.loads(runner.invoke(app, ["candidates", str(family), "--format", "json", "--kept"]).output)
    assert {r["name"] for r in data} >= {"erf", "tanh"}


def test_version_and_bad_format(study: Path) -> None:
    from funcsearch import __version__

    assert runner.invoke(app, ["--version"]).output.strip() == f"funcsearch {__version__}"
    result = runner.invoke(app, ["studies", str(study.parent), "--format", "xml"])
    assert isinstance(result.exception, InputError) and "table, md, csv, json" in str(result.exception)


# -- compare ----------------------------------------------------------------------------------

def test_compare_pairs_by_fingerprint_and_seed(study: Path, other: Path) -> None:
    comparison = compare_results(study, other)
    vit = comparison.table[comparison.table["proxy"] == "vit"]
    assert "erf" in set(vit["function"]) and "isru" not in set(vit["function"])
    erf = vit[vit["function"] == "erf"].iloc[0]
    assert erf["function_b"] == "erf|translate=+0" and erf["pairs"] == 3
    assert "paired on function, shift, seed" in comparison.render("md")


def test_compare_never_pairs_different_shifts_unless_asked(study: Path, tmp_path: Path) -> None:
    scalar = _with_shift(study, tmp_path / "scalar", "scalar")
    none = _with_shift(study, tmp_path / "none", "none")
    comparison = compare_results(scalar, none)
    assert comparison.table.empty
    assert "different learnable shifts" in " ".join(comparison.unpaired["vit"])
    shared = compare_studies(scalar, none)
    assert shared.empty and shared.attrs["unpaired"] > 0
    asked = compare_results(scalar, none, where_a={"shift": "scalar"}, where_b={"shift": "none"})
    assert len(asked.table) and set(asked.table["verdict"].str[:12]) <= {"within noise", "n/a (diverge"}
    result = runner.invoke(app, ["compare", str(scalar), str(none), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output)["paired_on"] == ["function", "shift", "seed"]


# -- hall of fame and export ------------------------------------------------------------------------

def test_pareto_front() -> None:
    frame = pd.DataFrame({"score": [1.0, 2.0, 2.0, 0.5], "complexity": [1, 3, 4, 1]})
    assert list(pareto_front(frame, {"score": True, "complexity": False})) == [True, True, False, False]


def test_hall_of_fame_and_export(study: Path) -> None:
    fame = hall_of_fame(study, latency=False)
    assert set(fame.tables) == {"vit", "dit", "aggregate"}
    front = fame.front("vit")
    assert "erf" in set(front["candidate"]) and (front["complexity"] >= 1).all()
    assert "Hall of fame" in fame.render("md")
    assert export_function("erf|translate=-1", "latex", results=study).startswith("f(x) = \\operatorname{erf}")
    assert export_function("isru", "sympy").strip() == "x/sqrt(x**2 + 1)"
    with pytest.raises(InputError, match="statistics-based"):
        export_function("layernorm", "torch", results=study)


@pytest.mark.parametrize("expression", ["erf(x)", "x/(1 + abs(x))", "clip(x, -1, 1)", "cbrt(x)",
                                        "where(x > 0, x, exp(x) - 1)", "sigmoid(x) - 1/2"])
def test_torch_snippet_is_a_working_module(expression: str) -> None:
    from funcsearch.layers import PointwiseNorm

    snippet = torch_snippet("my fn", expression)
    namespace: dict[str, object] = {}
    exec(snippet, namespace)
    module = namespace["MyFnNorm"](8)
    x = torch.randn(4, 8, dtype=torch.float64)
    reference = PointwiseNorm(expression, 8).double()
    assert torch.allclose(module.double()(x), reference(x), atol=1e-6)


@pytest.mark.parametrize("name", ["exproot", "power23clip", "cbrt(x)"])
def test_exported_roots_differentiate_as_the_engine_trains_them(name: str) -> None:
    """An input of exactly 0 gets the gradient 0, not NaN, in the exported module too (the
    slope is infinite there; funcsearch trains roots that way, expressions.root_pow)."""
    from funcsearch.named import resolve_function

    expression = resolve_function(name)[1]
    snippet = torch_snippet(name, expression)
    assert "_root(" in snippet and "class _Root(torch.autograd.Function)" in snippet
    namespace: dict[str, object] = {}
    exec(snippet, namespace)
    module = next(v for k, v in namespace.items() if k.endswith("Norm"))(3, shift=False)
    x = torch.tensor([[0.0, 0.5, -2.0]], requires_grad=True)
    module(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[0, 0] == 0
    assert torch.isfinite(module.alpha.grad)


def test_export_command(study: Path) -> None:
    result = runner.invoke(app, ["export", "erf", "--format", "torch", "--results", str(study)])
    assert result.exit_code == 0 and "class ErfNorm(nn.Module)" in result.output


# -- report ----------------------------------------------------------------------------------------

def test_report_opens_with_a_headline_and_ends_with_provenance(study: Path, tmp_path: Path) -> None:
    page = write_report(study, tmp_path / "report", top=2).read_text()
    headline = page.index('id="headline"')
    assert headline < page.index('id="summary"') < page.index('id="provenance"')
    text = re.sub(r"<[^>]+>", "", page)
    assert "ranks first" in text and "Fidelity caveat" in text and "beat the best baseline" in text
    assert "learnable shift s" in text and "code versions" in text and "device / precision" in text
    assert '<meta name="viewport"' in page
