"""One module per CLI sub-command; each exposes ``add_parser(subparsers)``.

A command's handler receives the parsed arguments and a stderr console and returns the
exit code. Raise :class:`clbench.errors.UserError` for bad input (one line, exit 2).
"""

from __future__ import annotations

import sys

from rich.console import Console


def stdout_console() -> Console:
    """Console for results on stdout; never wraps tables when writing to a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(width=200)
