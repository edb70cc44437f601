"""The registry of published results: every shipped entry loads and its grids plan, with
the runs the papers averaged over; broken entries are refused naming file and field."""

from __future__ import annotations

from collections import Counter

import pytest

from clbench.core.errors import UserError
from clbench.reproduce.plan import plan_entry, unique_runs
from clbench.reproduce.registry import load_entry, registry
from tests.reproduce.helpers import CONFIGURE, entry_text, run_tasks

ENTRIES = registry()
# (column label, runs) of every entry, as its source averages them (see each entry).
EXPECTED_RUNS = {
    "packnet-table2": {
        "Classifier Only": 3,
        "LwF": 18,
        "PackNet 0.50, 0.75, 0.75": 18,
        "PackNet 0.75, 0.75, 0.75": 18,
        "Individual Networks": 3,
    },
    "packnet-table3": {
        "Jointly Trained": 0,
        "PackNet 0.50": 3,
        "PackNet 0.75": 3,
        "Individual Networks": 0,
    },
    "packnet-table4": {
        f"{arch} {method}": runs
        for arch in ("VGG-16-BN", "ResNet-50", "DenseNet-121")
        for method, runs in (
            ("Classifier Only", 3),
            ("PackNet 0.50, 0.75, 0.75", 18),
            ("Individual Networks", 3),
        )
    },
    "packnet-checkpoints": {
        **{f"{a} PackNet": 3 for a in ("VGG-16", "VGG-16-BN", "ResNet-50", "DenseNet-121")},
        "VGG-16 LwF": 3,
    },
    "packnet-table5": {"Separate biases": 18, "Shared biases": 18},
    "packnet-table6": {"Filter pruning 0.30": 9, "Weight pruning 0.50": 9, "Classifier Only": 9},
    "packnet-figure4": {"Prune 0.75": 9, "Prune 0.90": 9},
    "piggyback-errors": {f"{a} Piggyback": 3 for a in ("VGG-16", "ResNet-50", "DenseNet-121")},
    "cpg-six-tasks-resnet50": {"PackNet": 3, "Piggyback": 3},
    "packnet-cifar100-20": {
        "PackNet (CPG's VGG-16-BN for CIFAR)": 0,
        "PackNet 0.6, torchvision VGG-16-BN (reference, not the published network)": 3,
    },
}


def test_every_published_table_is_shipped():
    assert set(ENTRIES) == set(EXPECTED_RUNS)


@pytest.mark.parametrize("name", sorted(EXPECTED_RUNS))
def test_plan_has_the_papers_runs_and_the_miniature_its_shape(name, tmp_path):
    entry = ENTRIES[name]
    plans = plan_entry(entry, CONFIGURE, False, tmp_path)
    assert {p.column.label: len(p.runs) for p in plans} == EXPECTED_RUNS[name]
    assert len(unique_runs(plans)) == sum(EXPECTED_RUNS[name].values())
    minis = {p.column.label: p for p in plan_entry(entry, CONFIGURE, True, tmp_path / "m")}
    for full in plans:
        mini = minis[full.column.label]
        assert bool(mini.runs) == bool(full.runs)
        if not full.runs:
            continue
        assert mini.config.stream == "splitmnist" and mini.config.epochs == 1
        assert mini.config.strategy == full.config.strategy
        assert set(mini.config.options) == set(full.config.options)
        for axis in ("seed", "order"):  # varied where the entry varies it, several values
            full_values = {str(getattr(run.config, axis)) for run in full.runs}
            mini_values = {str(getattr(run.config, axis)) for run in mini.runs}
            assert (len(mini_values) >= 2) == (len(full_values) >= 2), axis
        if full.config.strategy == "packnet":  # one prune ratio per task, the last unpruned
            ratios = full.config.options["prune_ratios"].split(",")
            assert len(ratios) == len(run_tasks(full.runs[0]))
            assert float(ratios[-1]) < 0 or name == "packnet-figure4"  # it prunes the added task


def test_table2_pruning_columns_are_every_order_times_three_seeds(tmp_path):
    plans = plan_entry(ENTRIES["packnet-table2"], CONFIGURE, False, tmp_path)
    packnet = [p for p in plans if p.column.label.startswith("PackNet")]
    for column_plan in packnet:
        grid = Counter((tuple(r.config.order), r.config.seed) for r in column_plan.runs)
        assert len(grid) == 18 and len({order for order, _ in grid}) == 6
        assert {r.config.options["prune_ratios"] for r in column_plan.runs} <= {
            "0.5,0.75,0.75,-1",
            "0.75,0.75,0.75,-1",
        }
        assert {r.config.weight_decay for r in column_plan.runs} == {0.0}
    assert packnet[0].runs[0].config.options["retrain_epochs"] == 10


ONE_TASK_STREAMS = ["imagenet_cubs", "imagenet_cars", "imagenet_flowers"]


