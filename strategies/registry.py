"""All strategies the harness can run, by ``--strategy`` name."""

from __future__ import annotations

from strategies import classifier_only, ewc, finetune, individual, joint, lwf, packnet, piggyback
from strategies.base import StrategySpec

STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        finetune.SPEC,
        classifier_only.SPEC,
        packnet.SPEC,
        piggyback.SPEC,
        lwf.SPEC,
        ewc.SPEC,
        joint.SPEC,
        individual.SPEC,
    )
}
