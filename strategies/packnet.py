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
* ``packnet_bn_*`` (one row per task) on BatchNorm layers with ``per_task_bn=True``;
  ``packnet_bias`` (one row per task) on prunable layers with ``per_task_bias=True``.
* ``packnet_filters`` (bool scalar) on the root module of a model packed with
  ``prune_granularity="filter"``.

Frozen weights are kept bit-identical whatever the optimizer (momentum, weight decay,
Adam state): after every optimizer step their values are written back, so the
optimizer is never rebuilt and no forward pass is masked. Evaluating an older task
materialises its weights once per evaluated experience and restores the live weights
at the end of the evaluation call. A packed model called directly (outside the plugin's
training and evaluation) with a task label whose weights are not the ones it holds
raises a ``RuntimeError`` (:class:`_DirectCallGuard`) instead of answering with another
task's weights.

The analyses of the paper's section 5 are options: ``on_stage`` (a task's function
after training, right after pruning and after retraining: Figure 4), ``per_task_bias``
(Table 5), ``train_layers`` (Figure 5) and ``prune_granularity="filter"`` (Table 6,
with :func:`forward_all_tasks` serving every task in one forward pass).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import IncrementalClassifier, MultiHeadClassifier
from avalanche.models.utils import avalanche_forward
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm, _NormBase
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
BIAS_SNAPSHOTS = {"bias": "packnet_bias"}
"""Prunable layer's bias -> buffer holding one snapshot row per task (``per_task_bias``)."""
FILTERS = "packnet_filters"
"""Root buffer marking a model packed with filter granularity."""
GRANULARITIES = ("weight", "filter")
STAGES = ("trained", "pruned", "retrained")
"""The moments ``on_stage`` reports for every task that prunes (Figure 4 of the paper)."""
TRAIN_LAYER_SPECS = ("all", "classifier", "linear", "from:LAYER")
_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}
"""Integer dtype of each float size, to restore frozen weights on their bit patterns."""
_ROUTE_CHUNK = 64
"""Filters probed per forward pass when tracing which inputs read which filters."""
_ROUTE_SIZE = 32
"""Spatial size tried first for that tracing (channels flow the same at any size)."""


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


def train_layer_names(
    model: nn.Module, spec: str | Sequence[str] = "all", exclude: Sequence[str] = ()
) -> list[str]:
    """The prunable layers whose free weights a task after the first trains (``train_layers``):
    ``all``; ``classifier`` (none: only the task's head trains); ``linear`` (the fully
    connected layers); ``from:LAYER`` (LAYER and every prunable layer after it, in module
    order); or layer names (a sequence, or one comma-separated string). Raises a one-line
    ``ValueError`` naming the model's prunable layers for a name it does not have."""
    layers = dict(prunable_layers(model, exclude))
    names = list(layers)
    if spec == "all":
        return names
    if spec == "classifier":
        return []
    if spec == "linear":
        return [name for name in names if isinstance(layers[name], nn.Linear)]
    start = isinstance(spec, str) and spec.startswith("from:")
    if isinstance(spec, str):
        wanted = [spec.removeprefix("from:")] if start else spec.split(",")
    else:
        wanted = list(spec)
    wanted = [name.strip() for name in wanted]
    unknown = [name for name in wanted if name not in layers] or ([] if wanted else [""])
    if unknown:
        raise ValueError(
            f"no prunable layer {unknown[0]!r}; use {', '.join(TRAIN_LAYER_SPECS)} or layer "
            f"names (comma-separated) of: {', '.join(names)}"
        )
    return names[names.index(wanted[0]) :] if start else [n for n in names if n in wanted]


def prune_units(layer: nn.Module, granularity: str = "weight") -> int:
    """What a prune ratio counts in ``layer``: its weights, or its output filters
    (conv) / units (linear) with ``granularity="filter"``."""
    return layer.weight.shape[0] if granularity == "filter" else layer.weight.numel()


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
    if TASK_LABELS in model._buffers:
        _guard(model)


def _task_index(labels: Sequence[int], task_label: int) -> int | None:
    """PackNet index of the latest task packed with ``task_label`` (None if none)."""
    for index in range(len(labels) - 1, -1, -1):
        if labels[index] == task_label:
            return index
    return None


