"""PackNet (Mallya & Lazebnik, CVPR 2018) as an Avalanche plugin.

This module is the reusable plugin: it imports only torch and Avalanche and raises
standard exceptions (``ValueError``, ``RuntimeError``). How clbench runs it (options,
capacity check, report, pretrained adoption) is :mod:`strategies.packnet_harness`.

One ``strategy.train(experience)`` call performs train -> prune -> retrain -> freeze
for one task. All PackNet state lives in buffers of the model, so it moves with
``.to(device)``, is saved by ``state_dict()`` and restored by :func:`load_packnet_state`:

* ``packnet_owner`` (uint8, shape of the weight) on every prunable conv / linear layer:
  the PackNet index of the task owning each weight, :data:`FREE` for unowned weights.
* ``packnet_task_labels`` (int64, one entry per packed task) on the root module: the
  Avalanche task label of each PackNet task.
* ``packnet_head_task`` (int64 scalar) on every head that a task trained; such a head
  is frozen for ever.
* ``packnet_bn_*`` (one row per task) on BatchNorm layers with ``per_task_bn=True``.

Frozen weights are kept bit-identical whatever the optimizer (momentum, weight decay,
Adam state): after every optimizer step their values are written back, so the
optimizer is never rebuilt and no forward pass is masked. Evaluating an older task
materialises its weights once per evaluated experience and restores the live weights
at the end of the evaluation call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import IncrementalClassifier, MultiHeadClassifier
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

FREE = 255
"""Owner value of weights that no task owns (also the cap on the number of tasks)."""
OWNER = "packnet_owner"
TASK_LABELS = "packnet_task_labels"
HEAD_TASK = "packnet_head_task"
BN_SNAPSHOTS = {
    "weight": "packnet_bn_weight",
    "bias": "packnet_bn_bias",
    "running_mean": "packnet_bn_mean",
    "running_var": "packnet_bn_var",
    "num_batches_tracked": "packnet_bn_count",
}
"""BatchNorm tensor -> buffer holding one snapshot row per task (``per_task_bn``)."""
_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}
"""Integer dtype of each float size, to restore frozen weights on their bit patterns."""


def head_modules(model: nn.Module, exclude: Sequence[str] = ()) -> list[nn.Module]:
    """Per-task output modules: ``model.task_heads()``, the heads of every Avalanche
    ``MultiHeadClassifier`` and the modules named in ``exclude``. Never pruned."""
    heads: list[nn.Module] = list(model.task_heads()) if hasattr(model, "task_heads") else []
    for module in model.modules():
        if isinstance(module, MultiHeadClassifier):
            heads.extend(module.classifiers.values())
    named = dict(model.named_modules())
    for name in exclude:
        if name not in named:
            raise ValueError(f"exclude: the model has no module named {name!r}")
        heads.append(named[name])
    unique = {id(h): h for h in heads}
    return list(unique.values())


def _inside(heads: Sequence[nn.Module]) -> set[int]:
    return {id(m) for head in heads for m in head.modules()}


def prunable_layers(model: nn.Module, exclude: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """(name, module) of every conv / linear layer outside the heads: the layers whose
    weights PackNet shares between tasks and prunes (biases are never pruned)."""
    in_heads = _inside(head_modules(model, exclude))
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, _ConvNd)) and id(m) not in in_heads
    ]


def mask_storage_bits(num_prunable_weights: int, num_tasks: int) -> int:
    """Bits to store every task's mask: ceil(log2 T) per prunable weight (0 for T <= 1)."""
    return num_prunable_weights * (math.ceil(math.log2(num_tasks)) if num_tasks > 1 else 0)


def packed_task_labels(model: nn.Module) -> list[int]:
    """Avalanche task label of each packed PackNet task, in packing order."""
    labels = getattr(model, TASK_LABELS, None)
    return [] if labels is None else [int(t) for t in labels.tolist()]


