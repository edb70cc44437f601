"""``compare`` on synthetic run records: grouping, mean ± std, every output format."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from clbench.core.record import RunRecord
from clbench.report.leaderboard import build_groups, default_task_order
from clbench.report.scan import scan_records

TASKS = ["imagenet", "cubs", "cars", "flowers"]
ORDERS = ([0, 1, 2, 3], [0, 3, 1, 2])
TRAIN_SECONDS = [10.0, 20.0, 30.0, 40.0]
IMAGES_PER_SECOND = [100.0, 100.0, 200.0, 200.0]  # 17,000 images in 100 s: 170 images/s
# Final top-1 per task for run r (r = 0..3) is BASE + 2 r; top-5 of ImageNet is 90 + r.
BASE = {"imagenet": 70.0, "cubs": 60.0, "cars": 50.0, "flowers": 80.0}
STRATEGIES = {  # name: (accuracy offset, per-step drop of old tasks, storage bytes, models)
    "classifier_only": (0.0, 0.0, 561_590_000, 1),
    "finetune": (5.0, 4.0, 561_590_000, 1),
    "individual": (10.0, 0.0, 2_172_720_000, 4),
}


def make_record(strategy: str, seed: int, order: list[int], run: int, **config) -> dict:
    """A complete record; old tasks lose ``drop`` points per later task, ending at final."""
    offset, drop, total_bytes, models = STRATEGIES[strategy]
    tasks = [TASKS[i] for i in order]
    final = [BASE[name] + offset + 2 * run for name in tasks]
    last = len(tasks) - 1
    top1 = [[final[j] + (last - i) * drop if j <= i else None for j in range(4)] for i in range(4)]
    top5 = [
        [90.0 + run if j <= i and tasks[j] == "imagenet" else None for j in range(4)]
        for i in range(4)
    ]
    return {
        "status": "complete",
        "config": {
            "strategy": strategy,
            "stream": "finegrained",
            "arch": "vgg16",
            "seed": seed,
            "order": order,
            "epochs": 1,
            "lr": 0.01,
            "results": "elsewhere",
            "device": "cpu",
            "run_id": f"seed{seed}-{order}",
            "data_root": "data",
            "options": {},
            **config,
        },
        "environment": {"device": "cpu", "threads": 1},
        "tasks": tasks,
        "acc_top1": top1,
        "acc_top5": top5,
        "final": {"top1": top1[-1], "top5": top5[-1]},
        "storage": {"total_bytes": total_bytes, "models": models, "breakdown": {}},
        "timings": {"train_seconds": TRAIN_SECONDS, "images_per_second": IMAGES_PER_SECOND},
    }


def joint_record(seed: int) -> dict:
    """Joint training: only the last row of the matrices is filled."""
    record = make_record("classifier_only", seed, ORDERS[0], 0)
    record["config"]["strategy"] = "joint"
    for name in ("acc_top1", "acc_top5"):
        record[name] = [[None] * 4 for _ in range(3)] + [record[name][-1]]
    record["timings"] = {"train_seconds": [50.0], "images_per_second": [300.0]}
    return record


def write(root: Path, record: dict, name: str | None = None) -> None:
    config = record["config"]
    folder = root / config["stream"] / config["arch"] / config["strategy"]
    path = folder / (name or f"s{config['seed']}-o{''.join(map(str, config['order']))}")
    path.mkdir(parents=True, exist_ok=True)
    (path / "record.json").write_text(json.dumps(record))


def write_results(root: Path) -> None:
    """Every strategy x seeds 0, 1 x two orders (runs 0..3), a joint run, and bad records."""
    for strategy in STRATEGIES:
        for run, (seed, order) in enumerate((s, o) for o in ORDERS for s in (0, 1)):
            write(root, make_record(strategy, seed, order, run))
    write(root, joint_record(0))
    broken = root / "finegrained" / "vgg16" / "finetune" / "broken"
    broken.mkdir(parents=True)
    (broken / "record.json").write_text('{"status": "compl')
    running = make_record("finetune", 7, ORDERS[0], 0)
    running["status"] = "running"
    write(root, running, "running")


@pytest.fixture
def results(tmp_path):
    write_results(tmp_path)
    return tmp_path


def sample_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def test_scan_skips_malformed_and_unfinished(results):
    short = make_record("finetune", 8, ORDERS[0], 0)
    short["acc_top1"][2] = [1.0]
    write(results, short, "short_row")
    text = make_record("finetune", 9, ORDERS[0], 0)
    text["acc_top5"][3][0] = "91%"
    write(results, text, "text_cell")
    write(results, {**make_record("finetune", 10, ORDERS[0], 0), "tasks": None}, "no_tasks")
    scan = scan_records(results)
    assert len(scan.records) == 13
    reasons = {path.parent.name: reason for path, reason in scan.skipped}
    assert set(reasons) == {"broken", "running", "short_row", "text_cell", "no_tasks"}
    assert "unreadable" in reasons["broken"] and "running" in reasons["running"]
    assert "rows do not match" in reasons["short_row"]
    assert "not finite numbers" in reasons["text_cell"]


def test_groups_aggregate_over_seeds_and_orders(results):
    groups = {g.label: g for g in build_groups(scan_records(results).records)}
    assert set(groups) == {"classifier_only", "finetune", "individual", "joint"}
    finetune = groups["finetune"]
    assert len(finetune.records) == 4 and len(finetune.orders) == 2
    errors = [100 - (50.0 + 5.0 + 2 * run) for run in range(4)]  # cars, matched by name
    cars = finetune.task_error("acc_top1")["cars"]
    assert cars.mean == pytest.approx(sum(errors) / 4)
    assert cars.std == pytest.approx(sample_std(errors))
    assert finetune.task_error("acc_top5")["imagenet"].mean == pytest.approx(100 - 91.5)
    # forgetting: drop x (3 + 2 + 1) / 3 = 8 in every run; bwt = -8
    assert finetune.forgetting.mean == pytest.approx(8.0) and finetune.forgetting.std == 0
    assert finetune.bwt.mean == pytest.approx(-8.0)
    assert finetune.train_seconds.mean == pytest.approx(100.0)
    assert finetune.images_per_second.mean == pytest.approx(170.0)
    joint = groups["joint"]
    assert joint.forgetting.mean is None and joint.bwt.mean is None
    assert (
        joint.avg_top1.mean == pytest.approx(sum(BASE.values()) / 4) and joint.avg_top1.std is None
    )
    ranked = [g.label for g in build_groups(scan_records(results).records)]
    assert ranked == ["individual", "finetune", "classifier_only", "joint"]


def test_options_split_groups_and_label_them(tmp_path):
    for ratio in (0.5, 0.75):
        for seed in (0, 1):
            record = make_record("finetune", seed, ORDERS[0], seed, options={"ratio": ratio})
            write(tmp_path, record, f"r{ratio}-s{seed}")
    groups = build_groups(scan_records(tmp_path).records)
    assert sorted(g.label for g in groups) == ["finetune (ratio=0.5)", "finetune (ratio=0.75)"]
    assert all(len(g.records) == 2 for g in groups)


def test_how_a_run_executed_does_not_split_groups_but_its_pipeline_does(tmp_path):
    how = [
        {"workers": 8, "cache_dir": "/a", "compile": True, "pipeline": "memory"},
        {"workers": 0, "cache_dir": "/b", "compile": False, "pipeline": "memory"},
        {"pipeline": "loader", "precision": "fp32"},
        {},  # recorded before --pipeline and --precision existed: loader, fp32
    ]
    for seed, fields in enumerate(how):
        write(tmp_path, make_record("finetune", seed, ORDERS[0], seed, **fields), f"s{seed}")
    groups = build_groups(scan_records(tmp_path).records)
    labels = {g.label: len(g.records) for g in groups}
    assert labels == {"finetune (pipeline=memory)": 2, "finetune (pipeline=loader)": 2}


def test_default_task_order_undoes_the_permutation():
    record = RunRecord.from_dict(make_record("finetune", 0, [0, 3, 1, 2], 0))
    assert default_task_order([record]) == TASKS


def test_table_output_and_files_written(run_cli, results):
    code, out, err = run_cli("compare", str(results))
    assert code == 0, err
    for text in ("models (size MB)", "average", "individual", "flowers", "2,172.7"):
        assert text in out
    assert "broken" in err and "running" in err
    markdown = (results / "leaderboard.md").read_text()
    assert "| task | individual | finetune | classifier_only | joint |" in markdown
    frame = pd.read_csv(results / "leaderboard.csv")
    assert list(frame["label"]) == ["individual", "finetune", "classifier_only", "joint"]
    assert not list(results.glob(".leaderboard*"))  # no temporary files left behind


def test_markdown_cells(run_cli, results):
    code, out, _ = run_cli("compare", str(results), "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    header = "| task | individual | finetune | classifier_only | joint |"
    assert header in lines
    cubs = next(line for line in lines if line.startswith("| cubs |"))
    errors = [100 - (60.0 + 10.0 + 2 * run) for run in range(4)]
    assert f"{sum(errors) / 4:.2f} ± {sample_std(errors):.2f}" in cubs.split("|")[2]
    imagenet = next(line for line in lines if line.startswith("| imagenet |"))
    assert f"(8.50 ± {sample_std([10.0, 9.0, 8.0, 7.0]):.2f})" in imagenet
    sizes = next(line for line in lines if line.startswith("| models (size MB) |"))
    assert "4 (2,172.7)" in sizes and "1 (561.6)" in sizes


def test_csv_parses(run_cli, results):
    code, out, _ = run_cli("compare", str(results), "--format", "csv")
    assert code == 0
    frame = pd.read_csv(io.StringIO(out)).set_index("label")
    assert frame.loc["finetune", "avg_top1_mean"] == pytest.approx(sum(BASE.values()) / 4 + 5 + 3)
    assert frame.loc["finetune", "forgetting_mean"] == pytest.approx(8.0)
    assert math.isnan(frame.loc["joint", "forgetting_mean"])
    assert frame.loc["individual", "top1_error_mean[flowers]"] == pytest.approx(100 - 93.0)
    assert frame.loc["individual", "storage_mb"] == pytest.approx(2172.72)
    assert "top5_error_mean[cubs]" not in frame.columns  # no top-5 recorded
    assert next(csv.reader(io.StringIO(out)))[0] == "stream"


def test_json_parses(run_cli, results):
    code, out, _ = run_cli("compare", str(results), "--format", "json")
    assert code == 0
    data = json.loads(out)
    groups = {g["label"]: g for g in data["groups"]}
    cubs = groups["classifier_only"]["top1_error"]["cubs"]
    errors = [100 - (60.0 + 2 * run) for run in range(4)]
    assert cubs["mean"] == pytest.approx(sum(errors) / 4)
    assert cubs["std"] == pytest.approx(sample_std(errors))
    assert groups["joint"]["forgetting"] == {"mean": None, "std": None}
    assert groups["finetune"]["runs"] == 4 and len(groups["finetune"]["orders"]) == 2
    assert {Path(s["path"]).parent.name for s in data["skipped"]} == {"broken", "running"}


def test_a_run_recorded_twice_counts_once(run_cli, results):
    """The same configuration and seed in another folder (a copy, another --run-id or
    results folder) is one run: n and the std stay those of the distinct runs; the first
    record in path order is kept."""
    folder = results / "finegrained" / "vgg16" / "finetune"
    write(results, make_record("finetune", 0, ORDERS[0], 0, run_id="z", results="b"), "z-copy")
    code, out, err = run_cli("compare", str(results), "--format", "json")
    assert code == 0
    data = json.loads(out)
    kept, copy = folder / "s0-o0123" / "record.json", folder / "z-copy" / "record.json"
    assert data["duplicates"] == [{"path": str(copy), "same_as": str(kept)}]
    finetune = next(g for g in data["groups"] if g["label"] == "finetune")
    assert finetune["runs"] == 4 and len(finetune["records"]) == 4
    assert str(kept) in finetune["records"] and str(copy) not in finetune["records"]
    errors = [100 - (60.0 + 5.0 + 2 * run) for run in range(4)]
    assert finetune["top1_error"]["cubs"]["std"] == pytest.approx(sample_std(errors))
    assert f"duplicate {copy}" in " ".join(err.split()) and "counted once" in err


def test_a_record_from_before_an_option_is_the_same_run_as_one_with_its_default(run_cli, results):
    """A record written before an option existed (here LwF's --lwf-warmup-epochs) is the
    same run as one that holds the option at its default: counted once."""
    newer = make_record("finetune", 0, ORDERS[0], 0, run_id="a")  # its numbers, as LwF's
    newer["config"]["strategy"] = "lwf"
    newer["config"]["options"] = {"lwf_temperature": 2.0, "lwf_weight": 1.0, "lwf_warmup_epochs": 5}
    write(results, newer, "with-option")
    older = json.loads(json.dumps(newer))
    del older["config"]["options"]["lwf_warmup_epochs"]
    older["config"]["run_id"] = "b"
    write(results, older, "without-option")
    code, out, _ = run_cli("compare", str(results), "--format", "json")
    assert code == 0
    (duplicate,) = [d for d in json.loads(out)["duplicates"] if "option" in d["path"]]
    assert Path(duplicate["path"]).parent.name == "without-option"


def test_latex(run_cli, results):
    code, out, _ = run_cli("compare", str(results), "--format", "latex")
    assert code == 0
    assert out.count("\\begin{tabular}") == 2 and out.count("\\end{tabular}") == 2
    assert "$\\pm$" in out and "classifier\\_only" in out and "±" not in out


def test_bad_input(run_cli, tmp_path):
    code, _, err = run_cli("compare", str(tmp_path), "--format", "xml")
    assert code == 2 and "invalid choice" in err
    code, _, err = run_cli("compare", str(tmp_path))
    assert code == 2 and "no complete run records" in err
    assert not (tmp_path / "leaderboard.md").exists()