class _DirectCallGuard:
    """Forward pre-hook of a packed model: a call naming a task (``model(x, task_labels)``)
    whose weights the model does not hold right now (the live weights serve the latest
    packed task, a :class:`_TaskView` the task it shows) raises a ``RuntimeError``.
    Skipped while the plugin trains a task (it serves the live weights to that task)."""

    def __init__(self) -> None:
        self.shown: int | None = None
        """PackNet index a view materialised (None: the live weights)."""
        self.training = False

    def __call__(self, model: nn.Module, args: tuple, kwargs: dict) -> None:
        labels = args[1] if len(args) > 1 else kwargs.get("task_labels")
        if self.training or labels is None:
            return
        packed = packed_task_labels(model)
        served = len(packed) - 1 if self.shown is None else self.shown
        asked = torch.unique(labels).tolist() if isinstance(labels, Tensor) else [int(labels)]
        for label in asked:
            index = _task_index(packed, label)
            if (served if index is None else index) != served:
                raise RuntimeError(
                    f"PackNet: the model holds the weights of packed task {served}, not those "
                    f"of task label {label}; serve it with `with task_view(model, {label}):` "
                    "or through the strategy's eval"
                )


def _guard(model: nn.Module) -> _DirectCallGuard:
    """The model's :class:`_DirectCallGuard`, registered on first use."""
    guard = model.__dict__.get("_packnet_guard")
    if guard is None:
        guard = model._packnet_guard = _DirectCallGuard()
        model.register_forward_pre_hook(guard, with_kwargs=True)
    return guard


def _snapshot_tensors(module: nn.Module, snapshots: dict[str, str]) -> list[tuple[Tensor, str]]:
    """(live tensor, snapshot buffer name) of the ``snapshots`` tensors ``module`` has."""
    return [
        (getattr(module, a), n)
        for a, n in snapshots.items()
        if getattr(module, a, None) is not None
    ]


def _snapshot_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(live attribute, buffer) of every per-task snapshot ``module`` holds (BN, biases)."""
    return [
        (attr, name)
        for attr, name in (*BN_SNAPSHOTS.items(), *BIAS_SNAPSHOTS.items())
        if name in module._buffers
    ]


class _TaskView:
    """Writes one task's weights (and BN / bias snapshots) into a model; restores the
    live ones. Tensors are backed up lazily, only when a view actually changes them.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if OWNER in m._buffers]
        self.snapshotted = [(m, pairs) for m in model.modules() if (pairs := _snapshot_pairs(m))]
        self.backups: dict[int, tuple[Tensor, Tensor]] = {}
        """id(live tensor) -> (live tensor, its live values)."""
        self.current: int | None = None
        self.guard = _guard(model)

    def _backup(self, live: Tensor) -> Tensor:
        if id(live) not in self.backups:
            self.backups[id(live)] = (live, live.detach().clone())
        return self.backups[id(live)][1]

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
            if id(layer.weight) not in self.backups:
                if not bool(((owner > task) & (owner != FREE)).any()):
                    continue  # nothing newer than `task` here; FREE weights are 0
            saved = self._backup(layer.weight)
            torch.where(owner <= task, saved, saved.new_zeros(()), out=layer.weight)
        for module, pairs in self.snapshotted:
            for attr, name in pairs:
                live, rows = getattr(module, attr), module._buffers[name]
                if task < rows.shape[0]:
                    self._backup(live)
                    live.copy_(rows[task])
                elif id(live) in self.backups:  # task still training: the live values
                    live.copy_(self.backups[id(live)][1])
        self.current = self.guard.shown = task

    @torch.no_grad()
    def restore(self) -> None:
        """Write the live values back (bit-exact)."""
        for live, saved in self.backups.values():
            live.copy_(saved)
        self.backups.clear()
        self.current = self.guard.shown = None


@contextmanager
def task_view(model: nn.Module, task_label: int) -> Iterator[nn.Module]:
    """Serve a packed task: inside the block ``model`` computes task ``task_label``'s
    function (weights of tasks <= it, its BN and bias snapshots); live weights restored
    on exit."""
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
    trained: set[str]
    """Names of the prunable layers a task after the first trains (``train_layers``)."""


def _bn_tensors(bn: _BatchNorm) -> list[tuple[Tensor, str]]:
    return _snapshot_tensors(bn, BN_SNAPSHOTS)


def _check_snapshots(
    modules: Sequence[nn.Module],
    snapshots: dict[str, str],
    task: int,
    option: str,
    per_task: bool,
    what: str,
) -> None:
    """Refuse to go on packing a model whose per-task snapshots do not match ``option``."""
    for module in modules:
        tensors = _snapshot_tensors(module, snapshots)
        rows = [module._buffers[n].shape[0] for _, n in tensors if n in module._buffers]
        if per_task and task > 0 and rows != [task] * len(tensors):
            raise ValueError(f"model was packed without per-task {what}; use {option}=False")
        if not per_task and rows:
            raise ValueError(f"model was packed with per-task {what}; use {option}=True")


