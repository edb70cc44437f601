"""``run``: train one strategy on one stream and write its run record."""

from __future__ import annotations

import argparse
import itertools
import sys

from rich.console import Console
from rich.table import Table

from benchmarks import STREAMS
from benchmarks.catalog import permutable_tasks
from clbench.config import MAX_DEFAULT_WORKERS, PIPELINES, PRECISIONS, RunConfig, check_choice
from clbench.errors import RunDiverged, UserError
from clbench.models import ARCHITECTURES

MAX_ORDERED_TASKS = 5
"""``--orders all`` refuses streams with more tasks to permute (6! = 720 runs)."""


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
    add(
        "--order",
        type=_int_list,
        help="permutation of the stream's tasks, e.g. 2,0,1 (ImageNet streams: of the tasks "
        "added after ImageNet, which stays first)",
    )
    add(
        "--orders",
        choices=["all"],
        help="all: one run (and record) per permutation of the tasks --order permutes",
    )
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
    add(
        "--no-pretrained",
        dest="pretrained",
        action="store_false",
        default=None,
        help="start from random weights (ImageNet streams start from the torchvision "
        "IMAGENET1K_V1 weights in $TORCH_HOME/hub/checkpoints)",
    )
    add("--weights", help="ImageNet-pretrained torchvision state dict (.pth) to start from")
    fast = run.add_argument_group(
        "input pipeline and speed",
        "Small image datasets (CUBS, Cars, Flowers, Sketch, CIFAR-100) are decoded once "
        "(after the bounding-box crop), resized as the papers' transforms resize them, kept "
        "as uint8 tensors (on the GPU when they fit) and cached on disk; random crops, flips "
        "and normalisation run on the device in batches. ImageNet, Places365 and WikiArt "
        "stream from disk through DataLoader workers.",
    )
    fast.add_argument(
        "--pipeline",
        choices=PIPELINES,
        default="memory",
        help="memory (default): as above; loader: every image dataset through torchvision "
        "transforms in DataLoader workers",
    )
    fast.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="bf16: autocast (weights and optimizer stay fp32); auto (default): bf16 on "
        "CUDA, fp32 on the CPU. On CUDA, inputs and weights are channels_last and "
        "cudnn.benchmark is on",
    )
    fast.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the backbone (needs a C++ compiler; the first steps compile)",
    )
    fast.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="DataLoader worker processes for decoding and large datasets (default: CPU "
        f"cores, at most {MAX_DEFAULT_WORKERS})",
    )
    fast.add_argument(
        "--cache-dir",
        help="decoded-image cache (default $CLBENCH_CACHE_DIR or ~/.cache/clbench/decoded)",
    )
    safety = run.add_argument_group(
        "checkpoints",
        "After every task the run saves <run folder>/checkpoint.pt; running the same "
        "configuration again (same run folder) continues from it. A complete run is "
        "reported, not re-run.",
    )
    safety.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="also save checkpoint-epoch.pt every N epochs inside a task (default 0: only "
        "after each task)",
    )
    start = safety.add_mutually_exclusive_group()
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


def config_from_args(args: argparse.Namespace, order: list[int] | None = None) -> RunConfig:
    """Validate names and build the resolved run configuration (``order`` replaces
    ``--order`` when given)."""
    from strategies.registry import STRATEGIES

    check_choice("strategy", args.strategy, STRATEGIES)
    return RunConfig(
        strategy=args.strategy,
        stream=args.stream,
        arch=args.arch,
        seed=args.seed,
        order=args.order if order is None else order,
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
        checkpoint_every=args.checkpoint_every,
        pretrained=args.pretrained,
        weights=args.weights,
        pipeline=args.pipeline,
        precision=args.precision,
        compile=args.compile,
        workers=args.workers,
        cache_dir=args.cache_dir,
        options=given_strategy_options(args),
    ).resolved()


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """One config, or with ``--orders all`` one per task order (each its own run id)."""
    if args.orders is None:
        return [config_from_args(args)]
    check_choice("stream", args.stream, STREAMS)
    if args.order is not None:
        raise UserError("--order and --orders exclude each other")
    if args.run_id is not None:
        raise UserError("--run-id names one run; --orders all writes one run per order")
    count = permutable_tasks(args.stream)
    if count > MAX_ORDERED_TASKS:
        raise UserError(
            f"--orders all: {args.stream} has {count} tasks to permute "
            f"(at most {MAX_ORDERED_TASKS}); pass --order instead"
        )
    orders = itertools.permutations(range(count))
    return [config_from_args(args, list(order)) for order in orders]


def _cell(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.runner import run

    configs = configs_from_args(args)
    for config in configs:
        try:
            record = run(config, console, args.start)
        except RunDiverged as err:
            print(f"clbench: {err}", file=sys.stderr)
            return 1
        final = record["final"]
        title = f"{config.strategy} on {config.stream} ({config.arch})"
        if len(configs) > 1:
            title += f", order {','.join(map(str, config.order))}"
        table = Table(title=title, title_justify="left")
        table.add_column("task")
        table.add_column("top-1", justify="right")
        table.add_column("forgetting", justify="right")
        for name, top1, forgot in zip(record["tasks"], final["top1"], final["forgetting_per_task"]):
            table.add_row(name, _cell(top1), "" if forgot is None else f"{forgot:.2f}")
        table.add_row("average", _cell(final["avg_top1"]), "")
        console.print(table)
        console.print(f"record: {config.run_dir() / 'record.json'}")
    return 0
