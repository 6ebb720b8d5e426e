"""Training the transfer classifier (head, then fine-tuning) beside the same model from scratch."""

import logging
from collections.abc import Callable
from pathlib import Path

import keras
import mlflow
import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.files import atomic_directory
from imagepipe.core.sections import InputsParams, TrainTransferParams
from imagepipe.data.shards import ShardWriter, open_split, write_manifest
from imagepipe.models.backbones import Backbone
from imagepipe.models.loading import load_keras
from imagepipe.models.transfer import classifier, compile_with, head_of
from imagepipe.training.inputs import DEFAULT_INPUTS, Split, batches, load_split, predict
from imagepipe.training.state import TrainingState

logger = logging.getLogger(__name__)


def fit_phase(
    model: keras.Model,
    phase: str,
    data: dict,
    epochs: tuple[int, int],
    state: TrainingState,
    callbacks: list,
    saved_model: keras.Model | None = None,
) -> None:
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
    model.fit(
        data["train"],
        validation_data=data["val"],
        initial_epoch=epochs[0],
        epochs=epochs[1],
        callbacks=state.callbacks(saved_model) + callbacks,
        shuffle=False,
        verbose=2,
    )
    partial = done.with_name(f"partial-{done.name}")
    model.save_weights(partial)
    partial.replace(done)


def frozen_features(backbone: Backbone, data: dict, directory: Path, batch_size: int, seed: int) -> dict:
    """Train and validation batches of the frozen base's outputs, computed once into shards in
    directory (rewritten every run) and streamed from there like any split.

    The frozen base runs in inference mode, so it maps an image to the same features in every
    epoch: the head trains on these instead of running the base epoch after epoch.
    """
    pixels = keras.Input(data["input_shape"])
    extractor = keras.Model(pixels, backbone.base(backbone.adapt(pixels), training=False))
    with atomic_directory(directory) as scratch:
        entries = {name: _write_features(extractor, data["splits"][name], scratch, name) for name in ("train", "val")}
        write_manifest(scratch, entries)
    features = {name: Split(open_split(directory, name), 1.0, 0.0, data["num_classes"]) for name in ("train", "val")}
    return {
        "train": batches(features["train"], batch_size, seed, shuffle=True, inputs=data["inputs"]),
        "val": batches(features["val"], batch_size, seed, inputs=data["inputs"]),
    }


def _write_features(extractor: keras.Model, split: Split, directory: Path, name: str) -> dict:
    writer = None
    for images, labels in batches(split, 256, seed=0, cache=False):
        features = keras.ops.convert_to_numpy(extractor(images, training=False))
        writer = writer or ShardWriter(directory, name, features.shape[1:], "float32")
        writer.add(features, np.argmax(labels, axis=1))
    if writer is None:
        raise StageError(f"the {name} split of the transfer task has no images")
    return writer.close()


def train_transfer(
    backbone: Backbone,
    data: dict,
    params: TrainTransferParams,
    seed: int,
    state: TrainingState,
    callbacks: list,
) -> None:
    """Phase 1 (head on the frozen base), then phase 2 (fine-tuning the base's top); best epoch in state."""
    keras.utils.set_random_seed(seed)
    model = classifier(backbone, data["input_shape"], data["num_classes"], params, frozen=True)
    backbone.base.trainable = False
    head = head_of(model, backbone)
    compile_with(head, params.learning_rate)
    fit_phase(
        head,
        "head",
        frozen_features(backbone, data, state.directory / "features", params.batch_size, seed),
        (0, params.epochs),
        state,
        callbacks,
        saved_model=model,
    )
    if params.fine_tune_epochs:
        backbone.unfreeze_top(params.fine_tune_layers)
        compile_with(model, params.fine_tune_learning_rate)
        fit_phase(
            model,
            "fine_tune",
            data,
            (params.epochs, params.epochs + params.fine_tune_epochs),
            state,
            callbacks,
        )


def train_scratch(
    backbone: Backbone,
    data: dict,
    params: TrainTransferParams,
    seed: int,
    state: TrainingState,
    callbacks: list,
) -> None:
    """The same architecture, newly initialised and all trainable, for as many epochs in total."""
    keras.utils.set_random_seed(seed)
    model = classifier(backbone.fresh(), data["input_shape"], data["num_classes"], params, frozen=False)
    compile_with(model, params.learning_rate)
    fit_phase(
        model,
        "scratch",
        data,
        (0, params.epochs + params.fine_tune_epochs),
        state,
        callbacks,
    )


