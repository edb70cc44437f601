"""Serve every task of a packed model file: ``load_packed(FILE)`` -> :class:`PackedModel`.

Plain torch (and torchvision for the preprocessing): no Avalanche, nothing of the
harness's training code. The networks are rebuilt from :mod:`clbench.models`' backbones
(on the meta device, then given the file's tensors without a copy) with one linear head
per task.

How each serving scheme (``meta["serving"]``) gives task ``t`` its function:

* ``shared`` (fine-tuning, LwF, EWC, joint, classifier only): the one backbone, head t;
* ``individual``: backbone t, head t;
* ``packnet``: the backbone's weights owned by tasks <= t (the others 0), task t's
  BatchNorm and biases where they are per task, head t;
* ``piggyback``: the backbone's weights times task t's binary mask (the backbone as it
  is for a task without a mask), head t.

The masked weights are materialised when the served task changes, never per forward
pass: serving the same task again costs nothing extra, and any task is served correctly
whatever was served before.

Tensors of a file (names): ``backbone.<param>`` (``backbones.<t>.<param>`` for
``individual``): parameters and BatchNorm running statistics; ``heads.<t>.weight`` /
``.bias``; PackNet's ``packnet.owner.<layer>`` (each weight's owning task, packed at
``meta["packnet"]["bits"]`` bits by :mod:`clbench.packed.bits`; one per output filter /
unit when ``meta["packnet"]["granularity"]`` is ``filter``), with per-task BatchNorm
``packnet.bn.<layer>.<weight|bias|running_mean|running_var>`` and with per-task biases
``packnet.bias.<layer>.bias`` (one row per task but the last, whose values are the
backbone's); Piggyback's
``piggyback.mask.<t>.<layer>`` (1 bit per weight).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from clbench.core.errors import UserError
from clbench.models import build_backbone
from clbench.packed.bits import packed_size, unpack
from clbench.packed.fileformat import read_packed
from clbench.packed.preprocess import batch, build_preprocessing, read_image

SERVING = ("shared", "individual", "packnet", "piggyback")
BN_ATTRS = ("weight", "bias", "running_mean", "running_var")
PREDICT_BATCH = 64


def serving_state(module: nn.Module) -> dict[str, Tensor]:
    """What serving ``module`` needs of its state: parameters and BatchNorm running
    statistics (not ``num_batches_tracked``, nor any training-time buffer)."""
    wanted = {name for name, _ in module.named_parameters()}
    wanted |= {
        f"{name}.{stat}" if name else stat
        for name, m in module.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for stat in ("running_mean", "running_var")
        if getattr(m, stat) is not None
    }
    return {k: v for k, v in module.state_dict().items() if k in wanted}


def prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of ``tensors`` under ``prefix.``, with the prefix removed."""
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _backbone(arch: str, in_channels: int, state: dict[str, Tensor]) -> nn.Module:
    """``arch``'s backbone holding ``state`` (no copy); exactly its serving state."""
    with torch.device("meta"):
        net, _ = build_backbone(arch, in_channels)
    expected = set(serving_state(net))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"the {arch} backbone misses {missing[:3]}, has extra {extra[:3]}")
    full = dict(state)
    for key in net.state_dict():
        if key.endswith("num_batches_tracked"):
            device = next(iter(state.values())).device
            full[key] = torch.zeros((), dtype=torch.int64, device=device)
    net.load_state_dict(full, assign=True)
    return net


def _head(tensors: dict[str, Tensor], task: int) -> nn.Linear:
    weight, bias = tensors[f"heads.{task}.weight"], tensors[f"heads.{task}.bias"]
    with torch.device("meta"):
        head = nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": bias}, assign=True)
    return head


