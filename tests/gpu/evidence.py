"""GPU evidence in one command: throughput of the papers' architectures (and ResNet-50
compiled), every strategy end to end on a fixture copy of ``finegrained`` with ``check``,
and the in-memory pipeline with its data on the GPU and forced into pinned host memory.
Each step's result is one JSON file under ``--out``, and ``evidence.json`` gathers them
all; a failing step is recorded (exit code, last lines of output), never hidden.

    python -m tests.gpu.evidence --out results/bench/gpu     # on the GPU machine
    python -m tests.gpu.evidence --out /tmp/ev --tiny        # CPU, tiny sizes (a test)

The whole script keeps to a wall-time budget (``--budget``, default 420 s: a device
session has 15 minutes, a fresh machine takes one to two to start, and a rerun must
fit): each step gets what is left, a step that would start with less than its minimum is
recorded as skipped, and a step that runs out of time is killed and recorded as such.

Lives beside the tests because it builds its data with their fixture code
(``tests/dataset_fixtures.py``, the publishers' on-disk layouts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from clbench.core.files import atomic_write_text
from strategies.registry import STRATEGIES
from tests import dataset_fixtures

REPO = Path(__file__).resolve().parents[2]
PAPER_ARCHS = ("vgg16", "vgg16_bn", "resnet50", "densenet121")
SUMMARY = "evidence.json"
MIN_STEP_SECONDS = 20
"""A step that would start with less than this left is skipped, not started."""


class Budget:
    """Seconds left of the script's wall-time budget."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def run_cli(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """``cli.py argv`` in a fresh interpreter (a crash or a hang stays in its step):
    exit code, stdout, stderr; :class:`subprocess.TimeoutExpired` past ``timeout``."""
    done = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )
    return done.returncode, done.stdout, done.stderr


def clbench(budget: Budget, *argv: str, env: dict[str, str] | None = None) -> dict:
    """Run ``cli.py argv`` (:func:`run_cli`) within the budget; its exit code
    (``"skipped"`` or ``"timeout"`` when the budget did not allow it), seconds and output."""
    left = budget.left()
    if left < MIN_STEP_SECONDS:
        return {"argv": list(argv), "exit_code": "skipped", "seconds": 0, "stdout": ""}
    start = time.perf_counter()
    try:
        code, stdout, stderr = run_cli(list(argv), env or {}, left)
    except subprocess.TimeoutExpired as err:
        code, stdout = "timeout", ""
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else err.stderr or ""
    return {
        "argv": list(argv),
        "exit_code": code,
        "seconds": round(time.perf_counter() - start, 2),
        "stdout": stdout,
        "stderr_tail": stderr.splitlines()[-5:],
    }


def bench_args(tiny: bool) -> list[str]:
    return ["--device", "cpu", "--image-size", "32", "--steps", "2"] if tiny else []


def throughput(out: Path, budget: Budget, archs: tuple[str, ...], tiny: bool) -> None:
    """Step 1: ``bench`` per architecture (model alone, fine-tuning, PackNet, pipeline
    share, ratios), then ResNet-50 compiled (``--compile``; not at tiny sizes, where the
    compilation alone would take longer than everything else)."""
    runs = [(arch, []) for arch in archs] + ([] if tiny else [("resnet50", ["--compile"])])
    for arch, extra in runs:
        result = clbench(budget, "bench", "--arch", arch, "--json", *extra, *bench_args(tiny))
        lines = [line for line in result.pop("stdout").splitlines() if line.startswith("{")]
        result["figures"] = [json.loads(line) for line in lines]
        write(out / f"bench-{arch}{'-compiled' if extra else ''}.json", result)


def strategies_end_to_end(
    out: Path, budget: Budget, data_root: Path, arch: str, names: list[str], tiny: bool
) -> None:
    """Step 2: each strategy on the fixture ``finegrained``, then ``check`` on its run."""
    size = "32" if tiny else "224"
    device = ["--device", "cpu"] if tiny else []
    for name in names:
        results = out / "runs"
        before = set(results.rglob("record.json")) if results.exists() else set()
        retrain = ["--retrain-epochs", "1"] if name == "packnet" else []  # the paper's 10 else
        run = clbench(
            budget,
            "run", "--strategy", name, "--stream", "finegrained", "--arch", arch,
            "--data-root", str(data_root), "--results", str(results), "--no-pretrained",
            "--image-size", size, "--epochs", "1", "--batch-size", "8", *device, *retrain,
        )  # fmt: skip
        run.pop("stdout")
        new = sorted(set(results.rglob("record.json")) - before)
        if new:
            check = clbench(budget, "check", str(new[0].parent), *device)
            run["check"] = {"exit_code": check["exit_code"], "table": check["stdout"]}
        write(out / f"run-{name}.json", run)


def pipeline_placements(out: Path, budget: Budget, data_root: Path, arch: str, tiny: bool) -> None:
    """Step 3: the in-memory pipeline with its data on the device and in pinned host memory
    (``CLBENCH_PIPELINE_HOST=1``), with each run's training throughput per task."""
    device = ["--device", "cpu"] if tiny else []
    for placement, env in (("device", {}), ("pinned-host", {"CLBENCH_PIPELINE_HOST": "1"})):
        results = out / f"pipeline-{placement}"
        run = clbench(
            budget,
            "run", "--strategy", "finetune", "--stream", "finegrained", "--arch", arch,
            "--data-root", str(data_root), "--results", str(results), "--no-pretrained",
            "--pipeline", "memory", "--image-size", "32" if tiny else "224", "--epochs", "1",
            *device, env=env,
        )  # fmt: skip
        run.pop("stdout")
        records = sorted(results.rglob("record.json"))
        if records:
            run["timings"] = json.loads(records[0].read_text())["timings"]
        write(out / f"pipeline-{placement}.json", run)


def write(path: Path, result: dict) -> None:
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    code = result["exit_code"]
    status = "ok" if code == 0 else code if isinstance(code, str) else f"FAILED (exit {code})"
    print(f"{path.name}: {status} ({result['seconds']} s)", file=sys.stderr, flush=True)


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON files")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny sizes (for tests)")
    parser.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all)"
    )
    parser.add_argument(
        "--budget", type=float, default=420, help="wall-time budget in seconds (default 420)"
    )
    args = parser.parse_args(argv)
    budget = Budget(args.budget)
    args.out.mkdir(parents=True, exist_ok=True)
    archs = ("smallcnn",) if args.tiny else PAPER_ARCHS
    run_arch = "smallcnn" if args.tiny else "resnet50"
    data_root = dataset_fixtures.finegrained(args.out / "data")
    throughput(args.out, budget, archs, args.tiny)
    strategies_end_to_end(
        args.out, budget, data_root, run_arch, args.strategies.split(","), args.tiny
    )
    pipeline_placements(args.out, budget, data_root, run_arch, args.tiny)
    files = [path for path in sorted(args.out.glob("*.json")) if path.name != SUMMARY]
    steps = {path.name: json.loads(path.read_text()) for path in files}
    failed = [name for name, result in steps.items() if result["exit_code"]]
    failed += [n for n, r in steps.items() if r.get("check", {}).get("exit_code", 0)]
    summary = {"device": device_name(), "budget_s": args.budget, "failed": failed, "steps": steps}
    atomic_write_text(args.out / SUMMARY, json.dumps(summary, indent=1) + "\n")
    print(json.dumps({"failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