def load_task(directory: Path, batch_size: int, seed: int, inputs: InputsParams = DEFAULT_INPUTS) -> dict:
    splits = {name: load_split(directory, name) for name in ("train", "val", "test")}
    return {
        "train": batches(splits["train"], batch_size, seed, shuffle=True, inputs=inputs),
        "val": batches(splits["val"], batch_size, seed, inputs=inputs),
        "splits": splits,
        "inputs": inputs,
        "input_shape": splits["train"].input_shape,
        "num_classes": splits["train"].num_classes,
    }


def held_out_accuracy(model_path: Path, test: Split) -> float:
    predicted = predict(load_keras(model_path), test, batch_size=256).argmax(axis=1)
    return float((predicted == test.labels()).mean())


def compare_once(
    backbone: Backbone,
    data: dict,
    params: TrainTransferParams,
    seed: int,
    states: dict[str, TrainingState],
    callbacks: dict[str, list],
) -> dict[str, float]:
    """Train both models with one seed (states and callbacks keyed "transfer" and "scratch");
    their test accuracies, as <model>_test_accuracy."""
    train_transfer(backbone, data, params, seed, states["transfer"], callbacks["transfer"])
    train_scratch(backbone, data, params, seed, states["scratch"], callbacks["scratch"])
    return {
        f"{name}_test_accuracy": held_out_accuracy(state.best_path, data["splits"]["test"])
        for name, state in states.items()
    }


def compare(
    build_backbone: Callable[[], Backbone],
    directory: Path,
    params: TrainTransferParams,
    seeds: list[int],
    states: Callable[[int], dict[str, TrainingState]],
    callbacks: dict[str, list],
    inputs: InputsParams = DEFAULT_INPUTS,
) -> dict:
    """Both models trained with each seed on the same task, summarized by summarize_seeds.

    build_backbone makes a new backbone for each seed (fine-tuning changes the one it trains);
    states(seed) holds that seed's TrainingStates; callbacks are the first seed's only (the
    published model's epochs)."""
    accuracies = {}
    for seed in seeds:
        data = load_task(directory, params.batch_size, seed, inputs)
        quiet: dict[str, list] = {"transfer": [], "scratch": []}
        accuracies[seed] = compare_once(
            build_backbone(), data, params, seed, states(seed), callbacks if seed == seeds[0] else quiet
        )
        logger.info("seed %d: %s", seed, accuracies[seed])
    comparison = summarize_seeds(accuracies)
    logger.info(
        "test accuracy over %d seeds: transfer %.4f ± %.4f, from scratch %.4f ± %.4f",
        len(seeds),
        comparison["transfer_test_accuracy_mean"],
        comparison["transfer_test_accuracy_sd"],
        comparison["scratch_test_accuracy_mean"],
        comparison["scratch_test_accuracy_sd"],
    )
    return comparison


def training_seeds(seed: int, count: int) -> list[int]:
    """seed, seed + 1, ...: count training seeds. The target split is prepare_transfer's, the
    same for all of them, so the spread is that of training alone."""
    return [seed + offset for offset in range(count)]


def summarize_seeds(accuracies: dict[int, dict[str, float]]) -> dict:
    """Mean and sample sd (ddof=1) over seeds of each model's test accuracy and of the gain
    (transfer minus scratch, paired by seed), the number of seeds, and each seed's accuracies
    under per_seed.<seed>."""
    if len(accuracies) < 2:
        raise StageError(
            f"the transfer comparison has {len(accuracies)} seed(s); a standard deviation needs at least 2 "
            "(train_transfer.seeds)"
        )
    keys = {"transfer_test_accuracy", "scratch_test_accuracy"}
    for seed, values in accuracies.items():
        if set(values) != keys:
            raise StageError(f"seed {seed} has accuracies {sorted(values)}; expected {sorted(keys)}")
    columns = {key: np.array([values[key] for values in accuracies.values()]) for key in sorted(keys)}
    columns["transfer_gain"] = columns["transfer_test_accuracy"] - columns["scratch_test_accuracy"]
    summary: dict = {"seeds": len(accuracies)}
    for key, column in columns.items():
        summary[f"{key}_mean"] = float(column.mean())
        summary[f"{key}_sd"] = float(column.std(ddof=1))
    summary["per_seed"] = {str(seed): dict(values) for seed, values in accuracies.items()}
    return summary


def flat_metrics(comparison: dict) -> dict[str, float]:
    """The comparison's summary, without per_seed, as MLflow metrics."""
    return {key: float(value) for key, value in comparison.items() if key != "per_seed"}


class ScratchMetrics(keras.callbacks.Callback):
    """The yardstick's epoch metrics, as scratch_<metric>, beside the transfer model's."""

    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics(
            {f"scratch_{key}": float(value) for key, value in (logs or {}).items()},
            step=epoch,
        )
