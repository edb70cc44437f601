"""``runs``: the run folders under a results folder, filtered, newest first."""

from __future__ import annotations

import json
import os
import time

from clbench.commands.runs import age_text
from tests.report.test_leaderboard import ORDERS, make_record, write, write_results


def test_lists_every_record_newest_first_and_filters(run_cli, tmp_path):
    write_results(tmp_path)  # 13 complete, one running, one unreadable
    newest = tmp_path / "finegrained" / "vgg16" / "finetune" / "s1-o0312" / "record.json"
    for age, path in enumerate(sorted(tmp_path.rglob("record.json"), reverse=True)):
        stamp = time.time() - (0 if path == newest else 3600 * (age + 1))
        os.utime(path, (stamp, stamp))
    code, out, err = run_cli("runs", str(tmp_path), "--format", "json")
    assert code == 0 and not err
    rows = json.loads(out)
    assert len(rows) == 15 and rows[0]["folder"] == str(newest.parent)
    assert [row["age_seconds"] for row in rows] == sorted(row["age_seconds"] for row in rows)
    assert {row["status"] for row in rows} == {"complete", "running", "unreadable"}
    first = rows[0]
    assert (first["strategy"], first["stream"], first["arch"], first["seed"]) == (
        "finetune",
        "finegrained",
        "vgg16",
        1,
    )
    assert first["order"] == [0, 3, 1, 2] and (first["tasks_done"], first["tasks"]) == (4, 4)
    code, out, _ = run_cli("runs", str(tmp_path), "--strategy", "finetune", "--status", "running")
    assert code == 0
    lines = [line for line in out.splitlines() if "running" in line]
    assert len(lines) == 1 and "finetune" in lines[0] and "/running" in out.replace("\n", "")
    code, out, _ = run_cli("runs", str(tmp_path), "--stream", "splitmnist", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_table_shows_accuracy_order_and_age(run_cli, tmp_path):
    record = make_record("individual", 3, ORDERS[1], 0)
    record["final"]["avg_top1"] = 75.0
    write(tmp_path, record, "only")
    code, out, _ = run_cli("runs", str(tmp_path))
    assert code == 0
    row = next(line for line in out.splitlines() if "individual" in line)
    for text in ("complete", "finegrained", "vgg16", "0,3,1,2", "4/4", "75.00", "0 s"):
        assert text in row


def test_bad_input(run_cli, tmp_path):
    code, out, err = run_cli("runs", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err and not out
    code, _, err = run_cli("runs", str(tmp_path), "--strategy", "nope")
    assert code == 2 and "unknown strategy 'nope'" in err and len(err.splitlines()) == 1


def test_age_text():
    assert [age_text(s) for s in (5, 61, 7300, 90000)] == ["5 s", "1 min", "2 h", "1 d"]
