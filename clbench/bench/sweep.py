"""What the sweep engine costs and saves (``clbench sweep bench``): every strategy on
splitmnist run one ``clbench run`` process after the other (as ``make demo`` did), then
the same runs as one sweep on this machine (local Ray).

Per run of the sweep: its scheduling delay (from its submission, or from the end of the
run whose slot it took, to the start of its process), its process start-up (process wall
time minus the run's own time: interpreter, imports, data, record writing) and its own
time (training plus evaluation seconds from its record). Figures, not a test: on a shared
machine the load moves them (it is printed with them).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from clbench.core.config import RunConfig
from clbench.core.errors import UserError
from clbench.core.record import RunRecord
from clbench.sweep.engine import ExecutorOptions, execute, launch, local_slots
from clbench.sweep.grid import Grid
from clbench.sweep.plan import PlannedRun, local_gpus, plan
from clbench.sweep.ray_backend import local_ray


def strategy_runs(
    results: Path, epochs: int, configure: Callable[[list[str]], RunConfig]
) -> list[PlannedRun]:
    """Every strategy on splitmnist, ``epochs`` per task, seed 0, under ``results``."""
    from strategies.registry import STRATEGIES

    base = {"stream": "splitmnist", "epochs": epochs, "results": str(results)}
    grid = Grid(Path("sweep bench"), base, {"strategy": list(STRATEGIES)})
    return plan(grid, configure)


def own_seconds(run: PlannedRun) -> float:
    """Training plus evaluation seconds of a complete run (its record)."""
    record = RunRecord.load(run.record_path)
    return sum(record.train_seconds) + sum(record.timings["eval_seconds"])


def run_sequentially(runs: list[PlannedRun], console: Console) -> list[float]:
    """Each run's wall time, one process after the other, with the default thread count
    (as ``make demo`` ran them before the sweep)."""
    walls = []
    for index, run in enumerate(runs, start=1):
        console.print(f"sequential {index}/{len(runs)}: {run.config.strategy}")
        began = time.monotonic()
        subprocess.run(
            launch(run, 0.0).argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        walls.append(time.monotonic() - began)
    return walls


def scheduling_delays(
    starts: list[float], submitted: list[float], ends: list[float]
) -> list[float]:
    """Per run, from the moment it could start (its submission, or the latest end of
    another run before it started: the slot it took) to the start of its process."""
    delays = []
    for start, submit in zip(starts, submitted):
        freed = max([end for end in ends if end <= start], default=submit)
        delays.append(start - max(submit, freed))
    return delays


def sweep_bench(
    epochs: int,
    parallel: int | None,
    results: Path,
    configure: Callable[[list[str]], RunConfig],
    console: Console,
) -> dict:
    """Measure both ways (see the module's docstring); returns the figures."""
    for folder in (results / "sequential", results / "sweep"):
        if folder.exists():
            raise UserError(f"sweep bench: {folder} exists; give a new --results folder")
    sequential = strategy_runs(results / "sequential", epochs, configure)
    swept = strategy_runs(results / "sweep", epochs, configure)
    load_before = os.getloadavg()[0]
    walls = run_sequentially(sequential, console)
    slots = local_slots(parallel, 1)
    began = time.monotonic()
    with local_ray(slots, 1, local_gpus()):
        ray_start = time.monotonic() - began
        summary = execute(swept, ExecutorOptions(parallel=slots), console)
    sweep_wall = time.monotonic() - began
    if not summary.ok:
        raise RuntimeError(f"sweep bench: not every run completed ({results / 'sweep'})")
    starts = [progress.outcome.started_at for progress in summary.runs]
    ends = [start + progress.outcome.seconds for start, progress in zip(starts, summary.runs)]
    submitted = [progress.submitted_at for progress in summary.runs]
    delays = scheduling_delays(starts, submitted, ends)
    rows = []
    for run, progress, delay, wall in zip(swept, summary.runs, delays, walls):
        own = own_seconds(run)
        rows.append(
            {
                "strategy": run.config.strategy,
                "scheduling_s": delay,
                "startup_s": progress.outcome.seconds - own,
                "own_s": own,
                "sweep_process_s": progress.outcome.seconds,
                "sequential_process_s": wall,
            }
        )

    def mean(key: str) -> float:
        return sum(row[key] for row in rows) / len(rows)

    return {
        "runs": len(rows),
        "epochs": epochs,
        "cores": os.cpu_count(),
        "slots": slots,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "sequential_wall_s": sum(walls),
        "sweep_wall_s": sweep_wall,
        "ray_start_s": ray_start,
        "speedup": sum(walls) / sweep_wall,
        "mean_scheduling_s": mean("scheduling_s"),
        "mean_startup_s": mean("startup_s"),
        "mean_own_s": mean("own_s"),
        "overhead_per_own": (mean("scheduling_s") + mean("startup_s")) / mean("own_s"),
        "per_run": rows,
    }
