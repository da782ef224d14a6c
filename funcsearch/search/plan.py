"""From a search config to the list of trials: functions x proxies x hyperparameters x seeds.

Vocabulary used by the whole search package:

- a **function** is a candidate or a baseline in the unified form (expression, shift,
  alpha init), see :class:`FunctionEntry`;
- a **unit** is one function on one proxy with one hyperparameter point (one point of a
  sweep, or the defaults); its seeds are its trials (:class:`Unit`);
- a **trial** is a unit with a seed, identified by its trial key (:mod:`.keys`);
- a **run** is one execution of a trial, possibly stopped early at an epoch budget
  (early stopping re-runs the same deterministic trial to longer budgets).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from funcsearch.errors import FuncsearchError, InputError
from funcsearch.expressions import ROOT_GRADIENT, has_root
from funcsearch.named import SHIFT_KINDS
from funcsearch.search.config import FUNCTION_FIELDS, SearchConfig
from funcsearch.search.keys import digest, trial_key, unit_key


@dataclass(frozen=True)
class FunctionEntry:
    """A function to train, in the unified form ``gamma * f(alpha*x + s) + beta``."""

    name: str
    expression: str | None          # None for layernorm / rmsnorm
    shift: str
    alpha_init: float
    is_baseline: bool
    family: str = ""
    names: tuple[str, ...] = ()
    description: str = ""
    fixed_shift: str | None = None  # a baseline's own shift rule (DyT: none); None = as set

    @property
    def is_norm(self) -> bool:
        return self.expression is None

    @property
    def sweeps_shift(self) -> bool:
        """Whether a swept or listed ``shift`` applies to this function."""
        return not self.is_norm and self.fixed_shift is None


@dataclass
class Unit:
    """One function on one proxy at one hyperparameter point; ``trials`` maps seed -> key."""

    key: str
    function: FunctionEntry
    proxy: str
    hyperparameters: dict[str, Any]
    overrides: dict[str, Any]       # what the search set (preset, overrides, sweep values)
    shift: str
    alpha_init: float
    config: dict[str, Any]          # resolved proxy config
    data: str | None
    trials: dict[int, str]
    primary_metric: str
    higher_is_better: bool
    device: str = "cpu"
    precision: str = "fp32"
    study: str | None = None        # Optuna study name when swept
    optuna_number: int | None = None

    @property
    def seeds(self) -> list[int]:
        return list(self.trials)

    @property
    def label(self) -> str:
        point = ",".join(f"{k}={v}" for k, v in self.hyperparameters.items())
        return f"{self.function.name} [{self.proxy}{' ' + point if point else ''}]"

    def spec(self, seed: int) -> dict[str, Any]:
        """The ``TrialSpec`` (as a dict) of this unit's trial with ``seed``.

        The worker gets the whole resolved config, so what runs is exactly what the trial
        key hashes (presets, overrides and sweep values included)."""
        return {
            "proxy": self.proxy,
            "function": {"name": self.function.name, "expression": self.function.expression,
                         "shift": self.shift, "alpha_init": self.alpha_init},
            "seed": seed,
            "overrides": dict(self.config),
            "data": self.data,
            "device": self.device,
            "precision": self.precision,
        }

    def plan_rows(self) -> list[dict[str, Any]]:
        return [{"trial_key": key, "unit_key": self.key, "candidate": self.function.name,
                 "is_baseline": self.function.is_baseline, "proxy": self.proxy, "seed": seed,
                 "hyperparameters": self.hyperparameters} for seed, key in self.trials.items()]


@dataclass
class FunctionSelection:
    """The functions of a search and what was left out (with the reason)."""

    functions: list[FunctionEntry]
    dropped: list[tuple[str, str]] = field(default_factory=list)   # (name, reason)


# -- functions -------------------------------------------------------------------------------

def select_functions(config: SearchConfig) -> FunctionSelection:
    """Baselines, then candidates (families and named/expressions), filtered and deduplicated."""
    from funcsearch.expressions import fingerprint
    from funcsearch.named import BASELINES, resolve_function

    functions: list[FunctionEntry] = []
    dropped: list[tuple[str, str]] = []
    seen: dict[tuple[str, str, float], str] = {}
    defaults = config.function

    def add(entry: FunctionEntry) -> None:
        ident = entry.expression and fingerprint(entry.expression)
        identity = (ident or f"norm:{entry.name}", entry.shift, entry.alpha_init)
        if identity in seen:
            dropped.append((entry.name, f"same function as {seen[identity]}"))
            return
        seen[identity] = entry.name
        functions.append(entry)

    for name in config.baselines:
        baseline = BASELINES[name]
        alpha = 0.5 if baseline.is_norm else defaults.alpha_init
        if baseline.shift is not None:  # its own rule: one variant, never renamed
            add(FunctionEntry(name, baseline.expression, baseline.shift, alpha, True,
                              family="baselines", names=(name,), fixed_shift=baseline.shift))
            continue
        for entry in shift_variants(FunctionEntry(name, baseline.expression, defaults.shifts[0], alpha,
                                                  True, family="baselines", names=(name,)), defaults.shifts):
            add(entry)

    candidates = _load_candidates(config)
    if config.candidates.only is not None:
        patterns = config.candidates.only
        candidates = [c for c in candidates
                      if any(fnmatch.fnmatchcase(n, p) for n in (c.name, *c.names) for p in patterns)]
    for index, text in enumerate(config.candidates.functions):
        try:
            name, expression = resolve_function(text)
        except FuncsearchError as exc:
            raise config.error(str(getattr(exc, "message", exc)), "candidates", "functions", index) from None
        if expression is None:
            raise config.error(f"{name} is a statistics-based norm: list it under baselines",
                               "candidates", "functions", index)
        candidates.append(FunctionEntry(name, expression, defaults.shifts[0], defaults.alpha_init,
                                        False, family="functions", names=(name,)))

    required = config.candidates.require
    profile = _profile(config) if required else None
    kept = []
    for entry in candidates:
        if profile is not None:
            reason = _property_reason(entry, required, profile)
            if reason:
                dropped.append((entry.name, reason))
                continue
        kept.append(entry)
    if config.candidates.limit is not None:
        for entry in kept[config.candidates.limit:]:
            dropped.append((entry.name, f"beyond candidates.limit ({config.candidates.limit})"))
        kept = kept[:config.candidates.limit]
    for entry in kept:
        for variant in shift_variants(entry, defaults.shifts):
            add(variant)
    if not functions:
        raise config.error("no function left to train (every candidate was filtered out)", "candidates")
    return FunctionSelection(functions, dropped)


def shift_variants(entry: FunctionEntry, shifts: list[str]) -> list[FunctionEntry]:
    """``entry`` once per shift variant; with several, each is named ``<name>|s=<shift>``."""
    if len(shifts) == 1:
        return [replace(entry, shift=shifts[0])]
    return [replace(entry, name=f"{entry.name}|s={shift}", shift=shift) for shift in shifts]


def _resolve_path(config: SearchConfig, text: str) -> Path:
    """A path as written, relative to the working directory, else to the config's folder."""
    path = Path(text)
    if path.is_absolute() or path.exists() or config.source is None:
        return path
    beside = Path(config.source).parent / path
    return beside if beside.exists() else path


