"""The multi-head network every strategy trains: a shared backbone, one head per task.

A :class:`MultiHeadNet` is a shared feature extractor plus one linear head per task.
Heads may differ in size (a 1000-class ImageNet head next to a 200-class CUBS head);
each forward pass runs only the head of its task, so no padded logits reach a loss or
a top-k computation of a single-task batch. It is an Avalanche ``MultiTaskModule``, so
Avalanche's templates pass it the task labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from avalanche.models import MultiTaskModule
from torch import nn

from clbench.core.errors import UserError
from clbench.models import build_backbone, require_pretrained_weights, torchvision_backbone


class MultiHeadNet(MultiTaskModule):
    """A shared backbone with one linear head per task (task-incremental learning).

    ``forward(x, task_labels)`` accepts an int or a per-sample tensor of task labels
    (Avalanche's convention). A batch of one task returns exactly that head's logits.
    A batch mixing tasks (joint training) returns logits padded with ``-inf`` to the
    widest head, so padded columns never win an argmax/top-k and add nothing to a
    softmax cross-entropy.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, head_sizes: Sequence[int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.heads = nn.ModuleList(nn.Linear(feature_dim, n) for n in head_sizes)

    def adaptation(self, experience=None) -> None:
        """Heads are sized from the stream up front; nothing to adapt per experience."""

    def task_heads(self) -> list[nn.Module]:
        """The per-task output layers (never pruned or masked by parameter-isolation methods)."""
        return list(self.heads)

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        return self.heads[task_label](self.backbone(x))

    def forward(self, x: torch.Tensor, task_labels: int | torch.Tensor) -> torch.Tensor:
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels)
        first = int(task_labels[0])
        if bool((task_labels == first).all()):
            return self.forward_single_task(x, first)
        features = self.backbone(x)
        width = max(head.out_features for head in self.heads)
        out = features.new_full((x.shape[0], width), float("-inf"))
        for task in torch.unique(task_labels).tolist():
            rows = task_labels == task
            logits = self.heads[task](features[rows])
            out[rows, : logits.shape[1]] = logits
        return out


def build_model(
    arch: str,
    head_sizes: Sequence[int],
    in_channels: int = 3,
    weights: Path | None = None,
    pretrained_head: int | None = None,
) -> MultiHeadNet:
    """Build ``arch`` with one head per entry of ``head_sizes``: randomly initialised, or
    with the pretrained network of the state dict file ``weights`` (see
    :func:`find_pretrained_weights`), whose ImageNet classifier becomes head
    ``pretrained_head`` when given (the pretrained network's own task)."""
    if weights is None:
        backbone, feature_dim = build_backbone(arch, in_channels)
        return MultiHeadNet(backbone, feature_dim, head_sizes)
    require_pretrained_weights(arch)
    backbone, classifier = torchvision_backbone(arch, weights)
    model = MultiHeadNet(backbone, classifier.in_features, head_sizes)
    if pretrained_head is not None:
        head = model.heads[pretrained_head]
        if head.weight.shape != classifier.weight.shape:
            raise UserError(
                f"task {pretrained_head} has {head.out_features} classes but the pretrained "
                f"classifier of {weights} has {classifier.out_features}: the pretrained task "
                "needs the full ImageNet (or none on disk), or run with --no-pretrained"
            )
        head.load_state_dict(classifier.state_dict())
    return model
