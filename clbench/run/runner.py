"""Run one strategy on one stream: train task by task, evaluate, write the record.

Crash safety (see :mod:`clbench.run.checkpoint`): after every task the run saves a
checkpoint (``checkpoint.pt``) and then the record, both atomically; with
``checkpoint_every`` also every N epochs inside a task (``checkpoint-epoch.pt``).
Running the same configuration again (same run folder) continues from the latest
checkpoint and ends with the record an uninterrupted run would have written.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from avalanche.training import Naive
from rich.console import Console
from torch import nn

from benchmarks import STREAMS
from benchmarks.stream import LabeledSubset, Stream
from clbench.core import domains
from clbench.core.config import RunConfig
from clbench.core.errors import RunDiverged, RunStopped, UserError
from clbench.core.files import is_present, temporary_files
from clbench.core.metrics import summarize
from clbench.core.record import RECORD_NAME, RecordError, RunRecord
from clbench.models import find_pretrained_weights, model_sizes
from clbench.multihead import build_model
from clbench.plugins.accuracy import TopkAccuracyPlugin
from clbench.plugins.capture import OutputCapturePlugin
from clbench.plugins.divergence import FiniteLossGuard, NonFiniteLoss
from clbench.plugins.epoch_checkpoint import EpochCheckpointPlugin
from clbench.plugins.learner_state import learner_state, rng_state, set_rng_state
from clbench.plugins.loggers import RunLogging
from clbench.plugins.memory_pipeline import stream_pipeline
from clbench.plugins.optimizer_state import FreshOptimizerState
from clbench.plugins.progress import RichProgressPlugin, ValidationAccuracy
from clbench.plugins.prune_stages import PruneStageEvaluation
from clbench.plugins.selection import BestValidEpoch
from clbench.plugins.speed import compile_backbone, speed_plugins
from clbench.run.checkpoint import (
    CHECKPOINT_NAME,
    EPOCH_CHECKPOINT_NAME,
    RESTART_HINT,
    load_checkpoint,
    restore_checkpointed_learner,
    save_checkpoint,
)
from clbench.run.environment import environment_info
from clbench.run.fingerprint import outputs_digest, probe_batch, task_outputs
from clbench.run.lock import run_folder_lock
from strategies.base import BuildContext
from strategies.registry import STRATEGIES
from strategies.templates import drops_last_batch, quiet_evaluator


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


def new_record(config: RunConfig, stream: Stream, device: torch.device) -> RunRecord:
    """The record of a run that starts now."""
    return RunRecord.start(
        config=asdict(config),
        environment=environment_info(device),
        tasks=stream.task_names,
        stream={
            "image_size": stream.image_size,
            "channels": stream.in_channels,
            "classes": stream.head_sizes,
            "images": {
                split: [task.size(split) for task in stream.tasks]
                for split in ("train", "valid", "test")
            },
        },
        not_measured=[task.name for task in stream.tasks if not task.has_test_data],
    )


def loader_options(stream: Stream, workers: int) -> tuple[dict, dict]:
    """DataLoader options of ``learner.train`` and ``learner.eval``: worker processes
    (persistent over a task's epochs) when the stream reads image files; none for
    in-memory tensor streams. Experiences the in-memory pipeline serves never start them."""
    reads_files = any(isinstance(task.train, LabeledSubset) for task in stream.tasks)
    if not reads_files or workers == 0:
        return {}, {}
    return {"num_workers": workers, "persistent_workers": True}, {"num_workers": workers}


def trains_task(config: RunConfig, stream: Stream, index: int) -> bool:
    """Whether task ``index`` is trained; otherwise it is adopted: the pretrained
    network's own task (its data, when on disk, evaluates it; PackNet also retrains it
    after pruning), or a task 0 without data on disk."""
    if index == 0 and stream.first_task_pretrained and config.pretrained:
        return False
    return stream.tasks[index].has_train_data


Start = Literal["auto", "resume", "restart"]
"""What to do with what an earlier invocation of the same run left in its folder:
``auto`` continues an unfinished run from its latest checkpoint (a complete or diverged
run is reported, not re-run), ``resume`` does the same but insists that there is a run,
``restart`` discards it and starts over."""


@dataclass
class Prior:
    """What an earlier invocation left: its record and its checkpoints (task boundary,
    and inside the next task), already checked against the configuration."""

    record: RunRecord | None = None
    checkpoint: dict | None = None
    epoch: dict | None = None


def check_same_config(path: Path, stored: dict, config: RunConfig) -> None:
    """One-line :class:`UserError` when ``stored`` (a config saved with ``path``)
    defines a different run than ``config``."""
    changed = [
        f"{key} {stored.get(key)!r} there, {value!r} now"
        for key, value in config.identity().items()
        if stored.get(key) != value
    ]
    if changed:
        raise UserError(
            f"{path} belongs to a run with another configuration ({'; '.join(changed)}); "
            "use another --run-id, or --restart to replace that run"
        )


def read_prior(config: RunConfig, device: torch.device, start: Start) -> Prior:
    """Read and validate what an earlier invocation left in ``config.run_dir()``."""
    run_dir = config.run_dir()
    record_path = run_dir / RECORD_NAME
    if start == "restart":
        return Prior()
    if not is_present(record_path):
        if start == "resume":
            raise UserError(f"nothing to resume: no run record at {record_path}")
        return Prior()
    try:
        record = RunRecord.load(record_path)
    except RecordError as err:
        raise UserError(f"run record {err}; {RESTART_HINT}") from None
    check_same_config(record_path, record.config, config)
    prior = Prior(record)
    if record.status in ("complete", "diverged"):
        return prior
    path = run_dir / CHECKPOINT_NAME
    if path.is_file():
        prior.checkpoint = load_checkpoint(path, device)
        check_same_config(path, prior.checkpoint["config"], config)
    path = run_dir / EPOCH_CHECKPOINT_NAME
    if path.is_file():
        epoch = load_checkpoint(path, device, "epoch")
        check_same_config(path, epoch["config"], config)
        done = prior.checkpoint["steps_done"] if prior.checkpoint else 0
        prior.epoch = epoch if epoch["step"] == done else None  # else left by a finished task
    return prior


def diverged_message(record: RunRecord, record_path: Path) -> str:
    """One line: where the run diverged, where its record is and what to try."""
    hints = STRATEGIES[record.strategy].divergence_hints(record.config)
    return f"run diverged: {record.error}; record: {record_path}; try {' or '.join(hints)}"


class _Run:
    """One invocation of a run: the learner, its record, its probes and checkpoints."""

    def __init__(self, config: RunConfig, console: Console, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.run_dir = config.run_dir()
        self.record_path = self.run_dir / RECORD_NAME
        seed_everything(config.seed)
        weights = (
            find_pretrained_weights(config.arch, config.weights) if config.pretrained else None
        )
        stream = STREAMS[config.stream].build(
            seed=config.seed,
            order=config.order,
            arch=config.arch,
            image_size=config.image_size,
            data_root=config.data_root,
            valid_fraction=config.valid_fraction,
        )
        self.stream = stream
        self.spec = STRATEGIES[config.strategy]
        self.model = build_model(
            config.arch,
            stream.head_sizes,
            stream.in_channels,
            weights,
            pretrained_head=0 if stream.first_task_pretrained else None,
        )
        if config.compile:
            compile_backbone(self.model)
        experiences = list(stream.benchmark.train_stream)
        if self.spec.trains_jointly:
            self.steps = [(len(stream.tasks) - 1, experiences)]
        else:
            self.steps = list(enumerate(experiences))
        self.accuracy = TopkAccuracyPlugin()
        valid = stream.benchmark.valid_stream
        self.selection = None
        if config.select == "best-valid":
            self.selection = BestValidEpoch(lambda label: valid[label].dataset)
        self.progress = RichProgressPlugin(
            console,
            stream.task_names,
            ValidationAccuracy(lambda label: valid[label].dataset, self.selection),
        )
        self.capture = OutputCapturePlugin()
        self.epochs = EpochCheckpointPlugin(config.checkpoint_every, self.save_epoch)
        plugins = [
            FreshOptimizerState(),
            self.accuracy,
            self.progress,
            self.capture,
            FiniteLossGuard(),
        ]
        self.prune_stages = PruneStageEvaluation.for_run(config, stream, self.accuracy)
        if self.prune_stages is not None:
            plugins.append(self.prune_stages)
        if self.selection is not None:
            plugins.append(self.selection)
        plugins.append(self.epochs)
        # The pipeline serves a task before the epoch checkpoint plugin can set its
        # loader aside to resume inside the task.
        pipeline = self._pipeline(console) if config.pipeline == "memory" else None
        plugins = [pipeline, *plugins] if pipeline else plugins
        plugins += speed_plugins(config.precision, device)
        self.logging = RunLogging(config.log) if config.log else None
        if self.logging is not None:
            plugins.append(self.logging)
        self.learner = self.spec.build(BuildContext(config, self.model, stream, device, plugins))
        if self.prune_stages is not None:
            self.prune_stages.listen(self.learner)
        self.train_loader, self.eval_loader = loader_options(stream, config.workers)
        self.record = new_record(config, stream, device)
        self.probes: list[dict] = []
        self.step = 0
        """Index into ``steps`` of the step being trained (= steps finished)."""
        self.step_started = 0.0
        """``perf_counter`` when the step started, minus its training time before a resume."""
        self.images_before = 0
        """Images the step trained on before a resume."""

    def _pipeline(self, console: Console):
        """The in-memory pipeline of the tasks this run trains and evaluates."""
        trained = [
            index
            for index in range(len(self.stream.tasks))
            if not self.spec.trains_jointly and trains_task(self.config, self.stream, index)
        ]
        return stream_pipeline(
            self.stream,
            trained,
            Path(self.config.cache_dir),
            self.config.workers,
            self.config.seed,
            channels_last=self.device.type == "cuda",
            console=console,
        )

    def prepare(self, prior: Prior, start: Start) -> str | None:
        """Check the folder is writable, remove what a killed invocation (or ``restart``)
        leaves, load the prior checkpoints; return a line saying where it resumes."""
        check_writable(self.run_dir)
        names = (RECORD_NAME, CHECKPOINT_NAME, EPOCH_CHECKPOINT_NAME)
        for leftover in [t for name in names for t in temporary_files(self.run_dir / name)]:
            leftover.unlink()
        if start == "restart":
            (self.run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
        if prior.epoch is None:  # none, or a finished task's, left by a kill right after it
            (self.run_dir / EPOCH_CHECKPOINT_NAME).unlink(missing_ok=True)
        note = None
        if prior.checkpoint is not None:
            self._restore(prior.checkpoint, self.run_dir / CHECKPOINT_NAME)
            note = f"resuming after task {self.step}/{len(self.steps)}"
        if prior.epoch is not None:
            self.epochs.pending = prior.epoch
            note = f"resuming task {self.step + 1}/{len(self.steps)} after epoch "
            note += str(prior.epoch["epochs_done"])
        threads = self.record.environment["threads"]
        if note is not None and self.device.type == "cpu" and threads != torch.get_num_threads():
            note += (
                f" (warning: {torch.get_num_threads()} CPU threads now, {threads} when the run "
                "started: results may differ in the last bits from an uninterrupted run)"
            )
        if note is not None:
            self.record.note_resumed(
                {
                    "tasks_done": self.step,
                    "epochs_done": prior.epoch["epochs_done"] if prior.epoch else 0,
                    "git_commit": environment_info(self.device)["git_commit"],
                }
            )
        elif prior.record is not None and start == "resume":
            note = "no checkpoint to resume from: starting from the first task"
        self.save_record()
        return note

    @contextlib.contextmanager
    def writing(self, path: Path) -> Iterator[None]:
        """Turn a failed write of ``path`` (disk full, folder read-only) into one line."""
        try:
            yield
        except OSError as err:
            raise RunStopped(
                f"cannot write {path}: {err.strerror or err}; the run stopped, its last "
                "checkpoint is intact: re-run the same command to resume once it can write"
            ) from None

    def save_record(self) -> None:
        """Write the record (atomically)."""
        with self.writing(self.record_path):
            self.record.save(self.record_path)

    def _restore(self, checkpoint: dict, path: Path) -> None:
        if checkpoint["steps_done"] > len(self.steps):
            raise UserError(
                f"checkpoint {path} is damaged: {checkpoint['steps_done']} steps done of the "
                f"run's {len(self.steps)}; {RESTART_HINT}"
            )
        restore_checkpointed_learner(self.learner, checkpoint["learner"], path)
        self.record = RunRecord.from_dict(checkpoint["record"], str(path))
        self.probes = list(checkpoint["probes"])
        self.step = checkpoint["steps_done"]
        set_rng_state(checkpoint["rng"])

    def untouched_accuracy(self) -> tuple[float | None, float | None]:
        """Top-1 and top-5 of the network as built on task 0's test split (None when it
        is not on disk): the pretrained network's own accuracy, before any strategy."""
        if not self.stream.tasks[0].has_test_data:
            return None, None
        accuracy = TopkAccuracyPlugin()
        evaluation = Naive(
            model=self.model,
            optimizer=torch.optim.SGD(self.model.parameters(), lr=0.0),
            eval_mb_size=self.learner.eval_mb_size,
            device=self.device,
            plugins=[accuracy, *speed_plugins(self.config.precision, self.device)],
            evaluator=quiet_evaluator(),
        )
        evaluation.eval(self.stream.benchmark.test_stream[:1], **self.eval_loader)
        return accuracy.results[0].top1, accuracy.results[0].top5

    def train(self) -> None:
        """Train the remaining steps; after each, evaluate, fingerprint and checkpoint.
        First, on a stream whose task 0 is the pretrained network's own task, record that
        network's accuracy on it."""
        num_tasks = len(self.stream.tasks)
        adopts = self.stream.first_task_pretrained and self.config.pretrained
        if adopts and self.step == 0 and self.record.pretrained_network is None:
            self.record.note_pretrained(self.stream.task_names[0], *self.untouched_accuracy())
        logging = (
            self.logging.open(self.run_dir, self.config.run_id, asdict(self.config))
            if self.logging is not None
            else contextlib.nullcontext()
        )
        with self.progress, logging:
            while self.step < len(self.steps):
                index, data = self.steps[self.step]
                pending = self.epochs.pending
                self.step_started = time.perf_counter() - (pending or {}).get("train_seconds", 0)
                self.images_before = (pending or {}).get("images", 0)
                self.progress.images = 0
                if self.selection is not None:
                    self.selection.selected = None
                if self.spec.trains_jointly or trains_task(self.config, self.stream, index):
                    self.learner.train(data, eval_streams=[], **self.train_options(data))
                else:
                    self.spec.adopt_pretrained(self.learner, data, **self.train_options(data))
                if self.selection is not None:
                    self.record.add_selection(self.selection.selected)
                if self.prune_stages is not None:
                    self.record.add_prune_stages(
                        self.stream.task_names[index], self.prune_stages.pop()
                    )
                trained = time.perf_counter()
                self.learner.eval(
                    self.stream.benchmark.test_stream[: index + 1], **self.eval_loader
                )
                evaluated = time.perf_counter()
                row = [self.accuracy.results[j] for j in range(index + 1)]
                self.record.append_row([r.top1 for r in row], [r.top5 for r in row])
                self.record.add_timing(
                    trained - self.step_started,
                    evaluated - trained,
                    self.progress.images + self.images_before,
                )
                self.fingerprint(range(num_tasks) if self.spec.trains_jointly else [index], index)
                self.step += 1
                self.save_task()
                self.save_record()

    def train_options(self, data) -> dict:
        """Arguments of ``learner.train`` for one step: the DataLoader options, and
        ``drop_last`` when a task's last batch would hold a single image
        (:func:`strategies.templates.drops_last_batch`; joint training's batches are full)."""
        options = dict(self.train_loader)
        if not isinstance(data, list):
            options["drop_last"] = drops_last_batch(len(data.dataset), self.config.batch_size)
        return options

    def fingerprint(self, tasks, after: int) -> None:
        """Keep each task's outputs on its probe batch (see :mod:`clbench.run.fingerprint`)."""
        for task in tasks:
            inputs, labels = probe_batch(self.stream.benchmark.test_stream[task])
            if not len(labels):
                continue  # no test data on disk: nothing to fingerprint
            outputs = task_outputs(self.learner, self.capture, inputs, labels, task)
            digest = outputs_digest(outputs)
            self.probes.append(
                {
                    "task": task,
                    "after": after,
                    "inputs": inputs,
                    "labels": labels,
                    "outputs": outputs,
                    "sha256": digest,
                }
            )
            self.record.fingerprints.append(
                {
                    "task": self.stream.task_names[task],
                    "after_task": after,
                    "images": len(labels),
                    "sha256": digest,
                }
            )

    def save_task(self) -> None:
        """Checkpoint after a finished step; drop the finished step's epoch checkpoint."""
        stream, path = self.stream, self.run_dir / CHECKPOINT_NAME
        content = {
            "config": asdict(self.config),
            "steps_done": self.step,
            "record": self.record.to_dict(),
            "learner": learner_state(self.learner),
            "rng": rng_state(),
            "probes": self.probes,
            "stream": {
                "task_names": stream.task_names,
                "head_sizes": stream.head_sizes,
                "channels": stream.in_channels,
                "image_size": stream.image_size,
                "first_task_pretrained": stream.first_task_pretrained,
            },
        }
        with self.writing(path):
            save_checkpoint(path, content)
            (self.run_dir / EPOCH_CHECKPOINT_NAME).unlink(missing_ok=True)

    def save_epoch(self, epochs_done: int) -> None:
        """Checkpoint inside the step being trained (:class:`EpochCheckpointPlugin`)."""
        path = self.run_dir / EPOCH_CHECKPOINT_NAME
        content = {
            "config": asdict(self.config),
            "step": self.step,
            "epochs_done": epochs_done,
            "learner": learner_state(self.learner),
            "rng": rng_state(),
            "train_seconds": time.perf_counter() - self.step_started,
            "images": self.progress.images + self.images_before,
        }
        with self.writing(path):
            save_checkpoint(path, content)

    def diverged(self, err: NonFiniteLoss) -> str:
        """Record status ``diverged`` (task and epoch); return the one-line message."""
        index = self.steps[self.step][0]
        where = (
            "joint training of all tasks"
            if self.spec.trains_jointly
            else f"task {index + 1}/{len(self.steps)} ({self.stream.task_names[index]})"
        )
        self.record.mark_diverged(
            {
                "task": None if self.spec.trains_jointly else self.stream.task_names[index],
                "task_index": None if self.spec.trains_jointly else index,
                "epoch": err.epoch,
            },
            f"non-finite loss in epoch {err.epoch} of {where}",
        )
        self.save_record()
        return diverged_message(self.record, self.record_path)

    def finish(self) -> RunRecord:
        """Summaries, storage and the strategy's report; status ``complete``."""
        record, stream = self.record, self.stream
        sizes = model_sizes(self.model.backbone, nn.ModuleList(self.model.task_heads()))
        # Task 0 is served by the network as it is only when it was adopted, not trained
        # (--no-pretrained on an ImageNet stream trains it: Piggyback then masks it too).
        task0_as_is = not trains_task(self.config, stream, 0)
        record.complete(
            summarize(record.acc_top1, record.acc_top5, record.pretrained_network),
            self.spec.storage(sizes, len(stream.tasks), self.config.options, task0_as_is),
            self.spec.report(self.learner),
        )
        self.save_record()
        return record


