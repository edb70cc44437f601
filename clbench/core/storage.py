"""Storage accounting: the bytes needed to serve every task of a stream.

Counts what a deployment must keep to answer queries of every task: backbone weights
and biases, BatchNorm affine parameters and running statistics, every task's head, and
strategy-specific extras (PackNet's owner masks, Piggyback's binary masks, per-task
copies), each strategy's formula next to its spec (:mod:`strategies.registry`). Sizes
use each tensor's own element size (4 bytes for fp32); masks are packed bits, rounded
up to whole bytes. MB = 10**6 bytes.

Not counted, because serving does not need them: BatchNorm's ``num_batches_tracked``
counter, optimizer state, and training-only state such as EWC's Fisher information and
anchor weights or LwF's frozen copy of the previous model.

A formula takes :class:`ModelSizes` (measured from the architecture by
:func:`clbench.models.model_sizes`, no data or training needed) and returns
``{"total_bytes": int, "models": int, "breakdown": {name: bytes}}`` with
``total_bytes == sum(breakdown.values())``; ``models`` is the number of separate
networks kept. This module needs no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MB = 10**6


@dataclass(frozen=True)
class ModelSizes:
    """Sizes of a multi-head network, as the storage formulas need them.

    ``backbone_params``: bytes of the backbone's parameters (BatchNorm affine included);
    ``backbone_buffers``: bytes of its BatchNorm running means and variances;
    ``heads``: bytes of every task head's parameters; ``maskable_weights``: number of
    conv and linear weights of the backbone (not biases, not BN); ``batchnorm``: bytes
    of one copy of every BatchNorm's weight, bias, running mean and running var;
    ``biases``: bytes of the conv and linear biases of the backbone; ``maskable_units``:
    number of output filters (conv) and units (linear) of the backbone.
    """

    backbone_params: int
    backbone_buffers: int
    heads: int
    maskable_weights: int
    batchnorm: int
    biases: int
    maskable_units: int


def result(breakdown: dict[str, int], models: int) -> dict:
    """A formula's result (see the module docstring)."""
    return {"total_bytes": sum(breakdown.values()), "models": models, "breakdown": breakdown}


def shared_network(sizes: ModelSizes) -> dict:
    """One network with a shared backbone and one head per task: backbone parameters
    (BatchNorm affine included), BatchNorm running statistics, all heads."""
    breakdown = {
        "backbone_params": sizes.backbone_params,
        "backbone_buffers": sizes.backbone_buffers,
        "heads": sizes.heads,
    }
    return result(breakdown, 1)


def with_extras(sizes: ModelSizes, extras: dict[str, int]) -> dict:
    """The shared network plus strategy-specific ``extras`` (name -> bytes)."""
    return result({**shared_network(sizes)["breakdown"], **extras}, 1)


def packed_bytes(bits: int) -> int:
    """Bytes holding ``bits`` packed bits."""
    return math.ceil(bits / 8)


def index_bits(values: int) -> int:
    """Bits of an index that takes ``values`` values: ceil(log2 n), 0 for n <= 1."""
    return math.ceil(math.log2(values)) if values > 1 else 0
