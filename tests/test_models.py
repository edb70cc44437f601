"""Multi-head networks with heads of different sizes, and our top-k accuracy."""

import torch
import torch.nn.functional as F

from clbench.multihead import build_model
from clbench.plugins.accuracy import topk_correct


def test_single_task_batch_gets_exactly_its_head():
    torch.manual_seed(0)
    model = build_model("smallcnn", [1000, 200, 3], in_channels=1).eval()
    x = torch.randn(6, 1, 28, 28)
    for task, width in enumerate([1000, 200, 3]):
        out_int = model(x, task)
        out_tensor = model(x, torch.full((6,), task))
        assert out_int.shape == (6, width)
        assert torch.equal(out_int, out_tensor)
        assert torch.equal(out_int, model.heads[task](model.backbone(x)))


def test_mixed_batch_pads_with_minus_inf_not_zeros():
    torch.manual_seed(0)
    model = build_model("smallcnn", [10, 3], in_channels=1).eval()
    x = torch.randn(4, 1, 28, 28)
    labels = torch.tensor([0, 1, 1, 0])
    out = model(x, labels)
    assert out.shape == (4, 10)
    assert torch.isneginf(out[1, 3:]).all() and torch.isneginf(out[2, 3:]).all()
    torch.testing.assert_close(out[1:3, :3], model(x[1:3], 1))
    # Cross-entropy per sample equals the loss computed on that task's own head.
    targets = torch.tensor([7, 2, 0, 9])
    mixed = F.cross_entropy(out, targets, reduction="none")
    own = torch.stack(
        [F.cross_entropy(model(x[i : i + 1], int(labels[i])), targets[i : i + 1]) for i in range(4)]
    )
    torch.testing.assert_close(mixed, own)
    # A padded column can never enter the top-k of a 3-class sample.
    assert (out[1:3].topk(3, dim=1).indices < 3).all()


def test_zero_padding_would_corrupt_topk_which_minus_inf_avoids():
    logits = torch.tensor([[-3.0, -2.0, -1.0]])  # all negative: zero padding would win
    padded_zero = torch.cat([logits, torch.zeros(1, 5)], dim=1)
    padded_inf = torch.cat([logits, torch.full((1, 5), float("-inf"))], dim=1)
    target = torch.tensor([2])
    assert topk_correct(padded_zero, target, 1) == 0
    assert topk_correct(padded_inf, target, 1) == 1


def test_topk_correct_counts_by_hand():
    logits = torch.tensor(
        [[0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]
    )
    targets = torch.tensor([0, 0])
    assert topk_correct(logits, targets, 1) == 1
    assert topk_correct(logits, targets, 5) == 1  # row 2: class 0 is the smallest
    assert topk_correct(logits, torch.tensor([1, 2]), 5) == 2
    # k larger than the number of classes is clamped.
    assert topk_correct(logits[:, :3], torch.tensor([2, 0]), 5) == 2
