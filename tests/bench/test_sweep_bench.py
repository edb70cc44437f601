"""The sweep benchmark's arithmetic (the benchmark itself prints figures: not a test)."""

from __future__ import annotations

import pytest

from clbench.bench.sweep import scheduling_delays


def test_a_run_waits_from_its_submission_or_from_the_end_that_freed_its_slot():
    # Two slots: runs 0 and 1 start 0.2 s and 0.3 s after their submission at t=10; run 2
    # takes the slot run 0 freed at t=15 and starts 0.1 s later.
    starts, submitted, ends = [10.2, 10.3, 15.1], [10.0, 10.0, 10.0], [15.0, 16.0, 20.0]
    assert scheduling_delays(starts, submitted, ends) == pytest.approx([0.2, 0.3, 0.1])
