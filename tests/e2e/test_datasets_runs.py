"""The papers' streams through the CLI on fixture data: runs with and without ImageNet,
every strategy on a stream whose pretrained task 0 has no data, the pretrained task
with its data, ``--orders all``, pretrained weights from the torch cache, ``data check``
and one-line errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torchvision import models

import clbench.run.runner as runner_module
from benchmarks import STREAMS
from benchmarks.papers import build_dataset_stream
from benchmarks.stream import Stream
from clbench.core.config import RunConfig
from clbench.core.errors import UserError
from clbench.models import find_pretrained_weights, weights_file_name
from clbench.multihead import build_model
from clbench.resolve import resolve
from strategies.base import BuildContext
from strategies.registry import STRATEGIES
from tests import dataset_fixtures as fx
from tests.conftest import find_records

TINY = "--no-pretrained --image-size 32 --epochs 1 --batch-size 8".split()
SMALLCNN = "--arch smallcnn --no-pretrained --image-size 16 --epochs 1 --batch-size 8".split()


@pytest.fixture(scope="module")
def full_root(tmp_path_factory) -> Path:
    return fx.finegrained(tmp_path_factory.mktemp("full"))


@pytest.fixture(scope="module")
def no_imagenet_root(tmp_path_factory) -> Path:
    return fx.finegrained(tmp_path_factory.mktemp("noimagenet"), with_imagenet=False)


def run_finegrained(run_cli, root: Path, results: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(
        "run", "--stream", "finegrained", "--data-root", str(root), "--results", str(results),
        *args,
    )  # fmt: skip


@pytest.mark.parametrize("strategy", ["finetune", "packnet"])
@pytest.mark.parametrize("imagenet", [True, False], ids=["imagenet", "no-imagenet"])
def test_finegrained_runs_end_to_end(
    run_cli, full_root, no_imagenet_root, tmp_path, strategy, imagenet
):
    root = full_root if imagenet else no_imagenet_root
    retrain = ("--retrain-epochs", "1") if strategy == "packnet" else ()
    code, out, err = run_finegrained(
        run_cli, root, tmp_path, "--strategy", strategy, "--arch", "resnet18", *TINY, *retrain
    )
    assert code == 0, err
    (record,) = find_records(tmp_path)
    assert record["status"] == "complete"
    assert record["tasks"] == ["imagenet", "cubs", "cars", "flowers"]
    assert record["config"]["pretrained"] is False and record["config"]["image_size"] == 32
    images = record["stream"]["images"]
    assert images["train"][1:] == [15, 15, 18] and images["valid"][1:] == [0, 0, 0]  # no holdout
    assert images["test"][1:] == [6, 6, 9]
    last = record["acc_top1"][-1]
    assert all(v is not None for v in last[1:])
    if imagenet:
        assert record["not_measured"] == [] and last[0] is not None
        assert record["stream"]["classes"] == [3, 3, 3, 3]
        assert record["timings"]["images_per_second"][0] > 0  # trained: not pretrained
    else:
        assert record["not_measured"] == ["imagenet"]
        assert all(row[0] is None for row in record["acc_top1"])
        assert record["stream"]["classes"][0] == 1000
        assert "not measured" in out  # the result table, on stdout


@pytest.mark.parametrize(
    "strategy", ["classifier_only", "packnet", "piggyback", "lwf", "ewc", "individual", "joint"]
)
def test_every_strategy_runs_without_imagenet(run_cli, no_imagenet_root, tmp_path, strategy):
    retrain = ("--retrain-epochs", "1") if strategy == "packnet" else ()
    code, _, err = run_finegrained(
        run_cli, no_imagenet_root, tmp_path, "--strategy", strategy, *SMALLCNN, *retrain
    )
    assert code == 0, err
    (record,) = find_records(tmp_path)
    assert record["status"] == "complete" and record["not_measured"] == ["imagenet"]
    assert record["final"]["top1"][0] is None
    assert all(v is not None for v in record["final"]["top1"][1:])


def fake_cache(torch_home: Path, arch: str) -> Path:
    """A torchvision-format state dict where torchvision caches ``arch``'s V1 weights."""
    path = torch_home / "hub" / "checkpoints" / weights_file_name(arch)
    path.parent.mkdir(parents=True)
    torch.manual_seed(123)
    torch.save(getattr(models, arch)(weights=None).state_dict(), path)
    return path