def _create_heads(model: nn.Module, state_dict: dict[str, Tensor]) -> None:
    """Give every Avalanche ``MultiHeadClassifier`` of ``model`` the heads ``state_dict``
    holds, sized as there (a fresh one has only head 0; the others are created as tasks
    arrive)."""
    for name, module in model.named_modules():
        if not isinstance(module, MultiHeadClassifier):
            continue
        owner = f"{name}." if name else ""
        prefix = f"{owner}classifiers."
        for key, weight in state_dict.items():
            task, _, rest = key.removeprefix(prefix).partition(".")
            if not key.startswith(prefix) or rest != "classifier.weight":
                continue
            head = module.classifiers[task] if task in module.classifiers else None
            if head is None or head.classifier.weight.shape != weight.shape:
                out_features, in_features = weight.shape
                head = IncrementalClassifier(
                    in_features, out_features, masking=False, auto_adapt=False
                ).to(weight.device)
                module.classifiers[task] = head
            for buffer, value in list(head.named_buffers()):  # unit masks grow apart
                holder, _, leaf = buffer.rpartition(".")
                saved = state_dict.get(f"{prefix}{task}.{buffer}", value)
                head.get_submodule(holder).register_buffer(leaf, torch.zeros_like(saved))
            units = f"active_units_T{task}"
            module.register_buffer(units, torch.zeros_like(state_dict[f"{owner}{units}"]))


def load_packnet_state(model: nn.Module, state_dict: dict[str, Tensor]) -> None:
    """Register the PackNet buffers found in ``state_dict`` on a freshly built ``model``
    (same architecture), then load ``state_dict`` strictly. The heads of an Avalanche
    ``MultiHeadClassifier`` that ``state_dict`` holds and ``model`` lacks are created."""
    _create_heads(model, state_dict)
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        if not name.startswith("packnet_"):
            continue
        module = model.get_submodule(prefix)
        anchor = next(module.parameters(), None)
        device = anchor.device if anchor is not None else value.device
        module.register_buffer(name, torch.empty(value.shape, dtype=value.dtype, device=device))
    model.load_state_dict(state_dict)


def _task_index(labels: Sequence[int], task_label: int) -> int | None:
    """PackNet index of the latest task packed with ``task_label`` (None if none)."""
    for index in range(len(labels) - 1, -1, -1):
        if labels[index] == task_label:
            return index
    return None


