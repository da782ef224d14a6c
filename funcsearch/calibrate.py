"""Proxy calibration: search proxy recipes for the one whose ranking best matches full scale.

``funcsearch calibrate CONFIG`` runs an Optuna study over proxy recipes (any knob of the
proxy's config). Each recipe is evaluated by running reference functions through the
search engine on Ray (a normal search, stored and resumable like any other), then
measuring its fidelity against the reference set (:mod:`funcsearch.fidelity`):

    objective = 0.5 * Spearman + 0.5 * (study failure patterns reproduced / studies)

on the *calibration* studies only, subject to a mean trial time of at most
``max_trial_seconds`` (an Optuna constraint). The first recipe evaluated is always the
proxy's default, so the default's fidelity is measured by the same yardstick.

Hold-out discipline: the best recipe, and the default, are then run on the functions of
the *hold-out* studies, which no recipe was chosen on; their fidelity there is reported
separately. Every figure says which split it comes from.

Layout of ``results/<name>/``::

    optuna.journal          the Optuna study (resumable)
    recipes.parquet         one row per recipe and split: parameters, fidelity, seconds per trial
    recipes/<recipe>/       the search of each recipe (the usual results store)
    calibration.md          the report
and the preset ``search_configs/proxies/<proxy>_calibrated.yaml`` (or ``preset_out``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from funcsearch.errors import ConfigError
from funcsearch.fidelity import FidelityReport, measure_fidelity
from funcsearch.named import ShiftKind
from funcsearch.references import ReferenceSet, load_reference
from funcsearch.yamlio import load_yaml, validate_yaml

Scalar = float | int | str | bool | None


class RecipeParam(BaseModel):
    """A recipe knob: a list of values (categorical) or a numeric range."""

    model_config = ConfigDict(extra="forbid")

    values: list[Scalar] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> "RecipeParam":
        if self.values is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either values or low/high, not both")
            if not self.values:
                raise ValueError("values must not be empty")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("give values: [...] or low < high")
        elif self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class CalibrationConfig(BaseModel):
    """A calibration (see module docstring); read from YAML with file:line: field errors."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    proxy: str = Field(description="a registered proxy")
    reference: str = Field("paper_property_tables.csv", description="shipped set name or CSV path")
    calibrate_on: list[str] = Field(min_length=1, description="reference studies used to choose")
    hold_out: list[str] = Field(default_factory=list, description="studies only used to check")
    functions_per_study: int | None = Field(
        None, ge=2, description="subset per study (all failures first, then spread); null = all")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    hold_out_seeds: list[int] | None = Field(None, description="null = seeds")
    n_recipes: int = Field(10, ge=1, description="recipes evaluated in total (default recipe included)")
    max_trial_seconds: float = Field(60.0, gt=0, description="constraint on mean seconds per trial")
    shift: ShiftKind = "none"
    alpha_init: float = Field(0.5, gt=0)
    base: dict[str, Any] = Field(default_factory=dict, description="fixed overrides of every recipe")
    space: dict[str, RecipeParam] = Field(min_length=1)
    start_with: list[dict[str, Scalar]] = Field(
        default_factory=list, description="recipes (points of the space) evaluated right after the "
                                          "default, e.g. from an earlier probe; the sampler learns from them")
    sampler_seed: int = 0
    concurrency: int | None = None
    address: str | None = None
    output: str = "results"
    preset_out: str | None = Field(None, description="null = search_configs/proxies/<proxy>_calibrated.yaml")

    @model_validator(mode="after")
    def _disjoint(self) -> "CalibrationConfig":
        overlap = set(self.calibrate_on) & set(self.hold_out)
        if overlap:
            raise ValueError(f"studies {sorted(overlap)} are both calibrated on and held out")
        return self

    def folder(self) -> Path:
        return Path(self.output) / self.name


