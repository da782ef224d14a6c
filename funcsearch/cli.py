"""The `funcsearch` command: thin typer wrappers over library functions.

Every command catches `FuncsearchError` and prints it as one red line (exit code 2):
users see what is wrong and where, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from funcsearch.errors import FuncsearchError, Terminated

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Search point-wise functions that replace normalization layers in Transformers.",
)
plot_app = typer.Typer(no_args_is_help=True, help="Draw function shapes and leaderboards.")
app.add_typer(plot_app, name="plot")

console = Console()
err_console = Console(stderr=True)


def _wide() -> Console:
    """The console for tables: the terminal's own width, or (a pipe, a file) ``$COLUMNS`` or
    100 columns, so a capture looks like a terminal of that width."""
    import os

    if console.is_terminal:
        return console
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 20 else 100)


def _print(parts: list[object]) -> None:
    wide = _wide()
    for part in parts:
        wide.print(part)


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    from funcsearch.errors import InputError

    if fmt not in allowed:
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(allowed)})", field="--format")


def _version_callback(value: bool) -> None:
    if value:
        from funcsearch import __version__

        typer.echo(f"funcsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Search point-wise functions that replace normalization layers in Transformers."""


def _emit(text: str, out: str | None) -> None:
    """Print a command's text output, or write it to ``out``."""
    if out is None:
        sys.stdout.write(text)
        return
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(text)
    console.print(f"wrote {out}")


# --- commands are added below, one small function each --------------------------------


