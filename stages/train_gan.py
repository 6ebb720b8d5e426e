"""train_gan: a DCGAN on up to `max_images` of `data/processed/`'s train images.

The best epoch by FID on validation images (features from the CNN's `features` layer) becomes
`models/gan/best.keras`, the generator alone: `latent_dim` standard-normal noise in, pixels in
[0, 1] out. It is also the registered MLflow model `<task>-gan` (registry.task), which returns pixels in 0..255.
Per-epoch sample grids go to `plots/gan/samples/`; the losses, FID, precision and recall to
`plots/gan/history.csv`.
"""

import argparse
import logging
import shutil
from pathlib import Path

import numpy as np

from imagepipe.core.cli import run_stage
from imagepipe.core.files import write_json
from imagepipe.core.params import load_params
from imagepipe.models.loading import load_keras
from imagepipe.tracking.publish import log_keras_model
from imagepipe.tracking.runs import EpochMetrics
from imagepipe.tracking.session import TrainingSetup, training_session
from imagepipe.tracking.tasks import registered_model
from imagepipe.training.accelerator import configure_accelerator
from imagepipe.training.gan import train_gan
from imagepipe.training.state import TrainingState

logger = logging.getLogger(__name__)


def publish_samples(state: TrainingState, directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(state.directory / "samples", directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output, e.g. data/processed")
    parser.add_argument(
        "--feature-model", type=Path, required=True, help="the FID feature extractor, e.g. models/cnn/best.keras"
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/gan")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/gan")
    parser.add_argument("--state-dir", type=Path, default=Path(".state/gan"), help="checkpoints for resuming")
    args = parser.parse_args()
    params = load_params(args.params)
    # One device, float32: the GAN's own train_step averages its losses per device, which a
    # MirroredStrategy would sum across GPUs, and it does no loss scaling for float16.
    accelerator, _ = configure_accelerator(params.accelerator, distribute=False, mixed_precision=False)
    # Another feature model measures FID on another scale: state from it must not be resumed.
    setup = TrainingSetup(
        "train_gan",
        args.state_dir,
        "fid",
        "min",
        params.train_gan.model_dump(),
        params.seed,
        {"data": str(args.data), "feature_model": str(args.feature_model)},
    )
    with training_session(setup, accelerator.tags()) as state:
        classifier = load_keras(args.feature_model)
        if not state.fit_finished:
            train_gan(args.data, params.train_gan, params.seed, classifier, state, [EpochMetrics()], params.inputs)
            state.finish_fit()
        noise = np.random.default_rng(params.seed).standard_normal((4, params.train_gan.latent_dim)).astype(np.float32)
        best = load_keras(state.best_path)
        reference = log_keras_model(
            state.best_path,
            registered_model(params, "gan"),
            noise,
            best.predict(noise, verbose=0) * 255,
            {"output_scale": 255.0},
        )
        reference["latent_dim"] = params.train_gan.latent_dim
        publish_samples(state, args.plots / "samples")
        state.publish(args.model_dir / "best.keras", args.plots / "history.csv")
        write_json(args.model_dir / "mlflow.json", reference)


if __name__ == "__main__":
    run_stage(main)
