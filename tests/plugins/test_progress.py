"""Progress says where a run is: task, phase (PackNet's retrain, LwF's warm-up), epoch of
the phase, and the task's validation accuracy when it holds validation data."""

from __future__ import annotations

import re

from rich.console import Console

from clbench.plugins.progress import RichProgressPlugin, ValidationAccuracy
from clbench.plugins.selection import BestValidEpoch
from tests.strategies.test_strategies import tiny_learner, tiny_stream, train_and_evaluate


def progress_lines(strategy: str, select: bool = False, **options) -> list[str]:
    """Each bar's description and validation field, every time they change."""
    stream = tiny_stream(head_sizes=(2, 3), train_sizes=(16, 16))
    valid = stream.benchmark.valid_stream
    selection = BestValidEpoch(lambda label: valid[label].dataset) if select else None
    progress = RichProgressPlugin(
        Console(file=open("/dev/null", "w")),  # noqa: SIM115 (closed with the console)
        stream.task_names,
        ValidationAccuracy(lambda label: valid[label].dataset, selection),
    )
    seen: list[str] = []
    update = progress.progress.update

    def spy(bar, **fields):
        update(bar, **fields)
        task = progress.progress.tasks[bar]
        seen.append(f"{task.description} | {task.fields['valid']}")

    progress.progress.update = spy
    plugins = [progress] + ([selection] if selection else [])
    learner, _ = tiny_learner(strategy, stream, plugins, epochs=2, **options)
    with progress:
        train_and_evaluate(learner, stream)
    return list(dict.fromkeys(seen))


def test_packnet_retrain_phase_and_validation_accuracy():
    lines = progress_lines("packnet", prune_ratios="0.5")
    descriptions = list(dict.fromkeys(line.split(" | ")[0] for line in lines))
    assert descriptions[:3] == [
        "task 1/2 t0 epoch 1/2",
        "task 1/2 t0 epoch 2/2",
        "task 1/2 t0 retrain 1/1",
    ]
    valid = [line.split(" | ")[1] for line in lines if line.startswith("task 2/2")]
    assert [v for v in valid if v][-1].endswith("(epoch 3)")
    assert all(re.fullmatch(r"(valid \d+\.\d% \(epoch \d\))?", v) for v in valid)


def test_lwf_warm_up_and_the_epoch_best_valid_kept():
    lines = progress_lines("lwf", select=True)
    descriptions = [line.split(" | ")[0] for line in lines]
    assert "task 2/2 t1 epoch 1/2 (warm-up: new head only)" in descriptions
    assert "task 2/2 t1 epoch 2/2" in descriptions and "task 1/2 t0 epoch 1/2" in descriptions
    assert re.search(r"valid \d+\.\d% \(epoch [12]\)$", lines[-1])
