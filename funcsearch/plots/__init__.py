"""Plots (matplotlib): every ``plot_*`` function returns a :class:`matplotlib.figure.Figure`.

Figures are built directly (``Figure(...)``), never through ``pyplot``: drawing never
changes matplotlib's global backend or its list of open figures, so a notebook's own
plots keep working. Saving is the caller's job (:func:`save_figure`; the CLI and the
report call it); in a notebook, ``display(fig)`` or ``Image(png_bytes(fig))`` shows one.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from funcsearch.errors import InputError

IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def new_figure(width: float, height: float, **kwargs: Any) -> Any:
    """A standalone Figure (no pyplot state, no backend switch)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), **kwargs)


def check_image_path(out: str | Path) -> Path:
    """``out`` as a Path; an ``InputError`` unless it ends in .png, .pdf or .svg."""
    out = Path(out)
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"the image must end in {', '.join(IMAGE_SUFFIXES)}", field="--out",
                         file=str(out))
    return out


def save_figure(figure: Any, out: str | Path, *, dpi: int = 120) -> Path:
    """Write ``figure`` to ``out`` (.png, .pdf or .svg; folders created); returns the path."""
    out = check_image_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    return out


def png_bytes(figure: Any, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for ``IPython.display.Image(data=...)``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
