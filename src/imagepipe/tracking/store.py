"""The MLflow tracking store: the URI (a server, or sqlite:///mlflow.db here) and the project's experiment.

Apart from the runs module so that flows can find and create runs without importing Keras.
"""

import os
from pathlib import Path

import mlflow
import requests

from imagepipe.core.errors import StageError
from imagepipe.core.redact import redact

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


HEALTH_TIMEOUT_SECONDS = 10


EXPERIMENT = "imagepipe"


def configure_tracking() -> None:
    """Point MLflow at the tracking URI and the project's experiment, creating it if needed.
    A tracking server that does not answer fails the stage now, not after its training."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        local = uri.startswith("sqlite:") or uri.startswith("file:")
        mlflow.create_experiment(
            EXPERIMENT,
            artifact_location=Path("mlartifacts").resolve().as_uri() if local else None,
        )
    mlflow.set_experiment(EXPERIMENT)


def check_server(uri: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=timeout).raise_for_status()
    except requests.RequestException as error:
        raise StageError(
            f"the MLflow tracking server {redact(uri)} does not answer ({type(error).__name__}): start it, "
            "or point MLFLOW_TRACKING_URI at one that runs (unset, runs go to sqlite:///mlflow.db here)"
        ) from None