def run(config: RunConfig, console: Console | None = None, start: Start = "auto") -> RunRecord:
    """Execute a resolved config; returns the final record (also written to disk).

    ``start`` says what to do with an earlier invocation's record and checkpoints
    (see :data:`Start`); a complete run is reported and its record returned as it is.
    Raises :class:`RunDiverged` when the loss stops being finite (or the run had), and
    a :class:`UserError` when another process is running it (:mod:`clbench.run.lock`).
    """
    console = console or Console(stderr=True)
    device = resolve_device(config.device)
    record_path = run_folder(config) / RECORD_NAME
    if start == "resume" and not is_present(record_path):  # refused before the folder exists
        raise UserError(f"nothing to resume: no run record at {record_path}")
    with run_folder_lock(config.run_dir()):
        return _run_locked(config, console, device, start)


def run_folder(config: RunConfig) -> Path:
    """``config.run_dir()``, refused (one line) unless each of its parts below the
    results folder (stream, arch, strategy, run id) is a plain name, so the run folder is
    strictly inside the results folder whoever built the config."""
    for name in ("stream", "arch", "strategy", "run_id"):
        value = getattr(config, name)
        problem = "is not set" if value is None else domains.run_id(value)
        if problem:
            raise UserError(f"the run folder's {name} {problem}")
    return config.run_dir()


