"""Backbones and the multi-head network used by every strategy.

A :class:`MultiHeadNet` is a shared feature extractor plus one linear head per task.
Heads may differ in size (a 1000-class ImageNet head next to a 200-class CUBS head);
each forward pass runs only the head of its task, so no padded logits reach a loss or
a top-k computation of a single-task batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from avalanche.models import MultiTaskModule
from torch import nn

from clbench.errors import UserError

ARCHITECTURES: dict[str, str] = {
    "smallcnn": "small CNN with BatchNorm (2 conv blocks, 28x28 grey input); splitmnist default",
    "resnet18": "torchvision ResNet-18 (BatchNorm, bias-free convs, residual connections)",
    "resnet50": "torchvision ResNet-50 (BatchNorm, bias-free convs, bottleneck residuals)",
    "vgg16": "torchvision VGG-16 (no BatchNorm; fc6/fc7 shared, fc8 per task)",
    "vgg16_bn": "torchvision VGG-16 with BatchNorm",
    "densenet121": "torchvision DenseNet-121 (BatchNorm, dense connections)",
}


PRETRAINED_WEIGHTS: dict[str, str] = {
    "vgg16": "VGG16_Weights",
    "vgg16_bn": "VGG16_BN_Weights",
    "resnet50": "ResNet50_Weights",
    "densenet121": "DenseNet121_Weights",
    "resnet18": "ResNet18_Weights",
}
"""torchvision weights enum of each architecture; its IMAGENET1K_V1 entry (the weights
the papers used; ResNet-50's DEFAULT is V2) is the one looked for."""


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


def weights_file_name(arch: str) -> str:
    """File name torchvision caches ``arch``'s IMAGENET1K_V1 weights under."""
    from torchvision import models

    return getattr(models, PRETRAINED_WEIGHTS[arch]).IMAGENET1K_V1.url.rsplit("/", 1)[1]


def find_pretrained_weights(arch: str, weights: str | Path | None = None) -> Path:
    """The ImageNet weights file for ``arch``: ``weights`` when given, else torchvision's
    IMAGENET1K_V1 file in the torch hub cache (``$TORCH_HOME/hub/checkpoints``). Never
    downloads; a one-line error says where it looked when there is none."""
    if arch not in PRETRAINED_WEIGHTS:
        raise UserError(f"--arch {arch} has no ImageNet-pretrained weights; use --no-pretrained")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise UserError(f"--weights {path}: no such file")
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / weights_file_name(arch)
    if not path.is_file():
        raise UserError(
            f"pretrained weights for {arch} ({PRETRAINED_WEIGHTS[arch]}.IMAGENET1K_V1) not "
            f"found: looked for {path} (set TORCH_HOME or copy the file there); or pass "
            "--weights PATH, or run with --no-pretrained"
        )
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision state dict saved with ``torch.save`` (tensors only, nothing executed)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling and zip errors come in many types
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise UserError(f"cannot read weights {path}: {reason}") from None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise UserError(f"weights {path} are not a state dict (name -> tensor)")
    return dict(state)


def _load_weights(net: nn.Module, arch: str, state: dict[str, torch.Tensor], path: Path) -> None:
    if arch.startswith("densenet"):
        # DenseNet checkpoints name layers "norm.1" where the modules are "norm1".
        state = {re.sub(r"\.(norm|relu|conv)\.([12])\.", r".\1\2.", k): v for k, v in state.items()}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise UserError(f"weights {path} do not fit {arch}: {first}") from None
    if missing or unexpected:
        raise UserError(
            f"weights {path} do not fit {arch}: {len(missing)} missing key(s) "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}"
        )


def _torchvision_backbone(arch: str, weights: Path | None = None) -> tuple[nn.Module, nn.Linear]:
    """Build a torchvision network (randomly initialised, or loaded from the state dict
    file ``weights``); return (backbone, its original classifier).

    The classifier is detached from the backbone (replaced by Identity) so the caller can
    turn it into the first task's head.
    """
    from torchvision import models

    net = getattr(models, arch)(weights=None)
    if weights is not None:
        _load_weights(net, arch, read_state_dict(weights), weights)
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
    if arch not in PRETRAINED_WEIGHTS:
        raise UserError(f"--arch {arch} has no ImageNet-pretrained weights; use --no-pretrained")
    backbone, classifier = _torchvision_backbone(arch, weights)
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
