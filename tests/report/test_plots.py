"""``plot``: every figure is written as a non-empty PNG; figures that do not apply are skipped."""

from __future__ import annotations

from pathlib import Path

from tests.report.test_leaderboard import ORDERS, make_record, write, write_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def written_paths(out: str) -> list[Path]:
    return [Path(line) for line in out.splitlines() if line.strip()]


def test_plot_writes_every_figure(run_cli, tmp_path):
    write_results(tmp_path)
    code, out, err = run_cli("plot", str(tmp_path))
    assert code == 0, err
    paths = written_paths(out)
    names = {p.name for p in paths}
    heatmaps = {
        f"finegrained-vgg16-heatmap-{s}.png"
        for s in ("individual", "finetune", "classifier_only", "joint")
    }
    assert (
        heatmaps
        | {
            "finegrained-vgg16-old-tasks.png",
            "finegrained-vgg16-orders.png",
            "finegrained-vgg16-storage.png",
        }
        == names
    )
    for path in paths:
        assert path.parent == tmp_path / "plots"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert "broken" in err and "running" in err


def test_single_order_skips_per_order_figure(run_cli, tmp_path):
    for seed in (0, 1):
        write(tmp_path, make_record("finetune", seed, ORDERS[0], seed))
    record = make_record("classifier_only", 0, ORDERS[0], 0)
    del record["storage"]
    write(tmp_path, record)
    code, out, err = run_cli("plot", str(tmp_path))
    assert code == 0, err
    names = {p.name for p in written_paths(out)}
    assert "finegrained-vgg16-orders.png" not in names
    assert "several task orders" in err
    assert "finegrained-vgg16-storage.png" in names  # finetune recorded its storage


def test_plot_bad_folder(run_cli, tmp_path):
    code, _, err = run_cli("plot", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli("plot", str(tmp_path))
    assert code == 2 and "no complete run records" in err
