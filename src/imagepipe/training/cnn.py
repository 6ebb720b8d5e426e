"""Training the CNN: AdamW with a one-cycle schedule, label smoothing, augmentation."""

import math
from pathlib import Path

import keras

from imagepipe.core.sections import InputsParams, TrainCnnParams
from imagepipe.models.cnn import ARCHITECTURES
from imagepipe.training.inputs import DEFAULT_INPUTS, batches, load_split
from imagepipe.training.state import TrainingState


def optimizer(params: TrainCnnParams, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """AdamW at learning_rate; for `cosine`, a linear warm-up from a tenth of it over warmup_epochs,
    then a cosine decay to zero at the last step (a one-cycle schedule: more accuracy per epoch)."""
    rate = params.learning_rate
    if params.schedule == "cosine":
        warmup_steps = params.warmup_epochs * steps_per_epoch
        rate = keras.optimizers.schedules.CosineDecay(
            params.learning_rate / 10 if warmup_steps else params.learning_rate,
            decay_steps=params.epochs * steps_per_epoch - warmup_steps,
            warmup_target=params.learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    return keras.optimizers.AdamW(rate, weight_decay=params.weight_decay)


def train_cnn(
    data: Path,
    params: TrainCnnParams,
    seed: int,
    state: TrainingState,
    extra_callbacks: list,
    inputs: InputsParams = DEFAULT_INPUTS,
) -> keras.Model:
    """Fit the configured CNN; the best epoch is kept in state. Returns the last model."""
    keras.utils.set_random_seed(seed)
    train, val = load_split(data, "train"), load_split(data, "val")
    model = ARCHITECTURES[params.architecture](train.input_shape, train.num_classes, params.dropout_rate)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing)
    model.compile(
        optimizer=optimizer(params, math.ceil(train.count / params.batch_size)),
        loss=loss,
        metrics=["accuracy"],
    )
    train_batches = batches(train, params.batch_size, seed, shuffle=True, augment=params.augmentation, inputs=inputs)
    val_batches = batches(val, params.batch_size, seed, inputs=inputs)
    model.fit(
        train_batches,
        validation_data=val_batches,
        epochs=params.epochs,
        callbacks=state.callbacks() + extra_callbacks,
        shuffle=False,
        verbose=2,
    )
    return model
