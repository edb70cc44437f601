"""``sweep``: a grid of runs from one TOML file (see :mod:`clbench.sweep.grid`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

FORMATS = ("table", "commands")


def add_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="a grid of runs from a TOML grid file",
        description="A grid file's [base] holds run options, [grid] lists values whose "
        "cartesian product gives the runs, [[exclude]] drops combinations, [resources] "
        "sets gpus, cpus and retries per run.",
    )
    actions = sweep.add_subparsers(dest="sweep_command", required=True)
    plan = actions.add_parser(
        "plan",
        help="every run of a grid: run id, folder, status (and the counts)",
        description="One line per run: its run id, its folder and the status its record "
        "says (complete, running, failed, diverged, unreadable, pending); then the counts.",
    )
    plan.add_argument("grid", type=Path, help="TOML grid file")
    plan.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="commands: one plain `clbench run ...` line per run (default table)",
    )
    plan.set_defaults(handler=handle_plan, run_parser=commands.choices["run"])


def run_configurer(run_parser: argparse.ArgumentParser):
    """``run`` arguments -> the resolved config, through ``run``'s own parser."""
    from clbench.commands.run import config_from_args

    return lambda arguments: config_from_args(run_parser.parse_args(arguments))


def handle_plan(args: argparse.Namespace, console: Console) -> int:
    from clbench.sweep.grid import load_grid
    from clbench.sweep.plan import counts, plan

    runs = plan(load_grid(args.grid), run_configurer(args.run_parser))
    if args.format == "commands":
        for run in runs:
            print(run.command())
        return 0
    statuses = [run.status() for run in runs]
    for run, status in zip(runs, statuses):
        print(f"{run.config.run_id}\t{status}\t{run.folder}")
    print(counts(statuses))
    return 0
