"""``reproduce``: every published table of ``results/published/`` as one command: ``list``
the tables, ``plan`` an entry's runs (status, GPU hours), ``run`` them through the sweep
engine, ``report`` ours beside the published values cell by cell
(:mod:`clbench.reproduce`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clbench.commands import stdout_console
from clbench.commands.records import scan_complete_records
from clbench.core.errors import UserError

REPORT_FORMATS = ("table", "markdown", "latex")
PLAN_FORMATS = ("table", "commands")
EXECUTORS = ("local", "ray", "slurm")
DEFAULT_BENCH = Path("results") / "bench"


def _add_entry(parser: argparse.ArgumentParser, data: bool = True) -> None:
    parser.add_argument("name", help="a published table of `reproduce list`")
    parser.add_argument(
        "--mini",
        action="store_true",
        help="its miniature: the same grid shape on splitmnist with tiny settings (CPU, "
        "minutes); not comparable with the published values",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="the runs' results folder (default results/reproduce/NAME, NAME-mini with --mini)",
    )
    if data:
        parser.add_argument("--data-root", help="datasets folder of the runs (default ./data)")


def add_parser(commands) -> None:
    reproduce = commands.add_parser(
        "reproduce",
        help="published tables as commands: list, plan, run, report ours against them",
        description="Each published table (results/published/NAME.toml) holds its source, "
        "the grid of runs that reproduces every column and the published value of every "
        "cell.",
    )
    actions = reproduce.add_subparsers(dest="reproduce_command", required=True)
    run_parser = commands.choices["run"]
    listing = actions.add_parser("list", help="the published tables")
    listing.set_defaults(handler=handle_list)
    plan = actions.add_parser(
        "plan",
        help="an entry's runs, column by column, their status and the GPU hours",
        description="One line per run (run id, status, folder) under its column, the counts, "
        "then an estimate of the GPU hours of training from `bench` figures measured on a GPU.",
    )
    _add_entry(plan)
    plan.add_argument(
        "--format",
        choices=PLAN_FORMATS,
        default="table",
        help="commands: one plain `clbench run ...` line per run (default table)",
    )
    plan.add_argument(
        "--bench",
        type=Path,
        default=DEFAULT_BENCH,
        help=f"folder of `bench --json` figures (*.json, *.jsonl; default {DEFAULT_BENCH})",
    )
    plan.set_defaults(handler=handle_plan, run_parser=run_parser)
    run = actions.add_parser(
        "run",
        help="run an entry's runs through the sweep engine (complete runs are skipped)",
        description="The entry's runs, each once, as one sweep (see `sweep run`): complete "
        "runs are skipped, unfinished ones resume. Exit code 0 when every run is complete.",
    )
    _add_entry(run)
    run.add_argument("--executor", choices=EXECUTORS, default="local", help="as `sweep run`")
    run.add_argument("--parallel", type=int, metavar="N", help="local: at most N runs at once")
    run.add_argument("--address", help="ray: the cluster's address")
    run.set_defaults(handler=handle_run, run_parser=run_parser)
    report = actions.add_parser(
        "report",
        help="ours beside the published values, cell by cell",
        description="Per column and row: ours (mean ± std, runs), the published value, the "
        "difference and whether it is within the published spread or the entry's stated "
        "tolerance; cells not yet run are marked, the storage rows are always computed.",
    )
    _add_entry(report, data=False)
    report.add_argument("--format", choices=REPORT_FORMATS, default="table", help="default table")
    report.set_defaults(handler=handle_report, run_parser=run_parser)


def handle_list(args: argparse.Namespace, console: Console) -> int:
    from clbench.reproduce.registry import registry

    table = Table(title="Published tables (results/published/)", title_justify="left")
    for name in ("name", "source", "columns", "runs", "what"):
        table.add_column(name, justify="right" if name in ("columns", "runs") else "left")
    for name, entry in registry().items():
        runs = sum(
            len(entry.grid(column, False, entry.results_folder(False), None).combinations())
            for column in entry.columns
            if column.runs
        )
        source = f"{entry.cite}: {entry.source}"
        table.add_row(name, source, str(len(entry.columns)), str(runs), entry.title)
    stdout_console().print(table)
    return 0


def entry_plans(args: argparse.Namespace, results: Path | None = None):
    """(entry, its column plans, results folder) of the command line's entry."""
    from clbench.commands.sweep import run_configurer
    from clbench.reproduce.plan import plan_entry
    from clbench.reproduce.registry import entry_named

    entry = entry_named(args.name)
    mini = getattr(args, "mini", False)
    folder = results or getattr(args, "results", None) or entry.results_folder(mini)
    configure = run_configurer(args.run_parser)
    plans = plan_entry(entry, configure, mini, folder, getattr(args, "data_root", None))
    return entry, plans, folder


