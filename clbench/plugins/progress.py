"""Live ``rich`` progress for training: task, epoch, loss and throughput."""

from __future__ import annotations

import time

from avalanche.core import SupervisedPlugin
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

REFRESH_EVERY = 10  # iterations between loss read-outs (each one syncs the device)


class RichProgressPlugin(SupervisedPlugin):
    """One progress bar per task; also counts the training images it has seen."""

    def __init__(self, console: Console, task_names: list[str]) -> None:
        super().__init__()
        self.task_names = task_names
        self.images = 0
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[ips]} img/s"),
            TimeElapsedColumn(),
            console=console,
        )
        self._bar = None
        self._iteration = 0
        self._started = 0.0

    def __enter__(self) -> RichProgressPlugin:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.images = 0
        self._iteration = 0
        self._started = time.perf_counter()
        tasks = strategy.adapted_dataset.targets_task_labels.uniques
        if len(tasks) > 1:  # joint training: one experience holding several tasks
            self._label = f"{len(tasks)} tasks jointly"
        else:
            index = strategy.experience.current_experience
            self._label = f"task {index + 1}/{len(self.task_names)} {self.task_names[index]}"
        self._bar = self.progress.add_task(self._label, total=None, loss="-", ips="-")

    def before_training_epoch(self, strategy, **kwargs) -> None:
        epoch = strategy.clock.train_exp_epochs + 1
        total = len(strategy.dataloader) * strategy.train_epochs
        self.progress.update(
            self._bar,
            total=total,
            description=f"{self._label} epoch {epoch}/{strategy.train_epochs}",
        )

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.images += strategy.mb_y.shape[0]
        self._iteration += 1
        fields = {}
        if self._iteration % REFRESH_EVERY == 1:
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            fields = {"loss": f"{strategy.loss.item():.4f}", "ips": f"{self.images / elapsed:,.0f}"}
        self.progress.update(self._bar, advance=1, **fields)
