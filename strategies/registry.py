"""Every strategy the harness can run (``--strategy``): its options, its storage formula
and its guarantees, declared without importing its implementation.

Each spec names the module that implements the method (imported only when a run builds
it), so ``list``, ``run --help`` and ``storage`` stay fast. The defaults here are the
command line's; where the implementation is a reusable plugin (PackNet, Piggyback), the
plugin's own keyword defaults are the same values (a test keeps them equal).
"""

from __future__ import annotations

from clbench.core import domains
from clbench.core.protocol import (
    DEFINITION,
    EWC_PAPER,
    LWF_PAPER,
    PACKNET_METHOD,
    PACKNET_PAPER,
    PACKNET_SCRIPTS,
    PIGGYBACK_PAPER,
    Setting,
)
from clbench.core.registry import Registry
from clbench.core.storage import (
    ModelSizes,
    index_bits,
    packed_bytes,
    result,
    shared_network,
    with_extras,
)
from strategies import packnet_options
from strategies.base import Option, Phase, StrategySpec, lower_lr


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


PACKNET_GRANULARITIES = ("weight", "filter")
"""``--prune-granularity`` values (the plugin's ``GRANULARITIES``; a test keeps them equal)."""


def one_of(*choices: str):
    """A check accepting only ``choices``."""

    def check(value) -> str | None:
        if value is None or value in choices:
            return None
        return f"must be one of {', '.join(choices)}, got {value!r}"

    return check


def packnet_storage(
    sizes: ModelSizes, num_tasks: int, options: dict, first_task_pretrained: bool
) -> dict:
    """PackNet: the shared network plus one owner index per prunable backbone weight
    (per output filter / unit with filter granularity), ceil(log2 T) bits each (0 bits
    for one task; heads and biases are never pruned). With per-task BatchNorm, T - 1
    extra copies of every BN weight, bias, mean and var; with per-task biases, T - 1
    extra copies of every conv / linear bias of the backbone. ``--train-layers`` does
    not change it: an owner index is kept for every prunable weight."""
    filters = options["prune_granularity"] == "filter"
    units = sizes.maskable_units if filters else sizes.maskable_weights
    extras = {"masks": packed_bytes(units * index_bits(num_tasks))}
    if options["per_task_bn"]:
        extras["per_task_batchnorm"] = (num_tasks - 1) * sizes.batchnorm
    if options["per_task_bias"]:
        extras["per_task_biases"] = (num_tasks - 1) * sizes.biases
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


PACKNET_BN = Setting(
    "trained in PackNet's first task only, then frozen (eval, affine fixed)", PACKNET_METHOD
)
PACKNET_FROZEN = Setting(
    "earlier tasks' weights (bit-exact); biases and BatchNorm after the first task",
    PACKNET_METHOD,
)
PACKNET_PHASES = (
    Phase(
        "ImageNet (with its data): prune, retrain",
        epochs="retrain_epochs",
        lr="pretrained_retrain_lr",
        lr_step="pretrained_retrain_lr_step",
        pretrained_task=True,
        batchnorm=Setting("trained, biases too (--train_bn)", PACKNET_SCRIPTS),
        frozen=Setting("the pruned weights, held at 0", PACKNET_METHOD),
    ),
    Phase("train", batchnorm=PACKNET_BN, frozen=PACKNET_FROZEN),
    Phase(
        "prune (ratio > 0), retrain",
        epochs="retrain_epochs",
        lr="retrain_lr",
        lr_step=None,
        batchnorm=PACKNET_BN,
        frozen=Setting("as in training, and the pruned weights held at 0", PACKNET_METHOD),
    ),
)
"""PackNet's phases: the pretrained ImageNet task is pruned and retrained (no training
before pruning); every other task trains, is pruned (unless its ratio is <= 0: the last
task on the papers' streams), then retrained."""

