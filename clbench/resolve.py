"""Resolve a :class:`clbench.core.config.RunConfig` against the registries.

The one place where a run's options meet the streams, strategies and architectures:
names are checked; unset options take the stream's protocol for the strategy
(:mod:`benchmarks.protocols`: epochs, LR schedule, optimizer settings, BatchNorm mode,
the strategy's own options) and the stream's data defaults; derived defaults (half of
the epochs, ...) are computed; the strategy's options get their canonical form; every
value is checked against its declared domain (:mod:`clbench.core.domains`) before
anything is built or written. Options the user gave always win.

Light at import (no torch): ``list --protocol`` and ``run --help`` resolve protocols too.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields, replace
from typing import Any

from benchmarks import STREAMS, StreamSpec
from benchmarks.catalog import STREAM_TASKS, permutable_tasks
from clbench.core.architectures import ARCHITECTURES
from clbench.core.config import MAX_DEFAULT_WORKERS, RunConfig
from clbench.core.errors import UserError
from clbench.core.protocol import value_of
from strategies.base import StrategySpec, StreamFacts
from strategies.registry import STRATEGIES

RUN_FIELDS = frozenset(item.name for item in fields(RunConfig)) - {"options"}


def _fill(given: dict, defaults: dict, resolved: dict) -> dict:
    """``given`` values, else ``defaults`` (computed from ``resolved`` and the values
    filled before them when derived), in ``defaults``' order then ``given``'s."""
    values = dict(resolved)
    for key in [*defaults, *(k for k in given if k not in defaults)]:
        value = given.get(key)
        values[key] = value if value is not None else value_of(defaults.get(key), values)
    return {key: values[key] for key in values if key not in resolved}


def run_defaults(stream: StreamSpec, strategy: str) -> dict:
    """The run options a stream gives ``strategy`` when unset: its protocol, then its
    data defaults."""
    settings = stream.protocol.settings(strategy)
    return {
        **stream.defaults,
        **{key: s.value for key, s in settings.items() if key in RUN_FIELDS},
    }


def strategy_options(
    strategy: str, stream: str, given: dict, run: dict[str, Any] | None = None
) -> dict:
    """The strategy's options: its declared defaults, then the stream's protocol for it,
    then ``given`` (derived defaults computed from the resolved ``run`` options, default:
    the stream's defaults for the strategy); checked against their domains and put in
    canonical form."""
    spec = STRATEGIES.get_or_fail(strategy)
    stream_spec = STREAMS.get_or_fail(stream)
    declared = {option.dest: option for option in spec.options}
    unknown = set(given) - set(declared)
    if unknown:
        raise UserError(f"--strategy {strategy} has no option(s): {', '.join(sorted(unknown))}")
    settings = stream_spec.protocol.settings(strategy)
    defaults = {
        dest: settings[dest].value if dest in settings else option.default
        for dest, option in declared.items()
    }
    if run is None:
        run = _fill({}, run_defaults(stream_spec, strategy), {})
    options = _fill(given, defaults, run)
    for dest, value in options.items():
        check = declared[dest].check
        problem = None if check is None else check(value)
        if problem:
            raise UserError(f"{declared[dest].flag} {problem}")
    if spec.normalize is not None:
        facts = StreamFacts(stream_spec.num_tasks, stream_spec.protocol.papers)
        options = spec.normalize(options, facts)
    return options


def check_domains(config: RunConfig) -> None:
    """A one-line :class:`UserError` for the first option outside its declared domain."""
    for item in fields(RunConfig):
        flag = item.metadata.get("flag")
        if flag is None:
            continue
        value = getattr(config, item.name)
        if flag.choices is not None and value is not None and value not in flag.choices:
            raise UserError(
                f"unknown {item.name} '{value}'; choose from: {', '.join(flag.choices)}"
            )
        problem = None if flag.check is None else flag.check(value)
        if problem:
            raise UserError(f"{flag.flag} {problem}")


def check_order_length(config: RunConfig) -> None:
    """``--order`` permutes as many tasks as the stream has to permute (known without
    reading any data; the stream checks the permutation itself when it is built, which
    covers streams registered outside the catalog)."""
    if config.order is None or config.stream not in STREAM_TASKS:
        return
    count = permutable_tasks(config.stream)
    if len(config.order) == count:
        return
    which = f"all {count} tasks"
    if count < len(STREAM_TASKS[config.stream]):
        which = f"the {count} tasks added after the pretrained task 0, which stays first"
    raise UserError(
        f"--order must be a permutation of 0..{count - 1} ({which}), "
        f"got {','.join(map(str, config.order))}"
    )


def check_strategy_fit(spec: StrategySpec, config: RunConfig) -> None:
    """What the strategy cannot do with the resolved ``config``."""
    if config.batchnorm not in spec.batchnorm_modes:
        raise UserError(
            f"--batchnorm {config.batchnorm}: {spec.name} accepts "
            f"{' or '.join(spec.batchnorm_modes)} (its backbone never changes)"
        )
    if config.select == "best-valid" and spec.trains_jointly:
        raise UserError(f"--select best-valid selects per task; {spec.name} trains jointly")


def resolve(config: RunConfig) -> RunConfig:
    """Validate names and values and fill unset fields from the stream's protocol for
    the strategy and the stream's data defaults."""
    import torch

    from benchmarks.datacache import default_cache_dir

    spec = STRATEGIES.get_or_fail(config.strategy)
    stream = STREAMS.get_or_fail(config.stream)
    arch = config.arch or stream.default_arch
    ARCHITECTURES.check(arch)
    check_domains(config)
    check_order_length(config)
    if config.weights is not None and config.pretrained is False:
        raise UserError("--weights and --no-pretrained exclude each other")
    fixed = stream.defaults.get("valid_fraction")
    if stream.fixed_split and config.valid_fraction not in (None, fixed):
        raise UserError(
            f"--valid-fraction: {config.stream} has a fixed validation split ({fixed} of its "
            "images); leave it unset"
        )
    given = {k: v for k, v in asdict(config).items() if k != "options"}
    filled = _fill(given, run_defaults(stream, config.strategy), {})
    filled.update(
        arch=arch,
        pretrained=config.weights is not None or bool(filled["pretrained"]),
        options=strategy_options(config.strategy, config.stream, config.options, filled),
    )
    filled.update(dict.fromkeys(spec.unused))
    if config.precision == "auto":
        on_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
        filled["precision"] = "bf16" if on_cuda else "fp32"
    if config.workers is None:
        filled["workers"] = min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)
    if config.cache_dir is None:
        filled["cache_dir"] = str(default_cache_dir())
    resolved = RunConfig(**filled)
    check_domains(resolved)
    required = ("epochs", "lr", "batch_size", "momentum", "weight_decay", "batchnorm", "select")
    for name in required:
        if getattr(resolved, name) is None and name not in spec.unused:
            raise UserError(f"--{name.replace('_', '-')} has no default on {config.stream}; set it")
    check_strategy_fit(spec, resolved)
    if resolved.select == "best-valid" and not resolved.valid_fraction:
        raise UserError(
            f"--select best-valid needs validation data: set --valid-fraction (> 0) on "
            f"{config.stream}"
        )
    if resolved.run_id is None:
        resolved = replace(resolved, run_id=f"seed{resolved.seed}-{resolved.fingerprint()}")
    return resolved


def protocol_defaults(stream: str, strategy: str) -> dict:
    """Every run option and strategy option a run of ``strategy`` on ``stream`` gets when
    none is given (the protocol table's values), without the machine-dependent ones."""
    spec = STRATEGIES.get_or_fail(strategy)
    run = _fill({}, run_defaults(STREAMS.get_or_fail(stream), strategy), {})
    run.update(dict.fromkeys(spec.unused))
    return {**run, **strategy_options(strategy, stream, {}, run)}
