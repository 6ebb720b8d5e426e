"""Batch scoring as a Prefect flow: new images validated, predicted by a task's champion, and
checked for drift against its training data (docs/scoring.md).

`python -m flows.score --source inbox` runs it once; the `score/score-new-images` deployment
(prefect.yaml) runs it every hour on a CPU worker. A run ends Completed (scored, no drift),
`Skipped` (a Completed state: no images, or the same files as the last run), `Invalid` (a
Failed state: the images failed validation, nothing was scored) or `Drifted` (a Failed state:
scored, and a drift test fired). Prefect emits the last as the event `prefect.flow-run.Drifted`,
which the `retrain-on-drift` trigger of `nightly-retrain` (prefect.yaml) listens for.

Scoring's libraries (Keras, MLflow, Great Expectations, SciPy) take ~10 s to import, and
`prefect deploy` imports this module to read the flow's parameters: the tasks import them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pooch
from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed

from imagepipe.core.errors import StageError
from imagepipe.core.files import read_json, write_json
from imagepipe.core.params import Params, load_params
from imagepipe.scoring import images
from imagepipe.tracking.tasks import registered_model

if TYPE_CHECKING:
    from imagepipe.scoring.champion import Champion
    from imagepipe.scoring.predict import Scores

REPORT_KEY = "score-report"  # the Prefect artifact's key: each run's report under one name
LAST_RUN = "last_scored.json"  # in the output folder: what the latest run scored


@task(cache_policy=NO_CACHE)
def list_images(source: str) -> tuple[Path, list[Path], list[Path]]:
    folder = images.resolve_folder(source, Path(pooch.os_cache("imagepipe")) / "score")
    return folder, *images.list_images(folder)


def _transient(task, task_run, state) -> bool:
    """Retry a registry that failed for a moment, not a champion that is missing or incomplete."""
    try:
        state.result()
    except StageError:
        return False
    except Exception:
        return True
    return False


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=_transient)
def fetch_champion(model: str, directory: Path) -> Champion:
    """The champion's files from the registry; a store or server failing for a moment is retried."""
    from imagepipe.scoring.champion import champion_version, load_champion

    version = champion_version(model)
    get_run_logger().info("scoring with %s v%s", model, version)
    return load_champion(model, version, directory)


@task(cache_policy=NO_CACHE)
def validate(folder: Path, paths: list[Path], shape: tuple[int, int, int], resize: bool) -> list[str]:
    """The failed expectations (none: the images may be scored)."""
    from imagepipe.scoring.checks import validate_images

    return validate_images([images.image_stats(path, folder) for path in paths], shape, resize).failures


@task(cache_policy=NO_CACHE)
def predict(champion: Champion, folder: Path, paths: list[Path], predictions: Path, params: Params) -> Scores:
    from imagepipe.scoring.predict import feature_sample, score_images

    sample = feature_sample(len(paths), params.score.feature_sample, params.seed)
    return score_images(champion, folder, paths, predictions, params.score.batch_size, sample)


@flow(name="score")
def score(source: str = "inbox", model: str | None = None, output: str = "scores", rescore: bool = False):
    """Score the images under source (a folder, a .zip/.tar/.tar.gz archive, or a file:// URL)
    with `models:/<model>@champion` (default: this workspace's task's CNN, `<task>-cnn`).

    Writes `<output>/<time>-<run name>/predictions.csv` and `report.md`. Unless rescore, a source
    holding the files the previous run scored (`<output>/last_scored.json`) is skipped.
    """
    from imagepipe.scoring.report import invalid_report

    logger, params = get_run_logger(), load_params()
    model = model or registered_model(params, "cnn")
    folder, paths, skipped = list_images(source)
    digest, last = images.listing_digest(folder, paths), Path(output) / LAST_RUN
    if not paths or (not rescore and last.is_file() and read_json(last).get("files") == digest):
        reason = "no images" if not paths else f"no new images since {read_json(last)['directory']}"
        logger.info("nothing to score in %s: %s", source, reason)
        return Completed(name="Skipped", message=f"{source}: {reason}")
    directory = Path(output) / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{runtime.flow_run.name}"
    with tempfile.TemporaryDirectory(prefix="champion-") as downloads:
        champion = fetch_champion(model, Path(downloads))
        failures = validate(folder, paths, champion.input_shape, params.score.resize)
        if failures:
            report = invalid_report(source, model, champion.version, champion.input_shape, failures)
            _publish(report, directory)
            return Failed(name="Invalid", message=f"{source}: the images failed validation\n{report}")
        scores = predict(champion, folder, paths, directory / "predictions.csv", params)
    return conclude(champion, scores, source, len(skipped), params, directory, digest)


def conclude(
    champion: Champion, scores: Scores, source: str, skipped: int, params: Params, directory: Path, digest: str
):
    """Test drift, publish the report (Prefect, MLflow, the output folder) and end the run."""
    import numpy as np

    from imagepipe.scoring.drift import class_drift, feature_drift
    from imagepipe.scoring.report import Scored, scoring_report
    from imagepipe.scoring.tracking import drift_metrics, log_scoring_run

    limits, reference = params.score, champion.reference
    scored = Scored(champion.name, champion.version, source, scores.images, skipped, str(directory / "predictions.csv"))
    classes = class_drift(
        scores.class_counts, champion.expected_counts, limits.max_class_total_variation, limits.class_p_value
    )
    features = feature_drift(
        reference.features,
        scores.features,
        limits.feature_permutations,
        limits.feature_p_value,
        limits.min_feature_mmd2,
        np.random.default_rng(params.seed),
    )
    report = scoring_report(scored, reference.class_names, reference.class_counts, classes, features, limits)
    _publish(report, directory)
    metrics = drift_metrics(scored, classes, features)
    run_id = log_scoring_run(
        scored, metrics, report, Path(scored.predictions), {"prefect.flow_run_id": str(runtime.flow_run.id)}
    )
    write_json(directory.parent / LAST_RUN, {"files": digest, "directory": str(directory), "mlflow_run_id": run_id})
    if classes.drifted or features.drifted:
        return Failed(
            name="Drifted",
            message=f"{source}: drift from {champion.name} v{champion.version}'s training data "
            f"(MLflow run {run_id})\n{report}",
        )
    return {"predictions": scored.predictions, "images": scored.images, "mlflow_run_id": run_id}


def _publish(report: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.md").write_text(report, encoding="utf-8")
    create_markdown_artifact(report, key=REPORT_KEY, description="Batch scoring and drift report")


def main() -> None:
    parser = argparse.ArgumentParser(description="Score new images with a task's champion; test them for drift.")
    parser.add_argument("--source", default="inbox", help="folder, archive or file:// URL of images (default: inbox)")
    parser.add_argument("--model", help="registered model name (default: <task>-cnn of params.yaml)")
    parser.add_argument("--output", default="scores", help="folder of the runs' predictions and reports")
    parser.add_argument("--rescore", action="store_true", help="score even when nothing changed since the last run")
    args = parser.parse_args()
    state = score(args.source, args.model, args.output, args.rescore, return_state=True)
    # The CLI edge prints the outcome: the state (Completed, Skipped, Invalid, Drifted, Failed) and why.
    sys.stdout.write(json.dumps({"state": state.name, "message": state.message}, indent=2) + "\n")
    raise SystemExit(0 if state.is_completed() else 1)


if __name__ == "__main__":
    main()
