"""funcsearch: search point-wise functions that replace normalization layers."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # name -> module; imported on first use so `import funcsearch` stays light (no torch, no ray)
    "PointwiseNorm": "funcsearch.layers",
    "Derf": "funcsearch.layers",
    "DyT": "funcsearch.layers",
    "make_norm": "funcsearch.layers",
    "convert_norms": "funcsearch.layers",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'funcsearch' has no attribute {name!r}")
