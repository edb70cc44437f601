"""Mixed precision, memory layout and compilation for training on one GPU."""

from __future__ import annotations

import shutil

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from clbench.core.errors import UserError


class SpeedPlugin(SupervisedPlugin):
    """bf16 autocast around every forward pass and channels_last weights and inputs.

    Parameters stay fp32 (autocast casts per operation), so optimizer updates and
    PackNet's bit-exact freezing act on fp32 weights; only activations run in bf16.
    Training outputs are cast to fp32 when the forward pass ends, so the task loss (and
    every strategy's term added to it) is computed in fp32. Evaluation outputs stay as
    computed (fingerprints hash them; accuracy only compares them).
    On CUDA, training also turns on ``cudnn.benchmark`` (the input size is fixed).
    """

    def __init__(self, bf16: bool = True, channels_last: bool = True) -> None:
        super().__init__()
        self.bf16 = bf16
        self.channels_last = channels_last
        self._autocast: torch.autocast | None = None

    def before_training(self, strategy, **kwargs) -> None:
        if strategy.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self._prepare(strategy)

    def before_eval(self, strategy, **kwargs) -> None:
        self._prepare(strategy)

    def _prepare(self, strategy) -> None:
        if self.channels_last:
            strategy.model.to(memory_format=torch.channels_last)

    def _enter(self, strategy) -> None:
        if self.channels_last and strategy.mb_x.dim() == 4:
            strategy.mbatch[0] = strategy.mb_x.contiguous(memory_format=torch.channels_last)
        if self.bf16:
            self._autocast = torch.autocast(strategy.device.type, dtype=torch.bfloat16)
            self._autocast.__enter__()

    def _exit(self) -> None:
        if self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self._autocast = None

    def before_forward(self, strategy, **kwargs) -> None:
        self._enter(strategy)

    def after_forward(self, strategy, **kwargs) -> None:
        self._exit()
        strategy.mb_output = strategy.mb_output.float()

    def before_eval_forward(self, strategy, **kwargs) -> None:
        self._enter(strategy)

    def after_eval_forward(self, strategy, **kwargs) -> None:
        self._exit()


def speed_plugins(precision: str, device: torch.device) -> list[SupervisedPlugin]:
    """A run's :class:`SpeedPlugin`: bf16 autocast when ``precision`` is ``bf16``,
    channels_last (and cudnn.benchmark) on CUDA; none for fp32 on the CPU."""
    bf16, channels_last = precision == "bf16", device.type == "cuda"
    return [SpeedPlugin(bf16, channels_last)] if bf16 or channels_last else []


def compile_backbone(model: nn.Module) -> None:
    """``torch.compile`` the shared backbone in place (parameter names, checkpoints and
    the per-task heads are unchanged). Needs a C++ compiler on PATH."""
    if not any(shutil.which(name) for name in ("c++", "g++", "clang++")):
        raise UserError("--compile needs a C++ compiler (c++, g++ or clang++) on PATH")
    model.backbone.compile()
