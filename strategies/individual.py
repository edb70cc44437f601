"""Individual networks: a separate copy of the initial network fine-tuned for each task.

Before each task the model is reset to the initial network (the pretrained weights when
there are some; otherwise the seeded random initialisation) and the optimizer state is
cleared; after the task its whole state is kept as network j. Evaluating task j loads
network j, so no task ever changes another. The upper reference of the PackNet paper;
storage is one full network per task (:func:`clbench.core.storage.individual_storage`).
"""

from __future__ import annotations

from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

from strategies.base import BuildContext
from strategies.templates import make_naive, strategy_plugin


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


class IndividualNetworksPlugin(SupervisedPlugin):
    """Trains one network per task from ``model``'s current state, serves task j with network j.

    The model object is reused (its state is loaded in place), so the strategy's
    optimizer and schedulers keep their references.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.initial = _snapshot(model)
        self.networks: dict[int, dict[str, Tensor]] = {}
        """Task label -> state of that task's network."""
        self._live: dict[str, Tensor] | None = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        strategy.model.load_state_dict(self.initial)
        strategy.optimizer.state.clear()

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.networks[int(strategy.experience.task_label)] = _snapshot(strategy.model)

    def before_eval(self, strategy, **kwargs) -> None:
        self._live = _snapshot(strategy.model)

    def before_eval_exp(self, strategy, **kwargs) -> None:
        labels = set(strategy.experience.task_labels)
        if len(labels) != 1:
            raise ValueError("individual networks evaluate one task per experience")
        label = int(labels.pop())
        if label not in self.networks:
            raise ValueError(f"task label {label} has no individual network (not trained)")
        strategy.model.load_state_dict(self.networks[label])

    def after_eval(self, strategy, **kwargs) -> None:
        strategy.model.load_state_dict(self._live)
        self._live = None

    def state_dict(self) -> dict:
        return {"initial": self.initial, "networks": self.networks}

    def load_state_dict(self, state: dict) -> None:
        self.initial = dict(state["initial"])
        self.networks = {int(label): dict(network) for label, network in state["networks"].items()}


def build(ctx: BuildContext):
    return make_naive(ctx, [IndividualNetworksPlugin(ctx.model)])


def adopt_pretrained(learner, experience, **train_kwargs) -> None:
    """The pretrained network's own task: network 0 is the pretrained network as it is."""
    plugin = strategy_plugin(learner, IndividualNetworksPlugin)
    plugin.networks[int(experience.task_label)] = _snapshot(learner.model)
