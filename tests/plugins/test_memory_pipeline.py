"""The in-memory pipeline plugin feeds Avalanche strategies augmented device batches."""

from __future__ import annotations

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.core import SupervisedPlugin

from benchmarks.augment import DeviceAugment
from benchmarks.datacache import stack_images
from benchmarks.stream import Stream, TaskData
from clbench.multihead import build_model
from clbench.plugins.memory_pipeline import InMemoryBatches, InMemoryPipelinePlugin, MemorySplit
from strategies.templates import quiet_evaluator


def _decoded(count: int, classes: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    images = [
        torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8, generator=generator)
        for _ in range(count)
    ]
    return stack_images(images, [i % classes for i in range(count)])


def test_batches_cover_the_split_once_per_epoch_and_are_reproducible():
    data = _decoded(10, 3, 0)
    augment = DeviceAugment("random_resized_crop", 32)

    def epoch(seed):
        batches = InMemoryBatches(
            data, 4, 4, augment, torch.device("cpu"), True, torch.Generator().manual_seed(seed)
        )
        return list(batches)

    first, again, other = epoch(1), epoch(1), epoch(2)
    assert len(first) == 3 and [b[0].shape[0] for b in first] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in first]).tolist()) == sorted(data.targets.tolist())
    assert all((b[2] == 4).all() for b in first)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0])


class _Inputs(SupervisedPlugin):
    """Records the shapes and labels the strategy actually trained/evaluated on."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def after_training_iteration(self, strategy, **kwargs):
        self.seen.append(("train", tuple(strategy.mb_x.shape), int(strategy.mb_task_id[0])))

    def after_eval_iteration(self, strategy, **kwargs):
        self.seen.append(("eval", tuple(strategy.mb_x.shape), int(strategy.mb_task_id[0])))


# Avalanche's own loader would serve these 7 images of 16x16 instead of the pipeline's.
PLACEHOLDER = (torch.zeros(7, 3, 16, 16), torch.arange(7) % 3)


def _pipeline_strategy(train_images: int, test_images: int, train_mb: int, eval_mb: int):
    """A Naive smallcnn (BatchNorm) learner fed by the pipeline on two 3-class tasks; the
    strategy and a recorder of the batches it trained and evaluated on."""
    from avalanche.training import Naive

    crop, centre = DeviceAugment("random_resized_crop", 32), DeviceAugment("center_crop", 32)
    train = {label: MemorySplit(_decoded(train_images, 3, label), crop) for label in range(2)}
    test = {label: MemorySplit(_decoded(test_images, 3, 10 + label), centre) for label in range(2)}
    tasks = [TaskData(f"t{i}", 3, PLACEHOLDER, PLACEHOLDER, PLACEHOLDER) for i in range(2)]
    stream = Stream("synthetic", tasks, 3, 32)
    model = build_model("smallcnn", [3, 3], in_channels=3)
    recorder = _Inputs()
    pipeline = InMemoryPipelinePlugin(train, test, seed=0)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        train_mb_size=train_mb,
        train_epochs=1,
        eval_mb_size=eval_mb,
        device="cpu",
        plugins=[pipeline, recorder],
        evaluator=quiet_evaluator(),
    )
    for experience in stream.benchmark.train_stream:
        strategy.train(experience, eval_streams=[])
    strategy.eval(stream.benchmark.test_stream)
    return strategy, recorder


def test_plugin_replaces_avalanche_loader_for_training_and_evaluation():
    strategy, recorder = _pipeline_strategy(12, 6, 5, 4)
    train_seen = [s for s in recorder.seen if s[0] == "train"]
    eval_seen = [s for s in recorder.seen if s[0] == "eval"]
    # 12 decoded images per task in batches of 5 (not the 7 placeholder tensors' loader).
    assert [s[1][0] for s in train_seen] == [5, 5, 2, 5, 5, 2]
    assert {s[1][1:] for s in train_seen} == {(3, 32, 32)}
    assert [s[2] for s in train_seen] == [0, 0, 0, 1, 1, 1]
    assert [s[1][0] for s in eval_seen] == [4, 2, 4, 2]
    # A stream of another name (the run's fingerprint probes) keeps Avalanche's loader.
    recorder.seen.clear()
    probe = benchmark_from_datasets(
        probe=[_make_taskaware_tensor_classification_dataset(*PLACEHOLDER, task_labels=1)]
    )
    strategy.eval(with_task_labels(probe).streams["probe"])
    assert [s[1] for s in recorder.seen] == [(4, 3, 16, 16), (3, 3, 16, 16)]


def test_a_last_training_batch_of_one_image_is_dropped():
    """11 images in batches of 5 leave one: BatchNorm cannot train on it (it raised
    "Expected more than 1 value per channel when training"); evaluation keeps it."""
    _, recorder = _pipeline_strategy(11, 6, 5, 5)
    assert [s[1][0] for s in recorder.seen if s[0] == "train"] == [5, 5, 5, 5]
    assert [s[1][0] for s in recorder.seen if s[0] == "eval"] == [5, 1, 5, 1]


def test_plugin_state_restores_the_batch_sequence():
    crop = DeviceAugment("random_resized_crop", 32)
    plugin = InMemoryPipelinePlugin({0: MemorySplit(_decoded(10, 3, 0), crop)}, {}, seed=3)
    batches = InMemoryBatches(
        plugin.splits["train"][0].data, 0, 4, crop, torch.device("cpu"), True, plugin.generator
    )
    list(batches)  # one epoch drawn
    state = plugin.state_dict()
    second = list(batches)
    list(batches)
    plugin.load_state_dict(state)
    again = list(batches)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(second, again))
