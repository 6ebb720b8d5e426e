"""train_family: one of the course's other model families (imagepipe.families), trained like the CNN.

The family's params section, its data's DVC hash and the seed key the resume state; the
best epoch by the family's validation metric becomes `<model-dir>/best.keras` and the
registered MLflow model `<task>-<family>` (registry.task), served as the family says
(docs: Model families).
"""

import argparse
import logging
from pathlib import Path

from imagepipe.core.cli import run_stage
from imagepipe.core.files import write_json
from imagepipe.core.params import load_params
from imagepipe.families.catalog import NAMES, family
from imagepipe.models.loading import load_keras
from imagepipe.tracking.publish import log_keras_model
from imagepipe.tracking.runs import EpochMetrics
from imagepipe.tracking.session import TrainingSetup, training_session
from imagepipe.tracking.tasks import registered_model
from imagepipe.training.accelerator import configure_accelerator

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--family", choices=NAMES, required=True)
    parser.add_argument("--data", type=Path, required=True, help="data/processed or data/scenes, as the family needs")
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/unet")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/unet")
    parser.add_argument("--state-dir", type=Path, help="checkpoints for resuming; default .state/<family>")
    args = parser.parse_args()
    params = load_params(args.params)
    chosen = family(args.family)
    section = chosen.section(params)
    # Custom train steps (the VAE's) average per device and scale no float16 loss: one device, float32.
    accelerator, strategy = configure_accelerator(params.accelerator, distribute=False, mixed_precision=False)
    setup = TrainingSetup(
        f"train_{chosen.name}",
        args.state_dir or Path(".state") / chosen.name,
        chosen.monitor,
        chosen.mode,
        section.model_dump(),
        params.seed,
        {"data": str(args.data)},
    )
    with training_session(setup, accelerator.tags()) as state:
        if not state.fit_finished:  # a crash after fit() ended: only publishing is left
            with strategy.scope():
                chosen.train(args.data, section, params.seed, state, [EpochMetrics()], params.inputs)
            state.finish_fit()
        serving = chosen.serving(load_keras(state.best_path), args.data, params)
        reference = log_keras_model(
            state.best_path,
            registered_model(params, chosen.name),
            serving.example,
            serving.output,
            serving.config,
            serving.artifacts,
        )
        state.publish(args.model_dir / "best.keras", args.plots / "history.csv")
        write_json(args.model_dir / "mlflow.json", reference)


if __name__ == "__main__":
    run_stage(main)
