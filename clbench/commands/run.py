"""``run``: train one strategy on one stream and write its run record."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from benchmarks import STREAMS
from clbench.config import RunConfig, check_choice
from clbench.errors import UserError
from clbench.models import ARCHITECTURES


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: '{text}'") from None


def add_parser(commands) -> None:
    from strategies.registry import STRATEGIES

    run = commands.add_parser(
        "run",
        help="train one strategy on one stream and write its run record",
        description="Train task by task; after each task evaluate every task seen so far "
        "(top-1, top-5) and write <results>/<stream>/<arch>/<strategy>/<run_id>/record.json "
        "atomically. Unset training options take the stream's defaults.",
    )
    add = run.add_argument
    add("--strategy", required=True, help=f"one of: {', '.join(STRATEGIES)}")
    add("--stream", default="splitmnist", help=f"one of: {', '.join(STREAMS)} (default splitmnist)")
    add("--arch", help=f"one of: {', '.join(ARCHITECTURES)} (default: the stream's)")
    add("--seed", type=int, default=0, help="seed for split, batch order and init (default 0)")
    add("--order", type=_int_list, help="permutation of the stream's tasks, e.g. 2,0,1")
    add("--epochs", type=int, help="training epochs per task")
    add("--lr", type=float, help="learning rate (SGD)")
    add("--lr-step", type=int, help="multiply the LR by 0.1 every N epochs")
    add("--batch-size", type=int, help="training mini-batch size")
    add("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    add("--weight-decay", type=float, default=5e-4, help="weight decay (default 5e-4)")
    add("--image-size", type=int, help="input resolution (default: the stream's)")
    add("--device", default="auto", help="auto | cpu | cuda (default auto)")
    add("--results", default="results", help="results folder (default ./results)")
    add("--run-id", help="record folder name (default seed<K>-<config hash>)")
    add("--data-root", default="data", help="datasets folder (default ./data)")
    for spec in STRATEGIES.values():
        if spec.options:
            group = run.add_argument_group(f"{spec.name} options")
            for option in spec.options:
                kind = {"action": "store_true"} if option.type is bool else {"type": option.type}
                default = "" if option.default is None else f" (default {option.default})"
                group.add_argument(option.flag, default=None, help=option.help + default, **kind)
    run.set_defaults(handler=handle)


def given_strategy_options(args: argparse.Namespace) -> dict:
    """Strategy flags given on the command line; another strategy's flag is an error."""
    from strategies.registry import STRATEGIES

    own = {option.dest for option in STRATEGIES[args.strategy].options}
    given = {}
    for spec in STRATEGIES.values():
        for option in spec.options:
            value = getattr(args, option.dest)
            if value is None:
                continue
            if option.dest not in own:
                raise UserError(f"{option.flag} applies to --strategy {spec.name} only")
            given[option.dest] = value
    return given


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Validate names and build the resolved run configuration."""
    from strategies.registry import STRATEGIES

    check_choice("strategy", args.strategy, STRATEGIES)
    return RunConfig(
        strategy=args.strategy,
        stream=args.stream,
        arch=args.arch,
        seed=args.seed,
        order=args.order,
        epochs=args.epochs,
        lr=args.lr,
        lr_step=args.lr_step,
        batch_size=args.batch_size,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        image_size=args.image_size,
        device=args.device,
        results=args.results,
        run_id=args.run_id,
        data_root=args.data_root,
        options=given_strategy_options(args),
    ).resolved()


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.runner import run

    config = config_from_args(args)
    record = run(config, console)
    final = record["final"]
    title = f"{config.strategy} on {config.stream} ({config.arch})"
    table = Table(title=title, title_justify="left")
    table.add_column("task")
    table.add_column("top-1", justify="right")
    table.add_column("forgetting", justify="right")
    for name, top1, forgot in zip(record["tasks"], final["top1"], final["forgetting_per_task"]):
        table.add_row(name, f"{top1:.2f}", "" if forgot is None else f"{forgot:.2f}")
    table.add_row("average", f"{final['avg_top1']:.2f}", "")
    console.print(table)
    console.print(f"record: {config.run_dir() / 'record.json'}")
    return 0