def _run_locked(
    config: RunConfig, console: Console, device: torch.device, start: Start
) -> RunRecord:
    """:func:`run` while holding the run folder's lock."""
    prior = read_prior(config, device, start)
    record_path = config.run_dir() / RECORD_NAME
    if prior.record is not None and prior.record.status == "complete":
        missing = prior.record.missing_summary()
        if missing is not None:
            raise UserError(f"run record {record_path}: {missing}; {RESTART_HINT}")
        console.print(
            f"run already complete: {record_path} (--restart runs it again)",
            soft_wrap=True,
            markup=False,
        )
        return prior.record
    if prior.record is not None and prior.record.status == "diverged":
        message = diverged_message(prior.record, record_path)
        raise RunDiverged(f"{message} (--restart runs it again)")
    current = _Run(config, console, device)
    note = current.prepare(prior, start)
    if note is not None:
        console.print(f"{note}: {record_path}", soft_wrap=True, markup=False)
    try:
        current.train()
    except NonFiniteLoss as err:
        raise RunDiverged(current.diverged(err)) from None
    except BaseException as err:
        current.record.mark_failed(f"{type(err).__name__}: {err}")
        with contextlib.suppress(OSError):  # the disk may be what failed
            current.record.save(record_path)
        raise
    return current.finish()
