"""The regime a point-wise function works in: the distribution of its input u = alpha*x + s.

Full-scale training puts u near unit scale (DyT's learned alpha tracks 1/std of its input;
a Gaussian has 32% of values beyond |1| and 5% beyond |2|). A proxy whose u sits far outside
(every bounded f then acts as a sign function) or far inside (every f acts linearly) ranks
functions by something else than their shape. So every trial records, per norm site kind
(attention, MLP, final; pooled over blocks) and at three points of training (the first
step, the middle step, the last step), the share of |u| > 1 and > 2 and the 99th percentile
of |u|. It samples the batches training already runs (no extra pass over the data): at
those three steps, a forward hook on each point-wise norm keeps a strided sample of u.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator

import torch
from torch import Tensor, nn

POINTS = ("init", "middle", "end")
SAMPLE = 4096
"""Values of u kept per norm module and point (a fixed stride over the batch: deterministic)."""


def regime_stats(values: Tensor) -> dict[str, float]:
    """``gt1``, ``gt2``: shares of |u| above 1 and 2; ``p99``: 99th percentile of |u|."""
    magnitude = values.abs().float()
    return {"gt1": float((magnitude > 1).float().mean()), "gt2": float((magnitude > 2).float().mean()),
            "p99": float(torch.quantile(magnitude, 0.99))}


class RegimeProbe:
    """Forward hooks on a model's point-wise norms (modules with ``alpha`` and a
    ``site_kind``, as the trial's norm factory tags them) that sample u while active."""

    def __init__(self, model: nn.Module) -> None:
        self.samples: dict[str, dict[str, list[Tensor]]] = defaultdict(lambda: defaultdict(list))
        self._point: str | None = None
        self._handles = [module.register_forward_pre_hook(self._hook)
                         for module in model.modules()
                         if isinstance(getattr(module, "alpha", None), Tensor) and hasattr(module, "site_kind")]

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        if self._point is None:
            return
        with torch.no_grad():
            x = inputs[0].detach()
            u = module.alpha * x
            shift = getattr(module, "shift", None)
            if isinstance(shift, Tensor):
                u = u + shift
            flat = u.reshape(-1)
            stride = max(1, flat.numel() // SAMPLE)
            self.samples[self._point][module.site_kind].append(flat[::stride][:SAMPLE].float().cpu())

    @contextlib.contextmanager
    def capture(self, point: str) -> Iterator[None]:
        """Sample u during the forward passes inside the block, as ``point``."""
        self._point = point
        try:
            yield
        finally:
            self._point = None

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{point: {site kind | "all": {gt1, gt2, p99}}}`` for the points captured."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for point in POINTS:
            sites = self.samples.get(point)
            if not sites:
                continue
            out[point] = {site: regime_stats(torch.cat(parts)) for site, parts in sorted(sites.items())}
            out[point]["all"] = regime_stats(torch.cat([p for parts in sites.values() for p in parts]))
        return out

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def regime_line(summary: dict[str, dict[str, dict[str, float]]], point: str = "end") -> str:
    """``u at end: attn |u|>1 41% >2 13% p99 7.7; mlp ...`` (empty without point-wise norms)."""
    sites = summary.get(point)
    if not sites:
        return ""
    parts = [f"{site} |u|>1 {s['gt1']:.0%} >2 {s['gt2']:.0%} p99 {s['p99']:.2g}"
             for site, s in sites.items() if site != "all"]
    return f"u at {point}: " + "; ".join(parts)
