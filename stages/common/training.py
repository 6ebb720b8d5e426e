"""What every training stage shares: data pipelines, augmentation, checkpoints, resuming.

Checkpoints and resume state live in `.state/<model>/`, outside the DVC outs, because DVC
deletes a stage's outs before it reruns it: after a crash the resumed run still has its best
checkpoint so far. Only a completed run publishes `best.keras` into `models/<model>/`.
"""

import json
import logging
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from stages.common.arrays import read_json, replace_whole
from stages.common.augmentation import augmented, is_enabled
from stages.common.cli import StageError
from stages.common.params import AugmentationParams

logger = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE
# The classifiers' penultimate layer: the GAN's FID features and the transfer backbone's output.
FEATURE_LAYER = "features"


def probabilities(num_classes: int) -> layers.Dense:
    """The classifiers' softmax output, in float32 even under mixed precision (a float16 softmax
    and loss lose precision; Keras's mixed precision guide does the same)."""
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")


def load_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images in [0, 1], one-hot labels) of a preprocess output split, memory-mapped."""
    directory = Path(directory)
    return np.load(directory / f"{split}_images.npy", mmap_mode="r"), np.load(directory / f"{split}_labels.npy", mmap_mode="r")


def load_class_names(directory: Path) -> list[str]:
    return read_json(Path(directory) / "classes.json")


def feature_model(classifier: keras.Model, name: str) -> keras.Model:
    """The classifier cut at its `features` layer: pixels in [0, 1] in, feature vector out."""
    names = [layer.name for layer in classifier.layers]
    if FEATURE_LAYER not in names:
        raise StageError(f"{classifier.name} has no layer named {FEATURE_LAYER!r} to cut at; its layers: {', '.join(names)}")
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURE_LAYER).output, name=name)


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, shuffle: bool = False, augment: AugmentationParams | None = None) -> tf.data.Dataset:
    """A tf.data pipeline: shuffle, batch, cast to float32, augment whole batches, prefetch.

    The arrays are copied into the pipeline once; nothing else holds the dataset. Unshuffled,
    unaugmented batches (validation) are the same every epoch, so they are cached as float32.
    """
    data = tf.data.Dataset.from_tensor_slices((np.asarray(images), np.asarray(labels)))
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.float32)), num_parallel_calls=AUTOTUNE)
    if augment is not None and is_enabled(augment):
        data = augmented(data, augment, seed)
    elif not shuffle:
        data = data.cache()
    return data.prefetch(AUTOTUNE)


def save_atomically(model: keras.Model, path: Path) -> None:
    """model.save(path), replaced whole. A failed save names the file and says that the old
    one is kept."""
    try:
        replace_whole(path, model.save)
    except OSError as error:
        kept = "the previous one is kept" if path.exists() else "there was none before"
        raise StageError(f"could not save the checkpoint {path} ({error.strerror or error}); {kept}") from error


def write_score(path: Path, monitor: str, value: float) -> None:
    """The score of the best checkpoint, written after it and replaced whole."""
    replace_whole(path, lambda scratch: scratch.write_text(json.dumps({"monitor": monitor, "value": float(value)})))


class CheckpointOf(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that saves a given model (None: the one fit() trains), e.g. a whole
    classifier while fit() trains its head on cached features; each save replaces the file
    whole, and the score it was saved for is written beside it."""

    def __init__(self, saved_model: keras.Model | None, score_path: Path, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved_model, self.score_path = saved_model, Path(score_path)

    def set_model(self, model: keras.Model) -> None:
        super().set_model(self.saved_model or model)

    def _save_model(self, epoch, batch, logs):
        if self._should_save_model(epoch, batch, logs, self.filepath):
            save_atomically(self.model, Path(self.filepath))
            write_score(self.score_path, self.monitor, logs[self.monitor])


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose files are replaced whole.

    Keras writes its backup in place: a SIGTERM mid-write unwinds through h5py, which closes a
    file that opens but lacks layers, and resuming from it fails ("Layer 'features' expected 2
    variables, but received 0"); double_checkpoint does not help, as it falls back only on an
    OSError. Here the weights go to a scratch file renamed into place, then the epoch they
    belong to. A kill between the two runs that epoch again, which HistoryLog records once.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        replace_whole(self._weights_path, self.model.save_weights)
        metadata = json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen})
        replace_whole(self._training_metadata_path, lambda scratch: scratch.write_text(metadata))


class HistoryLog(keras.callbacks.CSVLogger):
    """CSVLogger for resumed runs: rows of epochs that are about to run again (logged before a
    kill, never backed up) are dropped, so that every epoch appears once."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
            self.csv_file.flush()
            with open(self.filename, "r+", newline="") as handle:  # in place: csv_file appends to it
                rows = handle.read().splitlines(keepends=True)
                handle.seek(0)
                handle.writelines(rows[:1] + [row for row in rows[1:] if int(row.split(self.sep, 1)[0]) < epoch])
                handle.truncate()


class TrainingState:
    """`.state/<model>/`: the best checkpoint so far, the resume backup, and the best score."""

    def __init__(self, directory: Path, monitor: str, mode: str, fingerprint: dict):
        self.directory, self.monitor, self.mode = Path(directory), monitor, mode
        # State left by a run with other params or data must not be resumed into this one.
        fingerprint_path = self.directory / "fingerprint.json"
        if fingerprint_path.exists() and json.loads(fingerprint_path.read_text()) != fingerprint:
            logger.warning("discarding %s: it belongs to a run with other params or data", self.directory)
            abandoned_run = self.directory / "mlflow_run_id"
            abandoned_run = abandoned_run.read_text() if abandoned_run.exists() else None
            shutil.rmtree(self.directory)
            self.directory.mkdir(parents=True)
            if abandoned_run:  # tracking.training_run marks that MLflow run KILLED
                (self.directory / "abandoned_mlflow_run_id").write_text(abandoned_run)
        self.directory.mkdir(parents=True, exist_ok=True)
        fingerprint_path.write_text(json.dumps(fingerprint, sort_keys=True))
        self.history_path = self.directory / "history.csv"
        self.best_path = self.directory / "best.keras"
        self.score_path = self.directory / "best_score.json"

    def callbacks(self, saved_model: keras.Model | None = None) -> list[keras.callbacks.Callback]:
        """saved_model: what the best checkpoint holds, when fit() trains only a part of it."""
        best = json.loads(self.score_path.read_text())["value"] if self.score_path.exists() and self.best_path.exists() else None
        # The backup, which marks an epoch done, is written last: a kill before it repeats the
        # epoch, whose history row HistoryLog then replaces.
        return [
            CheckpointOf(
                saved_model, self.score_path, str(self.best_path), monitor=self.monitor, mode=self.mode,
                save_best_only=True, initial_value_threshold=best,
            ),
            HistoryLog(str(self.history_path), append=True),
            AtomicBackup(str(self.directory / "backup")),
        ]

    @property
    def fit_finished(self) -> bool:
        """fit() ran to its last epoch in an earlier run (BackupAndRestore's backup is gone then)."""
        return (self.directory / "fit.done").exists()

    def finish_fit(self) -> None:
        (self.directory / "fit.done").touch()

    def publish(self, model_path: Path, history_path: Path) -> None:
        """Copy the best checkpoint and the history out atomically, then clear the state."""
        for source, destination in ((self.history_path, Path(history_path)), (self.best_path, Path(model_path))):
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(destination.name + ".partial")
            shutil.copyfile(source, partial)
            partial.replace(destination)
        shutil.rmtree(self.directory)
