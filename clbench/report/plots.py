"""Figures of the run records under a folder (seaborn, Agg backend, PNG files).

* ``heatmap``: the mean top-1 accuracy matrix of each group (runs of its most common task
  order; rows = after training a task, columns = evaluated task; joint training has
  only its final row). One colour scale per stream / architecture, spanning the
  accuracies its groups reached (not 0-100), so the differences that matter show and
  the heatmaps of one stream compare.
* ``old-tasks``: per stream / architecture, one panel per group trained task by task:
  each task's accuracy after every later task (PackNet paper, Figure 2), mean ± std
  over the runs of the group's most common order.
* ``orders``: top-1 error per task for each task order (PackNet paper, Figure 3), for
  groups whose runs used several orders.
* ``storage``: storage (MB) against average final top-1 accuracy, one labelled point per
  group (labels moved apart where points are close).
* ``prune-stages``: PackNet runs with ``--eval-pruning``: each pruned task's top-1 error
  after training, right after pruning and after retraining, per prune ratio (PackNet
  paper, Figure 4).
* ``capacity``: PackNet groups (e.g. a prune-ratio sweep): each task's final top-1
  error against the share of prunable weights still free after it.

Tick labels that would overlap are turned; legends sit outside the panels. Figures stay
bounded whatever the number of tasks: the heatmap is at most :data:`MAX_FIGURE_INCHES` a
side, and the per-task figures (``old-tasks``, ``orders``) show the first
:data:`MAX_TASKS_SHOWN` tasks of the stream's order.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from clbench.core.metrics import error  # noqa: E402
from clbench.core.record import PRUNE_STAGES  # noqa: E402
from clbench.report.leaderboard import (  # noqa: E402
    Group,
    by_stream_arch,
    default_task_order,
    differing_options,
)

STAGE_NAMES = dict(zip(PRUNE_STAGES, ("after training", "right after pruning", "after retraining")))

MIN_SCALE_SPAN = 5
"""Fewest accuracy points a heatmap colour scale spans."""
TITLE_WIDTH = 60
"""Characters per line of a heatmap's title."""
DPI = 100
MAX_FIGURE_INCHES = 20.0
"""Largest side of the heatmap's figure (2,000 pixels at :data:`DPI`)."""
MAX_TASKS_SHOWN = 20
"""Tasks the per-task figures show at most: the first ones in the stream's order."""
LABEL_CLUSTER_PX = 40
"""Points closer than this (pixels, horizontally) share a column of labels."""


def _order_text(order: Sequence[str]) -> str:
    """``a > b > c``; past :data:`MAX_TASKS_SHOWN` tasks, the first ones and the count."""
    text = " > ".join(name.replace(" ", "\N{NO-BREAK SPACE}") for name in order[:MAX_TASKS_SHOWN])
    return text if len(order) <= MAX_TASKS_SHOWN else f"{text} > ... ({len(order)} tasks)"


def _suptitle(figure: plt.Figure, text: str, tasks: list[str]) -> None:
    """The figure's title, with a second line when it shows only the first tasks."""
    if len(tasks) > MAX_TASKS_SHOWN:
        text += f"\n(first {MAX_TASKS_SHOWN} of {len(tasks)} tasks)"
    figure.suptitle(text, y=1.03 if len(tasks) <= MAX_TASKS_SHOWN else 1.1)


def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9.-]+", "_", part).strip("_") for part in parts)


def _reference_runs(group: Group) -> tuple[tuple[str, ...], list[dict]]:
    """The group's most common task order and its runs."""
    order = group.orders[0]
    return order, [r for r in group.records if tuple(r.tasks) == order]


def only_final_row(group: Group) -> bool:
    """Whether the group's records hold only the final row of the accuracy matrix (joint
    training: no task was trained alone)."""
    return all(v is None for r in group.records for row in r.acc_top1[:-1] for v in row)


