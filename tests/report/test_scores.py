"""``compare`` ranks by the added tasks' average and shows the pretrained task apart, so
runs with and without ImageNet on disk score on the same tasks."""

from __future__ import annotations

from clbench.core.record import RunRecord
from clbench.report.leaderboard import build_groups, leaderboard_view
from tests.report.test_leaderboard import BASE, ORDERS, make_record


def test_the_pretrained_task_is_scored_apart_from_the_added_tasks():
    with_imagenet = make_record("finetune", 0, ORDERS[0], 0, pretrained=True)
    without = make_record("finetune", 1, ORDERS[0], 0, pretrained=True)
    for matrix in ("acc_top1", "acc_top5"):
        for row in without[matrix]:
            row[0] = None  # ImageNet not on disk: not measured
    with_imagenet["pretrained_network"] = {"task": "imagenet", "top1": 90.0, "top5": 95.0}
    records = [RunRecord.from_dict(r) for r in (with_imagenet, without)]
    (group,) = build_groups(records)
    added = sum(BASE[t] + 5 for t in ("cubs", "cars", "flowers")) / 3
    assert group.avg_top1.mean == added and group.avg_top1.std == 0  # same tasks, same score
    assert group.pretrained_top1.mean == BASE["imagenet"] + 5 and group.pretrained_top1.std is None
    # finetune drops every old task 4 points per later task: ImageNet 87 after task 0,
    # 75 at the end; the pretrained network's own 90 is an earlier accuracy too
    (alone,) = build_groups(records[:1])
    assert alone.forgetting.mean == (90 - 75 + 8 + 4) / 3
    row = leaderboard_view([group]).rows[0]
    assert row[2:4] == [f"{added:.2f} ± 0.00", f"{BASE['imagenet'] + 5:.2f}"]


def test_older_records_count_a_pretrained_imagenet_task_zero():
    record = RunRecord.from_dict(make_record("classifier_only", 0, ORDERS[0], 0, pretrained=True))
    assert record.pretrained_network is None
    (group,) = build_groups([record])
    assert group.avg_top1.mean == sum(BASE[t] for t in ("cubs", "cars", "flowers")) / 3
    scratch = RunRecord.from_dict(make_record("classifier_only", 0, ORDERS[0], 0))
    assert build_groups([scratch])[0].avg_top1.mean == sum(BASE.values()) / 4
