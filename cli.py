"""Command-line entry point: ``python cli.py --help`` (same as the ``clbench`` script)."""

import sys

try:
    from clbench.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line itself is imported
    print("clbench: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

if __name__ == "__main__":
    raise SystemExit(main())
