"""The configuration of one run: plain data, each field declaring its flag and domain.

:class:`RunConfig` is stored verbatim in the run record. Each field's metadata
(:class:`Flag`) says how ``run`` exposes it (flag, help, parser, choices) and which
values are valid (:mod:`clbench.core.domains`): ``run``'s options are generated from these
declarations, and :mod:`clbench.resolve` validates every value against them in one
place. Resolving a config against the registries (stream defaults, strategy options)
is :mod:`clbench.resolve`'s job; this module imports no registry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from clbench.core import domains

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
    "log",
)
RECORDED_BEFORE = {
    "pipeline": "loader",
    "precision": "fp32",
    "select": "last",
    "batchnorm": "train",
}
"""What runs recorded before an option existed did: their value of that option."""
PIPELINES = ("memory", "loader")
SELECTIONS = ("last", "best-valid")
BATCHNORM_MODES = ("train", "frozen")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
LOGGERS = ("tensorboard", "csv", "wandb")
MAX_DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class Flag:
    """How a :class:`RunConfig` field appears on ``run``'s command line.

    ``parse`` turns the text into the value (``None`` for a boolean switch, whose
    ``action`` is ``store_true`` or ``store_false``; with ``action="extend"`` it returns
    a list, and each use of the flag adds to it); ``check`` returns why a value is
    invalid (None when valid); ``group`` is the help section.
    """

    flag: str
    help: str
    parse: Callable[[str], Any] | None = str
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None
    group: str = "run"
    metavar: str | None = None


def _option(default: Any, flag: Flag) -> Any:
    return field(default=default, metadata={"flag": flag})


@dataclass
class RunConfig:
    """Every option of a run; stored verbatim in the run record. ``None`` = the
    stream's default for the strategy (its protocol, filled by
    :func:`clbench.resolve.resolve`); after resolution ``None`` means "not used by the
    strategy" (Piggyback's ``lr`` and ``momentum``: it trains with Adam at
    ``--piggyback-lr``)."""

    strategy: str = field(metadata={"flag": Flag("--strategy", "one of the strategies of `list`")})
    stream: str = _option("splitmnist", Flag("--stream", "one of the streams of `list`"))
    arch: str | None = _option(
        None, Flag("--arch", "one of the architectures of `list` (default: the stream's)")
    )
    seed: int = _option(0, Flag("--seed", "seed of split, batch order and init", int, domains.seed))
    order: list[int] | None = _option(
        None,
        Flag(
            "--order",
            "permutation of the stream's tasks, e.g. 2,0,1 (ImageNet streams: of the tasks "
            "added after ImageNet, which stays first)",
            domains.int_list,
            domains.task_order,
        ),
    )
    epochs: int | None = _option(
        None, Flag("--epochs", "training epochs per task", int, domains.at_least(1))
    )
    lr: float | None = _option(None, Flag("--lr", "learning rate (SGD)", float, domains.positive))
    lr_step: int | None = _option(
        None,
        Flag(
            "--lr-step",
            "multiply the LR by 0.1 every N epochs (0: constant LR)",
            int,
            domains.at_least(0),
            metavar="N",
        ),
    )
    batch_size: int | None = _option(
        None, Flag("--batch-size", "training mini-batch size", int, domains.at_least(1))
    )
    momentum: float | None = _option(
        None, Flag("--momentum", "SGD momentum", float, domains.momentum)
    )
    weight_decay: float | None = _option(
        None, Flag("--weight-decay", "weight decay", float, domains.non_negative)
    )
    batchnorm: str | None = _option(
        None,
        Flag(
            "--batchnorm",
            "frozen: every BatchNorm layer of the backbone in eval mode with its affine "
            "parameters fixed (the authors' train_nobn); train: BatchNorm trains wherever "
            "the strategy trains the backbone (PackNet: in its first task only)",
            choices=BATCHNORM_MODES,
        ),
    )
    valid_fraction: float | None = _option(
        None,
        Flag(
            "--valid-fraction",
            "fraction of every training split held out (per class, seeded) as validation "
            "data for --select best-valid (default: the stream's; paper streams 0: train on "
            "the full official training split)",
            float,
            domains.fraction,
            metavar="F",
        ),
    )
    select: str | None = _option(
        None,
        Flag(
            "--select",
            "which epoch of a task is kept: last, or best-valid (best validation accuracy; "
            "PackNet: best epoch of the retrain phase); never selected on test data",
            choices=SELECTIONS,
        ),
    )
    image_size: int | None = _option(
        None,
        Flag("--image-size", "input resolution (default: the stream's)", int, domains.image_size),
    )
    device: str = _option("auto", Flag("--device", "where to train", choices=DEVICES))
    results: str = _option("results", Flag("--results", "results folder", metavar="DIR"))
    run_id: str | None = _option(
        None,
        Flag(
            "--run-id",
            "record folder name (default seed<K>-<hash of the options>); a name, not a path",
            check=domains.run_id,
        ),
    )
    data_root: str = _option("data", Flag("--data-root", "datasets folder", metavar="DIR"))
    checkpoint_every: int = _option(
        0,
        Flag(
            "--checkpoint-every",
            "also save checkpoint-epoch.pt every N epochs inside a task (0: only after each task)",
            int,
            domains.at_least(0),
            group="checkpoints",
            metavar="N",
        ),
    )
    """Epochs between mid-task checkpoints (0: checkpoints at task boundaries only)."""
    pretrained: bool | None = _option(
        None,
        Flag(
            "--no-pretrained",
            "start from random weights (ImageNet streams start from the torchvision "
            "IMAGENET1K_V1 weights in $TORCH_HOME/hub/checkpoints)",
            None,
            action="store_false",
        ),
    )
    weights: str | None = _option(
        None,
        Flag("--weights", "ImageNet-pretrained torchvision state dict (.pth) to start from"),
    )
    pipeline: str = _option(
        "memory",
        Flag(
            "--pipeline",
            "memory: small image datasets decoded once, augmented on the device in batches; "
            "loader: every image dataset through torchvision transforms in DataLoader workers",
            choices=PIPELINES,
            group="speed",
        ),
    )
    precision: str = _option(
        "auto",
        Flag(
            "--precision",
            "bf16: autocast (weights and optimizer stay fp32); auto: bf16 on CUDA, fp32 on "
            "the CPU. On CUDA, inputs and weights are channels_last and cudnn.benchmark is on",
            choices=PRECISIONS,
            group="speed",
        ),
    )
    compile: bool = _option(
        False,
        Flag(
            "--compile",
            "torch.compile the backbone (needs a C++ compiler; the first steps compile)",
            None,
            action="store_true",
            group="speed",
        ),
    )
    workers: int | None = _option(
        None,
        Flag(
            "--workers",
            "DataLoader worker processes for decoding and large datasets (default: CPU "
            f"cores, at most {MAX_DEFAULT_WORKERS})",
            int,
            domains.at_least(0),
            group="speed",
            metavar="N",
        ),
    )
    cache_dir: str | None = _option(
        None,
        Flag(
            "--cache-dir",
            "decoded-image cache (default $CLBENCH_CACHE_DIR or ~/.cache/clbench/decoded)",
            group="speed",
            metavar="DIR",
        ),
    )
    log: list[str] | None = _option(
        None,
        Flag(
            "--log",
            "also log per-epoch training loss and accuracy and per-task test loss and "
            f"accuracy through Avalanche's loggers, into the run folder: {', '.join(LOGGERS)} "
            "(repeatable or a comma list; W&B offline unless WANDB_MODE is set)",
            domains.name_list,
            domains.names_from(LOGGERS),
            action="extend",
            metavar="NAME[,NAME]",
        ),
    )
    options: dict = field(default_factory=dict)
    """The strategy's own options (``--prune-ratios`` ...), by destination name."""

    def identity(self) -> dict:
        """The options that define what the run measures (not where or how it runs)."""
        return {k: v for k, v in asdict(self).items() if k not in NOT_IDENTITY}

    def fingerprint(self) -> str:
        """Short hash of :meth:`identity`."""
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:8]

    def run_dir(self) -> Path:
        """``<results>/<stream>/<arch>/<strategy>/<run_id>``; the run id is a plain
        name (:func:`clbench.core.domains.run_id`), so the folder is inside ``results``."""
        problem = domains.run_id(self.run_id)
        if problem is not None:
            raise ValueError(f"run id {self.run_id!r} {problem}")
        return Path(self.results) / self.stream / str(self.arch) / self.strategy / self.run_id


def command_line_fields() -> list[tuple[str, Flag]]:
    """(field name, :class:`Flag`) of every :class:`RunConfig` field ``run`` exposes."""
    return [(f.name, f.metadata["flag"]) for f in fields(RunConfig) if "flag" in f.metadata]
