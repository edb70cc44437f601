"""The vocabulary of training protocols: a value with its source, and derived defaults.

A stream declares, per strategy, how its tasks are trained (epochs, learning rate and
schedule, optimizer settings, BatchNorm mode, ...) as :class:`Setting` values, each
naming where it comes from: a paper section, the authors' scripts, or our choice with
the reason (:func:`ours`). The declarations live in :mod:`benchmarks.protocols` (per
stream) and :mod:`strategies.registry` (what a method fixes whatever the stream);
:func:`clbench.resolve.resolve` turns them into a run's recorded configuration and
``clbench list --protocol`` renders them as the protocol table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Source:
    """Where a protocol value comes from: ``text`` cites it (or, for our own choices,
    gives the reason)."""

    text: str
    ours: bool = False

    def cite(self) -> str:
        return f"our choice: {self.text}" if self.ours else self.text


def ours(reason: str) -> Source:
    """A value that is our choice, not the papers': ``reason`` says why."""
    return Source(reason, ours=True)


PACKNET_PAPER = Source("PackNet paper (Mallya & Lazebnik, CVPR 2018), section 4")
PACKNET_PAPER_ANALYSIS = Source(
    "PackNet paper (Mallya & Lazebnik, CVPR 2018), section 5 (Table 6, Figure 4)"
)
PACKNET_METHOD = Source("PackNet paper (Mallya & Lazebnik, CVPR 2018), section 3 (the method)")
PACKNET_SCRIPTS = Source("the PackNet authors' code (src/scripts/*.sh, src/main.py)")
PIGGYBACK_PAPER = Source(
    "Piggyback paper (Mallya, Davis & Lazebnik, ECCV 2018) and its authors' src/scripts/*.sh"
)
LWF_PAPER = Source("LwF paper (Li & Hoiem, ECCV 2016), as the PackNet paper's baseline (section 4)")
LWF_CODE = Source("LwF's code (weight decay 5e-4)")
EWC_PAPER = Source("EWC paper (Kirkpatrick et al., PNAS 2017)")
DEFINITION = Source("the baseline's definition")


@dataclass(frozen=True)
class Derived:
    """A default computed from other resolved values of the run (``values``: run options
    and the strategy options resolved before it); ``text`` says how."""

    text: str
    compute: Callable[[Mapping[str, Any]], Any]

    def __call__(self, values: Mapping[str, Any]) -> Any:
        return self.compute(values)


HALF_EPOCHS = Derived("half of --epochs", lambda values: max(1, values["epochs"] // 2))
TENTH_LR = Derived("--lr / 10", lambda values: values["lr"] / 10)


@dataclass(frozen=True)
class Setting:
    """One protocol value (or :class:`Derived` default) and its :class:`Source`.

    ``other``: where the paper text and the authors' scripts disagree, the value we do
    not follow and whose it is (we follow the paper).
    """

    value: Any
    source: Source
    other: str | None = None

    def cite(self) -> str:
        text = self.source.cite()
        return f"{text}; {self.other} (not followed)" if self.other else text


def value_of(value: Any, values: Mapping[str, Any]) -> Any:
    """``value``, computed from ``values`` when it is :class:`Derived`."""
    return value(values) if isinstance(value, Derived) else value


def step_lr(lr: float, step: int | None, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): ``lr`` x0.1 every ``step`` epochs (0 or
    None: constant)."""
    return lr * 0.1 ** (epoch // step if step else 0)
