"""The results index (`funcsearch studies`): counts, busy wall time, top entries, Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fixtures.results_fixture import OTHER_FUNCTIONS, results_frame
from funcsearch.cli import app
from funcsearch.errors import DataError
from funcsearch.search.store import ResultsStore, TrialRecord, frame_table
from funcsearch.studies import busy_seconds, render_index, summarize_studies


def _stamp(seconds: int) -> str:
    return (pd.Timestamp("2026-01-01T00:00:00Z") + pd.Timedelta(seconds=seconds)).isoformat()


def test_busy_seconds_counts_overlapping_trials_once() -> None:
    started = pd.Series([_stamp(0), _stamp(5), _stamp(20), None])
    finished = pd.Series([_stamp(10), _stamp(15), _stamp(30), _stamp(99)])
    assert busy_seconds(started, finished) == 25.0  # [0, 15] and [20, 30]; the row without a start is skipped
    assert busy_seconds(pd.Series([], dtype=object), pd.Series([], dtype=object)) == 0.0


def _write(folder: Path, frame: pd.DataFrame, plan_extra: int = 0) -> None:
    folder.mkdir(parents=True)
    store = ResultsStore(folder)
    pq.write_table(frame_table(frame), store.consolidated_path)
    plan = [{"trial_key": k, "candidate": c, "is_baseline": bool(b)}
            for k, c, b in zip(frame["trial_key"], frame["candidate"], frame["is_baseline"])]
    plan += [{"trial_key": f"pending-{i}", "candidate": "later", "is_baseline": False} for i in range(plan_extra)]
    store.plan_path.write_text(json.dumps(plan))


def test_index_counts_new_and_reused_trials_and_ranks_each_proxy(tmp_path: Path) -> None:
    first = results_frame(search="alpha")
    # two trials at a time, 60 s each, back to back: 3 slots of 60 s per proxy
    first["started_at"] = [_stamp(60 * (i // 2)) for i in range(len(first))]
    first["finished_at"] = [_stamp(60 * (i // 2) + 60) for i in range(len(first))]
    first["cpu_time_s"] = 50.0
    _write(tmp_path / "alpha", first)

    second = results_frame(search="beta", functions=OTHER_FUNCTIONS, seed=1)
    second["started_at"] = [_stamp(1000 + 30 * i) for i in range(len(second))]
    second["finished_at"] = [_stamp(1000 + 30 * i + 30) for i in range(len(second))]
    reused = second["candidate"] == "layernorm"
    # how rows record reuse now (their own column), and how rows stored before did (a message prefix)
    second.loc[reused & (second["seed"] == 0), "reused_from"] = "alpha"
    second.loc[reused & (second["seed"] != 0), "message"] = "reused from alpha"
    _write(tmp_path / "beta", second, plan_extra=3)

    studies, calibrations = summarize_studies(tmp_path)
    assert [s.name for s in studies] == ["alpha", "beta"] and calibrations == []
    alpha, beta = studies
    assert (alpha.stored, alpha.new, alpha.reused, alpha.planned) == (36, 36, 0, 36) and alpha.complete
    assert alpha.busy_wall_s == 60 * 18 and alpha.cpu_s == 50.0 * 36
    assert alpha.status == {"ok": 32, "diverged": 4}  # erf(x+2): 3 vit seeds and 1 dit seed
    # every vit quality of the fixture is ordered, so the top 3 is known: layernorm, erf, tanh
    assert [e.candidate for e in alpha.top["vit"]] == ["layernorm", "erf", "tanh"]
    assert alpha.top["dit"][0].candidate == "layernorm" and alpha.metric["dit"] == ("fid", False)

    assert (beta.stored, beta.new, beta.reused, beta.planned) == (36, 30, 6, 39) and not beta.complete
    # reused rows (another study's time) are left out; wall time is recorded, CPU falls back to it
    new = second[~reused]
    assert beta.busy_wall_s == 30 * len(new)  # back-to-back 30 s slots, with gaps where reused rows were
    assert beta.cpu_s == pytest.approx(new["wall_time_s"].sum())

    studies, calibrations = summarize_studies(tmp_path, top=6)  # every function: the | names too
    text = render_index(studies, calibrations, root=tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    assert len(rows) == 2 and "(**incomplete**)" in rows[1] and "incomplete" not in rows[0]
    # a candidate name with | is escaped, so every row keeps the header's 7 cells
    assert "erf\\|translate=-1" in text
    assert all(line.replace("\\|", "").count("|") == 8 for line in rows)
    assert "vit (test_loss, nats, lower is better): " in rows[0]
    assert re.search(r"layernorm 0\.\d{3}", rows[0])  # the loss at its display resolution
    assert "erf\\|translate=+2 (diverged on 3/3 seeds)" in rows[0]


def test_studies_command_writes_the_index_and_rejects_a_missing_folder(tmp_path: Path) -> None:
    _write(tmp_path / "results" / "alpha", results_frame(search="alpha"))
    out = tmp_path / "results" / "README.md"
    result = CliRunner().invoke(app, ["studies", str(tmp_path / "results"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "[alpha](alpha/leaderboard.md)" in out.read_text()
    result = CliRunner().invoke(app, ["studies", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and isinstance(result.exception, DataError)


def test_index_states_seed_agreement_and_fidelity_where_the_reference_applies(tmp_path: Path) -> None:
    from funcsearch.fidelity import fidelity_of_results

    _write(tmp_path / "plain", results_frame(search="plain"))
    with_s = results_frame(search="with_s")
    with_s["shift"] = "scalar"  # the paper's tables were run without s: nothing to compare
    _write(tmp_path / "with_s", with_s)
    studies, _ = summarize_studies(tmp_path)
    plain, shifted = studies
    # the fixture's 5 point-wise functions are all in the shipped reference
    fidelity = plain.fidelity["vit"]
    assert fidelity.n == 5
    assert fidelity.estimate == pytest.approx(fidelity_of_results(tmp_path / "plain", proxy="vit")[0]
                                              .spearman.estimate)
    assert set(plain.seed_agreement) == {"vit", "dit"} and -1 <= plain.seed_agreement["vit"] <= 1
    assert shifted.fidelity == {} and set(shifted.seed_agreement) == {"vit", "dit"}
    text = render_index(studies, [], root=tmp_path)
    assert "{" not in text and "Spearman-Brown" in text  # every placeholder filled in
    row = next(line for line in text.splitlines() if line.startswith("| [plain]"))
    # the Fisher-z interval (none when the correlation is exactly +-1)
    # and what the order of the seed mean is worth (Spearman-Brown, where one seed agrees > 0)
    assert re.search(r"vit: seeds [+-]\d\.\d\d( \(their mean \+\d\.\d\d\))?, reference [+-]\d\.\d\d"
                     r"( \[.*\])? \(5 functions\)", row)
    assert "(their mean " in row if plain.seed_agreement["vit"] > 0 else "(their mean " not in row
    row = next(line for line in text.splitlines() if line.startswith("| [with_s]"))
    assert "reference" not in row.split("|")[-2] and "vit: seeds" in row


def _same(a: object, b: object) -> bool:
    """Summaries equal field by field (NaN equal to NaN, as in the cache's JSON)."""
    return json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)


