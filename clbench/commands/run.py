"""``run``: train one strategy on one stream and write its run record.

The flags come from the declarations of :class:`clbench.core.config.RunConfig`'s fields and
of each strategy's options (:mod:`strategies.registry`): a new option is added in one
place. The training machinery is imported only when a run starts.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import STREAMS
from benchmarks.catalog import permutable_tasks
from clbench.commands import stdout_console
from clbench.core.architectures import ARCHITECTURES
from clbench.core.config import Flag, RunConfig, command_line_fields
from clbench.core.errors import RunDiverged, UserError
from clbench.core.record import RECORD_NAME
from strategies.registry import STRATEGIES

MAX_ORDERED_TASKS = 5
"""``--orders all`` refuses streams with more tasks to permute (6! = 720 runs)."""
GROUPS = {
    "speed": (
        "input pipeline and speed",
        "Small image datasets (CUBS, Cars, Flowers, Sketch, CIFAR-100) are decoded once "
        "(after the bounding-box crop), resized as the papers' transforms resize them, kept "
        "as uint8 tensors (on the GPU when they fit) and cached on disk; random crops, flips "
        "and normalisation run on the device in batches. ImageNet, Places365 and WikiArt "
        "stream from disk through DataLoader workers.",
    ),
    "checkpoints": (
        "checkpoints",
        "After every task the run saves <run folder>/checkpoint.pt; running the same "
        "configuration again (same run folder) continues from it. A complete run is "
        "reported, not re-run.",
    ),
}
CHOICES_IN_HELP = {"strategy": STRATEGIES, "stream": STREAMS, "arch": ARCHITECTURES}
PROTOCOL_KEYS = {key for spec in STREAMS.values() for key in spec.protocol.common}
"""Run options whose default is the stream's protocol for the strategy."""


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` with its ValueError reported by argparse as a one-line message (the
    builtin types keep argparse's own "invalid int value" message)."""
    if parse in (int, float, str):
        return parse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _add_flag(parser, name: str, flag: Flag, default: Any) -> None:
    """One ``RunConfig`` field as an argparse option (defaults are applied later, by
    :func:`clbench.resolve.resolve`, so argparse leaves unset options ``None``)."""
    help_text = flag.help
    if name in CHOICES_IN_HELP:
        help_text += f": {', '.join(CHOICES_IN_HELP[name])}"
    if default is not None and flag.parse is not None:
        help_text += f" (default {default})"
    elif name in PROTOCOL_KEYS:
        help_text += " (default: the stream's protocol for the strategy, below)"
    kwargs: dict[str, Any] = {"dest": name, "help": help_text, "default": None}
    if flag.action is not None:
        kwargs["action"] = flag.action
    if flag.parse is not None:  # a value (``extend``: each one adds to a list)
        kwargs.update(type=_argument_type(flag.parse), choices=flag.choices)
        if flag.metavar:
            kwargs["metavar"] = flag.metavar
    if name == "strategy":
        kwargs["required"] = True
    parser.add_argument(flag.flag, **kwargs)


def add_parser(commands) -> None:
    from clbench.protocol import protocol_summary

    run = commands.add_parser(
        "run",
        help="train one strategy on one stream and write its run record",
        description="Train task by task; after each task evaluate every task seen so far "
        "(top-1, top-5) and write <results>/<stream>/<arch>/<strategy>/<run_id>/record.json "
        "atomically. Unset training options take the stream's protocol for the strategy "
        "(the papers' on the paper streams, listed below; with sources: list --protocol) and "
        "are recorded in the run's config.",
        epilog="defaults per stream and strategy:\n" + protocol_summary(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    groups = {key: run.add_argument_group(title, text) for key, (title, text) in GROUPS.items()}
    defaults = RunConfig(strategy="")
    for name, flag in command_line_fields():
        _add_flag(groups.get(flag.group, run), name, flag, getattr(defaults, name))
        if name == "order":
            run.add_argument(
                "--orders",
                choices=["all"],
                help="all: one run (and record) per permutation of the tasks --order permutes",
            )
    start = groups["checkpoints"].add_mutually_exclusive_group()
    start.add_argument(
        "--resume",
        dest="start",
        action="store_const",
        const="resume",
        default="auto",
        help="continue the run from its latest checkpoint; an error if there is no such run "
        "(without --resume an unfinished run is continued too)",
    )
    start.add_argument(
        "--restart",
        dest="start",
        action="store_const",
        const="restart",
        help="discard the run's checkpoints and record and start it over (complete runs too)",
    )
    for spec in STRATEGIES.values():
        if spec.options:
            group = run.add_argument_group(f"{spec.name} options")
            for option in spec.options:
                kind = (
                    {"action": "store_true"}
                    if option.type is bool
                    else {"type": _argument_type(option.type)}
                )
                default = "" if option.default is None else f" (default {option.default})"
                group.add_argument(option.flag, default=None, help=option.help + default, **kind)
    run.set_defaults(handler=handle)


def given_strategy_options(args: argparse.Namespace) -> dict:
    """Strategy flags given on the command line; another strategy's flag is an error."""
    own = {option.dest for option in STRATEGIES.get_or_fail(args.strategy).options}
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


def config_from_args(args: argparse.Namespace, order: list[int] | None = None) -> RunConfig:
    """The resolved run configuration (``order`` replaces ``--order`` when given)."""
    from clbench.resolve import resolve

    values = {name: getattr(args, name) for name, _ in command_line_fields()}
    values = {name: value for name, value in values.items() if value is not None}
    if order is not None:
        values["order"] = order
    return resolve(RunConfig(**values, options=given_strategy_options(args)))


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """One config, or with ``--orders all`` one per task order (each its own run id)."""
    if args.orders is None:
        return [config_from_args(args)]
    stream = args.stream or RunConfig.__dataclass_fields__["stream"].default
    STREAMS.check(stream)
    if args.order is not None:
        raise UserError("--order and --orders exclude each other")
    if args.run_id is not None:
        raise UserError("--run-id names one run; --orders all writes one run per order")
    count = permutable_tasks(stream)
    if count > MAX_ORDERED_TASKS:
        raise UserError(
            f"--orders all: {stream} has {count} tasks to permute "
            f"(at most {MAX_ORDERED_TASKS}); pass --order instead"
        )
    orders = itertools.permutations(range(count))
    return [config_from_args(args, list(order)) for order in orders]


def _cell(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def result_table(record, title: str) -> Table:
    """Final top-1 and forgetting per task; the pretrained network's own accuracy before
    training, when task 0 is its task; the average over the added tasks."""
    final = record.final
    table = Table(title=title, title_justify="left")
    table.add_column("task")
    table.add_column("top-1", justify="right")
    table.add_column("forgetting", justify="right")
    pretrained = record.pretrained_network
    if pretrained is not None:
        label = f"{pretrained['task']}, before training (the pretrained network)"
        table.add_row(label, _cell(pretrained["top1"]), "")
    for name, top1, forgot in zip(record.tasks, final["top1"], final["forgetting_per_task"]):
        table.add_row(name, _cell(top1), "" if forgot is None else f"{forgot:.2f}")
    added = final.get("avg_top1_added", final["avg_top1"])
    table.add_row("average of the added tasks" if pretrained else "average", _cell(added), "")
    return table


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.run.runner import run

    configs = configs_from_args(args)
    out = stdout_console()
    for number, config in enumerate(configs, start=1):
        if len(configs) > 1:
            order = ",".join(map(str, config.order))
            console.print(f"order {number}/{len(configs)}: {order}", highlight=False)
        try:
            record = run(config, console, args.start)
        except RunDiverged as err:
            print(f"clbench: {err}", file=sys.stderr)
            return 1
        title = f"{config.strategy} on {config.stream} ({config.arch})"
        if len(configs) > 1:
            title += f", order {','.join(map(str, config.order))}"
        out.print(result_table(record, title))
        console.print(f"record: {config.run_dir() / RECORD_NAME}", soft_wrap=True, markup=False)
    return 0
