"""Building blocks of the strategies' Avalanche learners: optimizer, LR schedule,
template with the harness's plugins, and small helpers."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TypeVar

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, LRSchedulerPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from clbench.core.config import RunConfig
from strategies.base import BuildContext

T = TypeVar("T")


def strategy_plugin(learner, kind: type[T]) -> T:
    """The learner's one plugin of type ``kind`` (the method's own plugin)."""
    (plugin,) = [p for p in learner.plugins if isinstance(p, kind)]
    return plugin


def quiet_evaluator() -> EvaluationPlugin:
    """An Avalanche evaluator that logs nothing: the harness collects its own metrics."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(loggers=[])


def make_sgd(params, config: RunConfig) -> torch.optim.SGD:
    """SGD with the run's learning rate, momentum and weight decay (papers' optimizer)."""
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


class FrozenBatchNorm(SupervisedPlugin):
    """``--batchnorm frozen`` (the authors' ``train_nobn``): every BatchNorm layer of the
    backbone in eval mode (running statistics fixed) with its affine parameters not
    trained, in every task."""

    def before_training_exp(self, strategy, **kwargs) -> None:
        for bn in batchnorm_modules(strategy.model.backbone):
            bn.requires_grad_(False)
        self.before_training_epoch(strategy)

    def before_training_epoch(self, strategy, **kwargs) -> None:
        for bn in batchnorm_modules(strategy.model.backbone):
            bn.eval()


def lr_schedule_plugins(optimizer: torch.optim.Optimizer, config: RunConfig) -> list:
    """LR x0.1 every ``config.lr_step`` epochs (papers: after half the epochs); none when
    it is 0 or unset."""
    if not config.lr_step:
        return []
    step = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=0.1)
    return [LRSchedulerPlugin(step, reset_scheduler=True, reset_lr=True)]


def make_naive(
    ctx: BuildContext, extra_plugins: Sequence[SupervisedPlugin] = (), params=None
) -> Naive:
    """A plain Avalanche ``Naive`` template with the run's optimizer, schedule and plugins."""
    optimizer = make_sgd(ctx.model.parameters() if params is None else params, ctx.config)
    return make_template(ctx, Naive, optimizer, extra_plugins)


def make_template(
    ctx: BuildContext,
    template: type[SupervisedTemplate],
    optimizer: torch.optim.Optimizer,
    extra_plugins: Sequence[SupervisedPlugin] = (),
) -> SupervisedTemplate:
    """An Avalanche ``template`` with ``optimizer``, the run's batch size, epochs and LR
    schedule (``--lr-step``), cross-entropy, ``extra_plugins`` (after
    :class:`FrozenBatchNorm` with ``--batchnorm frozen``) then the harness plugins.
    An ``EvaluationPlugin`` among the harness plugins (``--log``) is the template's
    evaluator, otherwise one that logs nothing; Avalanche puts the evaluator after every
    plugin, so the plugins' positions (checkpoint keys) do not depend on it."""
    config = ctx.config
    if config.batchnorm == "frozen":
        extra_plugins = [FrozenBatchNorm(), *extra_plugins]
    evaluator = next((p for p in ctx.plugins if isinstance(p, EvaluationPlugin)), None)
    plugins = [p for p in ctx.plugins if p is not evaluator]
    return template(
        model=ctx.model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=config.batch_size,
        train_epochs=config.epochs,
        eval_mb_size=max(config.batch_size, 256),
        device=ctx.device,
        plugins=[*extra_plugins, *lr_schedule_plugins(optimizer, config), *plugins],
        evaluator=evaluator or quiet_evaluator(),
    )


def drops_last_batch(images: int, batch_size: int) -> bool:
    """Whether a training epoch over ``images`` drops its last mini-batch: only when that
    batch would hold a single image, which BatchNorm cannot normalise in training mode
    ("Expected more than 1 value per channel when training").

    Reference training scripts differ: timm's ``create_loader`` drops every incomplete
    last training batch (``drop_last=is_training``), torchvision's classification
    references and the PackNet/Piggyback authors' loaders keep it. We keep it (the
    papers' protocol) except in that one case, where one image per epoch is left out.
    """
    return images > 1 and images % batch_size == 1


def batchnorm_modules(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """All BatchNorm layers inside ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
