import csv

import keras
import numpy as np
import pytest

from imagepipe.core.sections import TrainCnnParams
from imagepipe.models.cnn import ARCHITECTURES
from imagepipe.training.cnn import train_cnn
from imagepipe.training.inputs import load_split, predict
from imagepipe.training.state import TrainingState
from tests.helpers.data import write_processed
from tests.helpers.models import assert_class_probabilities


def cnn_params(**changes) -> TrainCnnParams:
    values = {
        "architecture": "batchnorm",
        "epochs": 1,
        "batch_size": 16,
        "learning_rate": 0.003,
        "schedule": "cosine",
        "warmup_epochs": 0,
        "weight_decay": 0.0005,
        "label_smoothing": 0.1,
        "dropout_rate": 0.2,
        "augmentation": {
            "enabled": True,
            "rotation_degrees": 10.0,
            "zoom": 0.1,
            "width_shift": 0.1,
            "height_shift": 0.1,
            "horizontal_flip": True,
        },
    }
    return TrainCnnParams.model_validate(values | changes)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_architectures_map_images_to_class_probabilities(architecture):
    model = ARCHITECTURES[architecture]((28, 28, 1), 7, 0.3)
    images = np.random.default_rng(0).random((3, 28, 28, 1), np.float32)
    assert_class_probabilities(model.predict(images, verbose=0), 3, 7)
    assert model.get_layer("features").output.shape[-1] in (64, 128)


class StopAfter(keras.callbacks.Callback):
    """Simulates a crash: raises at the end of the given epoch, after the backup was written."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


class Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


def test_training_keeps_best_checkpoint_and_resumes_after_a_crash(tmp_path):
    data = write_processed(tmp_path / "processed")
    params = cnn_params(epochs=4)
    fingerprint = {"params": params.model_dump()}
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_cnn(
            data, params, 0, TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint), [StopAfter(1)]
        )
    assert (tmp_path / "state" / "best.keras").exists()

    epochs = Epochs()
    train_cnn(data, params, 0, TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint), [epochs])
    assert epochs.seen == [2, 3]
    state = TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint)
    state.publish(tmp_path / "models" / "best.keras", tmp_path / "plots" / "history.csv")
    with (tmp_path / "plots" / "history.csv").open() as handle:
        history = list(csv.DictReader(handle))
    assert [row["epoch"] for row in history] == ["0", "1", "2", "3"]
    # The published model is the best epoch's, whether that epoch ran before the crash or after.
    model = keras.saving.load_model(tmp_path / "models" / "best.keras", safe_mode=True)
    val = load_split(data, "val")
    predictions = predict(model, val, batch_size=params.batch_size)  # batched as fit scored each epoch
    assert_class_probabilities(predictions, val.count, 3)
    accuracy = (predictions.argmax(axis=1) == val.labels()).mean()
    assert accuracy == pytest.approx(max(float(row["val_accuracy"]) for row in history))
    assert not (tmp_path / "state").exists()


def test_state_from_other_params_is_not_resumed(tmp_path):
    data = write_processed(tmp_path / "processed")
    with pytest.raises(RuntimeError):
        train_cnn(
            data,
            cnn_params(epochs=3),
            0,
            TrainingState(tmp_path / "state", "val_accuracy", "max", {"epochs": 3}),
            [StopAfter(0)],
        )
    epochs = Epochs()
    train_cnn(
        data, cnn_params(epochs=2), 0, TrainingState(tmp_path / "state", "val_accuracy", "max", {"epochs": 2}), [epochs]
    )
    assert epochs.seen == [0, 1]
