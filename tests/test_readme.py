"""Every command in README.md's ```bash blocks runs (exit code 0), and so does its PackNet
plugin snippet, so the README cannot go stale.

The commands run in order, in-process (``clbench.cli.main``), from a temporary folder
holding a copy of ``grids/`` and ``data/``: fixture copies of the ``finegrained``
datasets in their publishers' layouts (tests/dataset_fixtures.py); ``results/`` is
written there. They run exactly as
written, except:

- splitmnist runs get ``--epochs 1`` (``--epochs 3`` becomes 1): the same code, a third
  or half of the time;
- the ``finegrained`` PackNet run in every task order needs the ImageNet-pretrained
  VGG-16 (not offline) and would train 6 x 4 tasks x 30 epochs at 224 px: it runs with
  ``--arch smallcnn --no-pretrained --image-size 8 --epochs 1 --retrain-epochs 1``;
- the commands of :data:`SKIPPED`, for the reason given there.

The PackNet snippet runs on a 4-task stream of 16 random 8x8 images per task with an
MLP (``model`` and ``benchmark`` are given to it), its 20 training and 10 retraining
epochs per task cut to 1 and 1 (the same calls; Avalanche's default evaluator prints
and computes metrics at every epoch).

The README's Python blocks run where they stand, between the commands (the packed-model
snippet reads the file ``export`` wrote and the images the block before writes).

A command that is neither run nor skipped, or an adaptation or skip whose command is no
longer in the README, fails the test.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from clbench.cli import main
from tests import dataset_fixtures as fx
from tests.strategies.test_packnet import mlp, stream

README = Path(__file__).resolve().parents[1] / "README.md"
SKIPPED = {
    "make demo": "installs the package and runs every strategy for 2 epochs (the runs "
    "below cover the same code)",
    "make test": "runs this test suite",
    "python cli.py reproduce run piggyback-errors --mini": "tests/reproduce/test_mini.py "
    "runs this command and checks its report",
    "make gpu-wheels": "packs the environment's wheels for the GPU machine (26 MiB; "
    "tests/gpu/test_wheels.py checks the collector)",
    "make gpu-evidence": "runs on the GPU machine (tests/gpu/test_evidence.py runs the "
    "same script tiny on the CPU)",
    "python cli.py run --strategy packnet --stream finegrained --arch resnet50 --compile": (
        "needs a GPU and the ImageNet-pretrained ResNet-50 weights"
    ),
}
TINY_FINEGRAINED = "--arch smallcnn --no-pretrained --image-size 8 --epochs 1 --retrain-epochs 1"
ADAPTED = {
    "python cli.py run --strategy finetune": "--epochs 1",
    "python cli.py run --strategy classifier_only --stream splitmnist --epochs 3 --seed 1 "
    "--order 4,3,2,1,0 --results results/": "--epochs 1",
    "python cli.py run --strategy packnet --stream finegrained --data-root data/ --orders all": (
        TINY_FINEGRAINED
    ),
    "python cli.py run --strategy packnet --checkpoint-every 5 --run-id ckpt": "--epochs 1",
}
"""Command -> options appended (they override what the command sets)."""
PLUGIN_SNIPPET = "# model: a network with one head per task"
"""A line of the README's PackNet plugin snippet, which runs on a given model and benchmark."""


def readme_blocks(language: str) -> list[str]:
    """The contents of every ```<language> block of the README."""
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def bash_commands(block: str) -> list[str]:
    """The command lines of a bash block: continuations joined, comments dropped."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(shlex.join(words))
    return commands


def readme_commands() -> list[str]:
    """Every command line of the bash blocks."""
    return [command for block in readme_blocks("bash") for command in bash_commands(block)]


def readme_steps() -> list[tuple[str, str]]:
    """The bash commands and the Python blocks, as ``(language, text)`` in the README's
    order, but the PackNet plugin snippet (:data:`PLUGIN_SNIPPET`: it needs a model and a
    benchmark given)."""
    steps = []
    for language, block in re.findall(r"```(bash|python)\n(.*?)```", README.read_text(), re.S):
        if language == "bash":
            steps += [("bash", command) for command in bash_commands(block)]
        elif PLUGIN_SNIPPET not in block:
            steps.append(("python", block))
    return steps


def test_every_readme_command_is_run_or_skipped_for_a_reason():
    commands = readme_commands()
    assert set(SKIPPED) | set(ADAPTED) <= set(commands)  # no stale entries
    runnable = [c for c in commands if c not in SKIPPED]
    assert all(c.startswith("python cli.py ") for c in runnable), runnable


@pytest.mark.usefixtures("single_thread")
def test_readme_commands_run(tmp_path, monkeypatch, capsys):
    fx.finegrained(tmp_path / "data")
    shutil.copytree(README.parent / "grids", tmp_path / "grids")
    monkeypatch.chdir(tmp_path)
    for language, command in readme_steps():
        if language == "python":
            exec(compile(command, "README.md", "exec"), {})
            continue
        if command in SKIPPED:
            continue
        argv = shlex.split(command)[2:] + shlex.split(ADAPTED.get(command, ""))
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, f"{command}: exit {code}\n{err[-2000:]}"
    assert len(list((tmp_path / "results").rglob("record.json"))) == 4 + 6 + 4
    assert list((tmp_path / "results" / "plots").glob("*.png"))
    assert (tmp_path / "packnet.safetensors").is_file() and (tmp_path / "four2.png").is_file()


@pytest.mark.usefixtures("single_thread")
def test_readme_packnet_snippet_runs():
    (snippet,) = [b for b in readme_blocks("python") if PLUGIN_SNIPPET in b]
    torch.manual_seed(0)
    model = mlp(tasks=4)  # an MLP backbone and one head per task, on 8x8 images
    namespace = {"model": model, "benchmark": stream(tasks=4, n=16)}
    for epochs in ("train_epochs=20", "retrain_epochs=10"):
        assert epochs in snippet
        snippet = snippet.replace(epochs, epochs.split("=")[0] + "=1")
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert [int(t) for t in model.packnet_task_labels] == [0, 1, 2, 3]