def _append_snapshots(module: nn.Module, snapshots: dict[str, str]) -> None:
    """Add the current values of ``module``'s ``snapshots`` tensors as the next task's row."""
    for live, name in _snapshot_tensors(module, snapshots):
        row = live.detach().clone().unsqueeze(0)
        old = module._buffers.get(name)
        module.register_buffer(name, row if old is None else torch.cat([old, row]))


def _smallest(scores: Tensor, own: Tensor, count: int) -> Tensor:
    """Mask of the ``count`` smallest ``scores`` among ``own`` (others are inf; exact
    count, ties broken by position)."""
    threshold = scores.flatten().kthvalue(count).values
    drop = scores < threshold
    missing = count - int(drop.sum())
    if missing:
        ties = ((scores == threshold) & own).flatten().nonzero().squeeze(1)[:missing]
        drop.view(-1)[ties] = True
    return drop


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
        drop = _smallest(weight.detach().abs().masked_fill(~own, math.inf), own, count)
        weight.masked_fill_(drop, 0.0)
        owner.masked_fill_(drop, FREE)


def _filter_owners(layer: nn.Module) -> Tensor:
    """Owner of each output filter / unit (with filter granularity every weight of a
    filter has its filter's owner)."""
    return layer.packnet_owner.flatten(1)[:, 0]


@torch.no_grad()
def _prune_filters(layers: Sequence[tuple[str, nn.Module]], task: int, ratio: float) -> None:
    """Per layer, free the round(ratio * n) output filters (conv) or units (linear) of
    ``task`` with the smallest L1 norm (ties broken by position): whole rows of the
    weight set to exactly 0."""
    for _, layer in layers:
        owner, weight = layer.packnet_owner, layer.weight
        own = _filter_owners(layer) == task
        count = round(ratio * int(own.sum()))
        if count == 0:
            continue
        scores = weight.detach().abs().flatten(1).sum(1).masked_fill(~own, math.inf)
        drop = _smallest(scores, own, count).view(-1, *([1] * (weight.dim() - 1)))
        weight.masked_fill_(drop, 0.0)
        owner.masked_fill_(drop, FREE)


# ---------------------------------------------------------------------- filter routes
@dataclass
class _Routes:
    """Which output filters of which prunable layer each consumer's inputs read (through
    BatchNorm, activations, pooling, sums, concatenations and flattening; a prunable
    layer ends a route). ``reads`` per consumer: (producer index, bool matrix
    [producer filters, consumer inputs])."""

    producers: list[tuple[str, nn.Module]]
    layers: dict[int, list[tuple[int, Tensor]]]
    """id(prunable layer) -> its reads (input channels of a conv, input features of a linear)."""
    heads: list[tuple[int, Tensor]]
    """The reads of the features every head takes."""

    def reads(self, consumer: nn.Module | None) -> list[tuple[int, Tensor]]:
        """Reads of a prunable layer, or of the heads' features (``None``)."""
        return self.heads if consumer is None else self.layers.get(id(consumer), [])

    def reads_free(self, consumer: nn.Module | None) -> Tensor | None:
        """Per input: whether it reads a free filter (None: it reads no prunable layer)."""
        hit = None
        for index, reads in self.reads(consumer):
            free = _filter_owners(self.producers[index][1]) == FREE
            found = (reads & free.unsqueeze(1)).any(0)
            hit = found if hit is None else hit | found
        return hit

    def latest_reader_owner(self, consumer: nn.Module | None) -> Tensor | None:
        """Per input: the latest task owning a filter it reads (-1: none; free filters,
        all zero, carry no task)."""
        latest = None
        for index, reads in self.reads(consumer):
            owners = _filter_owners(self.producers[index][1]).long()
            owners = owners.masked_fill(owners == FREE, -1).unsqueeze(1)
            found = torch.where(reads, owners, owners.new_full((), -1)).amax(0)
            latest = found if latest is None else torch.maximum(latest, found)
        return latest


_ROUTES: weakref.WeakKeyDictionary[nn.Module, _Routes] = weakref.WeakKeyDictionary()
"""Routes found per model (they depend on the architecture only)."""
_NORMS = (_NormBase, nn.GroupNorm, nn.LayerNorm)


def _hits(inputs: Tensor, channels_first: bool) -> Tensor:
    """[batch, channels or features]: which inputs are non-zero anywhere."""
    if channels_first:
        return inputs.ne(0).flatten(2).any(2)
    return inputs.ne(0).reshape(inputs.shape[0], -1, inputs.shape[-1]).any(1)


