"""``check RUN_DIR``: re-verify a run's per-task output fingerprints from its checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clbench.commands import stdout_console
from clbench.core.record import RunRecord

EXIT_DIFFERS = 1


def add_parser(commands) -> None:
    check = commands.add_parser(
        "check",
        help="re-verify a run's per-task output fingerprints from its final checkpoint",
        description="Reload the run's latest checkpoint (no data needed) and evaluate, for "
        "every task, the probe batch fingerprinted right after that task was trained. "
        "Strategies that promise old tasks never change (packnet, piggyback, "
        "classifier_only, individual) must reproduce every fingerprint bit for bit: exit 0 "
        "when they all do, 1 when any differs. For the others the table reports the drift "
        "(largest logit change, share of unchanged predictions) and the exit code is 0.",
    )
    check.add_argument(
        "run_dir", metavar="RUN_DIR", help="the run's folder (record.json, checkpoint.pt)"
    )
    check.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        help="device to evaluate on (default: the run's; outputs are bit-reproducible only "
        "on the same kind of device)",
    )
    check.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.run.fingerprint import recheck_run
    from clbench.run.runner import resolve_device
    from strategies.registry import STRATEGIES

    run_dir = Path(args.run_dir)
    record = RunRecord.in_folder(run_dir)
    device = resolve_device(args.device or record.environment["device"].split(":")[0])
    config, rows = recheck_run(run_dir, device)
    exact = STRATEGIES[config.strategy].old_tasks_exact
    promise = "old tasks must reproduce exactly" if exact else "no exactness promised: drift"
    table = Table(title=f"{config.strategy} on {config.stream} ({config.arch}): {promise}")
    for column in ("task", "fingerprinted after", "images", "sha256 at the time", "sha256 now"):
        table.add_column(column, justify="right" if column == "images" else "left")
    for column in ("max |Δ logit|", "same class %", "result"):
        table.add_column(column, justify="right")
    for row in rows:
        if row["exact"]:
            result = "[green]exact[/]"
        else:
            result = "[red]DIFFERS[/]" if exact else "[yellow]drift[/]"
        table.add_row(
            row["task"],
            record.tasks[row["after_task"]],
            str(row["images"]),
            row["sha256_run"][:16],
            row["sha256_now"][:16],
            f"{row['max_abs_diff']:.3g}",
            f"{row['agreement']:.1f}",
            result,
        )
    out = stdout_console()
    out.print(table)
    differ = sum(not row["exact"] for row in rows)
    if record.status != "complete":
        console.print(f"note: the run is not complete (status {record.status})", markup=False)
    if not exact:
        out.print(
            f"{differ} of {len(rows)} tasks drifted ({config.strategy} promises no exactness)"
        )
        return 0
    if differ:
        out.print(f"[red]{differ} of {len(rows)} tasks no longer reproduce their fingerprint[/]")
        return EXIT_DIFFERS
    out.print(f"[green]all {len(rows)} tasks reproduce their fingerprints exactly[/]")
    return 0
