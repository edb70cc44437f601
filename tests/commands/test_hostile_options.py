"""Bad option values (issue 20, item 3): each is refused in one line on stderr, exit
code 2, before anything is built or written (no results folder appears). A case's
options come after the fast ones (epochs 1, batch 64, 8 px), so they override them."""

from __future__ import annotations

import pytest

from tests.commands.hostile import FAST

pytestmark = pytest.mark.usefixtures("single_thread")
RUN_CASES = {
    "lr-nan": ("--lr nan", "--lr must be a positive finite number, got nan"),
    "lr-inf": ("--lr inf", "--lr must be a positive finite number, got inf"),
    "lr-zero": ("--lr 0", "--lr must be a positive finite number, got 0.0"),
    "momentum-nan": ("--momentum nan", "--momentum must be a number in [0, 1), got nan"),
    "momentum-negative": ("--momentum -1", "--momentum must be a number in [0, 1), got -1.0"),
    "retrain-lr-nan": (
        "--strategy packnet --retrain-lr nan",
        "--retrain-lr must be a positive finite number, got nan",
    ),
    "piggyback-threshold-nan": (
        "--strategy piggyback --piggyback-threshold nan",
        "--piggyback-threshold must be a finite number, got nan",
    ),
    "piggyback-lr-inf": (
        "--strategy piggyback --piggyback-lr inf",
        "--piggyback-lr must be a positive finite number, got inf",
    ),
    "weight-decay-negative": (
        "--weight-decay -1",
        "--weight-decay must be a finite number >= 0, got -1.0",
    ),
    "retrain-epochs-negative": (
        "--strategy packnet --retrain-epochs -1",
        "--retrain-epochs must be an integer >= 0, got -1",
    ),
    "prune-ratios-nan": (
        "--strategy packnet --prune-ratios nan",
        "--prune-ratios must hold finite numbers, got 'nan'",
    ),
    "prune-ratios-minus-inf": (
        "--strategy packnet --prune-ratios=-inf",
        "--prune-ratios must hold finite numbers, got '-inf'",
    ),
    "prune-ratios-nan-in-a-list": (
        "--strategy packnet --prune-ratios 0.5,nan,0.5,0.5,0.5",
        "--prune-ratios must hold finite numbers, got '0.5,nan,0.5,0.5,0.5'",
    ),
    "prune-ratios-minus-inf-unquoted": (
        "--strategy packnet --prune-ratios -inf",
        "argument --prune-ratios: expected one argument",
    ),
    "seed-negative": ("--seed -1", "--seed must be an integer in [0, 2**32), got -1"),
    "seed-2**32": ("--seed 4294967296", "--seed must be an integer in [0, 2**32), got 4294967296"),
    "seed-not-an-integer": ("--seed 1.5", "argument --seed: invalid int value: '1.5'"),
    "lr-step-negative": ("--lr-step -1", "--lr-step must be an integer >= 0, got -1"),
    "ewc-fisher-samples-negative": (
        "--strategy ewc --ewc-fisher-samples -5",
        "--ewc-fisher-samples must be an integer >= 0, got -5",
    ),
    "ewc-lambda-nan": ("--strategy ewc --ewc-lambda nan", "--ewc-lambda must be a finite number"),
    "lwf-temperature-zero": (
        "--strategy lwf --lwf-temperature 0",
        "--lwf-temperature must be a positive finite number, got 0.0",
    ),
    "order-negative": ("--order -1,0,1,2,3", "--order must be a permutation of 0..n-1"),
    "order-repeated": ("--order 0,0,1,2,3", "--order must be a permutation of 0..n-1"),
    "order-too-short": (
        "--order 0,1,2",
        "--order must be a permutation of 0..4 (all 5 tasks), got 0,1,2",
    ),
    "image-size-huge": (
        "--image-size 100000",
        "--image-size must be an integer from 8 to 4096, got 100000",
    ),
    "image-size-tiny": ("--image-size 4", "--image-size must be an integer from 8 to 4096, got 4"),
    "epochs-zero": ("--epochs 0", "--epochs must be an integer >= 1, got 0"),
    "batch-size-zero": ("--batch-size 0", "--batch-size must be an integer >= 1, got 0"),
    "checkpoint-every-negative": (
        "--checkpoint-every -1",
        "--checkpoint-every must be an integer >= 0, got -1",
    ),
    "workers-negative": ("--workers -1", "--workers must be an integer >= 0, got -1"),
    "valid-fraction-one": (
        "--valid-fraction 1",
        "--valid-fraction must be a number in [0, 1), got 1.0",
    ),
}
BENCH_CASES = {
    "steps-zero": ("--steps 0", "argument --steps: must be an integer >= 1, got 0"),
    "steps-negative": ("--steps -3", "argument --steps: must be an integer >= 1, got -3"),
    "batch-size-zero": ("--batch-size 0", "argument --batch-size: must be an integer >= 1, got 0"),
    "image-size-zero": (
        "--image-size 0",
        "argument --image-size: must be an integer from 8 to 4096, got 0",
    ),
    "image-size-huge": (
        "--image-size 100000",
        "argument --image-size: must be an integer from 8 to 4096, got 100000",
    ),
    "device-unknown": ("--device tpu", "argument --device: invalid choice: 'tpu'"),
    "arch-unknown": ("--arch nope", "unknown architecture 'nope'"),
}


@pytest.mark.parametrize("case", RUN_CASES)
def test_bad_run_option_is_refused_before_anything_is_written(run_cli, tmp_path, case):
    options, expected = RUN_CASES[case]
    strategy = [] if "--strategy" in options else ["--strategy", "finetune"]
    results = tmp_path / "results"
    code, out, err = run_cli("run", *strategy, *FAST, *options.split(), "--results", str(results))
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert out == ""
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("case", BENCH_CASES)
def test_bad_bench_option_is_refused_before_measuring(run_cli, case):
    options, expected = BENCH_CASES[case]
    arch = [] if "--arch" in options else ["--arch", "smallcnn"]
    code, out, err = run_cli("bench", *arch, "--device", "cpu", *options.split())
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert out == ""
