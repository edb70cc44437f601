"""Keep the model's evaluation outputs (the fingerprint probes of
:mod:`clbench.run.fingerprint`)."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin
from torch import Tensor


class OutputCapturePlugin(SupervisedPlugin):
    """Keeps the model's eval outputs while ``active`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.active = False
        self.outputs: list[Tensor] = []

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        if self.active:
            self.outputs.append(strategy.mb_output.detach().to("cpu", copy=True))