def _forward(model: nn.Module, x: Tensor, task_label: int) -> Tensor:
    labels = torch.full((x.shape[0],), task_label, dtype=torch.long, device=x.device)
    return avalanche_forward(model, x, labels)


@contextmanager
def _eager_tracing(model: nn.Module) -> Iterator[None]:
    """Eval mode, no gradient, no ``torch.compile``d call; all restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    compiled = [
        (m, m.__dict__.pop("_compiled_call_impl"))
        for m in model.modules()
        if "_compiled_call_impl" in m.__dict__
    ]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        for module, call in compiled:
            module._compiled_call_impl = call


def _output_shapes(
    model: nn.Module, producers: Sequence[nn.Module], example: Tensor, task_label: int
) -> tuple[Tensor, dict[int, torch.Size]]:
    """A zero probe input the model accepts (small first: channels flow the same at any
    size) and each producer's output shape for it (without the batch dimension)."""
    probes = [torch.zeros_like(example[:1])]
    if example.dim() == 4 and max(example.shape[2:]) > _ROUTE_SIZE:
        small = (min(example.shape[2], _ROUTE_SIZE), min(example.shape[3], _ROUTE_SIZE))
        probes.insert(0, example.new_zeros(1, example.shape[1], *small))
    shapes: dict[int, torch.Size] = {}
    hooks = [
        p.register_forward_hook(lambda m, i, o: shapes.__setitem__(id(m), o.shape[1:]))
        for p in producers
    ]
    try:
        for probe in probes[:-1]:
            try:
                _forward(model, probe, task_label)
                return probe, shapes
            except RuntimeError:  # too small for this model
                shapes.clear()
        _forward(model, probes[-1], task_label)
        return probes[-1], shapes
    finally:
        for hook in hooks:
            hook.remove()


@contextmanager
def _replaced_forwards(forwards: dict[nn.Module, Callable]) -> Iterator[None]:
    """Give each module another ``forward`` for the block (restored afterwards)."""
    own = [(module, module.__dict__.get("forward")) for module in forwards]
    for module, forward in forwards.items():
        module.forward = forward
    try:
        yield
    finally:
        for module, forward in own:
            del module.forward
            if forward is not None:
                module.forward = forward


def _fabricate(
    layer: nn.Module, shape: torch.Size, batch: int, first: int | None
) -> Callable[..., Tensor]:
    """A ``forward`` giving zeros of ``layer``'s output shape; with ``first``, sample b
    carries 1 in filter ``first + b`` (conv: dimension 1; linear: the last)."""

    def forward(*args, **kwargs) -> Tensor:
        out = layer.weight.new_zeros((batch, *shape))
        if first is not None:
            rows = torch.arange(batch, device=out.device)
            if isinstance(layer, _ConvNd):
                out[rows, first + rows] = 1.0
            else:
                out.view(batch, -1, out.shape[-1])[rows, :, first + rows] = 1.0
        return out

    return forward


def _identity(x: Tensor, *args, **kwargs) -> Tensor:
    return x


def _head_linear(head: nn.Module) -> nn.Linear | None:
    """A head's (first) linear layer: what reads the backbone's features."""
    return next((m for m in head.modules() if isinstance(m, nn.Linear)), None)


def _trace_routes(
    model: nn.Module,
    producers: list[tuple[str, nn.Module]],
    heads: Sequence[nn.Module],
    example: Tensor,
    task_label: int,
) -> _Routes:
    """Send a positive signal from every filter of every producer, with every producer
    cut (zeros otherwise, nothing computed) and normalisation layers as identities, and
    see which inputs of which consumer it reaches: ReLU, pooling, sums, concatenation
    and flattening keep a positive value positive, so no route is missed."""
    layers = [layer for _, layer in producers]
    found: dict[int | None, dict[int, Tensor]] = {}
    seen: dict[int | None, Tensor] = {}

    def watch(key: int | None, channels_first: bool):
        return lambda module, inputs: seen.__setitem__(key, _hits(inputs[0], channels_first))

    norms = {m: _identity for m in model.modules() if isinstance(m, _NORMS)}
    with _eager_tracing(model):
        probe, shapes = _output_shapes(model, layers, example, task_label)
        hooks = [c.register_forward_pre_hook(watch(id(c), isinstance(c, _ConvNd))) for c in layers]
        hooks += [
            linear.register_forward_pre_hook(watch(None, False))
            for linear in filter(None, map(_head_linear, heads))
        ]
        try:
            for source, layer in enumerate(layers):
                filters = layer.weight.shape[0]
                for first in range(0, filters, _ROUTE_CHUNK):
                    batch = min(_ROUTE_CHUNK, filters - first)
                    seen.clear()
                    forwards = {
                        other: _fabricate(
                            other, shapes[id(other)], batch, first if other is layer else None
                        )
                        for other in layers
                    }
                    with _replaced_forwards({**norms, **forwards}):
                        _forward(model, probe.new_zeros(batch, *probe.shape[1:]), task_label)
                    for key, hits in seen.items():
                        if bool(hits.any()):
                            reads = found.setdefault(key, {}).setdefault(
                                source, hits.new_zeros(filters, hits.shape[1])
                            )
                            reads[first : first + batch] = hits
        finally:
            for hook in hooks:
                hook.remove()
    routes = {key: list(reads.items()) for key, reads in found.items()}
    heads_reads = routes.pop(None, [])
    return _Routes(producers, routes, heads_reads)