class _PackNetView(nn.Module):
    """Materialises PackNet task t: weights owned by tasks <= t (others 0), task t's
    BatchNorm and bias rows; the last task's are the file's values as they are."""

    def __init__(
        self, backbone: nn.Module, meta: dict, tensors: dict[str, Tensor], tasks: int
    ) -> None:
        super().__init__()
        self.last = tasks - 1
        self.layers = [backbone.get_submodule(name) for name in meta["layers"]]
        width, per_filter = meta["bits"], meta.get("granularity", "weight") == "filter"
        for i, (name, layer) in enumerate(zip(meta["layers"], self.layers)):
            weight = layer.weight
            self.register_buffer(f"live{i}", weight.detach().clone(), persistent=False)
            shape = (weight.shape[0], *[1] * (weight.dim() - 1)) if per_filter else weight.shape
            if width:
                stream = tensors[f"packnet.owner.{name}"]
                owner = unpack(stream, math.prod(shape), width).view(shape)
            else:
                owner = torch.zeros(shape, dtype=torch.uint8, device=weight.device)
            if int(owner.max()) > self.last:
                raise ValueError(f"layer {name} has owners beyond the {tasks} tasks")
            self.register_buffer(f"owner{i}", owner, persistent=False)
        self.snapshots: list[tuple[nn.Module, str]] = []
        """(module, attribute) of each per-task tensor; buffers ``snap<j>`` hold its rows
        of the older tasks, ``snap<j>_live`` its live values."""
        per_task = [(name, "bn", BN_ATTRS) for name in meta["per_task_bn"]]
        per_task += [(name, "bias", ("bias",)) for name in meta.get("per_task_bias", [])]
        for name, kind, attrs in per_task:
            module = backbone.get_submodule(name)
            for attr in attrs:
                live, rows = getattr(module, attr), tensors[f"packnet.{kind}.{name}.{attr}"]
                if rows.shape != (self.last, *live.shape):
                    raise ValueError(f"packnet.{kind}.{name}.{attr} is not one row per older task")
                j = len(self.snapshots)
                self.register_buffer(f"snap{j}", rows, persistent=False)
                self.register_buffer(f"snap{j}_live", live.detach().clone(), persistent=False)
                self.snapshots.append((module, attr))

    @torch.no_grad()
    def show(self, task: int) -> None:
        for i, layer in enumerate(self.layers):
            live, owner = getattr(self, f"live{i}"), getattr(self, f"owner{i}")
            torch.where(owner <= task, live, live.new_zeros(()), out=layer.weight)
        for j, (module, attr) in enumerate(self.snapshots):
            value = getattr(self, f"snap{j}_live" if task == self.last else f"snap{j}")
            getattr(module, attr).copy_(value if task == self.last else value[task])


class _PiggybackView(nn.Module):
    """Materialises Piggyback task t: the fixed weights times its mask (as they are for
    a task without a mask)."""

    def __init__(self, backbone: nn.Module, meta: dict, tensors: dict[str, Tensor]) -> None:
        super().__init__()
        self.layers = [backbone.get_submodule(name) for name in meta["layers"]]
        self.masked = set(meta["masked"])
        for i, layer in enumerate(self.layers):
            self.register_buffer(f"live{i}", layer.weight.detach().clone(), persistent=False)
            for task in self.masked:
                stream = tensors[f"piggyback.mask.{task}.{meta['layers'][i]}"]
                if stream.numel() != packed_size(layer.weight.numel(), 1):
                    raise ValueError(f"the mask of task {task} does not fit {meta['layers'][i]}")
                self.register_buffer(f"mask{task}_{i}", stream, persistent=False)

    @torch.no_grad()
    def show(self, task: int) -> None:
        for i, layer in enumerate(self.layers):
            live = getattr(self, f"live{i}")
            if task not in self.masked:
                layer.weight.copy_(live)
                continue
            mask = unpack(getattr(self, f"mask{task}_{i}"), live.numel(), 1).view(live.shape)
            torch.mul(live, mask.to(live.dtype), out=layer.weight)


