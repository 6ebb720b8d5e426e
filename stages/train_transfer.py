"""train_transfer: a backbone with a new head on the few-label task in `data/transfer/`.

The backbone is cut at `cut_layer` (pipeline_cnn: its convolutional features, below the
Fashion-MNIST-specific `features` layer). The head is Dropout, Dense(dense_units, relu) and a
softmax over the task's classes, after global average pooling when the cut is 4-D. Phase 1
trains it for `epochs` on the frozen base, called with training=False (its features are
computed once and the head trains on them); phase 2, when fine_tune_epochs > 0, unfreezes the
base's top `fine_tune_layers` layers (BatchNormalization stays frozen) and goes on at
fine_tune_learning_rate. The same architecture trained from scratch on the same labels for as
many epochs is the yardstick. Both are trained with `seeds` training seeds (seed, seed + 1, ...)
on the same split; each one's test accuracy (best epoch by validation loss) goes to
`models/transfer/comparison.json` and MLflow as mean and sd over the seeds
(`transfer_test_accuracy_mean`, `..._sd`, `scratch_test_accuracy_mean`, `..._sd`,
`transfer_gain_mean`, `..._sd`), with each seed's under `per_seed`. The first seed's best
transfer epoch is `models/transfer/best.keras` (pixels in [0, 1] in) and the registered MLflow
model `<task>-transfer` (registry.transfer_task; raw pixels in).
"""

import argparse
import logging
from functools import partial
from pathlib import Path

import mlflow

from imagepipe.core.cli import run_stage
from imagepipe.core.files import write_json
from imagepipe.core.params import Params, load_params
from imagepipe.models.backbones import build_backbone
from imagepipe.models.transfer import cut_at
from imagepipe.tracking.publish import publish_classifier
from imagepipe.tracking.runs import EpochMetrics
from imagepipe.tracking.session import TrainingSetup, training_session
from imagepipe.tracking.tasks import registered_model
from imagepipe.training.accelerator import Accelerator, configure_accelerator
from imagepipe.training.state import TrainingState
from imagepipe.training.transfer import ScratchMetrics, compare, flat_metrics, training_seeds

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="prepare_transfer's output, e.g. data/transfer")
    parser.add_argument(
        "--backbone-model",
        type=Path,
        required=True,
        help="the CNN for backbone pipeline_cnn, e.g. models/cnn/best.keras",
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/transfer")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/transfer")
    parser.add_argument("--state-dir", type=Path, default=Path(".state/transfer"), help="checkpoints for resuming")
    args = parser.parse_args()
    params = load_params(args.params)
    accelerator, strategy = configure_accelerator(params.accelerator)
    with strategy.scope():
        train_and_publish(args, params, accelerator)


def train_and_publish(args: argparse.Namespace, params: Params, accelerator: Accelerator) -> None:
    section = params.train_transfer
    # A few labels leave a few validation images, whose accuracy moves in coarse steps and ties
    # from the first epochs on; the loss ranks epochs finely, for both models alike.
    monitor = ("val_loss", "min")
    setup = TrainingSetup(
        "train_transfer",
        args.state_dir,
        *monitor,
        section.model_dump(),
        params.seed,
        {"data": str(args.data), "backbone": str(args.backbone_model)},
    )
    tags = {"backbone": section.backbone, "weights": section.weights, **accelerator.tags()}
    with training_session(setup, tags) as state:
        states = partial(seed_states, state, params.seed, setup.fingerprint())
        comparison = compare(
            lambda: cut_at(
                build_backbone(section.backbone, section.weights, section.input_size, args.backbone_model),
                section.cut_layer,
            ),
            args.data,
            section,
            training_seeds(params.seed, section.seeds),
            states,
            {"transfer": [EpochMetrics()], "scratch": [ScratchMetrics()]},
            params.inputs,
        )
        mlflow.log_metrics(flat_metrics(comparison))
        for seed, accuracies in comparison["per_seed"].items():
            mlflow.log_metrics({f"seed_{key}": value for key, value in accuracies.items()}, step=int(seed))
        publish_classifier(
            state, args.data, registered_model(params, "transfer"), args.model_dir, args.plots, seed=params.seed
        )
        write_json(args.model_dir / "comparison.json", comparison)


def seed_states(state: TrainingState, first_seed: int, fingerprint: dict, seed: int) -> dict[str, TrainingState]:
    """One seed's TrainingStates: the first seed's transfer model is the session's (the published
    one); the other seeds' live inside its directory, so they are resumed and discarded with it."""
    directory = state.directory if seed == first_seed else state.directory / f"seed-{seed}"
    transfer = state if seed == first_seed else TrainingState(directory, state.monitor, state.mode, fingerprint)
    return {
        "transfer": transfer,
        "scratch": TrainingState(directory / "scratch", state.monitor, state.mode, fingerprint),
    }


if __name__ == "__main__":
    run_stage(main)