def filter_routes(
    model: nn.Module, example: Tensor, task_label: int, exclude: Sequence[str] = ()
) -> _Routes:
    """The routes of ``model`` (found once per model and cached), traced with inputs
    shaped like ``example`` through the head of ``task_label``."""
    producers = prunable_layers(model, exclude)
    cached = _ROUTES.get(model)
    if cached is not None and [m for _, m in cached.producers] == [m for _, m in producers]:
        return cached
    for name, layer in producers:
        if isinstance(layer, _ConvNd) and layer.groups != 1:
            raise ValueError(
                f"filter granularity needs ungrouped convolutions; {name} has groups={layer.groups}"
            )
    routes = _trace_routes(model, producers, head_modules(model, exclude), example, task_label)
    _ROUTES[model] = routes
    return routes


def _cut(
    routes: _Routes, consumer: nn.Module | None, weight: Tensor, rows: Tensor
) -> Tensor | None:
    """Mask (shape of ``weight``) of the weights of ``rows`` that read a free filter."""
    free = routes.reads_free(consumer)
    if free is None or not bool(free.any()):
        return None
    mask = rows.unsqueeze(1) & free.unsqueeze(0)
    return mask.view(*mask.shape, *([1] * (weight.dim() - 2))).expand_as(weight)


def _cuts(routes: _Routes, task: int, heads: Sequence[nn.Module]) -> list[tuple[Tensor, Tensor]]:
    """(weight, mask) of every weight of ``task``'s filters and of its ``heads`` that
    reads a free filter: a later task trains those filters, and no task reads a later one."""
    cuts = []
    for _, layer in routes.producers:
        cuts.append(
            (layer.weight, _cut(routes, layer, layer.weight, _filter_owners(layer) == task))
        )
    for head in heads:
        linear = _head_linear(head)
        if linear is not None:
            rows = torch.ones(linear.weight.shape[0], dtype=torch.bool, device=linear.weight.device)
            cuts.append((linear.weight, _cut(routes, None, linear.weight, rows)))
    return [(weight, mask) for weight, mask in cuts if mask is not None]


def _one_pass_problem(routes: _Routes, heads: dict[int, nn.Module]) -> str | None:
    """Why one forward pass would not serve every task exactly: a weight of a task's
    filter (or head) that reads a later task's filter (None when there is none)."""
    for name, layer in routes.producers:
        latest = routes.latest_reader_owner(layer)
        if latest is None:
            continue
        rows = _filter_owners(layer).long()
        weight = layer.weight.detach()
        used = weight.ne(0).flatten(2).any(2) if weight.dim() > 2 else weight.ne(0)
        later = (latest.unsqueeze(0) > rows.unsqueeze(1)) & (rows != FREE).unsqueeze(1)
        if bool((used & later).any()):
            return f"layer {name}: a task's filter reads a later task's filter"
    latest = routes.latest_reader_owner(None)
    for task, head in heads.items():
        linear = _head_linear(head)
        if latest is not None and linear is not None:
            if bool((linear.weight.detach().ne(0) & (latest > task).unsqueeze(0)).any()):
                return f"the head of PackNet task {task} reads a later task's filter"
    return None


