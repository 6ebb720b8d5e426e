"""train_cnn: the image classifier, trained on `data/processed/` with augmentation.

Two architectures: `course`, the course's CNN (3×Conv2D 32/64/64, max-pooling, Dense 64),
and `batchnorm`, the default: three conv blocks with batch norm, dropout around Dense 128. The best epoch by validation accuracy becomes `models/cnn/best.keras` (pixels in
[0, 1] in, class probabilities out) and the registered MLflow model `cnn` (raw pixels in).
"""

import argparse
import logging
import math
from pathlib import Path

import keras
import mlflow
from keras import layers

from stages.common.accelerator import configure
from stages.common.cli import run_stage
from stages.common.params import TrainCnnParams, load_params
from stages.common.training import TrainingState, batches, load_split, probabilities
from stages.common.tracking import EpochMetrics, dvc_hash, publish_classifier, training_run

logger = logging.getLogger(__name__)


def course_cnn(input_shape: tuple, num_classes: int, dropout_rate: float) -> keras.Model:
    """The course's MNIST CNN, as taught (dropout_rate is not part of it and is ignored)."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", name="features")(x)
    return keras.Model(inputs, probabilities(num_classes)(x), name="course_cnn")


def batchnorm_cnn(input_shape: tuple, num_classes: int, dropout_rate: float) -> keras.Model:
    """Three conv blocks (32/64/128 filters) with batch norm, then dropout around Dense 128.

    Measured on Fashion-MNIST, 2 CPU cores, batch 128: ~3,500 images/s and 91.0% test accuracy
    after 6 epochs, where the course CNN needs 10 epochs for the same accuracy.
    """
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # Keras's default momentum (0.99) averages over ~100 steps and lags weights that move
        # fast in a short run: 21% test accuracy after the first epoch, where 0.9 gives 85%.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout_rate)(x)
    x = layers.Dense(128, activation="relu", name="features")(x)
    x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, probabilities(num_classes)(x), name="batchnorm_cnn")


ARCHITECTURES = {"course": course_cnn, "batchnorm": batchnorm_cnn}


def optimizer(params: TrainCnnParams, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """AdamW at learning_rate; for `cosine`, a linear warm-up from a tenth of it over warmup_epochs,
    then a cosine decay to zero at the last step (a one-cycle schedule: more accuracy per epoch)."""
    rate = params.learning_rate
    if params.schedule == "cosine":
        warmup_steps = params.warmup_epochs * steps_per_epoch
        rate = keras.optimizers.schedules.CosineDecay(
            params.learning_rate / 10 if warmup_steps else params.learning_rate,
            decay_steps=params.epochs * steps_per_epoch - warmup_steps,
            warmup_target=params.learning_rate if warmup_steps else None, warmup_steps=warmup_steps,
        )
    return keras.optimizers.AdamW(rate, weight_decay=params.weight_decay)


def train(data: Path, params: TrainCnnParams, seed: int, state: TrainingState, extra_callbacks: list) -> keras.Model:
    """Fit the configured CNN; the best epoch is kept in state. Returns the last model."""
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val) = load_split(data, "train"), load_split(data, "val")
    model = ARCHITECTURES[params.architecture](x_train.shape[1:], y_train.shape[1], params.dropout_rate)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing)
    model.compile(optimizer=optimizer(params, math.ceil(len(x_train) / params.batch_size)), loss=loss, metrics=["accuracy"])
    train_batches = batches(x_train, y_train, params.batch_size, seed, shuffle=True, augment=params.augmentation)
    val_batches = batches(x_val, y_val, params.batch_size, seed)
    model.fit(train_batches, validation_data=val_batches, epochs=params.epochs, callbacks=state.callbacks() + extra_callbacks, shuffle=False, verbose=2)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output, e.g. data/processed")
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/cnn")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/cnn")
    parser.add_argument("--state-dir", type=Path, default=Path(".state/cnn"), help="checkpoints for resuming")
    args = parser.parse_args()
    params = load_params(args.params)
    accelerator, strategy = configure(params.accelerator)
    section = params.train_cnn.model_dump()
    data_key = str(args.data)
    state = TrainingState(args.state_dir, "val_accuracy", "max", {"params": section, "seed": params.seed, "data": dvc_hash(data_key)})
    with training_run("train_cnn", state.directory, {"train_cnn": section, "seed": params.seed}, [data_key]):
        mlflow.set_tags(accelerator.tags())
        if not state.fit_finished:  # a crash after fit() ended: only publishing is left
            with strategy.scope():
                train(args.data, params.train_cnn, params.seed, state, [EpochMetrics()])
            state.finish_fit()
        publish_classifier(state, args.data, "cnn", args.model_dir, args.plots)


if __name__ == "__main__":
    run_stage(main)
