"""A grid's runs: each one's ``run`` arguments, resolved configuration, folder and status.

The command line hands :func:`plan` a function that parses and resolves ``run`` arguments
as ``run`` does, so the plan names exactly the folder (and run id) that ``clbench run``
with the same arguments writes, and a bad option is refused before anything starts.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clbench.core.config import RunConfig, command_line_fields
from clbench.core.errors import UserError
from clbench.core.record import RECORD_NAME, RecordError, RunRecord
from clbench.sweep.grid import Grid

STATUSES = ("complete", "running", "failed", "diverged", "unreadable", "pending")
"""A run's status: its record's, ``unreadable`` (a damaged record) or ``pending`` (none)."""


@dataclass
class PlannedRun:
    """One run of a grid."""

    arguments: list[str]
    """``clbench run`` arguments (without the program and ``run``)."""
    config: RunConfig

    @property
    def folder(self) -> Path:
        return self.config.run_dir()

    @property
    def record_path(self) -> Path:
        return self.folder / RECORD_NAME

    def status(self) -> str:
        """The status its record says now (see :data:`STATUSES`)."""
        if not self.record_path.is_file():
            return "pending"
        try:
            return RunRecord.load(self.record_path).status
        except RecordError:
            return "unreadable"

    def record_error(self) -> str | None:
        """The one-line error a failed or diverged record holds."""
        try:
            return RunRecord.load(self.record_path).error
        except RecordError:
            return None

    def command(self) -> str:
        """The plain shell command of this run."""
        return shlex.join(["clbench", "run", *self.arguments])


def _flags() -> dict[str, tuple[str, str | None]]:
    """``run`` destination name -> (flag, argparse action or None for a value)."""
    from strategies.registry import STRATEGIES

    flags = {}
    for name, flag in command_line_fields():
        flags[name] = (flag.flag, None if flag.parse is not None else flag.action)
        spelt = flag.flag.lstrip("-").replace("-", "_")
        if spelt != name:  # ``no_pretrained = true`` as well as ``pretrained = false``
            flags[spelt] = (flag.flag, "store_true")
    for spec in STRATEGIES.values():
        for option in spec.options:
            flags[option.dest] = (option.flag, "store_true" if option.type is bool else None)
    return flags


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)


def run_arguments(options: dict[str, Any]) -> list[str]:
    """``run`` arguments for one run's options (a list becomes a comma list; a switch
    is given when its value asks for it)."""
    flags = _flags()
    arguments = []
    for name, value in options.items():
        if name not in flags:
            raise UserError(f"unknown run option {name.replace('_', '-')} in the grid")
        flag, action = flags[name]
        if action is not None:
            if not isinstance(value, bool):
                raise UserError(f"{name.replace('_', '-')} takes true or false in the grid")
            if value == (action == "store_true"):
                arguments.append(flag)
        else:
            arguments += [flag, _text(value)]
    return arguments


def plan(grid: Grid, configure: Callable[[list[str]], RunConfig]) -> list[PlannedRun]:
    """The grid's runs; ``configure`` turns ``run`` arguments into the resolved config
    exactly as ``run`` does (raising :class:`UserError`). Two runs writing one folder are
    refused."""
    runs: list[PlannedRun] = []
    seen: dict[Path, int] = {}
    for index, options in enumerate(grid.combinations(), start=1):
        arguments = run_arguments(options)
        try:
            config = configure(arguments)
        except UserError as err:
            raise UserError(f"{grid.path}: run {index} ({shlex.join(arguments)}): {err}") from None
        run = PlannedRun(arguments, config)
        if run.folder in seen:
            raise UserError(
                f"{grid.path}: runs {seen[run.folder]} and {index} write the same folder "
                f"{run.folder}; vary an option that changes what is measured"
            )
        seen[run.folder] = index
        runs.append(run)
    return runs


def counts(statuses: list[str]) -> str:
    """``4 runs: 2 complete, 2 pending``."""
    tally = Counter(statuses)
    parts = [f"{tally[name]} {name}" for name in STATUSES if tally[name]]
    return f"{len(statuses)} runs: {', '.join(parts)}" if parts else "0 runs"
