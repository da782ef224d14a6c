"""What a metric is (name, direction, display) and the one helper that orients scores.

A proxy declares its metrics (``funcsearch.proxies``); every table, plot and ranking reads
the direction and the display unit from that declaration (or from the stored row's
``higher_is_better``), never from the metric's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Metric:
    """One measured quantity of a proxy.

    ``per_epoch``: reported after every epoch (in the curve; usable by early stopping),
    else only at the end. ``scale`` converts the stored value to the display ``unit``
    (accuracy is stored as a fraction and shown in %). ``minimum`` / ``maximum``: the range
    the quantity can take (stored units; a loss is never negative, an accuracy lies in
    [0, 1]): printed intervals are clipped to it."""

    name: str
    higher_is_better: bool
    per_epoch: bool
    label: str
    unit: str = ""
    scale: float = 1.0
    minimum: float | None = None
    maximum: float | None = None

    def display(self, value: float) -> float:
        """The value in the display unit."""
        return float(value) * self.scale

    @property
    def heading(self) -> str:
        """``label (unit)`` for axes and table headings."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


def orient(values: Any, higher_is_better: Any) -> np.ndarray:
    """Scores turned so that larger is better: ``values`` if higher is better, else ``-values``.

    ``higher_is_better`` is one bool or one per value (a stored column)."""
    sign = np.where(np.asarray(higher_is_better, dtype=bool), 1.0, -1.0)
    return np.asarray(values, dtype=float) * sign
