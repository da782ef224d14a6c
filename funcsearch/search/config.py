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
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, field_validator,
                      model_validator)

from funcsearch.errors import ConfigError
from funcsearch.yamlio import YamlDocument, format_loc, load_yaml, parse_yaml, validate_yaml

PROPERTY_NAMES = ("zero_centred", "bounded", "centre_sensitive", "monotonic")
BASELINE_NAMES = ("layernorm", "rmsnorm", "dyt", "derf")
PROXY_NAMES = ("vit", "dit")
FUNCTION_FIELDS = ("alpha_init", "shift")  # sweepable fields of the unified form itself

PropertyName = Literal["zero_centred", "bounded", "centre_sensitive", "monotonic"]
BaselineName = Literal["layernorm", "rmsnorm", "dyt", "derf"]
ProxyName = Literal["vit", "dit"]


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


ShiftName = Literal["scalar", "vector", "none"]


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


class HalvingConfig(_Strict):
    """Successive halving across candidates: rank at small budgets, continue the best fraction.

    Rungs sit at ``min_epochs * reduction_factor**k`` epochs (below the proxy's epochs).
    At each rung every surviving candidate (all its seeds) is ranked on ``metric`` (per
    proxy; default the proxy's primary metric) averaged over seeds and the best
    ``1/reduction_factor`` (at least one) continue; baselines always continue.
    """

    enabled: bool = True
    min_epochs: int = Field(1, ge=1)
    reduction_factor: int = Field(3, ge=2)
    metric: dict[ProxyName, str] = Field(default_factory=dict)

    def rungs(self, epochs: int) -> list[int]:
        """Rung epochs strictly below ``epochs``."""
        out, budget = [], self.min_epochs
        while budget < epochs:
            out.append(budget)
            budget *= self.reduction_factor
        return out


class EarlyStopping(_Strict):
    gate: GateConfig | None = None
    halving: HalvingConfig | None = None


class Resources(_Strict):
    """What each trial gets, and how many run at once."""

    cpus_per_trial: float = Field(1.0, gt=0)
    threads_per_trial: int = Field(1, ge=1)
    concurrency: int | None = Field(None, ge=1,
                                    description="trials at once; null = cluster CPUs / cpus_per_trial")
    max_retries: int = Field(3, ge=0, description="reruns of a trial whose worker or node died")


class RaySettings(_Strict):
    address: str | None = Field(None, description="null = start a local Ray; 'auto' or ray://host:port")


class SearchConfig(_Strict):
    """A whole search (see module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    candidates: CandidatesConfig = Field(default_factory=CandidatesConfig)
    baselines: list[BaselineName] = Field(default_factory=lambda: list(BASELINE_NAMES))
    function: FunctionDefaults = Field(default_factory=FunctionDefaults)
    proxies: dict[ProxyName, ProxySettings] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    sweep: SweepConfig | None = None
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    resources: Resources = Field(default_factory=Resources)
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
        """A ``ConfigError`` at the YAML line of ``path`` (e.g. ``"proxies", "vit", "overrides"``)."""
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
    return config
