"""Files the harness writes get the user's umask, as a plain ``open`` would give them (the
temporary file's private mode must not survive the rename)."""

from __future__ import annotations

import os
import stat

import pytest

from clbench.core.files import atomic_write_json, atomic_write_text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "leaderboard.md", "| a |\n")
        atomic_write_json(tmp_path / "record.json", {"status": "running"})
    finally:
        os.umask(previous)
    for name in ("leaderboard.md", "record.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
