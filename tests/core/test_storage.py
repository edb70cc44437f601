"""Storage accounting against hand counts and the PackNet paper's storage table."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.catalog import STREAM_TASKS
from clbench.core.storage import MB, ModelSizes, index_bits
from clbench.models import architecture_sizes
from strategies import registry


def shared_network_storage(sizes: ModelSizes) -> dict:
    return registry.shared_network_storage(sizes, 1, {}, False)


def packnet_storage(sizes: ModelSizes, tasks: int, per_task_bn: bool = False) -> dict:
    options = {o.dest: o.default for o in registry.STRATEGIES["packnet"].options}
    return registry.packnet_storage(sizes, tasks, {**options, "per_task_bn": per_task_bn}, False)


def piggyback_storage(sizes: ModelSizes, tasks: int, pretrained: bool) -> dict:
    return registry.piggyback_storage(sizes, tasks, {}, pretrained)


def individual_storage(sizes: ModelSizes, tasks: int) -> dict:
    return registry.individual_storage(sizes, tasks, {}, False)


FINEGRAINED_HEADS = [classes for _, classes in STREAM_TASKS["finegrained"]]
# ANCHORS.md, fine-grained stream (4 tasks), MB: classifier only, PackNet, individual networks.
ANCHORS = {
    "vgg16": (562, 595, 2173),
    "resnet50": (107, 112, 389),
    "densenet121": (34, 36, 119),
}
# SmallCNN (1 input channel) by hand: conv 1->32 3x3, conv 32->64 3x3, linear 1024->128.
SMALL_WEIGHTS = 32 * 9 + 64 * 32 * 9 + 1024 * 128
SMALL_BACKBONE_PARAMS = SMALL_WEIGHTS + 128 + 2 * (32 + 64)  # + linear bias, BN affine
SMALL_BN_STATS = 2 * (32 + 64)  # running mean and var (num_batches_tracked not counted)


@pytest.fixture(scope="module")
def finegrained_models():
    return {arch: architecture_sizes(arch, FINEGRAINED_HEADS) for arch in ANCHORS}


@pytest.fixture
def small():
    return architecture_sizes("smallcnn", [2, 3, 5], in_channels=1)


def check_consistent(result: dict, models: int) -> None:
    assert result["models"] == models
    assert all(isinstance(v, int) for v in result["breakdown"].values())
    assert result["total_bytes"] == sum(result["breakdown"].values())


def within_one_percent(total_bytes: int, anchor_mb: float) -> bool:
    return abs(total_bytes / MB - anchor_mb) <= 0.01 * anchor_mb


@pytest.mark.parametrize("arch", ANCHORS)
def test_paper_storage_table(finegrained_models, arch):
    model = finegrained_models[arch]
    classifier, packnet, individual = ANCHORS[arch]
    results = (
        shared_network_storage(model),
        packnet_storage(model, 4),
        individual_storage(model, 4),
    )
    for result, anchor, models in zip(results, (classifier, packnet, individual), (1, 1, 4)):
        check_consistent(result, models)
        assert within_one_percent(result["total_bytes"], anchor), (result, anchor)


def test_vgg16_backbone_and_two_bit_masks(finegrained_models):
    """ANCHORS.md: conv1_1..fc7 = ~134 M weights = 537 MB; 4 tasks cost ~34 MB of masks."""
    result = packnet_storage(finegrained_models["vgg16"], 4)
    assert round(result["breakdown"]["backbone_params"] / MB) == 537
    assert round(result["breakdown"]["masks"] / MB) == 34


@pytest.mark.parametrize(("tasks", "bits"), [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3)])
def test_packnet_mask_bits(small, tasks, bits):
    assert index_bits(tasks) == bits
    result = packnet_storage(small, tasks)
    check_consistent(result, 1)
    assert result["breakdown"]["masks"] == math.ceil(SMALL_WEIGHTS * bits / 8)
    assert result["total_bytes"] == shared_network_storage(small)["total_bytes"] + math.ceil(
        SMALL_WEIGHTS * bits / 8
    )


def test_shared_network_counts_by_hand(small):
    result = shared_network_storage(small)
    check_consistent(result, 1)
    assert result["breakdown"] == {
        "backbone_params": 4 * SMALL_BACKBONE_PARAMS,
        "backbone_buffers": 4 * SMALL_BN_STATS,
        "heads": 4 * 129 * (2 + 3 + 5),
    }


def test_packnet_per_task_batchnorm(small):
    plain, per_task = packnet_storage(small, 3), packnet_storage(small, 3, per_task_bn=True)
    check_consistent(per_task, 1)
    one_copy = 4 * 4 * (32 + 64)  # weight, bias, running mean, running var; fp32
    assert per_task["breakdown"]["per_task_batchnorm"] == 2 * one_copy
    assert per_task["total_bytes"] - plain["total_bytes"] == 2 * one_copy


@pytest.mark.parametrize(("pretrained", "masks"), [(True, 2), (False, 3)])
def test_piggyback_one_bit_per_weight_per_masked_task(small, pretrained, masks):
    result = piggyback_storage(small, 3, pretrained)
    check_consistent(result, 1)
    assert result["breakdown"]["masks"] == masks * math.ceil(SMALL_WEIGHTS / 8)
    shared = shared_network_storage(small)["total_bytes"]
    assert result["total_bytes"] == shared + masks * math.ceil(SMALL_WEIGHTS / 8)


def test_individual_networks(small):
    result = individual_storage(small, 3)
    check_consistent(result, 3)
    assert result["total_bytes"] == 4 * (
        3 * (SMALL_BACKBONE_PARAMS + SMALL_BN_STATS) + 129 * (2 + 3 + 5)
    )


def test_cli_json_reproduces_paper_table(run_cli):
    """classifier_only strictly; packnet and individual whenever they are registered."""
    from strategies.registry import STRATEGIES

    columns = {"classifier_only": (0, 1), "packnet": (1, 1), "individual": (2, 4)}
    for arch, anchors in ANCHORS.items():
        code, out, err = run_cli("storage", "--stream", "finegrained", "--arch", arch, "--json")
        assert code == 0, err
        results = json.loads(out)
        assert list(results) == list(STRATEGIES)
        for name, result in results.items():
            check_consistent(result, result["models"])
            if name in columns:
                column, models = columns[name]
                assert result["models"] == models
                assert within_one_percent(result["total_bytes"], anchors[column]), (arch, name)
        assert "classifier_only" in results


def test_cli_table_and_bad_names(run_cli):
    code, out, _ = run_cli("storage", "--stream", "splitmnist", "--arch", "smallcnn")
    assert code == 0
    assert "classifier_only" in out and "total MB" in out
    for argv, expected in (
        (("--stream", "nope", "--arch", "vgg16"), "unknown stream 'nope'; choose from:"),
        (("--stream", "finegrained", "--arch", "nope"), "unknown architecture 'nope'"),
    ):
        code, out, err = run_cli("storage", *argv)
        assert code == 2 and expected in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_splitmnist_matches_run_model(run_cli):
    """splitmnist + smallcnn is grey (1 channel), as the stream feeds it."""
    code, out, _ = run_cli("storage", "--stream", "splitmnist", "--arch", "smallcnn", "--json")
    assert code == 0
    sizes = architecture_sizes("smallcnn", [2] * 5, in_channels=1)
    assert json.loads(out)["classifier_only"] == shared_network_storage(sizes)
