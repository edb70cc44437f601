"""Run one strategy on one stream: train task by task, evaluate, write the record."""

from __future__ import annotations

import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from benchmarks import STREAMS
from benchmarks.stream import Stream
from clbench.config import RunConfig
from clbench.errors import UserError
from clbench.evaluation import TopkAccuracyPlugin
from clbench.metrics import summarize
from clbench.models import build_model
from clbench.progress import RichProgressPlugin
from clbench.records import RECORD_NAME, atomic_write_json, environment_info
from strategies.base import BuildContext, StrategySpec
from strategies.registry import STRATEGIES


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (data order, initialisation)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_writable(directory: Path) -> None:
    """Fail early, before any training, when the results folder cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"results folder {directory} is not writable: {err.strerror}") from None


def new_record(config: RunConfig, stream: Stream, device: torch.device) -> dict:
    return {
        "status": "running",
        "config": asdict(config),
        "environment": environment_info(device),
        "tasks": stream.task_names,
        "stream": {
            "image_size": stream.image_size,
            "channels": stream.in_channels,
            "classes": stream.head_sizes,
            "images": {
                split: [len(getattr(task, split)[1]) for task in stream.tasks]
                for split in ("train", "valid", "test")
            },
        },
        "not_measured": [task.name for task in stream.tasks if not task.has_test_data],
        "acc_top1": [],
        "acc_top5": [],
        "final": None,
        "storage": None,
        "timings": {"train_seconds": [], "eval_seconds": [], "images_per_second": []},
    }


def _append_row(record: dict, row: list, num_tasks: int) -> None:
    """Add the accuracy row of the task just trained (rows skipped by joint training: null)."""
    for matrix in ("acc_top1", "acc_top5"):
        while len(record[matrix]) < len(row) - 1:
            record[matrix].append([None] * num_tasks)
    padding = [None] * (num_tasks - len(row))
    record["acc_top1"].append([r.top1 for r in row] + padding)
    record["acc_top5"].append([r.top5 for r in row] + padding)


def adopt_pretrained_task(spec: StrategySpec, learner, experience) -> None:
    """Task 0 of a pretrained stream without its data on disk: the network as it is
    serves it (PackNet still prunes it, without retraining)."""
    if spec.adopt_pretrained is not None:
        spec.adopt_pretrained(learner, experience)


def run(config: RunConfig, console: Console | None = None) -> dict:
    """Execute a resolved config; returns the final record (also written to disk)."""
    console = console or Console(stderr=True)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    stream = STREAMS[config.stream].build(
        seed=config.seed,
        order=config.order,
        arch=config.arch,
        image_size=config.image_size,
        data_root=config.data_root,
    )
    spec = STRATEGIES[config.strategy]
    model = build_model(config.arch, stream.head_sizes, stream.in_channels)
    accuracy = TopkAccuracyPlugin()
    progress = RichProgressPlugin(console, stream.task_names)
    learner = spec.build(BuildContext(config, model, stream, device, [accuracy, progress]))
    run_dir = config.run_dir()
    check_writable(run_dir)
    record_path = run_dir / RECORD_NAME
    record = new_record(config, stream, device)
    atomic_write_json(record_path, record)
    num_tasks = len(stream.tasks)
    experiences = list(stream.benchmark.train_stream)
    if spec.trains_jointly:
        steps = [(num_tasks - 1, experiences)]
    else:
        steps = list(enumerate(experiences))
    try:
        with progress:
            for index, training_data in steps:
                started = time.perf_counter()
                progress.images = 0
                if spec.trains_jointly or stream.tasks[index].has_train_data:
                    learner.train(training_data, eval_streams=[])
                else:
                    adopt_pretrained_task(spec, learner, training_data)
                trained = time.perf_counter()
                learner.eval(stream.benchmark.test_stream[: index + 1])
                evaluated = time.perf_counter()
                _append_row(record, [accuracy.results[j] for j in range(index + 1)], num_tasks)
                timings = record["timings"]
                timings["train_seconds"].append(trained - started)
                timings["eval_seconds"].append(evaluated - trained)
                timings["images_per_second"].append(progress.images / (trained - started))
                atomic_write_json(record_path, record)
    except BaseException as err:
        record["status"] = "failed"
        record["error"] = f"{type(err).__name__}: {err}"
        atomic_write_json(record_path, record)
        raise
    record["final"] = summarize(record["acc_top1"], record["acc_top5"])
    record["storage"] = spec.storage(model, num_tasks, config.options, stream.first_task_pretrained)
    if spec.report is not None:
        record["strategy_report"] = spec.report(learner)
    record["status"] = "complete"
    atomic_write_json(record_path, record)
    return record
