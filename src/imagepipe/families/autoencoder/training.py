"""Training the denoising autoencoder on the normal classes: MSE to the clean image, Adam."""

import logging
from pathlib import Path

import keras

from imagepipe.core.sections import InputsParams, TrainAutoencoderParams
from imagepipe.families.anomaly.scores import anomaly_index, normal_images
from imagepipe.families.autoencoder.model import autoencoder
from imagepipe.training.inputs import DEFAULT_INPUTS, load_class_names, load_split
from imagepipe.training.state import TrainingState

logger = logging.getLogger(__name__)


def train(
    data: Path,
    section: TrainAutoencoderParams,
    seed: int,
    state: TrainingState,
    callbacks: list,
    inputs: InputsParams = DEFAULT_INPUTS,
) -> None:
    """Fit on the train split's normal images, validated on the val split's; the best epoch by
    val_loss is kept in state."""
    keras.utils.set_random_seed(seed)
    class_names = load_class_names(data)
    anomaly = anomaly_index(class_names, section.anomaly_class)
    logger.info("autoencoder: trained without %r, the anomaly class", class_names[anomaly])
    train_split, val_split = load_split(data, "train"), load_split(data, "val")
    model = autoencoder(train_split.input_shape, section.latent_dim, section.noise_stddev, seed)
    model.compile(optimizer=keras.optimizers.Adam(section.learning_rate), loss=keras.losses.MeanSquaredError())

    def pairs(images):  # the clean image is the target of its noisy copy
        return images, images

    model.fit(
        normal_images(train_split, anomaly, section.batch_size, seed, shuffle=True, inputs=inputs).map(pairs),
        validation_data=normal_images(val_split, anomaly, section.batch_size, seed, inputs=inputs).map(pairs),
        epochs=section.epochs,
        callbacks=[*state.callbacks(), *callbacks],
        verbose=2,
    )
