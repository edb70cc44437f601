"""``sweep``: a grid of runs from one TOML file (see :mod:`clbench.sweep.grid`): ``plan``
lists them, ``run`` runs them on Ray or SLURM (:mod:`clbench.sweep.engine`), ``bench``
measures the engine (:mod:`clbench.bench.sweep`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clbench.commands import stdout_console
from clbench.core.errors import UserError

FORMATS = ("table", "commands")
EXECUTORS = ("local", "ray", "slurm")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _add_grid(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", type=Path, help="TOML grid file")
    parser.add_argument(
        "--results", type=Path, help="write the runs under this folder (replaces [base] results)"
    )


def add_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="a grid of runs from a TOML grid file: plan it, run it, measure the engine",
        description="A grid file's [base] holds run options, [grid] lists values whose "
        "cartesian product gives the runs, [[exclude]] drops combinations, [resources] "
        "sets gpus, cpus and retries per run.",
    )
    actions = sweep.add_subparsers(dest="sweep_command", required=True)
    run_parser = commands.choices["run"]
    plan = actions.add_parser(
        "plan",
        help="every run of a grid: run id, folder, status (and the counts)",
        description="One line per run: its run id, the status its record says (complete, "
        "running, interrupted, failed, diverged, unreadable, pending) and its folder; "
        "then the counts.",
    )
    _add_grid(plan)
    plan.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="commands: one plain `clbench run ...` line per run (default table)",
    )
    plan.set_defaults(handler=handle_plan, run_parser=run_parser)
    run = actions.add_parser(
        "run",
        help="run a grid on this machine's CPUs/GPUs, a Ray cluster or SLURM",
        description="Each run is its own `clbench run` process (the command `sweep plan "
        "--format commands` prints), its output in <run folder>/sweep.log. Complete and "
        "diverged runs are skipped, unfinished ones resume from their checkpoints; a run "
        "whose process died is retried up to [resources] retries, one that exits 1 or 2 "
        "is not. Exit code 0 when every run is complete, 1 otherwise.",
    )
    _add_grid(run)
    run.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: Ray inside this process on this machine (default); ray: the Ray "
        "cluster at --address; slurm: submitit job arrays",
    )
    run.add_argument(
        "--parallel",
        type=_positive,
        metavar="N",
        help="local: at most N runs at once (default: CPU cores / [resources] cpus; GPUs "
        "limit GPU runs further)",
    )
    run.add_argument("--address", help="ray: the cluster's address (host:port, ray://..., auto)")
    run.add_argument("--partition", help="slurm: the partition (default: the cluster's)")
    run.add_argument(
        "--time-limit",
        type=_positive,
        metavar="MINUTES",
        default=24 * 60,
        help="slurm: per job; a job that reaches it is requeued and resumes (default 1440)",
    )
    run.add_argument(
        "--array-parallelism",
        type=_positive,
        metavar="N",
        default=256,
        help="slurm: array elements running at once (default 256)",
    )
    run.add_argument(
        "--slurm-folder",
        type=Path,
        help="slurm: submitit's job files and logs (default <results>/.slurm/%%j)",
    )
    run.set_defaults(handler=handle_run, run_parser=run_parser)
    bench = actions.add_parser(
        "bench",
        help="the engine's overhead per run; every strategy on splitmnist, sequential vs sweep",
        description="Runs every strategy on splitmnist (1 epoch by default) one after "
        "the other as `clbench run` processes, then as one sweep on this machine, and "
        "prints each run's scheduling delay, process start-up and own time, and both wall "
        "times. Figures, not a test: the machine's load moves them.",
    )
    bench.add_argument("--epochs", type=_positive, default=1, help="per task (default 1)")
    bench.add_argument("--parallel", type=_positive, metavar="N", help="as for sweep run")
    bench.add_argument(
        "--results", type=Path, help="where the runs go (default: a temporary folder, removed)"
    )
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.set_defaults(handler=handle_bench, run_parser=run_parser)


def run_configurer(run_parser: argparse.ArgumentParser):
    """``run`` arguments -> the resolved config, through ``run``'s own parser."""
    from clbench.commands.run import config_from_args

    return lambda arguments: config_from_args(run_parser.parse_args(arguments))


