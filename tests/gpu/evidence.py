"""GPU evidence in one command: throughput of the papers' architectures, every strategy end
to end on a fixture copy of ``finegrained`` with ``check``, and the in-memory pipeline with
its data on the GPU and forced into pinned host memory. Each step's result is one JSON file
under ``--out``; a failing step is recorded (exit code, last lines of output), never hidden.

    python -m tests.gpu.evidence --out results/bench/gpu     # on the GPU machine
    python -m tests.gpu.evidence --out /tmp/ev --tiny        # CPU, tiny sizes (a test)

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


def clbench(*argv: str, env: dict[str, str] | None = None, timeout: float = 600) -> dict:
    """Run ``cli.py argv`` in a fresh interpreter; its exit code, seconds and output tail."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return {
        "argv": list(argv),
        "exit_code": done.returncode,
        "seconds": round(time.perf_counter() - start, 2),
        "stdout": done.stdout,
        "stderr_tail": done.stderr.splitlines()[-5:],
    }


def bench_args(tiny: bool) -> list[str]:
    return ["--device", "cpu", "--image-size", "32", "--steps", "2"] if tiny else []


def throughput(out: Path, archs: tuple[str, ...], tiny: bool) -> None:
    """Step 1: ``bench`` per architecture (model alone, fine-tuning, PackNet, ratios)."""
    for arch in archs:
        result = clbench("bench", "--arch", arch, "--json", *bench_args(tiny))
        lines = [line for line in result.pop("stdout").splitlines() if line.startswith("{")]
        result["figures"] = [json.loads(line) for line in lines]
        write(out / f"bench-{arch}.json", result)


def strategies_end_to_end(
    out: Path, data_root: Path, arch: str, names: list[str], tiny: bool
) -> None:
    """Step 2: each strategy on the fixture ``finegrained``, then ``check`` on its run."""
    size = "32" if tiny else "224"
    for name in names:
        results = out / "runs"
        before = set(results.rglob("record.json")) if results.exists() else set()
        device = ["--device", "cpu"] if tiny else []
        retrain = ["--retrain-epochs", "1"] if name == "packnet" else []  # the paper's 10 else
        run = clbench(
            "run", "--strategy", name, "--stream", "finegrained", "--arch", arch,
            "--data-root", str(data_root), "--results", str(results), "--no-pretrained",
            "--image-size", size, "--epochs", "1", "--batch-size", "8", *device, *retrain,
        )  # fmt: skip
        run.pop("stdout")
        new = sorted(set(results.rglob("record.json")) - before)
        if new:
            check = clbench("check", str(new[0].parent), *device)
            run["check"] = {"exit_code": check["exit_code"], "table": check["stdout"]}
        write(out / f"run-{name}.json", run)


def pipeline_placements(out: Path, data_root: Path, arch: str, tiny: bool) -> None:
    """Step 3: the in-memory pipeline with its data on the device and in pinned host memory
    (``CLBENCH_PIPELINE_HOST=1``), with each run's training throughput per task."""
    device = ["--device", "cpu"] if tiny else []
    for placement, env in (("device", {}), ("pinned-host", {"CLBENCH_PIPELINE_HOST": "1"})):
        results = out / f"pipeline-{placement}"
        run = clbench(
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
    status = "ok" if result["exit_code"] == 0 else f"FAILED (exit {result['exit_code']})"
    print(f"{path.name}: {status}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON files")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny sizes (for tests)")
    parser.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    archs = ("smallcnn",) if args.tiny else PAPER_ARCHS
    run_arch = "smallcnn" if args.tiny else "resnet50"
    data_root = dataset_fixtures.finegrained(args.out / "data")
    throughput(args.out, archs, args.tiny)
    strategies_end_to_end(args.out, data_root, run_arch, args.strategies.split(","), args.tiny)
    pipeline_placements(args.out, data_root, run_arch, args.tiny)
    results = {p.name: json.loads(p.read_text()) for p in sorted(args.out.glob("*.json"))}
    failed = [name for name, result in results.items() if result["exit_code"]]
    failed += [n for n, r in results.items() if r.get("check", {}).get("exit_code", 0)]
    print(json.dumps({"failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
