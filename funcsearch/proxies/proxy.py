"""The proxy contract: what a proxy task declares, so that nothing else names it.

A proxy module (``vit.py``, ``dit.py``, or a plug-in of your own) builds one :class:`Proxy`
and the registry (:mod:`funcsearch.proxies.registry`) lists it. Everything downstream -
search config validation, planning, early stopping, leaderboards, plots, studies,
reports, calibration, the CLI and the benchmarks - reads the proxy's vocabulary from
here: its config class, its metrics with their directions and units, the primary metric,
the per-epoch metric that successive halving ranks on, its data loader and a smoke recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from torch import nn

from funcsearch.errors import InputError
from funcsearch.metrics import Metric
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.device import Runtime
from funcsearch.proxies.training import EpochCallback, ProxyRun

#: ``norm(dim, site, affine=True) -> nn.Module``; ``site`` is "attn", "mlp" or "final"
NormFactory = Callable[..., nn.Module]


class RunFunction(Protocol):
    """Build the model (global RNG seeded by the caller), train it and measure it."""

    def __call__(self, config: Any, norm: NormFactory, data: Any, seed: int,
                 on_epoch: EpochCallback | None, runtime: Runtime) -> ProxyRun: ...


@dataclass(frozen=True)
class Proxy:
    """One proxy task and its whole vocabulary.

    ``load_data(path)``: ``None`` = the embedded default dataset (nothing downloaded), else
    a local file or folder; raises ``DataError`` naming it. ``data_fingerprint(data)`` is
    recorded with every trial. ``smoke``: config overrides for a run of a few seconds
    (used by tests and ``benchmarks/gpu_check.py``)."""

    name: str
    config_class: type[TrainConfig]
    run: RunFunction
    load_data: Callable[[str | None], Any]
    metrics: tuple[Metric, ...]
    primary_metric: str
    halving_metric: str
    smoke: Mapping[str, Any]
    description: str
    data_help: str = "local dataset path (default: the embedded dataset)"
    site_kinds: tuple[str, ...] = ("attn", "mlp", "final")
    aggregate_metric: str | None = None
    """The metric the aggregate ranking uses for this proxy (None = the primary metric): the
    one most faithful to full scale on the released calibration data."""
    references: tuple[str, ...] = ()
    """Shipped full-scale reference sets of the task this proxy stands for (its fidelity is
    measured against them by default), most relevant first."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    role: Literal["rank", "screen"] = "rank"
    """``rank``: its aggregate metric enters the aggregate ranking's rank average. ``screen``:
    a stability screen, whose scores are not ranked: only its divergences count, and a
    function that diverges on at least half of its seeds ranks below every function that does
    not (:mod:`funcsearch.aggregate`). A screen's trials always run in full (no gate, no
    halving: a rung ranks scores, and a screen's verdict is whether training blows up)."""
    task: str | None = None
    """The proxy whose training runs this one's are, when it is that proxy's task with other
    defaults (``vit_screen``: ``vit``); None = its own. Trial keys hash the task, not the
    proxy's name, so a run stored under either name with the same resolved settings is reused
    by the other (:mod:`funcsearch.search.keys`). Such a proxy reports its task's metrics (a
    copied trial keeps its score)."""

    def __post_init__(self) -> None:
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"proxy {self.name}: metric names repeat: {names}")
        for role, name in (("primary_metric", self.primary_metric),
                           ("halving_metric", self.halving_metric)):
            if name not in names:
                raise ValueError(f"proxy {self.name}: {role} {name!r} is not one of its metrics {names}")
        if self.aggregate_metric is not None and self.aggregate_metric not in names:
            raise ValueError(f"proxy {self.name}: aggregate_metric {self.aggregate_metric!r} is not one of "
                             f"its metrics {names}")
        if self.role not in ("rank", "screen"):
            raise ValueError(f"proxy {self.name}: role {self.role!r} is not 'rank' or 'screen'")
        if not self.metric(self.halving_metric).per_epoch:
            raise ValueError(f"proxy {self.name}: halving_metric {self.halving_metric!r} is not per-epoch")

    @property
    def task_name(self) -> str:
        """The name trial keys hash: the shared task's, else this proxy's."""
        return self.task or self.name

    @property
    def higher_is_better(self) -> bool:
        """Direction of the primary metric."""
        return self.metric(self.primary_metric).higher_is_better

    @property
    def aggregate(self) -> str:
        """The metric this proxy contributes to an aggregate ranking."""
        return self.aggregate_metric or self.primary_metric

    @property
    def primary(self) -> Metric:
        return self.metric(self.primary_metric)

    @property
    def epoch_metrics(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if m.per_epoch)

    def metric(self, name: str, *, field: str | None = None) -> Metric:
        """The declared metric ``name``; an ``InputError`` naming the known ones otherwise."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise InputError(f"proxy {self.name} has no metric {name!r} "
                         f"(it reports: {', '.join(m.name for m in self.metrics)})", field=field)