def _overlap(boxes) -> bool:
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def turn_overlapping_tick_labels(figure: plt.Figure) -> None:
    """Turn the x tick labels of every panel by 30 degrees where they would overlap."""
    renderer = figure.canvas.get_renderer()
    for axes in figure.axes:
        labels = [label for label in axes.get_xticklabels() if label.get_text()]
        if _overlap([label.get_window_extent(renderer) for label in labels]):
            for label in labels:
                label.set_rotation(30)
                label.set_horizontalalignment("right")
                label.set_rotation_mode("anchor")


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def accuracy_matrix(group: Group) -> pd.DataFrame:
    """Mean top-1 accuracy of the group's reference-order runs: rows ``after <task>``
    (only those with a value: joint training has its final row alone), columns the
    evaluated tasks in training order."""
    order, runs = _reference_runs(group)
    cells = pd.DataFrame(
        [
            {"after": f"after {order[i]}", "task": order[j], "accuracy": value}
            for run in runs
            for i, row in enumerate(run.acc_top1)
            for j, value in enumerate(row)
            if value is not None
        ],
        columns=["after", "task", "accuracy"],
    )
    matrix = cells.pivot_table(index="after", columns="task", values="accuracy", aggfunc="mean")
    matrix = matrix.reindex(index=[f"after {t}" for t in order], columns=list(order))
    return matrix.dropna(how="all").astype(float)


def colour_scale(matrices: list[pd.DataFrame]) -> tuple[float, float]:
    """(lowest, highest) accuracy of ``matrices``, widened to whole percent and to at
    least :data:`MIN_SCALE_SPAN` points."""
    values = pd.concat([m.stack() for m in matrices])
    low, high = math.floor(values.min()), math.ceil(values.max())
    if high - low < MIN_SCALE_SPAN:
        low = max(0, high - MIN_SCALE_SPAN)
        high = low + MIN_SCALE_SPAN
    return low, high


