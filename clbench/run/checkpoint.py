"""Crash-safe checkpoints: what they hold, atomic saving, verified loading, resuming.

A checkpoint is one ``torch.save`` file of tensors and plain Python values, loaded with
``weights_only=True`` (nothing in it can run code), holding a SHA-256 digest of its
content that is checked on load: a truncated file or a flipped bit is reported, never
resumed from. It is written to a temporary file, fsynced and renamed over the previous
one (:func:`clbench.core.record.atomic_write`), so a crash at any moment leaves the previous
complete checkpoint.

What a checkpoint holds of the learner is :mod:`clbench.plugins.learner_state`;
mid-task checkpoints are taken and resumed by
:class:`clbench.plugins.epoch_checkpoint.EpochCheckpointPlugin`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import torch

from clbench.core.errors import UserError
from clbench.core.files import atomic_write
from clbench.core.record import RecordError, RunRecord
from clbench.plugins.learner_state import restore_learner

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


Kind = Literal["task", "epoch"]
"""``task``: :data:`CHECKPOINT_NAME`'s content; ``epoch``: :data:`EPOCH_CHECKPOINT_NAME`'s."""


def load_checkpoint(path: Path, device: torch.device, kind: Kind = "task") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, tensors on ``device``.

    Raises a one-line :class:`UserError` naming the file when it cannot be read, is not
    a checkpoint of this format, its content does not match its digest, or the content
    is not that of a ``kind`` checkpoint (:func:`content_problem`).
    """
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # whatever the damage, the same one-line report
        reason = str(err).split(". ")[0].splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"checkpoint {path} is unreadable ({reason}); {RESTART_HINT}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} is not a {FORMAT} checkpoint; {RESTART_HINT}")
    if not isinstance(blob.get("digest"), str) or "content" not in blob:
        raise UserError(f"checkpoint {path} has no digest or no content; {RESTART_HINT}")
    if content_digest(blob["content"]) != blob["digest"]:
        raise UserError(
            f"checkpoint {path} is corrupt (its content does not match its digest); {RESTART_HINT}"
        )
    problem = content_problem(blob["content"], kind)
    if problem is not None:
        raise UserError(f"checkpoint {path} is damaged: {problem}; {RESTART_HINT}")
    return blob["content"]


def _count(value: Any) -> bool:
    """A non-negative integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _learner_problem(state: Any) -> str | None:
    """What is wrong with a :func:`learner_state`, or None."""
    kinds = {
        "model": dict,
        "optimizer": dict,
        "optimizer_bound": bool,
        "schedulers": list,
        "plugins": dict,
        "clock": dict,
    }
    if not isinstance(state, dict):
        return "'learner' is not an object"
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind):
            return f"'learner.{key}' is missing or not a {kind.__name__}"
    if not all(isinstance(t, torch.Tensor) for t in state["model"].values()):
        return "'learner.model' holds values that are not tensors"
    return None


def _rng_problem(state: Any) -> str | None:
    """What is wrong with a :func:`rng_state`, or None."""
    if not isinstance(state, dict):
        return "'rng' is not an object"
    python, numpy = state.get("python"), state.get("numpy")
    if not isinstance(python, tuple | list) or len(python) != 3:
        return "'rng.python' is not a Python RNG state"
    if not (isinstance(numpy, list) and len(numpy) == 5 and isinstance(numpy[1], torch.Tensor)):
        return "'rng.numpy' is not a NumPy RNG state"
    if not isinstance(state.get("torch"), torch.Tensor):
        return "'rng.torch' is not a tensor"
    return None


def _probe_problem(probes: Any, tasks: int) -> str | None:
    """What is wrong with the fingerprint probes, or None."""
    if not isinstance(probes, list):
        return "'probes' is not a list"
    for probe in probes:
        if not isinstance(probe, dict):
            return "'probes' holds an entry that is not an object"
        if not (_count(probe.get("task")) and probe["task"] < tasks):
            return "a probe's 'task' is not a task index"
        if not (_count(probe.get("after")) and probe["after"] < tasks):
            return "a probe's 'after' is not a task index"
        if not all(isinstance(probe.get(k), torch.Tensor) for k in ("inputs", "labels", "outputs")):
            return "a probe's 'inputs', 'labels' or 'outputs' is not a tensor"
        if not isinstance(probe.get("sha256"), str):
            return "a probe's 'sha256' is not a string"
    return None


def _stream_problem(stream: Any) -> str | None:
    """What is wrong with a task checkpoint's stream description, or None."""
    if not isinstance(stream, dict):
        return "'stream' is not an object"
    names, heads = stream.get("task_names"), stream.get("head_sizes")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return "'stream.task_names' is not a non-empty list of names"
    if not isinstance(heads, list) or len(heads) != len(names) or not all(map(_count, heads)):
        return "'stream.head_sizes' is not one class count per task"
    if not (_count(stream.get("channels")) and _count(stream.get("image_size"))):
        return "'stream.channels' or 'stream.image_size' is not a count"
    if not isinstance(stream.get("first_task_pretrained"), bool):
        return "'stream.first_task_pretrained' is not a bool"
    return None


def content_problem(content: Any, kind: Kind) -> str | None:
    """The first structural problem of a checkpoint's content, or None: every part
    :func:`save_checkpoint`'s callers put in, of the right type, and step counts a run
    can reach (a task checkpoint's record times every step done)."""
    if not isinstance(content, dict):
        return "its content is not an object"
    if not isinstance(content.get("config"), dict):
        return "'config' is missing or not an object"
    problem = _learner_problem(content.get("learner")) or _rng_problem(content.get("rng"))
    if problem:
        return problem
    if kind == "epoch":
        if not _count(content.get("step")):
            return "'step' is not a step count"
        if not (_count(content.get("epochs_done")) and content["epochs_done"] >= 1):
            return "'epochs_done' is not a positive count"
        if not _count(content.get("images")):
            return "'images' is not a count"
        seconds = content.get("train_seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            return "'train_seconds' is not a duration"
        return None
    problem = _stream_problem(content.get("stream"))
    if problem:
        return problem
    tasks = len(content["stream"]["task_names"])
    steps = content.get("steps_done")
    if not (_count(steps) and 1 <= steps <= tasks):
        return f"'steps_done' is not a step count from 1 to the stream's {tasks} tasks"
    try:
        record = RunRecord.from_dict(content.get("record"), "'record'")
    except RecordError as err:
        return str(err)
    if len(record.train_seconds) != steps or len(record.tasks) != tasks:
        return f"'record' holds {len(record.train_seconds)} timed steps for {steps} steps done"
    return _probe_problem(content.get("probes"), tasks)


def restore_checkpointed_learner(
    learner, state: dict, path: Path, evaluation_only: bool = False
) -> None:
    """:func:`restore_learner`; a state that does not fit the learner (another version
    of the strategy or of the harness wrote it) is a one-line :class:`UserError`."""
    try:
        restore_learner(learner, state, evaluation_only)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"checkpoint {path} does not fit this run ({reason}); {RESTART_HINT}"
        ) from None
