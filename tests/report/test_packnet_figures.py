"""``plot`` and ``compare`` on PackNet's analyses: the pruning-stage figure (the paper's
Figure 4), the capacity trade-off of a prune-ratio sweep, and grouping by the options."""

from __future__ import annotations

from clbench.core.record import RunRecord
from clbench.report.leaderboard import build_groups
from clbench.report.plots import capacity_tradeoff, prune_stage_errors
from tests.report.test_leaderboard import ORDERS, TASKS, make_record, write
from tests.report.test_plots import PNG_SIGNATURE

RATIOS = ("0.5", "0.75", "0.9")


def packnet_record(ratio: str, seed: int, **options) -> dict:
    """A complete PackNet run pruning every task at ``ratio``, with ``--eval-pruning``."""
    record = make_record("classifier_only", seed, ORDERS[0], seed)
    value = float(ratio)
    record["config"]["strategy"] = "packnet"
    record["config"]["options"] = {"prune_ratios": ratio, "eval_pruning": True, **options}
    record["prune_stages"] = [
        {
            "task": task,
            "split": "test",
            "prune_ratio": value,
            "trained": 80.0 - seed,
            "pruned": 80.0 - 40 * value,
            "retrained": 79.0 - 5 * value,
        }
        for task in TASKS[:3]
    ]
    kept = [(1 - value) * value**k for k in range(3)] + [value**3]
    record["strategy_report"] = {"weight_usage": {"total": {"tasks": kept, "free": 0.0}}}
    return record


def groups(*records: dict):
    return build_groups([RunRecord.from_dict(record) for record in records])


def test_a_ratio_sweep_draws_pruning_stages_and_the_capacity_tradeoff(tmp_path):
    sweep = groups(*(packnet_record(r, seed) for r in RATIOS for seed in (0, 1)))
    for figure, name in (
        (prune_stage_errors, "finegrained-vgg16-prune-stages.png"),
        (capacity_tradeoff, "finegrained-vgg16-capacity.png"),
    ):
        path = figure(sweep, tmp_path)
        assert path == tmp_path / name
        assert path.read_bytes().startswith(PNG_SIGNATURE) and path.stat().st_size > 1000


def test_one_ratio_without_stages_draws_neither(tmp_path):
    record = packnet_record("0.75", 0)
    del record["prune_stages"]
    single = groups(record)
    assert prune_stage_errors(single, tmp_path) is None
    assert capacity_tradeoff(single, tmp_path) is None
    assert not list(tmp_path.iterdir())


def test_compare_groups_older_records_with_the_new_options_defaults():
    old = packnet_record("0.75", 0)
    new = packnet_record(
        "0.75", 1, per_task_bias=False, train_layers="all", prune_granularity="weight"
    )
    found = groups(old, new, packnet_record("0.3", 0, prune_granularity="filter"))
    assert sorted(len(g.records) for g in found) == [1, 2]
    assert {g.label for g in found} == {
        "packnet (prune_granularity=weight, prune_ratios=0.75)",
        "packnet (prune_granularity=filter, prune_ratios=0.3)",
    }


def test_a_malformed_prune_stages_field_is_refused(run_cli, tmp_path):
    record = packnet_record("0.5", 0)
    record["prune_stages"][0]["pruned"] = "60%"
    write(tmp_path, record)
    write(tmp_path, packnet_record("0.5", 1), "fine")
    code, _, err = run_cli("compare", str(tmp_path), "--format", "csv")
    assert code == 0 and "'prune_stages' is not a list of objects" in err
