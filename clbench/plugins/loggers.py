"""``--log tensorboard,csv,wandb``: Avalanche's own loggers, fed by an EvaluationPlugin.

:class:`RunLogging` is the learner's Avalanche evaluator (templates take it from the
run's plugins, :func:`strategies.templates.make_template`): per epoch the training loss
and top-1 accuracy, and after every task the loss and top-1 accuracy of each test
experience, handed to Avalanche's ``TensorboardLogger`` (``<run>/tensorboard/``),
``CSVLogger`` (``<run>/csv/``) and ``WandBLogger`` (``<run>/wandb/``, offline unless
``WANDB_MODE`` says otherwise: nothing leaves the machine by default). The record's
numbers remain the harness's own (:mod:`clbench.plugins.accuracy`); the loggers are
views for the tools the field uses.

Only what the run measures is logged: the fingerprint probes' evaluations and the epochs
a resumed task replays without data are not. A resumed run appends: TensorBoard writes
a new event file in the same folder, the CSV files keep their earlier rows, W&B starts
a new offline run; epochs trained after the last checkpoint by the interrupted
invocation appear twice.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.logging import CSVLogger, TensorboardLogger, WandBLogger
from avalanche.training.plugins import EvaluationPlugin

CSV_FILES = ("training_results.csv", "eval_results.csv")
WANDB_PROJECT = "clbench"


class AppendingCSVLogger(CSVLogger):
    """Avalanche's ``CSVLogger`` that keeps the rows an earlier invocation of the run
    wrote (Avalanche's truncates its files when it is created)."""

    def __init__(self, folder: Path) -> None:
        earlier = {
            name: (folder / name).read_text().splitlines(keepends=True)[1:]
            for name in CSV_FILES
            if (folder / name).is_file()
        }
        super().__init__(str(folder))
        for name, file in zip(CSV_FILES, (self.training_file, self.eval_file)):
            file.writelines(earlier.get(name, []))
            file.flush()


class ScalarWandBLogger(WandBLogger):
    """Avalanche 0.6's ``WandBLogger`` with the current wandb: its ``log_single_metric``
    names ``wandb.viz``, which wandb no longer has; the run's metrics are all scalars,
    logged here at Avalanche's step (training iterations so far)."""

    def log_single_metric(self, name, value, x_plot) -> None:
        if isinstance(value, int | float):
            self.step = x_plot
            self.wandb.log({name: value}, step=x_plot)


def make_logger(name: str, run_dir: Path, run_name: str, config: dict):
    """The Avalanche logger called ``name`` (one of :data:`clbench.core.config.LOGGERS`),
    writing under ``run_dir``."""
    if name == "tensorboard":
        return TensorboardLogger(run_dir / "tensorboard")
    if name == "csv":
        return AppendingCSVLogger(run_dir / "csv")
    import wandb

    return ScalarWandBLogger(
        project_name=WANDB_PROJECT,
        run_name=run_name,
        save_code=False,
        config=config,
        dir=str(run_dir),
        params={
            # Avalanche 0.6 draws the id with wandb.util.generate_id, gone from wandb.
            "id": os.environ.get("WANDB_RUN_ID") or secrets.token_hex(4),
            "mode": os.environ.get("WANDB_MODE", "offline"),
            "settings": wandb.Settings(console="off", silent=True),
        },
    )


class RunLogging(EvaluationPlugin):
    """The run's Avalanche evaluator when ``--log`` is given (see the module docstring).

    It logs nothing until :meth:`open` creates the loggers (when training starts, so a
    run refused before that writes nothing); :meth:`close` flushes and closes them.

    :param names: the loggers, from :data:`clbench.core.config.LOGGERS`.
    """

    def __init__(self, names: list[str]) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No loggers specified")
            super().__init__(
                accuracy_metrics(epoch=True, experience=True),
                loss_metrics(epoch=True, experience=True),
                loggers=[],
                collect_all=False,
            )
        self.names = list(dict.fromkeys(names))
        self.active = False

    def open(self, run_dir: Path, run_name: str, config: dict) -> RunLogging:
        """Create the loggers, writing under ``run_dir`` (``config`` goes to W&B); used
        as a context manager, they are closed when it exits."""
        self.loggers = [make_logger(name, run_dir, run_name, config) for name in self.names]
        self.active = True
        return self

    def __enter__(self) -> RunLogging:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close every logger (W&B: finish its run)."""
        for logger in self.loggers:
            if isinstance(logger, CSVLogger):
                logger.close()
            elif isinstance(logger, TensorboardLogger):
                logger.writer.close()
            elif isinstance(logger, WandBLogger):
                logger.wandb.finish()
        self.loggers, self.active = [], False

    def _update_metrics_and_loggers(self, strategy, callback: str):
        # Avalanche 0.6 routes every callback of EvaluationPlugin through this method
        # (its __getattribute__ forwards before_*/after_* here): the one place to gate.
        if self.loggers and callback == "before_training_epoch":
            self.active = bool(len(strategy.dataloader))  # a resume's replayed epoch: no data
        elif self.loggers and callback == "before_eval_exp":
            self.active = strategy.experience.origin_stream.name == "test"  # not the probes
        result = super()._update_metrics_and_loggers(strategy, callback)
        if callback == "after_eval":
            self.active = bool(self.loggers)
        return result
