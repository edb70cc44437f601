"""The packed-model file: a safetensors file (tensors and string metadata only; nothing
in it can run code when it is read) whose metadata holds the description of the model
as JSON and a SHA-256 digest of that description and of every tensor.

``__metadata__`` of the safetensors header: ``format`` (:data:`FORMAT`), ``meta`` (the
JSON description, see :mod:`clbench.packed.model`) and ``digest``. Reading checks the
file is a regular file, parses, has this format and matches its digest: a truncated,
tampered or foreign file is a one-line :class:`~clbench.core.errors.UserError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import Tensor

from clbench.core.errors import UserError
from clbench.core.files import atomic_write

FORMAT = "clbench-packed/1"
SUFFIX = ".safetensors"


def content_digest(meta_json: str, tensors: dict[str, Tensor]) -> str:
    """SHA-256 of the description and of every tensor's name, dtype, shape and bytes
    (in name order)."""
    digest = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f";{name} {tensor.dtype} {tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def write_packed(path: Path, tensors: dict[str, Tensor], meta: dict) -> None:
    """Write ``tensors`` (moved to the CPU) and the description ``meta`` to ``path``
    atomically."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    meta_json = json.dumps(meta, sort_keys=True, allow_nan=False)
    header = {"format": FORMAT, "meta": meta_json, "digest": content_digest(meta_json, tensors)}
    blob = save(tensors, metadata=header)
    atomic_write(path, lambda handle: handle.write(blob))


def read_packed(path: Path, device: str | torch.device = "cpu") -> tuple[dict[str, Tensor], dict]:
    """The tensors (on ``device``) and the description of the packed model at ``path``."""
    try:
        info = os.stat(path)
    except OSError as err:
        raise UserError(f"cannot read packed model {path}: {err.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"packed model {path} is not a regular file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise UserError(
            f"{path} is not a readable packed model (truncated or not safetensors: {reason})"
        ) from None
    if header.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a clbench packed model (no {FORMAT} metadata; "
            "write one with `clbench export RUN_DIR`)"
        )
    meta_json = header.get("meta", "")
    if content_digest(meta_json, tensors) != header.get("digest"):
        raise UserError(
            f"packed model {path} is corrupt: its content does not match its digest "
            "(export it again)"
        )
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise UserError(f"packed model {path} has no valid description")
    return {name: t.to(device) for name, t in tensors.items()}, meta
