"""Storage accounting: the bytes needed to serve every task of a stream.

Counts what a deployment must keep: backbone weights and biases, BatchNorm affine
parameters and running statistics (``num_batches_tracked`` is not needed to serve),
every task's head, and strategy-specific extras (masks, per-task copies). Sizes use
each tensor's own element size (4 bytes for fp32). MB = 10**6 bytes.
"""

from __future__ import annotations

from torch import nn


def tensor_bytes(tensors) -> int:
    """Total bytes of ``tensors``."""
    return sum(t.numel() * t.element_size() for t in tensors)


def serving_buffers(module: nn.Module):
    """Floating-point buffers needed at inference (BatchNorm running mean/var)."""
    return [b for b in module.buffers() if b.is_floating_point()]


def shared_network_storage(model: nn.Module) -> dict:
    """One network with a shared backbone and one head per task."""
    heads = nn.ModuleList(model.task_heads())
    breakdown = {
        "backbone_params": tensor_bytes(model.backbone.parameters()),
        "backbone_buffers": tensor_bytes(serving_buffers(model.backbone)),
        "heads": tensor_bytes(heads.parameters()),
    }
    return {"total_bytes": sum(breakdown.values()), "models": 1, "breakdown": breakdown}
