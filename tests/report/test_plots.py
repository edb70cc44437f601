"""``plot``: every figure is written as a non-empty PNG; figures that do not apply are skipped."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.text import Text
from matplotlib.transforms import Bbox

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


# ----------------------------------------------------------------------------- layout
def drawn_figures(monkeypatch, root: Path) -> dict[str, plt.Figure]:
    """Every figure ``plot_all`` makes of the records under ``root``, by file name, drawn."""
    from clbench.report import plots
    from clbench.report.leaderboard import build_groups
    from clbench.report.scan import scan_records

    figures = {}

    def keep(figure, path):
        figure.canvas.draw()
        figures[path.name] = figure
        return path

    monkeypatch.setattr(plots, "_save", keep)
    plots.plot_all(build_groups(scan_records(root).records), root / "plots")
    return figures


def text_boxes(figure: plt.Figure) -> list[tuple[str, Bbox]]:
    renderer = figure.canvas.get_renderer()
    ticks, drawn = set(), []
    for axes in figure.axes:  # tick labels: only those of ticks in view are drawn
        for axis, (low, high) in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
            labels = axis.get_ticklabels()
            ticks |= set(map(id, labels))
            low, high = sorted((low, high))
            locations = axis.get_ticklocs()
            drawn += [t for t, at in zip(labels, locations) if low - 1e-9 <= at <= high + 1e-9]
    drawn += [t for t in figure.findobj(Text) if id(t) not in ticks]
    texts = [t for t in drawn if t.get_visible() and t.get_text().strip()]
    # Text's own extent: an annotation's would include its leader line.
    return [(text.get_text(), Text.get_window_extent(text, renderer)) for text in texts]


def crowded_results(root: Path) -> None:
    """Seven methods with the same storage and close accuracies (labels would collide),
    an individual-networks group, joint training, two task orders."""
    write_results(root)
    for offset, name in enumerate(("lwf", "ewc", "piggyback", "packnet", "classifier")):
        record = make_record("finetune", 0, ORDERS[0], 0)
        record["config"]["strategy"] = name
        record["acc_top1"] = [
            [v + 0.3 * offset if v else v for v in row] for row in record["acc_top1"]
        ]
        write(root, record, name)


def test_figures_have_no_overlapping_text_and_legends_outside_panels(monkeypatch, tmp_path):
    crowded_results(tmp_path)
    figures = drawn_figures(monkeypatch, tmp_path)
    assert {"finegrained-vgg16-storage.png", "finegrained-vgg16-orders.png"} <= set(figures)
    for name, figure in figures.items():
        boxes = text_boxes(figure)
        clashes = [
            (a, b)
            for i, (a, box_a) in enumerate(boxes)
            for b, box_b in boxes[i + 1 :]
            if box_a.overlaps(box_b)
        ]
        assert not clashes, (name, clashes)
        renderer = figure.canvas.get_renderer()
        for legend in figure.legends + [a.get_legend() for a in figure.axes if a.get_legend()]:
            frame = legend.get_window_extent(renderer)
            panels = [a for a in figure.axes if a.get_label() != "<colorbar>"]
            assert not any(frame.overlaps(a.get_window_extent(renderer)) for a in panels), name


def test_heatmap_scale_spans_the_accuracies_and_joint_has_its_final_row_only(monkeypatch, tmp_path):
    write_results(tmp_path)
    figures = drawn_figures(monkeypatch, tmp_path)
    joint = figures["finegrained-vgg16-heatmap-joint.png"].axes[0]
    assert [t.get_text() for t in joint.get_yticklabels()] == ["after all tasks, jointly"]
    # One scale for the stream: the lowest and highest mean accuracy of the groups' cells
    # (joint on cars 50, individual on flowers 91), not 0-100.
    for name, figure in figures.items():
        if "heatmap" in name:
            assert figure.axes[0].collections[0].get_clim() == (50, 91), name
