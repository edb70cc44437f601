"""One module per CLI sub-command; each exposes ``add_parser(subparsers)``.

A command's handler receives the parsed arguments and a stderr console and returns the
exit code. Raise :class:`clbench.core.errors.UserError` for bad input (one line, exit 2).
Building the parser imports only light modules (names, options, no torch, no
Avalanche); a handler imports the machinery it needs when it runs, so commands that do
not train start in about a second.
"""

from __future__ import annotations

import sys

from rich.console import Console


def stdout_console() -> Console:
    """Console for results on stdout; never wraps tables when writing to a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(width=200)