def accuracy_heatmap(
    group: Group, matrix: pd.DataFrame, scale: tuple[float, float], out_dir: Path
) -> Path:
    """The group's accuracy matrix (:func:`accuracy_matrix`) on the colour ``scale``."""
    order, runs = _reference_runs(group)
    rows, columns = matrix.shape
    width = min(1.1 * columns + 3.5, MAX_FIGURE_INCHES)
    figure, axes = plt.subplots(figsize=(width, min(0.8 * rows + 2.2, MAX_FIGURE_INCHES)))
    labels = ["after all tasks, jointly"] if only_final_row(group) else list(matrix.index)
    if len(labels) > MAX_TASKS_SHOWN:
        labels = -(-len(labels) // MAX_TASKS_SHOWN)  # every n-th label
    sns.heatmap(
        matrix,
        annot=columns <= 10,
        fmt=".1f",
        cmap="viridis",
        vmin=scale[0],
        vmax=scale[1],
        cbar_kws={"label": "top-1 accuracy %"},
        xticklabels="auto" if columns <= MAX_TASKS_SHOWN else -(-columns // MAX_TASKS_SHOWN),
        yticklabels=labels,
        ax=axes,
    )
    axes.tick_params(axis="y", labelrotation=0)
    order_text = _order_text(order)
    title = f"{group.label} on {group.stream} / {group.arch}: mean of {len(runs)} run(s)\n"
    axes.set_title(title + textwrap.fill(f"order {order_text}", TITLE_WIDTH), fontsize=9)
    axes.set_xlabel("evaluated task")
    axes.set_ylabel("")
    turn_overlapping_tick_labels(figure)
    return _save(figure, out_dir / f"{_slug(group.stream, group.arch, 'heatmap', group.label)}.png")


def old_task_curves(groups: list[Group], out_dir: Path) -> Path:
    """Each task's accuracy after it and every later task, one panel per group (groups
    trained task by task: see :func:`only_final_row`)."""
    tasks = default_task_order([r for g in groups for r in g.records])
    shown = set(tasks[:MAX_TASKS_SHOWN])
    rows = []
    for group in groups:
        order, runs = _reference_runs(group)
        for run in runs:
            for i, row in enumerate(run.acc_top1):
                for j, value in enumerate(row[: i + 1]):
                    if value is not None and order[j] in shown:
                        rows.append(
                            {
                                "strategy": group.label,
                                "tasks trained": i + 1,
                                "task": order[j],
                                "top-1 accuracy %": value,
                            }
                        )
    frame = pd.DataFrame(rows)
    grid = sns.relplot(
        data=frame,
        kind="line",
        x="tasks trained",
        y="top-1 accuracy %",
        hue="task",
        hue_order=[t for t in tasks if t in set(frame["task"])],
        col="strategy",
        col_wrap=min(3, len(groups)),
        marker="o" if len(tasks) <= MAX_TASKS_SHOWN else None,
        errorbar="sd",
        height=3.2,
        aspect=1.2,
    )
    if len(tasks) <= MAX_TASKS_SHOWN:
        grid.set(xticks=range(1, len(tasks) + 1))
    grid.set_titles("{col_name}")
    _suptitle(
        grid.figure,
        f"{groups[0].stream} / {groups[0].arch}: accuracy of old tasks as tasks are added",
        tasks,
    )
    return _save(
        grid.figure, out_dir / f"{_slug(groups[0].stream, groups[0].arch, 'old-tasks')}.png"
    )


def order_errors(groups: list[Group], out_dir: Path) -> Path | None:
    """Top-1 error per task and task order, for groups run with several orders."""
    several = [g for g in groups if len(g.orders) > 1]
    if not several:
        return None
    tasks = default_task_order([r for g in several for r in g.records])
    shown = tasks[:MAX_TASKS_SHOWN]
    rows = [
        {
            "strategy": group.label,
            "order": _order_text(run.tasks),
            "task": task,
            "top-1 error %": error(value),
        }
        for group in several
        for run in group.records
        for task, value in zip(run.tasks, run.acc_top1[-1])
        if value is not None and task in shown
    ]
    frame = pd.DataFrame(rows)
    grid = sns.catplot(
        data=frame,
        kind="bar",
        x="task",
        y="top-1 error %",
        hue="order",
        order=shown,
        col="strategy",
        col_wrap=min(3, len(several)),
        errorbar="sd",
        height=3.4,
        aspect=1.3,
    )
    grid.set_titles("{col_name}")
    sns.move_legend(
        grid,
        "upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(3, len(set(frame["order"]))),
        title="task order",
        frameon=False,
    )
    turn_overlapping_tick_labels(grid.figure)
    _suptitle(grid.figure, f"{groups[0].stream} / {groups[0].arch}: error per task order", tasks)
    return _save(grid.figure, out_dir / f"{_slug(groups[0].stream, groups[0].arch, 'orders')}.png")


def _spread(positions: list[float], gap: float, low: float, high: float) -> list[float]:
    """``positions`` (sorted) moved apart to at least ``gap`` from each other, within
    [low, high] where they fit: pushed up from the lowest, then back down from ``high``."""
    placed: list[float] = []
    for position in positions:
        placed.append(max(position, low, placed[-1] + gap) if placed else max(position, low))
    for index in range(len(placed) - 1, -1, -1):
        ceiling = high if index == len(placed) - 1 else placed[index + 1] - gap
        placed[index] = min(placed[index], ceiling)
    return placed


def label_points(axes: plt.Axes, points: list[tuple[str, float, float]], fontsize: float) -> None:
    """Label each (text, x, y) point of ``axes``. Points less than
    :data:`LABEL_CLUSTER_PX` apart horizontally share a column of labels beside them (to
    the right; to the left in the right third of the axes), moved apart vertically so
    that none overlaps another, with a leader line where a label had to move."""
    axes.set_xlim(axes.get_xlim())  # fixed now, so that pixels map to data as when drawn
    axes.set_ylim(axes.get_ylim())
    renderer = axes.figure.canvas.get_renderer()
    box = axes.get_window_extent(renderer)
    probe = axes.text(0, 0, "Mg", fontsize=fontsize)
    gap = probe.get_window_extent(renderer).height * 1.25
    probe.remove()
    to_pixels, to_data = axes.transData, axes.transData.inverted()
    pixels = sorted((*to_pixels.transform((x, y)), text) for text, x, y in points)
    clusters: list[list[tuple[float, float, str]]] = []
    for point in pixels:
        if clusters and point[0] - clusters[-1][-1][0] < LABEL_CLUSTER_PX:
            clusters[-1].append(point)
        else:
            clusters.append([point])
    for members in clusters:
        left = members[0][0] > box.x0 + 2 * box.width / 3
        column = members[0][0] - 16 if left else members[-1][0] + 16
        members.sort(key=lambda member: member[1])
        placed = _spread([py for _, py, _ in members], gap, box.y0 + gap / 2, box.y1 - gap / 2)
        for (px, py, text), ty in zip(members, placed):
            moved = abs(ty - py) > gap / 4 or abs(column - px) > 18
            axes.annotate(
                text,
                to_data.transform((px, py)),
                xytext=to_data.transform((column, ty)),
                textcoords="data",
                ha="right" if left else "left",
                va="center",
                fontsize=fontsize,
                arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.6} if moved else None,
            )


def storage_accuracy(groups: list[Group], out_dir: Path) -> Path | None:
    """Storage MB against average final top-1 accuracy (mean ± std), one labelled point
    per group."""
    points = [
        (g.label, g.storage_mb, g.avg_top1.mean, g.avg_top1.std or 0.0)
        for g in groups
        if g.storage_mb is not None and g.avg_top1.mean is not None
    ]
    if not points:
        return None
    frame = pd.DataFrame(points, columns=["strategy", "storage MB", "average top-1 %", "std"])
    figure, axes = plt.subplots(figsize=(7.5, 5))
    axes.errorbar(
        frame["storage MB"],
        frame["average top-1 %"],
        yerr=frame["std"],
        fmt="none",
        ecolor="grey",
        capsize=3,
    )
    sns.scatterplot(
        data=frame, x="storage MB", y="average top-1 %", hue="strategy", s=60, legend=False, ax=axes
    )
    if frame["storage MB"].max() > 10 * frame["storage MB"].min():
        axes.set_xscale("log")
    axes.margins(x=0.25, y=0.12)
    axes.set_title(f"{groups[0].stream} / {groups[0].arch}: storage vs average accuracy")
    label_points(axes, [(p[0], p[1], p[2]) for p in points], fontsize=8)
    return _save(figure, out_dir / f"{_slug(groups[0].stream, groups[0].arch, 'storage')}.png")


def _tasks_of(frame: pd.DataFrame, groups: list[Group]) -> list[str]:
    """The tasks in ``frame`` in the stream's default order."""
    present = set(frame["task"])
    return [t for t in default_task_order([r for g in groups for r in g.records]) if t in present]


def prune_stage_errors(groups: list[Group], out_dir: Path) -> Path | None:
    """Top-1 error of each pruned task after training, right after pruning and after
    retraining, per prune ratio (mean ± std over runs; PackNet paper, Figure 4). Groups
    that differ in options other than the ratios get a row of panels each."""
    staged = [g for g in groups if any(r.prune_stages for r in g.records)]
    if not staged:
        return None
    variants = {id(g): differing_options(g, staged, ignore=("prune_ratios",)) for g in staged}
    rows = [
        {
            "variant": variants[id(group)] or group.strategy,
            "task": entry["task"],
            "split": entry["split"],
            "prune ratio": f"{entry['prune_ratio']:g}",
            "stage": STAGE_NAMES[stage],
            "top-1 error %": error(entry[stage]),
        }
        for group in staged
        for run in group.records
        for entry in run.prune_stages or []
        for stage in PRUNE_STAGES
        if entry.get(stage) is not None
    ]
    frame = pd.DataFrame(rows)
    frame = frame.iloc[frame["prune ratio"].astype(float).argsort(kind="stable")]
    tasks = _tasks_of(frame, staged)
    several = frame["variant"].nunique() > 1
    grid = sns.catplot(
        data=frame,
        kind="bar",
        x="prune ratio",
        y="top-1 error %",
        hue="stage",
        hue_order=list(STAGE_NAMES.values()),
        col="task",
        col_order=tasks,
        col_wrap=None if several else min(5, len(tasks)),
        row="variant" if several else None,
        errorbar="sd",
        sharex=False,  # each panel shows the ratios its task was pruned at, in order
        height=3.0,
        aspect=0.85,
    )
    grid.set_titles("{col_name}")
    if several:  # the options of each row, on its first panel (they are long)
        for axes, variant in zip(grid.axes[:, 0], grid.row_names):
            axes.set_ylabel(f"{textwrap.fill(variant, 45)}\n\ntop-1 error %", fontsize=8)
        for axes in grid.axes[1:].flat:
            axes.set_title("")
    splits = " / ".join(sorted(set(frame["split"])))
    grid.figure.suptitle(
        f"{groups[0].stream} / {groups[0].arch}: top-1 error ({splits} split) of each pruned "
        "task after training, right after pruning, after retraining",
        y=1.04,
    )
    name = _slug(groups[0].stream, groups[0].arch, "prune-stages")
    return _save(grid.figure, out_dir / f"{name}.png")


def capacity_tradeoff(groups: list[Group], out_dir: Path) -> Path | None:
    """Each task's final top-1 error against the share of prunable weights still free
    after it was packed (mean ± std over runs), one point per group, for two or more
    groups reporting PackNet's weight usage (a prune-ratio sweep)."""
    points = []
    for group in groups:
        for run in group.records:
            usage = ((run.strategy_report or {}).get("weight_usage") or {}).get("total")
            if not usage:
                continue
            taken = 0.0
            for task, share, top1 in zip(run.tasks, usage["tasks"], run.final_top1):
                taken += share
                if top1 is not None:
                    points.append((group.label, task, 100 * (1 - taken), error(top1)))
    frame = pd.DataFrame(points, columns=["group", "task", "free", "error"])
    if frame["group"].nunique() < 2:
        return None
    stats = frame.groupby(["task", "group"]).agg(
        free=("free", "mean"), error=("error", "mean"), std=("error", "std")
    )
    tasks = _tasks_of(frame, groups)
    labels = list(dict.fromkeys(frame["group"]))
    colours = dict(zip(labels, sns.color_palette(n_colors=len(labels))))
    figure, axes = plt.subplots(
        1, len(tasks), figsize=(2.9 * len(tasks) + 0.6, 3.4), sharey=True, squeeze=False
    )
    for axis, task in zip(axes[0], tasks):
        part = stats.loc[task].sort_values("free")
        axis.plot(part["free"], part["error"], color="lightgrey", zorder=1)
        for label, point in part.iterrows():
            axis.errorbar(
                point["free"],
                point["error"],
                yerr=0.0 if pd.isna(point["std"]) else point["std"],
                fmt="o",
                color=colours[label],
                capsize=3,
                label=label,
            )
        axis.set_title(task, fontsize=9)
        axis.set_xlabel("free after it, % of weights", fontsize=8)
    axes[0][0].set_ylabel("final top-1 error %")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[k]) for k in labels]
    columns = 1 if max(map(len, labels)) > 45 else min(3, len(labels))
    figure.legend(
        handles,
        labels,
        loc="upper center",
        ncol=columns,
        fontsize=8,
        bbox_to_anchor=(0.5, -0.02),
    )
    figure.suptitle(
        f"{groups[0].stream} / {groups[0].arch}: each task's error against the capacity "
        "left free after it",
        y=1.02,
    )
    return _save(figure, out_dir / f"{_slug(groups[0].stream, groups[0].arch, 'capacity')}.png")