def planned_runs(args: argparse.Namespace):
    """The grid's runs (``--results`` applied)."""
    from clbench.sweep.grid import load_grid
    from clbench.sweep.plan import plan

    grid = load_grid(args.grid)
    if args.results is not None:
        grid = grid.with_results(args.results)
    return plan(grid, run_configurer(args.run_parser))


def handle_plan(args: argparse.Namespace, console: Console) -> int:
    from clbench.sweep.plan import counts

    runs = planned_runs(args)
    if args.format == "commands":
        for run in runs:
            print(run.command())
        return 0
    statuses = [run.status() for run in runs]
    for run, status in zip(runs, statuses):
        print(f"{run.config.run_id}\t{status}\t{run.folder}")
    print(counts(statuses))
    return 0


def executor_options(args: argparse.Namespace):
    """The engine's options from the command line; options of another executor are
    refused."""
    from clbench.sweep.engine import ExecutorOptions

    own = {"local": ("parallel",), "ray": ("address",), "slurm": ("partition", "slurm_folder")}
    for executor, names in own.items():
        for name in names:
            if getattr(args, name) is not None and executor != args.executor:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} applies to --executor {executor} only")
    return ExecutorOptions(
        executor=args.executor,
        parallel=args.parallel,
        address=args.address,
        partition=args.partition,
        time_limit=args.time_limit,
        array_parallelism=args.array_parallelism,
        slurm_folder=args.slurm_folder,
    )


def handle_run(args: argparse.Namespace, console: Console) -> int:
    from clbench.sweep.display import summary_table
    from clbench.sweep.engine import execute

    options = executor_options(args)
    runs = planned_runs(args)
    try:
        summary = execute(runs, options, console)
    except KeyboardInterrupt:
        console.print("sweep stopped: every attempt was stopped; the same command resumes")
        raise
    out = stdout_console()
    out.print(summary_table(summary))
    for folder in summary.results_folders:
        out.print(f"compare: clbench compare {folder}", markup=False, highlight=False)
    return 0 if summary.ok else 1


def handle_bench(args: argparse.Namespace, console: Console) -> int:
    from clbench.bench.sweep import sweep_bench

    configure = run_configurer(args.run_parser)
    with contextlib.ExitStack() as stack:
        results = args.results or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        figures = sweep_bench(args.epochs, args.parallel, results, configure, console)
    print_figures(figures, args.json)
    return 0


def print_figures(figures: dict, as_json: bool) -> None:
    """The figures on stdout: JSON, or a table and the totals."""
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    out = stdout_console()
    title = f"sweep bench: {figures['runs']} splitmnist runs, {figures['epochs']} epoch(s)"
    table = Table(title=title)
    columns = (
        ("strategy", "strategy", "{}"),
        ("scheduling s", "scheduling_s", "{:.2f}"),
        ("start-up s", "startup_s", "{:.1f}"),
        ("own s", "own_s", "{:.1f}"),
        ("sweep process s", "sweep_process_s", "{:.1f}"),
        ("sequential process s", "sequential_process_s", "{:.1f}"),
    )
    for name, _, _ in columns:
        table.add_column(name, justify="left" if name == "strategy" else "right")
    for row in figures["per_run"]:
        table.add_row(*(text.format(row[key]) for _, key, text in columns))
    out.print(table)
    out.print(
        f"sequential {figures['sequential_wall_s']:.1f} s, sweep {figures['sweep_wall_s']:.1f} s "
        f"({figures['slots']} at once on {figures['cores']} cores, Ray start "
        f"{figures['ray_start_s']:.1f} s): x{figures['speedup']:.2f}; per run, scheduling "
        f"{figures['mean_scheduling_s']:.2f} s + start-up {figures['mean_startup_s']:.1f} s "
        f"against its own {figures['mean_own_s']:.1f} s (x{figures['overhead_per_own']:.2f}); "
        f"load average {figures['load_average_before']:.1f} before, "
        f"{figures['load_average_after']:.1f} after",
        markup=False,
        highlight=False,
    )
