"""evaluate_gan: the generator's FID against held-out test images, then the registry gate.

Generates `train_gan.fid_samples` images from seeded noise (other noise than training used)
and measures their FID against as many test images, with the feature extractor training used
(the CNN's `features` layer). Writes `metrics/gan.json` (`test_fid`, `fid_samples`,
`feature_extractor`) and `plots/gan/samples.png` (a 4×4 grid), logs both to train_gan's MLflow
run, and gives the new `gan` version the `champion` alias only if its test FID is lower than
the champion's and its data passed validation.

FIDs taken in different feature spaces do not compare: a retrained CNN changes the scale (a
change of its label smoothing alone moves a generator's FID several-fold), so the gate rescores
a champion scored with another extractor first (imagepipe.tracking.fid_gate).
"""

import argparse
import logging
from pathlib import Path

import keras
import mlflow
import numpy as np
from matplotlib.figure import Figure

from imagepipe.core.cli import run_stage
from imagepipe.core.errors import StageError
from imagepipe.core.files import write_json
from imagepipe.core.params import load_params
from imagepipe.models.gan_quality import feature_extractor, fid, sample_grid
from imagepipe.models.heads import FEATURE_LAYER
from imagepipe.models.loading import load_keras
from imagepipe.tracking.fid_gate import CHAMPION_METRIC, gate_generator
from imagepipe.tracking.runs import resumed_run
from imagepipe.training.inputs import Split, load_split

logger = logging.getLogger(__name__)


def evaluate(
    generator: keras.Model,
    extractor: keras.Model,
    test: Split,
    num_samples: int,
    seed: int,
    batch_size: int,
) -> tuple[float, Figure]:
    """(FID of num_samples generated vs as many test images, a grid of the first 16 generated)."""
    if num_samples > test.count:
        raise StageError(
            f"train_gan.fid_samples is {num_samples} but the test split has {test.count} images; "
            f"set it to at most {test.count}"
        )
    # seed + 1: other noise than train_gan's, which chose the best epoch by FID on its samples.
    noise = np.random.default_rng(seed + 1).standard_normal((num_samples, generator.input_shape[-1])).astype(np.float32)
    generated = generator.predict(noise, batch_size=batch_size, verbose=0)
    return fid(extractor, test.sample(num_samples, seed), generated, batch_size), sample_grid(
        generated, "generated (fixed seed)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/gan")
    parser.add_argument(
        "--feature-model", type=Path, required=True, help="the FID feature extractor, e.g. models/cnn/best.keras"
    )
    parser.add_argument("--data", type=Path, required=True, help="preprocess's output, e.g. data/processed")
    parser.add_argument("--validation", type=Path, required=True, help="validate's summary.json for that data")
    parser.add_argument("--metrics", type=Path, required=True, help="e.g. metrics/gan.json")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/gan")
    return parser.parse_args()


def write_outputs(metrics_path: Path, plots: Path, metrics: dict, figure: Figure) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(metrics_path, metrics)
    plots.mkdir(parents=True, exist_ok=True)
    figure.savefig(plots / "samples.png", dpi=80)


def main() -> None:
    args = parse_args()
    params = load_params(args.params)
    generator = load_keras(args.model_dir / "best.keras")
    extractor = feature_extractor(load_keras(args.feature_model))
    test_images = load_split(args.data, "test")

    def score(model: keras.Model) -> tuple[float, Figure]:
        samples, batch_size = params.train_gan.fid_samples, params.evaluate.batch_size
        return evaluate(model, extractor, test_images, samples, params.seed, batch_size)

    test_fid, figure = score(generator)
    metrics = {
        CHAMPION_METRIC: test_fid,
        "fid_samples": params.train_gan.fid_samples,
        "feature_extractor": f"{args.feature_model} (layer {FEATURE_LAYER})",
    }
    write_outputs(args.metrics, args.plots, metrics, figure)
    with resumed_run(args.model_dir / "mlflow.json"):
        mlflow.log_metric(CHAMPION_METRIC, test_fid)
        mlflow.log_artifact(str(args.metrics), artifact_path="metrics")
        mlflow.log_figure(figure, "plots/samples.png")
        decision = gate_generator(
            args.model_dir, args.feature_model, args.validation, test_fid, lambda champion: score(champion)[0]
        )
    logger.info(
        "%s: test FID %.2f on %d samples; champion: %s",
        args.model_dir.name,
        test_fid,
        params.train_gan.fid_samples,
        decision.reason,
    )


if __name__ == "__main__":
    run_stage(main)
