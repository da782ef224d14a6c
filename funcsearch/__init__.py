"""funcsearch: search point-wise functions that replace normalization layers.

A few verbs, in the order data flows (each imported on first use, so ``import funcsearch``
stays light: no torch, no Ray)::

    import funcsearch as fs
    table = fs.build_catalog(["candidates/"])            # families -> checked candidates
    report = fs.check_properties("erf(x + 2)")           # the four properties, with evidence
    result = fs.run_trial(spec)                          # one proxy trial
    outcome = fs.run_search("search_configs/quickstart.yaml")
    trials = fs.load_results("results/quickstart")       # the stored trials (pandas)
    board = fs.leaderboard("results/quickstart")         # ranked, with seed noise
    fidelity = fs.measure_fidelity(trials, reference, proxy=name)
    fs.write_report("results/quickstart")                # one HTML page
    fs.convert_norms(model, "erf")                       # into your own model
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # name -> module that owns it
    "build_catalog": "funcsearch.catalog",
    "check_properties": "funcsearch.properties",
    "run_trial": "funcsearch.proxies",
    "run_search": "funcsearch.search",
    "load_results": "funcsearch.search.store",
    "leaderboard": "funcsearch.ranking",
    "measure_fidelity": "funcsearch.fidelity",
    "write_report": "funcsearch.report",
    "convert_norms": "funcsearch.layers",
    "make_norm": "funcsearch.layers",
    "PointwiseNorm": "funcsearch.layers",
    "Derf": "funcsearch.layers",
    "DyT": "funcsearch.layers",
}
_RENAMED = {"load_results": "read_results"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
        globals()[name] = value
        return value
    raise AttributeError(f"module 'funcsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
