"""The configuration of one run, resolved from command-line options and stream defaults."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from benchmarks import STREAMS
from clbench.datacache import default_cache_dir
from clbench.errors import UserError
from clbench.models import ARCHITECTURES

# Options that say where/how a run is executed, not what is measured.
NOT_IDENTITY = (
    "run_id",
    "results",
    "device",
    "data_root",
    "checkpoint_every",
    "workers",
    "cache_dir",
    "compile",
)
RECORDED_BEFORE = {"pipeline": "loader", "precision": "fp32"}
"""What runs recorded before an option existed did: their value of that option."""
PIPELINES = ("memory", "loader")
PRECISIONS = ("auto", "fp32", "bf16")
MAX_DEFAULT_WORKERS = 8


@dataclass
class RunConfig:
    """Every option of a run; stored verbatim in the run record."""

    strategy: str
    stream: str = "splitmnist"
    arch: str | None = None
    seed: int = 0
    order: list[int] | None = None
    epochs: int | None = None
    lr: float | None = None
    lr_step: int | None = None
    batch_size: int | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    image_size: int | None = None
    device: str = "auto"
    results: str = "results"
    run_id: str | None = None
    data_root: str = "data"
    checkpoint_every: int = 0
    """Epochs between mid-task checkpoints (0: checkpoints at task boundaries only)."""
    pretrained: bool | None = None
    weights: str | None = None
    pipeline: str = "memory"
    """``memory``: small image datasets decoded once, augmented on the device in batches;
    ``loader``: every image dataset through torchvision transforms in DataLoader workers."""
    precision: str = "auto"
    """``bf16`` (autocast; weights stay fp32) or ``fp32``; ``auto``: bf16 on CUDA."""
    compile: bool = False
    workers: int | None = None
    """DataLoader worker processes (decoding, large datasets); default: CPU cores, at most 8."""
    cache_dir: str | None = None
    """Where decoded splits are cached; default ``$CLBENCH_CACHE_DIR`` or
    ``~/.cache/clbench/decoded``."""
    options: dict = field(default_factory=dict)

    def resolved(self) -> RunConfig:
        """Validate names and fill unset fields from the stream's defaults."""
        from strategies.registry import STRATEGIES

        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("stream", self.stream, STREAMS)
        spec = STREAMS[self.stream]
        arch = self.arch or spec.default_arch
        check_choice("architecture", arch, ARCHITECTURES)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        check_choice("pipeline", self.pipeline, PIPELINES)
        check_choice("precision", self.precision, PRECISIONS)
        filled = {k: v if v is not None else spec.defaults.get(k) for k, v in asdict(self).items()}
        filled["arch"] = arch
        if self.weights is not None and self.pretrained is False:
            raise UserError("--weights and --no-pretrained exclude each other")
        filled["pretrained"] = self.weights is not None or bool(filled["pretrained"])
        filled["options"] = strategy_options(self.strategy, self.stream, self.options)
        if self.precision == "auto":
            on_cuda = self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available())
            filled["precision"] = "bf16" if on_cuda else "fp32"
        if self.workers is None:
            filled["workers"] = min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)
        if self.cache_dir is None:
            filled["cache_dir"] = str(default_cache_dir())
        config = RunConfig(**filled)
        if config.epochs is None or config.epochs < 0:
            raise UserError("--epochs must be 0 or more")
        if config.batch_size is None or config.batch_size < 1:
            raise UserError("--batch-size must be a positive integer")
        if config.lr is None or config.lr <= 0:
            raise UserError("--lr must be positive")
        if config.image_size is not None and config.image_size < 8:
            raise UserError("--image-size must be an integer >= 8")
        if config.checkpoint_every < 0:
            raise UserError("--checkpoint-every must be a non-negative integer")
        if config.workers < 0:
            raise UserError("--workers must be 0 or more")
        if config.run_id is None:
            config.run_id = f"seed{config.seed}-{config.fingerprint()}"
        return config

    def identity(self) -> dict:
        """The options that define what the run measures (not where or how it runs)."""
        return {k: v for k, v in asdict(self).items() if k not in NOT_IDENTITY}

    def fingerprint(self) -> str:
        """Short hash of :meth:`identity`."""
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:8]

    def run_dir(self) -> Path:
        """``<results>/<stream>/<arch>/<strategy>/<run_id>``."""
        return Path(self.results) / self.stream / str(self.arch) / self.strategy / str(self.run_id)


def strategy_options(strategy: str, stream: str, given: dict) -> dict:
    """The strategy's options: its defaults, then the stream's overrides, then ``given``."""
    from strategies.registry import STRATEGIES

    options = {option.dest: option.default for option in STRATEGIES[strategy].options}
    stream_defaults = STREAMS[stream].strategy_defaults.get(strategy, {})
    unknown = set(given) - set(options)
    if unknown:
        raise UserError(f"--strategy {strategy} has no option(s): {', '.join(sorted(unknown))}")
    return {**options, **stream_defaults, **given}


def check_choice(kind: str, value: str, choices) -> None:
    """Raise a one-line UserError naming the valid choices when ``value`` is unknown."""
    if value not in choices:
        raise UserError(f"unknown {kind} '{value}'; choose from: {', '.join(choices)}")
