"""Atomic record writing: a failure mid-write never leaves a partial record."""

from __future__ import annotations

import json
import os

import pytest

import clbench.run.runner as runner_module
from clbench.core.config import RunConfig
from clbench.core.record import atomic_write_json
from clbench.resolve import resolve
from tests.conftest import find_records


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "record.json"
    atomic_write_json(path, {"status": "running", "n": 1})
    atomic_write_json(path, {"status": "complete", "n": 2})
    assert json.loads(path.read_text()) == {"status": "complete", "n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_failure_during_write_keeps_previous_record(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    atomic_write_json(path, {"status": "running"})

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"status": "complete", "big": list(range(10_000))})
    assert json.loads(path.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_unserialisable_record_touches_nothing(tmp_path):
    path = tmp_path / "record.json"
    with pytest.raises(ValueError):
        atomic_write_json(path, {"acc": float("nan")})
    assert not path.exists() and not list(tmp_path.iterdir())


def test_crash_mid_run_leaves_a_valid_failed_record(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_summarize = runner_module.TopkAccuracyPlugin.after_eval_exp

    def crash_on_second_task(self, strategy, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real_summarize(self, strategy, **kwargs)

    monkeypatch.setattr(runner_module.TopkAccuracyPlugin, "after_eval_exp", crash_on_second_task)
    config = resolve(RunConfig(strategy="finetune", results=str(tmp_path), epochs=1))
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner_module.run(config)
    (record,) = find_records(tmp_path)
    assert record["status"] == "failed"
    assert "simulated crash" in record["error"]
    assert len(record["acc_top1"]) == 1


def test_the_pretrained_network_field_is_optional_and_validated():
    from clbench.core.record import RecordError, RunRecord

    record = RunRecord.start({"strategy": "s", "stream": "t", "arch": "a"}, {"device": "cpu"},
                             ["imagenet", "cubs"], {}, [])  # fmt: skip
    old = record.to_dict()
    assert "pretrained_network" not in old  # records written before it still load
    assert RunRecord.from_dict(old).pretrained_network is None
    record.note_pretrained("imagenet", 71.5, None)
    data = record.to_dict()
    assert RunRecord.from_dict(data).pretrained_network == {
        "task": "imagenet", "top1": 71.5, "top5": None
    }  # fmt: skip
    data["pretrained_network"]["top1"] = "71%"
    with pytest.raises(RecordError, match="'pretrained_network' is not an object"):
        RunRecord.from_dict(data)
