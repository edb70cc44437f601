"""The report of an entry against run records: every cell missing, some present, all
present; flags against the tolerance and a published spread; storage rows equal to the
`storage` command's figures; `compare --against`."""

from __future__ import annotations

import json

import pytest

from clbench.commands.reproduce import column_storage
from clbench.core.storage import MB
from clbench.report.scan import scan_records
from clbench.reproduce.plan import plan_entry
from clbench.reproduce.registry import load_entry, registry
from clbench.reproduce.report import report_cells, report_notes, report_view
from tests.reproduce.helpers import CONFIGURE, entry_text, write_record

TABLE2 = registry()["packnet-table2"]
ACCURACY = {"imagenet": 70.0, "cubs": 74.0, "cars": 80.0, "flowers": 90.0}
"""Every fake run's final top-1 accuracy; PackNet 0.50's CUBS varies by seed (below)."""


@pytest.fixture
def table2(tmp_path):
    """The Table 2 plan into a fresh folder, and the storage of each column (VGG-16 is
    built once per process)."""
    folder = tmp_path / "table2"
    plans = plan_entry(TABLE2, CONFIGURE, False, folder)
    return folder, plans, column_storage(plans)


def cells_by(cells) -> dict:
    return {(cell.column, cell.row): cell for cell in cells}


def write_column(plans, label: str, cubs_offset: float = 0.0, imagenet: bool = True) -> None:
    plan = next(p for p in plans if p.column.label == label)
    for run in plan.runs:
        top1 = {**ACCURACY, "cubs": ACCURACY["cubs"] + cubs_offset + run.config.seed}
        if not imagenet:
            top1["imagenet"] = None
        write_record(run, top1, {"imagenet": 90.0} if imagenet else None)


def test_every_cell_missing_storage_filled(table2):
    folder, plans, storage = table2
    cells = report_cells(TABLE2, plans, [], storage)
    accuracy = [c for c in cells if c.runs != "formula"]
    assert accuracy and all(c.verdict == "not run" and c.ours == "-" for c in accuracy)
    by = cells_by(cells)
    assert by[("Classifier Only", "cubs")].published == "36.76"
    assert by[("LwF", "imagenet top-5")].runs == "0/18"
    for label, models, size in (
        ("Classifier Only", "1", "561.6"),
        ("PackNet 0.50, 0.75, 0.75", "1", "595.2"),
        ("Individual Networks", "4", "2,172.7"),
    ):
        assert (by[(label, "models")].ours, by[(label, "size MB")].ours) == (models, size)
        assert by[(label, "models")].verdict == by[(label, "size MB")].verdict == "ok"


def test_storage_rows_equal_the_storage_command(table2, run_cli):
    _, plans, storage = table2
    code, out, err = run_cli("storage", "--stream", "finegrained", "--arch", "vgg16", "--json")
    assert code == 0, err
    figures = json.loads(out)
    by = cells_by(report_cells(TABLE2, plans, [], storage))
    for plan in plans:
        figure = figures[plan.config.strategy]
        assert by[(plan.column.label, "models")].ours == str(figure["models"])
        assert by[(plan.column.label, "size MB")].ours == f"{figure['total_bytes'] / MB:,.1f}"


def test_some_cells_present(table2):
    folder, plans, storage = table2
    write_column(plans, "PackNet 0.50, 0.75, 0.75", cubs_offset=-1.0, imagenet=False)
    records = scan_records(folder).records
    by = cells_by(report_cells(TABLE2, plans, records, storage))
    # CUBS accuracy 73 + seed (0, 1, 2) over 6 orders: error 27 - seed, mean 26, std 0.84
    cubs = by[("PackNet 0.50, 0.75, 0.75", "cubs")]
    assert cubs.ours == "26.00 ± 0.84" and cubs.runs == "18/18"
    assert (cubs.published, cubs.difference, cubs.verdict) == ("25.72", "+0.28", "ok")
    cars = by[("PackNet 0.50, 0.75, 0.75", "cars")]  # error 20.00 against 18.08
    assert cars.difference == "+1.92" and cars.verdict == "outside ±1.00 (tolerance)"
    assert by[("PackNet 0.50, 0.75, 0.75", "imagenet")].verdict == "not measured"
    assert by[("PackNet 0.75, 0.75, 0.75", "cubs")].verdict == "not run"
    assert by[("LwF", "cars")].verdict == "not run"  # another column's records do not count