def plot_all(groups: list[Group], out_dir: Path) -> tuple[list[Path], list[str]]:
    """Write every figure; returns (paths written, messages about figures skipped)."""
    written: list[Path] = []
    messages: list[str] = []
    for (stream, arch), members in by_stream_arch(groups).items():
        tasks = default_task_order([r for g in members for r in g.records])
        if len(tasks) > MAX_TASKS_SHOWN:
            messages.append(
                f"{stream} / {arch}: {len(tasks)} tasks; the per-task figures show the "
                f"first {MAX_TASKS_SHOWN} of {len(tasks)} tasks"
            )
        matrices = [accuracy_matrix(group) for group in members]
        scale = colour_scale(matrices)
        written += [
            accuracy_heatmap(group, matrix, scale, out_dir)
            for group, matrix in zip(members, matrices)
        ]
        sequential = [group for group in members if not only_final_row(group)]
        if sequential:
            written.append(old_task_curves(sequential, out_dir))
        if len(sequential) < len(members):
            joint = ", ".join(g.label for g in members if only_final_row(g))
            messages.append(
                f"{stream} / {arch}: {joint} trained all tasks at once (no accuracy after each "
                "task): not in the old-tasks figure"
            )
        orders = order_errors(members, out_dir)
        if orders is None:
            messages.append(
                f"{stream} / {arch}: no group has runs with several task orders; "
                "per-order error figure skipped"
            )
        else:
            written.append(orders)
        storage = storage_accuracy(members, out_dir)
        if storage is None:
            messages.append(f"{stream} / {arch}: no storage recorded; storage figure skipped")
        else:
            written.append(storage)
        written += [
            path
            for path in (prune_stage_errors(members, out_dir), capacity_tradeoff(members, out_dir))
            if path is not None
        ]
    return written, messages
