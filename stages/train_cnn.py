"""train_cnn: the image classifier, trained on `data/processed/` with augmentation.

Two architectures: `course`, the course's CNN (3×Conv2D 32/64/64, max-pooling, Dense 64),
and `batchnorm`, the default: three conv blocks with batch norm, dropout around Dense 128.
The best epoch by validation accuracy becomes `models/cnn/best.keras` (pixels in [0, 1] in,
class probabilities out) and the registered MLflow model `<task>-cnn` (registry.task; raw pixels in).
"""

import argparse
import logging
from pathlib import Path

from imagepipe.core.cli import run_stage
from imagepipe.core.params import load_params
from imagepipe.tracking.publish import publish_classifier
from imagepipe.tracking.runs import EpochMetrics
from imagepipe.tracking.session import TrainingSetup, training_session
from imagepipe.tracking.tasks import registered_model
from imagepipe.training.accelerator import configure_accelerator
from imagepipe.training.cnn import train_cnn

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output, e.g. data/processed")
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/cnn")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/cnn")
    parser.add_argument("--state-dir", type=Path, default=Path(".state/cnn"), help="checkpoints for resuming")
    args = parser.parse_args()
    params = load_params(args.params)
    accelerator, strategy = configure_accelerator(params.accelerator)
    setup = TrainingSetup(
        "train_cnn",
        args.state_dir,
        "val_accuracy",
        "max",
        params.train_cnn.model_dump(),
        params.seed,
        {"data": str(args.data)},
    )
    with training_session(setup, accelerator.tags()) as state:
        if not state.fit_finished:  # a crash after fit() ended: only publishing is left
            with strategy.scope():
                train_cnn(args.data, params.train_cnn, params.seed, state, [EpochMetrics()], params.inputs)
            state.finish_fit()
        publish_classifier(
            state, args.data, registered_model(params, "cnn"), args.model_dir, args.plots, seed=params.seed
        )


if __name__ == "__main__":
    run_stage(main)