class _TaskView:
    """Writes one task's weights (and BN snapshot) into a model; restores the live ones.

    Layers are backed up lazily, only when a view actually changes them.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if OWNER in m._buffers]
        self.bns = [
            m for m in model.modules() if any(n in m._buffers for n in BN_SNAPSHOTS.values())
        ]
        self.backups: dict[int, list[tuple[Tensor, Tensor]]] = {}
        self.current: int | None = None

    @torch.no_grad()
    def show(self, task: int | None) -> None:
        """Materialise PackNet task ``task`` (None: the live weights)."""
        if task == self.current:
            return
        if task is None:
            self.restore()
            return
        for layer in self.layers:
            owner = layer.packnet_owner
            if id(layer) not in self.backups:
                if not bool(((owner > task) & (owner != FREE)).any()):
                    continue  # nothing newer than `task` here; FREE weights are 0
                self.backups[id(layer)] = [(layer.weight, layer.weight.detach().clone())]
            saved = self.backups[id(layer)][0][1]
            torch.where(owner <= task, saved, saved.new_zeros(()), out=layer.weight)
        for bn in self.bns:
            pairs = [
                (getattr(bn, attr), getattr(bn, name))
                for attr, name in BN_SNAPSHOTS.items()
                if name in bn._buffers
            ]
            if pairs[0][1].shape[0] <= task:
                continue  # task still training: its BN is the live one
            if id(bn) not in self.backups:
                self.backups[id(bn)] = [(live, live.detach().clone()) for live, _ in pairs]
            for live, rows in pairs:
                live.copy_(rows[task])
        self.current = task

    @torch.no_grad()
    def restore(self) -> None:
        """Write the live values back (bit-exact)."""
        for pairs in self.backups.values():
            for live, saved in pairs:
                live.copy_(saved)
        self.backups.clear()
        self.current = None


@contextmanager
def task_view(model: nn.Module, task_label: int) -> Iterator[nn.Module]:
    """Serve a packed task: inside the block ``model`` computes task ``task_label``'s
    function (weights of tasks <= it, its BN snapshot); live weights restored on exit."""
    index = _task_index(packed_task_labels(model), task_label)
    if index is None:
        raise ValueError(f"task label {task_label} is not packed in this model")
    view = _TaskView(model)
    view.show(index)
    try:
        yield model
    finally:
        view.restore()


@dataclass
class _Layout:
    """Where PackNet acts in a model."""

    prunable: list[tuple[str, nn.Module]]
    heads: list[nn.Module]
    bns: list[_BatchNorm]
    shared: list[nn.Parameter]
    """Parameters outside prunable weights and heads (biases, norms): frozen after task 0."""


def _bn_tensors(bn: _BatchNorm) -> list[tuple[Tensor, str]]:
    return [
        (getattr(bn, a), n) for a, n in BN_SNAPSHOTS.items() if getattr(bn, a, None) is not None
    ]


@torch.no_grad()
def _prune_task(layers: Sequence[tuple[str, nn.Module]], task: int, ratio: float) -> None:
    """Per layer, free the round(ratio * n) smallest-magnitude weights owned by ``task``
    (exact count; ties broken by position) and set them to exactly 0."""
    for _, layer in layers:
        owner, weight = layer.packnet_owner, layer.weight
        own = owner == task
        count = round(ratio * int(own.sum()))
        if count == 0:
            continue
        scores = weight.detach().abs().masked_fill(~own, math.inf)
        threshold = scores.flatten().kthvalue(count).values
        drop = scores < threshold
        missing = count - int(drop.sum())
        if missing:
            ties = ((scores == threshold) & own).flatten().nonzero().squeeze(1)[:missing]
            drop.view(-1)[ties] = True
        weight.masked_fill_(drop, 0.0)
        owner.masked_fill_(drop, FREE)


class PackNetPlugin(SupervisedPlugin):
    """PackNet: pack tasks into one network by iterative pruning and freezing.

    :param prune_ratio: fraction of each task's weights to free after its training;
        one value for all tasks or one per PackNet task (k-th ``train`` call). A value
        <= 0 or None leaves that task unpruned. Every value must be < 1.
    :param retrain_epochs: epochs of retraining after pruning, added to the strategy's
        ``train_epochs`` for tasks that prune.
    :param retrain_lr: constant learning rate of the retrain phase.
    :param per_task_bn: train BatchNorm in every task and keep a snapshot per task
        (default: BN affine and running statistics frozen after task 0, as in the paper).
    :param exclude: names of modules (``model.named_modules()``) never pruned, in
        addition to the detected heads; they are handled like heads.
    :param reset_optimizer: clear the optimizer's state (momentum, Adam moments) when a
        task starts and when its retrain phase starts, as the authors' separate
        processes did; the optimizer object (and every scheduler's reference) stays.
    """

    def __init__(
        self,
        prune_ratio: float | Sequence[float | None] | None = 0.75,
        retrain_epochs: int = 10,
        retrain_lr: float = 1e-4,
        per_task_bn: bool = False,
        exclude: Sequence[str] = (),
        reset_optimizer: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(prune_ratio, Sequence):
            prune_ratio = tuple(prune_ratio)
        for ratio in prune_ratio if isinstance(prune_ratio, tuple) else (prune_ratio,):
            if ratio is not None and not ratio < 1:
                raise ValueError(
                    f"prune_ratio must be < 1 (a fraction of the weights), got {ratio}"
                )
        if retrain_epochs < 0:
            raise ValueError(f"retrain_epochs must be >= 0, got {retrain_epochs}")
        self.prune_ratio = prune_ratio
        self.retrain_epochs = retrain_epochs
        self.retrain_lr = retrain_lr
        self.per_task_bn = per_task_bn
        self.exclude = tuple(exclude)
        self.reset_optimizer = reset_optimizer
        # State of the experience being trained (None between experiences).
        self._task: int | None = None
        self._label: int | None = None
        self._layout: _Layout | None = None
        self._ratio_now = 0.0
        self._pruned = False
        self._epochs_orig = 0
        self._saved_lrs: list[float] = []
        # (weight, 1 where trainable else 0, frozen bit patterns), integer views
        self._partial: list[tuple[Tensor, Tensor, Tensor]] = []
        self._whole: list[tuple[nn.Parameter, Tensor]] = []
        self._hooks: dict[int, torch.utils.hooks.RemovableHandle] = {}  # by id(head)
        self._used_heads: list[nn.Module] = []
        self._view: _TaskView | None = None

    # ------------------------------------------------------------------ helpers
    def ratio(self, task: int) -> float:
        """Prune ratio of PackNet task ``task`` (0.0 = do not prune)."""
        if isinstance(self.prune_ratio, tuple):
            if task >= len(self.prune_ratio):
                raise ValueError(
                    f"prune_ratio lists {len(self.prune_ratio)} value(s) but PackNet task "
                    f"index {task} (task #{task + 1}) needs one"
                )
            value = self.prune_ratio[task]
        else:
            value = self.prune_ratio
        return 0.0 if value is None or value <= 0 else float(value)

    def first_selectable_epoch(self, strategy: SupervisedTemplate) -> int:
        """First epoch (0-based) an epoch selection may keep: the retrain phase's first
        when the current task prunes before retraining, else 0."""
        if self._ratio_now > 0 and self.retrain_epochs > 0:
            return self._epochs_orig
        return 0

    def _make_layout(self, model: nn.Module) -> _Layout:
        heads = head_modules(model, self.exclude)
        in_heads = _inside(heads)
        prunable = prunable_layers(model, self.exclude)
        bns = [
            m
            for m in model.modules()
            if isinstance(m, _BatchNorm) and id(m) not in in_heads and _bn_tensors(m)
        ]
        taken = {id(m.weight) for _, m in prunable}
        taken |= {id(p) for h in heads for p in h.parameters()}
        shared = [p for p in model.parameters() if id(p) not in taken]
        return _Layout(prunable, heads, bns, shared)

    def _open_task(self, model: nn.Module, layout: _Layout) -> int:
        """Register missing buffers, check the model's state, give FREE weights to the
        new task; return its PackNet index."""
        if TASK_LABELS not in model._buffers:
            device = next(model.parameters()).device
            model.register_buffer(TASK_LABELS, torch.zeros(0, dtype=torch.int64, device=device))
        task = len(model.packnet_task_labels)
        if task >= FREE:
            raise ValueError(f"PackNet supports at most {FREE} tasks")
        self.ratio(task)  # validates the ratio list length before anything changes
        for bn in layout.bns:
            rows = [bn._buffers[n].shape[0] for _, n in _bn_tensors(bn) if n in bn._buffers]
            if self.per_task_bn and task > 0 and rows != [task] * len(_bn_tensors(bn)):
                raise ValueError(
                    "model was packed without per-task BatchNorm; use per_task_bn=False"
                )
            if not self.per_task_bn and rows:
                raise ValueError("model was packed with per-task BatchNorm; use per_task_bn=True")
        with torch.no_grad():
            for _, layer in layout.prunable:
                if OWNER not in layer._buffers:
                    layer.register_buffer(
                        OWNER, torch.full_like(layer.weight, FREE, dtype=torch.uint8)
                    )
                layer.packnet_owner.masked_fill_(layer.packnet_owner == FREE, task)
        return task

    def _close_task(
        self, model: nn.Module, layout: _Layout, task: int, label: int, heads: Sequence[nn.Module]
    ) -> None:
        """Freeze ``task``: mark its heads, snapshot BN, record its label."""
        labels = model.packnet_task_labels
        for head in heads:
            head.register_buffer(
                HEAD_TASK, torch.tensor(task, dtype=torch.int64, device=labels.device)
            )
        if self.per_task_bn:
            for bn in layout.bns:
                for live, name in _bn_tensors(bn):
                    row = live.detach().clone().unsqueeze(0)
                    old = bn._buffers.get(name)
                    bn.register_buffer(name, row if old is None else torch.cat([old, row]))
        model.register_buffer(TASK_LABELS, torch.cat([labels, labels.new_tensor([label])]))

    def _set_bn_modes(self) -> None:
        if self._task is not None and self._task > 0 and not self.per_task_bn:
            for bn in self._layout.bns:
                bn.eval()

    def _freeze_plan(self) -> None:
        """Precompute, for the current phase, what the optimizer must not change."""
        self._partial = []
        for _, layer in self._layout.prunable:
            trainable = layer.packnet_owner == self._task
            if not bool(trainable.all()):
                weight = layer.weight
                keep = trainable.to(_BITS[weight.element_size()])
                fixed = weight.detach().view(keep.dtype).masked_fill(trainable, 0)
                self._partial.append((weight, keep, fixed))
        frozen = [p for h in self._layout.heads if HEAD_TASK in h._buffers for p in h.parameters()]
        if self._task > 0:
            bn_params = {id(p) for bn in self._layout.bns for p in bn.parameters()}
            frozen += [
                p for p in self._layout.shared if not (self.per_task_bn and id(p) in bn_params)
            ]
        self._whole = [(p, p.detach().clone()) for p in frozen]

    def _prune(self, strategy: SupervisedTemplate) -> None:
        _prune_task(self._layout.prunable, self._task, self._ratio_now)
        self._pruned = True
        self._freeze_plan()
        self._set_retrain_lr(strategy)
        self._clear_optimizer_state(strategy)

    def _clear_optimizer_state(self, strategy: SupervisedTemplate) -> None:
        if self.reset_optimizer:
            strategy.optimizer.state.clear()

    def _set_retrain_lr(self, strategy: SupervisedTemplate) -> None:
        for group in strategy.optimizer.param_groups:
            group["lr"] = self.retrain_lr

    def _watch_head(self, head: nn.Module) -> None:
        """Record ``head`` as used by the current task at its first training forward."""

        def hook(module: nn.Module, inputs, output) -> None:
            if module.training and torch.is_grad_enabled():
                self._used_heads.append(module)
                handle.remove()

        handle = head.register_forward_hook(hook)
        self._hooks[id(head)] = handle

    # ------------------------------------------------------------------ training
    def before_training_exp(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        model = strategy.model
        self._layout = self._make_layout(model)
        self._task = self._open_task(model, self._layout)
        self._label = int(strategy.experience.task_label)
        self._ratio_now = self.ratio(self._task)
        self._pruned = False
        self._epochs_orig = strategy.train_epochs
        if self._ratio_now > 0:
            strategy.train_epochs += self.retrain_epochs
        self._saved_lrs = [group["lr"] for group in strategy.optimizer.param_groups]
        self._used_heads = []
        for head in self._layout.heads:
            if HEAD_TASK not in head._buffers:
                self._watch_head(head)
        self._set_bn_modes()
        self._freeze_plan()
        self._clear_optimizer_state(strategy)

    def before_training_epoch(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        if self._task is None:
            return
        self._set_bn_modes()
        if (
            self._ratio_now > 0
            and not self._pruned
            and self.retrain_epochs > 0
            and strategy.clock.train_exp_epochs >= self._epochs_orig
        ):
            self._prune(strategy)

    def before_training_iteration(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        if self._pruned:
            self._set_retrain_lr(strategy)

    def after_backward(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        for param, _ in self._whole:
            param.grad = None

    @torch.no_grad()
    def after_update(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        for weight, keep, fixed in self._partial:
            # On the weights' bit patterns: bits * 1 + 0 (trainable) or bits * 0 + frozen
            # bits. Exact even for inf/NaN, one fused pass (torch.where is ~30x slower on CPU).
            bits = weight.detach().view(keep.dtype)
            torch.addcmul(fixed, bits, keep, out=bits)
        for param, saved in self._whole:
            param.copy_(saved)

    def after_training_exp(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        if self._task is None:
            return
        if self._ratio_now > 0 and not self._pruned:
            _prune_task(self._layout.prunable, self._task, self._ratio_now)
        for handle in self._hooks.values():
            handle.remove()
        self._close_task(strategy.model, self._layout, self._task, self._label, self._used_heads)
        for group, lr in zip(strategy.optimizer.param_groups, self._saved_lrs):
            group["lr"] = lr
        strategy.train_epochs = self._epochs_orig
        self._task = self._label = self._layout = None
        self._pruned = False
        self._partial, self._whole, self._hooks, self._used_heads = [], [], {}, []

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Empty between tasks (PackNet's state lives in the model's buffers); inside a
        task, the heads it has used so far (indices into the model's heads)."""
        if self._task is None:
            return {}
        heads = self._layout.heads
        return {
            "used_heads": [next(i for i, h in enumerate(heads) if h is u) for u in self._used_heads]
        }

    def load_state_dict(self, state: dict) -> None:
        """Inside a task, after the model got the saved weights and owners: the used
        heads, and what the optimizer must not change recomputed from the owners."""
        if self._task is None:
            if state:
                raise ValueError("a mid-task PackNet state cannot be loaded between tasks")
            return
        self._used_heads = [self._layout.heads[i] for i in state["used_heads"]]
        for head in self._used_heads:
            self._hooks.pop(id(head)).remove()
        self._freeze_plan()

    # ------------------------------------------------------------------ evaluation
    def before_eval_exp(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        model = strategy.model
        labels = packed_task_labels(model)
        if not labels:
            return
        if self._view is None:
            self._view = _TaskView(model)
        self._view.show(self._eval_index(labels, strategy.experience.task_labels))

    def _eval_index(self, labels: list[int], exp_labels: Sequence[int]) -> int | None:
        """PackNet task whose weights evaluate ``exp_labels`` (None: live weights)."""
        if len(set(exp_labels)) != 1:
            return None
        label = int(exp_labels[0])
        if self._task is not None and label == self._label:
            return None
        index = _task_index(labels, label)
        live = self._task if self._task is not None else len(labels) - 1
        return None if index == live else index

    def after_eval(self, strategy: SupervisedTemplate, *args, **kwargs) -> None:
        if self._view is not None:
            self._view.restore()
            self._view = None

    # ------------------------------------------------------------------ no data / reports
    def pack_without_training(
        self, model: nn.Module, head: nn.Module | None = None, task_label: int = 0
    ) -> None:
        """Pack the model's current weights as a new task without data (e.g. a pretrained
        ImageNet network): free weights become its own, pruned at its ratio (no
        retraining), then frozen; ``head`` is its (now frozen) head."""
        if self._task is not None:
            raise RuntimeError("pack_without_training cannot run while a task is training")
        layout = self._make_layout(model)
        if head is not None and all(head is not h for h in layout.heads):
            raise ValueError(
                "head is not a task head of the model (see PackNetPlugin(exclude=...))"
            )
        task = self._open_task(model, layout)
        ratio = self.ratio(task)
        if ratio > 0:
            _prune_task(layout.prunable, task, ratio)
        self._close_task(model, layout, task, task_label, [] if head is None else [head])

    def weight_usage(self, model: nn.Module) -> dict:
        """Fractions of the prunable weights owned by each task and free, per layer
        (``layers``) and over all prunable weights (``total``)."""
        counts: dict[str, Tensor] = {}
        for name, layer in prunable_layers(model, self.exclude):
            owner = layer._buffers.get(OWNER)
            if owner is None:
                hist = torch.zeros(FREE + 1, dtype=torch.int64)
                hist[FREE] = layer.weight.numel()
            else:
                hist = torch.bincount(owner.flatten().long(), minlength=FREE + 1).cpu()
            counts[name] = hist
        used = [int(h[:FREE].nonzero().max()) + 1 for h in counts.values() if h[:FREE].any()]
        tasks = max([len(packed_task_labels(model))] + used)

        def fractions(hist: Tensor) -> dict:
            n = int(hist.sum())
            return {
                "weights": n,
                "tasks": [int(c) / n for c in hist[:tasks]],
                "free": int(hist[FREE]) / n,
            }

        total = sum(counts.values(), torch.zeros(FREE + 1, dtype=torch.int64))
        return {
            "layers": {name: fractions(hist) for name, hist in counts.items()},
            "total": fractions(total)
            if counts
            else {"weights": 0, "tasks": [0.0] * tasks, "free": 0.0},
        }

    def mask_bits(self, model: nn.Module) -> int:
        """Bits needed to store the masks of every packed task of ``model``."""
        weights = sum(layer.weight.numel() for _, layer in prunable_layers(model, self.exclude))
        return mask_storage_bits(weights, len(packed_task_labels(model)))
