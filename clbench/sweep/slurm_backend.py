"""SLURM as the sweep's engine, through submitit: the attempts submitted together go as
one job array (one element per run, its GPUs and CPUs each), at most
``array_parallelism`` elements running at once.

Each element runs :func:`clbench.sweep.attempt.run_attempt`. A job that is preempted or
reaches its time limit is requeued by submitit (a :class:`submitit.helpers.Checkpointable`;
time limits up to ``retries`` times) and the run resumes from its checkpoints; a job that
ends without a result (node failure, killed) is reported to the engine as died and
resubmitted up to the run's ``retries``. The job files and logs are in ``slurm_folder``; the
run's own output is in its run folder's ``sweep.log`` as with Ray. The results folder, this
repository and its interpreter must be on a file system every node sees, at the same path.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import submitit

from clbench.core.errors import UserError
from clbench.sweep.attempt import Launch, Outcome, run_attempt
from clbench.sweep.backend import Event, Submission
from clbench.sweep.grid import Resources

if TYPE_CHECKING:
    from clbench.sweep.engine import ExecutorOptions
    from clbench.sweep.plan import PlannedRun

CHECK_SECONDS = 10.0
"""How often job states are read (submitit asks ``sacct`` at most about once a minute)."""
JOB_NAME = "clbench-sweep"
ROOT = Path(__file__).resolve().parents[2]


class SlurmAttempt(submitit.helpers.Checkpointable):
    """A job's work: one attempt. On preemption or time-out submitit calls
    :meth:`checkpoint` (inherited), which requeues the same attempt."""

    def __call__(self, launch: Launch) -> Outcome:
        return run_attempt(launch)


def job_parameters(options: ExecutorOptions, resources: Resources) -> dict:
    """submitit's ``SlurmExecutor`` parameters of the jobs of runs with ``resources``."""
    parameters = {
        "job_name": JOB_NAME,
        "time": options.time_limit,
        "cpus_per_task": resources.cpus,
        "array_parallelism": options.array_parallelism,
        "stderr_to_stdout": True,
        # The job's Python unpickles SlurmAttempt from this clbench.
        "setup": [f'export PYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"'],
    }
    if resources.gpus:
        parameters["gpus_per_node"] = math.ceil(resources.gpus)
    if options.partition:
        parameters["partition"] = options.partition
    return parameters


class SlurmBackend:
    """Attempts as SLURM jobs (see the module's docstring)."""

    def __init__(self, options: ExecutorOptions, runs: list[PlannedRun]) -> None:
        folder = options.slurm_folder or Path(runs[0].config.results) / ".slurm" / "%j"
        self.folder = folder
        retries = max(run.resources.retries for run in runs)
        try:
            self.executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=retries)
        except RuntimeError as err:  # no srun: not on a SLURM cluster
            raise UserError(f"--executor slurm: {err}") from None
        self.options = options
        self.jobs: dict = {}  # submitit Job -> submission key
        self.running: set = set()
        self.checked = 0.0

    def submit(self, submissions: list[Submission]) -> None:
        groups: dict[Resources, list[Submission]] = {}
        for submission in submissions:
            groups.setdefault(submission.resources, []).append(submission)
        for resources, group in groups.items():
            self.executor.update_parameters(**job_parameters(self.options, resources))
            jobs = self.executor.map_array(SlurmAttempt(), [s.launch for s in group])
            self.jobs.update({job: s.key for job, s in zip(jobs, group)})

    def poll(self, timeout: float) -> list[Event]:
        wait = self.checked + CHECK_SECONDS - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, timeout))
            return []
        self.checked = time.monotonic()
        events = []
        for job, key in list(self.jobs.items()):
            if not job.done():
                if job not in self.running and job.state.upper() == "RUNNING":
                    self.running.add(job)
                    host = job.get_info(mode="cache").get("NodeList")
                    events.append(Event(key, "started", host=host))
                continue
            del self.jobs[job]
            self.running.discard(job)
            try:
                events.append(Event(key, "finished", outcome=job.result()))
            except submitit.core.utils.FailedJobError as err:  # the attempt itself raised
                events.append(Event(key, "error", error=_last_line(err)))
            except submitit.core.utils.UncompletedJobError:
                error = f"job {job.job_id} ended without a result ({job.state})"
                events.append(Event(key, "died", error=error))
        return events

    def cancel(self) -> None:
        for job in self.jobs:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        self.jobs.clear()


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
