"""Storage accounting: the bytes needed to serve every task of a stream.

Counts what a deployment must keep to answer queries of every task: backbone weights
and biases, BatchNorm affine parameters and running statistics, every task's head, and
strategy-specific extras (PackNet's owner masks, Piggyback's binary masks, per-task
copies). Sizes use each tensor's own element size (4 bytes for fp32); masks are packed
bits, rounded up to whole bytes. MB = 10**6 bytes.

Not counted, because serving does not need them: BatchNorm's ``num_batches_tracked``
counter, optimizer state, and training-only state such as EWC's Fisher information and
anchor weights or LwF's frozen copy of the previous model (both methods serve from one
shared network, see :func:`shared_network_storage`).

Every function returns ``{"total_bytes": int, "models": int, "breakdown": {name: bytes}}``
with ``total_bytes == sum(breakdown.values())``; ``models`` is the number of separate
networks kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from torch import Tensor, nn

from clbench.models import MultiHeadNet

MB = 10**6


def tensor_bytes(tensors: Iterable[Tensor]) -> int:
    """Total bytes of ``tensors``."""
    return sum(t.numel() * t.element_size() for t in tensors)


def serving_buffers(module: nn.Module) -> list[Tensor]:
    """Floating-point buffers needed at inference (BatchNorm running mean/var)."""
    return [b for b in module.buffers() if b.is_floating_point()]


def maskable_weights(backbone: nn.Module) -> list[Tensor]:
    """The weight of every convolution and linear layer of ``backbone`` (not biases, not BN)."""
    return [
        m.weight for m in backbone.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))
    ]


def batchnorm_bytes(backbone: nn.Module) -> int:
    """Bytes of one copy of every BatchNorm's weight, bias, running mean and running var."""
    tensors = []
    for m in backbone.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            tensors += [
                t for t in (m.weight, m.bias, m.running_mean, m.running_var) if t is not None
            ]
    return tensor_bytes(tensors)


def packnet_mask_bits(num_tasks: int) -> int:
    """Bits per prunable weight for PackNet's owner index: ceil(log2 T), 0 when T == 1."""
    return math.ceil(math.log2(num_tasks)) if num_tasks > 1 else 0


def _result(breakdown: dict[str, int], models: int) -> dict:
    return {"total_bytes": sum(breakdown.values()), "models": models, "breakdown": breakdown}


def _heads_bytes(model: MultiHeadNet) -> int:
    return tensor_bytes(nn.ModuleList(model.task_heads()).parameters())


def shared_network_storage(model: MultiHeadNet) -> dict:
    """One network with a shared backbone and one head per task.

    Serves classifier-only, fine-tuning, LwF, EWC and joint training: backbone
    parameters (BatchNorm affine included), BatchNorm running statistics, all heads.
    """
    breakdown = {
        "backbone_params": tensor_bytes(model.backbone.parameters()),
        "backbone_buffers": tensor_bytes(serving_buffers(model.backbone)),
        "heads": _heads_bytes(model),
    }
    return _result(breakdown, 1)


def packnet_storage(model: MultiHeadNet, num_tasks: int, per_task_bn: bool = False) -> dict:
    """PackNet: one shared network plus an owner index per prunable backbone weight.

    Each conv/linear weight of ``model.backbone`` stores which task owns it, in
    ceil(log2 T) bits (0 bits when T == 1); heads and biases are never pruned, so carry
    no mask. ``masks`` is ceil(total bits / 8) bytes. With ``per_task_bn`` every
    BatchNorm's weight, bias, running mean and running var are kept once per task:
    ``per_task_batchnorm`` counts the T - 1 extra copies.
    """
    result = shared_network_storage(model)
    breakdown = dict(result["breakdown"])
    weights = sum(w.numel() for w in maskable_weights(model.backbone))
    breakdown["masks"] = math.ceil(weights * packnet_mask_bits(num_tasks) / 8)
    if per_task_bn:
        breakdown["per_task_batchnorm"] = (num_tasks - 1) * batchnorm_bytes(model.backbone)
    return _result(breakdown, 1)


def piggyback_storage(model: MultiHeadNet, num_tasks: int, first_task_pretrained: bool) -> dict:
    """Piggyback: a fixed shared backbone, all heads, and one binary mask per task.

    A mask holds 1 bit per conv/linear weight of ``model.backbone``, packed per task and
    rounded up to whole bytes. Every task needs one except task 0 when it is the
    pretrained network's own task (``first_task_pretrained``), which uses the backbone as is.
    """
    result = shared_network_storage(model)
    breakdown = dict(result["breakdown"])
    weights = sum(w.numel() for w in maskable_weights(model.backbone))
    masked_tasks = num_tasks - 1 if first_task_pretrained else num_tasks
    breakdown["masks"] = max(masked_tasks, 0) * math.ceil(weights / 8)
    return _result(breakdown, 1)


def individual_storage(model: MultiHeadNet, num_tasks: int) -> dict:
    """One full network per task: T backbones (parameters and BN statistics) and every head once."""
    breakdown = {
        "backbone_params": num_tasks * tensor_bytes(model.backbone.parameters()),
        "backbone_buffers": num_tasks * tensor_bytes(serving_buffers(model.backbone)),
        "heads": _heads_bytes(model),
    }
    return _result(breakdown, num_tasks)
