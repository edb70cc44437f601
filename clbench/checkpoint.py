"""Crash-safe checkpoints: what they hold, atomic saving, verified loading, resuming.

A checkpoint is one ``torch.save`` file of tensors and plain Python values, loaded with
``weights_only=True`` (nothing in it can run code), holding a SHA-256 digest of its
content that is checked on load: a truncated file or a flipped bit is reported, never
resumed from. It is written to a temporary file, fsynced and renamed over the previous
one (:func:`clbench.records.atomic_write`), so a crash at any moment leaves the previous
complete checkpoint.

The learner's state (:func:`learner_state`) is explicit, not a pickled strategy: the
model's ``state_dict`` (with the buffers strategies register at run time, e.g. PackNet's
owners), the optimizer, the LR schedulers of ``LRSchedulerPlugin``, Avalanche's clock,
and the ``state_dict()`` of every plugin that has one (strategy state kept outside the
model: Piggyback's masks, EWC's Fisher, LwF's trained tasks, the individual networks,
classifier-only's task counter). RNG states (Python, NumPy, torch, CUDA) are separate
(:func:`rng_state`). The harness's own plugins (accuracy, progress, ...) keep nothing
between tasks and are simply built afresh.

Mid-task checkpoints (:class:`EpochCheckpointPlugin`) resume by replaying the task's
finished epochs without data from the task-boundary state, so every plugin's per-epoch
logic (PackNet's prune before retraining, LwF's warm-up, LR schedules, the clock) runs
exactly as it did, then loading the saved state over it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import LRSchedulerPlugin
from torch import nn

from clbench.errors import UserError
from clbench.records import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"
"""State after the latest finished task (kept when the run completes: ``check`` uses it)."""
EPOCH_CHECKPOINT_NAME = "checkpoint-epoch.pt"
"""State inside the task being trained (``--checkpoint-every``); removed when it ends."""
FORMAT = "clbench-checkpoint/1"
RESTART_HINT = "delete it, or re-run with --restart to start the run over"


def content_digest(obj: Any) -> str:
    """SHA-256 of a nested structure of dicts, lists, tuples, tensors and scalars:
    every tensor's dtype, shape and bytes, every scalar's type and ``repr``."""
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        digest.update(f"dict {len(obj)};".encode())
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{type(obj).__name__} {len(obj)};".encode())
        for item in obj:
            _feed(digest, item)
    else:
        digest.update(f"{type(obj).__name__} {obj!r};".encode())


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return type(obj)({key: _to_cpu(value) for key, value in obj.items()})
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(item) for item in obj)
    return obj


def save_checkpoint(path: Path, content: dict) -> None:
    """Write ``content`` (tensors moved to the CPU) and its digest atomically to ``path``."""
    content = _to_cpu(content)
    blob = {"format": FORMAT, "digest": content_digest(content), "content": content}
    atomic_write(path, lambda handle: torch.save(blob, handle))


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, tensors on ``device``.

    Raises a one-line :class:`UserError` naming the file when it cannot be read, is not
    a checkpoint of this format, or its content does not match its digest.
    """
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # whatever the damage, the same one-line report
        reason = str(err).split(". ")[0].splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"checkpoint {path} is unreadable ({reason}); {RESTART_HINT}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} is not a {FORMAT} checkpoint; {RESTART_HINT}")
    if content_digest(blob["content"]) != blob["digest"]:
        raise UserError(
            f"checkpoint {path} is corrupt (its content does not match its digest); {RESTART_HINT}"
        )
    return blob["content"]


# --------------------------------------------------------------------- learner state
def stateful_plugins(learner) -> dict[str, Any]:
    """The learner's plugins with ``state_dict``/``load_state_dict``, by position and class."""
    return {
        f"{index}.{type(plugin).__name__}": plugin
        for index, plugin in enumerate(learner.plugins)
        if callable(getattr(plugin, "state_dict", None))
    }


def _schedulers(learner) -> list:
    return [p.scheduler for p in learner.plugins if isinstance(p, LRSchedulerPlugin)]


