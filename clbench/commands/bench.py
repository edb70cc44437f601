"""``bench``: training throughput through our pipeline and PackNet's per-step cost,
measured in one process per architecture."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from clbench.commands import stdout_console
from clbench.core import domains
from clbench.core.architectures import ARCHITECTURES
from clbench.core.config import DEVICES

DEFAULT_ARCHS = ("vgg16", "vgg16_bn", "resnet50", "densenet121")
THROUGHPUT_COLUMNS = (
    ("model alone img/s", "model_only_ips", "{:,.0f}"),
    ("fine-tuning img/s", "finetune_ips", "{:,.0f}"),
    ("PackNet img/s", "packnet_ips", "{:,.0f}"),
    ("fine-tuning / model", "finetune_ratio", "{:.3f}"),
    ("PackNet / model", "packnet_ratio", "{:.3f}"),
    ("pipeline share", "pipeline_share", "{:.3f}"),
)
STEP_COLUMNS = (
    ("plain train ms", "plain_train_ms", "{:.1f}"),
    ("PackNet train ms", "packnet_train_ms", "{:.1f}"),
    ("train ratio", "train_ratio", "{:.3f}"),
    ("vs frozen-BN plain", "train_ratio_vs_frozen_bn", "{:.3f}"),
    ("eval ratio", "eval_ratio", "{:.3f}"),
    ("materialise ms", "materialise_ms", "{:.1f}"),
    ("Avalanche PackNet / ours, train", "avalanche_vs_ours_train", "{:.2f}"),
    ("Avalanche PackNet / ours, eval", "avalanche_vs_ours_eval", "{:.2f}"),
)


def checked(check: domains.Check) -> Callable[[str], int]:
    """An argparse type: an integer within ``check``'s domain (one-line error otherwise)."""

    def convert(text: str) -> int:
        value = int(text)  # argparse reports a ValueError as "invalid int value"
        problem = check(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    convert.__name__ = "int"
    return convert


def add_parser(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="training images/s (model alone vs our pipeline) and PackNet's step cost",
        description="For each architecture, in one process: training images per second of "
        "(a) the model alone on device tensors, (b) fine-tuning and (c) PackNet through the "
        "in-memory pipeline (decoded uint8 images, random-resized-crop + flip on the device) "
        "and Avalanche's training loop, with the ratios b/a and c/a, and (d) the pipeline "
        "alone, whose time per image over (b)'s is its share of a fine-tuning step; then the "
        "median "
        "training-step time "
        "(forward, backward, SGD momentum 0.9 + weight decay) of plain fine-tuning and of "
        "PackNet on task 1 after task 0 was packed at 0.5 (frozen weights restored after "
        "every step), their ratio; the evaluation-step ratio on an older task (weights "
        "materialised once); and Avalanche's built-in PackNet against ours on a BN-free "
        "conv net (Avalanche's refuses BatchNorm). Synthetic inputs; figures, not a test.",
    )
    bench.add_argument(
        "--arch", action="append", help=f"repeatable (default: {', '.join(DEFAULT_ARCHS)})"
    )
    bench.add_argument("--device", default="auto", choices=DEVICES, help="default auto")
    bench.add_argument(
        "--image-size",
        type=checked(domains.image_size),
        help="input size (default 224 on CUDA, 32 on CPU)",
    )
    bench.add_argument(
        "--no-speed",
        action="store_true",
        help="no bf16 autocast / channels_last (default: on for CUDA, off on CPU)",
    )
    bench.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the backbone of (a)-(c) first (needs a C++ compiler; the "
        "warm-up steps compile)",
    )
    positive = checked(domains.at_least(1))
    bench.add_argument("--batch-size", type=positive, default=32, help="batch size (default 32)")
    bench.add_argument("--steps", type=positive, default=20, help="timed steps per variant (20)")
    bench.add_argument("--json", action="store_true", help="print one JSON object per arch")
    bench.set_defaults(handler=handle)


def _table(title: str, columns, results: list[dict]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("arch")
    table.add_column("input")
    for name, _, _ in columns:
        table.add_column(name, justify="right")
    for figures in results:
        size = figures["image_size"]
        shape = "x".join(map(str, [figures["batch_size"], *figures.get("input", [3, size, size])]))
        cells = [fmt.format(figures[key]) for _, key, fmt in columns]
        table.add_row(figures["arch"], shape, *cells)
    return table


def handle(args: argparse.Namespace, console: Console) -> int:
    import torch

    from clbench.bench.packnet_bench import bench_packnet
    from clbench.bench.throughput import measure_throughput
    from clbench.run.runner import resolve_device

    archs = args.arch or list(DEFAULT_ARCHS)
    for arch in archs:
        ARCHITECTURES.check(arch)
    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    image_size = args.image_size or (224 if on_gpu else 32)
    name = torch.cuda.get_device_name(device) if on_gpu else "cpu"
    results = []
    for arch in archs:
        with console.status(f"benchmarking {arch} on {name}"):
            figures = {
                "arch": arch,
                "device": name,
                "batch_size": args.batch_size,
                "image_size": image_size,
                **measure_throughput(
                    arch,
                    device,
                    image_size,
                    args.batch_size,
                    args.steps,
                    speed=on_gpu and not args.no_speed,
                    compile=args.compile,
                ),
                "packnet_step": bench_packnet(
                    arch, str(device), image_size, args.batch_size, args.steps
                ),
            }
        results.append(figures)
        if args.json:
            print(json.dumps(figures), flush=True)
    if not args.json:
        out = stdout_console()
        out.print(_table(f"Training throughput on {name}", THROUGHPUT_COLUMNS, results))
        steps = [r["packnet_step"] | {"image_size": r["image_size"]} for r in results]
        out.print(_table("PackNet step cost (median ms)", STEP_COLUMNS, steps))
    return 0
