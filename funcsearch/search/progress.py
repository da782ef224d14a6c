"""Live progress of a search: trials done / running / diverged / failed / pruned, and an ETA.

On a terminal it is a rich ``Live`` panel redrawn a few times a second, with one line
printed above it per finished run; elsewhere (pipes, CI, tests) only those lines appear.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"ok": "green", "diverged": "yellow", "pruned": "blue", "failed": "red", "partial": "dim"}


@dataclass
class Counts:
    """Trial counts by final outcome; ``total`` is the number of planned trials."""

    total: int = 0
    ok: int = 0
    diverged: int = 0
    pruned: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.ok + self.diverged + self.pruned + self.failed


@dataclass
class RunningRun:
    label: str
    started: float = field(default_factory=time.monotonic)


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class SearchProgress:
    """Draws the search's state; the runner calls :meth:`update` and :meth:`finished`."""

    def __init__(self, console: Console, title: str, concurrency: int, *, live: bool | None = None) -> None:
        self.console = console
        self.title = title
        self.concurrency = max(1, concurrency)
        self.counts = Counts()
        self.running: dict[str, RunningRun] = {}
        self.durations: list[float] = []   # wall seconds of finished full runs
        self.runs = 0                       # runs finished (and stored) in this session
        self.started = time.monotonic()
        self._live_enabled = console.is_terminal if live is None else live
        self._live: Live | None = None

    def __enter__(self) -> "SearchProgress":
        if self._live_enabled:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)
            self._live = None
        self.console.print(self.summary_line(), highlight=False)

    # -- state ------------------------------------------------------------------------------
    def update(self, counts: Counts, running: Iterable[tuple[str, str]]) -> None:
        """New counts and the running runs as ``(run id, label)``."""
        self.counts = counts
        running = dict(running)
        for run_id in list(self.running):
            if run_id not in running:
                del self.running[run_id]
        for run_id, label in running.items():
            self.running.setdefault(run_id, RunningRun(label))
        if self._live is not None:
            self._live.update(self._render())

    def finished(self, label: str, status: str, detail: str, wall_s: float, *, full: bool) -> None:
        """One finished run: a printed line; full runs feed the ETA.

        ``partial`` is a run stopped at an early-stopping budget (its trial goes on or is
        pruned when its group is ranked)."""
        if full and status in ("ok", "diverged"):
            self.durations.append(wall_s)
        style = STATUS_STYLE.get(status, "")
        line = Text.assemble((f"{status:>8} ", style), label, f"  {detail}  ({wall_s:.1f}s)")
        self.console.print(line, highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)

    # -- drawing ----------------------------------------------------------------------------
    def eta_seconds(self) -> float | None:
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        now = time.monotonic()
        left_running = sum(max(0.0, mean - (now - r.started)) for r in self.running.values())
        waiting = max(0, self.counts.total - self.counts.done - len(self.running))
        return (waiting * mean + left_running) / self.concurrency

    def summary_line(self) -> str:
        c = self.counts
        return (f"{self.title}: {c.done}/{c.total} trials done (ok {c.ok}, diverged {c.diverged}, "
                f"pruned {c.pruned}, failed {c.failed}) in {format_seconds(time.monotonic() - self.started)}")

    def _render(self) -> Group:
        c = self.counts
        eta = self.eta_seconds()
        head = Text.assemble(
            (f"{self.title} ", "bold"),
            f"{c.done}/{c.total} done  running {len(self.running)}  ",
            ("ok ", "green"), f"{c.ok}  ", ("diverged ", "yellow"), f"{c.diverged}  ",
            ("pruned ", "blue"), f"{c.pruned}  ", ("failed ", "red"), f"{c.failed}  ",
            f"elapsed {format_seconds(time.monotonic() - self.started)}  ",
            f"ETA {format_seconds(eta) if eta is not None else 'estimating...'}",
        )
        bar = ProgressBar(total=max(1, c.total), completed=c.done, width=60)
        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        for run in list(self.running.values())[:12]:
            table.add_row(Text(run.label, style="cyan"), format_seconds(now - run.started))
        return Group(head, bar, table)
