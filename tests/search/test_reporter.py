import optuna
import pytest

from imagepipe.core.errors import StageError
from imagepipe.search.context import TrialContext
from imagepipe.search.reporter import ReportToStudy, TrialPruned, trial_callbacks


@pytest.fixture
def context(tmp_path) -> TrialContext:
    """A study whose first trial finished with 0.9 after each of two epochs; trial 1 is running."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study = optuna.create_study(study_name="s", storage=url, direction="maximize", pruner=pruner)
    first = study.ask()
    for epoch in range(2):
        first.report(0.9, epoch)
    study.tell(first, 0.9)
    study.ask()
    settings = {"kind": "median", "startup_trials": 1, "warmup_epochs": 0}
    return TrialContext(url, "s", 1, "val_accuracy", settings, "s-trial-1", "parent")


def test_a_trial_whose_best_epoch_is_below_the_median_is_pruned(context):
    reporter = ReportToStudy(context)
    with pytest.raises(TrialPruned, match=r"trial 1 pruned after epoch 1: val_accuracy = 0.2"):
        reporter.on_epoch_end(0, {"val_accuracy": 0.2, "loss": 2.0})
    trial = optuna.load_study(study_name="s", storage=context.storage).trials[1]
    assert trial.intermediate_values == {0: 0.2} and trial.user_attrs["pruned_at_epoch"] == 0


def test_a_trial_above_the_median_goes_on(context):
    reporter = ReportToStudy(context)
    for epoch, value in enumerate([0.95, 0.5]):  # judged by its best epoch so far
        reporter.on_epoch_end(epoch, {"val_accuracy": value})
    assert "pruned_at_epoch" not in optuna.load_study(study_name="s", storage=context.storage).trials[1].user_attrs


def test_a_monitor_the_stage_does_not_log_is_an_error(context):
    with pytest.raises(StageError, match=r"monitors 'val_accuracy', which this stage does not log; it logs \['loss'\]"):
        ReportToStudy(context).on_epoch_end(0, {"loss": 0.1})


def test_callbacks_come_from_the_environment_only_in_a_trial(context, monkeypatch):
    monkeypatch.delenv("IMAGEPIPE_TRIAL", raising=False)
    assert trial_callbacks() == []
    monkeypatch.setenv(*next(iter(context.to_env().items())))
    assert TrialContext.from_env() == context and isinstance(trial_callbacks()[0], ReportToStudy)
    assert context.tags() == {
        "optuna_study": "s",
        "optuna_trial": "1",
        "dvc_experiment": "s-trial-1",
        "mlflow.parentRunId": "parent",
    }
