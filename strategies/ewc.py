"""Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) for multi-head models.

After each task, the diagonal of the empirical Fisher information of the backbone
parameters is estimated on that task's training images (a random subset of
``fisher_samples`` of them): the mean over images of the squared gradient of the image's
negative log-likelihood (its own label, its own head), one image at a time, in eval mode
(BatchNorm running statistics, no dropout). While
later tasks train, the loss gets ``lambda / 2 * sum_i F_i (theta - theta_i)^2`` over
every earlier task i. The sum of these quadratics equals, up to a constant,
``lambda / 2 * A (theta - m)^2`` with ``A = sum_i F_i`` and ``m`` the F-weighted mean of
the anchors theta_i: that is what is kept (two tensors per parameter, whatever the
number of tasks) and what the gradients come from.

Heads are not penalised: an old task's head gets no gradient from a new task's loss, so
it never changes. BatchNorm running statistics are buffers, not parameters: EWC does not
protect them (they follow the data of the task being trained).

Avalanche's ``EWCPlugin`` is not used: its importances square the gradient of each
*mini-batch* mean loss, which is not the Fisher's mean of squared per-image gradients
(with batch size B it is up to B times smaller, and not uniformly so). See
tests/test_strategies.py.

Serving needs one network (:func:`clbench.core.storage.shared_network_storage`): the Fisher
and the anchors are needed only to train later tasks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from strategies.base import BuildContext
from strategies.templates import make_naive, strategy_plugin

EWC_LAMBDA = 100.0
FISHER_SAMPLES = 200


def diagonal_fisher(model: nn.Module, params: list[nn.Parameter], batches) -> list[Tensor]:
    """Mean over images of the squared per-image gradient of the NLL wrt ``params``
    (0 for parameters that do not train, e.g. frozen BatchNorm).

    ``batches`` yields (x, y, task_labels) mini-batches; each image runs alone through
    ``model(x, task_label)``. The caller chooses the model's mode (EWC: eval).
    """
    fisher = [torch.zeros_like(p) for p in params]
    trained = [(total, p) for total, p in zip(fisher, params) if p.requires_grad]
    count = 0
    for x, y, tasks in batches:
        for xi, yi, ti in zip(x, y, tasks):
            nll = F.cross_entropy(model(xi.unsqueeze(0), int(ti)), yi.unsqueeze(0))
            grads = torch.autograd.grad(nll, [p for _, p in trained])
            for (total, _), grad in zip(trained, grads):
                total += grad.square()
            count += 1
    return [total / count for total in fisher]


class DiagonalEWCPlugin(SupervisedPlugin):
    """EWC penalty on ``model.backbone``'s parameters (see the module docstring).

    :param ewc_lambda: weight lambda of the penalty ``lambda / 2 * sum F (theta - theta*)^2``.
    :param fisher_samples: training images per task used to estimate the Fisher (a
        random subset; all of them when the task has fewer or when 0).
    """

    def __init__(
        self, ewc_lambda: float = EWC_LAMBDA, fisher_samples: int = FISHER_SAMPLES
    ) -> None:
        super().__init__()
        self.ewc_lambda = ewc_lambda
        self.fisher_samples = fisher_samples
        self.importance: list[Tensor] = []
        """Sum of the Fisher diagonals of the tasks trained so far, per backbone parameter."""
        self.anchor: list[Tensor] = []
        """Importance-weighted mean of the parameters at the end of each task."""

    def penalty(self, model: nn.Module) -> Tensor:
        """``sum A (theta - m)^2`` (without lambda / 2), once a task has ended."""
        terms = [
            (imp * (p - anchor).square()).sum()
            for p, imp, anchor in zip(model.backbone.parameters(), self.importance, self.anchor)
        ]
        return torch.stack(terms).sum()

    def before_backward(self, strategy, **kwargs) -> None:
        if self.importance:
            strategy.loss += self.ewc_lambda / 2 * self.penalty(strategy.model)

    def after_training_exp(self, strategy, **kwargs) -> None:
        model, dataset = strategy.model, strategy.experience.dataset
        if 0 < self.fisher_samples < len(dataset):
            dataset = Subset(dataset, torch.randperm(len(dataset))[: self.fisher_samples].tolist())
        batches = (
            [t.to(strategy.device) for t in batch[:2]] + [batch[-1]]
            for batch in DataLoader(
                dataset,
                batch_size=strategy.train_mb_size,
                collate_fn=strategy.experience.dataset.collate_fn,
            )
        )
        params = list(model.backbone.parameters())
        was_training = model.training
        model.eval()
        fisher = diagonal_fisher(model, params, batches)
        model.train(was_training)
        self.consolidate(params, fisher)

    def state_dict(self) -> dict:
        return {"importance": self.importance, "anchor": self.anchor}

    def load_state_dict(self, state: dict) -> None:
        self.importance = list(state["importance"])
        self.anchor = list(state["anchor"])

    @torch.no_grad()
    def consolidate(self, params: list[Tensor], fisher: list[Tensor]) -> None:
        """Add a task with Fisher diagonal ``fisher`` whose optimum is ``params``' values."""
        if not self.importance:
            self.importance = [f.clone() for f in fisher]
            self.anchor = [p.detach().clone() for p in params]
            return
        for imp, anchor, fis, p in zip(self.importance, self.anchor, fisher, params):
            total = imp + fis
            anchor.copy_(torch.where(total > 0, (imp * anchor + fis * p) / total, p))
            imp.copy_(total)


def adopt_pretrained(learner, experience, **train_kwargs) -> None:
    """The pretrained network's own task, when its data is on disk: anchor the backbone
    on it with its Fisher, as after training (without data nothing protects it)."""
    if not len(experience.dataset):
        return
    plugin = strategy_plugin(learner, DiagonalEWCPlugin)
    learner.model.to(learner.device)
    learner.experience = experience
    plugin.after_training_exp(learner)


def build(ctx: BuildContext):
    options = ctx.config.options
    return make_naive(
        ctx, [DiagonalEWCPlugin(options["ewc_lambda"], options["ewc_fisher_samples"])]
    )
