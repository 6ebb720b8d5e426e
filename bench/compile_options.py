"""Seconds per epoch of the default CNN under Keras's `jit_compile` (XLA) and
`steps_per_execution`, timed on the second epoch (after tracing and compiling).

    python -m bench.compile_options data/processed
"""

import math
import sys
import time
from pathlib import Path

import keras

from imagepipe.core.params import load_params
from imagepipe.models.cnn import ARCHITECTURES
from imagepipe.training.cnn import optimizer
from imagepipe.training.inputs import batches, load_split

SETTINGS = ((False, 1), (True, 1), (False, 16), (True, 16), (False, 1))  # the default again last: drift


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def seconds_per_epoch(data: Path, jit_compile: bool, steps_per_execution: int) -> float:
    params = load_params().train_cnn
    train = load_split(data, "train")
    keras.utils.set_random_seed(0)
    model = ARCHITECTURES[params.architecture](train.input_shape, train.num_classes, params.dropout_rate)
    steps = math.ceil(train.count / params.batch_size)
    model.compile(
        optimizer=optimizer(params, steps),
        loss="categorical_crossentropy",
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    timer = EpochTimer()
    model.fit(
        batches(train, params.batch_size, 0, shuffle=True, augment=params.augmentation),
        epochs=2,
        callbacks=[timer],
        verbose=0,
    )
    return timer.seconds


if __name__ == "__main__":
    for jit_compile, steps_per_execution in SETTINGS:
        seconds = seconds_per_epoch(Path(sys.argv[1]), jit_compile, steps_per_execution)
        print(f"jit_compile={jit_compile} steps_per_execution={steps_per_execution}: {seconds:.1f} s/epoch", flush=True)
