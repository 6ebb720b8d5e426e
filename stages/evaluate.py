"""evaluate: a trained classifier on its held-out test split, then the registry gate.

Writes `metrics/<model>.json` (DVC metrics) and `plots/<model>/predictions.csv` (one row per
test image: actual and predicted class; DVC's confusion plot), logs both to the training
stage's MLflow run, and gives the new model version its task's `champion` alias only if its
data passed validation and its test accuracy beats the champion's beyond noise: both scored on
this test set, the gain's bootstrap interval above `registry.min_accuracy_gain`.
"""

import argparse
import csv
import logging
from pathlib import Path

import mlflow
import numpy as np

from imagepipe.core.cli import run_stage
from imagepipe.core.files import write_json
from imagepipe.core.params import Params, load_params
from imagepipe.models.loading import load_keras
from imagepipe.tracking.registry import Decision, Measured, Policy, gate_run
from imagepipe.tracking.runs import metric_names, resumed_run
from imagepipe.tracking.significance import Gain, accuracy_interval, paired_accuracy
from imagepipe.tracking.tasks import task_of
from imagepipe.training.classification import evaluate
from imagepipe.training.inputs import Split, load_class_names, load_split, predict

logger = logging.getLogger(__name__)
CHAMPION_METRIC = "test_accuracy"


def write_predictions(path: Path, actual: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "actual", "predicted"])
        pairs = enumerate(zip(actual, predicted, strict=True))
        writer.writerows((i, class_names[a], class_names[p]) for i, (a, p) in pairs)


def gate(args: argparse.Namespace, test: Split, metrics: dict, correct: np.ndarray, params: Params) -> Decision:
    """The registry gate, with the champion scored again on this test set for a paired comparison."""
    registry = params.registry
    actual = test.labels()

    def compare(champion_file: Path) -> Gain:
        champion_predicted = predict(load_keras(champion_file), test, params.evaluate.batch_size).argmax(axis=1)
        return paired_accuracy(
            correct, champion_predicted == actual, registry.confidence, registry.resamples, params.seed
        )

    interval = (metrics["test_accuracy_ci"][0], metrics["test_accuracy_ci"][1])
    measured = Measured(task_of(args.data), CHAMPION_METRIC, metrics[CHAMPION_METRIC], interval)
    policy = Policy(registry.min_accuracy_gain, registry.confidence)
    return gate_run(args.model_dir, args.validation, measured, compare, policy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/cnn")
    parser.add_argument("--data", type=Path, required=True, help="the model's preprocessed data, e.g. data/processed")
    parser.add_argument("--validation", type=Path, required=True, help="validate's summary.json for that data")
    parser.add_argument("--metrics", type=Path, required=True, help="e.g. metrics/cnn.json")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/cnn")
    args = parser.parse_args()
    params = load_params(args.params)
    model = load_keras(args.model_dir / "best.keras")
    test = load_split(args.data, "test")
    class_names = load_class_names(args.data)
    actual = test.labels()
    metrics, predicted = evaluate(predict(model, test, params.evaluate.batch_size), actual, class_names)
    correct = predicted == actual
    low, high = accuracy_interval(correct, params.registry.confidence, params.registry.resamples, params.seed)
    metrics["test_accuracy_ci"] = [low, high]
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.metrics, metrics)
    write_predictions(args.plots / "predictions.csv", actual, predicted, class_names)
    with resumed_run(args.model_dir / "mlflow.json"):
        mlflow.log_metrics({key: value for key, value in metrics.items() if isinstance(value, float)})
        mlflow.log_metrics({"test_accuracy_ci_low": low, "test_accuracy_ci_high": high})
        f1 = [metrics["per_class"][name]["f1"] for name in class_names]
        mlflow.log_metrics(dict(zip(metric_names("test_f1", class_names), f1, strict=True)))
        mlflow.log_artifact(str(args.metrics), artifact_path="metrics")
        decision = gate(args, test, metrics, correct, params)
    logger.info(
        "%s: test accuracy %.4f [%.4f, %.4f], loss %.4f; champion: %s",
        args.model_dir.name,
        metrics["test_accuracy"],
        low,
        high,
        metrics["test_loss"],
        decision.reason,
    )


if __name__ == "__main__":
    run_stage(main)