def forward_all_tasks(
    model: nn.Module, x: Tensor, exclude: Sequence[str] = ()
) -> dict[int, Tensor]:
    """The outputs of every packed task (by task label) on ``x`` from ONE forward pass
    of a model packed with ``prune_granularity="filter"``: the backbone runs once with
    every task's filters and each task's head reads the shared features. Equal to
    serving each task alone (:func:`task_view`), since no task's filter or head reads a
    later task's filter (checked; a ``ValueError`` if a change outside the plugin broke
    it). Needs shared BatchNorm and biases; the heads must take the same features (as
    in a multi-head network or Avalanche's ``MultiHeadClassifier``)."""
    if FILTERS not in model._buffers:
        raise ValueError(
            "one forward pass serves every task only for a model packed with "
            "prune_granularity='filter'"
        )
    if any(_snapshot_pairs(m) for m in model.modules()):
        raise ValueError(
            "one forward pass needs shared BatchNorm and biases; per-task ones "
            "(per_task_bn, per_task_bias) are served one task at a time (task_view)"
        )
    labels = packed_task_labels(model)
    heads = {
        int(h.packnet_head_task): h for h in head_modules(model, exclude) if HEAD_TASK in h._buffers
    }
    if not heads:
        raise ValueError("no packed task has a head")
    last = max(heads)
    problem = _one_pass_problem(filter_routes(model, x, labels[last], exclude), heads)
    if problem is not None:
        raise ValueError(f"one forward pass would not serve every task exactly: {problem}")
    features: list[Tensor] = []
    hook = heads[last].register_forward_pre_hook(lambda m, i: features.append(i[0]))
    try:
        out = _forward(model, x, labels[last])
    finally:
        hook.remove()
    return {
        labels[task]: out if task == last else head(features[0])
        for task, head in sorted(heads.items())
    }


