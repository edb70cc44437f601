"""A miniature end to end on the CPU: registry -> a real local sweep -> records -> report.

The smallest miniature (Piggyback's three columns share its two splitmnist runs); every
other miniature is planned, and its shape checked, in test_registry.py.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # two processes and Ray: 90-120 s on the shared 2-core machine

MINI = "piggyback-errors"


def test_a_miniature_runs_through_a_local_sweep_and_reports(run_cli, tmp_path):
    results = str(tmp_path / "mini")
    code, out, err = run_cli("reproduce", "run", MINI, "--mini", "--results", results)
    assert code == 0, out + err
    assert f"clbench reproduce report {MINI} --results {results} --mini" in out
    code, out, err = run_cli(
        "reproduce", "report", MINI, "--mini", "--results", results, "--format", "markdown"
    )
    assert code == 0, err
    assert "MINIATURE" in out and "NOT comparable with the published values" in out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ")]
    digits = [row for row in rows if row[1].startswith("digits")]
    assert len(digits) == 3 * 5  # three columns x the five splitmnist tasks
    assert all(row[3] == "2/2" and row[6] == "miniature |" for row in digits), digits
    assert all(row[4] == "-" for row in rows[1:])  # no published value is shown
    code, out, err = run_cli("reproduce", "plan", MINI, "--mini", "--results", results)
    assert code == 0 and "2 runs: 2 complete" in out
