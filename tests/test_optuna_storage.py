"""A sweep's storage (results/<name>/optuna.journal) opens with Optuna's own tools: a
JournalStorage over a JournalFileBackend, as funcsearch.search.sweep writes it, so
optuna.load_study, its visualisations and optuna-dashboard read it (docs/results_tools.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

RESULTS = Path(__file__).resolve().parents[1] / "results"
JOURNALS = sorted(RESULTS.glob("*/optuna.journal"))


@pytest.mark.skipif(not JOURNALS, reason="no committed sweep storage")
@pytest.mark.parametrize("journal", JOURNALS, ids=[p.parent.name for p in JOURNALS])
def test_a_committed_journal_opens_with_optunas_own_api(journal: Path, tmp_path: Path) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    copy = tmp_path / "optuna.journal"  # a copy: opening must not touch the committed file
    shutil.copy(journal, copy)
    storage = JournalStorage(JournalFileBackend(str(copy)))
    summaries = optuna.get_all_study_summaries(storage)
    assert summaries
    study = optuna.load_study(study_name=summaries[0].study_name, storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert finished and all(t.params for t in finished)
    assert study.trials_dataframe().shape[0] == len(study.trials)


def test_a_sweep_written_by_the_sweeper_loads_in_optuna(tmp_path: Path) -> None:
    """What funcsearch writes is what Optuna reads: a study created through the same storage
    class and file name loads back by name, with its trials."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name="vit|erf", storage=JournalStorage(JournalFileBackend(str(path))),
                                direction="maximize")
    study.optimize(lambda trial: -(trial.suggest_float("lr", 1e-4, 1e-2, log=True) - 3e-3) ** 2, n_trials=3)
    reopened = optuna.load_study(study_name="vit|erf", storage=JournalStorage(JournalFileBackend(str(path))))
    assert len(reopened.trials) == 3 and "lr" in reopened.best_params


def test_optuna_dashboard_reads_the_journal(tmp_path: Path) -> None:
    """optuna-dashboard (a test dependency) serves a committed sweep journal: its own WSGI app,
    asked over its JSON API, lists the study and every stored trial."""
    import json
    from wsgiref.util import setup_testing_defaults

    import optuna
    import optuna_dashboard
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not JOURNALS:
        pytest.skip("no committed sweep storage")
    copy = tmp_path / "optuna.journal"
    shutil.copy(JOURNALS[0], copy)
    storage = JournalStorage(JournalFileBackend(str(copy)))
    app = optuna_dashboard.wsgi(storage)  # the server's own app, without a socket

    def get(path: str) -> dict:
        environ: dict = {}
        setup_testing_defaults(environ)
        environ["PATH_INFO"] = path
        status: list[str] = []
        body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
        assert status == ["200 OK"], (path, status, body[:200])
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    names = [s["study_name"] for s in summaries]
    assert names == [s.study_name for s in optuna.get_all_study_summaries(storage)] and names
    study = get(f"/api/studies/{summaries[0]['study_id']}")
    assert len(study["trials"]) == len(optuna.load_study(study_name=names[0], storage=storage).trials) > 0
