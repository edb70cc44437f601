"""A grid's runs: each one's ``run`` arguments, resolved configuration, folder, resources
and status.

The command line hands :func:`plan` a function that parses and resolves ``run`` arguments
as ``run`` does, so the plan names exactly the folder (and run id) that ``clbench run``
with the same arguments writes, and a bad option is refused before anything starts.
Each run's device is part of its arguments (``--device cpu`` for a run without a GPU,
``--device cuda`` for one with), so the folder does not depend on the machine that
plans it (``--precision auto`` is bf16 on CUDA).
"""

from __future__ import annotations

import os
import shlex
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clbench.core.config import RunConfig, command_line_fields
from clbench.core.errors import UserError
from clbench.core.record import RECORD_NAME, RecordError, RunRecord
from clbench.run.lock import lock_holder
from clbench.sweep.grid import Grid, Resources

STATUSES = ("complete", "running", "interrupted", "failed", "diverged", "unreadable", "pending")
"""A run's status: its record's; ``interrupted`` when the record says ``running`` but the
process that ran it is gone (killed: re-running resumes it); ``unreadable`` (a damaged
record) or ``pending`` (no record)."""


@dataclass
class PlannedRun:
    """One run of a grid."""

    arguments: list[str]
    """``clbench run`` arguments (without the program and ``run``)."""
    config: RunConfig
    resources: Resources = field(default_factory=lambda: Resources(gpus=0.0))
    """What the run asks the engine for (``gpus`` decided: see :func:`gpus_per_run`)."""

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
            status = RunRecord.load(self.record_path).status
        except RecordError:
            return "unreadable"
        return "interrupted" if status == "running" and not self._process_alive() else status

    def _process_alive(self) -> bool:
        """Whether the process named by the run folder's lock may still be running (a
        live run keeps its lock file; on another host it cannot be told, so yes)."""
        holder = lock_holder(self.folder)
        if holder is None:
            return False
        pid, host = holder
        if host != socket.gethostname():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process
            return True
        return True

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


def local_gpus() -> int:
    """CUDA devices of this machine."""
    import torch

    return torch.cuda.device_count()


def gpus_per_run(resources: Resources, device: str | None) -> float:
    """GPUs a run gets: the grid's ``gpus``; unset, 1 for ``device = "cuda"``, 0 for
    ``"cpu"``, and otherwise 1 when this machine has a GPU, else 0. A ``device`` that
    contradicts ``gpus`` is refused."""
    gpus = resources.gpus
    if gpus is None:
        if device in (None, "auto"):
            return 1.0 if local_gpus() else 0.0
        return 1.0 if device == "cuda" else 0.0
    if device == "cuda" and gpus == 0 or device == "cpu" and gpus > 0:
        raise UserError(f"device {device} contradicts [resources] gpus = {gpus:g}")
    return gpus


def plan_run(
    options: dict[str, Any], resources: Resources, configure: Callable[[list[str]], RunConfig]
) -> PlannedRun:
    """One run from its ``run`` options: its device set from the GPUs it gets
    (``--device cuda`` or ``cpu``), resolved by ``configure`` (see :func:`plan`)."""
    gpus = gpus_per_run(resources, options.get("device"))
    arguments = run_arguments({**options, "device": "cuda" if gpus > 0 else "cpu"})
    return PlannedRun(arguments, configure(arguments), replace(resources, gpus=gpus))


def plan(grid: Grid, configure: Callable[[list[str]], RunConfig]) -> list[PlannedRun]:
    """The grid's runs; ``configure`` turns ``run`` arguments into the resolved config
    exactly as ``run`` does (raising :class:`UserError`). Two runs writing one folder are
    refused."""
    runs: list[PlannedRun] = []
    seen: dict[Path, int] = {}
    for index, options in enumerate(grid.combinations(), start=1):
        try:
            run = plan_run(options, grid.resources, configure)
        except UserError as err:
            where = ", ".join(f"{name} {_text(value)}" for name, value in options.items())
            raise UserError(f"{grid.path}: run {index} ({where}): {err}") from None
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
