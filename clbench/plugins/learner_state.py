"""The state of an Avalanche learner that checkpoints save and restore.

Explicit, not a pickled strategy: the model's ``state_dict`` (with the buffers
strategies register at run time, e.g. PackNet's owners), the optimizer, the LR
schedulers of ``LRSchedulerPlugin``, Avalanche's clock, and the ``state_dict()`` of
every plugin that has one (strategy state kept outside the model: Piggyback's masks,
EWC's Fisher, LwF's trained tasks, the individual networks, classifier-only's task
counter). RNG states (Python, NumPy, torch, CUDA) are separate (:func:`rng_state`). The
harness's own plugins (accuracy, progress, ...) keep nothing between tasks and are
simply built afresh.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from avalanche.training.plugins import LRSchedulerPlugin
from torch import nn


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


def restore_learner(learner, state: dict, evaluation_only: bool = False) -> None:
    """Load :func:`learner_state` into a learner built from the same configuration
    (``evaluation_only``: a learner built to evaluate may lack the plugins that fed its
    training data; the checkpoint's states of those are not needed and skipped)."""
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
    missing = set(state["plugins"]) - set(plugins) if evaluation_only else set()
    if set(plugins) != set(state["plugins"]) - missing:
        raise ValueError(
            f"the learner's plugins ({', '.join(plugins)}) differ from the checkpoint's "
            f"({', '.join(state['plugins'])})"
        )
    for key, plugin in plugins.items():
        plugin.load_state_dict(state["plugins"][key])
    vars(learner.clock).update(state["clock"])


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
