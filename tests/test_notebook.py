"""notebooks/explore_results.ipynb runs top to bottom against small results fixtures.

The kernel is this interpreter (a kernelspec written to a temporary JUPYTER_PATH), so the test
works in a fresh virtual environment without ``ipykernel install``; the results folders reach
the notebook through the environment variables its parameter cell reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from fixtures.results_fixture import OTHER_FUNCTIONS, write_results  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_results.ipynb"


def _kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for ``sys.executable``, found first through JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / "funcsearch-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "funcsearch test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "funcsearch-test"


def _text(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", "") + data.get("text/html", ""))
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)


@pytest.mark.timeout(120)
def test_explore_notebook_runs_on_two_results_folders(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    study = write_results(tmp_path / "study")
    other = write_results(tmp_path / "other", functions=OTHER_FUNCTIONS, seed=1)
    monkeypatch.setenv("FUNCSEARCH_RESULTS", str(study))
    monkeypatch.setenv("FUNCSEARCH_OTHER_RESULTS", str(other))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    client = nbclient.NotebookClient(notebook, kernel_name=_kernel(tmp_path, monkeypatch), timeout=90,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any failing cell

    code = [c for c in notebook.cells if c.cell_type == "code"]
    everything = "\n".join(_text(c) for c in code)
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    # the leaderboard (HTML), the shapes, curves per proxy, the comparison per proxy
    assert "Leaderboard: study" in everything and "erf|translate=+2" in everything
    assert images >= 1 + 1 + 2 + 2
    assert "train_eval_loss_mean" in everything  # the fit table of vit
    # the comparison joined erf(x) with erf(x + 0) by fingerprint; arctan and isru are not shared
    assert "erf|translate=+0" in everything
    assert "8 (proxy, function) pairs in both studies" in everything
    assert "Spearman of the seed means" in everything
