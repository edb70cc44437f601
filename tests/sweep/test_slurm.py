"""The SLURM executor up to the cluster: submitit's job array with its job description,
submitted to a fake ``sbatch`` on PATH (no cluster here)."""

from __future__ import annotations

import os
import stat

from clbench.sweep.backend import Submission
from clbench.sweep.engine import ExecutorOptions, launch
from clbench.sweep.grid import load_grid
from clbench.sweep.plan import plan
from clbench.sweep.slurm_backend import ROOT, SlurmAttempt, SlurmBackend
from tests.sweep.test_plan import CONFIGURE, write_grid

GRID = """
[base]
stream = "splitmnist"
results = "{results}"
[grid]
strategies = ["finetune", "lwf", "ewc"]
[resources]
gpus = 1
cpus = 4
retries = 1
"""


def fake_slurm(tmp_path, monkeypatch) -> None:
    """``srun`` (submitit looks for it) and an ``sbatch`` that keeps the job file."""
    folder = tmp_path / "bin"
    folder.mkdir()
    scripts = {
        "srun": "#!/bin/sh\nexit 0\n",
        "sbatch": f'#!/bin/sh\ncp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n',
    }
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_runs_are_one_job_array_with_their_gpus_cpus_partition_and_time(tmp_path, monkeypatch):
    fake_slurm(tmp_path, monkeypatch)
    runs = plan(load_grid(write_grid(tmp_path, GRID)), CONFIGURE)
    options = ExecutorOptions(
        executor="slurm",
        partition="gpu",
        time_limit=90,
        array_parallelism=2,
        slurm_folder=tmp_path / "jobs" / "%j",
    )
    backend = SlurmBackend(options, runs)
    launches = [launch(run, 30.0) for run in runs]
    backend.submit([Submission(key, launches[key], run.resources) for key, run in enumerate(runs)])

    lines = (tmp_path / "submitted.sh").read_text().splitlines()
    for expected in (
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=90",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --job-name=clbench-sweep",
        f'export PYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"',
    ):
        assert expected in lines, expected
    assert any(line.startswith("srun ") and "submitit.core._submit" in line for line in lines)
    jobs = sorted(backend.jobs, key=lambda job: job.job_id)
    assert [job.job_id for job in jobs] == ["4242_0", "4242_1", "4242_2"]
    assert [backend.jobs[job] for job in jobs] == [0, 1, 2]
    for job, attempt in zip(jobs, launches):
        submission = job.submission()  # what the array element unpickles and calls
        assert isinstance(submission.function, SlurmAttempt) and submission.args == (attempt,)
        assert attempt.argv[-2:] == ["--device", "cuda"]
        requeued = submission.function.checkpoint(*submission.args)  # on preemption/time-out
        assert requeued.function is submission.function and requeued.args == (attempt,)
