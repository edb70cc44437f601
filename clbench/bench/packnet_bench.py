"""Step-time cost of the PackNet plugin, and of Avalanche's own PackNet, on one device.

Training step = forward + backward + ``optimizer.step()`` (SGD, momentum 0.9, weight
decay 5e-4). The PackNet variant is measured during task 1 of a model whose task 0
was packed at prune ratio 0.5 (half of every prunable layer frozen), and it runs every
per-iteration hook of the plugin around the step, exactly as an Avalanche strategy
calls them. All variants are timed in the same process, interleaved round by round
(rotating order), after warm-up; figures are medians (and minimums) in milliseconds.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from clbench.multihead import build_model
from strategies.packnet import PackNetPlugin

ITERATION_HOOKS = (
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
)
CLASSES = 10
WARMUP = 3


def _sgd(model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)


def _strategy(model: nn.Module, opt: torch.optim.Optimizer, task_label: int) -> SimpleNamespace:
    """The attributes of an Avalanche strategy that the plugin reads."""
    return SimpleNamespace(
        model=model,
        optimizer=opt,
        train_epochs=1,
        clock=SimpleNamespace(train_exp_epochs=0),
        experience=SimpleNamespace(task_label=task_label, task_labels=[task_label]),
    )


def _train_step(
    forward: Callable[[torch.Tensor], torch.Tensor],
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    plugin: PackNetPlugin | None = None,
    strategy: SimpleNamespace | None = None,
) -> Callable[[], None]:
    hooks = {name: getattr(plugin, name) for name in ITERATION_HOOKS} if plugin else {}

    def call(name: str) -> None:
        if hooks:
            hooks[name](strategy)

    def step() -> None:
        call("before_training_iteration")
        opt.zero_grad()
        call("before_forward")
        out = forward(x)
        call("after_forward")
        loss = nn.functional.cross_entropy(out, y)
        call("before_backward")
        loss.backward()
        call("after_backward")
        call("before_update")
        opt.step()
        call("after_update")
        call("after_training_iteration")

    return step


def _eval_step(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad():
            forward(x)

    return step


def _syncer(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _time(
    variants: dict[str, Callable[[], None]], rounds: int, device: str
) -> dict[str, tuple[float, float]]:
    """(median, min) ms per call of each variant, interleaved with a rotating order.

    The minimum is the figure least disturbed by other processes on a shared machine."""
    sync = _syncer(device)
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(WARMUP + rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync()
            start = time.perf_counter()
            variants[name]()
            sync()
            if r >= WARMUP:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: (statistics.median(values), min(values)) for name, values in times.items()}


def _figures(
    prefix: str, timed: dict[str, tuple[float, float]], ratios: dict[str, tuple[str, str]]
) -> dict[str, float]:
    """``<variant>_<prefix>_ms`` (median), ``..._min_ms``, and each ratio ``num / den`` of
    medians (``<name>``) and of minimums (``<name>_min``)."""
    out = {}
    for name, (median, fastest) in timed.items():
        out[f"{name}_{prefix}_ms"] = median
        out[f"{name}_{prefix}_min_ms"] = fastest
    for name, (num, den) in ratios.items():
        out[name] = timed[num][0] / timed[den][0]
        out[f"{name}_min"] = timed[num][1] / timed[den][1]
    return out


def _packed(
    model: nn.Module, head: nn.Module | None, opt: torch.optim.Optimizer
) -> tuple[PackNetPlugin, SimpleNamespace]:
    """Pack task 0 at ratio 0.5 without data, then open task 1 (train phase)."""
    plugin = PackNetPlugin(prune_ratio=0.5, retrain_epochs=1)
    plugin.pack_without_training(model, head=head, task_label=0)
    strategy = _strategy(model, opt, task_label=1)
    plugin.before_training_exp(strategy)
    plugin.before_training_epoch(strategy)
    return plugin, strategy


def _materialise_ms(
    plugin: PackNetPlugin, strategy: SimpleNamespace, device: str, reps: int = 3
) -> tuple[float, float]:
    """Median ms to materialise task 0 for an evaluated experience, and to restore."""
    sync = _syncer(device)
    eval_task0 = SimpleNamespace(**vars(strategy))
    eval_task0.experience = SimpleNamespace(task_label=0, task_labels=[0])
    show, restore = [], []
    for _ in range(reps):
        for hook, times in ((plugin.before_eval_exp, show), (plugin.after_eval, restore)):
            sync()
            start = time.perf_counter()
            hook(eval_task0)
            sync()
            times.append((time.perf_counter() - start) * 1e3)
    plugin.before_eval_exp(eval_task0)  # leave task 0 materialised for the eval timing
    return statistics.median(show), statistics.median(restore)


def _bn_free_net(in_channels: int) -> nn.Sequential:
    """A small VGG-like conv net without BatchNorm (Avalanche's PackNet refuses BN)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128 * 16, 256),
        nn.ReLU(),
        nn.Linear(256, CLASSES),
    )


