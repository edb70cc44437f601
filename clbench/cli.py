"""The ``clbench`` command line (also ``python cli.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import STREAMS
from clbench.config import RunConfig
from clbench.errors import UserError
from clbench.models import ARCHITECTURES

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (no usage dump) with exit code 2."""

    def error(self, message: str):
        raise UserError(message)


def stdout_console() -> Console:
    """Console for results on stdout; never wraps tables when writing to a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def _add_run_parser(commands) -> None:
    from strategies.registry import STRATEGIES

    run = commands.add_parser(
        "run",
        help="train one strategy on one stream and write its run record",
        description="Train task by task; after each task evaluate every task seen so far "
        "(top-1, top-5) and write <results>/<stream>/<arch>/<strategy>/<run_id>/record.json "
        "atomically. Unset training options take the stream's defaults.",
    )
    run.add_argument("--strategy", required=True, help=f"one of: {', '.join(STRATEGIES)}")
    run.add_argument("--stream", default="splitmnist", help=f"one of: {', '.join(STREAMS)} (default splitmnist)")
    run.add_argument("--arch", help=f"one of: {', '.join(ARCHITECTURES)} (default: the stream's)")
    run.add_argument("--seed", type=int, default=0, help="seed for data split, order of batches and init (default 0)")
    run.add_argument("--order", type=_int_list, help="permutation of the stream's tasks, e.g. 2,0,1")
    run.add_argument("--epochs", type=int, help="training epochs per task")
    run.add_argument("--lr", type=float, help="learning rate (SGD)")
    run.add_argument("--lr-step", type=int, help="multiply the LR by 0.1 every N epochs")
    run.add_argument("--batch-size", type=int, help="training mini-batch size")
    run.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    run.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay (default 5e-4)")
    run.add_argument("--image-size", type=int, help="input resolution (default: the stream's)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    run.add_argument("--results", default="results", help="results folder (default ./results)")
    run.add_argument("--run-id", help="record folder name (default seed<K>-<config hash>)")
    run.add_argument("--data-root", default="data", help="datasets folder (default ./data)")
    for spec in STRATEGIES.values():
        if spec.options:
            group = run.add_argument_group(f"{spec.name} options")
            for option in spec.options:
                group.add_argument(
                    option.flag, type=option.type, default=None,
                    help=f"{option.help} (default {option.default})",
                )
    run.set_defaults(handler=_cmd_run)


def _strategy_options(args: argparse.Namespace) -> dict:
    """The chosen strategy's options (defaults filled); refuse another strategy's flags."""
    from strategies.registry import STRATEGIES

    chosen = STRATEGIES[args.strategy]
    options = {}
    for spec in STRATEGIES.values():
        for option in spec.options:
            value = getattr(args, option.dest)
            if spec is chosen:
                options[option.dest] = option.default if value is None else value
            elif value is not None and option.dest not in {o.dest for o in chosen.options}:
                raise UserError(f"{option.flag} applies to --strategy {spec.name} only")
    return options


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from clbench.config import check_choice
    from clbench.runner import run
    from strategies.registry import STRATEGIES

    check_choice("strategy", args.strategy, STRATEGIES)
    config = RunConfig(
        strategy=args.strategy, stream=args.stream, arch=args.arch, seed=args.seed,
        order=args.order, epochs=args.epochs, lr=args.lr, lr_step=args.lr_step,
        batch_size=args.batch_size, momentum=args.momentum, weight_decay=args.weight_decay,
        image_size=args.image_size, device=args.device, results=args.results,
        run_id=args.run_id, data_root=args.data_root, options=_strategy_options(args),
    ).resolved()
    record = run(config, console)
    final = record["final"]
    table = Table(title=f"{config.strategy} on {config.stream} ({config.arch})", title_justify="left")
    table.add_column("task")
    table.add_column("top-1", justify="right")
    table.add_column("forgetting", justify="right")
    for name, top1, forgot in zip(record["tasks"], final["top1"], final["forgetting_per_task"]):
        table.add_row(name, f"{top1:.2f}", "" if forgot is None else f"{forgot:.2f}")
    table.add_row("average", f"{final['avg_top1']:.2f}", "")
    console.print(table)
    console.print(f"record: {config.run_dir() / 'record.json'}")
    return 0


def _cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from clbench.leaderboard import (
        leaderboard_rows,
        leaderboard_table,
        scan_records,
        task_order_by_stream,
    )

    root = Path(args.directory)
    if not root.is_dir():
        raise UserError(f"results folder {root} does not exist")
    scan = scan_records(root)
    for path, reason in scan.skipped:
        console.print(f"[yellow]skipped[/] {path}: {reason}")
    if not scan.records:
        raise UserError(f"no complete run records (record.json) under {root}")
    rows = leaderboard_rows(scan.records)
    stdout_console().print(leaderboard_table(rows, task_order_by_stream(scan.records)))
    return 0


def _cmd_list(args: argparse.Namespace, console: Console) -> int:
    from strategies.registry import STRATEGIES

    kinds = {
        "strategies": {name: spec.summary for name, spec in STRATEGIES.items()},
        "streams": {name: spec.summary for name, spec in STREAMS.items()},
        "architectures": ARCHITECTURES,
    }
    if args.names:
        print("\n".join(kinds[args.names]))
        return 0
    out = stdout_console()
    for kind, entries in kinds.items():
        out.print(f"[bold]{kind}[/]")
        width = max(map(len, entries))
        for name, summary in entries.items():
            out.print(f"{name:<{width}}  {summary}", soft_wrap=True, highlight=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="clbench",
        description="Continual-learning benchmark harness: PackNet and its rivals on "
        "task-incremental streams, with top-1/top-5, forgetting and storage.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_run_parser(commands)
    compare = commands.add_parser("compare", help="leaderboard of the run records under a folder")
    compare.add_argument("directory", help="folder to search for record.json files")
    compare.set_defaults(handler=_cmd_compare)
    listing = commands.add_parser("list", help="strategies, streams and architectures")
    listing.add_argument(
        "--names", choices=("strategies", "streams", "architectures"),
        help="print only the names of one kind, one per line",
    )
    listing.set_defaults(handler=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, 1 anything else)."""
    console = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args, console)
    except UserError as err:
        print(f"clbench: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("clbench: interrupted", file=sys.stderr)
        return 130