def _write_back(weight: Tensor, trainable: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """What ``after_update`` needs to keep ``weight`` where not ``trainable``: (weight,
    1 where trainable else 0, frozen bit patterns), as integer views."""
    keep = trainable.to(_BITS[weight.element_size()])
    fixed = weight.detach().view(keep.dtype).masked_fill(trainable, 0)
    return weight, keep, fixed


def _pack_filters(
    model: nn.Module,
    layout: _Layout,
    task: int,
    ratio: float,
    label: int,
    exclude: Sequence[str],
    example: Tensor,
    heads: Sequence[nn.Module],
) -> _Routes:
    """Filter granularity: free ``task``'s weakest filters, then set to 0 its weights
    (and its ``heads``') that read a free filter; returns the model's routes."""
    routes = filter_routes(model, example, label, exclude)
    _prune_filters(layout.prunable, task, ratio)
    with torch.no_grad():
        for weight, mask in _cuts(routes, task, heads):
            weight.masked_fill_(mask, 0.0)
    return routes


def _example_input(strategy: SupervisedTemplate) -> Tensor:
    """One input of the experience being trained (its evaluation transform), batched."""
    x = strategy.experience.dataset.eval()[0][0]
    return x.unsqueeze(0).to(strategy.device)


class PackNetPlugin(SupervisedPlugin):
    """PackNet: pack tasks into one network by iterative pruning and freezing.

    :param prune_ratio: fraction of each task's weights (or filters) to free after its
        training; one value for all tasks or one per PackNet task (k-th ``train`` call).
        A value <= 0 or None leaves that task unpruned. Every value must be < 1.
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
    :param per_task_bias: every task trains the biases of the prunable conv / linear
        layers and keeps its own copy (served like per-task BatchNorm; paper, Table 5).
        Default: biases frozen after task 0.
    :param train_layers: the prunable layers whose free weights a task after the first
        trains (:func:`train_layer_names`: ``all``, ``classifier``, ``linear``,
        ``from:LAYER`` or layer names; paper, Figure 5); elsewhere free weights stay 0
        and free, and the task's weights there are those of earlier tasks.
    :param prune_granularity: ``weight`` (the paper's PackNet) or ``filter``: whole
        output filters (conv) / units (linear) with the smallest L1 norm are freed, and
        the task's weights (and its head's) that read a freed filter are set to 0, so no
        task ever reads a later task's filter and :func:`forward_all_tasks` serves every
        task in one pass (paper, Table 6).
    :param on_stage: ``on_stage(strategy, stage)`` is called for every task that prunes,
        with the model computing that task's function: ``"trained"`` (before pruning),
        ``"pruned"`` (right after pruning, before retraining) and ``"retrained"`` (at
        the end, before freezing); e.g. ``strategy.eval(...)`` there gives the paper's
        Figure 4. The global torch RNG state is restored after each call, so observing
        the stages does not change training.
    """

    def __init__(
        self,
        prune_ratio: float | Sequence[float | None] | None = 0.75,
        retrain_epochs: int = 10,
        retrain_lr: float = 1e-4,
        per_task_bn: bool = False,
        exclude: Sequence[str] = (),
        reset_optimizer: bool = True,
        per_task_bias: bool = False,
        train_layers: str | Sequence[str] = "all",
        prune_granularity: str = "weight",
        on_stage: Callable[[SupervisedTemplate, str], None] | None = None,
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
        if prune_granularity not in GRANULARITIES:
            raise ValueError(
                f"prune_granularity must be one of {', '.join(GRANULARITIES)}, "
                f"got {prune_granularity!r}"
            )
        self.prune_ratio = prune_ratio
        self.retrain_epochs = retrain_epochs
        self.retrain_lr = retrain_lr
        self.per_task_bn = per_task_bn
        self.exclude = tuple(exclude)
        self.reset_optimizer = reset_optimizer
        self.per_task_bias = per_task_bias
        self.train_layers = train_layers if isinstance(train_layers, str) else tuple(train_layers)
        self.prune_granularity = prune_granularity
        self.on_stage = on_stage
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
        # Filter granularity, retrain phase: the routes and the heads whose reads of free
        # filters stay 0.
        self._routes: _Routes | None = None
        self._cut_heads: list[nn.Module] = []

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

    @property
    def training_task(self) -> int | None:
        """PackNet index of the task being trained (None between tasks)."""
        return self._task

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
        trained = set(train_layer_names(model, self.train_layers, self.exclude))
        return _Layout(prunable, heads, bns, shared, trained)

    def _open_task(self, model: nn.Module, layout: _Layout) -> int:
        """Register missing buffers, check the model's state, give FREE weights to the
        new task (in the layers it trains); return its PackNet index."""
        if TASK_LABELS not in model._buffers:
            device = next(model.parameters()).device
            model.register_buffer(TASK_LABELS, torch.zeros(0, dtype=torch.int64, device=device))
        _guard(model)
        task = len(model.packnet_task_labels)
        if task >= FREE:
            raise ValueError(f"PackNet supports at most {FREE} tasks")
        self.ratio(task)  # validates the ratio list length before anything changes
        layers = [layer for _, layer in layout.prunable]
        _check_snapshots(
            layout.bns, BN_SNAPSHOTS, task, "per_task_bn", self.per_task_bn, "BatchNorm"
        )
        _check_snapshots(
            layers, BIAS_SNAPSHOTS, task, "per_task_bias", self.per_task_bias, "biases"
        )
        filters = self.prune_granularity == "filter"
        if task > 0 and filters != (FILTERS in model._buffers):
            other = "weight" if filters else "filter"
            raise ValueError(
                f"model was packed with {other} pruning; use prune_granularity={other!r}"
            )
        if filters:
            model.register_buffer(
                FILTERS, torch.ones((), dtype=torch.bool, device=model.packnet_task_labels.device)
            )
        with torch.no_grad():
            for name, layer in layout.prunable:
                if OWNER not in layer._buffers:
                    layer.register_buffer(
                        OWNER, torch.full_like(layer.weight, FREE, dtype=torch.uint8)
                    )
                if task == 0 or name in layout.trained:
                    layer.packnet_owner.masked_fill_(layer.packnet_owner == FREE, task)
        return task

    def _close_task(
        self, model: nn.Module, layout: _Layout, task: int, label: int, heads: Sequence[nn.Module]
    ) -> None:
        """Freeze ``task``: mark its heads, snapshot BN and biases, record its label."""
        labels = model.packnet_task_labels
        for head in heads:
            head.register_buffer(
                HEAD_TASK, torch.tensor(task, dtype=torch.int64, device=labels.device)
            )
        if self.per_task_bn:
            for bn in layout.bns:
                _append_snapshots(bn, BN_SNAPSHOTS)
        if self.per_task_bias:
            for _, layer in layout.prunable:
                _append_snapshots(layer, BIAS_SNAPSHOTS)
        model.register_buffer(TASK_LABELS, torch.cat([labels, labels.new_tensor([label])]))

    def _set_bn_modes(self) -> None:
        if self._task is not None and self._task > 0 and not self.per_task_bn:
            for bn in self._layout.bns:
                bn.eval()

    def _freeze_plan(self) -> None:
        """Precompute, for the current phase, what the optimizer must not change."""
        self._partial = []
        frozen: list[nn.Parameter] = []
        cuts = {id(w): mask for w, mask in self._filter_cuts()}
        for _, layer in self._layout.prunable:
            trainable = layer.packnet_owner == self._task
            if id(layer.weight) in cuts:
                trainable &= ~cuts.pop(id(layer.weight))
            if not bool(trainable.any()):
                frozen.append(layer.weight)
            elif not bool(trainable.all()):
                self._partial.append(_write_back(layer.weight, trainable))
        for head in self._cut_heads:  # filter granularity: reads of free filters stay 0
            weight = _head_linear(head).weight
            if id(weight) in cuts:
                self._partial.append(_write_back(weight, ~cuts.pop(id(weight))))
        frozen += [p for h in self._layout.heads if HEAD_TASK in h._buffers for p in h.parameters()]
        if self._task > 0:
            own: set[int] = set()
            if self.per_task_bn:
                own |= {id(p) for bn in self._layout.bns for p in bn.parameters()}
            if self.per_task_bias:
                own |= {id(m.bias) for _, m in self._layout.prunable if m.bias is not None}
            frozen += [p for p in self._layout.shared if id(p) not in own]
        self._whole = [(p, p.detach().clone()) for p in frozen]

    def _filter_cuts(self) -> list[tuple[Tensor, Tensor]]:
        """Filter granularity after pruning: masks of the current task's weights (and its
        heads') that read free filters."""
        if self._routes is None or not self._pruned:
            return []
        return _cuts(self._routes, self._task, self._cut_heads)

    def _task_heads(self, strategy: SupervisedTemplate) -> list[nn.Module]:
        """The heads the current task's outputs come from (filter granularity), found by
        one forward pass of an example in eval mode."""
        used: list[nn.Module] = []
        hooks = [
            h.register_forward_pre_hook(lambda m, i: used.append(m)) for h in self._layout.heads
        ]
        try:
            with _eager_tracing(strategy.model):
                _forward(strategy.model, _example_input(strategy), self._label)
        finally:
            for hook in hooks:
                hook.remove()
        return list({id(h): h for h in used}.values())

    def _prune(self, strategy: SupervisedTemplate) -> None:
        """Report the trained task, prune it, report it again (``on_stage``)."""
        self._stage(strategy, "trained")
        if self.prune_granularity == "filter":
            self._cut_heads = self._task_heads(strategy)
            self._routes = _pack_filters(
                strategy.model,
                self._layout,
                self._task,
                self._ratio_now,
                self._label,
                self.exclude,
                _example_input(strategy),
                self._cut_heads,
            )
        else:
            _prune_task(self._layout.prunable, self._task, self._ratio_now)
        self._pruned = True
        self._stage(strategy, "pruned")

    def _stage(self, strategy: SupervisedTemplate, stage: str) -> None:
        """``on_stage(strategy, stage)`` with the global torch RNG state kept."""
        if self.on_stage is None:
            return
        device = torch.device(strategy.device)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.on_stage(strategy, stage)

    def _start_retraining(self, strategy: SupervisedTemplate) -> None:
        self._prune(strategy)
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
        _guard(model).training = True

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
            self._start_retraining(strategy)

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
        if self._ratio_now > 0:
            if not self._pruned:
                self._prune(strategy)
            self._stage(strategy, "retrained")
        for handle in self._hooks.values():
            handle.remove()
        self._close_task(strategy.model, self._layout, self._task, self._label, self._used_heads)
        _guard(strategy.model).training = False
        for group, lr in zip(strategy.optimizer.param_groups, self._saved_lrs):
            group["lr"] = lr
        strategy.train_epochs = self._epochs_orig
        self._task = self._label = self._layout = None
        self._pruned = False
        self._partial, self._whole, self._hooks, self._used_heads = [], [], {}, []
        self._cut_heads = []

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
        self,
        model: nn.Module,
        head: nn.Module | None = None,
        task_label: int = 0,
        example_input: Tensor | None = None,
    ) -> None:
        """Pack the model's current weights as a new task without data (e.g. a pretrained
        ImageNet network): free weights become its own, pruned at its ratio (no
        retraining), then frozen; ``head`` is its (now frozen) head. With filter
        granularity, ``example_input`` (one batch the model accepts) traces its routes."""
        if self._task is not None:
            raise RuntimeError("pack_without_training cannot run while a task is training")
        layout = self._make_layout(model)
        if head is not None and all(head is not h for h in layout.heads):
            raise ValueError(
                "head is not a task head of the model (see PackNetPlugin(exclude=...))"
            )
        task = self._open_task(model, layout)
        ratio = self.ratio(task)
        heads = [] if head is None else [head]
        if ratio > 0 and self.prune_granularity == "filter":
            if example_input is None:
                raise ValueError("prune_granularity='filter' needs example_input to pack")
            _pack_filters(
                model, layout, task, ratio, task_label, self.exclude, example_input, heads
            )
        elif ratio > 0:
            _prune_task(layout.prunable, task, ratio)
        self._close_task(model, layout, task, task_label, heads)

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
        """Bits needed to store the masks of every packed task of ``model``: an owner
        index per prunable weight, or per filter / unit with filter granularity."""
        layers = prunable_layers(model, self.exclude)
        units = sum(prune_units(layer, self.prune_granularity) for _, layer in layers)
        return mask_storage_bits(units, len(packed_task_labels(model)))