def load_calibration_config(path: str | Path) -> CalibrationConfig:
    """Read and validate a calibration YAML file."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("a calibration config is a mapping (name:, proxy:, space:, ...)", file=str(path), line=1)
    config = validate_yaml(CalibrationConfig, doc)
    from funcsearch.proxies import PROXIES

    if config.proxy not in PROXIES:
        raise doc.error(f"unknown proxy {config.proxy!r} (known: {', '.join(PROXIES)})", ("proxy",))
    known = PROXIES[config.proxy].config_class.model_fields
    for key in list(config.space) + list(config.base):
        if key not in known:
            raise doc.error(f"unknown {config.proxy} setting {key!r}",
                            ("space" if key in config.space else "base", key))
    for index, point in enumerate(config.start_with):
        for key, value in point.items():
            problem = _outside_space(config, key, value)
            if problem:
                raise doc.error(problem, ("start_with", index, key))
    return config


def _outside_space(config: CalibrationConfig, key: str, value: Any) -> str | None:
    """Why ``key: value`` is not a point of the calibration space (None when it is)."""
    param = config.space.get(key)
    if param is None:
        return f"{key!r} is not searched (space has {', '.join(config.space)})"
    if param.values is not None:
        return None if value in param.values else f"{value!r} is not one of {param.values}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number"
    if not param.low <= value <= param.high:
        return f"{value} is outside [{param.low:g}, {param.high:g}]"
    return None


# -- which functions ---------------------------------------------------------------------------

def select_reference_functions(reference: ReferenceSet, studies: list[str],
                               per_study: int | None) -> pd.DataFrame:
    """Reference rows (one per fingerprint) of ``studies``; with ``per_study``, a subset per
    study: half failures at most, then working functions spread from best to worst."""
    table = reference.table[reference.table["study"].isin(studies)]
    unknown = sorted(set(studies) - set(reference.table["study"]))
    if unknown:
        raise ConfigError(f"unknown studies {unknown}; the reference has "
                          f"{sorted(set(reference.table['study']))}", field="studies")
    chosen = []
    for study in studies:
        rows = table[table["study"] == study].drop_duplicates("fingerprint")
        if per_study is None or len(rows) <= per_study:
            chosen.append(rows)
            continue
        failed = rows[rows["failed"]]
        working = rows[~rows["failed"]].sort_values("value", ascending=not reference.higher_is_better)
        n_failed = min(len(failed), per_study // 2) if len(working) else min(len(failed), per_study)
        n_working = per_study - n_failed
        picks = np.unique(np.linspace(0, len(working) - 1, n_working).round().astype(int)) if n_working else []
        chosen.append(pd.concat([failed.iloc[np.linspace(0, len(failed) - 1, n_failed).round().astype(int)]
                                 if n_failed else failed.iloc[:0], working.iloc[list(picks)]]))
    return pd.concat(chosen).drop_duplicates("fingerprint")


# -- one recipe -------------------------------------------------------------------------------

def recipe_search_config(config: CalibrationConfig, overrides: dict[str, Any], functions: list[str],
                         seeds: list[int], label: str) -> Any:
    """The search that evaluates one recipe on some functions."""
    from funcsearch.search.config import (CandidatesConfig, FunctionDefaults, ProxySettings,
                                          RaySettings, Resources, SearchConfig)
    from funcsearch.search.keys import digest

    recipe = digest({"proxy": config.proxy, "overrides": overrides})[:10]
    return SearchConfig(
        name=f"{label}-{recipe}",
        description=f"calibration {config.name}: recipe {json.dumps(overrides, sort_keys=True)}",
        candidates=CandidatesConfig(functions=functions, require=[]),
        baselines=[],
        function=FunctionDefaults(shift=config.shift, alpha_init=config.alpha_init),
        proxies={config.proxy: ProxySettings(overrides=overrides)},
        seeds=seeds,
        resources=Resources(concurrency=config.concurrency),
        ray=RaySettings(address=config.address),
        output=str(config.folder() / "recipes"),
    ), recipe


def evaluate_recipe(config: CalibrationConfig, reference: ReferenceSet, overrides: dict[str, Any],
                    functions: pd.DataFrame, studies: list[str], seeds: list[int], label: str,
                    console: Console, trial_fn: Any = None) -> tuple[FidelityReport, dict[str, Any]]:
    """Run a recipe's search (resumable) and measure its fidelity on ``studies``."""
    from funcsearch.proxies import PROXIES
    from funcsearch.search.runner import run_search

    PROXIES[config.proxy].config_class.from_overrides(overrides)  # ConfigError for impossible recipes
    search, recipe = recipe_search_config(config, overrides, list(functions["expression"]), seeds, label)
    outcome = run_search(search, console=console, live=False, write_leaderboard=False, trial_fn=trial_fn)
    frame = outcome.frame
    report = measure_fidelity(frame, reference, proxy=config.proxy, studies=studies, bootstrap=300)
    finished = frame[frame["status"].isin(["ok", "diverged"])]
    # CPU seconds when recorded (independent of machine load), else wall time
    cost = finished["cpu_time_s"].fillna(finished["wall_time_s"]) if "cpu_time_s" in finished else finished["wall_time_s"]
    seconds = float(cost.mean()) if len(finished) else float("nan")
    row = {"recipe": recipe, "label": label, "split": label.split("-")[0], "overrides": json.dumps(overrides, sort_keys=True),
           "trials": int(len(frame)), "seconds_per_trial": seconds, **report.summary(),
           **end_regime(finished), "objective": objective(report)}
    return report, row


