"""The architectures ``--arch`` names: a light registry (no torch import).

Building them is :mod:`clbench.models` (backbones) and :mod:`clbench.multihead` (the
network with one head per task).
"""

from __future__ import annotations

from dataclasses import dataclass

from clbench.core.registry import Registry


@dataclass(frozen=True)
class ArchSpec:
    """An architecture: one-line summary and, for torchvision networks with ImageNet
    weights, the name of its torchvision weights enum (whose IMAGENET1K_V1 entry is the
    one the papers used; ResNet-50's DEFAULT is V2)."""

    name: str
    summary: str
    weights_enum: str | None = None


ARCHITECTURES: Registry[ArchSpec] = Registry(
    "architecture",
    [
        ArchSpec(
            "smallcnn",
            "small CNN with BatchNorm (2 conv blocks, 28x28 grey input); splitmnist default",
        ),
        ArchSpec(
            "resnet18",
            "torchvision ResNet-18 (BatchNorm, bias-free convs, residual connections)",
            "ResNet18_Weights",
        ),
        ArchSpec(
            "resnet50",
            "torchvision ResNet-50 (BatchNorm, bias-free convs, bottleneck residuals)",
            "ResNet50_Weights",
        ),
        ArchSpec(
            "vgg16",
            "torchvision VGG-16 (no BatchNorm; fc6/fc7 shared, fc8 per task)",
            "VGG16_Weights",
        ),
        ArchSpec("vgg16_bn", "torchvision VGG-16 with BatchNorm", "VGG16_BN_Weights"),
        ArchSpec(
            "densenet121",
            "torchvision DenseNet-121 (BatchNorm, dense connections)",
            "DenseNet121_Weights",
        ),
    ],
)
