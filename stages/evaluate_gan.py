"""evaluate_gan: the generator's FID, precision and recall on held-out test images; the gate.

Generates `train_gan.fid_samples` images from seeded noise (other noise than training used)
and measures FID, precision (fidelity) and recall (variety) against as many test images, in
the features training used (the CNN's `features` layer). Writes `metrics/gan.json` (keys in
docs/pipeline.md) and `plots/gan/samples.png` (a 4×4 grid), logs both to train_gan's MLflow
run, gives the new version its task's `champion` alias only if its data passed validation and
its FID is lower than the champion's beyond noise, and publishes the version's model card.

FIDs taken in different feature spaces do not compare: a retrained CNN changes the scale (a
change of its label smoothing alone moves a generator's FID several-fold). So the gate always
scores the champion again, from the same noise, in this extractor's features, against the same
test images, and promotes only when the FID drop's bootstrap interval lies above
`registry.min_fid_gain`.
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
from imagepipe.core.params import Params, load_params
from imagepipe.models.gan_quality import NEIGHBOURS, feature_extractor, frechet_distance, precision_recall, sample_grid
from imagepipe.models.heads import FEATURE_LAYER
from imagepipe.models.loading import load_keras
from imagepipe.tracking.card_publish import publish_gan_card
from imagepipe.tracking.registry import Decision, Measured, Policy, gate_run
from imagepipe.tracking.runs import resumed_run
from imagepipe.tracking.significance import Gain, fid_interval, paired_fid
from imagepipe.tracking.tasks import task_of
from imagepipe.training.inputs import Split, load_class_names, load_split

logger = logging.getLogger(__name__)
CHAMPION_METRIC = "test_fid"


def generate(generator: keras.Model, num_samples: int, seed: int, batch_size: int) -> np.ndarray:
    # seed + 1: other noise than train_gan's, which chose the best epoch by FID on its samples.
    noise = np.random.default_rng(seed + 1).standard_normal((num_samples, generator.input_shape[-1])).astype(np.float32)
    return generator.predict(noise, batch_size=batch_size, verbose=0)


def real_sample(test: Split, num_samples: int, seed: int) -> np.ndarray:
    if num_samples > test.count:
        raise StageError(
            f"train_gan.fid_samples is {num_samples} but the test split has {test.count} images; "
            f"set it to at most {test.count}"
        )
    return test.sample(num_samples, seed)


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


def gate(
    args: argparse.Namespace, params: Params, features, real: np.ndarray, generated: np.ndarray, metrics: dict
) -> Decision:
    """The registry gate, with the champion generator scored again from the same noise in the
    same features, against the same test images."""
    registry, samples, batch_size = params.registry, params.train_gan.fid_samples, params.evaluate.batch_size

    def compare(champion_file: Path) -> Gain:
        champion_features = features(generate(load_keras(champion_file), samples, params.seed, batch_size))
        return paired_fid(real, generated, champion_features, registry.confidence, registry.fid_resamples, params.seed)

    interval = (metrics["test_fid_ci"][0], metrics["test_fid_ci"][1])
    measured = Measured(task_of(args.data), CHAMPION_METRIC, metrics[CHAMPION_METRIC], interval)
    return gate_run(
        args.model_dir, args.validation, measured, compare, Policy(registry.min_fid_gain, registry.confidence)
    )


def measure(real: np.ndarray, generated: np.ndarray, params: Params, feature_model: Path) -> dict:
    """metrics/gan.json: FID with its bootstrap interval, precision and recall, all in one feature space."""
    registry = params.registry
    precision, recall = precision_recall(real, generated)
    return {
        CHAMPION_METRIC: frechet_distance(real, generated),
        "test_fid_ci": list(fid_interval(real, generated, registry.confidence, registry.fid_resamples, params.seed)),
        "test_precision": precision,
        "test_recall": recall,
        "precision_recall_neighbours": NEIGHBOURS,
        "fid_samples": len(real),
        "feature_extractor": f"{feature_model} (layer {FEATURE_LAYER})",
    }


def main() -> None:
    args = parse_args()
    params = load_params(args.params)
    samples, batch_size = params.train_gan.fid_samples, params.evaluate.batch_size
    extractor = feature_extractor(load_keras(args.feature_model))

    def features(images: np.ndarray) -> np.ndarray:
        return extractor.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)

    generated_images = generate(load_keras(args.model_dir / "best.keras"), samples, params.seed, batch_size)
    real, generated = (
        features(real_sample(load_split(args.data, "test"), samples, params.seed)),
        features(generated_images),
    )
    metrics = measure(real, generated, params, args.feature_model)
    figure = sample_grid(generated_images, "generated (fixed seed)")
    write_outputs(args.metrics, args.plots, metrics, figure)
    with resumed_run(args.model_dir / "mlflow.json"):
        low, high = metrics["test_fid_ci"]
        scores = {key: metrics[key] for key in (CHAMPION_METRIC, "test_precision", "test_recall")}
        mlflow.log_metrics(scores | {"test_fid_ci_low": low, "test_fid_ci_high": high})
        mlflow.log_artifact(str(args.metrics), artifact_path="metrics")
        mlflow.log_figure(figure, "plots/samples.png")
        decision = gate(args, params, features, real, generated, metrics)
        publish_gan_card(
            args.model_dir,
            args.metrics,
            args.validation,
            args.plots,
            params.registry.confidence,
            load_class_names(args.data),
        )
    logger.info(
        "%s: test FID %.2f, precision %.3f, recall %.3f on %d samples; champion: %s",
        args.model_dir.name,
        *scores.values(),
        samples,
        decision.reason,
    )


if __name__ == "__main__":
    run_stage(main)
