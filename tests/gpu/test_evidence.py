"""The GPU evidence script runs end to end on the CPU at tiny sizes and reports each step.

Its steps run the real command line; here in-process (each in a fresh interpreter would
spend most of the test importing torch and Avalanche again), with the environment each
step asks for.
"""

import contextlib
import io
import json
import os

import pytest
import torch

from clbench.bench import throughput
from clbench.cli import main
from tests.gpu import evidence


def in_process(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_evidence_script_runs_every_step_on_the_cpu(tmp_path, capsys, monkeypatch, single_thread):
    monkeypatch.setattr(evidence, "run_cli", in_process)
    code = evidence.main(["--out", str(tmp_path), "--tiny", "--strategies", "packnet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out) == {"failed": []}
    bench = json.loads((tmp_path / "bench-smallcnn.json").read_text())
    (figures,) = bench["figures"]
    assert figures["arch"] == "smallcnn" and 0 < figures["pipeline_share"] < 1
    run = json.loads((tmp_path / "run-packnet.json").read_text())
    assert run["check"]["exit_code"] == 0 and "packnet" in run["check"]["table"]
    for placement in ("device", "pinned-host"):
        timings = json.loads((tmp_path / f"pipeline-{placement}.json").read_text())["timings"]
        assert len(timings["images_per_second"]) == 4
    summary = json.loads((tmp_path / evidence.SUMMARY).read_text())
    assert summary["device"] == "cpu" and summary["failed"] == []
    assert set(summary["steps"]) == {p.name for p in tmp_path.glob("*.json")} - {"evidence.json"}


def test_steps_past_the_budget_are_skipped_and_reported(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(evidence, "run_cli", lambda *args: calls.append(args))
    code = evidence.main(["--out", str(tmp_path), "--tiny", "--budget", "1"])
    assert code == 1 and calls == []
    summary = json.loads((tmp_path / evidence.SUMMARY).read_text())
    assert summary["failed"] and all(s["exit_code"] == "skipped" for s in summary["steps"].values())


def test_a_step_that_runs_out_of_time_is_killed_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "MIN_STEP_SECONDS", 0)
    argv = ("run", "--strategy", "finetune", "--results", str(tmp_path))  # takes seconds
    result = evidence.clbench(evidence.Budget(1.0), *argv)  # a real interpreter
    assert result["exit_code"] == "timeout" and result["seconds"] < 10


def test_bench_compiles_every_variant_when_asked(monkeypatch):
    compiled = []
    monkeypatch.setattr(throughput, "compile_backbone", lambda model: compiled.append(model))
    figures = throughput.measure_throughput(
        "smallcnn", torch.device("cpu"), 16, 8, 2, speed=False, compile=True
    )
    assert figures["compile"] is True and len(compiled) == 3  # model alone, finetune, PackNet
