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
from typing import Any

import torch

from clbench.core.errors import UserError
from clbench.core.files import atomic_write
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


def restore_checkpointed_learner(
    learner, state: dict, path: Path, evaluation_only: bool = False
) -> None:
    """:func:`restore_learner`; a state that does not fit the learner (another version
    of the strategy or of the harness wrote it) is a one-line :class:`UserError`."""
    try:
        restore_learner(learner, state, evaluation_only)
    except (RuntimeError, ValueError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"checkpoint {path} does not fit this run ({reason}); {RESTART_HINT}"
        ) from None
