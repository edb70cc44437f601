"""Piggyback (Mallya, Davis & Lazebnik, ECCV 2018): one binary mask per task over a fixed backbone.

The backbone never changes: not its weights, biases or BatchNorm affine parameters, and
not its BatchNorm running statistics (BatchNorm stays in eval mode). Per task, every
conv and linear layer of ``model.backbone`` (never the heads) gets one real-valued score
per weight, initialised to ``score_init``; the forward pass uses
``weight * (score > threshold)`` and the gradient passes straight through the threshold
to the scores. Only the scores and the task's head train. At the end of the task the
mask is kept packed at 1 bit per weight (:meth:`PiggybackPlugin.packed_masks`) and the
scores are dropped. Evaluating task j applies task j's mask (and the model's head j).
The pretrained network's own task (ImageNet) trains no mask: it is served by the
backbone as it is (:meth:`PiggybackPlugin.adopt_unmasked`).

The masking is a ``torch.nn.utils.parametrize`` parametrization of each layer's weight,
attached only while the plugin trains or evaluates and removed afterwards, so outside
``train``/``eval`` calls the model holds exactly the original network.

This module is the reusable plugin (torch and Avalanche only); how clbench runs it is
:mod:`strategies.piggyback_harness`.

The result of a task does not depend on the other tasks. With ``task_seeds`` it does not
depend on the task's position in the stream either: the RNG is re-seeded at the start
of each task and the task's head re-initialised from it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils import parametrize

THRESHOLD = 5e-3
SCORE_INIT = 1e-2

_BIT_VALUES = (128, 64, 32, 16, 8, 4, 2, 1)


def pack_bits(mask: Tensor) -> Tensor:
    """Pack a boolean tensor into uint8, 8 values per byte, first value in the highest bit
    (the layout of ``numpy.packbits``); the last byte is zero-padded."""
    flat = mask.flatten().to(torch.uint8)
    flat = torch.cat([flat, flat.new_zeros(-flat.numel() % 8)])
    values = torch.tensor(_BIT_VALUES, dtype=torch.uint8, device=mask.device)
    return (flat.view(-1, 8) * values).sum(1).to(torch.uint8)


def unpack_bits(packed: Tensor, shape: Sequence[int]) -> Tensor:
    """Inverse of :func:`pack_bits`: the boolean tensor of ``shape``."""
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    return bits.flatten()[: math.prod(shape)].view(*shape).bool()


def task_seed(run_seed: int, task_name: str) -> int:
    """A seed determined by the run's seed and the task's identity only."""
    digest = hashlib.sha256(f"{run_seed}:{task_name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def masked_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every conv and linear layer of ``model.backbone``."""
    return [
        (f"backbone.{name}", m)
        for name, m in model.backbone.named_modules()
        if isinstance(m, (_ConvNd, nn.Linear))
    ]


