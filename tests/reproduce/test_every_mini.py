"""Every entry's miniature runs and reports: its runs (in this process, one after the
other: test_mini.py takes one through the real sweep engine), then ``reproduce report
--mini`` with every cell of a reproducible column filled by all of its runs."""

from __future__ import annotations

import pytest

import clbench.run.runner as runner
from clbench.reproduce.plan import plan_entry, unique_runs
from clbench.reproduce.registry import registry
from tests.reproduce.helpers import CONFIGURE

pytestmark = pytest.mark.slow  # 58 small splitmnist runs: about 75 s on one core

ENTRIES = registry()


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_the_miniature_runs_and_fills_its_report(name, run_cli, single_thread, tmp_path):
    plans = plan_entry(ENTRIES[name], CONFIGURE, True, tmp_path)
    runs = unique_runs(plans)
    assert runs
    for run in runs:
        assert runner.run(run.config).status == "complete"
    code, out, err = run_cli(
        "reproduce", "report", name, "--mini", "--results", str(tmp_path), "--format", "markdown"
    )
    assert code == 0, err
    rows = [line.strip("|").split(" | ") for line in out.splitlines() if line.startswith("| ")]
    expected = {p.column.label: len(p.runs) for p in plans}
    column = None
    for cells in rows[1:]:
        column = cells[0].strip() or column
        ours, count, verdict = cells[2].strip(), cells[3].strip(), cells[6].strip()
        if count == "formula":
            continue
        if expected[column]:
            assert ours != "-" and verdict == "miniature", cells
            assert count == f"{expected[column]}/{expected[column]}", cells
        else:
            assert verdict == "not reproducible", cells
