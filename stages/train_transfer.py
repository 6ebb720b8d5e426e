"""train_transfer: a backbone with a new head on the few-label task in `data/transfer/`.

The head is Dropout, Dense(dense_units, relu) and a softmax over the task's classes, after
global average pooling for keras.applications backbones. Phase 1 trains it for `epochs` on
the frozen base, called with training=False (its features are computed once and the head
trains on them); phase 2, when fine_tune_epochs > 0, unfreezes
the base's top `fine_tune_layers` layers (BatchNormalization stays frozen) and goes on at
fine_tune_learning_rate. The same architecture trained from scratch on the same labels for
as many epochs is the yardstick: both test accuracies (best epoch by validation accuracy) go
to `models/transfer/comparison.json` and MLflow as `transfer_test_accuracy` and
`scratch_test_accuracy`. The best transfer epoch is `models/transfer/best.keras` (pixels in
[0, 1] in) and the registered MLflow model `transfer` (raw pixels in).
"""

import argparse
import logging
from pathlib import Path

import keras
import mlflow
import numpy as np
from keras import layers

from stages.common.accelerator import Accelerator, configure
from stages.common.arrays import write_json
from stages.common.backbones import Backbone, build_backbone
from stages.common.cli import run_stage
from stages.common.models import load_keras
from stages.common.params import Params, TrainTransferParams, load_params
from stages.common.tracking import EpochMetrics, dvc_hash, publish_classifier, training_run
from stages.common.training import TrainingState, batches, load_split, probabilities

logger = logging.getLogger(__name__)


def classifier(backbone: Backbone, input_shape: tuple, num_classes: int, params: TrainTransferParams, frozen: bool) -> keras.Model:
    pixels = keras.Input(input_shape, name="pixels")
    # A frozen base runs in inference mode, so its batch norm statistics stay ImageNet's (or the CNN's).
    features = backbone.base(backbone.adapt(pixels), training=False) if frozen else backbone.base(backbone.adapt(pixels))
    if len(features.shape) == 4:
        features = layers.GlobalAveragePooling2D(name="pooling")(features)
    x = layers.Dropout(params.dropout_rate)(features)
    x = layers.Dense(params.dense_units, activation="relu", name="head")(x)
    outputs = probabilities(num_classes)(x)
    return keras.Model(pixels, outputs, name=f"{backbone.name}_{'transfer' if frozen else 'scratch'}")


def fit_phase(model: keras.Model, phase: str, data: dict, epochs: tuple[int, int], state: TrainingState, callbacks: list, saved_model: keras.Model | None = None) -> None:
    """fit() from epochs[0] to epochs[1], resumable. BackupAndRestore deletes its backup when fit()
    ends, so each completed phase leaves its weights in the state directory, and a rerun loads them.
    saved_model: what the best checkpoint holds when `model` is a part of it."""
    done = state.directory / f"{phase}.weights.h5"
    if done.exists():
        logger.info("phase %s completed in an earlier run; loading %s", phase, done)
        # As BackupAndRestore does: the file holds the optimizer's state too, so build it first.
        model.optimizer.build(model.trainable_variables)
        model.load_weights(done)
        return
    model.fit(data["train"], validation_data=data["val"], initial_epoch=epochs[0], epochs=epochs[1], callbacks=state.callbacks(saved_model) + callbacks, shuffle=False, verbose=2)
    partial = done.with_name(f"partial-{done.name}")
    model.save_weights(partial)
    partial.replace(done)


def frozen_features(backbone: Backbone, data: dict, batch_size: int, seed: int) -> dict:
    """Train and validation batches of the frozen base's outputs, computed once.

    The frozen base runs in inference mode, so it maps an image to the same features in every
    epoch: the head trains on these instead of running the base epoch after epoch.
    """
    pixels = keras.Input(data["input_shape"])
    extractor = keras.Model(pixels, backbone.base(backbone.adapt(pixels), training=False))
    (x_train, y_train), (x_val, y_val) = data["arrays"]["train"], data["arrays"]["val"]
    features = {split: extractor.predict(np.asarray(images, np.float32), batch_size=256, verbose=0) for split, images in (("train", x_train), ("val", x_val))}
    return {"train": batches(features["train"], y_train, batch_size, seed, shuffle=True), "val": batches(features["val"], y_val, batch_size, seed)}


def head_of(model: keras.Model, backbone: Backbone) -> keras.Model:
    """The layers the classifier applies after its base, as a model over the base's output (the same layers and weights)."""
    features = keras.Input(backbone.base.output.shape[1:], name="features")
    x = features
    for layer in model.layers[model.layers.index(backbone.base) + 1 :]:
        x = layer(x)
    return keras.Model(features, x, name="head_on_features")


def compile_with(model: keras.Model, learning_rate: float) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy", metrics=["accuracy"])


