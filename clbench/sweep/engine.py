"""The sweep's engine: run planned runs on Ray (this machine or a cluster) or SLURM.

:func:`execute` is the Python API (``clbench sweep run`` and other commands build on it)::

    runs = plan(load_grid(path), configure)        # or any list of PlannedRun
    summary = execute(runs, ExecutorOptions(executor="local", parallel=2), console)
    summary.ok                                     # every run complete

A run whose record is complete is skipped, and so is a diverged one (re-running it would
diverge again); every other run is started with its own ``clbench run`` command line,
which continues an unfinished run from its checkpoints. An attempt whose process died
(a signal, a lost worker or node, a SLURM job that ended without a result) is retried up
to the run's ``retries``; one that exits 2 (bad input) or 1 (diverged, another error) is
not, and its one-line error is kept: the record's for exit 1, else the last line the
process wrote. Nothing is started, and no engine either, when every run is done.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from clbench.core.errors import UserError
from clbench.core.record import RecordError, RunRecord
from clbench.sweep.attempt import BAD_INPUT, Launch, Outcome
from clbench.sweep.backend import Backend, Event, Submission
from clbench.sweep.display import SweepDisplay
from clbench.sweep.plan import PlannedRun, local_gpus

Executor = Literal["local", "ray", "slurm"]
EXECUTORS = ("local", "ray", "slurm")
LOCK_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.5
CLI = Path(__file__).resolve().parents[2] / "cli.py"
"""The repository's command line, which every run executes."""
PASSED_ON = ("CLBENCH_",)
"""Prefixes of this process's variables that every run's process gets too."""

FINAL = ("complete", "diverged", "failed", "refused", "died", "cancelled")
"""How a run ends in a sweep: its record complete or diverged; ``failed`` (exit 1 or the
engine could not run it), ``refused`` (exit 2: bad input, or its folder in use),
``died`` (killed once more than ``retries`` allows), ``cancelled`` (the sweep was
interrupted)."""


@dataclass
class ExecutorOptions:
    """Where and how :func:`execute` runs the attempts."""

    executor: Executor = "local"
    """``local``: a Ray instance started inside this process on this machine (every GPU);
    ``ray``: the Ray cluster at ``address``; ``slurm``: submitit job arrays."""
    parallel: int | None = None
    """``local``: at most this many runs at once (default: CPU cores / cpus per run)."""
    address: str | None = None
    """``ray``: the cluster's address (``host:port``, ``ray://host:port`` or ``auto``)."""
    partition: str | None = None
    """``slurm``: the partition (default: the cluster's)."""
    time_limit: int = 24 * 60
    """``slurm``: minutes per job (a job that runs out is requeued and resumes)."""
    array_parallelism: int = 256
    """``slurm``: array elements running at once."""
    slurm_folder: Path | None = None
    """``slurm``: submitit's job files and logs (default ``<results>/.slurm/%j``)."""
    lock_wait: float = LOCK_WAIT_SECONDS
    """Seconds an attempt waits for its run folder's lock (a dying attempt's process)."""


@dataclass
class RunProgress:
    """One run during and after the sweep."""

    run: PlannedRun
    state: str
    """``queued``, ``running`` or one of :data:`FINAL`."""
    attempts: int = 0
    host: str | None = None
    started: float | None = None
    """``time.monotonic()`` when the current (or last) attempt started."""
    seconds: float = 0.0
    """Process time of its attempts, summed."""
    error: str | None = None
    skipped: bool = False
    """Done before this sweep (complete or diverged): nothing was started."""
    submitted_at: float | None = None
    """``time.time()`` when its last attempt was submitted."""
    outcome: Outcome | None = None
    """How its last attempt's process ended."""

    @property
    def done(self) -> bool:
        return self.state in FINAL


@dataclass
class SweepSummary:
    """What :func:`execute` returns: every run's end and the sweep's wall time."""

    runs: list[RunProgress]
    seconds: float

    @property
    def attempts(self) -> int:
        """Attempts this sweep submitted (0: every run was done before it)."""
        return sum(run.attempts for run in self.runs)

    @property
    def ok(self) -> bool:
        """Every run is complete."""
        return all(run.state == "complete" for run in self.runs)

    @property
    def results_folders(self) -> list[Path]:
        """Where the runs' records are (for ``compare``), in first-seen order."""
        return list(dict.fromkeys(Path(run.run.config.results) for run in self.runs))


def launch(run: PlannedRun, lock_wait: float) -> Launch:
    """The attempt of ``run``: its command line, with the thread count (= its CPUs) set
    and, without a GPU, no CUDA device visible."""
    if not CLI.is_file():
        raise UserError(f"{CLI} is missing: sweep runs the repository's cli.py (a clone)")
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)}
    env.update(OMP_NUM_THREADS=str(run.resources.cpus), PYTHONUNBUFFERED="1")
    if not run.resources.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    argv = [sys.executable, str(CLI), "run", *run.arguments]
    return Launch(argv, os.getcwd(), env, str(run.folder), lock_wait)


def _record(run: PlannedRun) -> RunRecord | None:
    try:
        return RunRecord.load(run.record_path)
    except RecordError:
        return None


def _initial(run: PlannedRun) -> RunProgress:
    """Complete and diverged runs are skipped; every other one is queued."""
    status = run.status()
    if status in ("complete", "diverged"):
        return RunProgress(run, status, error=run.record_error(), skipped=True)
    return RunProgress(run, "queued")


