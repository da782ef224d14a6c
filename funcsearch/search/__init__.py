"""The search engine: config schema, results store, Ray/Optuna runner, live progress.

``run_search`` imports Ray on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from funcsearch.search.config import SearchConfig, load_search_config, parse_search_config
from funcsearch.search.store import ResultsStore

if TYPE_CHECKING:
    from funcsearch.search.runner import SearchOutcome


def run_search(config: Any, **options: Any) -> "SearchOutcome":
    """Run or resume a search (see :func:`funcsearch.search.runner.run_search`)."""
    from funcsearch.search.runner import run_search as _run

    return _run(config, **options)


__all__ = ["SearchConfig", "ResultsStore", "run_search", "load_search_config", "parse_search_config"]
