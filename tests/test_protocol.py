"""The protocol table: its declarations are the papers', every value has a source, the
README shows it as generated, and runs train exactly as it says (traced per epoch on a
fixture paper stream with the real default epochs and a zero-cost training loop)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from avalanche.training.templates.update_type.sgd_update import SGDUpdate

import clbench.run.runner as runner_module
from benchmarks import STREAMS
from clbench.core.config import RunConfig
from clbench.core.protocol import step_lr
from clbench.protocol import protocol_markdown, protocol_tables, rows
from clbench.resolve import protocol_defaults, resolve
from strategies.registry import STRATEGIES
from strategies.templates import batchnorm_modules
from tests import dataset_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]
ONE_TASK = ("imagenet_cubs", "imagenet_cars", "imagenet_flowers")
PAPERS = ("finegrained", "finegrained6", "imagenet_places365", *ONE_TASK)
# The published protocols (METHODS.md, "Protocols, as published"), written out here
# independently of the declarations: (epochs, lr, LR step, weight decay) per strategy on
# finegrained; PackNet's retraining and the pretrained task's separately.
PUBLISHED = {
    "finetune": (20, 1e-3, 10, 0.0),
    "classifier_only": (20, 1e-3, 0, 0.0),  # constant LR
    "packnet": (20, 1e-3, 10, 0.0),
    "piggyback": (30, 1e-4, 15, 0.0),  # Adam at --piggyback-lr
    "lwf": (20, 1e-3, 10, 5e-4),
    "ewc": (20, 1e-3, 10, 0.0),
    "joint": (20, 1e-3, 10, 0.0),
    "individual": (20, 1e-3, 10, 0.0),
}
PACKNET_RETRAIN = (10, 1e-4)  # epochs, constant LR
PACKNET_IMAGENET = (10, 1e-3, 5)  # epochs, LR, x0.1 after
TRAIN_IMAGES = {"imagenet": 15, "cubs": 15, "cars": 15, "flowers": 18}  # the fixture's


# ----------------------------------------------------------------------------- declarations
@pytest.mark.parametrize("strategy", list(PUBLISHED))
def test_paper_stream_defaults_are_the_published_protocol(strategy):
    values = protocol_defaults("finegrained", strategy)
    epochs, lr, step, weight_decay = PUBLISHED[strategy]
    assert values["epochs"] == epochs and values["lr_step"] == step
    assert values["weight_decay"] == weight_decay and values["batch_size"] == 32
    assert values["select"] == "last"
    if strategy == "piggyback":
        assert values["piggyback_lr"] == lr
        assert values["lr"] is None and values["momentum"] is None  # Adam: not used
        assert values["batchnorm"] == "frozen"
    else:
        assert values["lr"] == lr and values["momentum"] == 0.9
        assert values["batchnorm"] == ("train" if strategy == "packnet" else "frozen")
    if strategy == "packnet":
        assert values["prune_ratios"] == "0.5,0.75,0.75,-1"
        assert (values["retrain_epochs"], values["retrain_lr"]) == PACKNET_RETRAIN
        imagenet = (
            values["retrain_epochs"],
            *(values[f"pretrained_retrain_lr{k}"] for k in ("", "_step")),
        )
        assert imagenet == PACKNET_IMAGENET
    places = protocol_defaults("imagenet_places365", strategy)
    assert (places["epochs"], places["lr_step"]) == (10, 0 if strategy == "classifier_only" else 5)


@pytest.mark.parametrize("stream", ONE_TASK)
@pytest.mark.parametrize("strategy", list(PUBLISHED))
def test_one_added_task_streams_train_as_finegrained(stream, strategy):
    """Section 5 adds CUBS, Cars or Flowers alone with the fine-grained schedule."""
    ours, finegrained = (
        protocol_defaults(stream, strategy),
        protocol_defaults("finegrained", strategy),
    )
    ours.pop("prune_ratios", None), finegrained.pop("prune_ratios", None)
    assert ours == finegrained


def test_the_papers_prune_ratio_notation():
    ratios = {s: protocol_defaults(s, "packnet")["prune_ratios"] for s in PAPERS}
    assert ratios == {
        "finegrained": "0.5,0.75,0.75,-1",
        "finegrained6": "0.5,0.75,0.75,0.75,0.75,-1",
        "imagenet_places365": "0.5,-1",
        **dict.fromkeys(ONE_TASK, "0.5,-1"),  # section 5: one task added to the 50%-pruned
    }

    def resolved(stream: str, text: str) -> str:
        config = resolve(
            RunConfig(strategy="packnet", stream=stream, options={"prune_ratios": text})
        )
        return config.options["prune_ratios"]

    same = {resolved("finegrained", t) for t in ("0.5,0.75,0.75", "0.50,0.75,0.75,-1")}
    assert same == {"0.5,0.75,0.75,-1"}
    assert resolved("finegrained", "0.75") == "0.75,0.75,0.75,-1"  # the last never pruned
    assert resolved("imagenet_cars", "0.5,0.9") == "0.5,0.9"  # Figure 4: the added task pruned
    assert resolved("splitmnist", "0.75") == "0.75"  # every task
    assert resolved("splitmnist", "0.5,0.75,0.75,0.75") == "0.5,0.75,0.75,0.75,-1"
    first = resolve(
        RunConfig(
            strategy="packnet", stream="finegrained", options={"prune_ratios": "0.5,0.75,0.75"}
        )
    )
    second = resolve(
        RunConfig(
            strategy="packnet", stream="finegrained", options={"prune_ratios": "0.5,0.75,0.75,-1"}
        )
    )
    assert first.run_id == second.run_id


def test_given_options_override_the_protocol():
    config = resolve(RunConfig(
        strategy="piggyback", stream="finegrained", epochs=3, lr_step=0, weight_decay=1e-5,
        lr=0.5, options={"piggyback_lr": 0.01},
    ))  # fmt: skip
    assert (config.epochs, config.lr_step, config.weight_decay) == (3, 0, 1e-5)
    assert config.options["piggyback_lr"] == 0.01 and config.lr is None
    config = resolve(RunConfig(strategy="packnet", stream="splitmnist", epochs=6, lr=0.1))
    assert config.options["retrain_epochs"] == 3 and config.options["retrain_lr"] == pytest.approx(
        0.01
    )
    config = resolve(RunConfig(strategy="lwf", stream="finegrained", batchnorm="train"))
    assert config.batchnorm == "train" and config.weight_decay == 5e-4


def test_what_a_strategy_cannot_do_is_refused_in_one_line(run_cli):
    code, _, err = run_cli("run", "--strategy", "piggyback", "--batchnorm", "train")
    assert code == 2 and "piggyback accepts frozen" in err and len(err.splitlines()) == 1
    code, _, err = run_cli("list", "--stream", "finegrained")
    assert code == 2 and "--protocol only" in err


def test_run_help_and_list_show_the_defaults(run_cli, capsys):
    with pytest.raises(SystemExit):
        run_cli("run", "--help")
    text = capsys.readouterr().out
    assert (
        re.search(r"^(\S+, )*finegrained(, \S+)*:$", text, re.M)
        and "  piggyback: 30 epochs, lr 0.0001, x0.1 after 15" in text
    )
    code, out, _ = run_cli("list", "--protocol", "--stream", "finegrained")
    assert code == 0 and out == protocol_markdown("finegrained")


def test_every_table_cell_has_a_source():
    for stream in STREAMS:
        for row, _ in rows(stream):
            for key in ("epochs", "momentum", "weight_decay", "batch_size", "batchnorm", "select"):
                if key not in row.spec.unused:
                    assert key in row.settings, (stream, row.spec.name, key)
            for key in (row.phase.epochs, row.phase.lr, row.phase.lr_step):
                assert key is None or key in row.settings, (stream, row.spec.name, key)
            assert row.spec.frozen is not None
        table = protocol_markdown(stream)
        marks = {int(n) for n in re.findall(r"\[(\d+)\]", table)}
        assert marks == set(range(1, len(marks) + 1))


def test_readme_shows_the_generated_protocol_table():
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- protocol table -->") + len("<!-- protocol table -->\n")
    end = text.index("<!-- end protocol table -->")
    assert text[start:end].strip() == protocol_tables(list(STREAMS)).strip()


# ----------------------------------------------------------------------------- traces
@pytest.fixture(scope="module")
def paper_root(tmp_path_factory) -> Path:
    return fx.finegrained(tmp_path_factory.mktemp("paper"))


def trace_run(strategy: str, root: Path, results: Path, monkeypatch) -> tuple[list[dict], dict]:
    """Run ``strategy`` on the fixture ``finegrained`` with every default of its
    protocol, ImageNet (task 0) adopted as the pretrained task (a random smallcnn stands
    in for the pretrained network). Every epoch runs the per-iteration hooks once
    (PackNet sets its retrain LR there) but no forward or backward pass, and records what
    it would have trained with; a task's first epoch also counts its batches' images."""
    trace: list[dict] = []

    def traced_epoch(self, **kwargs) -> None:
        images = None
        if self.clock.train_exp_epochs == 0:  # the first epoch counts what trains
            images = 0
            for batch in self.dataloader:
                self.mbatch = batch
                self._unpack_minibatch()
                images += len(self.mb_y)
        self._before_training_iteration(**kwargs)
        backbone = self.model.backbone
        bns = batchnorm_modules(backbone)
        in_bn = {id(p) for bn in bns for p in bn.parameters()}
        trains = [(id(p) in in_bn, p.requires_grad) for p in backbone.parameters()]
        group = self.optimizer.param_groups[0]
        trace.append(
            {
                "step": self.experience.current_experience,  # the task's index
                "epoch": self.clock.train_exp_epochs,
                "lr": group["lr"],
                "optimizer": type(self.optimizer).__name__,
                "momentum": group.get("momentum"),
                "weight_decay": group["weight_decay"],
                "batch_size": self.train_mb_size,
                "images": images,
                "train_set": len(self.adapted_dataset),
                "bn_training": {bn.training for bn in bns},
                "bn_affine_trains": any(grad for bn, grad in trains if bn),
                "backbone_trains": any(grad for bn, grad in trains if not bn),
            }
        )

    monkeypatch.setattr(SGDUpdate, "training_epoch", traced_epoch)
    monkeypatch.setattr(runner_module, "find_pretrained_weights", lambda *args: None)
    config = resolve(RunConfig(
        strategy=strategy, stream="finegrained", arch="smallcnn", image_size=8,
        data_root=str(root), results=str(results), device="cpu", workers=0,
    ))  # fmt: skip
    assert config.pretrained  # task 0 is adopted as the pretrained network's task
    record = runner_module.run(config, runner_module.Console(quiet=True)).to_dict()
    return trace, record


def lr_schedule(lr: float, step: int | None, epochs: int) -> list[float]:
    return [step_lr(lr, step, epoch) for epoch in range(epochs)]


def expected_phases(strategy: str) -> list[tuple[int, list[float], str]]:
    """(step, LR of every epoch, BatchNorm mode) of each phase the table declares, in
    training order: task 0 is the pretrained ImageNet task (on disk in the fixture)."""
    values = protocol_defaults("finegrained", strategy)
    spec = STRATEGIES[strategy]
    bn = "frozen" if strategy == "packnet" else values["batchnorm"]  # PackNet: after task 0
    phases = []
    if spec.trains_jointly:
        return [(0, lr_schedule(values["lr"], values["lr_step"], values["epochs"]), bn)]
    ratios = [float(r) for r in values.get("prune_ratios", "-1").split(",")]
    for step in range(4):
        for phase in spec.phases:
            if phase.pretrained_task != (step == 0):
                continue
            if phase.epochs == "retrain_epochs" and ratios[step] <= 0:
                continue  # PackNet's last task: not pruned, no retraining
            step_value = values[phase.lr_step] if phase.lr_step else 0
            lrs = lr_schedule(values[phase.lr], step_value, values[phase.epochs])
            phases.append((step, lrs, "train" if phase.pretrained_task else bn))
    return phases


@pytest.mark.usefixtures("single_thread")
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler")  # no step is taken
@pytest.mark.parametrize("strategy", list(PUBLISHED))
def test_runs_train_as_the_protocol_table_says(strategy, paper_root, tmp_path, monkeypatch):
    trace, record = trace_run(strategy, paper_root, tmp_path, monkeypatch)
    values = protocol_defaults("finegrained", strategy)
    phases = expected_phases(strategy)
    by_step: dict[int, list[dict]] = {}
    for epoch in trace:
        by_step.setdefault(epoch["step"], []).append(epoch)
    for step in by_step:
        expected = [lr for s, lrs, _ in phases if s == step for lr in lrs]
        assert [e["lr"] for e in by_step[step]] == pytest.approx(expected, rel=1e-9), step
        bn_modes = [mode for s, lrs, mode in phases if s == step for _ in lrs]
        for epoch, mode in zip(by_step[step], bn_modes):
            assert epoch["bn_training"] == {mode == "train"}, (step, epoch["epoch"])
            if strategy != "packnet":  # PackNet restores frozen BN affine after each step
                assert epoch["bn_affine_trains"] is (mode == "train")
    assert sorted(by_step) == sorted({s for s, _, _ in phases})
    # the optimizer and its hyper-parameters, the batch size, the training set
    names = record["tasks"]
    for epoch in trace:
        assert epoch["optimizer"] == ("Adam" if strategy == "piggyback" else "SGD")
        assert epoch["momentum"] == (None if strategy == "piggyback" else values["momentum"])
        assert epoch["weight_decay"] == values["weight_decay"]
        assert epoch["batch_size"] == values["batch_size"] == 32
        if strategy == "joint":  # 2 task-balanced batches of 32 over the 63 images
            assert epoch["train_set"] == sum(TRAIN_IMAGES.values())
            assert epoch["images"] in (None, 64)
        else:
            assert epoch["train_set"] == TRAIN_IMAGES[names[epoch["step"]]]
            assert epoch["images"] in (None, epoch["train_set"])
    assert all((e["images"] is None) == (e["epoch"] > 0) for e in trace)
    # what is frozen
    trains = [e["backbone_trains"] for e in trace]
    if strategy in ("piggyback", "classifier_only"):
        assert not any(trains)
    elif strategy == "lwf":  # the warm-up trains only the new head
        warmup = values["lwf_warmup_epochs"]
        assert trains == [e["epoch"] >= warmup for e in trace]
    else:
        assert all(trains)
    # the network's own accuracy on ImageNet, measured before any strategy touched it:
    # what every strategy but PackNet (which prunes it) still gets (no step was taken)
    untouched = record["pretrained_network"]
    assert untouched["task"] == "imagenet" and untouched["top1"] is not None
    if strategy != "packnet":
        assert record["final"]["pretrained_top1"] == untouched["top1"]
    assert record["config"]["epochs"] == values["epochs"]
    assert record["config"]["options"] == {k: values[k] for k in record["config"]["options"]}
