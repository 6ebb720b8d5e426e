"""training_session: one set-up for every training stage (state, fingerprint, MLflow run, tags)."""

import json

import mlflow

from imagepipe.tracking.session import TrainingSetup, training_session


def setup(tmp_path, **changes) -> TrainingSetup:
    values = {
        "stage": "train_toy",
        "state_dir": tmp_path / ".state/toy",
        "monitor": "val_accuracy",
        "mode": "max",
        "section": {"epochs": 2},
        "seed": 7,
        "inputs": {"data": "data/processed"},
    }
    return TrainingSetup(**{**values, **changes})


def test_the_run_logs_the_section_and_seed_and_carries_the_tags(tmp_path, mlflow_store):
    with training_session(setup(tmp_path), {"accelerator": "cpu"}) as state:
        run_id = mlflow.active_run().info.run_id
    run = mlflow.get_run(run_id)
    assert run.data.params == {"train_toy.epochs": "2", "seed": "7"}
    assert run.data.tags["accelerator"] == "cpu" and run.info.run_name == "train_toy"
    fingerprint = json.loads((state.directory / "fingerprint.json").read_text())
    assert fingerprint == {"params": {"epochs": 2}, "seed": 7, "data": None}  # no dvc.lock here


def test_an_interrupted_run_is_resumed_and_other_params_start_afresh(tmp_path, mlflow_store):
    class Crash(Exception):
        pass

    try:
        with training_session(setup(tmp_path), {}) as state:
            first = mlflow.active_run().info.run_id
            (state.directory / "best.keras").write_text("checkpoint")
            raise Crash
    except Crash:
        pass
    with training_session(setup(tmp_path), {}) as state:
        assert mlflow.active_run().info.run_id == first and (state.directory / "best.keras").exists()
    with training_session(setup(tmp_path, section={"epochs": 3}), {}) as state:
        assert not (state.directory / "best.keras").exists()
