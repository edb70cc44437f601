"""What every strategy module provides to the harness, and shared building blocks."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, LRSchedulerPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn

if TYPE_CHECKING:
    from benchmarks.stream import Stream
    from clbench.config import RunConfig
    from clbench.models import MultiHeadNet

T = TypeVar("T")


@dataclass(frozen=True)
class Option:
    """A strategy-specific command-line option (``--flag``), stored in ``config.options``."""

    flag: str
    type: Callable[[str], Any]
    default: Any
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass
class BuildContext:
    """Everything a strategy needs to build its learner for one run."""

    config: RunConfig
    model: MultiHeadNet
    stream: Stream
    device: torch.device
    plugins: list[SupervisedPlugin]


def serve_as_is(learner, experience, **train_kwargs) -> None:
    """Adopt a pretrained network's own task by changing nothing."""


def strategy_plugin(learner, kind: type[T]) -> T:
    """The learner's one plugin of type ``kind`` (the method's own plugin)."""
    (plugin,) = [p for p in learner.plugins if isinstance(p, kind)]
    return plugin


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy: how to build it and how much storage it needs to serve.

    ``build`` returns a learner with Avalanche's ``train(experience)`` and
    ``eval(experiences)``; ``storage(model, num_tasks, options, first_task_pretrained)``
    returns the bytes needed to serve every task (see :mod:`clbench.storage`);
    ``first_task_pretrained`` says task 0 is the pretrained network's own task (ImageNet).
    A strategy with ``trains_jointly`` gets one ``train(list_of_all_experiences)`` call
    instead of one call per task, and its record holds only the final row of the accuracy matrix.
    ``report(learner)``, when given, adds strategy-specific facts to the record
    (``strategy_report``), e.g. PackNet's per-task weight usage.
    ``adopt_pretrained(learner, experience, **train_kwargs)`` is called instead of
    ``train`` for task 0 when it is the pretrained network's own task (ImageNet), with
    its data or with an empty experience when the data is not on disk (PackNet prunes
    it and retrains; the default serves the network as it is); ``train_kwargs`` are the
    dataloader options (workers) for any ``learner.train`` call it makes.
    ``old_tasks_exact`` promises that training a task never changes the outputs of an
    earlier one, bit for bit (``clbench check`` verifies it).

    Checkpoints (:mod:`clbench.checkpoint`) save the model, optimizer and schedulers; a
    plugin that keeps other state (tensors or Python values that training changes)
    provides ``state_dict() -> dict`` and ``load_state_dict(state)``, returning only
    tensors and plain Python values, and restoring it both between tasks and at an epoch
    boundary inside a task (after the task's ``before_training_exp``).
    """

    name: str
    summary: str
    build: Callable[[BuildContext], Any]
    storage: Callable[[nn.Module, int, dict, bool], dict]
    options: Sequence[Option] = field(default_factory=tuple)
    trains_jointly: bool = False
    report: Callable[[Any], dict] | None = None
    adopt_pretrained: Callable[..., None] = serve_as_is
    old_tasks_exact: bool = False


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


def lr_schedule_plugins(optimizer: torch.optim.Optimizer, config: RunConfig) -> list:
    """LR x0.1 every ``config.lr_step`` epochs (papers: after half the epochs), if set."""
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
    schedule (``--lr-step``), cross-entropy, ``extra_plugins`` then the harness plugins."""
    config = ctx.config
    return template(
        model=ctx.model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=config.batch_size,
        train_epochs=config.epochs,
        eval_mb_size=max(config.batch_size, 256),
        device=ctx.device,
        plugins=[*extra_plugins, *lr_schedule_plugins(optimizer, config), *ctx.plugins],
        evaluator=quiet_evaluator(),
    )


def batchnorm_modules(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """All BatchNorm layers inside ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
