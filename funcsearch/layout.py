"""The files of a results folder, named once, and how to tell a results folder.

Kept free of heavy imports (no pandas, no torch) so that the index of studies can find its
folders and their cached summaries in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

TRIALS_FILE = "trials.parquet"
"""The consolidated trials table of a search."""
TRIALS_DIR = "trials"
"""One Parquet file per finished trial, written while a search runs and consolidated at its end."""
PLAN_FILE = "plan.json"
"""The planned trials (keys, functions), written before the first trial runs."""
CONFIG_FILE = "search.yaml"
"""A copy of the search config the folder was run with."""
SUMMARY_FILE = "summary.json"
"""The cached summary of the folder for ``funcsearch studies`` (see :mod:`funcsearch.studies`)."""
RECIPES_FILE = "recipes.parquet"
"""The recipes table of a calibration folder."""


def is_results_folder(path: str | Path) -> bool:
    """Whether ``path`` is a search's results folder (as opposed to a family file or folder)."""
    path = Path(path)
    return path.is_dir() and ((path / PLAN_FILE).exists() or (path / TRIALS_FILE).exists())
