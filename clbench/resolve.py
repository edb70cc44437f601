"""Resolve a :class:`clbench.core.config.RunConfig` against the registries.

The one place where a run's options meet the streams, strategies and architectures:
names are checked, unset options take the stream's defaults, the strategy's options get
their defaults (then the stream's overrides for that strategy), and every value is
checked against its declared domain (:mod:`clbench.core.domains`) before anything is built
or written.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields, replace

import torch

from benchmarks import STREAMS
from benchmarks.catalog import STREAM_TASKS, permutable_tasks
from benchmarks.datacache import default_cache_dir
from clbench.core.architectures import ARCHITECTURES
from clbench.core.config import MAX_DEFAULT_WORKERS, RunConfig
from clbench.core.errors import UserError
from strategies.registry import STRATEGIES


def strategy_options(strategy: str, stream: str, given: dict) -> dict:
    """The strategy's options: its defaults, then the stream's overrides, then ``given``
    (each checked against its declared domain)."""
    declared = {option.dest: option for option in STRATEGIES.get_or_fail(strategy).options}
    unknown = set(given) - set(declared)
    if unknown:
        raise UserError(f"--strategy {strategy} has no option(s): {', '.join(sorted(unknown))}")
    defaults = {dest: option.default for dest, option in declared.items()}
    stream_defaults = STREAMS.get_or_fail(stream).strategy_defaults.get(strategy, {})
    options = {**defaults, **stream_defaults, **given}
    for dest, value in options.items():
        check = declared[dest].check
        problem = None if check is None else check(value)
        if problem:
            raise UserError(f"{declared[dest].flag} {problem}")
    return options


def check_domains(config: RunConfig) -> None:
    """A one-line :class:`UserError` for the first option outside its declared domain."""
    for item in fields(RunConfig):
        flag = item.metadata.get("flag")
        if flag is None:
            continue
        value = getattr(config, item.name)
        if flag.choices is not None and value not in flag.choices:
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


def resolve(config: RunConfig) -> RunConfig:
    """Validate names and values and fill unset fields from the stream's defaults."""
    STRATEGIES.check(config.strategy)
    spec = STREAMS.get_or_fail(config.stream)
    arch = config.arch or spec.default_arch
    ARCHITECTURES.check(arch)
    check_domains(config)
    check_order_length(config)
    if config.weights is not None and config.pretrained is False:
        raise UserError("--weights and --no-pretrained exclude each other")
    fixed = spec.defaults.get("valid_fraction")
    if spec.fixed_split and config.valid_fraction not in (None, fixed):
        raise UserError(
            f"--valid-fraction: {config.stream} has a fixed validation split ({fixed} of its "
            "images); leave it unset"
        )
    filled = {k: v if v is not None else spec.defaults.get(k) for k, v in asdict(config).items()}
    filled.update(
        arch=arch,
        pretrained=config.weights is not None or bool(filled["pretrained"]),
        options=strategy_options(config.strategy, config.stream, config.options),
    )
    if config.precision == "auto":
        on_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
        filled["precision"] = "bf16" if on_cuda else "fp32"
    if config.workers is None:
        filled["workers"] = min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)
    if config.cache_dir is None:
        filled["cache_dir"] = str(default_cache_dir())
    resolved = RunConfig(**filled)
    check_domains(resolved)
    for name in ("epochs", "lr", "batch_size"):
        if getattr(resolved, name) is None:
            raise UserError(f"--{name.replace('_', '-')} has no default on {config.stream}; set it")
    if resolved.select == "best-valid" and not resolved.valid_fraction:
        raise UserError(
            f"--select best-valid needs validation data: set --valid-fraction (> 0) on "
            f"{config.stream}"
        )
    if resolved.select == "best-valid" and STRATEGIES[resolved.strategy].trains_jointly:
        raise UserError(f"--select best-valid selects per task; {resolved.strategy} trains jointly")
    if resolved.run_id is None:
        resolved = replace(resolved, run_id=f"seed{resolved.seed}-{resolved.fingerprint()}")
    return resolved