def _ended(progress: RunProgress, outcome: Outcome) -> None:
    """Set the final state of an attempt's run from how its process ended."""
    record = _record(progress.run)
    if outcome.code == 0:
        if record is not None and record.status == "complete":
            progress.state, progress.error = "complete", None
        else:
            progress.state, progress.error = "failed", "exited 0 without a complete record"
    elif outcome.code == BAD_INPUT:
        progress.state, progress.error = "refused", outcome.error
    else:
        progress.state = "diverged" if record and record.status == "diverged" else "failed"
        recorded = record.error if record and record.status in ("failed", "diverged") else None
        progress.error = recorded or outcome.error


class _Sweep:
    """The engine's loop over one backend."""

    def __init__(self, runs: list[RunProgress], backend: Backend, lock_wait: float) -> None:
        self.runs = runs
        self.backend = backend
        self.lock_wait = lock_wait

    def submit(self, keys: list[int]) -> None:
        submissions = []
        for key in keys:
            progress = self.runs[key]
            progress.state, progress.attempts = "queued", progress.attempts + 1
            progress.submitted_at = time.time()
            submissions.append(
                Submission(key, launch(progress.run, self.lock_wait), progress.run.resources)
            )
        self.backend.submit(submissions)

    def handle(self, event: Event) -> None:
        progress = self.runs[event.key]
        if event.kind == "started":
            progress.state, progress.host = "running", event.host
            progress.started = time.monotonic()
            return
        if event.outcome is not None:
            progress.outcome = event.outcome
            progress.seconds += event.outcome.seconds
            progress.host = event.outcome.host
        died = event.kind == "died" or (event.outcome is not None and event.outcome.died)
        if died:
            reason = event.error or event.outcome.error or f"exit code {event.outcome.code}"
            if progress.attempts <= progress.run.resources.retries:
                progress.error = f"retried after: {reason}"
                self.submit([event.key])
            else:
                progress.state = "died"
                progress.error = f"died {progress.attempts} times, last: {reason}"
        elif event.kind == "error":
            progress.state, progress.error = "failed", event.error
        else:
            _ended(progress, event.outcome)

    def cancel(self) -> None:
        self.backend.cancel()
        for progress in self.runs:
            if not progress.done:
                progress.state, progress.error = "cancelled", "the sweep was interrupted"


def local_slots(parallel: int | None, cpus: int) -> int:
    """Runs at once on this machine: ``parallel``, else its CPU cores / ``cpus`` per run."""
    return parallel or max(1, (os.cpu_count() or 1) // cpus)


@contextlib.contextmanager
def open_backend(
    options: ExecutorOptions, runs: list[PlannedRun], console: Console
) -> Iterator[Backend]:
    """The backend of ``options.executor`` for ``runs``, started once for the sweep (see
    :mod:`clbench.sweep.ray_backend`, :mod:`clbench.sweep.slurm_backend`)."""
    cpus = max(run.resources.cpus for run in runs)
    gpus = max(run.resources.gpus for run in runs)
    if options.executor == "local":
        from clbench.sweep.ray_backend import RayBackend, local_ray

        here = local_gpus()
        if gpus > here:
            raise UserError(
                f"runs ask for {gpus:g} GPU(s) each and this machine has {here}: set "
                "[resources] gpus = 0 to run them on the CPU"
            )
        slots = local_slots(options.parallel, cpus)
        console.print(
            f"sweep: {len(runs)} runs on this machine, at most {slots} at once ({cpus} CPU(s) "
            f"and {gpus:g} GPU(s) each, {here} GPU(s) here)",
            soft_wrap=True,
        )
        with local_ray(slots, cpus, here):
            yield RayBackend()
    elif options.executor == "ray":
        from clbench.sweep.ray_backend import RayBackend, cluster_ray

        if not options.address:
            raise UserError("--executor ray needs --address (the Ray cluster's, or auto)")
        console.print(
            f"sweep: {len(runs)} runs on the Ray cluster at {options.address}", soft_wrap=True
        )
        with cluster_ray(options.address):
            yield RayBackend()
    elif options.executor == "slurm":
        from clbench.sweep.slurm_backend import SlurmBackend

        backend = SlurmBackend(options, runs)
        console.print(
            f"sweep: {len(runs)} runs as SLURM jobs ({cpus} CPU(s) and {gpus:g} GPU(s) "
            f"each; job files and logs: {backend.folder})",
            soft_wrap=True,
        )
        yield backend
    else:
        raise UserError(f"unknown executor {options.executor}; choose from {', '.join(EXECUTORS)}")


def execute(
    runs: list[PlannedRun],
    options: ExecutorOptions,
    console: Console | None = None,
    backend: Backend | None = None,
) -> SweepSummary:
    """Run ``runs`` (see the module's docstring) with a live table on ``console``
    (stderr); returns every run's end. ``backend`` replaces the one ``options.executor``
    names (an engine of one's own). Ctrl-C stops every attempt, then raises
    :class:`KeyboardInterrupt`: running the same sweep again resumes."""
    console = console or Console(stderr=True)
    began = time.monotonic()
    progress = [_initial(run) for run in runs]
    todo = [key for key, run in enumerate(progress) if not run.done]
    if todo:
        with contextlib.ExitStack() as stack:
            if backend is None:
                pending = [runs[key] for key in todo]
                backend = stack.enter_context(open_backend(options, pending, console))
            display = stack.enter_context(SweepDisplay(progress, console, began))
            _drive(_Sweep(progress, backend, options.lock_wait), todo, display)
    return SweepSummary(progress, time.monotonic() - began)


def _drive(sweep: _Sweep, todo: list[int], display: SweepDisplay) -> None:
    """Submit ``todo`` and handle the backend's news until every run is done."""
    try:
        sweep.submit(todo)
        while not all(run.done for run in sweep.runs):
            for event in sweep.backend.poll(POLL_SECONDS):
                sweep.handle(event)
                display.event(event.key)
            display.refresh()
    except KeyboardInterrupt:
        sweep.cancel()
        raise
