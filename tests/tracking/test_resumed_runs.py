"""The MLflow run id a training stage keeps to resume its run: a torn one starts a new run."""

import logging

import mlflow
import pytest

from imagepipe.tracking.runs import end_abandoned_run, recorded_run_id, training_run


@pytest.mark.parametrize("torn", ["", "0123456789abcdef", "\x00" * 32, "not a run id\n"])
def test_a_torn_run_id_starts_a_new_run_and_is_replaced(mlflow_store, tmp_path, caplog, torn):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "mlflow_run_id").write_text(torn)
    with caplog.at_level(logging.WARNING, logger="imagepipe.tracking.runs"):
        with training_run("train_cnn", state_dir, {"epochs": 2}, []) as run:
            pass
    assert "is not an MLflow run id; starting a new run" in caplog.text
    assert recorded_run_id(state_dir / "mlflow_run_id") == run.info.run_id
    assert mlflow.get_run(run.info.run_id).data.params == {"epochs": "2"}


def test_the_kept_id_resumes_the_same_run(mlflow_store, tmp_path):
    with training_run("train_cnn", tmp_path, {"epochs": 2}, []) as first:
        pass
    with training_run("train_cnn", tmp_path, {"epochs": 2}, []) as second:
        pass
    assert second.info.run_id == first.info.run_id


def test_a_torn_abandoned_run_id_is_dropped(mlflow_store, tmp_path):
    (tmp_path / "abandoned_mlflow_run_id").write_text("01234567")
    end_abandoned_run(tmp_path / "abandoned_mlflow_run_id")
    assert not (tmp_path / "abandoned_mlflow_run_id").exists()