def test_summaries_are_cached_beside_each_study_and_recomputed_when_its_files_change(tmp_path: Path) -> None:
    frame = results_frame(search="alpha")
    _write(tmp_path / "alpha", frame)
    cache = tmp_path / "alpha" / "summary.json"
    (first,), _ = summarize_studies(tmp_path)
    assert cache.is_file()
    stored = json.loads(cache.read_text())
    (again,), _ = summarize_studies(tmp_path)
    assert _same(again, first)  # read back from the cache, equal field by field
    # a cache whose key matches is trusted: prove the second read came from it
    stored["summary"]["description"] = "from the cache"
    cache.write_text(json.dumps(stored))
    (cached,), _ = summarize_studies(tmp_path)
    assert cached.description == "from the cache"
    (fresh,), _ = summarize_studies(tmp_path, refresh=True)
    assert fresh.description == "" and _same(fresh, first)
    # the study's trials change (a running search): its key changes and it is summarized afresh
    (tmp_path / "alpha" / "trials.parquet").unlink()
    _write_rows = frame[frame["seed"] != 0]
    pq.write_table(frame_table(_write_rows), tmp_path / "alpha" / "trials.parquet")
    (changed,), _ = summarize_studies(tmp_path)
    assert changed.stored == len(_write_rows) < first.stored
    # a damaged cache is ignored and rewritten, never an error
    cache.write_text("{not json")
    (repaired,), _ = summarize_studies(tmp_path)
    assert _same(repaired, changed) and json.loads(cache.read_text())["key"]
    # a running search adds one file per finished trial before it consolidates: counted at once
    with ResultsStore(tmp_path / "alpha").locked() as store:
        store.write(TrialRecord.decode(frame[frame["seed"] == 0].iloc[0].to_dict()))
    (running,), _ = summarize_studies(tmp_path)
    assert running.stored == changed.stored + 1