def end_regime(frame: pd.DataFrame) -> dict[str, float]:
    """The recipe's regime, a diagnostic beside its fidelity: the mean over trials of the share
    of |u| > 1 and > 2 and the p99 of |u| at the last step (all point-wise sites pooled); NaN
    for trials stored before the regime was recorded. Full scale sits near 32% / 5% / 2.6."""
    from funcsearch.search.store import mean_end_regime

    return {f"u_end_{k}": v for k, v in mean_end_regime(frame).items()}


def objective(report: FidelityReport) -> float:
    """0.5 * Spearman (0 when undefined) + 0.5 * share of study failure patterns reproduced."""
    spearman = report.spearman.estimate
    spearman = 0.0 if math.isnan(spearman) else spearman
    share = report.patterns_reproduced / len(report.patterns) if report.patterns else 0.0
    return 0.5 * spearman + 0.5 * share


# -- the study ---------------------------------------------------------------------------------

def _suggest(trial: Any, name: str, param: RecipeParam) -> Any:
    if param.values is not None:
        # Optuna's categorical choices must be None/bool/int/float/str: they are.
        return trial.suggest_categorical(name, param.values)
    if param.integer:
        return trial.suggest_int(name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(name, float(param.low), float(param.high), log=param.log)


def _distributions(config: CalibrationConfig) -> dict[str, Any]:
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for name, param in config.space.items():
        if param.values is not None:
            out[name] = d.CategoricalDistribution(param.values)
        elif param.integer:
            out[name] = d.IntDistribution(int(param.low), int(param.high), log=param.log)
        else:
            out[name] = d.FloatDistribution(float(param.low), float(param.high), log=param.log)
    return out


def _default_point(config: CalibrationConfig) -> dict[str, Any]:
    """The proxy's default value of every searched knob (enqueued as the first recipe)."""
    from funcsearch.proxies import PROXIES

    defaults = PROXIES[config.proxy].config_class.from_overrides(config.base).model_dump()
    point = {}
    for name, param in config.space.items():
        value = defaults[name]
        if param.values is not None and value not in param.values:
            continue  # the default lies outside the space: the sampler picks that knob
        if param.values is None and not (param.low <= value <= param.high):
            continue
        point[name] = value
    return point


def calibrate(config: CalibrationConfig | str | Path, *, console: Console | None = None,
              trial_fn: Any = None, write_preset: bool = True) -> pd.DataFrame:
    """Run (or resume) a calibration; returns the table of evaluated recipes."""
    import optuna
    import ray
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not isinstance(config, CalibrationConfig):
        config = load_calibration_config(config)
    console = console or Console()
    reference = load_reference(config.reference)
    if reference.shift is not None and reference.shift != config.shift:
        raise ConfigError(f"the reference {Path(reference.source).name} was run with shift={reference.shift}; "
                          f"a calibration with shift={config.shift} would compare different functions",
                          field="shift")
    calibration_functions = select_reference_functions(reference, config.calibrate_on, config.functions_per_study)
    folder = config.folder()
    folder.mkdir(parents=True, exist_ok=True)
    table_path = folder / "recipes.parquet"
    rows = pd.read_parquet(table_path).to_dict("records") if table_path.exists() else []

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    # The time limit is an Optuna constraint (Trial.set_constraint): infeasible recipes
    # still inform the sampler but are never chosen as best.
    sampler = optuna.samplers.TPESampler(seed=config.sampler_seed, n_startup_trials=min(5, config.n_recipes))
    study = optuna.create_study(study_name=config.name, storage=storage, direction="maximize",
                                sampler=sampler, load_if_exists=True)
    # A killed run leaves RUNNING trials: fail them and ask again for their points (their
    # finished search trials are reused from the store, nothing is trained twice).
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(stale.params, skip_if_exists=False)

    started_ray = False
    if not ray.is_initialized() and not config.address:
        import os

        ray.init(num_cpus=config.concurrency or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False)
        started_ray = True
    try:
        def distinct() -> int:
            return len({r["recipe"] for r in rows if r.get("split") == "calibration" and r.get("recipe")})

        if not any(r.get("default") for r in rows if r.get("split") == "calibration"):
            # The proxy's default recipe (base overrides only) is always measured first, by the
            # same yardstick; the sampler learns from it when it lies inside the space.
            console.print(f"[bold]recipe 1/{config.n_recipes}[/] (the default recipe)")
            _, row = evaluate_recipe(config, reference, dict(config.base), calibration_functions,
                                     config.calibrate_on, config.seeds, "calibration", console, trial_fn)
            row.update({"optuna_trial": -1, "default": True,
                        "feasible": row["seconds_per_trial"] <= config.max_trial_seconds})
            rows.append(row)
            _save_rows(rows, table_path)
            _print_figures(console, row)
            point = _default_point(config)
            if len(point) == len(config.space):
                study.add_trial(optuna.trial.create_trial(
                    params=point, distributions=_distributions(config), value=row["objective"],
                    user_attrs={"seconds_per_trial": row["seconds_per_trial"], "default": True}))

        for point in config.start_with:  # known-good guesses first; skipped once evaluated (resume)
            study.enqueue_trial(point, skip_if_exists=True)

        done, attempts = distinct(), 0
        while done < config.n_recipes and attempts < 4 * config.n_recipes:  # a small space can run out
            attempts += 1
            trial = study.ask()
            params = {name: _suggest(trial, name, param) for name, param in config.space.items()}
            overrides = {**config.base, **params}
            is_default = False
            console.print(f"[bold]recipe {done + 1}/{config.n_recipes}[/] "
                          f"{'(default) ' if is_default else ''}{json.dumps(params, sort_keys=True)}")
            try:
                report, row = evaluate_recipe(config, reference, overrides, calibration_functions,
                                              config.calibrate_on, config.seeds, "calibration",
                                              console, trial_fn)
            except (ConfigError, ValueError) as exc:  # impossible recipe, or nothing finished
                console.print(f"  [yellow]recipe rejected:[/] {exc}")
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                rows.append({"recipe": "", "label": "calibration", "split": "calibration",
                             "overrides": json.dumps(overrides, sort_keys=True), "error": str(exc),
                             "optuna_trial": trial.number})
                _save_rows(rows, table_path)
                continue
            trial.set_user_attr("seconds_per_trial", row["seconds_per_trial"])
            trial.set_constraint("seconds_per_trial", row["seconds_per_trial"] - config.max_trial_seconds)
            row.update({"optuna_trial": trial.number, "default": is_default,
                        "feasible": row["seconds_per_trial"] <= config.max_trial_seconds})
            study.tell(trial, row["objective"])
            same = [r for r in rows if r.get("recipe") == row["recipe"] and r.get("split") == "calibration"]
            row["default"] = row["default"] or any(bool(r.get("default")) for r in same)
            rows = [r for r in rows if not (r.get("recipe") == row["recipe"] and r.get("split") == "calibration")]
            rows.append(row)
            _save_rows(rows, table_path)
            _print_figures(console, row)
            done = distinct()

        table = pd.DataFrame(rows)
        calibration = _calibration_recipes(table)
        if config.hold_out and len(calibration):
            hold_functions = select_reference_functions(reference, config.hold_out, config.functions_per_study)
            hold_seeds = config.hold_out_seeds or config.seeds
            candidates = [_best(calibration)]
            default = calibration[calibration.get("default", False) == True]  # noqa: E712
            if len(default):
                candidates.append(default.iloc[0])
            for recipe_row in {r["recipe"]: r for r in candidates}.values():
                overrides = json.loads(recipe_row["overrides"])
                console.print(f"[bold]hold-out[/] of recipe {recipe_row['recipe']}"
                              f"{' (default)' if recipe_row.get('default') else ''}")
                _, row = evaluate_recipe(config, reference, overrides, hold_functions, config.hold_out,
                                         hold_seeds, "holdout", console, trial_fn)
                row["default"] = bool(recipe_row.get("default"))
                row["feasible"] = row["seconds_per_trial"] <= config.max_trial_seconds
                rows = [r for r in rows if not (r.get("recipe") == row["recipe"] and r.get("split") == "holdout")]
                rows.append(row)
                _save_rows(rows, table_path)
                _print_figures(console, row)
        table = pd.DataFrame(rows)
    finally:
        if started_ray:
            ray.shutdown()
    write_calibration_outputs(config, table, write_preset=write_preset)
    return table


def write_calibration_outputs(config: CalibrationConfig, table: pd.DataFrame, *, write_preset: bool = True) -> None:
    """calibration.png, calibration.md and (optionally) the preset, from the recipes table."""
    folder = config.folder()
    calibration = _calibration_recipes(table)
    if len(calibration):
        from funcsearch.plots.calibration import plot_calibration

        plot_calibration(table, folder / "calibration.png", title=f"{config.name} ({config.proxy}): "
                         f"{len(calibration)} recipes", max_trial_seconds=config.max_trial_seconds,
                         chosen=_best(calibration)["recipe"])
    (folder / "calibration.md").write_text(calibration_report(config, table))
    if write_preset and len(calibration):
        write_preset_file(config, table)


def _short(overrides: str) -> str:
    """Overrides JSON with floats to 3 significant digits (for tables)."""
    values = json.loads(overrides)
    return json.dumps({k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in values.items()},
                      sort_keys=True)


def _print_figures(console: Console, row: dict[str, Any]) -> None:
    console.print(f"  objective {row['objective']:.3f}  Spearman {row['spearman']:+.2f}  patterns "
                  f"{row['patterns_reproduced']}/{row['patterns_total']}  failure agreement "
                  f"{row['failure_agreement']:.2f}  {row['seconds_per_trial']:.1f} CPU s/trial")


def _save_rows(rows: list[dict[str, Any]], path: Path) -> None:
    frame = pd.DataFrame(rows)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def _calibration_recipes(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of recipes evaluated on the calibration split (rejected recipes left out)."""
    if table.empty:
        return table
    return table[(table["split"] == "calibration") & table["recipe"].astype(bool)]


def _best(calibration: pd.DataFrame) -> pd.Series:
    feasible = calibration[calibration["feasible"] == True]  # noqa: E712
    pool = feasible if len(feasible) else calibration
    return pool.sort_values(["objective", "seconds_per_trial"], ascending=[False, True]).iloc[0]


def _figures(row: pd.Series | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = ("spearman", "spearman_low", "spearman_high", "kendall", "top_k_overlap", "failure_agreement",
            "patterns_reproduced", "patterns_total", "n_shared", "n_seeds", "seconds_per_trial", "studies")
    return {k: (None if isinstance(row[k], float) and math.isnan(row[k]) else
                (float(row[k]) if isinstance(row[k], (float, np.floating)) else
                 (int(row[k]) if isinstance(row[k], (int, np.integer)) else row[k]))) for k in keys if k in row}


def write_preset_file(config: CalibrationConfig, table: pd.DataFrame) -> Path:
    """Save the best feasible recipe as a proxy preset YAML, with its fidelity figures."""
    import yaml

    calibration = _calibration_recipes(table)
    best = _best(calibration)
    hold = table[(table["split"] == "holdout") & (table["recipe"] == best["recipe"])]
    path = Path(config.preset_out or f"search_configs/proxies/{config.proxy}_calibrated.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "proxy": config.proxy,
        "description": f"best recipe of calibration '{config.name}' ({len(calibration)} recipes tried)",
        "overrides": json.loads(best["overrides"]),
        "fidelity": {
            "reference": config.reference,
            "calibration": _figures(best),
            "hold_out": _figures(hold.iloc[0]) if len(hold) else None,
        },
    }
    header = (f"# Proxy preset written by `funcsearch calibrate` ({config.name}).\n"
              f"# Use it in a search config: proxies: {{{config.proxy}: {{preset: {path.stem}}}}}\n"
              "# 'calibration' figures are in-sample (the recipe was chosen on them); 'hold_out'\n"
              "# figures come from studies no recipe was chosen on.\n")
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return path


def calibration_report(config: CalibrationConfig, table: pd.DataFrame) -> str:
    """Markdown: every recipe tried with its figures, then the hold-out comparison."""
    lines = [f"# Calibration `{config.name}` ({config.proxy})", "",
             f"Reference: `{config.reference}`. Calibrated on: {', '.join(config.calibrate_on)}; "
             f"held out: {', '.join(config.hold_out) or 'none'}. Seeds: {config.seeds}.",
             f"Objective: 0.5 * Spearman + 0.5 * share of study failure patterns reproduced; "
             f"constraint: at most {config.max_trial_seconds:g} CPU s per trial (mean).", ""]
    if table.empty:
        return "\n".join(lines + ["No recipe evaluated yet."])
    valid = table[table["recipe"].astype(bool)] if "recipe" in table else table
    calibration = valid[valid["split"] == "calibration"]
    if len(calibration):
        best = _best(calibration)
        how = ("highest objective among recipes within the time limit" if best.get("feasible") == True  # noqa: E712
               else "highest objective; no recipe stayed within the time limit")
        lines += [f"Recipes tried: {len(calibration)}. Chosen: `{best['recipe']}` ({how}).", "",
                  "![fidelity against cost of every recipe](calibration.png)", ""]
    for split in ("calibration", "holdout"):
        part = valid[valid["split"] == split]
        if part.empty:
            continue
        lines += [f"## {'Calibration split (in-sample)' if split == 'calibration' else 'Hold-out split'}", "",
                  "| recipe | default | overrides | Spearman [95%] | Kendall | patterns | failure agr. | s/trial | objective |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for _, r in part.sort_values("objective", ascending=False).iterrows():
            interval = ("" if math.isnan(r["spearman_low"]) else
                        f" [{r['spearman_low']:+.2f}, {r['spearman_high']:+.2f}]")
            lines.append(
                f"| {r['recipe']} | {'yes' if r.get('default') else ''} | `{_short(r['overrides'])}` | "
                f"{r['spearman']:+.2f}{interval} | {r['kendall']:+.2f} | "
                f"{int(r['patterns_reproduced'])}/{int(r['patterns_total'])} | {r['failure_agreement']:.2f} | "
                f"{r['seconds_per_trial']:.1f} | {r['objective']:.3f} |")
        lines.append("")
    lines += ["Spearman intervals are a bootstrap over seeds (none with a single seed). Patterns: studies "
              "whose failure pattern the proxy reproduces. Failure agreement: share of reference failures "
              "the proxy caught plus proxy failures that are reference failures, over both.", ""]
    errors = table[~table["recipe"].astype(bool)] if "recipe" in table else table.iloc[:0]
    if len(errors):
        lines += ["## Rejected recipes", ""] + [f"- `{r['overrides']}`: {r.get('error')}" for _, r in errors.iterrows()]
    return "\n".join(lines) + "\n"
