"""Plain fine-tuning: the shared backbone is trained on each task with no protection.

The lower bound of the comparison: earlier tasks' heads are kept, but the backbone they
rely on keeps changing, so their accuracy drops (catastrophic forgetting).
"""

from __future__ import annotations

from clbench.storage import shared_network_storage
from strategies.base import BuildContext, StrategySpec, make_naive


def build(ctx: BuildContext):
    return make_naive(ctx)


SPEC = StrategySpec(
    name="finetune",
    summary="shared backbone fine-tuned on each task, nothing protects old tasks (lower bound)",
    build=build,
    storage=lambda model, num_tasks, options, pretrained: shared_network_storage(model),
)