def train_transfer(backbone: Backbone, data: dict, params: TrainTransferParams, seed: int, state: TrainingState, callbacks: list) -> None:
    """Phase 1 (head on the frozen base), then phase 2 (fine-tuning the base's top); best epoch in state."""
    keras.utils.set_random_seed(seed)
    model = classifier(backbone, data["input_shape"], data["num_classes"], params, frozen=True)
    backbone.base.trainable = False
    head = head_of(model, backbone)
    compile_with(head, params.learning_rate)
    fit_phase(head, "head", frozen_features(backbone, data, params.batch_size, seed), (0, params.epochs), state, callbacks, saved_model=model)
    if params.fine_tune_epochs:
        backbone.unfreeze_top(params.fine_tune_layers)
        compile_with(model, params.fine_tune_learning_rate)
        fit_phase(model, "fine_tune", data, (params.epochs, params.epochs + params.fine_tune_epochs), state, callbacks)


def train_scratch(backbone: Backbone, data: dict, params: TrainTransferParams, seed: int, state: TrainingState, callbacks: list) -> None:
    """The same architecture, newly initialised and all trainable, for as many epochs in total."""
    keras.utils.set_random_seed(seed)
    model = classifier(backbone.fresh(), data["input_shape"], data["num_classes"], params, frozen=False)
    compile_with(model, params.learning_rate)
    fit_phase(model, "scratch", data, (0, params.epochs + params.fine_tune_epochs), state, callbacks)


def load_task(directory: Path, batch_size: int, seed: int) -> dict:
    (x_train, y_train), (x_val, y_val) = load_split(directory, "train"), load_split(directory, "val")
    return {
        "train": batches(x_train, y_train, batch_size, seed, shuffle=True), "val": batches(x_val, y_val, batch_size, seed),
        "arrays": {"train": (x_train, y_train), "val": (x_val, y_val)},
        "test": load_split(directory, "test"), "input_shape": x_train.shape[1:], "num_classes": y_train.shape[1],
    }


def held_out_accuracy(model_path: Path, test: tuple[np.ndarray, np.ndarray]) -> float:
    model = load_keras(model_path)
    images, labels = test
    predicted = model.predict(np.asarray(images, np.float32), batch_size=256, verbose=0).argmax(axis=1)
    return float((predicted == labels.argmax(axis=1)).mean())


def compare(backbone: Backbone, directory: Path, params: TrainTransferParams, seed: int, states: dict[str, TrainingState], callbacks: dict[str, list]) -> dict:
    """Train both models (states and callbacks keyed "transfer" and "scratch"); their test accuracies."""
    data = load_task(directory, params.batch_size, seed)
    train_transfer(backbone, data, params, seed, states["transfer"], callbacks["transfer"])
    train_scratch(backbone, data, params, seed, states["scratch"], callbacks["scratch"])
    accuracies = {f"{name}_test_accuracy": held_out_accuracy(state.best_path, data["test"]) for name, state in states.items()}
    comparison = accuracies | {"transfer_gain": accuracies["transfer_test_accuracy"] - accuracies["scratch_test_accuracy"]}
    logger.info("test accuracy on %d images: transfer %.4f, from scratch %.4f", len(data["test"][1]), accuracies["transfer_test_accuracy"], accuracies["scratch_test_accuracy"])
    return comparison


class ScratchMetrics(keras.callbacks.Callback):
    """The yardstick's epoch metrics, as scratch_<metric>, beside the transfer model's."""

    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics({f"scratch_{key}": float(value) for key, value in (logs or {}).items()}, step=epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="prepare_transfer's output, e.g. data/transfer")
    parser.add_argument("--backbone-model", type=Path, required=True, help="the CNN for backbone pipeline_cnn, e.g. models/cnn/best.keras")
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/transfer")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/transfer")
    parser.add_argument("--state-dir", type=Path, default=Path(".state/transfer"), help="checkpoints for resuming")
    args = parser.parse_args()
    params = load_params(args.params)
    accelerator, strategy = configure(params.accelerator)
    with strategy.scope():
        train_and_publish(args, params, accelerator)


def train_and_publish(args: argparse.Namespace, params: Params, accelerator: Accelerator) -> None:
    section = params.train_transfer
    backbone = build_backbone(section.backbone, section.weights, section.input_size, args.backbone_model)
    data_key, backbone_key = str(args.data), str(args.backbone_model)
    fingerprint = {"params": section.model_dump(), "seed": params.seed, "data": dvc_hash(data_key), "backbone": dvc_hash(backbone_key)}
    state = TrainingState(args.state_dir, "val_accuracy", "max", fingerprint)
    states = {"transfer": state, "scratch": TrainingState(args.state_dir / "scratch", "val_accuracy", "max", fingerprint)}
    with training_run("train_transfer", state.directory, {"train_transfer": section.model_dump(), "seed": params.seed}, [data_key, backbone_key]):
        mlflow.set_tags({"backbone": section.backbone, "weights": section.weights, **accelerator.tags()})
        comparison = compare(backbone, args.data, section, params.seed, states, {"transfer": [EpochMetrics()], "scratch": [ScratchMetrics()]})
        mlflow.log_metrics(comparison)
        publish_classifier(state, args.data, "transfer", args.model_dir, args.plots)
        write_json(args.model_dir / "comparison.json", comparison)


if __name__ == "__main__":
    run_stage(main)
