"""Every strategy the harness can run (``--strategy``): its options, its storage formula
and its guarantees, declared without importing its implementation.

Each spec names the module that implements the method (imported only when a run builds
it), so ``list``, ``run --help`` and ``storage`` stay fast. The defaults here are the
command line's; where the implementation is a reusable plugin (PackNet, Piggyback), the
plugin's own keyword defaults are the same values (a test keeps them equal).
"""

from __future__ import annotations

from clbench.core import domains
from clbench.core.registry import Registry
from clbench.core.storage import (
    ModelSizes,
    index_bits,
    packed_bytes,
    result,
    shared_network,
    with_extras,
)
from strategies.base import Option, StrategySpec, lower_lr


def packnet_divergence_hints(config: dict) -> list[str]:
    """PackNet freezes BatchNorm after the first task: its statistics then meet the
    weights each new task trains, which a high learning rate can blow up."""
    hints = lower_lr(config)
    if not config["options"].get("per_task_bn"):
        hints.append("--per-task-bn (BatchNorm is frozen after the first task)")
    return hints


def ewc_divergence_hints(config: dict) -> list[str]:
    """A large EWC penalty makes SGD diverge (lr * lambda * F > 2)."""
    return [f"a smaller --ewc-lambda (this run: {config['options']['ewc_lambda']:g})"] + lower_lr(
        config
    )


def piggyback_divergence_hints(config: dict) -> list[str]:
    """Piggyback trains with its own Adam learning rate."""
    return [f"a lower --piggyback-lr (this run: {config['options']['piggyback_lr']:g})"]


def shared_network_storage(
    sizes: ModelSizes, num_tasks: int, options: dict, first_task_pretrained: bool
) -> dict:
    """Classifier-only, fine-tuning, LwF, EWC and joint training serve every task from
    one network: backbone, BatchNorm statistics, all heads."""
    return shared_network(sizes)


def packnet_storage(
    sizes: ModelSizes, num_tasks: int, options: dict, first_task_pretrained: bool
) -> dict:
    """PackNet: the shared network plus one owner index per prunable backbone weight,
    ceil(log2 T) bits each (0 bits for one task; heads and biases are never pruned).
    With per-task BatchNorm, T - 1 extra copies of every BN weight, bias, mean and var."""
    extras = {"masks": packed_bytes(sizes.maskable_weights * index_bits(num_tasks))}
    if options["per_task_bn"]:
        extras["per_task_batchnorm"] = (num_tasks - 1) * sizes.batchnorm
    return with_extras(sizes, extras)


def piggyback_storage(
    sizes: ModelSizes, num_tasks: int, options: dict, first_task_pretrained: bool
) -> dict:
    """Piggyback: the fixed shared network plus a 1-bit mask per conv/linear backbone
    weight for every task but the pretrained network's own task (served as it is)."""
    masked_tasks = max(num_tasks - 1 if first_task_pretrained else num_tasks, 0)
    return with_extras(sizes, {"masks": masked_tasks * packed_bytes(sizes.maskable_weights)})


def individual_storage(
    sizes: ModelSizes, num_tasks: int, options: dict, first_task_pretrained: bool
) -> dict:
    """One full network per task: T backbones (parameters and BN statistics), every
    head once."""
    breakdown = {
        "backbone_params": num_tasks * sizes.backbone_params,
        "backbone_buffers": num_tasks * sizes.backbone_buffers,
        "heads": sizes.heads,
    }
    return result(breakdown, num_tasks)