def _bench_avalanche(
    in_channels: int, x: torch.Tensor, y: torch.Tensor, steps: int, device: str
) -> dict[str, float]:
    from avalanche.models.packnet import PackNetModel

    net = _bn_free_net(in_channels).to(device)
    plain = copy.deepcopy(net)
    theirs = PackNetModel(copy.deepcopy(net)).to(device)
    theirs.prune(0.5)
    theirs.freeze_pruned()  # task 0 packed; their forward with task 1 trains task 1
    task1 = torch.ones(x.shape[0], dtype=torch.long, device=device)
    ours_opt = _sgd(net)
    plugin, strategy = _packed(net, None, ours_opt)
    train = _time(
        {
            "plain_bnfree": _train_step(plain, _sgd(plain), x, y),
            "ours_bnfree": _train_step(net, ours_opt, x, y, plugin, strategy),
            "avalanche": _train_step(lambda inp: theirs(inp, task1), _sgd(theirs), x, y),
        },
        steps,
        device,
    )
    plugin.after_training_exp(strategy)
    for model in (plain, net, theirs):
        model.eval()
    _materialise_ms(plugin, strategy, device)
    task0 = torch.zeros_like(task1)
    evals = _time(
        {
            "plain_bnfree": _eval_step(plain, x),
            "ours_bnfree": _eval_step(net, x),
            "avalanche": _eval_step(lambda inp: theirs(inp, task0), x),
        },
        steps,
        device,
    )
    plugin.after_eval(strategy)
    return {
        **_figures("train", train, {"avalanche_vs_ours_train": ("avalanche", "ours_bnfree")}),
        **_figures("eval", evals, {"avalanche_vs_ours_eval": ("avalanche", "ours_bnfree")}),
    }


def bench_packnet(
    arch: str, device: str = "cpu", image_size: int = 32, batch_size: int = 32, steps: int = 20
) -> dict:
    """Train-step and eval-step times (ms, median and min) and ratios of PackNet vs plain
    fine-tuning on ``arch`` (``plain_frozen_bn``: plain with BatchNorm in eval mode, as
    PackNet runs it after task 0), plus ours vs Avalanche's PackNet on a BN-free conv net.
    ``materialise_ms`` / ``restore_ms``: once per evaluated experience of an older task."""
    in_channels, size = (1, 28) if arch == "smallcnn" else (3, image_size)
    torch.manual_seed(0)
    x = torch.randn(batch_size, in_channels, size, size, device=device)
    y = torch.randint(0, CLASSES, (batch_size,), device=device)

    model = build_model(arch, [CLASSES, CLASSES], in_channels).to(device)
    plain = copy.deepcopy(model).train()
    plain_frozen_bn = copy.deepcopy(model).train()
    for module in plain_frozen_bn.modules():
        if isinstance(module, _BatchNorm):
            module.eval()
    model.train()
    opt = _sgd(model)
    plugin, strategy = _packed(model, model.heads[0], opt)
    train = _time(
        {
            "plain": _train_step(lambda inp: plain(inp, 1), _sgd(plain), x, y),
            "plain_frozen_bn": _train_step(
                lambda inp: plain_frozen_bn(inp, 1), _sgd(plain_frozen_bn), x, y
            ),
            "packnet": _train_step(lambda inp: model(inp, 1), opt, x, y, plugin, strategy),
        },
        steps,
        device,
    )
    plugin.after_training_exp(strategy)  # prunes task 1 and freezes it: 2 tasks packed

    plain.eval()
    model.eval()
    materialise_ms, restore_ms = _materialise_ms(plugin, strategy, device)
    evals = _time(
        {
            "plain": _eval_step(lambda inp: plain(inp, 0), x),
            "packnet": _eval_step(lambda inp: model(inp, 0), x),
        },
        steps,
        device,
    )
    plugin.after_eval(strategy)

    return {
        "arch": arch,
        "device": device,
        "input": [in_channels, size, size],
        "batch_size": batch_size,
        "steps": steps,
        "threads": torch.get_num_threads(),
        **_figures(
            "train",
            train,
            {
                "train_ratio": ("packnet", "plain"),
                "train_ratio_vs_frozen_bn": ("packnet", "plain_frozen_bn"),
            },
        ),
        **_figures("eval", evals, {"eval_ratio": ("packnet", "plain")}),
        "materialise_ms": materialise_ms,
        "restore_ms": restore_ms,
        **_bench_avalanche(in_channels, x, y, steps, device),
    }
