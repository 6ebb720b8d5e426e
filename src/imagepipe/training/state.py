"""Resume state of a training stage: best checkpoint, its score, backups and the history, all crash-safe."""

import json
import logging
import os
import shutil
from functools import partial
from pathlib import Path

import keras

from imagepipe.core.errors import StageError
from imagepipe.core.files import replace_whole
from imagepipe.search.reporter import trial_callbacks

logger = logging.getLogger(__name__)


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
    replace_whole(
        path,
        lambda scratch: scratch.write_text(json.dumps({"monitor": monitor, "value": float(value)})),
    )


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
        self.history_path = self.directory / "history.csv"
        self.best_path = self.directory / "best.keras"
        self.score_path = self.directory / "best_score.json"
        fingerprint_path = self.directory / "fingerprint.json"
        if self.directory.exists():
            unusable = self._unusable_because(fingerprint)
            if unusable:
                self._discard(unusable)
        self.directory.mkdir(parents=True, exist_ok=True)
        replace_whole(fingerprint_path, lambda scratch: scratch.write_text(json.dumps(fingerprint, sort_keys=True)))

    def _unusable_because(self, fingerprint: dict) -> str | None:
        """Why the state left here must not be resumed into this run; None when it can be.

        A state file that cannot be read (torn by a kill or a power loss, or emptied by a full
        disk) makes the state unusable, as does state left by a run with other params or data.
        """
        files = [self.directory / "fingerprint.json", self.directory / "backup" / "training_metadata.json"]
        if self.best_path.exists():
            files.append(self.score_path)
        readable = {path: _read_state(path) for path in files if path.exists()}
        for path, value in readable.items():
            if value is None:
                return f"its {path.relative_to(self.directory)} cannot be read"
        recorded = readable.get(self.directory / "fingerprint.json")
        if recorded is not None and recorded != fingerprint:
            return "it belongs to a run with other params or data"
        return None

    def _discard(self, reason: str) -> None:
        logger.warning("discarding %s and training from the start: %s", self.directory, reason)
        run_id_path = self.directory / "mlflow_run_id"
        abandoned_run = run_id_path.read_text() if run_id_path.exists() else None
        shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        if abandoned_run:  # tracking.training_run marks that MLflow run KILLED
            (self.directory / "abandoned_mlflow_run_id").write_text(abandoned_run)

    def callbacks(self, saved_model: keras.Model | None = None) -> list[keras.callbacks.Callback]:
        """saved_model: what the best checkpoint holds, when fit() trains only a part of it."""
        # The best score so far is the threshold a resumed run's epochs must beat.
        score = _read_state(self.score_path) if self.best_path.exists() and self.score_path.exists() else None
        best = score["value"] if score is not None else None
        # The backup, which marks an epoch done, is written before a search trial's pruner may
        # stop the run: a kill before it repeats the epoch, whose history row HistoryLog then
        # replaces.
        return [
            CheckpointOf(
                saved_model,
                self.score_path,
                str(self.best_path),
                monitor=self.monitor,
                mode=self.mode,
                save_best_only=True,
                initial_value_threshold=best,
            ),
            HistoryLog(str(self.history_path), append=True),
            AtomicBackup(str(self.directory / "backup")),
            *trial_callbacks(),
        ]

    @property
    def fit_finished(self) -> bool:
        """fit() ran to its last epoch in an earlier run (BackupAndRestore's backup is gone then)."""
        return (self.directory / "fit.done").exists()

    def finish_fit(self) -> None:
        (self.directory / "fit.done").touch()

    def publish(self, model_path: Path, history_path: Path) -> None:
        """Copy the best checkpoint and the history out, each replaced whole, then clear the state."""
        for source, destination in (
            (self.history_path, Path(history_path)),
            (self.best_path, Path(model_path)),
        ):
            destination.parent.mkdir(parents=True, exist_ok=True)
            replace_whole(destination, partial(shutil.copyfile, source))
        shutil.rmtree(self.directory)


def _read_state(path: Path) -> dict | None:
    """A JSON state file's content; None when it is torn, empty, not an object, or a score
    without a number."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(value, dict) or (path.name == "best_score.json" and not _is_number(value.get("value"))):
        return None
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
