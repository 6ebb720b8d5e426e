"""evaluate_family: a family's model (imagepipe.families) on its test set, its pictures, then the registry gate.

Writes `metrics/<family>.json` (DVC metrics: the family's metric, e.g. mean IoU or mAP, with
its bootstrap interval) and the family's pictures into `plots/<family>/pictures/`, logs both to the
training stage's MLflow run, and gives the version its task's `champion` alias only if its data
passed validation and it beats the champion beyond noise: both scored on this test set, the
gain's bootstrap interval above the margin (registry.min_family_gain).
"""

import argparse
import logging
import shutil
from pathlib import Path

import mlflow

from imagepipe.core.cli import run_stage
from imagepipe.core.files import write_json
from imagepipe.core.params import load_params
from imagepipe.families.base import Evaluation, Family
from imagepipe.families.catalog import NAMES, family
from imagepipe.models.loading import load_keras
from imagepipe.tracking.registry import Decision, Measured, Policy, gate_run
from imagepipe.tracking.runs import resumed_run
from imagepipe.tracking.significance import Gain, paired_statistic, statistic_interval

logger = logging.getLogger(__name__)


def fresh_directory(path: Path) -> Path:
    """path, emptied: pictures of an earlier run must not stay beside this run's."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def scored(chosen: Family, evaluation: Evaluation, confidence: float, resamples: int, seed: int) -> dict:
    """The evaluation's metrics with the champion metric's bootstrap interval beside it."""
    low, high = statistic_interval(evaluation.items, chosen.statistic, confidence, resamples, seed)
    return {**evaluation.metrics, f"{chosen.metric}_ci": [low, high]}


def gate(args: argparse.Namespace, chosen: Family, evaluation: Evaluation, metrics: dict, params) -> Decision:
    """The registry gate, with the champion scored again on this test set for a paired comparison."""
    registry = params.registry

    def compare(champion_file: Path) -> Gain:
        champion = chosen.evaluate(load_keras(champion_file), args.data, params)
        return paired_statistic(
            evaluation.items,
            champion.items,
            chosen.statistic,
            chosen.higher_is_better,
            registry.confidence,
            registry.resamples,
            params.seed,
        )

    low, high = metrics[f"{chosen.metric}_ci"]
    measured = Measured(chosen.task(args.data), chosen.metric, metrics[chosen.metric], (low, high))
    return gate_run(
        args.model_dir, args.validation, measured, compare, Policy(registry.min_family_gain, registry.confidence)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--family", choices=NAMES, required=True)
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/unet")
    parser.add_argument("--data", type=Path, required=True, help="the family's data, e.g. data/scenes")
    parser.add_argument("--validation", type=Path, required=True, help="the validation summary.json of that data")
    parser.add_argument("--metrics", type=Path, required=True, help="e.g. metrics/unet.json")
    parser.add_argument("--plots", type=Path, required=True, help="e.g. plots/unet")
    args = parser.parse_args()
    params = load_params(args.params)
    chosen = family(args.family)
    model = load_keras(args.model_dir / "best.keras")
    evaluation = chosen.evaluate(model, args.data, params)
    registry = params.registry
    metrics = scored(chosen, evaluation, registry.confidence, registry.resamples, params.seed)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.metrics, metrics)
    pictures = chosen.pictures(model, args.data, fresh_directory(args.plots / "pictures"), params)
    with resumed_run(args.model_dir / "mlflow.json"):
        mlflow.log_metrics({key: value for key, value in metrics.items() if isinstance(value, float)})
        low, high = metrics[f"{chosen.metric}_ci"]
        mlflow.log_metrics({f"{chosen.metric}_ci_low": low, f"{chosen.metric}_ci_high": high})
        mlflow.log_artifact(str(args.metrics), artifact_path="metrics")
        for picture in pictures:
            mlflow.log_artifact(str(picture), artifact_path="plots")
        decision = gate(args, chosen, evaluation, metrics, params)
    logger.info(
        "%s: %s %.4f [%.4f, %.4f]; champion: %s",
        chosen.name,
        chosen.metric,
        metrics[chosen.metric],
        low,
        high,
        decision.reason,
    )


if __name__ == "__main__":
    run_stage(main)
