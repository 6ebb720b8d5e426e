"""A scoring run in MLflow: tagged with the model version it scored with, the drift statistics as
metrics, the predictions and the report as artifacts (in the project's experiment)."""

import math
from pathlib import Path

import mlflow

from imagepipe.core.redact import redact
from imagepipe.scoring.drift import ClassDrift, FeatureDrift
from imagepipe.scoring.report import Scored
from imagepipe.tracking.store import configure_tracking

ARTIFACT_DIR = "scoring"


def drift_metrics(scored: Scored, classes: ClassDrift, features: FeatureDrift) -> dict[str, float]:
    """The run's metrics; their keys are documented in docs/scoring.md."""
    metrics = {
        "images_scored": scored.images,
        "files_skipped": scored.skipped,
        "drift.class_total_variation": classes.total_variation,
        "drift.class_chi_square": classes.chi_square,
        "drift.class_p_value": classes.p_value,
        "drift.feature_mmd2": features.mmd2,
        "drift.feature_p_value": features.p_value,
        "drift.drifted": float(classes.drifted or features.drifted),
    }
    # A batch of one image has no feature test: its NaN statistic is left out.
    return {key: float(value) for key, value in metrics.items() if math.isfinite(value)}


def log_scoring_run(
    scored: Scored, metrics: dict[str, float], report: str, predictions: Path, tags: dict[str, str]
) -> str:
    """Log the scoring run; returns its run id."""
    configure_tracking()
    with mlflow.start_run(run_name=f"score {scored.model} v{scored.version}") as run:
        mlflow.set_tags(
            {
                "stage": "score",
                "registered_model": scored.model,
                "model_version": scored.version,
                "score.source": redact(scored.source),
                **tags,
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(predictions), ARTIFACT_DIR)
        mlflow.log_text(report, f"{ARTIFACT_DIR}/report.md")
        return run.info.run_id
