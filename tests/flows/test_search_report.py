import optuna
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

from imagepipe.orchestration.search_report import parent_run, trials_table
from imagepipe.search.spec import Search

SPEC = Search.model_validate(
    {
        "stage": "train_cnn",
        "history": "plots/cnn/history.csv",
        "monitor": "val_accuracy",
        "direction": "maximize",
        "trials": 3,
        "space": {"train_cnn.learning_rate": {"type": "float", "low": 0.001, "high": 0.01}},
    }
)


def test_the_table_lists_every_trial_and_puts_the_best_in_bold():
    study = optuna.create_study(direction="maximize")
    for values, prune in (([0.8, 0.9], False), ([0.2], True), ([0.85, 0.95], False)):
        trial = study.ask({"train_cnn.learning_rate": optuna.distributions.FloatDistribution(0.001, 0.01)})
        for epoch, value in enumerate(values):
            trial.report(value, epoch)
        trial.set_user_attr("dvc_experiment", f"s-trial-{trial.number}")
        trial.set_user_attr("mlflow_run_id", f"run{trial.number}abcdef")
        if prune:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, max(values))
    rows = trials_table(study, SPEC, "http://127.0.0.1:5000").splitlines()
    assert rows[0] == "| trial | state | val_accuracy | train_cnn.learning_rate | DVC experiment | MLflow run |"
    assert rows[3].startswith("| 1 | pruned | (0.2000 at epoch 1) |")
    assert rows[4].startswith("| **2** | **complete** | **0.9500** |") and "**`s-trial-2`**" in rows[4]
    assert "[run2abcd](http://127.0.0.1:5000/#/runs/run2abcdef)" in rows[4] and "**" not in rows[2]


def test_the_search_run_names_its_baseline_commit_in_mlflows_tag(mlflow_store):
    baseline = "0123456789abcdef0123456789abcdef01234567"
    with parent_run("lr-1", "lr", SPEC, baseline, trials=3) as run_id:
        pass
    tags = MlflowClient().get_run(run_id).data.tags
    assert tags[MLFLOW_GIT_COMMIT] == baseline and "git_commit" not in tags
