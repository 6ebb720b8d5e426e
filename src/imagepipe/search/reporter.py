"""The trial's side inside a training stage: each epoch's monitored value goes to the study's
pruner, and a trial the pruner stops ends the stage with an error (nothing is recorded as good)."""

import logging

import keras
import mlflow
import optuna

from imagepipe.core.errors import StageError
from imagepipe.search.context import TrialContext
from imagepipe.search.spec import Pruner
from imagepipe.search.study import storage, trial_id

logger = logging.getLogger(__name__)


class TrialPruned(StageError):
    """The pruner stopped this trial: its epochs so far were worse than other trials' at that epoch."""


class ReportToStudy(keras.callbacks.Callback):
    """Reports `context.monitor` after every epoch; raises TrialPruned when the pruner says so.
    Put it after the checkpoint and backup callbacks, so the epoch is saved before it stops."""

    def __init__(self, context: TrialContext):
        super().__init__()
        self.context = context
        self.trial = open_trial(context)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.context.monitor not in logs:
            raise StageError(
                f"the search monitors '{self.context.monitor}', which this stage does not log; "
                f"it logs {sorted(logs)} (search.yaml: the search's `monitor`)"
            )
        value = float(logs[self.context.monitor])
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_at_epoch", epoch)
            if mlflow.active_run():
                mlflow.set_tag("optuna_pruned_at_epoch", str(epoch))
            raise TrialPruned(
                f"trial {self.context.number} pruned after epoch {epoch + 1}: {self.context.monitor} = {value:.4g} "
                "and no epoch before was better than the median of finished trials at this epoch"
            )


def open_trial(context: TrialContext) -> optuna.Trial:
    """The running trial, opened from another process than the one that asked for it."""
    pruner = Pruner.model_validate(context.pruner).make()
    study = optuna.load_study(study_name=context.study, storage=storage(context.storage), pruner=pruner)
    return optuna.trial.Trial(study, trial_id(context.storage, context.study, context.number))


def trial_callbacks() -> list[keras.callbacks.Callback]:
    """[ReportToStudy] when a search trial started this stage, else []."""
    context = TrialContext.from_env()
    return [ReportToStudy(context)] if context else []