@pytest.mark.parametrize("name", ["packnet-table6", "packnet-figure4"])
def test_section5_columns_add_each_task_alone_to_the_pruned_imagenet_network(name, tmp_path):
    entry = ENTRIES[name]
    assert entry.streams == ONE_TASK_STREAMS
    for column_plan in plan_entry(entry, CONFIGURE, False, tmp_path):
        runs = Counter((r.config.stream, r.config.seed) for r in column_plan.runs)
        assert set(runs) == {(s, seed) for s in ONE_TASK_STREAMS for seed in (0, 1, 2)}
        assert column_plan.streams == tuple(ONE_TASK_STREAMS)
        assert {len(run_tasks(r)) for r in column_plan.runs} == {2}
    tasks = [task for task, _ in entry.rows(False)]
    assert tasks[-3:] == ["cubs", "cars", "flowers"]
    ratios = {p.column.label: p.config.options.get("prune_ratios") for p in
              plan_entry(entry, CONFIGURE, False, tmp_path)}  # fmt: skip
    expected = {
        "packnet-table6": {
            "Filter pruning 0.30": "0.3,-1",
            "Weight pruning 0.50": "0.5,-1",
            "Classifier Only": None,
        },
        "packnet-figure4": {"Prune 0.75": "0.5,0.75", "Prune 0.90": "0.5,0.9"},
    }  # fmt: skip
    assert ratios == expected[name]


GOOD = entry_text("finegrained", "cubs = 20.0")

BROKEN = [  # (text of GOOD, replaced by, the field the message names)
    ('metric = "error"', 'metric = "loss"', "metric"),
    ('stream = "finegrained"', 'stream = "nowhere"', "base.stream"),
    ('source = "s"\naverages', "averages", "columns[0].source"),
    ("cubs = 20.0", "moon = 1.0", "columns[0].published.moon"),
    ("cubs = 20.0", "cubs = { top1 = 'high' }", "columns[0].published.cubs.top1"),
    ('strategy = "finetune"', 'strategy = "finetune"\nresults = "x"', "columns[0].base.results"),
    ('strategy = "finetune"', 'strategy = "finetune"\nno-such-option = 1', "columns[0]"),
    (
        "seeds = [0, 1]\n[columns.pub",
        "seeds = [0, 1]\nlr = [1, 2]\n[columns.pub",
        "columns[0].grid.lr",
    ),
    ("[mini.grid]\nseeds = [0, 1]", "[mini.grid]\nseeds = [0]", "mini.grid.seeds"),
    ('[base]\nstream = "finegrained"', '[grid]\nstreams = ["finegrained"]', "grid.streams"),
    ('[base]\nstream = "finegrained"', '[grid]\nstreams = ["cubs", "x"]', "grid.streams"),
    ('[base]\nstream = "finegrained"', '[grid]\nstreams = "finegrained"', "grid.streams"),
    (
        'stream = "finegrained"',
        'stream = "finegrained"\n[grid]\nstreams = ["a", "b"]',
        "grid.streams",
    ),
    ('[base]\nstream = "finegrained"', '[grid]\nsteams = ["a", "b"]', "grid.steams"),
    ('[base]\nstream = "finegrained"', '[grid]\nstreams = [["cubs"], "x"]', "grid.streams"),
    (
        '[base]\nstream = "finegrained"',
        '[grid]\nstreams = ["imagenet_cubs", "imagenet_cubs"]',
        "grid.streams",
    ),
]


def test_a_good_entry_loads(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    entry = load_entry(path)
    assert entry.name == "good" and entry.columns[0].published[("cubs", "top1")].value == 20.0


@pytest.mark.parametrize(("text", "replaced", "field"), BROKEN)
def test_a_broken_entry_names_its_file_and_field(tmp_path, text, replaced, field):
    assert text in GOOD
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(text, replaced))
    with pytest.raises(UserError) as caught:
        load_entry(path)
    message = str(caught.value)
    assert message.startswith(f"{path}.{field}"), message
    assert "\n" not in message


def test_reproduce_list_and_bad_input(run_cli, tmp_path):
    code, out, err = run_cli("reproduce", "list")
    assert code == 0, err
    assert all(name in out for name in EXPECTED_RUNS)
    for argv, message in (
        (("reproduce", "plan", "no-such-table"), "choose from: cpg-six-tasks-resnet50"),
        (("reproduce", "run", "packnet-table2", "--address", "x"), "--executor ray only"),
        (("reproduce", "run", "packnet-table2", "--parallel", "0"), "must be >= 1"),
        (("compare", str(tmp_path), "--against", "packnet-table2", "--format", "csv"), "csv"),
    ):
        code, _, err = run_cli(*argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_reproduce_plan_lists_runs_by_column_and_the_gpu_hours(run_cli, tmp_path):
    results = ["--results", str(tmp_path), "--bench", str(tmp_path / "no-bench")]
    code, out, err = run_cli("reproduce", "plan", "packnet-table3", *results)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("# Jointly Trained: not reproducible: the Places365 authors'")
    assert (
        lines[1] == "# PackNet 0.50: 3 runs; the paper's cells average not stated (we run 3 seeds)"
    )
    assert lines[2].split("\t")[1] == "pending"
    assert "6 runs: 6 pending" in lines
    assert lines[-1].startswith("GPU hours: no bench figures on a GPU for vgg16 at 224 px")
    code, out, _ = run_cli("reproduce", "plan", "packnet-table3", *results, "--format", "commands")
    assert code == 0 and len(out.splitlines()) == 6
    assert all(
        line.startswith("clbench run --stream imagenet_places365") for line in out.splitlines()
    )
