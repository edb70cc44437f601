"""Grid files and `sweep plan`: expansion, exclusions, statuses, plain commands."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from clbench.cli import build_parser
from clbench.commands.run import configs_from_args
from clbench.commands.sweep import run_configurer
from clbench.core.errors import UserError
from clbench.core.record import RunRecord
from clbench.run.lock import LOCK_NAME, run_folder_lock
from clbench.sweep.grid import load_grid
from clbench.sweep.plan import plan

RUN_PARSER = build_parser().parse_args(["sweep", "plan", "grid.toml"]).run_parser
CONFIGURE = run_configurer(RUN_PARSER)
GRID = """
[base]
stream = "splitmnist"
epochs = 1
results = "{results}"

[grid]
strategies = ["finetune", "lwf", "ewc"]
seeds = [0, 1, 2]

[[exclude]]
strategy = "ewc"
seed = 1
"""


def write_grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text.format(results=tmp_path / "results"))
    return path


def write_record(run, status: str) -> None:
    record = RunRecord.start(asdict(run.config), {"device": "cpu"}, ["a", "b"], {}, [])
    if status == "complete":
        record.complete({"top1": [90.0, 80.0]}, {"total_bytes": 1, "models": 1}, None)
    elif status == "failed":
        record.mark_failed("failed here")
    elif status == "diverged":
        record.mark_diverged({"task": "a", "task_index": 0, "epoch": 1}, "diverged here")
    run.folder.mkdir(parents=True)
    record.save(run.record_path)


def dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_grid_product_exclusions_and_statuses(tmp_path, run_cli):
    grid = write_grid(tmp_path, GRID)
    runs = plan(load_grid(grid), CONFIGURE)
    assert [(r.config.strategy, r.config.seed) for r in runs] == [
        ("finetune", 0),
        ("finetune", 1),
        ("finetune", 2),
        ("lwf", 0),
        ("lwf", 1),
        ("lwf", 2),
        ("ewc", 0),
        ("ewc", 2),
    ]
    statuses = ["complete", "running", "running", "running", "failed", "diverged", "failed"]
    for run, status in zip(runs, statuses):
        write_record(run, status)
    # runs[1] is held by a live process, runs[2] was killed (its lock file names a dead
    # process), runs[3] ended without a lock file: both are interrupted, not running.
    note = f"pid {dead_pid()} on host {socket.gethostname()}\n"
    (runs[2].folder / LOCK_NAME).write_text(note)
    runs[6].record_path.write_text("{not json")
    assert runs[5].status() == "diverged"
    expected = [
        "complete",
        "running",
        "interrupted",
        "interrupted",
        "failed",
        "diverged",
        "unreadable",
        "pending",
    ]
    with run_folder_lock(runs[1].folder):
        code, out, err = run_cli("sweep", "plan", str(grid))
    assert code == 0, err
    lines = out.splitlines()
    for line, run, status in zip(lines[:-1], runs, expected, strict=True):
        assert line.split("\t") == [run.config.run_id, status, str(run.folder)]
    assert lines[-1] == (
        "8 runs: 1 complete, 1 running, 2 interrupted, 1 failed, 1 diverged, 1 unreadable, "
        "1 pending"
    )
    assert runs[4].record_error() == "failed here"


def test_commands_reproduce_the_plan(tmp_path, run_cli):
    grid = write_grid(tmp_path, GRID)
    code, out, _ = run_cli("sweep", "plan", str(grid), "--format", "commands")
    assert code == 0
    folders = []
    for line in out.splitlines():
        program, *arguments = shlex.split(line)
        assert program == "clbench" and arguments[0] == "run"
        [config] = configs_from_args(build_parser().parse_args(arguments))
        folders.append(config.run_dir())
    assert folders == [run.folder for run in plan(load_grid(grid), CONFIGURE)]


def test_orders_all_names_the_runs_of_run_orders_all(tmp_path):
    grid = write_grid(
        tmp_path,
        '[base]\nstrategy = "finetune"\nresults = "{results}"\n'
        '[grid]\norders = "all"\n[[exclude]]\norder = [0, 1, 2, 3, 4]\n',
    )
    runs = plan(load_grid(grid), CONFIGURE)
    args = build_parser().parse_args(
        ["run", "--strategy", "finetune", "--results", str(tmp_path / "results"), "--orders", "all"]
    )
    expected = [c.run_dir() for c in configs_from_args(args)][1:]
    assert len(runs) == 119 and [r.folder for r in runs] == expected


def test_switches_and_lists_become_run_arguments(tmp_path):
    grid = write_grid(
        tmp_path,
        '[base]\nstrategy = "packnet"\nresults = "{results}"\ncompile = false\n'
        "no-pretrained = false\n"
        "[grid]\nprune-ratios = [[-1, 0.5, 0.5, 0.5, 0.5], [0.75]]\n",
    )
    first, second = plan(load_grid(grid), CONFIGURE)
    at = first.arguments.index("--prune-ratios")
    assert first.arguments[at : at + 2] == ["--prune-ratios", "-1,0.5,0.5,0.5,0.5"]
    assert first.config.options["prune_ratios"] != second.config.options["prune_ratios"]
    assert "--compile" not in first.arguments


@pytest.mark.parametrize(
    ("resources", "gpus_here", "device", "gpus"),
    [
        ("", 0, "cpu", 0.0),
        ("", 2, "cuda", 1.0),
        ("gpus = 0", 2, "cpu", 0.0),
        ("gpus = 0.5", 0, "cuda", 0.5),
    ],
)
def test_each_run_gets_the_device_of_its_gpus(
    tmp_path, monkeypatch, resources, gpus_here, device, gpus
):
    """Unset, gpus is 1 on a machine with a GPU, else 0; the device is in the arguments,
    so the folder (``--precision auto``: bf16 on CUDA) does not depend on the planner."""
    monkeypatch.setattr("clbench.sweep.plan.local_gpus", lambda: gpus_here)
    grid = write_grid(
        tmp_path,
        '[base]\nstrategy = "finetune"\nresults = "{results}"\n[resources]\n' + resources,
    )
    (run,) = plan(load_grid(grid), CONFIGURE)
    assert run.arguments[-2:] == ["--device", device] and run.resources.gpus == gpus
    assert run.config.precision == ("bf16" if device == "cuda" else "fp32")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\nseeds = 3\n", "seed must be a non-empty list"),
        ("[base]\nrun-id = 'x'\n", "run-id cannot be set in a grid"),
        ("[base]\nstrategy = 'nope'\n", "run 1"),
        ("[base]\nstrategy = 'finetune'\nwhatever = 1\n", "unknown run option whatever"),
        ("[base]\nstrategy = 'finetune'\n[grid]\nworkers = [1, 2]\n", "write the same folder"),
        ("[runs]\n", "unknown section [runs]"),
        ("[base\n", "not valid TOML"),
        ("[resources]\ngpus = -1\n", "gpus must be a number >= 0"),
        ("[resources]\nretries = 1.5\n", "retries must be an integer >= 0"),
        ("[base]\nstrategy = 'finetune'\ndevice = 'cuda'\n[resources]\ngpus = 0\n", "contradicts"),
    ],
)
def test_bad_grids_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(UserError) as caught:
        plan(load_grid(write_grid(tmp_path, text)), CONFIGURE)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_grid_file_exits_2(tmp_path, run_cli):
    code, out, err = run_cli("sweep", "plan", str(tmp_path / "none.toml"))
    assert code == 2 and out == "" and len(err.splitlines()) == 1


def test_the_demo_grid_runs_every_strategy_on_splitmnist():
    """make demo sweeps grids/demo.toml: every registered strategy, once."""
    from strategies.registry import STRATEGIES

    root = Path(__file__).resolve().parents[2]
    runs = plan(load_grid(root / "grids" / "demo.toml"), CONFIGURE)
    assert [run.config.strategy for run in runs] == list(STRATEGIES)
    assert {(run.config.stream, run.config.results) for run in runs} == {
        ("splitmnist", "results/demo")
    }
    assert "sweep run grids/demo.toml --results $(DEMO_RESULTS)" in (root / "Makefile").read_text()
    assert len(plan(load_grid(root / "grids" / "example.toml"), CONFIGURE)) == 4
