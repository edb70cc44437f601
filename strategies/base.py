"""What a strategy declares to the harness: its options, storage formula and guarantees.

This module is light (no torch, no Avalanche): the command line lists strategies and
their options, and ``storage`` computes their footprint, without importing the
implementations. A spec names its implementation module, imported when a run builds
the strategy; that module provides ``build(ctx)`` and, where the method needs them,
``report(learner)`` and ``adopt_pretrained(learner, experience, **train_kwargs)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from clbench.core.protocol import PACKNET_PAPER, Setting

if TYPE_CHECKING:
    import torch
    from avalanche.core import SupervisedPlugin

    from benchmarks.stream import Stream
    from clbench.core.config import RunConfig
    from clbench.core.storage import ModelSizes
    from clbench.multihead import MultiHeadNet


@dataclass(frozen=True)
class Option:
    """A strategy-specific command-line option (``--flag``), stored in ``config.options``.

    ``check`` returns why a value is invalid (None when valid); see :mod:`clbench.core.domains`.
    """

    flag: str
    type: Callable[[str], Any]
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None

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


SGD = Setting("SGD", PACKNET_PAPER)
"""The papers' optimizer (momentum and weight decay: run options)."""


@dataclass(frozen=True)
class StreamFacts:
    """What resolving a strategy's options may need to know of the stream:
    ``num_tasks``, and ``papers``: the stream follows the papers' protocol (the last task
    is never pruned)."""

    num_tasks: int
    papers: bool


@dataclass(frozen=True)
class Phase:
    """One training phase of a strategy, as the protocol table shows it: the settings
    (run or strategy option names) giving its epochs, learning rate and LR step (None:
    constant). ``pretrained_task``: only for the pretrained network's own task (on the
    ImageNet streams); ``batchnorm`` and ``frozen`` describe the phase when they differ
    from the strategy's."""

    label: str
    epochs: str = "epochs"
    lr: str = "lr"
    lr_step: str | None = "lr_step"
    pretrained_task: bool = False
    batchnorm: Setting | None = None
    frozen: Setting | None = None


StorageFormula = Callable[["ModelSizes", int, dict, bool], dict]
"""``storage(sizes, num_tasks, options, first_task_pretrained)`` -> bytes to serve every
task (see :mod:`clbench.core.storage`); ``first_task_pretrained``: task 0 is the pretrained
network's own task (ImageNet)."""


def lower_lr(config: dict) -> list[str]:
    """What to try when a run's loss stopped being finite: a lower learning rate."""
    return [f"a lower --lr (this run: {config['lr']:g})"]


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy.

    ``implementation``: the module that builds it (see the module docstring).
    ``storage``: its :data:`StorageFormula`. A strategy with ``trains_jointly`` gets one
    ``train(list_of_all_experiences)`` call instead of one call per task, and its record
    holds only the final row of the accuracy matrix. ``old_tasks_exact`` promises that
    training a task never changes the outputs of an earlier one, bit for bit
    (``clbench check`` verifies it). ``divergence_hints(config)`` says what to try when a
    run with that (record's) configuration diverged.

    ``adopt_pretrained`` is called instead of ``train`` for task 0 when it is the
    pretrained network's own task (ImageNet), with its data or with an empty experience
    when the data is not on disk (PackNet prunes it and retrains; by default the network
    serves it as it is).

    Protocol facts (the protocol table, :mod:`clbench.protocol`): ``optimizer`` and
    ``frozen`` (what does not train) with their sources; ``phases`` (default: one phase
    of ``--epochs`` at ``--lr``, x0.1 every ``--lr-step``); ``unused``: run options the
    strategy ignores (recorded as ``None``); ``batchnorm_modes``: the ``--batchnorm``
    values it accepts. ``normalize(options, facts)`` puts its options in canonical form
    when a run is resolved (:class:`StreamFacts`), e.g. PackNet's per-task prune ratios.

    Checkpoints save the model, optimizer and schedulers; a plugin that keeps other state
    (tensors or Python values that training changes) provides ``state_dict() -> dict``
    and ``load_state_dict(state)``, returning only tensors and plain Python values, and
    restoring it both between tasks and at an epoch boundary inside a task (after the
    task's ``before_training_exp``).
    """

    name: str
    summary: str
    implementation: str
    storage: StorageFormula
    options: Sequence[Option] = field(default_factory=tuple)
    trains_jointly: bool = False
    old_tasks_exact: bool = False
    optimizer: Setting = SGD
    frozen: Setting | None = None
    phases: Sequence[Phase] = (Phase(""),)
    unused: Sequence[str] = ()
    batchnorm_modes: Sequence[str] = ("train", "frozen")
    normalize: Callable[[dict, StreamFacts], dict] | None = None
    divergence_hints: Callable[[dict], list[str]] = lower_lr

    def module(self) -> ModuleType:
        """The implementation module (imported on first use)."""
        return importlib.import_module(self.implementation)

    def build(self, ctx: BuildContext) -> Any:
        """A learner with Avalanche's ``train(experience)`` and ``eval(experiences)``."""
        return self.module().build(ctx)

    def report(self, learner: Any) -> dict | None:
        """Strategy-specific facts for the record (``strategy_report``), if any."""
        report = getattr(self.module(), "report", None)
        return None if report is None else report(learner)

    def adopt_pretrained(self, learner: Any, experience: Any, **train_kwargs: Any) -> None:
        """Adopt the pretrained network's own task (see the class docstring)."""
        adopt = getattr(self.module(), "adopt_pretrained", None)
        if adopt is not None:
            adopt(learner, experience, **train_kwargs)