def _load_candidates(config: SearchConfig) -> list[FunctionEntry]:
    if not config.candidates.paths:
        return []
    from funcsearch.candidates import load_candidates

    paths = []
    for index, text in enumerate(config.candidates.paths):
        path = _resolve_path(config, text)
        if not path.exists():
            raise config.error(f"no such file or folder: {text}", "candidates", "paths", index)
        paths.append(path)
    defaults = config.function
    return [FunctionEntry(c.name, c.expression, defaults.shifts[0], defaults.alpha_init, False,
                          family=c.family, names=tuple(c.names), description=c.description)
            for c in load_candidates(paths)]


def _profile(config: SearchConfig) -> Any:
    from funcsearch.properties import load_profile

    profile = config.candidates.profile
    return load_profile(_resolve_path(config, profile) if profile else None)


def _property_reason(entry: FunctionEntry, required: list[str], profile: Any) -> str:
    from funcsearch.properties import check_properties

    report = check_properties(entry.expression or entry.name, profile)
    failed = [f"{name}: {report.checks[name].detail}" for name in required if not report.passed[name]]
    if not report.compiles:
        failed.append(f"compile: {report.compile_check.reason if report.compile_check else '?'}")
    return "; ".join(failed)


# -- units -----------------------------------------------------------------------------------