def test_pretrained_weights_come_from_the_torch_cache(tmp_path, monkeypatch):
    assert weights_file_name("resnet50") == "resnet50-0676ba61.pth"  # V1, not DEFAULT (V2)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match="resnet18-f37072fd.pth.*--weights.*--no-pretrained"):
        find_pretrained_weights("resnet18")
    path = fake_cache(tmp_path, "resnet18")
    assert find_pretrained_weights("resnet18") == path
    state = torch.load(path)
    model = build_model("resnet18", [1000, 7], weights=path, pretrained_head=0)
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.heads[0].weight, state["fc.weight"])
    assert torch.equal(model.heads[0].bias, state["fc.bias"])
    with pytest.raises(UserError, match="task 0 has 3 classes but the pretrained classifier"):
        build_model("resnet18", [3, 7], weights=path, pretrained_head=0)
    with pytest.raises(UserError, match="smallcnn has no ImageNet-pretrained weights"):
        find_pretrained_weights("smallcnn")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    with pytest.raises(UserError, match=f"cannot read weights {bad}"):
        build_model("resnet18", [1000], weights=bad)
    with pytest.raises(UserError, match="do not fit resnet50"):
        build_model("resnet50", [1000], weights=path)


def test_densenet_checkpoint_key_names_are_mapped(tmp_path):
    torch.manual_seed(0)
    state = models.densenet121(weights=None).state_dict()
    # torchvision's published DenseNet files name "norm1" / "conv2" as "norm.1" / "conv.2"
    old = {
        k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v for k, v in state.items()
    }
    assert old.keys() != state.keys()
    path = tmp_path / "densenet.pth"
    torch.save(old, path)
    model = build_model("densenet121", [1000], weights=path, pretrained_head=0)
    conv = "features.denseblock1.denselayer1.conv2.weight"
    assert torch.equal(model.backbone.state_dict()[conv], state[conv])


