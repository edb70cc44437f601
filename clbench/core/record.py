"""The run record: one typed object that owns the fields of ``record.json``.

A record is written after every task (atomically) and read back by ``run`` (resume),
``check``, ``compare``, ``plot``, ``runs`` and ``sweep``. Its JSON is the interface
users and scripts depend on (see INTERFACES.md); :meth:`RunRecord.to_dict` writes the
same keys in the same order as every earlier version, and :meth:`RunRecord.from_dict`
reads records of earlier versions. Reading validates the structure: a damaged or
foreign file is refused with one line naming the file and the field
(:class:`RecordError`), never a traceback further down.

This module needs no torch: listing and comparing records stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from clbench.core.errors import UserError
from clbench.core.files import UnreadableFile, atomic_write_json, is_present, read_json_object

RECORD_NAME = "record.json"
STATUSES = ("running", "complete", "diverged", "failed")
OPTIONAL = (
    "resumed",
    "diverged",
    "error",
    "strategy_report",
    "selected_epochs",
    "pretrained_network",
    "prune_stages",
)
"""Keys written only once they have a value, after the always-present ones."""
SUMMARY = ("top1", "top5", "avg_top1", "forgetting", "forgetting_per_task", "bwt")
"""The keys of a complete run's ``final`` block (:func:`clbench.core.metrics.summarize`)."""
PRUNE_STAGES = ("trained", "pruned", "retrained")
"""The accuracies of each entry of ``prune_stages``, in the order they are measured."""


