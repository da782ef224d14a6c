"""The HTML report, its numbers (fit table, study comparison) and `leaderboard --reference`."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.results_fixture import OTHER_FUNCTIONS, results_frame, write_results
from funcsearch.cli import app
from funcsearch.errors import DataError, InputError
from funcsearch.ranking import board_display, leaderboard
from funcsearch.report import compare_studies, fit_table, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = ("summary", "leaderboard", "agreement", "shapes", "curves", "properties", "fit", "regime")


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_report_writes_one_self_contained_page_with_every_section(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "study")
    index = write_report(folder, tmp_path / "out", reference="paper_property_tables.csv", top=2,
                         bootstrap=100)
    assert index == tmp_path / "out" / "index.html"
    page = index.read_text()
    for section in (*SECTIONS, "fidelity"):
        assert f'id="{section}"' in page, section
    # every image is a PNG beside the page, linked relatively; nothing is fetched from elsewhere
    images = _images(page)
    assert images and all("/" not in name for name in images)
    for name in images:
        assert (index.parent / name).read_bytes()[:8] == PNG_MAGIC, name
    assert not re.search(r'(src|href)="(https?:|//|/)', page) and "<script" not in page
    # the diverged function gets its own curves on both proxies (it diverged on each)
    assert {"curves_diverged_vit.png", "curves_diverged_dit.png"} <= set(images)
    assert "every function with a diverged seed (1)" in page
    # rankings come with their noise: the leaderboard's own 95% interval of LayerNorm on vit
    board = leaderboard(folder)
    vit = board.proxies["vit"].set_index("candidate")
    low, high = vit.loc["layernorm", ["ci95_low", "ci95_high"]]
    assert board_display(board, "vit").interval(low, high) in page  # in the metric's display unit
    # property evidence: erf(x + 2) fails zero-centring, with its number
    row = page[page.index("erf|translate=+2<br>"):]
    assert re.match(r'.*?<span class="fail">FAIL</span> \|f\(0\)\|=0\.995', row, re.S)
    # fitting vs generalisation is shown for vit (it records train_eval_loss), not for dit
    assert "fit_vs_test_vit.png" in images and "fit_vs_test_dit.png" not in images
    assert "dit: no evaluation-mode training loss recorded." in page
    # the fidelity section against the shipped paper tables, one per proxy
    assert page.count("Fidelity of proxy ") == 2
    assert "Spearman (95% bootstrap over functions and seeds)" in page and "study failure patterns reproduced" in page


def test_the_regime_section_shows_each_site_kind_and_leaves_out_what_was_not_recorded(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from funcsearch.report import regime_table
    from funcsearch.search.store import ResultsStore, frame_table

    frame = results_frame(search="study")
    # vit records a regime at its attention and final norms (the MLP site kept at LayerNorm),
    # each seed the same except the final norm's share beyond 2: 0.9 on seed 0, 0.7 on the others
    def regime(seed: int) -> dict[str, object]:
        sites = {"attn": {"gt1": 0.4, "gt2": 0.1, "p99": 3.0},
                 "final": {"gt1": 0.95, "gt2": 0.9 if seed == 0 else 0.7, "p99": 20.0}}
        return {"regime": {"end": {"all": sites["attn"], **sites}}}
    vit_ok = (frame["proxy"] == "vit") & (frame["status"] == "ok") & frame["expression"].notna()
    frame.loc[vit_ok, "details"] = [json.dumps(regime(s)) for s in frame.loc[vit_ok, "seed"]]
    folder = tmp_path / "study"
    folder.mkdir()
    pq.write_table(frame_table(frame), ResultsStore(folder).consolidated_path)

    table = regime_table(frame, "vit", leaderboard(frame)).set_index("candidate")
    assert [c for c in table.columns if c.endswith(">1")] == ["attn >1", "final >1"]  # no mlp column
    assert table.loc["erf", "final >2"] == pytest.approx((0.9 + 0.7 + 0.7) / 3)  # the seed mean
    assert math.isnan(table.loc["layernorm", "attn >1"])  # a norm records no regime
    assert regime_table(frame, "dit") is None  # dit recorded none

    page = write_report(folder, tmp_path / "out").read_text()
    section = page[page.index('id="regime"'):]
    assert "regime_vit.png" in _images(page) and "regime_dit.png" not in _images(page)
    assert "dit: no regime recorded" in section
    assert "40% / 10% / 3" in section and "95% / 77% / 20" in section  # attn, then final, for erf


def test_report_command_defaults_to_a_report_folder_inside_the_results(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "study")
    (folder / "report").mkdir()
    (folder / "report" / "curves_top_gone.png").write_bytes(PNG_MAGIC)  # from an older report
    (folder / "report" / "notes.png").write_bytes(PNG_MAGIC)  # not the report's: kept
    result = CliRunner().invoke(app, ["report", str(folder), "--top", "1"])
    assert result.exit_code == 0, result.output
    page = (folder / "report" / "index.html").read_text()
    assert 'id="fidelity"' not in page  # no reference given: no fidelity section
    assert all((folder / "report" / name).exists() for name in _images(page))
    assert not (folder / "report" / "curves_top_gone.png").exists()
    assert (folder / "report" / "notes.png").exists()


def test_report_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="results folder not found"):
        write_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no trials stored"):
        write_report(tmp_path / "empty")
    with pytest.raises(InputError):
        write_report(write_results(tmp_path / "study"), top=0)


def test_fit_table_puts_eval_mode_train_loss_beside_the_test_metric() -> None:
    frame = results_frame()
    erf = (frame["proxy"] == "vit") & (frame["candidate"] == "erf")
    hand = {0: (0.20, 0.90), 1: (0.40, 0.92), 2: (0.30, 0.94)}  # seed: (train_eval_loss, test_acc)
    for index in frame.index[erf]:
        fit, acc = hand[int(frame.at[index, "seed"])]
        frame.at[index, "metrics"] = json.dumps({"test_acc": acc, "train_eval_loss": fit, "test_loss": 0.5})
        frame.at[index, "score"] = acc
    table = fit_table(frame, "vit").set_index("candidate")
    row = table.loc["erf"]
    assert row["train_eval_loss_mean"] == pytest.approx(0.30)
    assert row["train_eval_loss_std"] == pytest.approx(0.10)
    assert (row["metric_mean"], row["metric_std"]) == pytest.approx((0.92, 0.02))
    assert row["gap_mean"] == pytest.approx(0.5 - 0.30)
    assert table.loc["erf|translate=+2", "seeds_ok"] == 0  # diverged everywhere: no numbers
    assert math.isnan(table.loc["erf|translate=+2", "train_eval_loss_mean"])
    assert fit_table(frame, "dit") is None  # the dit proxy does not record it


def test_compare_studies_joins_the_same_functions_by_fingerprint(tmp_path: Path) -> None:
    a = write_results(tmp_path / "a")
    b = write_results(tmp_path / "b", functions=OTHER_FUNCTIONS, seed=1)
    table = compare_studies(a, b, proxy="vit").set_index("candidate_a")
    # erf(x) and erf(x + 0) are one function; arctan (only in a), isru (only in b) and
    # LayerNorm (no expression) are not compared
    assert set(table.index) == {"erf", "tanh", "erf|translate=-1", "erf|translate=+2"}
    assert table.loc["erf", "candidate_b"] == "erf|translate=+0"
    frame_a, frame_b = results_frame(search="a"), results_frame(search="b", functions=OTHER_FUNCTIONS, seed=1)

    def mean(frame, name):  # type: ignore[no-untyped-def]  # vit ranks on its recorded test loss
        rows = frame[(frame["proxy"] == "vit") & (frame["candidate"] == name) & (frame["status"] == "ok")]
        return rows["metrics"].map(lambda text: json.loads(text)["test_loss"]).mean()

    assert table.loc["erf", "mean_a"] == pytest.approx(mean(frame_a, "erf"))
    assert table.loc["erf", "diff"] == pytest.approx(mean(frame_b, "erf|translate=+0") - mean(frame_a, "erf"))
    assert (table.loc["erf|translate=+2", "ok_a"], table.loc["erf|translate=+2", "diverged_a"]) == (0, 3)


def test_leaderboard_with_a_reference_appends_the_fidelity_table(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "study")
    runner = CliRunner()
    result = runner.invoke(app, ["leaderboard", str(folder), "--format", "md", "--proxy", "vit",
                                 "--reference", "paper_property_tables.csv"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.index("# Leaderboard: study") < text.index("## Fidelity against paper_property_tables.csv")
    assert "| Spearman (95% bootstrap over functions and seeds) |" in text
    assert ("| study | n | Spearman in the study | reference bad (diverged or worst) | "
            "bad ranked below the rest (AUC) | caught | missed | "
            "false alarms | reproduced |") in text
    result = runner.invoke(app, ["leaderboard", str(folder), "--format", "csv", "--reference",
                                 "paper_property_tables.csv"])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)


def test_the_report_puts_the_declared_aggregate_before_the_per_proxy_tables(tmp_path: Path) -> None:
    page = write_report(write_results(tmp_path / "study"), bootstrap=50).read_text()
    assert page.index('id="aggregate"') < page.index('id="leaderboard"') < page.index('id="agreement"')
    assert "Aggregate rank: rank average of dit: fid, vit: test_loss" in page


def test_a_screen_s_report_shows_its_divergences_and_never_ranks_its_scores(tmp_path: Path) -> None:
    """vit's rows copied as a vit_screen study (erf(x + 2) diverges on every seed there as on
    vit), arctan diverging on 2 of 3 screen seeds and tanh on 1: the headline names what it screened out and what it only warned of; no
    plot ranks the screen's scores (no leaderboard, top curves or fit plot), its divergences
    get their curves."""
    import pandas as pd
    import pyarrow.parquet as pq

    from funcsearch.search.store import ResultsStore, frame_table

    frame = results_frame(search="screened")
    screen = frame[frame["proxy"] == "vit"].copy()
    screen["proxy"] = "vit_screen"
    screen["trial_key"] = "screen-" + screen["trial_key"]
    for name, seeds in (("arctan", (0, 1)), ("tanh", (2,))):
        screen.loc[(screen["candidate"] == name) & screen["seed"].isin(seeds), "status"] = "diverged"
    folder = tmp_path / "screened"
    folder.mkdir()
    pq.write_table(frame_table(pd.concat([frame, screen], ignore_index=True)), ResultsStore(folder).consolidated_path)
    page = write_report(folder, bootstrap=0).read_text()
    images = set(_images(page))
    assert {"leaderboard_vit.png", "curves_top_vit.png", "curves_diverged_vit_screen.png"} <= images
    assert not {"leaderboard_vit_screen.png", "curves_top_vit_screen.png", "fit_vs_test_vit_screen.png"} & images
    assert ("below every other function in the aggregate: arctan (2 of 3 seeds), erf|translate=+2 (3 of 3 "
            "seeds). 1 diverged on fewer than half (not screened out): tanh (1 of 3 seeds).") in page
    assert "vit_screen is a stability screen: its scores are listed for reference, not ranked" in page
