"""How each strategy is trained on each stream by default: the papers' protocols.

One declarative place (see :mod:`clbench.core.protocol`): per stream, the settings
every strategy shares and each strategy's own, every value with its source. The paper
streams follow the PackNet paper (section 4) and the authors' scripts, the paper where
the two disagree (the other value is named); a method the papers did not run there
gets the papers' settings, marked as our choice. The from-scratch streams
(``splitmnist``, ``splitcifar100``) are not in the papers: every value is our choice.

Keys are :class:`clbench.core.config.RunConfig` fields and strategy option names
(``config.options``); :func:`clbench.resolve.resolve` fills what the user left unset
from here and records it in the run's config; ``clbench list --protocol`` renders it.
The key ``optimizer`` only describes (the strategy builds its optimizer; its default
description is the strategy's, :attr:`strategies.base.StrategySpec.optimizer`).
Strategy names are plain strings here (benchmarks never import strategies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clbench.core.protocol import (
    HALF_EPOCHS,
    LWF_CODE,
    LWF_PAPER,
    PACKNET_PAPER,
    PACKNET_PAPER_ANALYSIS,
    PACKNET_SCRIPTS,
    PIGGYBACK_PAPER,
    TENTH_LR,
    Setting,
    Source,
    ours,
)

SCHEDULE = ("epochs", "lr", "lr_step", "batch_size", "momentum")
"""The optimisation settings an unpublished method borrows from the papers."""


@dataclass(frozen=True)
class Protocol:
    """A stream's default training protocol.

    ``common``: the settings of every strategy; ``strategies``: each strategy's own,
    over ``common``. ``papers``: the papers' protocol, where the last task is never
    pruned (a single ``--prune-ratios`` value spares it).
    """

    summary: str
    common: Mapping[str, Setting]
    strategies: Mapping[str, Mapping[str, Setting]] = field(default_factory=dict)
    papers: bool = False

    def settings(self, strategy: str) -> dict[str, Setting]:
        """Every declared setting of ``strategy`` on this stream."""
        return {**self.common, **self.strategies.get(strategy, {})}


def _resourced(settings: Mapping[str, Setting], keys, source: Source) -> dict[str, Setting]:
    """The settings ``keys`` with their values, cited to ``source`` instead."""
    return {key: Setting(settings[key].value, source) for key in keys}


SELECT_LAST = Setting(
    "last",
    ours(
        "the papers do not say; the authors' code kept the best epoch on the TEST set, "
        "which we never do (--select best-valid keeps the best epoch on held-out training "
        "data)"
    ),
)
BN_FROZEN_SCRIPTS = Setting("frozen", PACKNET_SCRIPTS)
"""The authors' ``train_nobn``: every BatchNorm layer in eval mode, affine frozen."""
NOT_PUBLISHED = ours(
    "the method is not in the papers: the PackNet paper's settings for an added task"
)
NOT_PUBLISHED_SGD = {"optimizer": Setting("SGD", NOT_PUBLISHED)}
NOT_PUBLISHED_BN = Setting(
    "frozen",
    ours(
        "not in the authors' code: frozen, as their code runs every SGD fine-tuning "
        "(train_nobn), so ImageNet's statistics are kept"
    ),
)
NOT_PUBLISHED_WD = Setting(
    0.0,
    ours(
        "not in the authors' code: 0, as their code for every SGD fine-tuning (PackNet, "
        "individual networks), so the baseline differs from those only by its method"
    ),
)
PACKNET_RETRAIN = {
    "retrain_epochs": Setting(10, PACKNET_PAPER),
    "retrain_lr": Setting(1e-4, PACKNET_PAPER),
    "pretrained_retrain_lr": Setting(1e-3, PACKNET_PAPER, "the authors' scripts: lr 1e-4"),
    "pretrained_retrain_lr_step": Setting(5, PACKNET_PAPER),
}
"""The ImageNet task: pruned, retrained 10 epochs at lr 1e-3 x0.1 after 5; an added task:
retrained 10 epochs at a constant 1e-4."""
PIGGYBACK = {
    "batch_size": Setting(32, PIGGYBACK_PAPER),
    "piggyback_lr": Setting(1e-4, PIGGYBACK_PAPER),
    "weight_decay": Setting(0.0, PIGGYBACK_PAPER),
    "batchnorm": Setting("frozen", PIGGYBACK_PAPER),
}
"""Adam at 1e-4 for the mask scores and the head, no weight decay, BatchNorm frozen."""
PIGGYBACK_SCHEDULE = {
    "epochs": Setting(30, PIGGYBACK_PAPER),
    "lr_step": Setting(15, PIGGYBACK_PAPER),
}


