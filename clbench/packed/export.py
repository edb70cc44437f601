"""``export``: a complete run's final checkpoint as one packed model file.

The file holds exactly what serving every task needs, at the size the run's ``storage``
figure counts (:mod:`strategies.registry`): the backbone once (one per task for
``individual``), every head, PackNet's owner indices at ceil(log2 T) bits per prunable
weight (per output filter / unit with filter granularity) and its per-task BatchNorm and
bias rows, Piggyback's 1-bit masks; plus the description
(architecture, tasks and their classes and preprocessing, strategy, harness version).
The tensors' layout is :mod:`clbench.packed.model`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

import clbench
from clbench.core.config import RunConfig
from clbench.core.errors import UserError
from clbench.core.record import RunRecord
from clbench.core.storage import index_bits
from clbench.models import build_backbone, maskable_layers
from clbench.packed.bits import pack
from clbench.packed.fileformat import SUFFIX, write_packed
from clbench.packed.model import BN_ATTRS, serving_state
from clbench.packed.tasks import task_descriptions
from clbench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint
from strategies.individual import IndividualNetworksPlugin
from strategies.packnet import BIAS_SNAPSHOTS, BN_SNAPSHOTS, FREE, OWNER, TASK_LABELS
from strategies.piggyback import PiggybackPlugin
from strategies.registry import STRATEGIES

SERVING = {"packnet": "packnet", "piggyback": "piggyback", "individual": "individual"}
"""Strategy -> serving scheme; every other strategy serves one shared network."""
DEFAULT_NAME = "packed" + SUFFIX


@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote: the file, its size, the tensors' bytes in it and the run's
    storage figure (``record["storage"]["total_bytes"]``)."""

    path: Path
    file_bytes: int
    tensor_bytes: int
    storage_bytes: int
    notes: list[str]


def _complete_run(run_dir: Path) -> tuple[RunRecord, dict]:
    """The record and final checkpoint content of a complete run (else a one-line error)."""
    record = RunRecord.in_folder(run_dir)
    if record.status != "complete":
        raise UserError(
            f"run {run_dir} is not complete (status {record.status}): finish it first "
            "(run the same command again)"
        )
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}: the run's final state is needed")
    content = load_checkpoint(path, torch.device("cpu"))
    if content["config"] != record.config:
        raise UserError(f"{path} and {record.path} belong to different runs")
    steps = 1 if STRATEGIES[record.strategy].trains_jointly else len(record.tasks)
    if content["steps_done"] != steps:
        raise UserError(f"checkpoint {path} is not the final one ({content['steps_done']} steps)")
    return record, content


def _network(state: dict[str, Tensor], names: list[str], prefix: str, tasks: range) -> dict:
    """The serving tensors of a multi-head network's state dict: its backbone under
    ``prefix`` and the heads of ``tasks``."""
    tensors = {f"{prefix}.{n}": state[f"backbone.{n}"] for n in names}
    for t in tasks:
        tensors |= {f"heads.{t}.{p}": state[f"heads.{t}.{p}"] for p in ("weight", "bias")}
    return tensors


def _snapshot_rows(
    state: dict[str, Tensor], snapshots: dict[str, str], tasks: int, kind: str
) -> tuple[dict, list[str]]:
    """``packnet.<kind>.<module>.<attr>``: the per-task rows of every module holding
    ``snapshots`` (attribute -> buffer), but the last task's (the live values), and the
    modules' names."""
    suffix = "." + next(iter(snapshots.values()))
    modules = sorted(k[len("backbone.") : -len(suffix)] for k in state if k.endswith(suffix))
    tensors = {}
    for module in modules:
        for attr, buffer in snapshots.items():
            rows, live = state[f"backbone.{module}.{buffer}"], state[f"backbone.{module}.{attr}"]
            if rows.shape[0] != tasks or not torch.equal(rows[-1], live):
                raise UserError(f"the checkpoint's per-task {kind} of {module} is inconsistent")
            tensors[f"packnet.{kind}.{module}.{attr}"] = rows[:-1]
    return tensors, modules


def _unit_owners(owner: Tensor, layer: str) -> Tensor:
    """The owner of each output filter / unit of a filter-granularity layer."""
    units = owner.flatten(1)[:, 0]
    if not torch.equal(owner.flatten(1), units[:, None].expand(-1, owner[0].numel())):
        raise UserError(f"the checkpoint's PackNet owners of {layer} are not per filter")
    return units


def _packnet(
    state: dict[str, Tensor], tasks: int, layers: list[str], granularity: str
) -> tuple[dict, dict]:
    """PackNet's owners (packed: one per weight, or per filter with ``granularity``
    "filter") and per-task BatchNorm and bias rows, and their description.

    Weights no task owns (freed by the last pruning) are exactly 0 and stay 0 for every
    task; they are stored as the last task's, so T tasks need ceil(log2 T) bits."""
    labels = state.get(TASK_LABELS)
    if labels is None or labels.tolist() != list(range(tasks)):
        raise UserError("the checkpoint's PackNet state does not pack the run's tasks in order")
    owned = sorted(k[len("backbone.") : -len(OWNER) - 1] for k in state if k.endswith(OWNER))
    if owned != sorted(layers):
        raise UserError("the checkpoint's PackNet owners do not cover the backbone's layers")
    width, tensors = index_bits(tasks), {}
    for layer in layers:
        owner, weight = state[f"backbone.{layer}.{OWNER}"], state[f"backbone.{layer}.weight"]
        free = owner == FREE
        if bool(weight[free].any()) or int(owner.masked_fill(free, 0).max()) >= tasks:
            raise UserError(f"the checkpoint's PackNet owners of {layer} are inconsistent")
        owner = owner.masked_fill(free, tasks - 1)
        if granularity == "filter":
            owner = _unit_owners(owner, layer)
        if width:
            tensors[f"packnet.owner.{layer}"] = pack(owner, width)
    bn_rows, bns = _snapshot_rows(state, {a: BN_SNAPSHOTS[a] for a in BN_ATTRS}, tasks, "bn")
    bias_rows, biased = _snapshot_rows(state, BIAS_SNAPSHOTS, tasks, "bias")
    description = {
        "bits": width,
        "granularity": granularity,
        "layers": layers,
        "per_task_bn": bns,
        "per_task_bias": biased,
    }
    return tensors | bn_rows | bias_rows, description