def test_pretrained_run_without_imagenet_serves_task_0_from_the_weights(
    run_cli, no_imagenet_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    results = tmp_path / "results"
    args = "--arch resnet18 --image-size 32 --epochs 1 --batch-size 8".split()
    code, _, err = run_finegrained(
        run_cli, no_imagenet_root, results, "--strategy", "classifier_only", *args
    )
    assert code == 2 and "resnet18-f37072fd.pth" in err and len(err.strip().splitlines()) == 1
    assert not results.exists()
    path = fake_cache(tmp_path / "torch", "resnet18")
    code, _, err = run_finegrained(
        run_cli, no_imagenet_root, results, "--strategy", "classifier_only", *args
    )
    assert code == 0, err
    (record,) = find_records(results)
    assert record["config"]["pretrained"] is True and record["not_measured"] == ["imagenet"]
    code, _, err = run_finegrained(
        run_cli, no_imagenet_root, results, "--strategy", "finetune", *args,
        "--weights", str(path), "--no-pretrained",
    )  # fmt: skip
    assert code == 2 and "exclude each other" in err


def pretrained_stream(stream: str, name: str, root: Path, tmp_path: Path, monkeypatch) -> None:
    """Register stream ``name``: ``stream`` on ``root`` at 16 px whose ImageNet task (a few
    images of 3 of the 1000 classes) is the pretrained network's, resnet18 weights in a
    fake torch cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    fake_cache(tmp_path / "torch", "resnet18")

    def build(**kwargs) -> Stream:
        built = build_dataset_stream(stream, root, image_size=16)
        tasks = [replace(built.tasks[0], num_classes=1000), *built.tasks[1:]]
        return Stream(name, tasks, 3, 16, first_task_pretrained=True)

    monkeypatch.setitem(STREAMS._specs, name, replace(STREAMS[stream], name=name, build=build))


@pytest.mark.parametrize(
    "strategy", ["packnet", "piggyback", "classifier_only", "individual", "lwf", "ewc"]
)
def test_pretrained_task_with_its_data_is_adopted_and_evaluated(
    full_root, tmp_path, monkeypatch, strategy
):
    """ImageNet on disk (a few images of 3 of the 1000 classes, standing in for the full
    set) with pretrained weights: evaluated, never trained (PackNet: retrained after
    pruning)."""
    pretrained_stream("finegrained", "pretrained1000", full_root, tmp_path, monkeypatch)
    options = {"retrain_epochs": 1} if strategy == "packnet" else {}
    config = resolve(RunConfig(
        strategy=strategy, stream="pretrained1000", arch="resnet18", epochs=1, batch_size=8,
        lr=1e-4, results=str(tmp_path / "results"), options=options,
    ))  # fmt: skip
    assert config.pretrained
    record = runner_module.run(config).to_dict()
    assert record["not_measured"] == []
    first = [row[0] for row in record["acc_top1"]]
    assert all(v is not None for v in first)
    untouched = record["pretrained_network"]
    assert untouched["task"] == "imagenet" and untouched["top1"] is not None
    assert record["final"]["pretrained_top1"] == first[-1]
    if strategy == "packnet":  # pruned (the paper's 0.5), then retrained on ImageNet's train split
        assert record["timings"]["images_per_second"][0] > 0
        usage = record["strategy_report"]["weight_usage"]["total"]["tasks"]
        assert abs(usage[0] - 0.5) < 1e-3
        before = max(untouched["top1"], *first[:-1])
        assert record["final"]["forgetting_per_task"][0] == before - first[-1]
    else:  # served as it is, never trained
        assert record["timings"]["images_per_second"][0] == 0
    if strategy in ("piggyback", "classifier_only", "individual"):  # and never changes
        assert first == [untouched["top1"]] * 4


def test_one_task_added_to_a_filter_pruned_pretrained_network(
    run_cli, full_root, tmp_path, monkeypatch
):
    """Table 6's setting on imagenet_cubs: the pretrained ImageNet network (adopted with
    its data) loses 30% of its filters and is retrained, then CUBS alone is added; the
    three stages of ImageNet's error are recorded and its outputs re-verified by check."""
    pretrained_stream("imagenet_cubs", "cubs1000", full_root, tmp_path, monkeypatch)
    options = {"prune_granularity": "filter", "prune_ratios": "0.3", "retrain_epochs": 1}
    config = resolve(RunConfig(
        strategy="packnet", stream="cubs1000", arch="resnet18", epochs=1, batch_size=8,
        lr=1e-4, results=str(tmp_path / "results"), options={**options, "eval_pruning": True},
    ))  # fmt: skip
    assert config.options["prune_ratios"] == "0.3,-1"  # the added task is not pruned
    record = runner_module.run(config).to_dict()
    assert record["status"] == "complete" and record["tasks"] == ["imagenet", "cubs"]
    (stage,) = record["prune_stages"]
    assert (stage["task"], stage["prune_ratio"]) == ("imagenet", 0.3)
    usage = record["strategy_report"]["weight_usage"]["total"]["tasks"]
    assert 0.6 < usage[0] < 0.75 and abs(sum(usage) - 1) < 1e-6  # CUBS takes every freed weight
    (folder,) = {path.parent for path in (tmp_path / "results").rglob("record.json")}
    code, _, err = run_cli("check", str(folder))
    assert code == 0, err


def test_classifier_only_freezes_a_pretrained_backbone_from_the_first_added_task(
    no_imagenet_root,
):
    config = resolve(RunConfig(
        strategy="classifier_only", stream="finegrained", arch="smallcnn", image_size=16,
        epochs=1, batch_size=8, lr=0.1, data_root=str(no_imagenet_root),
    ))  # fmt: skip
    assert config.pretrained  # the stream's default; the backbone stands for ImageNet's
    stream = build_dataset_stream("finegrained", no_imagenet_root, image_size=16)
    torch.manual_seed(0)
    model = build_model("smallcnn", stream.head_sizes, 3)
    learner = STRATEGIES["classifier_only"].build(
        BuildContext(config, model, stream, torch.device("cpu"), [])
    )
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = model.heads[1].weight.clone()
    learner.train(stream.benchmark.train_stream[1], eval_streams=[])
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included
    assert not torch.equal(head, model.heads[1].weight)


