"""``plot``: seaborn figures (PNG) of the run records under a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from clbench.commands.records import scan_complete_records
from clbench.core.errors import UserError


def add_parser(commands) -> None:
    plot = commands.add_parser(
        "plot",
        help="figures of the run records under a folder, saved as PNG under DIR/plots/",
        description="Accuracy-matrix heatmaps, old tasks' accuracy as tasks are added, error "
        "per task order and storage against average accuracy, written to DIR/plots/.",
    )
    plot.add_argument("directory", help="folder to search for record.json files")
    plot.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.report.leaderboard import build_groups

    root = Path(args.directory)
    scan = scan_complete_records(root, console)
    from clbench.report.plots import plot_all  # seaborn: seconds to import, once needed

    try:
        written, messages = plot_all(build_groups(scan.records), root / "plots")
    except OSError as err:
        raise UserError(f"cannot write the figures into {root / 'plots'}: {err.strerror}") from None
    for message in messages:
        console.print(message, highlight=False, soft_wrap=True)
    for path in written:
        print(path)
    return 0
