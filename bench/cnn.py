"""The project's CNN recipe (train_cnn's own core and default params), timed to a test accuracy."""

import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from bench.compute import training_flops
from imagepipe.core.params import Params
from imagepipe.training.cnn import train_cnn
from imagepipe.training.inputs import Split, load_split
from imagepipe.training.state import TrainingState


class TestAccuracy(keras.callbacks.Callback):
    """After each epoch, the test accuracy and the training seconds so far (its own time left out)."""

    def __init__(self, split: Split):
        super().__init__()
        self.images, self.labels = split.images(np.arange(split.count)), split.labels()
        self.epochs: list[dict] = []

    def on_train_begin(self, logs=None):
        self.start, self.excluded = time.perf_counter(), 0.0

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        predicted = self.model.predict(self.images, batch_size=1000, verbose=0).argmax(axis=1)
        accuracy = float((predicted == self.labels).mean())
        self.epochs.append({"epoch": epoch + 1, "seconds": now - self.start - self.excluded, "test_accuracy": accuracy})
        self.excluded += time.perf_counter() - now


def time_to_accuracy(data: Path, params: Params, epochs: int, target: float) -> dict:
    """Train the default recipe for `epochs` (its schedule fitted to them) and time it."""
    section = params.train_cnn.model_copy(update={"epochs": epochs})
    test = TestAccuracy(load_split(data, "test"))
    with tempfile.TemporaryDirectory(prefix="bench-cnn-") as state_dir:
        state = TrainingState(Path(state_dir), "val_accuracy", "max", {})
        model = train_cnn(data, section, params.seed, state, [test])
    images = load_split(data, "train").count * epochs
    seconds = test.epochs[-1]["seconds"]
    reached = next((epoch for epoch in test.epochs if epoch["test_accuracy"] >= target), None)
    return {
        "epochs": test.epochs,
        "batch_size": section.batch_size,
        "train_images_per_s": images / seconds,
        "training_mflops_per_image": training_flops(model) / 1e6,
        "gflops": training_flops(model) * images / seconds / 1e9,
        "target": target,
        "seconds_to_target": reached and reached["seconds"],
        "test_accuracy": test.epochs[-1]["test_accuracy"],
    }
