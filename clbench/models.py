"""Backbones and the multi-head network used by every strategy.

A :class:`MultiHeadNet` is a shared feature extractor plus one linear head per task.
Heads may differ in size (a 1000-class ImageNet head next to a 200-class CUBS head);
each forward pass runs only the head of its task, so no padded logits reach a loss or
a top-k computation of a single-task batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from avalanche.models import MultiTaskModule
from torch import nn

ARCHITECTURES: dict[str, str] = {
    "smallcnn": "small CNN with BatchNorm (2 conv blocks, 28x28 grey input); splitmnist default",
    "resnet18": "torchvision ResNet-18 (BatchNorm, bias-free convs, residual connections)",
    "resnet50": "torchvision ResNet-50 (BatchNorm, bias-free convs, bottleneck residuals)",
    "vgg16": "torchvision VGG-16 (no BatchNorm; fc6/fc7 shared, fc8 per task)",
    "vgg16_bn": "torchvision VGG-16 with BatchNorm",
    "densenet121": "torchvision DenseNet-121 (BatchNorm, dense connections)",
}


class SmallCNN(nn.Module):
    """Two conv-BN-ReLU-pool blocks and a hidden linear layer; outputs 128 features."""

    feature_dim = 128

    def __init__(self, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(4),
        )
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 16, self.feature_dim), nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _torchvision_backbone(arch: str) -> tuple[nn.Module, nn.Linear]:
    """Build an untrained torchvision network; return (backbone, its original classifier).

    The classifier is detached from the backbone (replaced by Identity) so the caller can
    turn it into the first task's head.
    """
    from torchvision import models

    net = getattr(models, arch)(weights=None)
    if arch.startswith("resnet"):
        classifier, net.fc = net.fc, nn.Identity()
    elif arch.startswith("vgg"):
        classifier = net.classifier[6]
        net.classifier[6] = nn.Identity()
    elif arch.startswith("densenet"):
        classifier, net.classifier = net.classifier, nn.Identity()
    else:  # pragma: no cover - guarded by ARCHITECTURES
        raise ValueError(arch)
    return net, classifier


def build_backbone(arch: str, in_channels: int = 3) -> tuple[nn.Module, int]:
    """Return (backbone producing flat features, feature dimension) for ``arch``."""
    if arch not in ARCHITECTURES:
        raise KeyError(arch)
    if arch == "smallcnn":
        net = SmallCNN(in_channels)
        return net, net.feature_dim
    net, classifier = _torchvision_backbone(arch)
    return net, classifier.in_features


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


def build_model(arch: str, head_sizes: Sequence[int], in_channels: int = 3) -> MultiHeadNet:
    """Build ``arch`` (randomly initialised) with one head per entry of ``head_sizes``."""
    backbone, feature_dim = build_backbone(arch, in_channels)
    return MultiHeadNet(backbone, feature_dim, head_sizes)