def test_orders_all_writes_one_record_per_order(run_cli, no_imagenet_root, tmp_path):
    code, _, err = run_finegrained(
        run_cli, no_imagenet_root, tmp_path, "--strategy", "finetune", *SMALLCNN,
        "--orders", "all",
    )  # fmt: skip
    assert code == 0, err
    records = find_records(tmp_path)
    assert len(records) == 6
    orders = sorted(tuple(r["config"]["order"]) for r in records)
    assert orders == [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    assert len({r["config"]["run_id"] for r in records}) == 6
    for record in records:
        added = [["cubs", "cars", "flowers"][i] for i in record["config"]["order"]]
        assert record["tasks"] == ["imagenet", *added]
    code, _, err = run_cli("run", "--strategy", "finetune", "--orders", "all", "--order", "1,0")
    assert code == 2 and "exclude each other" in err


def data_check(run_cli, stream: str, root: Path) -> tuple[int, str, str]:
    return run_cli("data", "check", "--stream", stream, "--data-root", str(root))


def test_data_check_reports_and_exits_by_whether_the_stream_can_run(
    run_cli, full_root, no_imagenet_root, tmp_path
):
    code, out, err = data_check(run_cli, "finegrained", full_root)
    assert code == 0, err
    assert "official archive" in out and "torchvision StanfordCars" in out
    assert "15 / 5,994" in out and "finegrained can run" in out
    code, out, err = data_check(run_cli, "finegrained", no_imagenet_root)
    assert code == 0, err
    assert "missing (optional)" in out and "not measured" in out
    fx.cub(tmp_path)
    code, out, err = data_check(run_cli, "finegrained6", tmp_path)
    assert code == 2
    assert "stanford_cars_cropped" in out and "wikiart" in out
    assert err.strip().splitlines() == [
        f"clbench: error: finegrained6 cannot run from {tmp_path}: cars missing, "
        "flowers missing, wikiart missing, sketch missing"
    ]
    (tmp_path / "CUB_200_2011" / "classes.txt").unlink()
    code, out, _ = data_check(run_cli, "finegrained", tmp_path)
    assert code == 2 and "invalid" in out and "lacks classes.txt" in out
    code, out, err = data_check(run_cli, "finegrained", tmp_path / "nowhere")
    assert code == 2 and "nowhere (no such folder): cubs missing" in err
    assert "CUB_200_2011" in out and "data check" not in err  # what to put where, not itself


def test_bad_data_fails_in_one_line_before_the_results_folder(run_cli, tmp_path):
    results = tmp_path / "results"
    root = fx.finegrained(tmp_path / "data", with_imagenet=False)
    args = ("--strategy", "finetune", *SMALLCNN)
    mat = root / "stanford_cars" / "devkit" / "cars_train_annos.mat"
    saved = mat.read_bytes()
    mat.write_bytes(b"\x00" * 64)
    code, _, err = run_finegrained(run_cli, root, results, *args)
    assert code == 2 and "cannot read" in err and "cars_train_annos.mat" in err
    assert len(err.strip().splitlines()) == 1 and not results.exists()
    mat.write_bytes(saved)
    code, _, err = run_finegrained(run_cli, tmp_path / "nowhere", results, *args)
    assert code == 2 and "data root" in err and not results.exists()
    (root / "CUB_200_2011").rename(root / "elsewhere")
    code, _, err = run_finegrained(run_cli, root, results, *args)
    assert code == 2 and "cubs not found: expected" in err and "cubs_cropped" in err
    assert len(err.strip().splitlines()) == 1 and not results.exists()
    (root / "elsewhere").rename(root / "CUB_200_2011")
    bad = next((root / "stanford_cars" / "cars_test").glob("*.jpg"))
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    code, _, err = run_finegrained(run_cli, root, results, *args)  # decoded before training
    assert code == 2 and err.startswith(f"clbench: error: cannot read image {bad}: ")
    assert len(err.strip().splitlines()) == 1 and not results.exists()
    code, _, err = run_finegrained(run_cli, root, results, *args, "--pipeline", "loader")
    errors = [line for line in err.splitlines() if "error" in line.lower()]  # while evaluating
    assert code == 2 and "Traceback" not in err and len(errors) == 1
    assert errors[0].startswith(f"clbench: error: cannot read image {bad}: ")
    (record,) = find_records(results)
    assert record["status"] == "failed" and str(bad) in record["error"]