def _plugin_state(content: dict, plugin: type) -> dict:
    states = content["learner"]["plugins"]
    found = [s for key, s in states.items() if key.split(".", 1)[1] == plugin.__name__]
    if len(found) != 1:
        raise UserError(f"the checkpoint holds no {plugin.__name__} state")
    return found[0]


def _piggyback(content: dict, tasks: int, layers: list[str]) -> tuple[dict, dict]:
    """Piggyback's 1-bit masks as the plugin packed them, and their description."""
    state = _plugin_state(content, PiggybackPlugin)
    masks, unmasked = state["masks"], set(state["unmasked"])
    if set(masks) | unmasked != set(range(tasks)):
        raise UserError("the checkpoint's Piggyback masks do not cover the run's tasks")
    tensors = {}
    for task, by_layer in masks.items():
        if sorted(by_layer) != sorted(f"backbone.{layer}" for layer in layers):
            raise UserError(f"the checkpoint's Piggyback mask of task {task} is incomplete")
        tensors |= {
            f"piggyback.mask.{task}.{layer}": by_layer[f"backbone.{layer}"] for layer in layers
        }
    return tensors, {"layers": layers, "masked": sorted(masks)}


def backbone_layout(arch: str, in_channels: int) -> tuple[list[str], list[str]]:
    """Names of ``arch``'s serving state (:func:`serving_state`) and of its conv and
    linear layers (built on the meta device: no memory, no initialisation)."""
    with torch.device("meta"):
        backbone, _ = build_backbone(arch, in_channels)
    layer_of = {id(m): n for n, m in backbone.named_modules()}
    return list(serving_state(backbone)), [layer_of[id(m)] for m in maskable_layers(backbone)]


def pack_run(content: dict) -> tuple[dict, dict]:
    """The tensors of the packed file of a final checkpoint's ``content`` and the serving
    part of its description."""
    config = RunConfig(**content["config"])
    tasks = len(content["stream"]["task_names"])
    state = content["learner"]["model"]
    names, layers = backbone_layout(config.arch, content["stream"]["channels"])
    serving = SERVING.get(config.strategy, "shared")
    if serving == "individual":
        networks = _plugin_state(content, IndividualNetworksPlugin)["networks"]
        if set(networks) != set(range(tasks)):
            raise UserError("the checkpoint's individual networks do not cover the run's tasks")
        tensors = {}
        for t in range(tasks):
            tensors |= _network(networks[t], names, f"backbones.{t}", range(t, t + 1))
        return tensors, {"serving": serving}
    tensors = _network(state, names, "backbone", range(tasks))
    if serving == "packnet":
        granularity = config.options.get("prune_granularity", "weight")
        extra, description = _packnet(state, tasks, layers, granularity)
    elif serving == "piggyback":
        extra, description = _piggyback(content, tasks, layers)
    else:
        return tensors, {"serving": serving}
    return tensors | extra, {"serving": serving, serving: description}


def export_run(run_dir: Path, output: Path | None = None, data_root: str | None = None) -> Exported:
    """Write the packed model of the complete run in ``run_dir`` to ``output`` (default
    ``run_dir/packed.safetensors``); class names are read from ``data_root`` (default:
    the run's)."""
    record, content = _complete_run(run_dir)
    config = RunConfig(**content["config"])
    stream = content["stream"]
    try:
        tensors, serving = pack_run(content)
    except KeyError as err:
        raise UserError(f"checkpoint of {run_dir} lacks {err} ({config.arch} expected)") from None
    root = Path(data_root if data_root is not None else config.data_root)
    tasks, notes = task_descriptions(
        config.stream,
        stream["task_names"],
        stream["head_sizes"],
        stream["image_size"],
        stream["channels"],
        config.arch,
        bool(config.pretrained),
        root,
    )
    meta = {
        **serving,
        "strategy": config.strategy,
        "arch": config.arch,
        "in_channels": stream["channels"],
        "input": [stream["channels"], stream["image_size"], stream["image_size"]],
        "tasks": tasks,
        "run": {
            "stream": config.stream,
            "run_id": config.run_id,
            "seed": config.seed,
            "options": config.options,
            "precision": config.precision,
            "pretrained": config.pretrained,
        },
        "storage": record.storage,
        "harness": {
            "version": clbench.__version__,
            "git_commit": record.environment.get("git_commit"),
        },
    }
    output = output or run_dir / DEFAULT_NAME
    write_packed(output, tensors, meta)
    return Exported(
        output,
        output.stat().st_size,
        sum(t.numel() * t.element_size() for t in tensors.values()),
        int(record.storage["total_bytes"]),
        notes,
    )
