"""What the sweep's engine and its backends (Ray, SLURM) say to each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from clbench.sweep.attempt import Launch, Outcome
from clbench.sweep.grid import Resources

EventKind = Literal["started", "finished", "died", "error"]
"""``started``: the attempt runs (on ``host``); ``finished``: its process ended
(``outcome``); ``died``: its worker, node or job went away (``error`` says how: worth a
retry); ``error``: the engine could not run it (``error``; not retried)."""


@dataclass(frozen=True)
class Submission:
    """One attempt to start: ``key`` identifies the run to the engine."""

    key: int
    launch: Launch
    resources: Resources
    """``gpus`` decided (a number)."""


@dataclass(frozen=True)
class Event:
    """News of one submitted attempt."""

    key: int
    kind: EventKind
    host: str | None = None
    outcome: Outcome | None = None
    error: str | None = None


class Backend(Protocol):
    """Runs attempts somewhere; the engine decides what to submit and when."""

    def submit(self, submissions: list[Submission]) -> None:
        """Queue these attempts (one batch: a SLURM job array)."""

    def poll(self, timeout: float) -> list[Event]:
        """News since the last call, waiting up to ``timeout`` seconds for the first."""

    def cancel(self) -> None:
        """Stop every attempt still queued or running."""