class PackedModel(nn.Module):
    """Every task of a packed model file; see the module docstring.

    ``model(x, task)`` returns task ``task``'s logits (a task name or index) for a batch
    of preprocessed inputs; ``model.predict(task, images)`` the top classes of image
    files or PIL images, preprocessed as the task's evaluation data was.
    """

    def __init__(self, meta: dict, tensors: dict[str, Tensor]) -> None:
        super().__init__()
        self.meta = meta
        self.tasks: list[str] = [task["name"] for task in meta["tasks"]]
        count, serving = len(self.tasks), meta["serving"]
        arch, channels = meta["arch"], meta["in_channels"]
        prefixes = (
            [f"backbones.{t}" for t in range(count)] if serving == "individual" else ["backbone"]
        )
        self.backbones = nn.ModuleList(
            _backbone(arch, channels, prefixed(tensors, p)) for p in prefixes
        )
        self.heads = nn.ModuleList(_head(tensors, t) for t in range(count))
        for t, task in enumerate(meta["tasks"]):
            if self.heads[t].out_features != len(task["classes"]):
                raise ValueError(f"head {t} has not one output per class of {task['name']}")
        self.view: _PackNetView | _PiggybackView | None = None
        if serving == "packnet":
            self.view = _PackNetView(self.backbones[0], meta["packnet"], tensors, count)
        elif serving == "piggyback":
            self.view = _PiggybackView(self.backbones[0], meta["piggyback"], tensors)
        self._preprocess = [build_preprocessing(task["preprocessing"]) for task in meta["tasks"]]
        self.current: int | None = None
        """Index of the task whose weights are materialised (None: none yet)."""
        self.requires_grad_(False)
        self.eval()

    def task_index(self, task: int | str) -> int:
        """Index of ``task`` (its name, or its index); unknown is a one-line error."""
        if isinstance(task, str) and task in self.tasks:
            return self.tasks.index(task)
        if isinstance(task, int) and not isinstance(task, bool) and 0 <= task < len(self.tasks):
            return task
        raise UserError(f"unknown task {task!r}: the model serves {', '.join(self.tasks)}")

    def classes(self, task: int | str) -> list[str]:
        """Class names of ``task``, in the order of its head's outputs."""
        return list(self.meta["tasks"][self.task_index(task)]["classes"])

    def serve(self, task: int | str) -> int:
        """Materialise ``task``'s weights unless they already are; return its index."""
        index = self.task_index(task)
        if index != self.current:
            if self.view is not None:
                self.view.show(index)
            self.current = index
        return index

    def forward(self, x: Tensor, task: int | str) -> Tensor:
        index = self.serve(task)
        backbone = self.backbones[index if len(self.backbones) > 1 else 0]
        return self.heads[index](backbone(x))

    def preprocess(self, task: int | str, images: Sequence[str | Path | Image.Image]) -> Tensor:
        """The batch of ``images`` (files or PIL images) with ``task``'s preprocessing."""
        function = self._preprocess[self.task_index(task)]
        decoded = [i if isinstance(i, Image.Image) else read_image(i) for i in images]
        return batch(decoded, function)

    @torch.no_grad()
    def predict(
        self, task: int | str, images: Sequence[str | Path | Image.Image], top: int = 5
    ) -> list[list[tuple[str, float]]]:
        """Per image, the ``top`` most probable classes of ``task`` (all of them when it
        has fewer) as (class name, softmax probability), most probable first."""
        index = self.task_index(task)
        names = self.classes(index)
        device = self.heads[index].weight.device
        results = []
        for start in range(0, len(images), PREDICT_BATCH):
            x = self.preprocess(index, images[start : start + PREDICT_BATCH]).to(device)
            probabilities = self(x, index).float().softmax(dim=1)
            values, classes = probabilities.topk(min(top, len(names)), dim=1)
            results += [
                [(names[c], float(p)) for p, c in zip(row_p.tolist(), row_c.tolist())]
                for row_p, row_c in zip(values, classes)
            ]
        return results


def load_packed(path: str | Path, device: str | torch.device = "cpu") -> PackedModel:
    """The packed model in the file ``path`` (written by ``clbench export``), on
    ``device``. A file that is not one, is damaged or does not fit this harness's
    architectures is a one-line :class:`~clbench.core.errors.UserError`."""
    tensors, meta = read_packed(Path(path), device)
    try:
        if meta.get("serving") not in SERVING:
            raise ValueError(f"unknown serving scheme {meta.get('serving')!r}")
        return PackedModel(meta, tensors)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise UserError(f"packed model {path} cannot be served: {reason}") from None
