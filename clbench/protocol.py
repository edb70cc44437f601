"""The protocol table: how every strategy trains on a stream by default, each value with
its source (a paper section, the authors' scripts, or our choice and why).

Rendered from the declarations (:mod:`benchmarks.protocols` per stream,
:mod:`strategies.registry` per method) and the values :mod:`clbench.resolve` gives a
run that sets nothing, so the table cannot drift from what runs do. ``clbench list
--protocol`` prints it (markdown); ``run --help`` ends with a summary without sources.
Light: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks import STREAMS
from clbench.core.protocol import Derived, Setting
from clbench.resolve import protocol_defaults
from strategies.base import Phase, StrategySpec
from strategies.registry import STRATEGIES

COLUMNS = (
    "strategy",
    "epochs",
    "LR, schedule",
    "optimizer",
    "momentum",
    "weight decay",
    "batch",
    "BatchNorm",
    "frozen",
    "epoch kept",
    "other settings",
)
BATCHNORM_TEXT = {"frozen": "frozen (eval, affine fixed)", "train": "trained"}


@dataclass
class Notes:
    """A table's footnotes: one number per distinct citation, in order of first use."""

    cited: list[str] = field(default_factory=list)
    marks: bool = True

    def mark(self, setting: Setting | None) -> str:
        """`` [n]`` citing ``setting`` (nothing without marks or setting)."""
        if not self.marks or setting is None:
            return ""
        text = setting.cite()
        if text not in self.cited:
            self.cited.append(text)
        return f" [{self.cited.index(text) + 1}]"


def number(value: Any) -> str:
    """``0.001``, ``5e-4`` -> ``0.0005``, ``20``: plain, without trailing zeros."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def schedule_text(step: int | None, epochs: int) -> str:
    """``constant``, ``x0.1 after N`` (one step within the epochs) or ``x0.1 every N``."""
    if not step or step >= epochs:
        return "constant"
    return f"x0.1 after {step}" if 2 * step >= epochs else f"x0.1 every {step}"


def _derived(setting: Setting | None) -> str:
    value = None if setting is None else setting.value
    return f" ({value.text})" if isinstance(value, Derived) else ""


@dataclass
class _Row:
    """One strategy (phase) on one stream: its resolved values and declared settings."""

    spec: StrategySpec
    phase: Phase
    values: dict
    settings: dict[str, Setting]

    def cell(self, key: str, notes: Notes) -> str:
        """A value with its source (``-`` where the strategy does not use it)."""
        if key in self.spec.unused or self.values.get(key) is None:
            return "-"
        setting = self.settings.get(key)
        return number(self.values[key]) + _derived(setting) + notes.mark(setting)

    def lr(self, notes: Notes) -> str:
        phase = self.phase
        lr, step_key = self.settings.get(phase.lr), phase.lr_step
        step = None if step_key is None else self.values.get(step_key)
        text = number(self.values[phase.lr]) + _derived(lr)
        schedule = schedule_text(step, self.values[phase.epochs])
        if step_key is None or self.settings.get(step_key) is None:
            return f"{text}, {schedule}{notes.mark(lr)}"
        step_setting = self.settings[step_key]
        if step_setting.cite() == (lr.cite() if lr else None):
            return f"{text}, {schedule}{_derived(step_setting)}{notes.mark(lr)}"
        return (
            f"{text}{notes.mark(lr)}, {schedule}{_derived(step_setting)}{notes.mark(step_setting)}"
        )

    def batchnorm(self, notes: Notes) -> str:
        if self.phase.batchnorm is not None:
            return self.phase.batchnorm.value + notes.mark(self.phase.batchnorm)
        setting = self.settings.get("batchnorm")
        return BATCHNORM_TEXT[self.values["batchnorm"]] + notes.mark(setting)

    def other(self, notes: Notes) -> str:
        """The strategy's own declared options that no other column shows."""
        shown = {self.phase.epochs, self.phase.lr, self.phase.lr_step}
        own = {option.dest: option for option in self.spec.options}
        parts = [
            f"{own[key].flag} {number(self.values[key])}{_derived(setting)}{notes.mark(setting)}"
            for key, setting in self.settings.items()
            if key in own and key not in shown and not _phase_key(self.spec, key)
        ]
        return "; ".join(parts) or "-"

    def cells(self, notes: Notes, first: bool) -> list[str]:
        label = self.spec.name + (f": {self.phase.label}" if self.phase.label else "")
        frozen = self.phase.frozen or self.spec.frozen
        optimizer = self.settings.get("optimizer", self.spec.optimizer)
        return [
            label,
            self.cell(self.phase.epochs, notes),
            self.lr(notes),
            optimizer.value + notes.mark(optimizer),
            self.cell("momentum", notes),
            self.cell("weight_decay", notes),
            self.cell("batch_size", notes),
            self.batchnorm(notes),
            frozen.value + notes.mark(frozen),
            f"{self.values['select']} epoch{notes.mark(self.settings.get('select'))}",
            self.other(notes) if first else "",
        ]


def _phase_key(spec: StrategySpec, key: str) -> bool:
    return any(key in (p.epochs, p.lr, p.lr_step) for p in spec.phases)


def rows(stream: str) -> list[tuple[_Row, bool]]:
    """Every strategy's phases on ``stream`` (the pretrained task's phase only on the
    papers' streams), each with whether it is the strategy's first row."""
    protocol = STREAMS.get_or_fail(stream).protocol
    result = []
    for spec in STRATEGIES.values():
        values = protocol_defaults(stream, spec.name)
        settings = protocol.settings(spec.name)
        phases = [p for p in spec.phases if protocol.papers or not p.pretrained_task]
        for index, phase in enumerate(phases):
            result.append((_Row(spec, phase, values, settings), index == 0))
    return result


def protocol_markdown(stream: str) -> str:
    """The protocol table of ``stream`` in markdown, its sources as numbered notes."""
    return f"### {stream}: {STREAMS[stream].protocol.summary}\n\n{_table(stream)}"


def protocol_tables(streams: Sequence[str]) -> str:
    """The protocol tables of ``streams`` in markdown; streams whose tables are the same
    (``imagenet_cubs``, ``imagenet_cars``, ...) share one, headed by all their names."""
    tables: dict[str, list[str]] = {}
    for stream in streams:
        tables.setdefault(_table(stream), []).append(stream)
    return "\n".join(
        f"### {', '.join(names)}: {STREAMS[names[0]].protocol.summary}\n\n{table}"
        for table, names in tables.items()
    )


def _table(stream: str) -> str:
    notes = Notes()
    body = [row.cells(notes, first) for row, first in rows(stream)]
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in body),
        "",
        *(f"- [{n}] {text}" for n, text in enumerate(notes.cited, start=1)),
    ]
    return "\n".join(lines) + "\n"


def protocol_summary() -> str:
    """Every stream's defaults per strategy, one line each, without sources."""
    notes = Notes(marks=False)
    summaries: dict[str, list[str]] = {}
    for stream in STREAMS:
        lines = []
        for row, _ in rows(stream):
            cells = dict(zip(COLUMNS, row.cells(notes, False)))
            lines.append(
                f"  {cells['strategy']}: {cells['epochs']} epochs, lr {cells['LR, schedule']}, "
                f"{cells['optimizer']}, weight decay {cells['weight decay']}, BatchNorm "
                f"{cells['BatchNorm']}"
            )
        summaries.setdefault("\n".join(lines), []).append(stream)
    return "\n".join(f"{', '.join(names)}:\n{text}" for text, names in summaries.items())
