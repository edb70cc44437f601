"""``predict FILE --task NAME IMAGE...``: the top-5 classes of images with one task of a
packed model, preprocessed as that task's evaluation data was."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from clbench.commands import stdout_console

TOP = 5


def add_parser(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="top-5 classes of images with one task of a packed model (clbench export)",
        description="Load a packed model file (plain torch: no Avalanche, no training code), "
        "preprocess every image with the task's own evaluation transform and print, per "
        "image, the five most probable classes (all of them for a task with fewer) and "
        "their softmax probabilities.",
    )
    predict.add_argument("file", metavar="FILE", help="a packed model (clbench export)")
    predict.add_argument("--task", required=True, help="the task's name (as in the model)")
    predict.add_argument(
        "images", metavar="IMAGE", nargs="+", help="image files, or folders of image files"
    )
    predict.add_argument("--json", action="store_true", help="print one JSON list instead")
    predict.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default cpu)"
    )
    predict.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    import torch

    from clbench.core.errors import UserError
    from clbench.packed import load_packed
    from clbench.packed.preprocess import image_files

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    paths = image_files(args.images)
    model = load_packed(args.file, args.device)
    task = model.tasks[model.task_index(args.task)]
    results = model.predict(task, paths, top=TOP)
    if args.json:
        rows = [
            {
                "image": str(path),
                "task": task,
                "top": [{"class": name, "probability": p} for name, p in top],
            }
            for path, top in zip(paths, results)
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"{task}: top-{TOP} classes")
    for column in ("image", "rank", "class", "probability"):
        table.add_column(column, justify="right" if column in ("rank", "probability") else "left")
    for path, top in zip(paths, results):
        for rank, (name, probability) in enumerate(top, 1):
            table.add_row(str(path) if rank == 1 else "", str(rank), name, f"{probability:.4f}")
    stdout_console().print(table)
    return 0
