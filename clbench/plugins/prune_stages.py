"""``--eval-pruning``: the task PackNet packs, evaluated after training, right after
pruning and after retraining (the PackNet paper's Figure 4).

The evaluation goes through the learner's own evaluation path (``learner.eval``: the
in-memory pipeline, precision, PackNet's task views), on the task's validation split
when the run holds one out (``--valid-fraction``), else on its test split.
"""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from benchmarks.stream import Stream
from clbench.core.config import RunConfig
from clbench.plugins.accuracy import TopkAccuracyPlugin
from strategies.packnet import PackNetPlugin
from strategies.templates import strategy_plugin


class PruneStageEvaluation(SupervisedPlugin):
    """PackNet's ``on_stage`` listener: evaluates the task being packed at each stage
    and keeps its top-1 accuracy until :meth:`pop`. Its state (a task's stages so far)
    is checkpointed inside a task; between tasks it is empty."""

    def __init__(self, accuracy: TopkAccuracyPlugin, experiences, split: str) -> None:
        super().__init__()
        self.accuracy = accuracy
        self.experiences = experiences
        self.split = split
        self.packnet: PackNetPlugin | None = None
        self.stages: dict[str, float | None] = {}
        """``prune_ratio`` and the top-1 accuracy of each stage so far, of the task being packed."""

    @classmethod
    def for_run(
        cls, config: RunConfig, stream: Stream, accuracy: TopkAccuracyPlugin
    ) -> PruneStageEvaluation | None:
        """The listener of a run with ``--eval-pruning``; None for any other run."""
        if not config.options.get("eval_pruning"):
            return None
        split = "valid" if config.valid_fraction else "test"
        return cls(accuracy, getattr(stream.benchmark, f"{split}_stream"), split)

    def listen(self, learner) -> None:
        """Become the ``on_stage`` callback of the learner's PackNet plugin."""
        self.packnet = strategy_plugin(learner, PackNetPlugin)
        self.packnet.on_stage = self

    def __call__(self, strategy, stage: str) -> None:
        index = strategy.experience.current_experience
        self.stages["prune_ratio"] = self.packnet.ratio(self.packnet.training_task)
        strategy.eval([self.experiences[index]])
        self.stages[stage] = self.accuracy.results[index].top1

    def pop(self) -> dict | None:
        """The stages of the task just packed (None when it did not prune), and forget them."""
        if not self.stages:
            return None
        stages, self.stages = self.stages, {}
        return {"split": self.split, **stages}

    def state_dict(self) -> dict:
        return dict(self.stages)

    def load_state_dict(self, state: dict) -> None:
        self.stages = dict(state)
