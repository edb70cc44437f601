"""``bench``: PackNet's per-step cost against plain fine-tuning, measured in one process."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from clbench.commands import stdout_console
from clbench.config import check_choice
from clbench.models import ARCHITECTURES

DEFAULT_ARCHS = ("smallcnn", "resnet18", "resnet50")
COLUMNS = (
    ("plain train ms", "plain_train_ms", "{:.1f}"),
    ("PackNet train ms", "packnet_train_ms", "{:.1f}"),
    ("train ratio", "train_ratio", "{:.3f}"),
    ("vs frozen-BN plain", "train_ratio_vs_frozen_bn", "{:.3f}"),
    ("eval ratio", "eval_ratio", "{:.3f}"),
    ("materialise ms", "materialise_ms", "{:.1f}"),
    ("Avalanche PackNet / ours, train", "avalanche_vs_ours_train", "{:.2f}"),
    ("Avalanche PackNet / ours, eval", "avalanche_vs_ours_eval", "{:.2f}"),
)


def add_parser(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="PackNet train/eval step time over plain fine-tuning (ratios from one process)",
        description="For each architecture, in one process: median training-step time "
        "(forward, backward, SGD momentum 0.9 + weight decay) of plain fine-tuning and of "
        "PackNet on task 1 after task 0 was packed at 0.5 (frozen weights restored after "
        "every step), their ratio; the evaluation-step ratio on an older task (weights "
        "materialised once); and Avalanche's built-in PackNet against ours on a BN-free "
        "conv net (Avalanche's refuses BatchNorm). Synthetic inputs; figures, not a test.",
    )
    bench.add_argument(
        "--arch", action="append", help=f"repeatable (default: {', '.join(DEFAULT_ARCHS)})"
    )
    bench.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    bench.add_argument("--image-size", type=int, default=32, help="input size (default 32)")
    bench.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    bench.add_argument("--steps", type=int, default=20, help="timed steps per variant (20)")
    bench.add_argument("--json", action="store_true", help="print one JSON object per arch")
    bench.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.packnet_bench import bench_packnet
    from clbench.runner import resolve_device

    archs = args.arch or list(DEFAULT_ARCHS)
    for arch in archs:
        check_choice("architecture", arch, ARCHITECTURES)
    device = str(resolve_device(args.device))
    results = []
    for arch in archs:
        with console.status(f"benchmarking {arch} on {device}"):
            figures = bench_packnet(arch, device, args.image_size, args.batch_size, args.steps)
        results.append(figures)
        if args.json:
            print(json.dumps(figures), flush=True)
    if not args.json:
        table = Table(title=f"PackNet step cost on {device} (median ms)", title_justify="left")
        table.add_column("arch")
        table.add_column("input")
        for title, _, _ in COLUMNS:
            table.add_column(title, justify="right")
        for figures in results:
            shape = "x".join(map(str, figures["input"]))
            cells = [fmt.format(figures[key]) for _, key, fmt in COLUMNS]
            table.add_row(figures["arch"], f"{figures['batch_size']}x{shape}", *cells)
        stdout_console().print(table)
    return 0
