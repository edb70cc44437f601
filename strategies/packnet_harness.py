"""How clbench runs PackNet (``--strategy packnet``): prune-ratio parsing, the capacity
check before training, the per-run report and the adoption of the pretrained task.

The reusable plugin is :mod:`strategies.packnet`; its options and storage formula are
declared in :mod:`strategies.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from clbench.core.errors import UserError
from clbench.core.protocol import step_lr
from strategies.base import BuildContext
from strategies.packnet import PackNetPlugin, prunable_layers, prune_units, train_layer_names
from strategies.packnet_options import ratio_values
from strategies.templates import make_naive, strategy_plugin

TRACE_INPUT = (1, 3, 32, 32)
"""Input traced for filter routes when the pretrained network's task is packed without
data: ImageNet networks take 3 channels, and routes do not depend on the image size."""


def parse_prune_ratios(text: str, num_tasks: int) -> float | list[float]:
    """``--prune-ratios`` as resolved (:mod:`strategies.packnet_options`): one value for
    every task, or exactly one value per task."""
    values = ratio_values(text)
    if len(values) == 1:
        return values[0]
    if len(values) != num_tasks:
        raise UserError(
            f"--prune-ratios lists {len(values)} values but the stream has {num_tasks} tasks"
        )
    return values


def build(ctx: BuildContext):
    """PackNet with the resolved options (a config recorded before they were resolved
    leaves the retrain epochs and LR unset: half of ``--epochs``, ``--lr`` / 10)."""
    options = ctx.config.options
    epochs = ctx.config.epochs
    retrain_epochs = options["retrain_epochs"]
    retrain_lr = options["retrain_lr"]
    plugin = PackNetPlugin(
        prune_ratio=parse_prune_ratios(options["prune_ratios"], len(ctx.stream.tasks)),
        retrain_epochs=max(1, epochs // 2) if retrain_epochs is None else retrain_epochs,
        retrain_lr=ctx.config.lr / 10 if retrain_lr is None else retrain_lr,
        per_task_bn=bool(options["per_task_bn"]),
        per_task_bias=bool(options["per_task_bias"]),
        train_layers=options["train_layers"],
        prune_granularity=options["prune_granularity"],
    )
    check_capacity(ctx.model, plugin, ctx.stream.task_names)
    learner = make_naive(ctx, [plugin])
    # last, so that the positions of the other plugins (checkpoint keys) do not change
    learner.plugins.append(
        PretrainedRetrainSchedule(
            plugin, options.get("pretrained_retrain_lr"), options.get("pretrained_retrain_lr_step")
        )
    )
    return learner


def check_capacity(model: nn.Module, plugin: PackNetPlugin, task_names: Sequence[str]) -> None:
    """Refuse, before any training, a ``--train-layers`` spec the model does not fit, and
    a prune schedule that leaves a task no free weight (or filter) to train in a layer it
    trains: a task after an unpruned one (ratio <= 0), or a layer whose weights rounding
    never frees (the counts of :func:`_prune_task` and :func:`_prune_filters`)."""
    try:
        trained = set(train_layer_names(model, plugin.train_layers, plugin.exclude))
    except ValueError as err:
        raise UserError(f"--train-layers {plugin.train_layers}: {err}") from None
    unit = "filter" if plugin.prune_granularity == "filter" else "weight"
    for name, layer in prunable_layers(model, plugin.exclude):
        if name not in trained:
            continue  # only the first task trains it
        free = owned = prune_units(layer, plugin.prune_granularity)
        for task, task_name in enumerate(task_names):
            if free == 0:
                ratio = plugin.ratio(task - 1)
                why = (
                    f"is not pruned (ratio <= 0) and keeps every free {unit}"
                    if ratio == 0
                    else f"frees round({ratio} x {owned}) = 0 of its {owned} {unit}s there"
                )
                raise UserError(
                    f"--prune-ratios leaves PackNet task {task + 1} ({task_name}) no free "
                    f"{unit} to train in layer {name}: task {task} {why}"
                )
            ratio, owned = plugin.ratio(task), free
            free = round(ratio * owned) if ratio > 0 else 0


def report(learner) -> dict:
    plugin = strategy_plugin(learner, PackNetPlugin)
    return {
        "weight_usage": plugin.weight_usage(learner.model),
        "mask_bits": plugin.mask_bits(learner.model),
    }


class PretrainedRetrainSchedule(SupervisedPlugin):
    """While the pretrained task is retrained (``active``), PackNet's retrain LR is ``lr``
    x0.1 every ``step`` epochs (0 or None: constant), set at every epoch start."""

    def __init__(self, packnet: PackNetPlugin, lr: float | None, step: int | None) -> None:
        super().__init__()
        self.packnet, self.lr, self.step = packnet, lr, step
        self.active = False

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if not self.active or self.lr is None:
            return
        self.packnet.retrain_lr = step_lr(self.lr, self.step, strategy.clock.train_exp_epochs)
        for group in strategy.optimizer.param_groups:
            group["lr"] = self.packnet.retrain_lr


def adopt_pretrained(learner, experience, **train_kwargs) -> None:
    """The pretrained network's own task: pruned as it is, then, when its training data
    is on disk, retrained (no training epochs before pruning) for ``--retrain-epochs`` at
    ``--pretrained-retrain-lr`` x0.1 every ``--pretrained-retrain-lr-step`` epochs (the
    paper's 10 epochs at 1e-3, x0.1 after 5; unset: at the constant ``--retrain-lr``);
    without data, packed without training."""
    plugin = strategy_plugin(learner, PackNetPlugin)
    if len(experience.dataset):
        schedule = strategy_plugin(learner, PretrainedRetrainSchedule)
        epochs, learner.train_epochs = learner.train_epochs, 0
        retrain_lr, schedule.active = plugin.retrain_lr, True
        try:
            learner.train(experience, eval_streams=[], **train_kwargs)
        finally:
            learner.train_epochs, plugin.retrain_lr, schedule.active = epochs, retrain_lr, False
        return
    label = int(experience.task_label)
    model = learner.model
    trace = torch.zeros(TRACE_INPUT, device=next(model.parameters()).device)
    plugin.pack_without_training(model, model.task_heads()[label], label, trace)