STRATEGIES: Registry[StrategySpec] = Registry(
    "strategy",
    [
        StrategySpec(
            name="finetune",
            summary="shared backbone fine-tuned on each task, nothing protects old tasks "
            "(lower bound)",
            implementation="strategies.finetune",
            storage=shared_network_storage,
            frozen=Setting("nothing", DEFINITION),
        ),
        StrategySpec(
            name="classifier_only",
            summary="frozen backbone, a new head per task (first task trains it when not "
            "pretrained)",
            implementation="strategies.classifier_only",
            storage=shared_network_storage,
            old_tasks_exact=True,
            frozen=Setting(
                "the backbone, BatchNorm included: only each task's head trains (from "
                "scratch: after the first task, which trains it)",
                PACKNET_PAPER,
            ),
        ),
        StrategySpec(
            name="packnet",
            summary="PackNet: iterative magnitude pruning frees weights for the next task; "
            "old tasks' weights frozen bit-exactly (Mallya & Lazebnik 2018)",
            implementation="strategies.packnet_harness",
            storage=packnet_storage,
            old_tasks_exact=True,
            frozen=PACKNET_FROZEN,
            phases=PACKNET_PHASES,
            normalize=packnet_options.normalize,
            divergence_hints=packnet_divergence_hints,
            options=(
                Option(
                    "--prune-ratios",
                    str,
                    "0.75",
                    "fraction of each task's weights freed after training, per layer: one "
                    "per task, or one per task but the last, which is then not pruned (the "
                    "paper's 0.5,0.75,0.75 on finegrained = 0.5,0.75,0.75,-1), or one value "
                    "for every task (on the papers' streams every task but the last); <= 0 "
                    "(e.g. -1) leaves a task unpruned",
                    packnet_options.check_prune_ratios,
                ),
                Option(
                    "--retrain-epochs",
                    int,
                    None,
                    "epochs of retraining after pruning, at a constant LR (paper streams: "
                    "10; elsewhere half of --epochs)",
                    domains.at_least(0),
                ),
                Option(
                    "--retrain-lr",
                    float,
                    None,
                    "constant LR of the retrain phase (paper streams: 1e-4; elsewhere --lr / 10)",
                    domains.positive,
                ),
                Option(
                    "--pretrained-retrain-lr",
                    float,
                    None,
                    "LR of the pretrained ImageNet task's retraining after pruning, for "
                    "--retrain-epochs, when its training data is on disk (paper: 1e-3; the "
                    "authors' scripts: 1e-4)",
                    domains.positive,
                ),
                Option(
                    "--pretrained-retrain-lr-step",
                    int,
                    None,
                    "x0.1 every N epochs of that retraining (paper: 5; 0: constant)",
                    domains.at_least(0),
                ),
                Option(
                    "--per-task-bn",
                    bool,
                    False,
                    "keep BatchNorm per task (affine + running stats) instead of freezing it "
                    "after the first task",
                ),
                Option(
                    "--per-task-bias",
                    bool,
                    False,
                    "every task trains and keeps its own conv / linear biases (BatchNorm's "
                    "with --per-task-bn) instead of freezing them after the first task "
                    "(paper, Table 5)",
                ),
                Option(
                    "--train-layers",
                    str,
                    "all",
                    "the layers whose free weights a task after the first trains: all, "
                    "classifier (only its head), linear (the fully connected layers), "
                    "from:LAYER (LAYER and every later layer) or comma-separated layer names "
                    "(paper, Figure 5); elsewhere free weights stay 0",
                ),
                Option(
                    "--prune-granularity",
                    str,
                    "weight",
                    "weight: single weights (the paper's PackNet); filter: whole conv filters "
                    "/ linear units by L1 norm, and no task reads a later task's filter, so one "
                    "forward pass serves every task (paper, Table 6)",
                    one_of(*PACKNET_GRANULARITIES),
                ),
                Option(
                    "--eval-pruning",
                    bool,
                    False,
                    "evaluate every pruned task after training, right after pruning and after "
                    "retraining (on its validation split with --valid-fraction, else its test "
                    "split); recorded as prune_stages (paper, Figure 4)",
                ),
            ),
        ),
        StrategySpec(
            name="piggyback",
            summary="fixed backbone, a learned binary mask (1 bit/weight) and a head per task",
            implementation="strategies.piggyback_harness",
            storage=piggyback_storage,
            old_tasks_exact=True,
            optimizer=Setting("Adam (mask scores and head)", PIGGYBACK_PAPER),
            frozen=Setting(
                "the backbone (weights, biases, BatchNorm); earlier tasks' masks",
                PIGGYBACK_PAPER,
            ),
            phases=(Phase("", lr="piggyback_lr"),),
            unused=("lr", "momentum"),
            batchnorm_modes=("frozen",),
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
                    "Adam learning rate of the mask scores and the head, x0.1 every "
                    "--lr-step epochs, weight decay --weight-decay (paper: 0); --lr and "
                    "--momentum do not apply (recorded as null)",
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
            frozen=Setting(
                "the backbone and the old heads during the warm-up epochs (--lwf-warmup-epochs)",
                LWF_PAPER,
            ),
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
            frozen=Setting("nothing: a quadratic penalty anchors the backbone", EWC_PAPER),
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
            frozen=Setting("nothing: every task at once", DEFINITION),
        ),
        StrategySpec(
            name="individual",
            summary="a separate copy of the initial network fine-tuned per task (upper reference)",
            implementation="strategies.individual",
            storage=individual_storage,
            old_tasks_exact=True,
            frozen=Setting(
                "nothing: each task fine-tunes its own copy of the initial network",
                PACKNET_PAPER,
            ),
        ),
    ],
)
