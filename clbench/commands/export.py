"""``export RUN_DIR``: a complete run as one packed model file (every task, the paper's
storage on disk)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from clbench.core.storage import MB


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="write a complete run as one packed model file that serves every task",
        description="Read a complete run's final checkpoint and write one safetensors file "
        "(tensors and JSON metadata only: nothing in it can run code when read) holding the "
        "backbone once (one per task for individual), every head, PackNet's owner indices "
        "at ceil(log2 T) bits per prunable weight and per-task BatchNorm, Piggyback's 1-bit "
        "masks, and the description needed to serve it: architecture, tasks in order with "
        "their class names and preprocessing, strategy, harness version. Its size is the "
        "run's storage figure plus the metadata; both are printed. Serve it with `clbench "
        "predict` or clbench.packed.load_packed.",
    )
    export.add_argument(
        "run_dir", metavar="RUN_DIR", help="the run's folder (record.json, checkpoint.pt)"
    )
    export.add_argument(
        "-o", "--output", metavar="FILE", help="file to write (default: RUN_DIR/packed.safetensors)"
    )
    export.add_argument(
        "--data-root",
        metavar="DIR",
        help="where the datasets' class names are read (default: the run's --data-root)",
    )
    export.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.packed.export import export_run

    with console.status("packing the run's final checkpoint"):
        exported = export_run(
            Path(args.run_dir), Path(args.output) if args.output else None, args.data_root
        )
    for note in exported.notes:
        console.print(f"[yellow]note[/] {note}", highlight=False, soft_wrap=True)
    metadata = exported.file_bytes - exported.tensor_bytes
    difference = exported.tensor_bytes / exported.storage_bytes - 1
    print(f"wrote {exported.path}")
    print(
        f"file {exported.file_bytes:,} bytes ({exported.file_bytes / MB:.3f} MB) = tensors "
        f"{exported.tensor_bytes:,} + metadata {metadata:,}; storage figure of the run "
        f"{exported.storage_bytes:,} bytes: tensors {difference:+.4%}"
    )
    return 0
