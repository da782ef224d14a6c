"""The committed studies stay loadable and reusable: every row decodes as a TrialRecord, a
fresh plan of each study's search.yaml asks for exactly the stored trial keys (so a rerun
reuses them all), and its leaderboard.md is what the current code renders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funcsearch.fidelity import fidelity_lines
from funcsearch.ranking import leaderboard
from funcsearch.search.config import load_search_config
from funcsearch.search.plan import check_sweep_params, select_functions
from funcsearch.search.store import ResultsStore, TrialRecord
from funcsearch.search.sweep import Sweeper

RESULTS = Path(__file__).resolve().parent.parent / "results"
STUDIES = sorted(p.name for p in RESULTS.iterdir() if (p / "search.yaml").exists()) if RESULTS.is_dir() else []

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("study", STUDIES)
def test_a_committed_study_is_fully_reused_and_renders_the_same_leaderboard(
        study: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = RESULTS / study
    monkeypatch.chdir(RESULTS.parent)  # search.yaml paths are relative to the repository
    store = ResultsStore(folder)
    records = store.records()
    assert records and all(isinstance(r, TrialRecord) for r in records.values())
    config = load_search_config(folder / "search.yaml")
    check_sweep_params(config)
    # the device is in a GPU trial's key: plan as the study ran (auto ran where it found none)
    device = "cpu" if config.resources.device == "auto" else config.resources.device
    units = Sweeper(config, select_functions(config).functions, tmp_path, device=device).initial_units()
    planned = {key for unit in units for key in unit.trials.values()}
    assert planned == {p["trial_key"] for p in json.loads((folder / "plan.json").read_text())}
    assert planned <= set(records)
    if (folder / "leaderboard.md").exists():
        current = store.read_current()
        board = leaderboard(current, rule=config.aggregate.rule())
        board.title = config.name
        board.fidelity = fidelity_lines(current, rule=config.aggregate.rule())
        assert board.render("md") == (folder / "leaderboard.md").read_text()


@pytest.mark.skipif(not STUDIES, reason="no committed results")
def test_the_committed_study_summaries_are_current_and_read_without_pandas_or_torch(tmp_path: Path) -> None:
    """``funcsearch studies`` on the committed results reads their cached summaries (what keeps
    it well under 2 s): each one is what the current code computes, and reading them imports
    neither pandas nor torch (a summary whose key is stale would be recomputed, importing both:
    after changing the code that computes them, run ``funcsearch studies results --refresh``)."""
    import subprocess
    import sys

    from funcsearch.studies import summarize_studies

    script = ("import sys; from funcsearch.studies import summarize_studies, render_index; "
              f"s, c = summarize_studies({str(RESULTS)!r}); render_index(s, c); "
              "print(len(s), sorted(m for m in ('torch', 'pandas', 'sympy') if m in sys.modules))")
    cached = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert cached.stdout.split() == [str(len(STUDIES)), "[]"], cached.stdout + cached.stderr
    import shutil

    for folder in (p for p in RESULTS.iterdir() if p.is_dir()):  # a copy: the repository is not written
        (tmp_path / folder.name).mkdir()
        for name in ("trials.parquet", "plan.json", "search.yaml", "summary.json", "recipes.parquet"):
            if (folder / name).is_file():
                shutil.copy(folder / name, tmp_path / folder.name / name)
    studies, calibrations = summarize_studies(tmp_path)
    fresh, fresh_calibrations = summarize_studies(tmp_path, refresh=True)
    assert [s.name for s in studies] == STUDIES
    for cached, computed in zip(studies + calibrations, fresh + fresh_calibrations):
        assert json.dumps(cached.to_json(), sort_keys=True) == json.dumps(computed.to_json(), sort_keys=True), f"{computed.name}: committed summary.json is stale (run funcsearch studies results --refresh)"


@pytest.mark.skipif(not STUDIES, reason="no committed results")
def test_no_committed_study_holds_a_copy_of_a_study_inside_it() -> None:
    """A study folder's subfolders are its report and trial files, never another study (a
    folder copied into itself by mistake doubles its size and shows up as nothing else)."""
    nested = [str(p.relative_to(RESULTS)) for study in STUDIES for p in (RESULTS / study).rglob("search.yaml")
              if p.parent != RESULTS / study]
    assert nested == []