def papers_protocol(
    summary: str,
    prune_ratios: Setting,
    epochs: int = 20,
    lr_step: int = 10,
    others_source: Source = PACKNET_PAPER,
    piggyback_schedule: Mapping[str, Setting] = PIGGYBACK_SCHEDULE,
) -> Protocol:
    """An ImageNet stream: ``epochs`` per added task, lr 1e-3 x0.1 every ``lr_step`` (the
    PackNet paper's; cited to ``others_source`` for the other methods when the paper gives
    the schedule for PackNet only); ``piggyback_schedule``: its epochs and LR step (its
    paper's 30 epochs, x0.1 at 15)."""
    others = others_source
    common = {
        "epochs": Setting(epochs, others),
        "lr": Setting(1e-3, others),
        "lr_step": Setting(lr_step, others),
        "batch_size": Setting(32, PACKNET_PAPER),
        "momentum": Setting(0.9, PACKNET_PAPER),
        "weight_decay": Setting(0.0, PACKNET_SCRIPTS),
        "batchnorm": BN_FROZEN_SCRIPTS,
        "select": SELECT_LAST,
    }
    unpublished = {
        **NOT_PUBLISHED_SGD,
        **_resourced(common, SCHEDULE, NOT_PUBLISHED),
        "weight_decay": NOT_PUBLISHED_WD,
        "batchnorm": NOT_PUBLISHED_BN,
    }
    return Protocol(
        summary,
        common,
        {
            "packnet": {
                **_resourced(common, ("epochs", "lr", "lr_step"), PACKNET_PAPER),
                "prune_ratios": prune_ratios,
                **PACKNET_RETRAIN,
                "batchnorm": Setting("train", PACKNET_SCRIPTS),
            },
            "piggyback": {**PIGGYBACK, **piggyback_schedule},
            "classifier_only": {"lr_step": Setting(0, PACKNET_PAPER)},
            "lwf": {
                "weight_decay": Setting(5e-4, LWF_CODE),
                "lwf_warmup_epochs": Setting(5, LWF_PAPER),
            },
            "finetune": unpublished,
            "ewc": unpublished,
            "joint": unpublished,
        },
        papers=True,
    )


FINEGRAINED = papers_protocol(
    "the PackNet paper's fine-grained protocol", Setting("0.5,0.75,0.75", PACKNET_PAPER)
)
FINEGRAINED6 = papers_protocol(
    "the PackNet paper's fine-grained protocol, on the Piggyback paper's six tasks",
    Setting(
        "0.5,0.75,0.75,0.75,0.75",
        ours(
            "the PackNet paper's rule (ImageNet 0.5, every added task 0.75, the last not "
            "pruned) on six tasks"
        ),
    ),
)
ONE_ADDED_TASK_PROTOCOL = papers_protocol(
    "the PackNet paper's fine-grained protocol, one task added to the pruned ImageNet "
    "network (its section 5: Table 6, Figure 4)",
    Setting("0.5", PACKNET_PAPER_ANALYSIS),
)
_PLACES_OTHERS = ours(
    "the PackNet paper trains only PackNet on Places365 (its other Places365 networks are "
    "the Places365 authors'): its 10-epoch schedule for every method"
)
IMAGENET_PLACES365 = papers_protocol(
    "the PackNet paper's ImageNet -> Places365 protocol",
    Setting("0.5", PACKNET_PAPER),
    epochs=10,
    lr_step=5,
    others_source=_PLACES_OTHERS,
    piggyback_schedule={
        "epochs": Setting(10, _PLACES_OTHERS),
        "lr_step": Setting(5, _PLACES_OTHERS),
    },
)

_SCRATCH = ours("a stream trained from scratch, not in the papers: a short SGD schedule")


def scratch_protocol(summary: str, epochs: int, piggyback_lr: Setting) -> Protocol:
    """A stream trained from scratch: every value is our choice; BatchNorm trains."""
    return Protocol(
        summary,
        {
            "epochs": Setting(epochs, _SCRATCH),
            "lr": Setting(0.01, _SCRATCH),
            "lr_step": Setting(0, _SCRATCH),
            "batch_size": Setting(32, _SCRATCH),
            "momentum": Setting(0.9, _SCRATCH),
            "weight_decay": Setting(5e-4, _SCRATCH),
            "batchnorm": Setting(
                "train",
                ours("trained from scratch: BatchNorm's statistics have to be learned"),
            ),
            "select": SELECT_LAST,
        },
        {
            "packnet": {
                "prune_ratios": Setting(
                    "0.75", ours("the paper's ratio for an added task, for every task")
                ),
                "retrain_epochs": Setting(
                    HALF_EPOCHS, ours("the paper's 20 + 10 epochs, in proportion")
                ),
                "retrain_lr": Setting(TENTH_LR, ours("the paper's 1e-3 -> 1e-4, in proportion")),
            },
            "piggyback": {
                **PIGGYBACK,
                "batch_size": Setting(32, _SCRATCH),
                "piggyback_lr": piggyback_lr,
                "lr_step": Setting(HALF_EPOCHS, ours("the paper's x0.1 at half the epochs")),
            },
            "lwf": {"lwf_warmup_epochs": Setting(5, LWF_PAPER)},
            "finetune": NOT_PUBLISHED_SGD,
            "ewc": NOT_PUBLISHED_SGD,
            "joint": NOT_PUBLISHED_SGD,
        },
    )


SPLITMNIST = scratch_protocol(
    "our Split-MNIST protocol (not in the papers)",
    epochs=2,
    piggyback_lr=Setting(
        1e-2,
        ours(
            "the paper's Adam 1e-4 flips no mask bit over a random backbone in 44 steps "
            "(chance accuracy); 1e-2 learns the masks (measured: 92% average)"
        ),
    ),
)
SPLITCIFAR100 = scratch_protocol(
    "our Split CIFAR-100 protocol (not in the papers)",
    epochs=10,
    piggyback_lr=Setting(1e-4, PIGGYBACK_PAPER),
)
