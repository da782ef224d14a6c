"""funcsearch: search point-wise functions that replace normalization layers."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
