"""The `funcsearch` command: thin typer wrappers over library functions.

Every command catches `FuncsearchError` and prints it as one red line (exit code 2):
users see what is wrong and where, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from funcsearch.errors import FuncsearchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Search point-wise functions that replace normalization layers in Transformers.",
)
plot_app = typer.Typer(no_args_is_help=True, help="Draw function shapes and leaderboards.")
app.add_typer(plot_app, name="plot")

console = Console()
err_console = Console(stderr=True)


# --- commands are added below, one small function each --------------------------------


def main() -> None:
    """Entry point: run the app, turning user errors into one clear line."""
    try:
        app(standalone_mode=False)
    except FuncsearchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