class _Binarize(torch.autograd.Function):
    """``scores > threshold`` as 0/1 floats; the gradient passes straight through."""

    @staticmethod
    def forward(ctx, scores: Tensor, threshold: float) -> Tensor:
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class _TaskMask(nn.Module):
    """Weight parametrization ``weight * mask``. ``source`` is a fixed boolean mask, or a
    task's real-valued scores (not a registered parameter: the plugin owns them)."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.source: Tensor | None = None

    def forward(self, weight: Tensor) -> Tensor:
        if self.source.dtype == torch.bool:
            return weight * self.source.to(weight.dtype)
        return weight * _Binarize.apply(self.source, self.threshold)


class PiggybackPlugin(SupervisedPlugin):
    """Learns one binary mask per task over a fixed backbone (see the module docstring).

    For a :class:`clbench.models.MultiHeadNet`-like model (``backbone`` and
    ``task_heads()``; task label t uses head t). The strategy's optimizer should hold the
    model's parameters (Avalanche puts them all there): the plugin appends each task's
    scores to its first parameter group for the task and removes them afterwards, so the
    optimizer, its learning rate and any scheduler stay in place.

    :param threshold: a weight is used by a task when its score exceeds this.
    :param score_init: initial value of every score (above ``threshold``: the first
        mask keeps every weight).
    :param task_seeds: task label -> seed; when given, training of that task starts by
        seeding torch's RNG and re-initialising its head, which makes results independent
        of the task order.
    """

    def __init__(
        self,
        threshold: float = THRESHOLD,
        score_init: float = SCORE_INIT,
        task_seeds: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.threshold = threshold
        self.score_init = score_init
        self.task_seeds = dict(task_seeds or {})
        self._masks: dict[int, dict[str, Tensor]] = {}
        self._shapes: dict[str, torch.Size] = {}
        self._scores: list[Tensor] = []
        self._training: int | None = None
        self.unmasked: set[int] = set()
        """Task labels served by the backbone as it is, with no mask."""

    # ------------------------------------------------------------------ masks
    def packed_masks(self) -> dict[int, dict[str, Tensor]]:
        """task label -> layer name -> its mask packed by :func:`pack_bits` (1 bit/weight)."""
        return {task: dict(layers) for task, layers in self._masks.items()}

    def task_mask(self, task_label: int) -> dict[str, Tensor]:
        """layer name -> boolean mask of ``task_label`` (unpacked)."""
        if task_label not in self._masks:
            raise ValueError(f"task label {task_label} has no Piggyback mask (not trained)")
        return {
            name: unpack_bits(packed, self._shapes[name])
            for name, packed in self._masks[task_label].items()
        }

    def kept_fraction(self) -> dict[int, float]:
        """task label -> fraction of the masked backbone weights its mask keeps."""
        fractions = {}
        for task in sorted(self._masks):
            masks = self.task_mask(task).values()
            fractions[task] = sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)
        return fractions

    def _attach(self, model: nn.Module) -> list[tuple[_TaskMask, torch.device]]:
        """Parametrize every masked weight (once); return (parametrization, weight device)."""
        result = []
        for name, layer in masked_layers(model):
            if not parametrize.is_parametrized(layer, "weight"):
                self._shapes[name] = layer.weight.shape
                parametrize.register_parametrization(
                    layer, "weight", _TaskMask(self.threshold), unsafe=True
                )
            weights = layer.parametrizations.weight
            result.append((weights[0], weights.original.device))
        return result

    @staticmethod
    def _detach(model: nn.Module) -> None:
        """Remove the parametrizations: each layer gets its original weight back."""
        for _, layer in masked_layers(model):
            if parametrize.is_parametrized(layer, "weight"):
                parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)

    def _show(self, model: nn.Module, task_label: int) -> None:
        """Make the model compute ``task_label`` (live scores while it trains)."""
        if task_label == self._training:
            sources = self._scores
        else:
            sources = list(self.task_mask(task_label).values())
        for (mask, device), source in zip(self._attach(model), sources):
            mask.source = source.to(device)

    def adopt_unmasked(self, task_label: int) -> None:
        """Serve ``task_label`` with the backbone as it is (the pretrained network's task)."""
        self.unmasked.add(task_label)

    def state_dict(self) -> dict:
        """Masks, their shapes and the unmasked tasks; inside a task, its scores too."""
        state = {
            "masks": {label: dict(layers) for label, layers in self._masks.items()},
            "shapes": {name: list(shape) for name, shape in self._shapes.items()},
            "unmasked": sorted(self.unmasked),
        }
        if self._training is not None:
            state["scores"] = list(self._scores)
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        self._masks = {int(label): dict(layers) for label, layers in state["masks"].items()}
        self._shapes = {name: torch.Size(shape) for name, shape in state["shapes"].items()}
        self.unmasked = set(state["unmasked"])
        if "scores" in state:
            if self._training is None:
                raise ValueError("Piggyback scores can only be loaded while a task trains")
            for scores, saved in zip(self._scores, state["scores"], strict=True):
                scores.copy_(saved)

    # ------------------------------------------------------------------ training
    def before_training_exp(self, strategy, **kwargs) -> None:
        model = strategy.model
        label = int(strategy.experience.task_label)
        heads = model.task_heads()
        head_params = {id(p) for head in heads for p in head.parameters()}
        for param in model.parameters():
            if id(param) not in head_params:
                param.requires_grad_(False)
        if label in self.task_seeds:
            torch.manual_seed(self.task_seeds[label])
            for module in heads[label].modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        self._training = label
        self._scores = [
            torch.full_like(layer.weight, self.score_init, requires_grad=True)
            for _, layer in masked_layers(model)
        ]
        self._show(model, label)
        strategy.optimizer.param_groups[0]["params"].extend(self._scores)
        self._freeze_batchnorm(model)

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._freeze_batchnorm(strategy.model)

    @staticmethod
    def _freeze_batchnorm(model: nn.Module) -> None:
        for module in model.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs) -> None:
        names = [name for name, _ in masked_layers(strategy.model)]
        self._masks[self._training] = {
            name: pack_bits(scores > self.threshold) for name, scores in zip(names, self._scores)
        }
        ids = {id(s) for s in self._scores}
        group = strategy.optimizer.param_groups[0]
        group["params"] = [p for p in group["params"] if id(p) not in ids]
        for scores in self._scores:
            strategy.optimizer.state.pop(scores, None)
        self._scores, self._training = [], None
        self._detach(strategy.model)

    # ------------------------------------------------------------------ evaluation
    def before_eval_exp(self, strategy, **kwargs) -> None:
        labels = set(strategy.experience.task_labels)
        if len(labels) != 1:
            raise ValueError("Piggyback evaluates one task per experience")
        label = int(labels.pop())
        if label in self.unmasked:
            self._detach(strategy.model)
        else:
            self._show(strategy.model, label)

    def after_eval(self, strategy, **kwargs) -> None:
        if self._training is None:
            self._detach(strategy.model)
        else:
            self._show(strategy.model, self._training)
