"""The registry gate for generators scored by FID: FIDs taken with different feature extractors
do not compare, so every version is tagged with its extractor's file hash, and a champion
scored with another extractor is scored again with this one before the gate compares."""

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import keras
import mlflow
from mlflow import MlflowClient

from imagepipe.core.files import read_json
from imagepipe.models.loading import load_keras
from imagepipe.tracking.registry import CHAMPION, Decision, champion, gate_run

logger = logging.getLogger(__name__)
CHAMPION_METRIC = "test_fid"
EXTRACTOR_TAG = "fid_feature_extractor_md5"


def rescore_champion(name: str, extractor_id: str, score: Callable[[keras.Model], float]) -> None:
    """Score the champion generator again when its test FID came from another feature extractor."""
    client, current = MlflowClient(), champion(name)
    if current is None or current.tags.get(EXTRACTOR_TAG) == extractor_id:
        return
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@{CHAMPION}"))
    generator = load_keras(next((model_dir / "artifacts").glob("*.keras")))
    value = score(generator)
    logger.info(
        "champion v%s was scored with another feature extractor (test FID %s); with this one: %.2f",
        current.version,
        current.tags.get(CHAMPION_METRIC),
        value,
    )
    client.set_model_version_tag(name, current.version, CHAMPION_METRIC, repr(value))
    client.set_model_version_tag(name, current.version, EXTRACTOR_TAG, extractor_id)


def gate_generator(
    model_dir: Path,
    feature_model: Path,
    validation: Path,
    test_fid: float,
    score: Callable[[keras.Model], float],
) -> Decision:
    """Tag the new version with its extractor, rescore the champion if it had another, then gate."""
    extractor_id = hashlib.md5(feature_model.read_bytes()).hexdigest()
    name, version = (read_json(model_dir / "mlflow.json")[key] for key in ("registered_model", "version"))
    rescore_champion(name, extractor_id, score)
    MlflowClient().set_model_version_tag(name, version, EXTRACTOR_TAG, extractor_id)
    return gate_run(model_dir, validation, CHAMPION_METRIC, test_fid, higher_is_better=False)
