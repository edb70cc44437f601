"""The valid values of every option, declared once next to the option.

Each checker takes a parsed value and returns why it is invalid (a phrase completing
"--flag ..."), or None when it is valid. ``None`` itself is always valid: it means
"the default". :func:`clbench.resolve.resolve` applies them to every run option and
every strategy option before anything is built or written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]

MAX_SEED = 2**32
"""Seeds must fit NumPy's legacy seeding (0 <= seed < 2**32)."""
MAX_IMAGE_SIZE = 4096


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive(value: Any) -> str | None:
    """A finite number > 0."""
    if value is None or (_is_number(value) and math.isfinite(value) and value > 0):
        return None
    return f"must be a positive finite number, got {value}"


def non_negative(value: Any) -> str | None:
    """A finite number >= 0."""
    if value is None or (_is_number(value) and math.isfinite(value) and value >= 0):
        return None
    return f"must be a finite number >= 0, got {value}"


def finite(value: Any) -> str | None:
    """Any finite number."""
    if value is None or (_is_number(value) and math.isfinite(value)):
        return None
    return f"must be a finite number, got {value}"


def momentum(value: Any) -> str | None:
    """SGD momentum: 0 <= m < 1."""
    if value is None or (_is_number(value) and 0 <= value < 1):
        return None
    return f"must be a number in [0, 1), got {value}"


def fraction(value: Any) -> str | None:
    """A fraction held out: 0 <= f < 1."""
    if value is None or (_is_number(value) and 0 <= value < 1):
        return None
    return f"must be a number in [0, 1), got {value}"


def at_least(low: int) -> Check:
    """An integer >= ``low``."""

    def check(value: Any) -> str | None:
        if value is None or (
            isinstance(value, int) and not isinstance(value, bool) and value >= low
        ):
            return None
        return f"must be an integer >= {low}, got {value}"

    return check


def seed(value: Any) -> str | None:
    """0 <= seed < 2**32."""
    if isinstance(value, int) and 0 <= value < MAX_SEED:
        return None
    return f"must be an integer in [0, 2**32), got {value}"


def image_size(value: Any) -> str | None:
    """Between 8 and :data:`MAX_IMAGE_SIZE` pixels."""
    if value is None or (isinstance(value, int) and 8 <= value <= MAX_IMAGE_SIZE):
        return None
    return f"must be an integer from 8 to {MAX_IMAGE_SIZE}, got {value}"


def task_order(value: Any) -> str | None:
    """A permutation of 0..n-1 (which n is the stream's business)."""
    if value is None:
        return None
    if isinstance(value, list) and sorted(value) == list(range(len(value))):
        return None
    return f"must be a permutation of 0..n-1, got {','.join(map(str, value))}"


def run_id(value: Any) -> str | None:
    """A folder name: no path separator, not empty, not ``.`` or ``..``, no control
    characters, so the run folder is always inside the results folder."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or "/" in value
        or "\\" in value
        or any(ord(char) < 32 for char in value)
    ):
        return f"must be a plain name (no '/', not '.' or '..', not empty), got {value!r}"
    return None


def finite_numbers(value: Any) -> str | None:
    """A comma list (text) in which no number is NaN or infinite; parts that are not
    numbers are left to the option's own parser."""
    if value is None:
        return None
    for part in str(value).split(","):
        try:
            number = float(part)
        except ValueError:
            continue
        if not math.isfinite(number):
            return f"must hold finite numbers, got {value!r}"
    return None


def int_list(text: str) -> list[int]:
    """Parse ``2,0,1``."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"expected comma-separated integers: '{text}'") from None


def name_list(text: str) -> list[str]:
    """Parse ``csv,tensorboard`` (names, surrounding spaces ignored)."""
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise ValueError(f"expected comma-separated names: '{text}'")
    return names


def names_from(choices: tuple[str, ...]) -> Check:
    """A list of names, each one of ``choices``."""

    def check(value: Any) -> str | None:
        unknown = [name for name in value or [] if name not in choices]
        if not unknown:
            return None
        return f"takes names from {', '.join(choices)}, got {', '.join(map(str, unknown))}"

    return check
