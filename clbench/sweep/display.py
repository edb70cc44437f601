"""What a sweep shows: a live table on stderr while it runs (one line per event when
stderr is not a terminal), and the summary at the end."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from clbench.core.record import RecordError, RunRecord

if TYPE_CHECKING:
    from clbench.sweep.engine import RunProgress, SweepSummary

STYLES = {
    "queued": "dim",
    "running": "cyan",
    "complete": "green",
    "diverged": "yellow",
    "failed": "red",
    "refused": "red",
    "died": "red",
    "cancelled": "yellow",
}
RECORD_SECONDS = 2.0
"""How often the live table reads a running run's record (tasks done)."""


def run_name(progress: RunProgress) -> str:
    """``stream/arch/strategy/run_id``: the run folder below its results folder."""
    config = progress.run.config
    return f"{config.stream}/{config.arch}/{config.strategy}/{config.run_id}"


def clock(seconds: float) -> str:
    """``1:05`` or ``1:02:05``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def state_text(progress: RunProgress) -> str:
    if progress.skipped:
        return f"{progress.state} (earlier)"
    if progress.state in ("queued", "running") and progress.attempts > 1:
        return f"{progress.state} (attempt {progress.attempts})"
    return progress.state


class SweepDisplay:
    """The live table of a sweep: every run's state, tasks done and time, and the
    sweep's progress. Call :meth:`event` after each change of a run, :meth:`refresh`
    periodically."""

    def __init__(self, runs: list[RunProgress], console: Console, began: float) -> None:
        self.runs = runs
        self.console = console
        self.began = began
        self.tasks: dict[int, str] = {}
        self.read_at = 0.0
        self.bar = Progress(
            TextColumn("sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
        )
        self.bar_task = self.bar.add_task("", total=len(runs))
        self.live = Live(console=console, refresh_per_second=2, transient=True)

    def __enter__(self) -> SweepDisplay:
        if self.console.is_terminal:
            self.live.update(self.render())
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.console.is_terminal:
            self.live.stop()

    def _read_tasks(self) -> None:
        """``3/5`` tasks done of each running run, from its record."""
        if time.monotonic() - self.read_at < RECORD_SECONDS:
            return
        self.read_at = time.monotonic()
        for key, progress in enumerate(self.runs):
            if progress.state != "running":
                continue
            try:
                record = RunRecord.load(progress.run.record_path)
            except RecordError:
                continue
            self.tasks[key] = f"{len(record.acc_top1)}/{len(record.tasks)}"

    def render(self) -> Group:
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("run", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("tasks", justify="right")
        table.add_column("time", justify="right")
        table.add_column("host / error", ratio=1)
        order = list(enumerate(self.runs))
        if len(order) + 6 > self.console.height:  # the active runs first when it is too tall
            rank = {"running": 0, "queued": 1}
            order.sort(key=lambda item: rank.get(item[1].state, 2))
        now = time.monotonic()
        for key, progress in order:
            seconds = progress.seconds
            if progress.state == "running" and progress.started is not None:
                seconds += now - progress.started
            note = progress.error if progress.error else progress.host or ""
            table.add_row(
                run_name(progress),
                Text(state_text(progress), style=STYLES.get(progress.state, "")),
                self.tasks.get(key, ""),
                clock(seconds) if seconds else "",
                Text(note, overflow="ellipsis", no_wrap=True),
            )
        tally = Counter(progress.state for progress in self.runs)
        self.bar.update(
            self.bar_task,
            completed=sum(progress.done for progress in self.runs),
            description=f"{tally['running']} running, {tally['queued']} queued, "
            f"{clock(now - self.began)}",
        )
        return Group(table, self.bar)

    def refresh(self) -> None:
        if self.console.is_terminal:
            self._read_tasks()
            self.live.update(self.render())

    def event(self, key: int) -> None:
        """A run changed state: on a terminal the table shows it, else one line."""
        if self.console.is_terminal:
            return
        progress = self.runs[key]
        line = f"{run_name(progress)}: {state_text(progress)}"
        if progress.state == "running":
            line += f" on {progress.host}"
        elif progress.error:
            line += f": {progress.error}"
        elapsed = clock(time.monotonic() - self.began)
        done = sum(run.done for run in self.runs)
        self.console.print(
            f"[{elapsed}] {done}/{len(self.runs)} {line}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def summary_table(summary: SweepSummary) -> Table:
    """Every run's end: state, attempts, process time and its one-line error."""
    table = Table(title=f"sweep: {counts_line(summary)} in {clock(summary.seconds)}")
    table.add_column("run", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("time", justify="right")
    table.add_column("error", ratio=1)
    for progress in summary.runs:
        table.add_row(
            run_name(progress),
            Text(state_text(progress), style=STYLES.get(progress.state, "")),
            str(progress.attempts),
            clock(progress.seconds) if progress.seconds else "",
            progress.error or "",
        )
    return table


def counts_line(summary: SweepSummary) -> str:
    """``8 runs: 6 complete, 2 failed``."""
    tally = Counter(progress.state for progress in summary.runs)
    parts = ", ".join(f"{count} {state}" for state, count in tally.items())
    return f"{len(summary.runs)} runs: {parts}"
