"""The tensors' share of a safetensors file, read from the file itself."""

from __future__ import annotations

from pathlib import Path


def tensor_bytes(path: Path) -> int:
    """Bytes of a safetensors file after its header (8-byte length + JSON)."""
    return path.stat().st_size - 8 - int.from_bytes(path.read_bytes()[:8], "little")