def proxy_info(proxy: str) -> Any:
    """The proxy's registry entry (imports torch, so only when planning)."""
    from funcsearch.proxies.registry import get_proxy

    return get_proxy(proxy, field=None)


def given_overrides(config: SearchConfig, proxy: str, extra: dict[str, Any]) -> dict[str, Any]:
    """What the search sets on ``proxy``: its preset, then its overrides, then ``extra``."""
    settings = config.proxies[proxy]
    preset: dict[str, Any] = {}
    if settings.preset:
        from funcsearch.presets import load_preset

        base = Path(config.source).parent if config.source else None
        try:
            preset = load_preset(settings.preset, proxy, base)
        except InputError as exc:
            if exc.file:
                raise
            raise config.error(exc.message, "proxies", proxy, "preset") from None
    return {**preset, **settings.overrides, **extra}


def resolve_proxy_config(config: SearchConfig, proxy: str, extra: dict[str, Any],
                         where: tuple[str | int, ...]) -> dict[str, Any]:
    """The proxy's full config after the search's preset, overrides and ``extra`` (sweep values)."""
    overrides = given_overrides(config, proxy, extra)
    try:
        return proxy_info(proxy).config_class.from_overrides(overrides).model_dump(mode="json")
    except InputError as exc:
        key = exc.field
        if key in extra:
            path: tuple[str | int, ...] = (*where, key)
        elif key is not None:
            path = ("proxies", proxy, "overrides", key)
        else:
            path = ("proxies", proxy, "overrides")
        raise config.error(exc.message, *path) from None


def check_data(config: SearchConfig) -> None:
    """Every ``proxies.<p>.data`` exists and its proxy can load it: checked before any trial
    starts, the error at that line (not after every trial has failed)."""
    for proxy, settings in config.proxies.items():
        if not settings.data:
            continue
        path = _resolve_path(config, settings.data)
        if not path.exists():
            raise config.error(f"no such file or folder: {settings.data}", "proxies", proxy, "data")
        try:
            proxy_info(proxy).load_data(str(path.resolve()))
        except InputError as exc:
            raise config.error(str(exc), "proxies", proxy, "data") from None


def check_shared_tasks(config: SearchConfig) -> None:
    """No two proxies of the search train the same runs: a proxy that is another's task with
    other defaults (``vit_screen`` and ``vit``) set to the same resolved settings would give
    both the same trial keys, so the search refuses it at the second proxy's line."""
    seen: dict[tuple[str, str], str] = {}
    for proxy, settings in config.proxies.items():
        resolved = resolve_proxy_config(config, proxy, {}, ("proxies", proxy))
        same = digest({"config": resolved, "data": settings.data, "precision": settings.precision})
        task = proxy_info(proxy).task_name
        other = seen.setdefault((task, same), proxy)
        if other != proxy:
            raise config.error(f"trains the same runs as proxies.{other} (both are the {task} task "
                               "with the same settings): keep one of them", "proxies", proxy)


