"""Training the U-Net on the composed scenes: per-pixel cross-entropy, Adam with cosine decay.

The loss is sparse categorical cross-entropy alone, without Dice. Dice rebalances classes by
area, which helps when a class is a sliver of the canvas; here each item class covers about 2%
of the pixels and background about 80%, yet background IoU is ~0.98 after the first epoch: what
the model gets wrong is which class a whole item is (a shirt for a coat), which area weighting
does not help with, and a custom loss would have to be registered wherever the model is loaded.
Nor is there augmentation: in the few epochs the budget allows, validation loss stays below
training loss, so there is no overfitting for a flip to prevent.
"""

import logging
import math
from pathlib import Path

import keras
import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.sections import InputsParams, TrainUnetParams
from imagepipe.data.scenes import Scenes, load_scenes, mask_class_names
from imagepipe.families.unet.model import unet
from imagepipe.training.state import TrainingState

logger = logging.getLogger(__name__)

# The name fit() logs the validation mean IoU under is "val_" + this: the family's monitor.
MEAN_IOU = "mean_iou"


def checked_masks(scenes: Scenes, num_classes: int, split: str) -> np.ndarray:
    """The split's masks, or a StageError if they hold a class the class list does not name."""
    if scenes.count == 0:
        raise StageError(f"the {split} split of the scenes is empty: compose_scenes made no {split} scenes")
    if scenes.masks.max() >= num_classes:
        raise StageError(
            f"the {split} masks hold class {scenes.masks.max()} but classes.json names "
            f"{num_classes - 1} item classes (mask values 0..{num_classes - 1}); compose the scenes again"
        )
    return scenes.masks.astype(np.int32)


def compiled_unet(input_shape: tuple[int, ...], num_classes: int, section: TrainUnetParams, steps: int) -> keras.Model:
    model = unet(input_shape, num_classes, section.filters, section.depth)
    schedule = keras.optimizers.schedules.CosineDecay(section.learning_rate, decay_steps=max(steps, 1))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.MeanIoU(num_classes, sparse_y_pred=False, name=MEAN_IOU),
            keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
        ],
    )
    return model


def train(
    data: Path,
    section: TrainUnetParams,
    seed: int,
    state: TrainingState,
    callbacks: list,
    inputs: InputsParams,
) -> None:
    """Fit a U-Net on data's train scenes, the best epoch by validation mean IoU kept in state.

    inputs is unused: scenes are small enough to be held in memory whole.
    """
    keras.utils.set_random_seed(seed)
    num_classes = len(mask_class_names(data))
    train_scenes, val_scenes = load_scenes(data, "train"), load_scenes(data, "val")
    train_masks = checked_masks(train_scenes, num_classes, "train")
    val_masks = checked_masks(val_scenes, num_classes, "val")
    steps = math.ceil(train_scenes.count / section.batch_size) * section.epochs
    model = compiled_unet(train_scenes.images.shape[1:], num_classes, section, steps)
    logger.info(
        "U-Net: %d parameters, %d mask classes, %d train and %d val scenes",
        model.count_params(),
        num_classes,
        train_scenes.count,
        val_scenes.count,
    )
    model.fit(
        train_scenes.inputs(),
        train_masks,
        batch_size=section.batch_size,
        epochs=section.epochs,
        validation_data=(val_scenes.inputs(), val_masks),
        callbacks=state.callbacks() + callbacks,
        verbose=2,
    )
