"""Search config schema (``search_configs/*.yaml``), validated with errors at file:line: field.

A search config says what to train (candidates and baselines), where (proxies with
overrides, seeds), how thoroughly (an optional per-candidate sweep, early stopping) and
with what (resources, Ray address, output folder). See ``search_configs/quickstart.yaml``
for a commented example.

YAML is read with :mod:`funcsearch.yamlio`, which remembers the line of every key, so an
error at ``proxies.vit.overrides.epochs`` is reported at the line where that key is written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator,
                      model_validator)

from funcsearch.errors import ConfigError
from funcsearch.named import BASELINES, ShiftKind
from funcsearch.yamlio import YamlDocument, format_loc, load_yaml, parse_yaml, validate_yaml

PROPERTY_NAMES = ("zero_centred", "bounded", "centre_sensitive", "monotonic")
FUNCTION_FIELDS = ("alpha_init", "shift")  # sweepable fields of the unified form itself

PropertyName = Literal["zero_centred", "bounded", "centre_sensitive", "monotonic"]
ProxyName = str  # a registered proxy (checked against the registry after parsing)
Seed = Annotated[int, Field(strict=True, ge=0, lt=2**63)]


def _known_baseline(name: str) -> str:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    return name


BaselineName = Annotated[str, AfterValidator(_known_baseline)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CandidatesConfig(_Strict):
    """Which candidate functions to train, and the property filter they must pass."""

    paths: list[str] = Field(default_factory=list,
                             description="family YAML files or folders, expanded and deduplicated")
    functions: list[str] = Field(default_factory=list,
                                 description="built-in names or expressions in x")
    only: list[str] | None = Field(
        None, description="keep only these names (glob patterns) of the families' candidates")
    require: list[PropertyName] = Field(default_factory=lambda: list(PROPERTY_NAMES),
                                        description="properties a candidate must pass; [] = no filter")
    profile: str | None = Field(None, description="property profile file; null = the default profile")
    limit: int | None = Field(None, ge=1, description="keep at most this many (in catalog order)")


ShiftName = ShiftKind


class FunctionDefaults(_Strict):
    """Unified-form settings for every candidate: y = gamma * f(alpha*x + s) + beta.

    ``shift`` may list several variants (``[none, scalar, vector]``): every candidate is then
    trained once per variant, named ``<name>|s=<shift>``, so an ablation of the learnable
    shift shows all variants side by side on one leaderboard (a sweep would keep only the
    best point)."""

    shift: ShiftName | list[ShiftName] = "scalar"
    alpha_init: float = Field(0.5, gt=0)

    @field_validator("shift")
    @classmethod
    def _distinct_shifts(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("list at least one shift variant (scalar, vector or none)")
            if len(set(value)) != len(value):
                raise ValueError(f"shift variants repeat: {value}")
        return value

    @property
    def shifts(self) -> list[str]:
        """The shift variants, as a list."""
        return list(self.shift) if isinstance(self.shift, list) else [self.shift]


class ProxySettings(_Strict):
    """One proxy: overrides of its config defaults, and optionally a local dataset."""

    preset: str | None = Field(None, description="a proxy preset (search_configs/proxies/<name>.yaml) "
                                                 "applied before the overrides")
    overrides: dict[str, Any] = Field(default_factory=dict)
    data: str | None = None
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 = forward passes under "
                                                                  "torch.autocast")


class SweepParam(_Strict):
    """Either a list of values (grid) or a range sampled by Optuna."""

    values: list[float | int | str] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> "SweepParam":
        has_range = self.low is not None or self.high is not None
        if self.values is not None and has_range:
            raise ValueError("give either values or low/high, not both")
        if self.values is None and not has_range:
            raise ValueError("give values: [...] or low/high")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        if has_range:
            if self.low is None or self.high is None:
                raise ValueError("a range needs both low and high")
            if not self.low < self.high:
                raise ValueError(f"low ({self.low}) must be below high ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("a log range needs low > 0")
        return self

    @property
    def is_grid(self) -> bool:
        return self.values is not None


class SweepConfig(_Strict):
    """A small Optuna study per candidate and proxy; the best point (mean over seeds) is reported."""

    params: dict[str, SweepParam] = Field(min_length=1)
    proxies: list[ProxyName] | None = Field(None, description="proxies swept; null = all")
    n_trials: int | None = Field(None, ge=1, description="points per study; grid: all points if null")
    sampler: Literal["grid", "tpe", "random"] | None = Field(
        None, description="null = grid when every param lists values, else tpe")
    parallel: int = Field(2, ge=1, description="points evaluated at once by a sequential sampler")
    seed: int = 0

    @model_validator(mode="after")
    def _sampler_fits(self) -> "SweepConfig":
        all_grid = all(p.is_grid for p in self.params.values())
        if self.sampler is None:
            self.sampler = "grid" if all_grid else "tpe"
        if self.sampler == "grid" and not all_grid:
            raise ValueError("sampler grid needs values: [...] for every param")
        if self.sampler != "grid" and self.n_trials is None:
            raise ValueError(f"sampler {self.sampler} needs n_trials")
        return self

    def grid_size(self) -> int:
        return math.prod(len(p.values or ()) for p in self.params.values())


class Bound(_Strict):
    """Threshold on a metric: ``min`` and/or ``max``."""

    min: float | None = None
    max: float | None = None


class GateConfig(_Strict):
    """Cheap early rejection: the first ``epochs`` of ``seeds`` seeds, then thresholds.

    A run that diverges inside the gate is an exploder; one that misses a threshold in
    ``require`` (per proxy, on the per-epoch metrics at the gate epoch), or whose
    ``loss_metric`` falls by less than ``min_loss_drop`` (relative, epoch 1 -> gate epoch),
    is a non-learner. Rejected candidates are recorded as pruned with the reason.
    """

    enabled: bool = True
    epochs: int = Field(1, ge=1)
    seeds: int = Field(1, ge=1, description="how many of the first seeds the gate runs")
    require: dict[ProxyName, dict[str, Bound]] = Field(default_factory=dict)
    min_loss_drop: float | None = Field(None, ge=0, lt=1)
    loss_metric: str = "train_loss"


#: where halving ranks when a config places no rung (fractions of the proxy's epochs)
DEFAULT_RUNGS: tuple[float, ...] = (1 / 3,)


class HalvingConfig(_Strict):
    """Successive halving across candidates: rank at small budgets, continue the best fraction.

    By default one rung at a third of the proxy's epochs keeps the best quarter. Measured on
    paper_search's full curves and on its rerun on a GPU, a replicate that differs by rounding
    (``benchmarks/halving_study.py results/paper_search results/paper_search_gpu --keep 0.25``,
    both in sample): CPU saved and Spearman with the full runs' order, paper_search at today's
    defaults (dit's gain 2) / the GPU run (dit's gain 1): vit 41% at +0.95 / 48% at +0.91, lm 46%
    at +0.95 / 49% at +0.96, dit 45% at +0.96 / 47% at +0.91 (vit with a class token, not the
    default: 45% at +0.91). A rung at a quarter (the default until the GPU run) held on the CPU
    run alone (vit +0.94, lm +0.94) and fell to vit +0.89, dit +0.76 on the replicate. ``at`` places rungs at other
    fractions of the proxy's epochs;
    ``min_epochs`` instead places them at ``min_epochs * reduction_factor**k`` epochs. At each
    rung every surviving candidate (all its seeds) is ranked on ``metric`` (per proxy; default
    the proxy's halving metric) averaged over seeds and the best ``1/reduction_factor`` (at
    least one) continue, each from its rung's checkpoint; baselines always continue.
    """

    enabled: bool = True
    min_epochs: int | None = Field(None, ge=1, description="geometric rungs at min_epochs * r^k "
                                                            "epochs (instead of `at`)")
    reduction_factor: int = Field(4, ge=2, description="the best 1/reduction_factor continue")
    at: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(
        None, description="rungs at these fractions of the proxy's epochs; default [1/3] "
                          "unless min_epochs is given")
    metric: dict[ProxyName, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_placement(self) -> "HalvingConfig":
        if self.at is not None and self.min_epochs is not None:
            raise ValueError("give either at (fractions of training) or min_epochs (geometric rungs), not both")
        return self

    def rungs(self, epochs: int) -> list[int]:
        """Rung epochs strictly below ``epochs``."""
        if self.min_epochs is None:
            return sorted({max(1, round(f * epochs)) for f in (self.at or DEFAULT_RUNGS)} - {epochs})
        out, budget = [], self.min_epochs
        while budget < epochs:
            out.append(budget)
            budget *= self.reduction_factor
        return out


class EarlyStopping(_Strict):
    gate: GateConfig | None = None
    halving: HalvingConfig | None = None


class Resources(_Strict):
    """What each trial gets, and how many run at once.

    ``device``: ``cpu``, ``cuda`` or ``auto`` (cuda when the Ray cluster has GPUs).
    ``gpus_per_trial`` is the GPU share Ray reserves per trial (fractional: 0.25 packs four
    trials on one GPU); null = 1 on cuda, 0 on cpu. Ray's GPU resources are logical, so a
    CPU trial may also reserve a share (a cluster started with ``num_gpus`` then runs that
    many shares at once)."""

    device: Literal["cpu", "cuda", "auto"] = "cpu"
    gpus_per_trial: float | None = Field(None, ge=0)
    cpus_per_trial: float = Field(1.0, gt=0)
    threads_per_trial: int = Field(1, ge=1)
    concurrency: int | None = Field(None, ge=1,
                                    description="trials at once; null = cluster CPUs / cpus_per_trial")
    max_retries: int = Field(3, ge=0, description="reruns of a trial whose worker or node died")


class AggregateConfig(_Strict):
    """How the proxies combine into the aggregate ranking, declared before any result is seen:
    the rank average of one metric per proxy (default: the metric each proxy declares as its
    most faithful, see ``funcsearch proxies``), weighted (default 1 each). A stability screen
    among the proxies (``vit_screen``) is not averaged: a function that diverges on it ranks
    below every function that does not."""

    metrics: dict[ProxyName, str] = Field(default_factory=dict)
    weights: dict[ProxyName, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(default_factory=dict)

    def rule(self) -> Any:
        from funcsearch.aggregate import AggregateRule

        return AggregateRule(dict(self.metrics), dict(self.weights))


class RaySettings(_Strict):
    address: str | None = Field(None, description="null = start a local Ray; 'auto' or ray://host:port")


class SearchConfig(_Strict):
    """A whole search (see module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    candidates: CandidatesConfig = Field(default_factory=CandidatesConfig)
    baselines: list[BaselineName] = Field(default_factory=lambda: list(BASELINES))
    function: FunctionDefaults = Field(default_factory=FunctionDefaults)
    proxies: dict[ProxyName, ProxySettings] = Field(min_length=1)
    seeds: list[Seed] = Field(min_length=1)
    sweep: SweepConfig | None = None
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    resources: Resources = Field(default_factory=Resources)
    aggregate: AggregateConfig = Field(default_factory=AggregateConfig)
    ray: RaySettings = Field(default_factory=RaySettings)
    output: str = Field("results", description="parent folder; results go to <output>/<name>/")
    reuse: bool = Field(True, description="copy finished trials with the same key from the other "
                                          "searches under the same output folder instead of rerunning")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds

    @field_validator("baselines")
    @classmethod
    def _distinct_baselines(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("baselines must be distinct")
        return names

    @model_validator(mode="after")
    def _consistent(self) -> "SearchConfig":
        halving = self.early_stopping.halving
        if self.sweep is not None and halving is not None and halving.enabled \
                and self.sweep.sampler != "grid":
            raise ValueError("early_stopping.halving needs every candidate known up front: "
                             "use sweep sampler grid, or disable halving")
        if not self.candidates.paths and not self.candidates.functions and not self.baselines:
            raise ValueError("nothing to train: give candidates or baselines")
        return self

    # -- derived --------------------------------------------------------------------------
    _doc: YamlDocument | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        """The file this config was read from (None if built in code)."""
        return self._doc.file if self._doc is not None else None

    def results_folder(self, output: str | Path | None = None) -> Path:
        """``<output>/<name>``."""
        return Path(output if output is not None else self.output) / self.name

    def error(self, message: str, *path: str | int) -> ConfigError:
        """A ``ConfigError`` at the YAML line of ``path`` (e.g. ``("proxies", name, "overrides")``)."""
        if self._doc is not None:
            return self._doc.error(message, path)
        return ConfigError(message, field=format_loc(path) or None)

    def hash(self) -> str:
        from funcsearch.search.keys import digest

        return digest(self.model_dump(mode="json"))


# -- loading ------------------------------------------------------------------------------

def parse_search_config(text: str, source: str = "<string>") -> SearchConfig:
    """Validate a search config given as YAML text (``source`` names it in errors)."""
    return _validate(parse_yaml(text, file=source))


def load_search_config(path: str | Path) -> SearchConfig:
    """Read and validate ``path``; every error names the file, line and field."""
    return _validate(load_yaml(path))


def _validate(doc: YamlDocument) -> SearchConfig:
    if not isinstance(doc.data, dict):
        raise ConfigError("a search config is a mapping (name:, proxies:, seeds:, ...)",
                          file=doc.file, line=1)
    config = validate_yaml(SearchConfig, doc)
    config._doc = doc
    check_vocabulary(config)
    return config


def check_vocabulary(config: SearchConfig) -> None:
    """Proxy and metric names against the proxy registry, each error at its own YAML line."""
    from funcsearch.proxies.registry import PROXIES

    known = ", ".join(PROXIES)
    for name in config.proxies:
        if name not in PROXIES:
            raise config.error(f"unknown proxy {name!r} (known: {known})", "proxies", name)
    early = config.early_stopping
    if early.gate is not None:
        for proxy, bounds in early.gate.require.items():
            if proxy not in config.proxies:
                raise config.error(f"proxy {proxy!r} is not trained by this search (it trains: "
                                   f"{', '.join(config.proxies)})", "early_stopping", "gate", "require", proxy)
            epoch = [m.name for m in PROXIES[proxy].epoch_metrics]
            for metric in bounds:
                if metric not in epoch:
                    raise config.error(f"{proxy} reports no per-epoch metric {metric!r} "
                                       f"(per-epoch: {', '.join(epoch)})",
                                       "early_stopping", "gate", "require", proxy, metric)
        for proxy in config.proxies:
            epoch = [m.name for m in PROXIES[proxy].epoch_metrics]
            if early.gate.min_loss_drop is not None and early.gate.loss_metric not in epoch:
                raise config.error(f"{proxy} reports no per-epoch metric {early.gate.loss_metric!r} "
                                   f"(per-epoch: {', '.join(epoch)})", "early_stopping", "gate", "loss_metric")
    if early.halving is not None:
        for proxy, metric in early.halving.metric.items():
            if proxy not in config.proxies:
                raise config.error(f"proxy {proxy!r} is not trained by this search",
                                   "early_stopping", "halving", "metric", proxy)
            epoch = [m.name for m in PROXIES[proxy].epoch_metrics]
            if metric not in epoch:
                raise config.error(f"{proxy} reports no per-epoch metric {metric!r} "
                                   f"(per-epoch: {', '.join(epoch)})", "early_stopping", "halving", "metric", proxy)
    for part in ("metrics", "weights"):
        for proxy in getattr(config.aggregate, part):
            if proxy not in config.proxies:
                raise config.error(f"proxy {proxy!r} is not trained by this search", "aggregate", part, proxy)
            if PROXIES[proxy].role == "screen":
                raise config.error(f"{proxy} is a stability screen: the aggregate reads only its "
                                   f"divergences, so it has no {part[:-1]} to set", "aggregate", part, proxy)
    for proxy, metric in config.aggregate.metrics.items():
        known = [m.name for m in PROXIES[proxy].metrics]
        if metric not in known:
            raise config.error(f"{proxy} reports no metric {metric!r} (it reports: {', '.join(known)})",
                               "aggregate", "metrics", proxy)
    if config.sweep is not None and config.sweep.proxies:
        for index, proxy in enumerate(config.sweep.proxies):
            if proxy not in config.proxies:
                raise config.error(f"sweep names proxy {proxy!r}, which the search does not train",
                                   "sweep", "proxies", index)
    resources = config.resources
    if resources.device == "cuda" and resources.gpus_per_trial == 0:
        raise config.error("device cuda needs gpus_per_trial > 0 (Ray hides the GPUs from a task "
                           "that reserves none)", "resources", "gpus_per_trial")
