"""How clbench runs Piggyback (``--strategy piggyback``): the Adam optimizer of the paper,
per-task seeds, the per-run report and the pretrained task.

The reusable plugin is :mod:`strategies.piggyback`; its options and storage formula are
declared in :mod:`strategies.registry`.
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from avalanche.training.plugins import LRSchedulerPlugin

from strategies.base import BuildContext
from strategies.piggyback import PiggybackPlugin, task_seed
from strategies.templates import make_template, strategy_plugin


def report(learner: Naive) -> dict:
    """Per task (in training order), the fraction of backbone weights its mask keeps."""
    plugin = strategy_plugin(learner, PiggybackPlugin)
    return {"mask_kept_fraction": list(plugin.kept_fraction().values())}


def adopt_pretrained(learner: Naive, experience, **train_kwargs) -> None:
    """The pretrained network's own task: no mask, the backbone as it is serves it."""
    plugin = strategy_plugin(learner, PiggybackPlugin)
    plugin.adopt_unmasked(int(experience.task_label))


def build(ctx: BuildContext) -> Naive:
    """Adam at ``--piggyback-lr`` with ``--weight-decay`` (paper: 0), x0.1 every
    ``--lr-step`` epochs (a config recorded before the step was resolved, with none:
    x0.1 after half the epochs, as such runs trained)."""
    config, options = ctx.config, ctx.config.options
    optimizer = torch.optim.Adam(
        ctx.model.parameters(), lr=options["piggyback_lr"], weight_decay=config.weight_decay
    )
    seeds = {
        label: task_seed(config.seed, name) for label, name in enumerate(ctx.stream.task_names)
    }
    plugins: list[SupervisedPlugin] = [
        PiggybackPlugin(options["piggyback_threshold"], options["piggyback_score_init"], seeds)
    ]
    if config.lr_step is None and config.epochs >= 2:
        decay = torch.optim.lr_scheduler.MultiStepLR(optimizer, [config.epochs // 2], gamma=0.1)
        plugins.append(LRSchedulerPlugin(decay, reset_scheduler=True, reset_lr=True))
    return make_template(ctx, Naive, optimizer, plugins)
