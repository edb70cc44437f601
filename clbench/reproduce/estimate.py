"""GPU hours of a reproduction, from the figures ``clbench bench --json`` writes.

Training time only: per run, the images it trains on (each task's training images times
its epochs; for PackNet also the retrain epochs of every task it prunes, the pretrained
ImageNet task included, which it retrains on ImageNet; joint training also trains on
ImageNet) over the training images/s ``bench`` measured on a GPU for the run's
architecture at the run's input size (``packnet_ips`` for PackNet, ``finetune_ips``
otherwise, so classifier-only, whose backbone is frozen, is over-estimated). Evaluation
is not counted. Nothing is estimated for an architecture without such a figure.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchmarks.catalog import DATASETS, PRETRAINED_TASK, STREAM_TASKS, stream_datasets
from clbench.core.config import RunConfig
from clbench.core.errors import UserError

CPU = "cpu"
FIGURE_KEYS = ("arch", "device", "image_size", "finetune_ips", "packnet_ips")
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Figure:
    """One ``bench`` measurement: training images/s of one architecture on one device."""

    arch: str
    device: str
    image_size: int
    finetune_ips: float
    packnet_ips: float
    source: Path

    def images_per_second(self, strategy: str) -> float:
        return self.packnet_ips if strategy == "packnet" else self.finetune_ips


def _objects(path: Path) -> list[tuple[int, object]]:
    """(line, value): every line of a ``.jsonl`` file, the whole of a ``.json`` one."""
    text = path.read_text()
    if path.suffix == ".json":
        value = json.loads(text)
        return [(1, item) for item in (value if isinstance(value, list) else [value])]
    return [(n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def load_figures(folder: Path) -> list[Figure]:
    """Every ``bench`` figure in the ``*.json`` and ``*.jsonl`` files under ``folder``
    (objects that are not ``bench`` figures are ignored; a damaged file is bad input)."""
    figures = []
    paths = (
        sorted(p for p in folder.rglob("*") if p.suffix in (".json", ".jsonl"))
        if folder.is_dir()
        else []
    )
    for path in paths:
        try:
            objects = _objects(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"bench figures {path}: unreadable ({err})") from None
        for _, item in objects:
            if isinstance(item, dict) and all(key in item for key in FIGURE_KEYS):
                values = {key: item[key] for key in FIGURE_KEYS}
                figures.append(Figure(**values, source=path))
    return figures


def trained_images(config: RunConfig) -> int:
    """Images a run trains on, epochs included (see the module docstring)."""
    datasets = stream_datasets(config.stream)
    tasks = len(STREAM_TASKS[config.stream])
    if len(datasets) == 1:  # a split dataset: its training images shared by the tasks
        per_task = [DATASETS[datasets[0]].train / tasks] * tasks
    else:
        per_task = [DATASETS[key].train for key in datasets]
    pretrained = datasets[0] == PRETRAINED_TASK and config.pretrained
    epochs = [0 if pretrained and t == 0 else config.epochs for t in range(tasks)]
    if config.strategy == "joint" and pretrained:
        epochs[0] = config.epochs
    if config.strategy == "packnet":
        retrain = config.options["retrain_epochs"]
        retrain = max(1, config.epochs // 2) if retrain is None else retrain
        ratios = [float(v) for v in str(config.options["prune_ratios"]).split(",")]
        ratios = ratios * tasks if len(ratios) == 1 else ratios
        epochs = [e + (retrain if ratio > 0 else 0) for e, ratio in zip(epochs, ratios)]
    return round(sum(images * e for images, e in zip(per_task, epochs)))


def gpu_hours(configs: list[RunConfig], figures: list[Figure]) -> list[str]:
    """One line per GPU with figures for every run's architecture and input size (hours of
    training, summed over the runs), or one line saying which figures are missing."""
    if not configs:
        return ["GPU hours: no runs"]
    on_gpus: dict[str, dict[tuple[str, int], Figure]] = defaultdict(dict)
    for figure in figures:
        if figure.device != CPU:
            on_gpus[figure.device][(figure.arch, figure.image_size)] = figure  # the latest
    needed = sorted({(c.arch, c.image_size) for c in configs})
    lines = []
    for device, measured in sorted(on_gpus.items()):
        if all(key in measured for key in needed):
            seconds = sum(
                trained_images(c) / measured[(c.arch, c.image_size)].images_per_second(c.strategy)
                for c in configs
            )
            sources = sorted({str(measured[key].source) for key in needed})
            lines.append(
                f"GPU hours on {device}: {seconds / SECONDS_PER_HOUR:,.1f} h of training for "
                f"{len(configs)} runs (bench figures: {', '.join(sources)}; evaluation not "
                "counted)"
            )
    if lines:
        return lines
    missing = ", ".join(f"{arch} at {size} px" for arch, size in needed)
    kinds = sorted({f.device for f in figures}) or ["none"]
    return [
        f"GPU hours: no bench figures on a GPU for {missing} (figures found: {', '.join(kinds)}); "
        "measure them on the GPU with `clbench bench --json` and save the lines under the "
        "bench folder (--bench)"
    ]
