"""Bit packing at any width: exact round trips, numpy's layout at width 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clbench.packed import bits
from strategies.piggyback import pack_bits


def test_values_round_trip_at_their_width_in_the_fewest_bytes(monkeypatch):
    monkeypatch.setattr(bits, "CHUNK", 16)  # several chunks, the last one partial
    torch.manual_seed(0)
    for width in range(1, 9):
        for count in (0, 1, 7, 8, 9, 37):
            values = torch.randint(0, 2**width, (count,), dtype=torch.uint8)
            stream = bits.pack(values, width)
            assert stream.dtype == torch.uint8 and stream.numel() == -(-count * width // 8)
            assert torch.equal(bits.unpack(stream, count, width), values), (width, count)


def test_width_1_is_numpy_packbits_and_piggybacks_layout():
    mask = torch.rand(5, 3, 3, 3, generator=torch.Generator().manual_seed(0)) > 0.5
    stream = bits.pack(mask.to(torch.uint8), 1)
    assert np.array_equal(stream.numpy(), np.packbits(mask.flatten().numpy()))
    assert torch.equal(stream, pack_bits(mask))


def test_values_too_wide_or_streams_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError, match="does not fit in 2 bits"):
        bits.pack(torch.tensor([4], dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="cannot hold exactly"):
        bits.unpack(torch.zeros(2, dtype=torch.uint8), 20, 1)
