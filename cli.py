"""Command-line entry point: ``python cli.py --help`` (same as the ``clbench`` script)."""

from clbench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
