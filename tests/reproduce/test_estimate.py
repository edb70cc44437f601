"""GPU hours of a reproduction from `bench --json` figures measured on a GPU."""

from __future__ import annotations

import json

import pytest

from clbench.core.errors import UserError
from clbench.reproduce.estimate import gpu_hours, load_figures, trained_images
from clbench.reproduce.plan import plan_entry, unique_runs
from clbench.reproduce.registry import registry
from tests.reproduce.helpers import CONFIGURE

FIGURE = {"arch": "vgg16", "image_size": 224, "finetune_ips": 500.0, "packnet_ips": 400.0}


def test_trained_images_count_epochs_retraining_and_imagenet(tmp_path):
    plans = plan_entry(registry()["packnet-table2"], CONFIGURE, False, tmp_path)
    by = {p.column.label: p.config for p in plans}
    # PackNet 0.50: ImageNet retrained 10 epochs after its prune; CUBS and Cars 20 + 10;
    # Flowers (last, unpruned) 20
    packnet = 1_281_167 * 10 + 5_994 * 30 + 8_144 * 30 + 2_040 * 20
    assert trained_images(by["PackNet 0.50, 0.75, 0.75"]) == packnet
    assert trained_images(by["Individual Networks"]) == (5_994 + 8_144 + 2_040) * 20


def test_gpu_hours_from_gpu_figures_only(tmp_path):
    plans = plan_entry(registry()["packnet-table2"], CONFIGURE, False, tmp_path / "runs")
    configs = [run.config for run in unique_runs(plans)]
    bench = tmp_path / "bench"
    bench.mkdir()
    cpu = {**FIGURE, "device": "cpu", "image_size": 32}
    (bench / "cpu.jsonl").write_text(json.dumps(cpu) + "\n" + json.dumps({"other": 1}) + "\n")
    (line,) = gpu_hours(configs, load_figures(bench))
    assert "no bench figures on a GPU for vgg16 at 224 px (figures found: cpu)" in line
    (bench / "gpu.json").write_text(json.dumps([{**FIGURE, "device": "NVIDIA H200"}]))
    (line,) = gpu_hours(configs, load_figures(bench))
    seconds = sum(
        trained_images(c) / (400.0 if c.strategy == "packnet" else 500.0) for c in configs
    )
    assert line.startswith(f"GPU hours on NVIDIA H200: {seconds / 3600:,.1f} h of training")
    assert "for 60 runs" in line


def test_a_damaged_figures_file_is_bad_input(tmp_path):
    (tmp_path / "bench.jsonl").write_text('{"arch": "vgg16",\n')
    with pytest.raises(UserError, match="bench.jsonl: unreadable"):
        load_figures(tmp_path)