def test_all_cells_present_and_every_format(table2, run_cli):
    folder, plans, storage = table2
    for plan in plans:
        write_column(plans, plan.column.label)
    records = scan_records(folder).records
    cells = report_cells(TABLE2, plans, records, storage)
    assert not [c for c in cells if c.verdict in ("not run", "not measured")]
    by = cells_by(cells)
    assert by[("Individual Networks", "imagenet top-5")].ours == "10.00 ± 0.00"
    assert by[("LwF", "imagenet")].runs == "18/18"
    notes = report_notes(TABLE2, cells)
    assert any("tolerance of 1 point" in note for note in notes)
    assert any("LwF is order-dependent" in note for note in notes)
    view = report_view(TABLE2, cells)
    assert "Table 2" in view.title and len(view.rows) == len(cells) == 5 * 7
    for output in ("markdown", "latex", "table"):
        code, out, err = run_cli(
            "reproduce", "report", "packnet-table2", "--results", str(folder), "--format", output
        )
        assert code == 0, err
        assert "25.72" in out and "2,172.7" in out and "0 not run or not measured" in out
    code, out, err = run_cli(
        "compare", str(folder), "--against", "packnet-table2", "--format", "markdown"
    )
    assert code == 0, err
    assert "|  | cubs | 25.00 ± 0.84 | 18/18 | 25.72 | -0.72 | ok |" in out.splitlines()


SPREAD_ENTRY = entry_text(
    "splitmnist",
    '"digits 0/1" = { top1 = 99.0, top1_spread = 0.2 }\n"digits 2/3" = 90.0\naverage = 50.0',
    metric="accuracy",
    tolerance=5.0,
)


def test_published_spread_is_the_limit_where_given_and_the_average_row(tmp_path):
    path = tmp_path / "spread.toml"
    path.write_text(SPREAD_ENTRY)
    entry = load_entry(path)
    plans = plan_entry(entry, CONFIGURE, False, tmp_path / "runs")
    for run in plans[0].runs:
        write_record(run, {name: 98.5 for name in ("digits 0/1", "digits 2/3")})
    records = scan_records(tmp_path / "runs").records
    by = cells_by(report_cells(entry, plans, records, {"finetune": None}))
    assert by[("finetune", "digits 0/1")].verdict == "outside ±0.20 (published spread)"
    assert by[("finetune", "digits 2/3")].verdict == "outside ±5.00 (tolerance)"
    average = by[("finetune", "average")]  # mean over the two measured tasks
    assert (average.ours, average.difference) == ("98.50 ± 0.00", "+48.50")
    assert by[("finetune", "size MB")].verdict == "not reproducible"
    minis = report_cells(entry, plans, records, {}, mini=True)
    assert {c.verdict for c in minis} == {"miniature", "not measured", "not reproducible"}
    assert all(c.published == "-" for c in minis)
    assert "NOT comparable" in report_view(entry, minis, mini=True).title


def test_one_task_streams_fill_their_own_rows_and_share_the_imagenet_row(tmp_path):
    """Table 6: each added task's row comes from its stream's runs only; ImageNet's from
    every stream's."""
    entry = registry()["packnet-table6"]
    plans = plan_entry(entry, CONFIGURE, False, tmp_path)
    weights = next(p for p in plans if p.column.label == "Weight pruning 0.50")
    added = {"imagenet_cubs": 75.0, "imagenet_cars": 86.0, "imagenet_flowers": 91.0}
    for run in weights.runs:
        task = run.config.stream.removeprefix("imagenet_")
        write_record(run, {"imagenet": 70.0 + run.config.seed, task: added[run.config.stream]})
    records = scan_records(tmp_path).records
    assert len(records) == 9
    by = cells_by(report_cells(entry, plans, records, {}))
    cubs, cars = by[("Weight pruning 0.50", "cubs")], by[("Weight pruning 0.50", "cars")]
    assert (cubs.ours, cubs.runs, cubs.difference) == ("25.00 ± 0.00", "3/9", "+0.77")
    assert (cars.ours, cars.published, cars.verdict) == ("14.00 ± 0.00", "13.97", "ok")
    imagenet = by[("Weight pruning 0.50", "imagenet")]  # 30 - seed over 3 streams x 3 seeds
    assert (imagenet.ours, imagenet.runs, imagenet.difference) == ("29.00 ± 0.87", "9/9", "-0.33")
    assert by[("Filter pruning 0.30", "cubs")].verdict == "not run"
    assert by[("Classifier Only", "flowers")].verdict == "not run"
