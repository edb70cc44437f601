"""Every strategy on the GPU code path (bf16 autocast, and torch.compile), run on the CPU:
the losses are computed in fp32 from bf16 outputs."""

from __future__ import annotations

import shutil

import pytest
import torch

from clbench.plugins.speed import SpeedPlugin
from strategies.registry import STRATEGIES
from tests.conftest import find_records

TINY = ("--epochs", "1", "--batch-size", "128", "--device", "cpu")
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def loss_dtypes(monkeypatch) -> list[torch.dtype]:
    """The dtype of every training loss about to be back-propagated (the harness's speed
    plugin comes after the strategy's own, so the loss includes every strategy term)."""
    seen: list[torch.dtype] = []

    def before_backward(plugin, strategy, **kwargs) -> None:
        assert plugin.bf16 and torch.is_autocast_enabled("cpu") is False
        seen.append(strategy.loss.dtype)

    monkeypatch.setattr(SpeedPlugin, "before_backward", before_backward, raising=False)
    return seen


def _run_bf16(run_cli, results, strategy: str, *extra: str) -> dict:
    code, _, err = run_cli(
        "run", "--strategy", strategy, "--precision", "bf16", "--results", str(results),
        *TINY, *extra,
    )  # fmt: skip
    assert code == 0, err
    (record,) = find_records(results)
    assert record["status"] == "complete" and record["config"]["precision"] == "bf16"
    return record


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_runs_in_bf16_with_fp32_losses(run_cli, tmp_path, loss_dtypes, strategy):
    record = _run_bf16(run_cli, tmp_path, strategy)
    assert loss_dtypes and set(loss_dtypes) == {torch.float32}
    last = record["acc_top1"][-1]
    assert all(v is not None and 0 <= v <= 100 for v in last)


@pytest.fixture(scope="module")
def dynamo_without_codegen() -> None:
    """``--compile`` traced by TorchDynamo and AOTAutograd (graph capture, functionalised
    forward and backward: where hooks, parameter writes and autocast meet compilation),
    run by the ``aot_eager`` backend instead of Inductor's C++ code generation, which
    alone takes about a minute per run on the CPU. One test keeps Inductor end to end
    (tests/e2e/test_pipeline_runs.py: PackNet compiled, old tasks exact, ``check``)."""
    compile_module = torch.nn.Module.compile

    def compile_for_test(module, *args, **kwargs) -> None:
        compile_module(module, *args, **{**kwargs, "backend": "aot_eager"})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.Module, "compile", compile_for_test)
        yield
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("c++"), reason="--compile asks for a C++ compiler")
@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "packnet"])
def test_every_strategy_runs_compiled_in_bf16(
    run_cli, tmp_path, loss_dtypes, dynamo_without_codegen, strategy
):
    """Compiled backbone features feed each strategy's own parts (LwF's old heads outside
    the model's forward pass, EWC's per-image Fisher, Piggyback's masks, individual
    networks' copies)."""
    record = _run_bf16(run_cli, tmp_path, strategy, "--compile")
    assert record["config"]["compile"] is True
    assert loss_dtypes and set(loss_dtypes) == {torch.float32}
    assert all(v is not None and 0 <= v <= 100 for v in record["acc_top1"][-1])
