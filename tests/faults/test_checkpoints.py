"""A full disk or a kill while a checkpoint is written: the previous best checkpoint survives."""

import json
import resource
import signal
from contextlib import contextmanager

import keras
import numpy as np
import pytest

from imagepipe.core.errors import StageError
from imagepipe.training.cnn import train_cnn
from imagepipe.training.state import CheckpointOf, TrainingState, save_atomically
from tests.helpers.data import write_processed
from tests.stages.test_train_cnn import Epochs, StopAfter, cnn_params

pytestmark = pytest.mark.faults


@contextmanager
def file_size_limit(max_bytes: int):
    """A disk that fills up after max_bytes per file: writes past it fail with EFBIG (SIGXFSZ
    ignored), as they would with ENOSPC, without needing root for a tmpfs or a quota."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


def small_model(units: int) -> keras.Model:
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.Dense(units)(inputs))


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "best.keras"
    previous = small_model(2)
    save_atomically(previous, path)
    before = path.read_bytes()
    with (
        file_size_limit(4096),
        pytest.raises(
            StageError, match=r"could not save the checkpoint .*best.keras \(File too large\); the previous one is kept"
        ),
    ):
        save_atomically(small_model(4096), path)  # 8 x 4096 float32 weights: 128 KiB
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"]  # no scratch file left
    inputs = np.random.default_rng(0).random((3, 8), np.float32)
    np.testing.assert_array_equal(
        keras.saving.load_model(path, safe_mode=True).predict(inputs, verbose=0), previous.predict(inputs, verbose=0)
    )


def test_the_checkpoint_callback_keeps_best_and_score_when_the_disk_fills(tmp_path):
    state = TrainingState(tmp_path / "state", "val_accuracy", "max", {})
    checkpoint = next(c for c in state.callbacks() if isinstance(c, CheckpointOf))
    checkpoint.set_model(small_model(2))
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.5})
    assert json.loads(state.score_path.read_text())["value"] == 0.5
    before = state.best_path.read_bytes()
    checkpoint.set_model(small_model(4096))
    with file_size_limit(4096), pytest.raises(StageError, match="the previous one is kept"):
        checkpoint.on_epoch_end(1, {"val_accuracy": 0.9})
    assert state.best_path.read_bytes() == before
    assert json.loads(state.score_path.read_text())["value"] == 0.5  # the score still matches the file


def test_a_crash_after_the_last_epoch_does_not_train_again(tmp_path):
    """BackupAndRestore deletes its backup when fit() ends: without a record of that, a crash
    while publishing (MLflow down, disk full) would retrain from epoch 0."""
    data = write_processed(tmp_path / "processed")
    params, fingerprint = cnn_params(epochs=2), {"epochs": 2}
    state = TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint)
    train_cnn(data, params, 0, state, [])
    state.finish_fit()
    resumed = TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint)
    assert resumed.fit_finished and resumed.best_path.exists()
    resumed.publish(tmp_path / "best.keras", tmp_path / "history.csv")
    assert np.loadtxt(tmp_path / "history.csv", delimiter=",", skiprows=1, usecols=0).tolist() == [0, 1]
    assert not TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint).fit_finished


class TermDuringBackup(keras.callbacks.Callback):
    """SIGTERM's unwinding (SystemExit) arriving while the backup of `epoch` is being written,
    after some layers are in the file and before the Dense ones: h5py closes a file that opens
    but lacks their weights."""

    def __init__(self, epoch: int, monkeypatch):
        super().__init__()
        self.epoch, self.monkeypatch = epoch, monkeypatch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch:
            return
        save_weights = keras.Model.save_weights

        def interrupted(model, filepath, *args, **kwargs):
            def terminated(*_):
                raise SystemExit(143)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(keras.layers.Dense, "save_own_variables", terminated)
                save_weights(model, filepath, *args, **kwargs)

        self.monkeypatch.setattr(keras.Model, "save_weights", interrupted)


def test_a_backup_interrupted_mid_write_leaves_the_one_before_whole(tmp_path, monkeypatch):
    data = write_processed(tmp_path / "processed")
    params, fingerprint = cnn_params(epochs=4), {"epochs": 4}
    with pytest.raises(SystemExit):
        train_cnn(
            data,
            params,
            0,
            TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint),
            [TermDuringBackup(1, monkeypatch)],
        )
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "state" / "backup").iterdir()) == [
        "latest.weights.h5",
        "training_metadata.json",
    ]
    epochs = Epochs()
    train_cnn(data, params, 0, TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint), [epochs])
    assert epochs.seen == [1, 2, 3]  # from the whole backup of epoch 0


def test_an_epoch_logged_but_not_backed_up_appears_once_after_resuming(tmp_path):
    """A kill between the history row and the backup of an epoch: the epoch runs again."""
    data = write_processed(tmp_path / "processed")
    params, fingerprint = cnn_params(epochs=3), {"epochs": 3}
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_cnn(
            data, params, 0, TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint), [StopAfter(0)]
        )
    backup = tmp_path / "state" / "backup"
    history = tmp_path / "state" / "history.csv"
    # Epoch 1 logged, then killed before its backup: the history is one epoch ahead of the backup.
    rows = history.read_text().splitlines()
    history.write_text("\n".join([*rows, rows[-1].replace("0,", "1,", 1)]) + "\n")
    assert (backup / "training_metadata.json").exists()
    epochs = Epochs()
    train_cnn(data, params, 0, TrainingState(tmp_path / "state", "val_accuracy", "max", fingerprint), [epochs])
    assert epochs.seen == [1, 2]
    assert np.loadtxt(history, delimiter=",", skiprows=1, usecols=0).tolist() == [0, 1, 2]
