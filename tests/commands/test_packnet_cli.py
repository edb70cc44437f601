"""PackNet through the command line on the embedded splitmnist stream."""

from __future__ import annotations

import json

import pytest

from tests.conftest import find_records


def test_packnet_forgetting_is_exactly_zero_on_splitmnist(run_cli, tmp_path):
    code, _, err = run_cli(
        "run",
        "--strategy",
        "packnet",
        "--results",
        str(tmp_path),
        "--epochs",
        "1",
        "--retrain-epochs",
        "1",
        "--prune-ratios",
        "0.5,0.75,0.75,0.75,-1",
    )
    assert code == 0, err
    (record,) = find_records(tmp_path)
    matrix = record["acc_top1"]
    for j in range(5):
        # Bit-identical weights give identical predictions: every later row repeats R[j][j].
        assert {matrix[i][j] for i in range(j, 5)} == {matrix[j][j]}
    assert record["final"]["forgetting"] == 0.0
    assert record["final"]["avg_top1"] > 80
    usage = record["strategy_report"]["weight_usage"]["total"]
    # 0.5 then 0.75 of what is left, the last task unpruned: it takes every free weight.
    expected = [0.5, 0.125, 0.09375, 0.0703125]
    assert usage["tasks"][:4] == pytest.approx(expected, abs=2e-3)
    assert usage["free"] == 0.0
    assert record["strategy_report"]["mask_bits"] == 3 * usage["weights"]  # ceil(log2 5)
    assert record["storage"]["breakdown"]["masks"] == 3 * usage["weights"] // 8
    assert record["config"]["options"]["prune_ratios"] == "0.5,0.75,0.75,0.75,-1"


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ("0.5,0.75", "lists 2 values but the stream has 5 tasks"),
        ("1.0", "must be < 1"),
        ("0.5,x", "comma-separated numbers"),
    ],
)
def test_bad_prune_ratios_one_line_exit_2(run_cli, tmp_path, ratios, expected):
    code, _, err = run_cli(
        "run", "--strategy", "packnet", "--results", str(tmp_path), "--prune-ratios", ratios
    )
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_packnet_flags_rejected_for_other_strategies(run_cli, tmp_path):
    code, _, err = run_cli(
        "run", "--strategy", "finetune", "--results", str(tmp_path), "--prune-ratios", "0.5"
    )
    assert code == 2 and "applies to --strategy packnet only" in err


def test_bench_json_reports_ratios_measured_in_one_process(run_cli):
    code, out, err = run_cli(
        "bench", "--arch", "smallcnn", "--steps", "1", "--batch-size", "4", "--json"
    )
    assert code == 0, err
    figures = json.loads(out)
    assert figures["device"] == "cpu" and figures["image_size"] == 32
    for key in ("model_only_ips", "finetune_ips", "packnet_ips"):
        assert figures[key] > 0
    assert figures["packnet_ratio"] == pytest.approx(
        figures["packnet_ips"] / figures["model_only_ips"]
    )
    step = figures["packnet_step"]
    for key in ("train_ratio", "eval_ratio", "avalanche_vs_ours_train", "avalanche_vs_ours_eval"):
        assert step[key] > 0
    assert step["train_ratio"] == pytest.approx(step["packnet_train_ms"] / step["plain_train_ms"])
    assert run_cli("bench", "--arch", "nope")[0] == 2
