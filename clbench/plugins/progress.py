"""Live ``rich`` progress for training: task, phase and epoch, loss, throughput and the
task's validation accuracy when it holds validation data."""

from __future__ import annotations

import time
from collections.abc import Callable

from avalanche.core import SupervisedPlugin
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from torch.utils.data import Dataset

from clbench.plugins.selection import BestValidEpoch, accuracy, first_selectable_epoch

REFRESH_EVERY = 10  # iterations between loss read-outs (each one syncs the device)


def epoch_label(strategy) -> str:
    """Where the current task is: ``epoch 2/4``; PackNet's retrain phase after its
    training epochs, ``retrain 1/2``; LwF's warm-up, ``epoch 1/4 (warm-up: new head only)``."""
    epoch, total = strategy.clock.train_exp_epochs, strategy.train_epochs
    retrain = first_selectable_epoch(strategy)
    if retrain and epoch >= retrain:
        return f"retrain {epoch - retrain + 1}/{total - retrain}"
    label = f"epoch {epoch + 1}/{retrain or total}"
    if any(
        callable(getattr(p, "in_warmup", None)) and p.in_warmup(strategy) for p in strategy.plugins
    ):
        label += " (warm-up: new head only)"
    return label


class ValidationAccuracy:
    """The current task's validation accuracy (percent) after its ``epochs``-th epoch,
    and the epoch whose weights the model holds: once ``--select best-valid`` has kept
    an epoch, that one; the score it measured for that epoch; else one evaluation pass
    over the task's validation split. None when the task holds no validation data."""

    def __init__(
        self, valid_data: Callable[[int], Dataset], selection: BestValidEpoch | None = None
    ) -> None:
        self.valid_data = valid_data
        self.selection = selection

    def __call__(self, strategy, epochs: int) -> tuple[float, int] | None:
        if self.selection is not None and self.selection.selected is not None:
            kept = self.selection.selected
            return kept["valid_top1"], kept["epoch"]
        latest = self.selection.latest if self.selection is not None else None
        if latest is not None and latest[0] == epochs:
            return 100 * latest[1], epochs
        label = int(strategy.experience.task_label)
        data = self.valid_data(label)
        if not len(data):
            return None
        model, device = strategy.model, strategy.device
        return 100 * accuracy(model, data.eval(), label, device, strategy.eval_mb_size), epochs


class RichProgressPlugin(SupervisedPlugin):
    """One progress bar per task; also counts the training images it has seen.

    :param valid_accuracy: the current task's validation accuracy after a number of its
        epochs, and the epoch it is of (:class:`ValidationAccuracy`), shown after each
        epoch and at the end of the task; None: not shown.
    """

    def __init__(
        self,
        console: Console,
        task_names: list[str],
        valid_accuracy: Callable[[object, int], tuple[float, int] | None] | None = None,
    ) -> None:
        super().__init__()
        self.task_names = task_names
        self.valid_accuracy = valid_accuracy
        self.images = 0
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[ips]} img/s"),
            TextColumn("{task.fields[valid]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._bar = None
        self._iteration = 0
        self._epoch_iterations = 0
        self._started = 0.0
        self._single_task = True

    def __enter__(self) -> RichProgressPlugin:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.images = 0
        self._iteration = 0
        self._epoch_iterations = 0
        self._started = time.perf_counter()
        tasks = strategy.adapted_dataset.targets_task_labels.uniques
        self._single_task = len(tasks) == 1
        if not self._single_task:  # joint training: one experience holding several tasks
            self._label = f"{len(tasks)} tasks jointly"
        else:
            index = strategy.experience.current_experience
            self._label = f"task {index + 1}/{len(self.task_names)} {self.task_names[index]}"
        self._bar = self.progress.add_task(self._label, total=None, loss="-", ips="-", valid="")

    def before_training_epoch(self, strategy, **kwargs) -> None:
        done = strategy.clock.train_exp_epochs
        if done:
            self._show_valid(strategy, done)
        self._epoch_iterations = 0
        total = len(strategy.dataloader) * strategy.train_epochs
        description = f"{self._label} {epoch_label(strategy)}"
        self.progress.update(self._bar, total=total, description=description)

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.images += strategy.mb_y.shape[0]
        self._iteration += 1
        self._epoch_iterations += 1
        fields = {}
        if self._iteration % REFRESH_EVERY == 1:
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            fields = {"loss": f"{strategy.loss.item():.4f}", "ips": f"{self.images / elapsed:,.0f}"}
        self.progress.update(self._bar, advance=1, **fields)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self._show_valid(strategy, strategy.clock.train_exp_epochs)

    def _show_valid(self, strategy, epochs: int) -> None:
        """Show the validation accuracy after ``epochs`` epochs of the task (not for an
        epoch replayed without data by a resume, nor for joint training)."""
        if self.valid_accuracy is None or not self._single_task or not self._epoch_iterations:
            return
        measured = self.valid_accuracy(strategy, epochs)
        if measured is not None:
            score, epoch = measured
            self.progress.update(self._bar, valid=f"valid {score:.1f}% (epoch {epoch})")
