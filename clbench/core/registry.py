"""One registry style for everything a user names on the command line.

Strategies, streams and architectures are each a :class:`Registry` of frozen spec
objects with a ``name`` and a one-line ``summary``. Looking up an unknown name gives the
same one-line error everywhere: ``unknown <kind> 'x'; choose from: a, b, c``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, Protocol, TypeVar

from clbench.core.errors import UserError


class Named(Protocol):
    name: str
    summary: str


T = TypeVar("T", bound=Named)


class Registry(Mapping[str, T], Generic[T]):
    """Specs of one ``kind`` by name, in registration order (read-only mapping)."""

    def __init__(self, kind: str, specs: Iterable[T]) -> None:
        self.kind = kind
        self._specs: dict[str, T] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"{kind} {spec.name!r} registered twice")
            self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> T:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def get_or_fail(self, name: str | None) -> T:
        """The spec called ``name``; a one-line :class:`UserError` naming the choices."""
        self.check(name)
        return self._specs[name]

    def check(self, name: str | None) -> None:
        """Raise the one-line "unknown ...; choose from" error unless ``name`` is known."""
        if name not in self._specs:
            raise UserError(f"unknown {self.kind} '{name}'; choose from: {', '.join(self)}")

    def summaries(self) -> dict[str, str]:
        """name -> one-line summary."""
        return {name: spec.summary for name, spec in self._specs.items()}
