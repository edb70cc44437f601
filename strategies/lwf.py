"""Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017) for multi-head models.

While a new task trains, every old task's head is distilled towards the outputs it had
before the new task started: a frozen copy of the model taken at the start of the task
(the teacher, in eval mode) gives, on each new-task batch, the "recorded responses" of
the paper. Each old head is distilled over its own classes only (heads may differ in
size; nothing is padded): KL(softmax(teacher / T) || softmax(student / T)), batch mean,
summed over old heads and weighted by ``weight``. The KL divergence differs from the
paper's soft cross-entropy by the teacher's entropy, a constant: same gradients, and it
is 0 when student and teacher agree.

Warm-up (paper: 5 epochs): when old tasks exist, the first epochs of a new task train
only its head (backbone and old heads frozen, BatchNorm statistics included). It never
takes more than half of the task's epochs (floor), so at least half train everything:
with 2 epochs, 1 warm-up epoch; with 1 epoch, none. The first task has nothing to
distil and no warm-up.

Avalanche's ``LwFPlugin`` is not used: it asks the model for every head's output with
``model(x, None)``, which :class:`clbench.models.MultiHeadNet` does not support, and
runs its teacher in train mode (BatchNorm batch statistics, dropout). See
tests/test_strategies.py.

Mixed precision: the teacher and the old heads run under the autocast state of the
student's forward pass (bf16 on the GPU path), and the distillation loss is computed in
fp32 from their logits, like the task loss.

Serving needs one network (:func:`clbench.core.storage.shared_network_storage`): the
teacher copy exists only while a task trains.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

from strategies.base import BuildContext
from strategies.templates import batchnorm_modules, make_naive, strategy_plugin

TEMPERATURE = 2.0
WEIGHT = 1.0
WARMUP_EPOCHS = 5


def distillation_loss(
    student: Sequence[Tensor], teacher: Sequence[Tensor], temperature: float
) -> Tensor:
    """Sum over heads of KL(softmax(teacher/T) || softmax(student/T)), mean over the batch.

    ``student[k]`` and ``teacher[k]`` are head k's logits, each over that head's own classes.
    """
    return sum(
        F.kl_div(
            F.log_softmax(s / temperature, dim=1),
            F.log_softmax(t / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        for s, t in zip(student, teacher)
    )


class MultiHeadLwFPlugin(SupervisedPlugin):
    """LwF for a model with ``backbone`` and ``task_heads()`` (task label t uses head t).

    :param temperature: distillation temperature T.
    :param weight: weight of the distillation term (lambda_o).
    :param warmup_epochs: epochs of head-only training at the start of each task that
        has old tasks, capped at half of the task's epochs.
    """

    def __init__(
        self,
        temperature: float = TEMPERATURE,
        weight: float = WEIGHT,
        warmup_epochs: int = WARMUP_EPOCHS,
    ) -> None:
        super().__init__()
        self.temperature = temperature
        self.weight = weight
        self.warmup_epochs = warmup_epochs
        self.trained: list[int] = []
        """Task labels trained so far, in order."""
        self._label = 0
        self._old: list[int] = []
        self._teacher: nn.Module | None = None
        self._features: Tensor | None = None
        self._autocast: tuple[str, torch.dtype] | None = None
        self._hook = None
        self._warmup = 0
        self._warming = False
        self._frozen: list[nn.Parameter] = []
        self._frozen_bn: list[nn.Module] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        model = strategy.model
        label = int(strategy.experience.task_label)
        self._label = label
        self._old = [t for t in self.trained if t != label]
        self._teacher = None
        self._warmup = 0
        if self._old:
            self._teacher = copy.deepcopy(model).eval().requires_grad_(False)
            self._warmup = min(self.warmup_epochs, strategy.train_epochs // 2)
        self._hook = model.backbone.register_forward_hook(self._keep_features)

    def _keep_features(self, module: nn.Module, inputs, output: Tensor) -> None:
        self._features = output
        device = output.device.type
        enabled = torch.is_autocast_enabled(device)
        self._autocast = (device, torch.get_autocast_dtype(device)) if enabled else None

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.in_warmup(strategy):
            self._freeze(strategy.model)
        else:
            self._unfreeze()

    def _freeze(self, model: nn.Module) -> None:
        """Warm-up: only the new head trains; BatchNorm statistics stay as they are."""
        if not self._warming:
            head = {id(p) for p in model.task_heads()[self._label].parameters()}
            self._frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in head]
            self._frozen_bn = [bn for bn in batchnorm_modules(model.backbone) if bn.training]
            for param in self._frozen:
                param.requires_grad_(False)
            self._warming = True
        for bn in self._frozen_bn:
            bn.eval()

    def _unfreeze(self) -> None:
        """End the warm-up: what it froze trains again."""
        if not self._warming:
            return
        for param in self._frozen:
            param.requires_grad_(True)
        for bn in self._frozen_bn:
            bn.train()
        self._frozen, self._frozen_bn, self._warming = [], [], False

    def in_warmup(self, strategy) -> bool:
        """True while only the new head trains."""
        return strategy.clock.train_exp_epochs < self._warmup

    def before_backward(self, strategy, **kwargs) -> None:
        if self._teacher is None or self.in_warmup(strategy):
            return
        strategy.loss += self.weight * self.penalty(strategy.model, strategy.mb_x)

    def penalty(self, model: nn.Module, x: Tensor) -> Tensor:
        """Distillation term of the latest training forward pass (features of batch ``x``),
        computed in fp32 from heads run with that pass's precision."""
        heads, old_heads = model.task_heads(), self._teacher.task_heads()
        device, dtype = self._autocast or (x.device.type, torch.float32)
        with torch.autocast(device, dtype=dtype, enabled=self._autocast is not None):
            with torch.no_grad():
                features = self._teacher.backbone(x)
                teacher = [old_heads[t](features).float() for t in self._old]
            student = [heads[t](self._features).float() for t in self._old]
        return distillation_loss(student, teacher, self.temperature)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self._unfreeze()
        self._hook.remove()
        self._hook = self._teacher = self._features = self._autocast = None
        if self._label not in self.trained:
            self.trained.append(self._label)

    def state_dict(self) -> dict:
        return {"trained": list(self.trained)}

    def load_state_dict(self, state: dict) -> None:
        self.trained = list(state["trained"])


def adopt_pretrained(learner, experience, **train_kwargs) -> None:
    """The pretrained network's own task counts as trained: the next task distils its
    head towards the pretrained network (the teacher)."""
    plugin = strategy_plugin(learner, MultiHeadLwFPlugin)
    plugin.trained.append(int(experience.task_label))


def build(ctx: BuildContext):
    options = ctx.config.options
    plugin = MultiHeadLwFPlugin(
        options["lwf_temperature"], options["lwf_weight"], options["lwf_warmup_epochs"]
    )
    return make_naive(ctx, [plugin])
