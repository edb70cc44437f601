"""The GPU evidence script runs end to end on the CPU at tiny sizes and reports each step."""

import json

import pytest

from tests.gpu import evidence


@pytest.mark.slow
def test_evidence_script_runs_every_step_on_the_cpu(tmp_path, capsys):
    code = evidence.main(["--out", str(tmp_path), "--tiny", "--strategies", "packnet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out) == {"failed": []}
    bench = json.loads((tmp_path / "bench-smallcnn.json").read_text())
    assert bench["figures"] and bench["figures"][0]["arch"] == "smallcnn"
    run = json.loads((tmp_path / "run-packnet.json").read_text())
    assert run["check"]["exit_code"] == 0 and "packnet" in run["check"]["table"]
    for placement in ("device", "pinned-host"):
        timings = json.loads((tmp_path / f"pipeline-{placement}.json").read_text())["timings"]
        assert len(timings["images_per_second"]) == 4
