"""Training the VAE on the normal classes: Adam on the beta-weighted negative ELBO."""

import logging
from pathlib import Path

import keras

from imagepipe.core.sections import InputsParams, TrainVaeParams
from imagepipe.families.anomaly.scores import anomaly_index, normal_images
from imagepipe.families.vae.model import VAE, inference_model
from imagepipe.training.inputs import DEFAULT_INPUTS, load_class_names, load_split
from imagepipe.training.state import TrainingState

logger = logging.getLogger(__name__)


def train(
    data: Path,
    section: TrainVaeParams,
    seed: int,
    state: TrainingState,
    callbacks: list,
    inputs: InputsParams = DEFAULT_INPUTS,
) -> None:
    """Fit on the train split's normal images, validated on the val split's; the best epoch by
    val_loss is kept in state as the inference model (model.inference_model), not the VAE
    class: that loads anywhere, and its nested decoder is what is served."""
    keras.utils.set_random_seed(seed)
    class_names = load_class_names(data)
    anomaly = anomaly_index(class_names, section.anomaly_class)
    logger.info("vae: trained without %r, the anomaly class", class_names[anomaly])
    train_split, val_split = load_split(data, "train"), load_split(data, "val")
    vae = VAE(train_split.input_shape, section.latent_dim, section.beta, seed)
    vae.compile(optimizer=keras.optimizers.Adam(section.learning_rate))
    vae.fit(
        normal_images(train_split, anomaly, section.batch_size, seed, shuffle=True, inputs=inputs),
        validation_data=normal_images(val_split, anomaly, section.batch_size, seed, inputs=inputs),
        epochs=section.epochs,
        callbacks=[*state.callbacks(saved_model=inference_model(vae)), *callbacks],
        verbose=2,
    )
