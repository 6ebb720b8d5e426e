"""Training state: torn state files mean no state, and a resumed run keeps the best it had."""

import json
import logging
from functools import partial

import pytest

from imagepipe.core.sections import TrainGanParams
from imagepipe.training.cnn import train_cnn
from imagepipe.training.gan import train_gan
from imagepipe.training.state import TrainingState
from tests.helpers.data import write_processed
from tests.stages.test_gan import TINY, CrashAfterFirstEpoch, tiny_classifier
from tests.stages.test_train_cnn import Epochs, StopAfter, cnn_params

FINGERPRINT = {"params": {"epochs": 4}, "data": "abc"}
RUN_ID = "0123456789abcdef0123456789abcdef"


def left_state(directory, **files: str) -> None:
    """State as a killed run leaves it: a checkpoint, a backup, an MLflow run id, and files."""
    (directory / "backup").mkdir(parents=True)
    (directory / "best.keras").write_bytes(b"checkpoint")
    (directory / "mlflow_run_id").write_text(RUN_ID)
    contents = {
        "fingerprint.json": json.dumps(FINGERPRINT, sort_keys=True),
        "best_score.json": json.dumps({"monitor": "val_accuracy", "value": 0.8}),
        "backup/training_metadata.json": json.dumps({"epoch": 1, "batch": -1}),
    }
    for name, content in (contents | {name.replace("__", "/"): value for name, value in files.items()}).items():
        (directory / name).write_text(content)


@pytest.mark.parametrize("torn", ["", '{"params": {"epo', "null", "\x00" * 16])
@pytest.mark.parametrize("name", ["fingerprint.json", "best_score.json", "backup__training_metadata.json"])
def test_a_state_file_that_cannot_be_read_is_no_state(tmp_path, caplog, name, torn):
    state_dir = tmp_path / "state"
    left_state(state_dir, **{name: torn})
    with caplog.at_level(logging.WARNING, logger="imagepipe.training.state"):
        state = TrainingState(state_dir, "val_accuracy", "max", FINGERPRINT)

    assert f"{name.replace('__', '/')} cannot be read" in caplog.text
    assert sorted(p.name for p in state_dir.iterdir()) == ["abandoned_mlflow_run_id", "fingerprint.json"]
    assert json.loads(state.directory.joinpath("fingerprint.json").read_text()) == FINGERPRINT
    assert (state_dir / "abandoned_mlflow_run_id").read_text() == RUN_ID


def test_a_score_without_a_number_is_no_state(tmp_path, caplog):
    left_state(tmp_path / "state", **{"best_score.json": json.dumps({"monitor": "val_accuracy"})})
    with caplog.at_level(logging.WARNING, logger="imagepipe.training.state"):
        TrainingState(tmp_path / "state", "val_accuracy", "max", FINGERPRINT)
    assert "best_score.json cannot be read" in caplog.text and not (tmp_path / "state" / "best.keras").exists()


def test_readable_state_of_the_same_run_is_kept(tmp_path, caplog):
    left_state(tmp_path / "state")
    with caplog.at_level(logging.WARNING):
        state = TrainingState(tmp_path / "state", "val_accuracy", "max", FINGERPRINT)
    assert caplog.text == ""
    assert state.best_path.read_bytes() == b"checkpoint" and (tmp_path / "state" / "mlflow_run_id").exists()
    assert state.callbacks()[0].best == 0.8


def unbeatable(state_dir, value: float) -> bytes:
    """Record value as the best score of the state's checkpoint; return the checkpoint's bytes."""
    score_path = state_dir / "best_score.json"
    score = json.loads(score_path.read_text())
    score_path.write_text(json.dumps(score | {"value": value}))
    return (state_dir / "best.keras").read_bytes()


def test_a_resumed_classifier_keeps_a_best_that_no_later_epoch_beats(tmp_path):
    data = write_processed(tmp_path / "processed")
    params = cnn_params(epochs=4)
    state = partial(TrainingState, tmp_path / "state", "val_accuracy", "max", {"params": params.model_dump()})
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_cnn(data, params, 0, state(), [StopAfter(1)])
    saved = unbeatable(tmp_path / "state", 1.0)  # a perfect val_accuracy: no epoch is better

    epochs = Epochs()
    train_cnn(data, params, 0, state(), [epochs])
    assert epochs.seen == [2, 3]
    assert json.loads((tmp_path / "state" / "best_score.json").read_text())["value"] == 1.0
    state().publish(tmp_path / "models" / "best.keras", tmp_path / "plots" / "history.csv")
    assert (tmp_path / "models" / "best.keras").read_bytes() == saved


def test_a_resumed_gan_keeps_a_best_generator_that_no_later_epoch_beats(tmp_path):
    data = write_processed(tmp_path / "processed", per_class=24)
    params = TrainGanParams.model_validate(TINY | {"epochs": 3})
    state = partial(TrainingState, tmp_path / "state", "fid", "min", {"params": params.model_dump()})
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_gan(data, params, 0, tiny_classifier(), state(), [CrashAfterFirstEpoch()])
    saved = unbeatable(tmp_path / "state", 0.0)  # a FID of 0: no generator is closer

    train_gan(data, params, 0, tiny_classifier(), state(), [])
    assert json.loads((tmp_path / "state" / "best_score.json").read_text())["value"] == 0.0
    assert (tmp_path / "state" / "best.keras").read_bytes() == saved