STRATEGIES: Registry[StrategySpec] = Registry(
    "strategy",
    [
        StrategySpec(
            name="finetune",
            summary="shared backbone fine-tuned on each task, nothing protects old tasks "
            "(lower bound)",
            implementation="strategies.finetune",
            storage=shared_network_storage,
        ),
        StrategySpec(
            name="classifier_only",
            summary="frozen backbone, a new head per task (first task trains it when not "
            "pretrained)",
            implementation="strategies.classifier_only",
            storage=shared_network_storage,
            old_tasks_exact=True,
        ),
        StrategySpec(
            name="packnet",
            summary="PackNet: iterative magnitude pruning frees weights for the next task; "
            "old tasks' weights frozen bit-exactly (Mallya & Lazebnik 2018)",
            implementation="strategies.packnet_harness",
            storage=packnet_storage,
            old_tasks_exact=True,
            divergence_hints=packnet_divergence_hints,
            options=(
                Option(
                    "--prune-ratios",
                    str,
                    "0.75",
                    "fraction of each task's weights freed after training, per layer: one "
                    "value or one per task, e.g. 0.5,0.75,0.75; <= 0 (e.g. -1) leaves a task "
                    "unpruned",
                ),
                Option(
                    "--retrain-epochs",
                    int,
                    None,
                    "epochs of retraining after pruning, at a constant LR; default: half of "
                    "--epochs (the paper: 20 train, 10 retrain)",
                    domains.at_least(0),
                ),
                Option(
                    "--retrain-lr",
                    float,
                    None,
                    "constant LR of the retrain phase; default: --lr / 10 (the paper: 1e-3 "
                    "-> 1e-4)",
                    domains.positive,
                ),
                Option(
                    "--per-task-bn",
                    bool,
                    False,
                    "keep BatchNorm per task (affine + running stats) instead of freezing it "
                    "after the first task",
                ),
            ),
        ),
        StrategySpec(
            name="piggyback",
            summary="fixed backbone, a learned binary mask (1 bit/weight) and a head per task",
            implementation="strategies.piggyback_harness",
            storage=piggyback_storage,
            old_tasks_exact=True,
            divergence_hints=piggyback_divergence_hints,
            options=(
                Option(
                    "--piggyback-threshold",
                    float,
                    5e-3,
                    "a weight is kept when its score exceeds this",
                    domains.finite,
                ),
                Option(
                    "--piggyback-score-init",
                    float,
                    1e-2,
                    "initial value of every mask score",
                    domains.finite,
                ),
                Option(
                    "--piggyback-lr",
                    float,
                    1e-4,
                    "Adam learning rate of the mask scores and the head, no weight decay; "
                    "x0.1 after half the epochs unless --lr-step is given (--lr, --momentum, "
                    "--weight-decay unused)",
                    domains.positive,
                ),
            ),
        ),
        StrategySpec(
            name="lwf",
            summary="Learning without Forgetting: old heads distilled on new-task data "
            "(T=2), head warm-up",
            implementation="strategies.lwf",
            storage=shared_network_storage,
            options=(
                Option(
                    "--lwf-temperature", float, 2.0, "distillation temperature", domains.positive
                ),
                Option(
                    "--lwf-weight",
                    float,
                    1.0,
                    "weight of the distillation loss",
                    domains.non_negative,
                ),
                Option(
                    "--lwf-warmup-epochs",
                    int,
                    5,
                    "epochs training only the new head at the start of each task after the "
                    "first, capped at half of --epochs (2 epochs: 1 warm-up epoch; 1 epoch: "
                    "none)",
                    domains.at_least(0),
                ),
            ),
        ),
        StrategySpec(
            name="ewc",
            summary="Elastic Weight Consolidation: diagonal-Fisher penalty towards old "
            "tasks' weights",
            implementation="strategies.ewc",
            storage=shared_network_storage,
            divergence_hints=ewc_divergence_hints,
            options=(
                Option(
                    "--ewc-lambda",
                    float,
                    100.0,
                    "weight lambda of the penalty lambda/2 * F * (theta - theta_old)^2; with "
                    "SGD, lr * lambda * F > 2 diverges (splitmnist: 1000 does on seed 1)",
                    domains.non_negative,
                ),
                Option(
                    "--ewc-fisher-samples",
                    int,
                    200,
                    "training images per task used to estimate the Fisher (0: all)",
                    domains.at_least(0),
                ),
            ),
        ),
        StrategySpec(
            name="joint",
            summary="all tasks trained together, task-balanced batches, one head per task "
            "(reference)",
            implementation="strategies.joint",
            storage=shared_network_storage,
            trains_jointly=True,
        ),
        StrategySpec(
            name="individual",
            summary="a separate copy of the initial network fine-tuned per task (upper reference)",
            implementation="strategies.individual",
            storage=individual_storage,
            old_tasks_exact=True,
        ),
    ],
)
