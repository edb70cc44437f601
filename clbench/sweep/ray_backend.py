"""Ray as the sweep's engine: each attempt is a Ray task (``num_gpus``/``num_cpus`` from
the run's resources) that runs :func:`clbench.sweep.attempt.run_attempt`.

The task is a streaming generator: it reports when it starts, then how the process
ended, so the driver sees queued, running and finished runs without polling files. A
task whose worker or node died surfaces as a Ray system error: the engine retries it.
Ray retries nothing itself (``max_retries=0``), so every attempt is counted in one place.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from clbench.core.errors import UserError
from clbench.sweep.attempt import Launch, Outcome, run_attempt
from clbench.sweep.backend import Event, Submission

LOCAL_ONLY = {
    # Every Ray server of a local instance listens on the loopback address only (read
    # when ``ray`` is imported, so set before that).
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
CLEANUP = {
    # A worker that dies takes its process group, hence the run's process, with it
    # (read by the raylet: set before ray.init).
    "RAY_process_group_cleanup_enabled": "1",
}


def _task(launch: Launch) -> Iterator[dict | Outcome]:
    """The Ray task of one attempt: yields ``{"host": ...}`` once it runs, then the
    :class:`Outcome`."""
    yield {"host": socket.gethostname(), "pid": os.getpid()}
    yield run_attempt(launch)


def _died_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for an attempt whose process, worker or node went away."""
    from ray import exceptions

    return (
        exceptions.WorkerCrashedError,
        exceptions.NodeDiedError,
        exceptions.LocalRayletDiedError,
        exceptions.OutOfMemoryError,
        exceptions.ObjectLostError,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


class RayBackend:
    """Attempts as Ray tasks on the Ray instance this process is connected to."""

    def __init__(self) -> None:
        import ray

        self._ray = ray
        self._remote = ray.remote(max_retries=0)(_task)
        self._pending: dict = {}  # ObjectRefGenerator -> submission key
        self._died = _died_errors()

    def submit(self, submissions: list[Submission]) -> None:
        for submission in submissions:
            resources = submission.resources
            task = self._remote.options(num_cpus=resources.cpus, num_gpus=resources.gpus)
            self._pending[task.remote(submission.launch)] = submission.key

    def poll(self, timeout: float) -> list[Event]:
        ray = self._ray
        if not self._pending:
            return []
        waiting = list(self._pending)
        ready, _ = ray.wait(waiting, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(waiting, num_returns=len(waiting), timeout=0)
        events = []
        for generator in ready:
            key = self._pending[generator]
            try:
                value = ray.get(next(generator))
            except self._died as err:
                events.append(Event(key, "died", error=_first_line(err)))
            except (StopIteration, ray.exceptions.RayError) as err:
                events.append(Event(key, "error", error=_first_line(err)))
            else:
                if isinstance(value, Outcome):
                    events.append(Event(key, "finished", outcome=value))
                else:
                    events.append(Event(key, "started", host=value["host"]))
                    continue
            del self._pending[generator]
        return events

    def cancel(self) -> None:
        for generator in self._pending:
            with contextlib.suppress(Exception):
                self._ray.cancel(generator, force=True)
        self._pending.clear()


def _runtime_env() -> dict:
    """Workers import this clbench (the one whose ``cli.py`` the runs execute)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` set in this process's environment for the block (Ray's processes
    started meanwhile keep them)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def local_ray(slots: int, cpus_per_run: int, gpus: int) -> Iterator[None]:
    """A Ray instance inside this process on this machine: ``slots`` runs of
    ``cpus_per_run`` CPUs at once, ``gpus`` GPUs, servers on the loopback address only
    (when this is the first import of ``ray`` in the process); shut down on leaving. A Ray
    this process already started is used as it is (and left running): start it once with
    this function for several sweeps."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        yield
        return
    with _environment({**CLEANUP, **LOCAL_ONLY}):
        import ray

        ray.init(
            address="local",
            num_cpus=slots * cpus_per_run,
            num_gpus=gpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=_runtime_env(),
        )
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def cluster_ray(address: str) -> Iterator[None]:
    """Connect to the Ray cluster at ``address`` (``host:port``, ``ray://...`` or
    ``auto``) for the block. Its raylets need ``RAY_process_group_cleanup_enabled=1`` in
    their environment for a lost worker to take its run's process with it."""
    import ray

    try:
        ray.init(address=address, log_to_driver=False, runtime_env=_runtime_env())
    except ConnectionError as err:
        raise UserError(f"cannot reach the Ray cluster at {address}: {err}") from None
    try:
        yield
    finally:
        ray.shutdown()
