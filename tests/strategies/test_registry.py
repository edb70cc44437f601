"""The strategy registry: every spec resolves to its implementation, and the command
line's defaults are the implementations' own."""

from __future__ import annotations

import inspect

import pytest

from clbench.core.record import PRUNE_STAGES
from strategies import ewc, lwf, registry
from strategies.packnet import GRANULARITIES, STAGES, PackNetPlugin
from strategies.piggyback import PiggybackPlugin
from strategies.registry import STRATEGIES


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_spec_names_an_implementation_with_build(name):
    assert callable(STRATEGIES[name].module().build)


def _keyword_defaults(function) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _option_defaults(name: str) -> dict:
    return {option.dest: option.default for option in STRATEGIES[name].options}


def test_command_line_defaults_equal_the_implementations():
    packnet = _keyword_defaults(PackNetPlugin.__init__)
    assert packnet["prune_ratio"] == float(_option_defaults("packnet")["prune_ratios"])
    options = _option_defaults("packnet")
    for name in ("per_task_bn", "per_task_bias", "train_layers", "prune_granularity"):
        assert packnet[name] == options[name], name
    assert registry.PACKNET_GRANULARITIES == GRANULARITIES
    assert PRUNE_STAGES == STAGES  # the record's names of the stages the plugin reports
    piggyback = _keyword_defaults(PiggybackPlugin.__init__)
    options = _option_defaults("piggyback")
    assert piggyback["threshold"] == options["piggyback_threshold"]
    assert piggyback["score_init"] == options["piggyback_score_init"]
    options = _option_defaults("lwf")
    assert (lwf.TEMPERATURE, lwf.WEIGHT, lwf.WARMUP_EPOCHS) == (
        options["lwf_temperature"],
        options["lwf_weight"],
        options["lwf_warmup_epochs"],
    )
    options = _option_defaults("ewc")
    assert (ewc.EWC_LAMBDA, ewc.FISHER_SAMPLES) == (
        options["ewc_lambda"],
        options["ewc_fisher_samples"],
    )


def test_unknown_strategy_is_one_line_with_the_choices():
    from clbench.core.errors import UserError

    with pytest.raises(UserError, match="unknown strategy 'nope'; choose from: finetune, "):
        STRATEGIES.get_or_fail("nope")


def test_a_diverged_run_is_told_what_to_try():
    config = {"strategy": "packnet", "lr": 0.01, "options": {"per_task_bn": False}}
    hints = STRATEGIES["packnet"].divergence_hints(config)
    assert hints == [
        "a lower --lr (this run: 0.01)",
        "--per-task-bn (BatchNorm is frozen after the first task)",
    ]
    config["options"]["per_task_bn"] = True
    assert STRATEGIES["packnet"].divergence_hints(config) == hints[:1]
    piggyback = {"strategy": "piggyback", "lr": 0.01, "options": {"piggyback_lr": 1e-4}}
    assert STRATEGIES["piggyback"].divergence_hints(piggyback) == [
        "a lower --piggyback-lr (this run: 0.0001)"
    ]