def handle_plan(args: argparse.Namespace, console: Console) -> int:
    from clbench.reproduce.estimate import gpu_hours, load_figures
    from clbench.reproduce.plan import unique_runs
    from clbench.sweep.plan import counts

    entry, plans, _ = entry_plans(args)
    runs = unique_runs(plans)
    if args.format == "commands":
        for run in runs:
            print(run.command())
        return 0
    for column_plan in plans:
        column = column_plan.column
        if not column.runs:
            print(f"# {column.label}: not reproducible: {column.not_reproducible}")
            continue
        count = len(column_plan.runs)
        print(f"# {column.label}: {count} runs; the paper's cells average {column.averages}")
        for run in column_plan.runs:
            print(f"{run.config.run_id}\t{run.status()}\t{run.folder}")
    print(counts([run.status() for run in runs]))
    if args.mini:
        print("GPU hours: none, a miniature runs on the CPU")
    else:
        for line in gpu_hours([run.config for run in runs], load_figures(args.bench)):
            print(line)
    return 0


def handle_run(args: argparse.Namespace, console: Console) -> int:
    for flag, value, executor in (
        ("--parallel", args.parallel, "local"),
        ("--address", args.address, "ray"),
    ):
        if value is not None and args.executor != executor:
            raise UserError(f"{flag} applies to --executor {executor} only")
    if args.parallel is not None and args.parallel < 1:
        raise UserError(f"--parallel must be >= 1, not {args.parallel}")
    from clbench.reproduce.plan import unique_runs
    from clbench.sweep.display import summary_table
    from clbench.sweep.engine import ExecutorOptions, execute

    entry, plans, folder = entry_plans(args)
    runs = unique_runs(plans)
    if not runs:
        console.print(f"{entry.name}: no column can be reproduced by a run", highlight=False)
        return 0
    options = ExecutorOptions(executor=args.executor, parallel=args.parallel, address=args.address)
    summary = execute(runs, options, console)
    out = stdout_console()
    out.print(summary_table(summary))
    command = ["clbench", "reproduce", "report", entry.name, "--results", str(folder)]
    command += ["--mini"] if args.mini else []
    out.print(f"report: {' '.join(command)}", markup=False, highlight=False)
    return 0 if summary.ok else 1


def column_storage(plans) -> dict[str, dict | None]:
    """The storage formula's result per column label (None without a strategy)."""
    from clbench.commands.storage import strategy_storage

    return {
        plan.column.label: None
        if plan.config is None
        else strategy_storage(
            plan.config.stream, plan.config.arch, plan.config.strategy, plan.config.options
        )
        for plan in plans
    }


def print_report(entry, plans, records, output_format: str, mini: bool = False) -> None:
    """The report of ``records`` against ``entry`` on stdout, in ``output_format``."""
    from clbench.report.leaderboard import rich_table, view_latex, view_markdown
    from clbench.reproduce.report import report_cells, report_notes, report_view

    cells = report_cells(entry, plans, records, column_storage(plans), mini)
    view, notes = report_view(entry, cells, mini), report_notes(entry, cells, mini)
    if output_format == "table":
        out = stdout_console()
        out.print(rich_table(view))
        for note in notes:
            out.print(note, markup=False, highlight=False)
    elif output_format == "markdown":
        print(view_markdown(view, notes), end="")
    else:
        print(view_latex(view, notes), end="")


def handle_report(args: argparse.Namespace, console: Console) -> int:
    entry, plans, folder = entry_plans(args)
    scan = scan_complete_records(folder, console, required=False)
    print_report(entry, plans, scan.records, args.format, args.mini)
    return 0
