"""Training the detector on the composed scenes: targets on the grid, Adam with cosine decay.

fit() trains a wrapper of the detector compiled with the detection loss; the checkpoint holds
the detector alone, uncompiled, so that loading it (here, or in the served model, which cannot
import this project's loss) needs no custom objects.
"""

import logging
import math
from pathlib import Path

import keras
import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.sections import InputsParams, TrainDetectorParams
from imagepipe.data.scenes import Scenes, item_class_names, load_scenes
from imagepipe.families.detector.grid import encode_targets
from imagepipe.families.detector.model import detection_loss, detector
from imagepipe.training.state import TrainingState

logger = logging.getLogger(__name__)


def scene_targets(scenes: Scenes, section: TrainDetectorParams, num_classes: int, split: str) -> np.ndarray:
    if scenes.count == 0:
        raise StageError(f"the {split} split of the scenes is empty: compose_scenes made no {split} scenes")
    return encode_targets(scenes.boxes, scenes.labels, scenes.images.shape[1:], section.stride, num_classes)


def trainer(model: keras.Model, section: TrainDetectorParams, steps: int) -> keras.Model:
    """model inside a Model compiled with the detection loss (fit's logs: loss, val_loss)."""
    pixels = keras.Input(model.input_shape[1:], name="pixels")
    wrapper = keras.Model(pixels, model(pixels), name="detector_training")
    schedule = keras.optimizers.schedules.CosineDecay(section.learning_rate, decay_steps=max(steps, 1))
    wrapper.compile(optimizer=keras.optimizers.Adam(schedule), loss=detection_loss)
    return wrapper


def train(
    data: Path,
    section: TrainDetectorParams,
    seed: int,
    state: TrainingState,
    callbacks: list,
    inputs: InputsParams,
) -> None:
    """Fit a detector on data's train scenes, the best epoch by validation loss kept in state.

    inputs is unused: scenes are small enough to be held in memory whole.
    """
    keras.utils.set_random_seed(seed)
    num_classes = len(item_class_names(data))
    train_scenes, val_scenes = load_scenes(data, "train"), load_scenes(data, "val")
    train_targets = scene_targets(train_scenes, section, num_classes, "train")
    val_targets = scene_targets(val_scenes, section, num_classes, "val")
    model = detector(train_scenes.images.shape[1:], num_classes, section.stride, section.filters)
    steps = math.ceil(train_scenes.count / section.batch_size) * section.epochs
    logger.info(
        "detector: %d parameters, a %d×%d grid, %d classes, %d train and %d val scenes",
        model.count_params(),
        *train_targets.shape[1:3],
        num_classes,
        train_scenes.count,
        val_scenes.count,
    )
    trainer(model, section, steps).fit(
        train_scenes.inputs(),
        train_targets,
        batch_size=section.batch_size,
        epochs=section.epochs,
        validation_data=(val_scenes.inputs(), val_targets),
        callbacks=state.callbacks(saved_model=model) + callbacks,
        verbose=2,
    )