class RecordError(ValueError):
    """A record file that cannot be used: unreadable, or a field of the wrong shape."""


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class RunRecord:
    """Everything a run reports; field names and order are the JSON's.

    ``acc_top1``/``acc_top5``: accuracy matrices in percent, row i = after training task
    i, column j = task j (``None`` where j > i, where top-5 does not apply, or where the
    task was not measured). ``final`` and ``storage`` are set when the run completes.
    """

    status: str
    config: dict
    environment: dict
    tasks: list[str]
    stream: dict
    not_measured: list[str]
    acc_top1: list[list[float | None]]
    acc_top5: list[list[float | None]]
    final: dict | None
    storage: dict | None
    timings: dict
    fingerprints: list[dict]
    resumed: list[dict] | None = None
    diverged: dict | None = None
    error: str | None = None
    strategy_report: dict | None = None
    selected_epochs: list[dict | None] | None = None
    """With ``--select best-valid``: per trained step, the kept epoch (1-based) and its
    validation accuracy, or None (a task adopted without training)."""
    pretrained_network: dict | None = None
    """When task 0 is the pretrained network's own task (ImageNet streams): ``task``
    (its name) and the network's ``top1``/``top5`` on it before any strategy touched it
    (None when its test data is not on disk)."""
    prune_stages: list[dict] | None = None
    """With PackNet's ``--eval-pruning``: per pruned task, its top-1 accuracy (percent)
    after training (``trained``), right after pruning (``pruned``) and after retraining
    (``retrained``), its ``prune_ratio`` and the ``split`` evaluated (valid or test)."""
    path: Path | None = field(default=None, compare=False, repr=False)
    """Where the record was read from (not part of the JSON)."""

    # ------------------------------------------------------------------ building
    @classmethod
    def start(
        cls, config: dict, environment: dict, tasks: list[str], stream: dict, not_measured
    ) -> RunRecord:
        """A new record of a run that is starting (status ``running``)."""
        return cls(
            status="running",
            config=config,
            environment=environment,
            tasks=list(tasks),
            stream=stream,
            not_measured=list(not_measured),
            acc_top1=[],
            acc_top5=[],
            final=None,
            storage=None,
            timings={"train_seconds": [], "eval_seconds": [], "images_per_second": []},
            fingerprints=[],
        )

    def append_row(self, top1: list[float | None], top5: list[float | None]) -> None:
        """Add the accuracy row of the task just trained (``len(top1)`` tasks evaluated);
        rows a strategy skipped (joint training) are filled with ``None``."""
        num_tasks = len(self.tasks)
        for matrix in (self.acc_top1, self.acc_top5):
            while len(matrix) < len(top1) - 1:
                matrix.append([None] * num_tasks)
        padding = [None] * (num_tasks - len(top1))
        self.acc_top1.append(list(top1) + padding)
        self.acc_top5.append(list(top5) + padding)

    def add_timing(self, train_seconds: float, eval_seconds: float, images: int) -> None:
        """Wall seconds of the task just trained and evaluated, and its training images."""
        self.timings["train_seconds"].append(train_seconds)
        self.timings["eval_seconds"].append(eval_seconds)
        self.timings["images_per_second"].append(images / train_seconds)

    def add_selection(self, selected: dict | None) -> None:
        """The epoch ``--select best-valid`` kept in the step just trained."""
        self.selected_epochs = [*(self.selected_epochs or []), selected]

    def note_pretrained(self, task: str, top1: float | None, top5: float | None) -> None:
        """The pretrained network's own accuracy on its task ``task``, before training."""
        self.pretrained_network = {"task": task, "top1": top1, "top5": top5}

    def add_prune_stages(self, task: str, stages: dict | None) -> None:
        """The pruning stages of the task just packed (nothing when it was not pruned)."""
        if stages is not None:
            self.prune_stages = [*(self.prune_stages or []), {"task": task, **stages}]

    def note_resumed(self, entry: dict) -> None:
        """Remember that an invocation resumed the run (where, with which commit)."""
        self.resumed = [*(self.resumed or []), entry]

    def mark_failed(self, error: str) -> None:
        self.status, self.error = "failed", error

    def mark_diverged(self, where: dict, error: str) -> None:
        """Status ``diverged``: ``where`` = task, task_index, epoch; ``error`` one line."""
        self.status, self.diverged, self.error = "diverged", where, error

    def complete(self, final: dict, storage: dict, report: dict | None) -> None:
        self.final, self.storage = final, storage
        if report is not None:
            self.strategy_report = report
        self.status = "complete"

    # ------------------------------------------------------------------ reading
    @property
    def strategy(self) -> str:
        return self.config["strategy"]

    @property
    def final_top1(self) -> list[float | None]:
        """Accuracy of every task after the last one was trained."""
        return list(self.acc_top1[-1]) if self.acc_top1 else []

    @property
    def final_top5(self) -> list[float | None]:
        return list(self.acc_top5[-1]) if self.acc_top5 else []

    @property
    def train_seconds(self) -> list[float]:
        return list(self.timings.get("train_seconds", []))

    @property
    def images_per_second(self) -> list[float]:
        return list(self.timings.get("images_per_second", []))

    def missing_summary(self) -> str | None:
        """The first field of the ``final`` summary a complete run reports that is
        missing (records written by hand or by other tools may lack some), or None."""
        for key in SUMMARY:
            if key not in (self.final or {}):
                return f"'final.{key}' is missing"
        return None

    def storage_value(self, key: str) -> int | None:
        """``total_bytes`` or ``models`` of the storage block (None before completion)."""
        return None if self.storage is None else self.storage.get(key)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """The JSON object, keys in the order every version wrote them."""
        data = {}
        for item in fields(self):
            if item.name == "path":
                continue
            value = getattr(self, item.name)
            if item.name in OPTIONAL and value is None:
                continue
            data[item.name] = value
        return data

    def save(self, path: Path) -> None:
        """Write the record atomically to ``path``."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "record") -> RunRecord:
        """Validate and wrap a record's JSON object; :class:`RecordError` names
        ``source`` and the first field that is missing or malformed."""
        problem = _problem(data)
        if problem is not None:
            raise RecordError(f"{source}: {problem}")
        known = {item.name for item in fields(cls)} - {"path"}
        defaults = {"stream": {}, "not_measured": [], "fingerprints": []}  # older records
        return cls(**{**defaults, **{k: v for k, v in data.items() if k in known}})

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """Read and validate ``path``; :class:`RecordError` when it is unusable."""
        try:
            data = read_json_object(path)
        except (OSError, UnreadableFile) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise RecordError(f"{path}: unreadable ({reason})") from None
        record = cls.from_dict(data, str(path))
        record.path = path
        return record

    @classmethod
    def in_folder(cls, run_dir: Path) -> RunRecord:
        """The record of the run folder ``run_dir``; a one-line :class:`UserError` when
        there is none or it is unusable."""
        path = run_dir / RECORD_NAME
        if not is_present(path):
            raise UserError(f"no readable run record at {path}")
        try:
            return cls.load(path)
        except RecordError as err:
            raise UserError(f"run record {err}") from None


# ---------------------------------------------------------------------- validation
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(v is None or is_number(v) for v in values)


def _matrix_problem(name: str, matrix: Any, num_tasks: int) -> str | None:
    if not isinstance(matrix, list) or len(matrix) > num_tasks:
        return f"'{name}' is not a list of at most {num_tasks} rows"
    for row in matrix:
        if not isinstance(row, list) or len(row) != num_tasks:
            return f"'{name}' rows do not match the {num_tasks} tasks"
        if not _numbers(row):
            return f"'{name}' holds values that are not finite numbers"
    return None


def _final_problem(final: dict, num_tasks: int) -> str | None:
    """The first summary value of ``final`` (those present) of the wrong shape."""
    for key in ("avg_top1", "forgetting", "bwt"):
        if final.get(key) is not None and not is_number(final[key]):
            return f"'final.{key}' is not a finite number"
    for key in ("top1", "top5", "forgetting_per_task"):
        if key in final and not (_numbers(final[key]) and len(final[key]) == num_tasks):
            return f"'final.{key}' is not a list of one finite number (or null) per task"
    return None


def _config_problem(config: Any, num_tasks: int) -> str | None:
    if not isinstance(config, dict):
        return "'config' is not an object"
    for key in ("stream", "arch", "strategy"):
        if not isinstance(config.get(key), str):
            return f"'config.{key}' is missing or not a string"
    if not _is_int(config.get("seed", 0)):
        return "'config.seed' is not an integer"
    if not isinstance(config.get("options", {}), dict):
        return "'config.options' is not an object"
    order = config.get("order")
    if order is not None:
        if not isinstance(order, list) or not all(_is_int(i) for i in order):
            return "'config.order' is not a list of integers"
        if sorted(order) != list(range(len(order))) or len(order) > num_tasks:
            return "'config.order' is not a permutation of the tasks"
    return None


def _problem(data: Any) -> str | None:
    """The first structural problem of a record's JSON object, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("status") not in STATUSES:
        return f"'status' is not one of {', '.join(STATUSES)}"
    required = ("config", "environment", "tasks", "acc_top1", "acc_top5", "final", "timings")
    for key in (*required, "storage"):
        if key not in data:
            return f"'{key}' is missing"
    tasks = data["tasks"]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        return "'tasks' is not a non-empty list of task names"
    problem = _config_problem(data["config"], len(tasks))
    if problem:
        return problem
    environment = data["environment"]
    if not isinstance(environment, dict) or not isinstance(environment.get("device"), str):
        return "'environment' is not an object with a 'device'"
    for name in ("acc_top1", "acc_top5"):
        problem = _matrix_problem(name, data[name], len(tasks))
        if problem:
            return problem
    timings = data["timings"]
    if not isinstance(timings, dict) or not all(
        _numbers(timings.get(k, [])) for k in ("train_seconds", "images_per_second")
    ):
        return "'timings' does not hold lists of numbers"
    final, storage = data["final"], data["storage"]
    if data["status"] == "complete":
        if not isinstance(final, dict) or not _numbers(final.get("top1")):
            return "'final' of a complete run is not an object with 'top1'"
        if not isinstance(storage, dict):
            return "'storage' of a complete run is not an object"
    if final is not None and not isinstance(final, dict):
        return "'final' is not an object"
    if final is not None:
        problem = _final_problem(final, len(tasks))
        if problem:
            return problem
    if storage is not None and not (
        isinstance(storage, dict)
        and _is_int(storage.get("total_bytes"))
        and _is_int(storage.get("models"))
    ):
        return "'storage' does not hold integer 'total_bytes' and 'models'"
    if data["status"] in ("failed", "diverged") and not isinstance(data.get("error"), str):
        return f"'error' of a {data['status']} run is missing"
    for key, kind in (("stream", dict), ("not_measured", list), ("fingerprints", list)):
        if key in data and not isinstance(data[key], kind):
            return f"'{key}' is not a{'n object' if kind is dict else ' list'}"
    selected = data.get("selected_epochs")
    if selected is not None and not (
        isinstance(selected, list)
        and all(s is None or (isinstance(s, dict) and _is_int(s.get("epoch"))) for s in selected)
    ):
        return "'selected_epochs' is not a list of objects with an integer 'epoch'"
    pretrained = data.get("pretrained_network")
    if pretrained is not None and not (
        isinstance(pretrained, dict)
        and isinstance(pretrained.get("task"), str)
        and _numbers([pretrained.get("top1"), pretrained.get("top5")])
    ):
        return "'pretrained_network' is not an object with a 'task' and numeric 'top1'/'top5'"
    stages = data.get("prune_stages")
    if stages is not None and not (
        isinstance(stages, list)
        and all(
            isinstance(s, dict)
            and isinstance(s.get("task"), str)
            and _numbers([s.get(k) for k in ("prune_ratio", *PRUNE_STAGES)])
            for s in stages
        )
    ):
        return "'prune_stages' is not a list of objects with a 'task' and numeric stages"
    return None
