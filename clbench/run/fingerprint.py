"""Per-task output fingerprints: the guarantee ``clbench check`` re-verifies.

Right after a task is trained, the run evaluates it on a fixed probe batch (the first
:data:`PROBE_IMAGES` images of its test split, with the test transforms) through the
strategy's own evaluation path (PackNet's task view, Piggyback's mask, the individual
network, ...). The checkpoint keeps the probe inputs, the outputs and the SHA-256 of the
outputs' bytes (the digest is also in the record). ``check`` reloads the final
checkpoint and evaluates every probe again: strategies that promise that old tasks never
change must reproduce every digest exactly; for the others the difference is the drift.
Outputs are bit-reproducible on the same kind of device (CPU here, CPU in ``check``);
``check`` evaluates with the run's precision (bf16 autocast) and compilation, and probes
run with cuDNN's deterministic algorithms (no autotuning), so a GPU run is re-checked on
the same kind of GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from torch import Tensor

from benchmarks.stream import Stream, task_not_on_disk
from clbench.core.config import RunConfig
from clbench.core.errors import UserError
from clbench.multihead import build_model
from clbench.plugins.capture import OutputCapturePlugin
from clbench.plugins.speed import compile_backbone, speed_plugins
from clbench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_checkpointed_learner
from strategies.base import BuildContext
from strategies.registry import STRATEGIES

PROBE_IMAGES = 16


def probe_batch(experience, size: int = PROBE_IMAGES) -> tuple[Tensor, Tensor]:
    """The first ``size`` (image, label) pairs of ``experience``, test transforms applied."""
    dataset = experience.dataset.eval()
    items = [dataset[i] for i in range(min(size, len(dataset)))]
    if not items:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    return torch.stack([item[0] for item in items]), torch.tensor([int(item[1]) for item in items])


@contextlib.contextmanager
def deterministic_cudnn() -> Iterator[None]:
    """cuDNN's deterministic algorithms, without autotuning, for the duration."""
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags


def task_outputs(
    learner, capture: OutputCapturePlugin, inputs: Tensor, labels: Tensor, task_label: int
) -> Tensor:
    """Outputs of ``learner.eval`` for task ``task_label`` on ``inputs`` (on the CPU)."""
    data = _make_taskaware_tensor_classification_dataset(
        inputs, labels, targets=labels.tolist(), task_labels=task_label
    )
    stream = with_task_labels(benchmark_from_datasets(probe=[data])).streams["probe"]
    capture.outputs = []
    capture.active = True
    try:
        with deterministic_cudnn():
            learner.eval(stream)
    finally:
        capture.active = False
    return torch.cat(capture.outputs)


def outputs_digest(outputs: Tensor) -> str:
    """SHA-256 of the outputs' dtype, shape and exact bytes."""
    tensor = outputs.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tensor.dtype} {tuple(tensor.shape)};".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def compare_outputs(expected: Tensor, actual: Tensor) -> dict:
    """``exact`` (same bytes), the largest absolute difference and the percentage of
    images whose predicted class (argmax) is unchanged."""
    if expected.shape != actual.shape:
        return {"exact": False, "max_abs_diff": float("inf"), "agreement": 0.0}
    difference = (actual.double() - expected.double()).abs()
    same_class = actual.argmax(dim=1) == expected.argmax(dim=1)
    return {
        "exact": outputs_digest(expected) == outputs_digest(actual),
        "max_abs_diff": float(difference.max()) if difference.numel() else 0.0,
        "agreement": float(same_class.double().mean() * 100) if same_class.numel() else 100.0,
    }


def recheck_run(run_dir: Path, device: torch.device) -> tuple[RunConfig, list[dict]]:
    """Reload a run's latest checkpoint (no data needed) and evaluate every task's probe
    again; returns the run's config and, per fingerprint, its task, the task after which
    it was taken, the number of images and :func:`compare_outputs` with both digests."""
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}: the run has not finished a task")
    content = load_checkpoint(path, device)
    try:
        config = RunConfig(**content["config"])
        STRATEGIES.check(config.strategy)
    except (TypeError, UserError) as err:
        raise UserError(f"checkpoint {path} holds no usable configuration ({err})") from None
    meta = content["stream"]
    tasks = [task_not_on_disk(n, k) for n, k in zip(meta["task_names"], meta["head_sizes"])]
    stream = Stream(
        config.stream, tasks, meta["channels"], meta["image_size"], meta["first_task_pretrained"]
    )
    pretrained_head = 0 if stream.first_task_pretrained else None
    model = build_model(config.arch, stream.head_sizes, stream.in_channels, None, pretrained_head)
    if config.compile:
        compile_backbone(model)
    capture = OutputCapturePlugin()
    plugins = [capture, *speed_plugins(config.precision, device)]
    learner = STRATEGIES[config.strategy].build(
        BuildContext(config, model, stream, device, plugins)
    )
    restore_checkpointed_learner(learner, content["learner"], path, evaluation_only=True)
    rows = []
    for probe in content["probes"]:
        task, labels = probe["task"], probe["labels"].cpu()
        outputs = task_outputs(learner, capture, probe["inputs"].cpu(), labels, task)
        rows.append(
            {
                "task": meta["task_names"][task],
                "after_task": probe["after"],
                "images": len(labels),
                "sha256_run": probe["sha256"],
                "sha256_now": outputs_digest(outputs),
                **compare_outputs(probe["outputs"].cpu(), outputs),
            }
        )
    return config, rows