def check_sweep_params(config: SearchConfig) -> None:
    """Every swept name is a unified-form field or a setting of each swept proxy."""
    if config.sweep is None:
        return
    for proxy in sweep_proxies(config):
        fields = proxy_info(proxy).config_class.model_fields
        for name in config.sweep.params:
            if name not in FUNCTION_FIELDS and name not in fields:
                raise config.error(f"{name!r} is neither {' nor '.join(FUNCTION_FIELDS)} "
                                   f"nor a {proxy} setting", "sweep", "params", name)
        if "shift" in config.sweep.params:
            for value in config.sweep.params["shift"].values or []:
                if value not in SHIFT_KINDS:
                    raise config.error(f"shift must be one of {', '.join(SHIFT_KINDS)} (got {value!r})",
                                       "sweep", "params", "shift")


def sweep_proxies(config: SearchConfig) -> list[str]:
    if config.sweep is None:
        return []
    chosen = config.sweep.proxies or list(config.proxies)
    for proxy in chosen:
        if proxy not in config.proxies:
            raise config.error(f"sweep names proxy {proxy!r}, which the search does not train",
                               "sweep", "proxies")
    return chosen


def make_unit(config: SearchConfig, function: FunctionEntry, proxy: str,
              hyperparameters: dict[str, Any], device: str = "cpu") -> Unit:
    """The unit of ``function`` on ``proxy`` with swept ``hyperparameters`` applied, run on
    ``device`` (``cpu`` or ``cuda``: resolved by the runner) in the proxy's precision."""
    point = dict(hyperparameters)
    shift, alpha = function.shift, function.alpha_init
    if not function.is_norm:
        shift = point.get("shift", shift) if function.sweeps_shift else str(function.fixed_shift)
        alpha = float(point.get("alpha_init", alpha))
    applied = {k: v for k, v in point.items() if k not in FUNCTION_FIELDS}
    if function.is_norm:  # the unified-form fields mean nothing to LayerNorm / RMSNorm
        point = applied
    elif not function.sweeps_shift:
        point.pop("shift", None)
    resolved = resolve_proxy_config(config, proxy, applied, ("sweep", "params"))
    settings = config.proxies[proxy]
    data = str(_resolve_path(config, settings.data).resolve()) if settings.data else None
    info = proxy_info(proxy)
    common = dict(name=function.name, expression=function.expression, shift=shift,
                  alpha_init=alpha, proxy=info.task_name, resolved_config=resolved, data=data,
                  device=device, precision=settings.precision,
                  root_gradient=ROOT_GRADIENT if function.expression and has_root(function.expression) else None)
    trials = {seed: trial_key(seed=seed, **common) for seed in config.seeds}
    return Unit(
        key=unit_key(**common), function=function, proxy=proxy, hyperparameters=point,
        overrides=given_overrides(config, proxy, applied), shift=shift, alpha_init=alpha,
        config=resolved, data=data, trials=trials, primary_metric=info.primary_metric,
        higher_is_better=info.higher_is_better, device=device, precision=settings.precision,
    )


def study_name(config: SearchConfig, function: FunctionEntry, proxy: str) -> str:
    """Optuna study of one function on one proxy (changes when the sweep or proxy config does)."""
    assert config.sweep is not None
    tag = digest({"sweep": config.sweep.model_dump(mode="json"),
                  "proxy": config.proxies[proxy].model_dump(mode="json"),
                  "seeds": config.seeds, "function": [function.expression or function.name,
                                                      function.shift, function.alpha_init]}, 10)
    return f"{config.name}|{function.name}|{proxy}|{tag}"


def epoch_metric(config: SearchConfig, proxy: str) -> tuple[str, bool]:
    """Per-epoch metric (and its direction, as the proxy declares it) that early stopping
    ranks on: the config's ``halving.metric`` for the proxy, else the proxy's halving metric."""
    info = proxy_info(proxy)
    halving = config.early_stopping.halving
    name = halving.metric.get(proxy, info.halving_metric) if halving is not None else info.halving_metric
    return name, info.metric(name).higher_is_better


def hyperparameters_json(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)
