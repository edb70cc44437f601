"""Top-1/top-5 accuracy per evaluated experience, computed by us from the task's own logits.

Avalanche's ``TopkAccuracy`` fails with per-sample task-label tensors, and a model that
zero-pads heads would let fake logits into the top-k; here every eval batch holds one
task, and :class:`clbench.models.MultiHeadNet` returns exactly that head's logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.core import SupervisedPlugin

TOP5_MIN_CLASSES = 6  # top-5 is meaningless (always 100%) with 5 classes or fewer


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Number of rows whose target is among the ``k`` largest logits (a 0-d tensor)."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == targets.unsqueeze(1)).any(dim=1).sum()


@dataclass
class ExperienceAccuracy:
    """Accuracy (percent) on one evaluated experience; ``top5`` is None if not defined,
    both are None when the experience has no test data (not measured)."""

    top1: float | None
    top5: float | None
    samples: int


class TopkAccuracyPlugin(SupervisedPlugin):
    """Collects top-1/top-5 per experience during ``strategy.eval``.

    ``results`` maps experience index -> :class:`ExperienceAccuracy` of the latest eval.
    """

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[int, ExperienceAccuracy] = {}
        self._counts: list[torch.Tensor] = []
        self._samples = 0
        self._classes = 0

    def before_eval(self, strategy, **kwargs) -> None:
        self.results = {}

    def before_eval_exp(self, strategy, **kwargs) -> None:
        self._counts = []
        self._samples = 0

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        logits, targets = strategy.mb_output, strategy.mb_y
        self._classes = logits.shape[1]
        self._counts.append(
            torch.stack([topk_correct(logits, targets, 1), topk_correct(logits, targets, 5)])
        )
        self._samples += targets.shape[0]

    def after_eval_exp(self, strategy, **kwargs) -> None:
        index = strategy.experience.current_experience
        if not self._samples:  # no test data on disk: "not measured", never a number
            self.results[index] = ExperienceAccuracy(top1=None, top5=None, samples=0)
            return
        top1, top5 = (torch.stack(self._counts).sum(0).double() * 100 / self._samples).tolist()
        self.results[index] = ExperienceAccuracy(
            top1=top1,
            top5=top5 if self._classes >= TOP5_MIN_CLASSES else None,
            samples=self._samples,
        )
