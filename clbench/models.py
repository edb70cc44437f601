"""Backbones of the architectures (torch and torchvision only), their pretrained
weights, and the storage sizes of an architecture.

The multi-head network every strategy trains is :mod:`clbench.multihead`; the light
registry of architecture names is :mod:`clbench.core.architectures`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from clbench.core.architectures import ARCHITECTURES
from clbench.core.errors import UserError
from clbench.core.storage import ModelSizes


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


def require_pretrained_weights(arch: str) -> None:
    """One-line :class:`UserError` when ``arch`` has no ImageNet-pretrained weights."""
    if ARCHITECTURES[arch].weights_enum is None:
        raise UserError(f"--arch {arch} has no ImageNet-pretrained weights; use --no-pretrained")


def weights_file_name(arch: str) -> str:
    """File name torchvision caches ``arch``'s IMAGENET1K_V1 weights under."""
    from torchvision import models

    enum = ARCHITECTURES[arch].weights_enum
    return getattr(models, enum).IMAGENET1K_V1.url.rsplit("/", 1)[1]


def find_pretrained_weights(arch: str, weights: str | Path | None = None) -> Path:
    """The ImageNet weights file for ``arch``: ``weights`` when given, else torchvision's
    IMAGENET1K_V1 file in the torch hub cache (``$TORCH_HOME/hub/checkpoints``). Never
    downloads; a one-line error says where it looked when there is none."""
    require_pretrained_weights(arch)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise UserError(f"--weights {path}: no such file")
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / weights_file_name(arch)
    if not path.is_file():
        raise UserError(
            f"pretrained weights for {arch} ({ARCHITECTURES[arch].weights_enum}.IMAGENET1K_V1) not "
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


def torchvision_backbone(arch: str, weights: Path | None = None) -> tuple[nn.Module, nn.Linear]:
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
    net, classifier = torchvision_backbone(arch)
    return net, classifier.in_features


def serving_buffers(module: nn.Module) -> list[torch.Tensor]:
    """BatchNorm running means and variances: the buffers inference needs."""
    return [
        buffer
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for buffer in (m.running_mean, m.running_var)
        if buffer is not None
    ]


def maskable_layers(backbone: nn.Module) -> list[nn.Module]:
    """Every convolution and linear layer of ``backbone``: the weights masks cover."""
    return [m for m in backbone.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def model_sizes(backbone: nn.Module, heads: nn.Module) -> ModelSizes:
    """The :class:`clbench.core.storage.ModelSizes` of ``backbone`` with ``heads``."""
    batchnorm = [
        t
        for m in backbone.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for t in (m.weight, m.bias, m.running_mean, m.running_var)
        if t is not None
    ]
    maskable = maskable_layers(backbone)
    return ModelSizes(
        backbone_params=_bytes(backbone.parameters()),
        backbone_buffers=_bytes(serving_buffers(backbone)),
        heads=_bytes(heads.parameters()),
        maskable_weights=sum(m.weight.numel() for m in maskable),
        batchnorm=_bytes(batchnorm),
        biases=_bytes(m.bias for m in maskable if m.bias is not None),
        maskable_units=sum(m.weight.shape[0] for m in maskable),
    )


def architecture_sizes(arch: str, head_sizes: list[int], in_channels: int = 3) -> ModelSizes:
    """:class:`ModelSizes` of ``arch`` with one linear head per entry of ``head_sizes``,
    from the network built on the meta device (shapes only: no memory, no random
    initialisation, which takes seconds for VGG-16; no weights, data or training)."""
    with torch.device("meta"):
        backbone, feature_dim = build_backbone(arch, in_channels)
        heads = nn.ModuleList(nn.Linear(feature_dim, n) for n in head_sizes)
    return model_sizes(backbone, heads)
