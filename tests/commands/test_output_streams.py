"""Results on stdout, progress and messages on stderr, for the commands whose own tests do
not already check it (run and check: tests/commands/test_cli.py; runs, compare, plot,
data check: their tests), so that ``clbench X > file`` keeps exactly the results."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (["list"], "strategies"),
        (["storage", "--stream", "splitmnist", "--arch", "smallcnn", "--json"], "{"),
    ],
)
def test_results_only_on_stdout(run_cli, argv, first_line):
    code, out, err = run_cli(*argv)
    assert code == 0 and not err
    assert out.splitlines()[0].startswith(first_line)
    if "--json" in argv:
        json.loads(out)


def test_sweep_commands_are_the_only_output(run_cli, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'[base]\nresults = "{tmp_path}"\n[grid]\nseeds = [0, 1]\nstrategies = ["lwf"]\n'
    )
    code, out, err = run_cli("sweep", "plan", str(grid), "--format", "commands")
    assert code == 0 and not err
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.startswith("clbench run ") for line in lines)
