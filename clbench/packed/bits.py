"""Small unsigned integers packed at their real bit width into a uint8 byte stream.

Values are written most significant bit first, one after the other, and the last byte
is zero-padded: at width 1 this is the layout of ``numpy.packbits`` (and of
:func:`strategies.piggyback.pack_bits`, whose masks are stored as they are). Both
directions work in chunks, in uint8 arithmetic, so packing a 100-million-weight layer
needs a few times the chunk in memory, not 8 bytes per weight.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CHUNK = 1 << 20
"""Values per chunk (a multiple of 8: every chunk starts on a byte boundary)."""


def packed_size(count: int, width: int) -> int:
    """Bytes holding ``count`` values of ``width`` bits."""
    return math.ceil(count * width / 8)


def _msb_first(width: int, device: torch.device) -> Tensor:
    return torch.arange(width - 1, -1, -1, dtype=torch.uint8, device=device)


def pack(values: Tensor, width: int) -> Tensor:
    """The flattened uint8 ``values`` (each < 2**width, 1 <= width <= 8) as a byte stream."""
    if not 1 <= width <= 8:
        raise ValueError(f"bit width must be 1 to 8, got {width}")
    flat = values.flatten().to(torch.uint8)
    if flat.numel() and int(flat.max()) >= 1 << width:
        raise ValueError(f"a value does not fit in {width} bits")
    shifts, byte_shifts = _msb_first(width, flat.device), _msb_first(8, flat.device)
    chunks = []
    for start in range(0, flat.numel(), CHUNK):
        bits = ((flat[start : start + CHUNK].unsqueeze(1) >> shifts) & 1).flatten()
        bits = torch.cat([bits, bits.new_zeros(-bits.numel() % 8)]).view(-1, 8)
        byte = torch.zeros(bits.shape[0], dtype=torch.uint8, device=flat.device)
        for column, shift in enumerate(byte_shifts.tolist()):
            byte |= bits[:, column] << shift
        chunks.append(byte)
    return torch.cat(chunks) if chunks else flat.new_zeros(0)


def unpack(stream: Tensor, count: int, width: int) -> Tensor:
    """The first ``count`` values of width ``width`` of a :func:`pack` stream (uint8)."""
    if stream.dtype != torch.uint8 or stream.dim() != 1:
        raise ValueError("a packed stream is a 1-D uint8 tensor")
    if stream.numel() != packed_size(count, width):
        raise ValueError(
            f"{stream.numel()} bytes cannot hold exactly {count} values of {width} bits"
        )
    byte_shifts, shifts = _msb_first(8, stream.device), _msb_first(width, stream.device)
    bytes_per_chunk = CHUNK * width // 8
    chunks = []
    for start in range(0, count, CHUNK):
        part = stream[start * width // 8 : start * width // 8 + bytes_per_chunk]
        bits = ((part.unsqueeze(1) >> byte_shifts) & 1).flatten()
        n = min(CHUNK, count - start)
        bits = bits[: n * width].view(n, width)
        value = torch.zeros(n, dtype=torch.uint8, device=stream.device)
        for column, shift in enumerate(shifts.tolist()):
            value |= bits[:, column] << shift
        chunks.append(value)
    return torch.cat(chunks) if chunks else stream.new_zeros(0)
