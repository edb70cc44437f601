"""Plain fine-tuning: the shared backbone is trained on each task with no protection.

The lower bound of the comparison: earlier tasks' heads are kept, but the backbone they
rely on keeps changing, so their accuracy drops (catastrophic forgetting).
"""

from __future__ import annotations

from strategies.base import BuildContext
from strategies.templates import make_naive


def build(ctx: BuildContext):
    return make_naive(ctx)
