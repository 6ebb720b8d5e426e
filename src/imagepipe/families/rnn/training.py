"""Training the row-by-row RNN: Adam with a cosine decay to zero at the last step, clipped gradients."""

import math
from pathlib import Path

import keras

from imagepipe.core.sections import InputsParams, TrainRnnParams
from imagepipe.families.rnn.model import row_rnn
from imagepipe.training.inputs import DEFAULT_INPUTS, batches, load_split
from imagepipe.training.state import TrainingState

# Gradients of a recurrence through many steps can explode; clipping their norm keeps the
# first steps at the schedule's peak rate stable (Pascanu et al., 2013).
CLIP_NORM = 1.0


def optimizer(params: TrainRnnParams, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam from learning_rate, decayed along a cosine to zero at the last step: a short run
    ends at a low rate, where the last epoch gains the most."""
    rate = keras.optimizers.schedules.CosineDecay(params.learning_rate, decay_steps=params.epochs * steps_per_epoch)
    return keras.optimizers.Adam(rate, clipnorm=CLIP_NORM)


def train(
    data: Path,
    section: TrainRnnParams,
    seed: int,
    state: TrainingState,
    callbacks: list,
    inputs: InputsParams = DEFAULT_INPUTS,
) -> None:
    """Fit the RNN on the train split, validated on the val split; the best epoch by
    val_accuracy is kept in state."""
    keras.utils.set_random_seed(seed)
    train_split, val_split = load_split(data, "train"), load_split(data, "val")
    model = row_rnn(train_split.input_shape, train_split.num_classes, section)
    model.compile(
        optimizer=optimizer(section, math.ceil(train_split.count / section.batch_size)),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    model.fit(
        batches(train_split, section.batch_size, seed, shuffle=True, inputs=inputs),
        validation_data=batches(val_split, section.batch_size, seed, inputs=inputs),
        epochs=section.epochs,
        callbacks=[*state.callbacks(), *callbacks],
        shuffle=False,
        verbose=2,
    )