@app.command("train")
def train_command(
    proxy: str = typer.Option(..., "--proxy", help="Proxy task (a registered proxy's name)."),
    fn: str = typer.Option(..., "--fn", help="Function in every norm site: a name (erf, derf, dyt, "
                           "layernorm, rmsnorm, ...) or an expression in x, e.g. 'erf(x+2)'."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**63 - 1, help="Trial seed (weights, data order, noise)."),
    settings: list[str] = typer.Option([], "--set", help="Config override key=value (repeatable); "
                                       "values read as YAML, e.g. --set lr=3e-3 --set ema_decay=null."),
    data: str = typer.Option(None, "--data", help="Local dataset for the proxy (default: its embedded "
                             "dataset; see `funcsearch proxies`)."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch threads for the trial."),
    shift: str = typer.Option(None, "--shift", help="Point-wise shift s: scalar, vector or none "
                              "(default scalar; a baseline's own rule, e.g. none for dyt)."),
    alpha_init: float = typer.Option(0.5, "--alpha-init", help="The function's initial alpha (> 0); the proxy's alpha_gain multiplies it (dit: 2)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto (cuda when there is a GPU)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 (autocast)."),
    curve: bool = typer.Option(False, "--curve", help="Include the per-epoch curve in the JSON."),
) -> None:
    """Train one proxy trial with a progress bar and print its result as JSON."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from funcsearch.proxies import get_proxy, make_trial_spec, run_trial

    spec = make_trial_spec(proxy, fn, seed=seed, settings=settings, data=data, shift=shift,
                           alpha_init=alpha_init, device=device, precision=precision)
    info = get_proxy(spec.proxy)
    epochs = info.config_class.from_overrides(spec.overrides).epochs
    shown_metrics = [m for m in info.epoch_metrics]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[status]}"),
                  console=err_console, transient=False) as progress:
        task = progress.add_task(f"{spec.proxy} {spec.function.name} seed {seed} ({spec.device})",
                                 total=epochs, status="")

        def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
            shown = "  ".join(f"{m.name} {m.display(metrics[m.name]):.4g}{m.unit if m.unit == '%' else ''}"
                              for m in shown_metrics if m.name in metrics)
            progress.update(task, completed=epoch, status=shown)
            return False

        result = run_trial(spec, on_epoch=on_epoch, threads=threads)
    from funcsearch.proxies.regime import regime_line

    for point in ("init", "end"):  # where f worked: full scale puts u near unit scale
        line = regime_line(result.details.get("regime", {}), point)
        if line:
            err_console.print(line, highlight=False, style="dim")
    typer.echo(json.dumps(result.model_dump(exclude=None if curve else {"curve"}), indent=2))


@app.command("proxies")
def proxies_command() -> None:
    """The registered proxy tasks: their metrics (direction, unit), data and smoke recipe."""
    from rich.table import Table

    from funcsearch.proxies.registry import PROXIES

    table = Table(title="proxies", show_lines=True)
    for column in ("proxy", "primary", "halving", "metrics", "data"):
        table.add_column(column, overflow="fold")
    for proxy in PROXIES.values():
        metrics = "\n".join(f"{m.name}: {m.heading}, {'higher' if m.higher_is_better else 'lower'} is better"
                            f"{'' if m.per_epoch else ' (final only)'}" for m in proxy.metrics)
        table.add_row(proxy.name, proxy.primary_metric, proxy.halving_metric, metrics, proxy.data_help)
    console.print(table)


@app.command("search")
def search_command(
    config: str = typer.Argument(..., help="search config YAML, e.g. search_configs/quickstart.yaml"),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to use: 'auto' or ray://host:port (default: start a local one)"),
    output: str | None = typer.Option(
        None, "--output", help="parent folder of the results (default: the config's output, 'results')"),
    concurrency: int | None = typer.Option(None, "--concurrency", min=1, help="trials at once"),
) -> None:
    """Train every candidate and baseline on every proxy and seed, on Ray; resumes where it stopped."""
    from funcsearch.ranking import rich_renderables
    from funcsearch.search import run_search

    outcome = run_search(config, address=address, output=output, concurrency=concurrency,
                         console=console)
    if outcome.leaderboard is not None:
        _print(rich_renderables(outcome.leaderboard))
    console.print(f"{outcome.runs} runs in {outcome.wall_time_s:.0f} s; results, leaderboard.md and "
                  f"leaderboard.csv in {outcome.folder}", highlight=False)


@app.command("leaderboard")
def leaderboard_command(
    results: str = typer.Argument(..., help="a results folder, e.g. results/quickstart"),
    proxy: str | None = typer.Option(None, "--proxy", help="only this proxy"),
    fmt: str = typer.Option("table", "--format", help="table (terminal), md, csv, json or html"),
    out: str | None = typer.Option(None, "--out", help="write to this file instead of printing"),
    reference: str | None = typer.Option(None, "--reference", help="also show the proxy's fidelity "
                                         "against this reference CSV (path, or a shipped set's name, "
                                         "e.g. paper_property_tables.csv)"),
) -> None:
    """Rank the functions of a search: mean, spread and 95% interval over seeds, per proxy."""
    from funcsearch.errors import InputError
    from funcsearch.ranking import FORMATS, leaderboard, rich_renderables

    _check_format(fmt, FORMATS)
    if reference is not None and fmt in ("csv", "json"):
        raise InputError("--reference adds a fidelity section: use --format table, md or html",
                         field="--reference")
    from funcsearch.fidelity import fidelity_lines

    board = leaderboard(results, proxy=proxy)
    from funcsearch.ranking import declared_rule

    board.fidelity = fidelity_lines(results, reference, proxy=proxy, rule=declared_rule(results))
    fidelity = ""
    if reference is not None:
        from funcsearch.report import fidelity_section

        fidelity = fidelity_section(results, reference, "html" if fmt == "html" else "md", proxy=proxy)
    if fmt == "table" and out is None:
        _print(rich_renderables(board))
        if fidelity:
            from rich.markdown import Markdown

            _print([Markdown(fidelity)])
        return
    text = board.render("md" if fmt == "table" else fmt) + fidelity
    _emit(text, out)


@plot_app.command("leaderboard")
def plot_leaderboard_command(
    results: str = typer.Argument(..., help="a results folder, e.g. results/quickstart"),
    out: str = typer.Option(..., "--out", help="image file (.png, .pdf or .svg)"),
    proxy: str | None = typer.Option(None, "--proxy", help="only this proxy"),
    top: int | None = typer.Option(None, "--top", min=1, help="only the best N per proxy"),
    kind: str = typer.Option("difference", "--kind", help="difference: paired difference with the "
                             "best baseline (the table's verdict); score: means with their intervals"),
) -> None:
    """Each function against the best baseline, paired by seed, with its 95% interval, in rank order."""
    from funcsearch.plots import check_image_path, save_figure
    from funcsearch.plots.leaderboard import plot_leaderboard

    check_image_path(out)
    figure = plot_leaderboard(results, proxy=proxy, top=top, kind=kind)
    console.print(f"wrote {save_figure(figure, out, dpi=120)}")


@app.command("candidates")
def candidates_command(
    paths: list[str] = typer.Argument(..., help="family YAML files or folders, e.g. candidates/"),
    profile: str | None = typer.Option(None, "--profile", help="property profile YAML "
                                       "(default: properties/default.yaml, shipped in the package)"),
    kept: bool = typer.Option(False, "--kept", help="list only the kept candidates"),
    rejected: bool = typer.Option(False, "--rejected", help="list only the rejected candidates"),
    out: str | None = typer.Option(None, "--out", help="also write the catalog: .parquet or .csv"),
    fmt: str = typer.Option("table", "--format", help="table (terminal), md, csv or json (to stdout)"),
) -> None:
    """Expand families, deduplicate, compile and check the four properties; print the table."""
    from funcsearch.catalog import (CATALOG_FORMATS, build_catalog, catalog_renderables, catalog_text,
                                    write_catalog)
    from funcsearch.errors import InputError

    _check_format(fmt, CATALOG_FORMATS)
    if kept and rejected:
        raise InputError("choose at most one of --kept and --rejected", field="--kept")
    table = build_catalog(paths, profile)
    show = "kept" if kept else "rejected" if rejected else "all"
    if fmt == "table":
        _print(catalog_renderables(table, show))
    else:
        sys.stdout.write(catalog_text(table, show, fmt))
    if out is not None:
        err_console.print(f"wrote {write_catalog(table, out)}")


@plot_app.command("shapes")
def plot_shapes_command(
    functions: list[str] = typer.Argument(None, help="built-in names (erf, tanh, ...), candidate "
                                          "names from --from, or expressions such as 'erf(x+2)'"),
    out: str = typer.Option(..., "--out", help="image file (.png, .pdf or .svg)"),
    from_paths: list[str] = typer.Option([], "--from", help="family YAML file or folder whose "
                                         "candidate names may be used (repeatable), or a results "
                                         "folder (results/<name>) whose best functions are drawn"),
    top: int = typer.Option(8, "--top", min=1, help="with --from results/<name>: how many of the best"),
    profile: str | None = typer.Option(None, "--profile", help="property profile for the marks"),
) -> None:
    """A grid of function shapes with their derivatives and property marks."""
    from funcsearch.layout import is_results_folder
    from funcsearch.ranking import top_functions
    from funcsearch.plots.shapes import plot_shapes, resolve_shape_inputs

    families = [p for p in from_paths if not is_results_folder(p)]
    pairs = resolve_shape_inputs(functions or [], families)
    for folder in (p for p in from_paths if is_results_folder(p)):
        pairs += top_functions(folder, top)
    if not pairs:
        raise FuncsearchError("nothing to draw: give names or expressions, or --from results/<name>")
    from funcsearch.plots import check_image_path, save_figure

    check_image_path(out)
    console.print(f"wrote {save_figure(plot_shapes(pairs, profile), out)}")


@app.command("fidelity")
def fidelity_command(
    results: str = typer.Argument(..., help="a results folder, e.g. results/property_shift"),
    reference: str | None = typer.Option(None, "--reference",
                                         help="reference CSV (path, or the name of a shipped set); "
                                              "default: every reference each proxy declares "
                                              "(funcsearch proxies lists them)"),
    proxy: str | None = typer.Option(None, "--proxy", help="only this proxy"),
    studies: str | None = typer.Option(None, "--studies", help="comma-separated reference studies (a split)"),
    top_k: int = typer.Option(5, "--top-k", help="k of the top-k overlap"),
    fmt: str = typer.Option("table", "--format", help="table (terminal), md, csv or json"),
    out: str | None = typer.Option(None, "--out", help="write to this file instead of printing"),
) -> None:
    """Proxy fidelity: rank agreement, top-k overlap and failure agreement with a reference."""
    import json

    from funcsearch.fidelity import fidelity_of_results

    _check_format(fmt, ("table", "md", "csv", "json"))
    chosen = [s.strip() for s in studies.split(",") if s.strip()] if studies else None
    from funcsearch.ranking import declared_rule

    reports = fidelity_of_results(results, reference, proxy=proxy, studies=chosen, top_k=top_k,
                                  rule=declared_rule(results))
    markdown = "\n\n".join(r.to_markdown() for r in reports) + "\n"
    if fmt == "table" and out is None:
        from rich.markdown import Markdown  # tables drawn, wrapped between words, no \\| escapes

        _print([Markdown(markdown)])
        return
    if fmt == "json":
        text = json.dumps([r.to_dict() for r in reports], indent=2) + "\n"
    elif fmt == "csv":
        import pandas as pd

        text = pd.DataFrame([{k: v for k, v in r.to_dict().items() if k != "patterns"}
                             for r in reports]).to_csv(index=False)
    else:
        text = markdown
    _emit(text, out)


@app.command("calibrate")
def calibrate_command(
    config: str = typer.Argument(..., help="a calibration config, e.g. search_configs/calibrate_vit.yaml"),
    recipes: int | None = typer.Option(None, "--recipes", help="override n_recipes (resume with more)"),
) -> None:
    """Search proxy recipes for the best fidelity to a reference (resumable; writes a preset)."""
    from funcsearch.calibrate import calibrate, load_calibration_config

    loaded = load_calibration_config(config)
    if recipes is not None:
        loaded = loaded.model_copy(update={"n_recipes": recipes})
    table = calibrate(loaded, console=console)
    console.print(f"{len(table)} recipe evaluations; report: {loaded.folder() / 'calibration.md'}")


@app.command("report")
def report_command(
    results: str = typer.Argument(..., help="a results folder, e.g. results/property_shift"),
    out: str | None = typer.Option(None, "--out", help="folder for index.html and its PNGs "
                                   "(default: <results>/report)"),
    reference: str | None = typer.Option(None, "--reference", help="add the proxy's fidelity against "
                                         "this reference CSV (path, or a shipped set's name)"),
    top: int = typer.Option(5, "--top", min=1, help="functions shown at each end of the ranking "
                            "(shapes) and at the top (training curves)"),
) -> None:
    """One self-contained HTML page (and its PNGs) on a results folder; opens from disk."""
    from funcsearch.report import write_report

    path = write_report(results, out, reference=reference, top=top)
    console.print(f"wrote {path} (open it in a browser)", highlight=False)



@app.command("studies")
def studies_command(
    root: str = typer.Argument("results", help="the folder that holds the results folders"),
    out: str | None = typer.Option(None, "--out", help="write the index here, e.g. results/README.md "
                                   "(Markdown unless --format says otherwise)"),
    top: int = typer.Option(3, "--top", min=1, help="leaderboard entries shown per proxy"),
    reference: str | None = typer.Option(None, "--reference",
                                         help="reference CSV for the fidelity column (path or shipped "
                                              "set; default: the paper's property tables)"),
    fmt: str = typer.Option("table", "--format", help="table (terminal), md, csv or json"),
    refresh: bool = typer.Option(False, "--refresh", help="summarize every study afresh instead of "
                                 "reading the cached summary.json of unchanged ones"),
) -> None:
    """Index of every study under a results folder: trials, outcomes, wall time, top entries,
    noise and fidelity (cached per study in summary.json, keyed by its files' content)."""
    from funcsearch.references import reference_path
    from funcsearch.studies import (PAPER_LABEL, STUDIES_FORMATS, render_index, studies_renderables,
                                    studies_text, summarize_studies)

    _check_format(fmt, STUDIES_FORMATS)
    studies, calibrations = summarize_studies(root, top=top, reference=reference, refresh=refresh)
    if fmt == "table" and out is None:
        _print(studies_renderables(studies, calibrations))
        return
    if fmt in ("md", "table"):
        label = PAPER_LABEL if reference is None else reference_path(reference).name
        _emit(render_index(studies, calibrations, root=root, reference_label=label), out)
    else:
        _emit(studies_text(studies, fmt), out)


@app.command("compare")
def compare_command(
    a: str = typer.Argument(..., help="results folder A, e.g. results/property_shift"),
    b: str = typer.Argument(..., help="results folder B (the same folder to compare two settings of it)"),
    where_a: list[str] = typer.Option([], "--a", help="keep A's trials with column=value (repeatable), "
                                      "e.g. --a shift=scalar"),
    where_b: list[str] = typer.Option([], "--b", help="keep B's trials with column=value, e.g. --b shift=none"),
    proxy: str | None = typer.Option(None, "--proxy", help="only this proxy"),
    reference: str | None = typer.Option(None, "--reference", help="also each side's Spearman with this "
                                         "full-scale reference and B - A with a paired interval"),
    fmt: str = typer.Option("table", "--format", help="table (terminal), md, csv or json"),
    out: str | None = typer.Option(None, "--out", help="write to this file instead of printing"),
) -> None:
    """Two studies (or two settings of one), paired by function (fingerprint and shift) and seed."""
    from funcsearch.compare import FORMATS, compare_results
    from funcsearch.errors import InputError

    _check_format(fmt, FORMATS)

    def pairs(items: list[str], field: str) -> dict[str, str]:
        bad = [i for i in items if "=" not in i]
        if bad:
            raise InputError(f"expected column=value, got {bad[0]!r}", field=field)
        return dict(i.split("=", 1) for i in items)

    comparison = compare_results(a, b, proxy=proxy, where_a=pairs(where_a, "--a"), where_b=pairs(where_b, "--b"),
                                 reference=reference)
    if fmt == "table" and out is None:
        _print(comparison.rich_renderables())
        return
    _emit(comparison.render("md" if fmt == "table" else fmt), out)


@app.command("halloffame")
def halloffame_command(
    results: str = typer.Argument(..., help="a results folder, e.g. results/paper_search"),
    every: bool = typer.Option(False, "--all", help="every function, not only the Pareto front"),
    latency: bool = typer.Option(True, "--latency/--no-latency", help="measure layer latency (seconds)"),
    fmt: str = typer.Option("table", "--format", help="table (terminal), md, csv or json"),
    out: str | None = typer.Option(None, "--out", help="write to this file instead of printing"),
) -> None:
    """Per proxy and aggregate: the Pareto front of score, expression complexity and layer latency."""
    from funcsearch.halloffame import FORMATS, hall_of_fame

    _check_format(fmt, FORMATS)
    fame = hall_of_fame(results, latency=latency)
    if fmt == "table" and out is None:
        _print(fame.rich_renderables(front_only=not every))
        return
    _emit(fame.render("md" if fmt == "table" else fmt, front_only=not every), out)


@app.command("export")
def export_command(
    name: str = typer.Argument(..., help="a function: a results folder's name (with --results), a "
                               "built-in name (erf, isru, ...) or an expression"),
    fmt: str = typer.Option("latex", "--format", help="latex, sympy or torch (a ready nn.Module)"),
    results: str | None = typer.Option(None, "--results", help="results folder whose names to use"),
    out: str | None = typer.Option(None, "--out", help="write to this file instead of printing"),
) -> None:
    """One function as LaTeX, sympy text, or a self-contained torch module."""
    from funcsearch.export import export_function

    _emit(export_function(name, fmt, results=results), out)


@app.command("tensorboard")
def tensorboard_command(
    results: str = typer.Argument(..., help="a results folder, e.g. results/paper_search"),
    logdir: str = typer.Option(..., "--logdir", help="folder for the event files (then: tensorboard --logdir it)"),
) -> None:
    """Export every trial (curves, final metrics, settings as hparams) as TensorBoard event files."""
    from funcsearch.tracking import export_tensorboard

    count = export_tensorboard(results, logdir)
    console.print(f"wrote {count} runs under {logdir} (tensorboard --logdir {logdir})", highlight=False)


def main() -> None:
    """Entry point: run the app, turning user errors into one clear line."""
    try:
        code = app(standalone_mode=False)
    except FuncsearchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Terminated:
        err_console.print("terminated (SIGTERM; finished trials are stored; rerun the command to resume)")
        sys.exit(143)
    except Exception as exc:
        # usage errors (unknown command, bad option): click's own message, no traceback.
        # typer >= 0.25 vendors click, so its classes are not click's: accept either.
        if isinstance(exc, _usage_error_classes()):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if type(exc).__name__ == "Exit" and isinstance(getattr(exc, "exit_code", None), int):
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise
    if code == 130:  # typer turns Ctrl-C into a returned 130 in non-standalone mode
        err_console.print("interrupted (finished trials are stored; rerun the command to resume)")
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


def _usage_error_classes() -> tuple[type[BaseException], ...]:
    """click's ``ClickException`` as typer raises it (vendored or not), and click's own."""
    classes = {cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"}
    try:
        import click

        classes.add(click.exceptions.ClickException)
    except ImportError:
        pass
    return tuple(classes)

if __name__ == "__main__":
    main()
