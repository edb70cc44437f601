"""``storage``: every strategy's serving storage, from the architecture alone."""

from __future__ import annotations

import argparse
import functools
import json

from rich.console import Console
from rich.table import Table

from benchmarks import STREAMS
from benchmarks.catalog import STREAM_TASKS
from clbench.commands import stdout_console
from clbench.core.architectures import ARCHITECTURES
from clbench.core.storage import MB, ModelSizes
from strategies.registry import STRATEGIES


def add_parser(commands) -> None:
    storage = commands.add_parser(
        "storage",
        help="bytes each strategy needs to serve every task (no data, weights or training)",
        description="Build the architecture with one head per task of the stream (head sizes "
        "from the dataset catalog, random weights) and report each registered strategy's "
        "storage with its default options. MB = 10^6 bytes.",
    )
    storage.add_argument("--stream", required=True, help=f"one of: {', '.join(STREAM_TASKS)}")
    storage.add_argument("--arch", required=True, help=f"one of: {', '.join(ARCHITECTURES)}")
    storage.add_argument("--json", action="store_true", help="print one JSON object instead")
    storage.set_defaults(handler=handle)


@functools.cache
def _sizes(stream: str, arch: str) -> ModelSizes:
    """The sizes of ``arch`` with one head per task of ``stream`` (built once per process)."""
    from clbench.models import architecture_sizes

    STREAMS.check(stream)
    ARCHITECTURES.check(arch)
    channels = STREAMS[stream].input_channels(arch)
    return architecture_sizes(arch, [classes for _, classes in STREAM_TASKS[stream]], channels)


def strategy_storage(stream: str, arch: str, strategy: str, options: dict) -> dict:
    """Storage of ``strategy`` with its resolved ``options`` on ``stream`` with ``arch``,
    from the architecture alone (torch, no Avalanche)."""
    sizes = _sizes(stream, arch)  # checks the names
    tasks = STREAM_TASKS[stream]
    pretrained = tasks[0][0] == "imagenet"
    return STRATEGIES.get_or_fail(strategy).storage(sizes, len(tasks), options, pretrained)


def stream_storage(stream: str, arch: str) -> dict[str, dict]:
    """Storage of every registered strategy (default options) on ``stream`` with ``arch``."""
    from clbench.resolve import strategy_options

    return {
        name: strategy_storage(stream, arch, name, strategy_options(name, stream, {}))
        for name in STRATEGIES
    }


def storage_table(stream: str, arch: str, results: dict[str, dict]) -> Table:
    """Total MB and models per strategy, then every breakdown entry in MB."""
    parts = list(dict.fromkeys(key for r in results.values() for key in r["breakdown"]))
    tasks = len(STREAM_TASKS[stream])
    table = Table(
        title=f"Storage to serve {tasks} tasks of {stream} with {arch} (MB = 10^6 bytes)",
        title_justify="left",
    )
    table.add_column("strategy")
    table.add_column("total MB", justify="right", style="bold")
    table.add_column("models", justify="right")
    for part in parts:
        table.add_column(part, justify="right")
    for name, result in results.items():
        cells = [
            f"{result['breakdown'][p] / MB:.2f}" if p in result["breakdown"] else "" for p in parts
        ]
        table.add_row(name, f"{result['total_bytes'] / MB:.2f}", str(result["models"]), *cells)
    return table


def handle(args: argparse.Namespace, console: Console) -> int:
    results = stream_storage(args.stream, args.arch)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        stdout_console().print(storage_table(args.stream, args.arch, results))
    return 0
