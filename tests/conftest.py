"""Shared fixtures: run the CLI in-process and locate written records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clbench.cli import main


@pytest.fixture
def run_cli(capsys):
    """Call the CLI in-process; returns (exit code, stdout, stderr)."""

    def _run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def find_records(root: Path) -> list[dict]:
    """All record.json files under ``root``, parsed."""
    return [json.loads(p.read_text()) for p in sorted(root.rglob("record.json"))]
