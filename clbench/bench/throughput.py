"""Training throughput: the model alone vs our full pipeline (fine-tuning and PackNet).

All three are measured in one process on the same device and input size, so their
ratios are meaningful even on a shared or noisy machine:

(a) ``model_only``: forward + backward + SGD step on a batch already on the device;
(b) ``finetune``: Avalanche ``Naive`` training fed by :class:`InMemoryPipelinePlugin`
    (decoded uint8 images in memory, random-resized-crop + flip + normalise on the
    device), i.e. everything a real epoch does;
(c) ``packnet``: the same with :class:`PackNetPlugin` training task 1 after task 0
    was packed (pruned at 0.5), so half of every layer is frozen and restored each step;

and (d) ``pipeline``: the in-memory pipeline alone (index the stored uint8 images,
crop, resize, flip and normalise on the device, no model), whose time per image against
(b)'s gives the pipeline's share of a fine-tuning step. With ``compile`` the backbone of
every variant is compiled (``torch.compile``) first; compilation happens in the warm-up.
"""

from __future__ import annotations

import time

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from torch import nn

from benchmarks.augment import DeviceAugment
from benchmarks.datacache import DecodedImages
from benchmarks.stream import Stream, TaskData
from clbench.multihead import build_model
from clbench.plugins.memory_pipeline import (
    InMemoryBatches,
    InMemoryPipelinePlugin,
    MemorySplit,
    place,
)
from clbench.plugins.speed import SpeedPlugin, compile_backbone
from strategies.packnet import PackNetPlugin
from strategies.templates import quiet_evaluator

CLASSES = 100


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _EpochTimer(SupervisedPlugin):
    """Wall time and images of the last training epoch (device synchronised)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.images = 0

    def before_training_epoch(self, strategy, **kwargs) -> None:
        _sync(strategy.device)
        self.images = 0
        self._start = time.perf_counter()

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.images += strategy.mb_y.shape[0]

    def after_training_epoch(self, strategy, **kwargs) -> None:
        _sync(strategy.device)
        self.seconds = time.perf_counter() - self._start


def _stored_size(image_size: int) -> int:
    """Short side of the stored images: 256 for 224, as Resize(256) + RandomResizedCrop(224)."""
    return image_size * 8 // 7


def _synthetic_split(count: int, stored: int, generator: torch.Generator) -> DecodedImages:
    """``count`` random uint8 images stored at ``stored`` x ``stored * 4 // 3`` (a 4:3
    photo resized to ``stored`` on its short side, as the small datasets are cached)."""
    images = torch.randint(
        0, 256, (count, 3, stored, stored * 4 // 3), dtype=torch.uint8, generator=generator
    )
    sizes = torch.tensor([[stored, stored * 4 // 3]], dtype=torch.int32).expand(count, 2)
    targets = torch.randint(0, CLASSES, (count,), generator=generator)
    return DecodedImages(images, sizes.clone(), targets)


def _model_only_ips(
    model: nn.Module,
    device: torch.device,
    image_size: int,
    batch: int,
    steps: int,
    speed: SpeedPlugin | None,
) -> float:
    model.train()
    if speed is not None and speed.channels_last:
        model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, image_size, image_size, device=device)
    if speed is not None and speed.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad()
        if speed is not None and speed.bf16:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                logits = model(x, 1)
        else:
            logits = model(x, 1)
        loss_fn(logits, y).backward()
        optimizer.step()

    for _ in range(2):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def _pipeline_ips(
    arch: str,
    device: torch.device,
    image_size: int,
    batch: int,
    steps: int,
    packnet: bool,
    speed: SpeedPlugin | None,
    seed: int,
    compile: bool,
) -> float:
    torch.manual_seed(seed)
    model = build_model(arch, [CLASSES, CLASSES])
    if compile:
        compile_backbone(model)
    split = _synthetic_split(
        batch * steps, _stored_size(image_size), torch.Generator().manual_seed(seed)
    )
    placeholder = (torch.zeros(1, 3, 1, 1), torch.zeros(1, dtype=torch.long))
    tasks = [TaskData(f"task {i}", CLASSES, placeholder, placeholder, placeholder) for i in (0, 1)]
    stream = Stream("synthetic", tasks, 3, image_size)
    timer = _EpochTimer()
    plugins: list[SupervisedPlugin] = [
        InMemoryPipelinePlugin(
            {1: MemorySplit(split, DeviceAugment("random_resized_crop", image_size))},
            {},
            seed,
            channels_last=speed is not None and speed.channels_last,
        )
    ]
    if packnet:
        plugin = PackNetPlugin(prune_ratio=[0.5, -1], retrain_epochs=0)
        plugin.pack_without_training(model, model.heads[0], task_label=0)
        plugins.append(plugin)
    if speed is not None:
        plugins.append(speed)
    plugins.append(timer)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=batch,
        train_epochs=2,
        device=device,
        plugins=plugins,
        evaluator=quiet_evaluator(),
    )
    strategy.train(stream.benchmark.train_stream[1], eval_streams=[])  # epoch 1 warms up
    return timer.images / timer.seconds


def _pipeline_only_ips(
    device: torch.device, image_size: int, batch: int, steps: int, channels_last: bool, seed: int
) -> float:
    """Images/s of the in-memory pipeline alone: one warm-up epoch, one timed epoch."""
    generator = torch.Generator().manual_seed(seed)
    split = place(_synthetic_split(batch * steps, _stored_size(image_size), generator), device)
    augment = DeviceAugment("random_resized_crop", image_size)
    batches = InMemoryBatches(split, 1, batch, augment, device, True, generator, channels_last)
    for _ in batches:
        pass
    _sync(device)
    start = time.perf_counter()
    images = sum(x.shape[0] for x, _, _ in batches)
    _sync(device)
    return images / (time.perf_counter() - start)


def measure_throughput(
    arch: str,
    device: torch.device,
    image_size: int,
    batch_size: int,
    steps: int,
    speed: bool,
    compile: bool = False,
) -> dict:
    """Training images/s of (a) the model alone, (b) fine-tuning and (c) PackNet through
    the in-memory pipeline, (d) the pipeline alone; the ratios b/a and c/a and the
    pipeline's share of a fine-tuning step, b/d (see the module docstring)."""
    plugin = SpeedPlugin() if speed else None
    torch.manual_seed(0)
    model = build_model(arch, [CLASSES, CLASSES]).to(device)
    if compile:
        compile_backbone(model)
    model_only = _model_only_ips(model, device, image_size, batch_size, steps, plugin)
    args = (arch, device, image_size, batch_size, steps)
    finetune = _pipeline_ips(*args, False, plugin, 0, compile)
    packnet = _pipeline_ips(*args, True, plugin, 0, compile)
    pipeline = _pipeline_only_ips(device, image_size, batch_size, steps, speed, 0)
    return {
        "model_only_ips": model_only,
        "finetune_ips": finetune,
        "packnet_ips": packnet,
        "pipeline_ips": pipeline,
        "finetune_ratio": finetune / model_only,
        "packnet_ratio": packnet / model_only,
        "pipeline_share": finetune / pipeline,
        "bf16": speed,
        "channels_last": speed,
        "compile": compile,
    }
