"""bf16 autocast and channels_last (the CUDA speed path), exercised on CPU."""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from benchmarks.splitmnist import build_splitmnist
from clbench.multihead import build_model
from clbench.plugins.speed import SpeedPlugin
from strategies.packnet import PackNetPlugin, task_view
from strategies.templates import quiet_evaluator


class _Probe(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.dtypes, self.layouts = set(), set()

    def after_forward(self, strategy, **kwargs):
        self.dtypes.add(strategy.mb_output.dtype)
        self.layouts.add(strategy.mb_x.is_contiguous(memory_format=torch.channels_last))


def test_packnet_stays_bit_exact_under_bf16_autocast_and_channels_last():
    torch.manual_seed(0)
    stream = build_splitmnist(seed=0)
    model = build_model("smallcnn", stream.head_sizes, in_channels=1)
    probe = _Probe()
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4),
        train_mb_size=64,
        train_epochs=1,
        device="cpu",
        evaluator=quiet_evaluator(),
        # The probe sees the outputs before SpeedPlugin casts them to fp32 for the loss.
        plugins=[PackNetPlugin(0.75, retrain_epochs=1, retrain_lr=1e-3), probe, SpeedPlugin()],
    )
    x = stream.tasks[0].test[0][:32].contiguous(memory_format=torch.channels_last)
    train = stream.benchmark.train_stream
    strategy.train(train[0], eval_streams=[])
    model.eval()
    with torch.no_grad(), task_view(model, 0):
        before = model(x, 0)
    for experience in (train[1], train[2]):
        strategy.train(experience, eval_streams=[])
    model.eval()
    with torch.no_grad(), task_view(model, 0):
        after = model(x, 0)
    assert probe.dtypes == {torch.bfloat16}
    assert probe.layouts == {True}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.equal(before, after)