def learner_state(learner) -> dict:
    """Everything of an Avalanche learner that training changes (see the module docstring)."""
    return {
        "model": learner.model.state_dict(),
        "optimizer": learner.optimizer.state_dict(),
        # Avalanche resets the optimizer state on a learner's first ``train`` call only.
        "optimizer_bound": getattr(learner, "optimized_param_id", None) is not None,
        "schedulers": [scheduler.state_dict() for scheduler in _schedulers(learner)],
        "plugins": {key: p.state_dict() for key, p in stateful_plugins(learner).items()},
        "clock": {k: v for k, v in vars(learner.clock).items() if isinstance(v, int)},
    }


def load_model_state(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load ``state_dict`` strictly, first registering the buffers it has and ``model``
    lacks (buffers a strategy registers while it trains, e.g. PackNet's owners)."""
    own = model.state_dict()
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        if key in own:
            continue
        try:
            module = model.get_submodule(prefix)
        except AttributeError:
            continue  # reported by the strict load below
        if not hasattr(module, name):
            module.register_buffer(name, torch.empty_like(value))
    model.load_state_dict(state_dict)


def restore_learner(learner, state: dict) -> None:
    """Load :func:`learner_state` into a learner built from the same configuration."""
    load_model_state(learner.model, state["model"])
    learner.optimizer.load_state_dict(state["optimizer"])
    if state["optimizer_bound"] and getattr(learner, "optimized_param_id", None) is None:
        learner.optimized_param_id = dict(learner.model.named_parameters())
    schedulers = _schedulers(learner)
    if len(schedulers) != len(state["schedulers"]):
        raise ValueError("the learner's LR schedulers differ from the checkpoint's")
    for scheduler, scheduler_state in zip(schedulers, state["schedulers"]):
        scheduler.load_state_dict(scheduler_state)
    plugins = stateful_plugins(learner)
    if set(plugins) != set(state["plugins"]):
        raise ValueError(
            f"the learner's plugins ({', '.join(plugins)}) differ from the checkpoint's "
            f"({', '.join(state['plugins'])})"
        )
    for key, plugin in plugins.items():
        plugin.load_state_dict(state["plugins"][key])
    vars(learner.clock).update(state["clock"])


def restore_checkpointed_learner(learner, state: dict, path: Path) -> None:
    """:func:`restore_learner`; a state that does not fit the learner (another version
    of the strategy or of the harness wrote it) is a one-line :class:`UserError`."""
    try:
        restore_learner(learner, state)
    except (RuntimeError, ValueError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"checkpoint {path} does not fit this run ({reason}); {RESTART_HINT}"
        ) from None


def rng_state() -> dict:
    """The global RNG states of Python, NumPy, torch and (when present) CUDA."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class EpochCheckpointPlugin(SupervisedPlugin):
    """Mid-task checkpoints: calls ``save(epochs_done)`` every ``every`` epochs of a task
    (0: never; not after the task's last epoch, the task-boundary checkpoint follows).

    With ``pending`` set (a saved epoch state: ``epochs_done``, ``learner``, ``rng``), the
    next training experience resumes from it: its first ``epochs_done`` epochs run
    without data (every plugin's per-epoch logic still runs), then the saved learner
    state and RNG states are loaded and training continues with the data. The learner
    must hold the task-boundary state the task started from.

    It must come after every plugin whose state it saves, so that it sees their
    end-of-epoch state (the harness puts it last; Avalanche's clock always follows).
    """

    def __init__(self, every: int, save: Callable[[int], None]) -> None:
        super().__init__()
        self.every = every
        self.save = save
        self.pending: dict | None = None
        self._dataloader = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.pending is not None:
            self._dataloader, strategy.dataloader = strategy.dataloader, []

    def after_training_epoch(self, strategy, **kwargs) -> None:
        done = strategy.clock.train_exp_epochs + 1
        if self.pending is not None:
            if done == self.pending["epochs_done"]:
                restore_learner(strategy, self.pending["learner"])
                set_rng_state(self.pending["rng"])
                strategy.dataloader, self._dataloader = self._dataloader, None
                self.pending = None
            return
        if self.every and done % self.every == 0 and done < strategy.train_epochs:
            self.save(done)

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.pending is not None:
            raise RuntimeError(
                f"the task ended before epoch {self.pending['epochs_done']} of its checkpoint"
            )
