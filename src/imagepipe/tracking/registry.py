"""The registry gate: a new model version becomes `champion` only if it beats the current one.

The decisive metric is stored as a tag on every version it was measured for, so the gate
compares like with like and the MLflow UI shows the figure beside each version.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from imagepipe.core.files import read_json

logger = logging.getLogger(__name__)
CHAMPION = "champion"


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str


def better(value: float, than: float, higher_is_better: bool) -> bool:
    return value > than if higher_is_better else value < than


def promote_if_better(
    name: str,
    version: str,
    metric: str,
    value: float,
    higher_is_better: bool,
    data_valid: bool,
) -> Decision:
    """Tag the version with its metric, then move the champion alias to it if it is better."""
    client = MlflowClient()
    client.set_model_version_tag(name, version, metric, repr(float(value)))
    if not data_valid:
        return _decided(name, version, Decision(False, "its data did not pass validation"))
    if not has_model_files(name, version):
        return _decided(
            name,
            version,
            Decision(False, "its model files are missing from the registry's artifact store"),
        )
    current = champion(name)
    settled = _settled_by_champion(current, version, metric, value, higher_is_better)
    if settled is not None:
        return _decided(name, version, settled)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    previous = f"champion v{current.version}'s {current.tags[metric]}" if current else "no previous champion"
    return _decided(name, version, Decision(True, f"{metric} {value:.4f} beats {previous}"))


def _settled_by_champion(
    current: ModelVersion | None,
    version: str,
    metric: str,
    value: float,
    higher_is_better: bool,
) -> Decision | None:
    """The decision when the current champion settles it (it is this version already, it cannot
    be compared with, or it is not beaten); None when the version should become the champion."""
    if current is None:
        return None
    if str(current.version) == str(version):
        return Decision(True, "already the champion")
    if metric not in current.tags:
        return Decision(
            False,
            f"champion v{current.version} has no {metric} tag to compare with; promote by hand",
        )
    champion_value = float(current.tags[metric])
    if not better(value, champion_value, higher_is_better):
        return Decision(
            False,
            f"{metric} {value:.4f} does not beat champion v{current.version}'s {champion_value:.4f}",
        )
    return None


def champion(name: str) -> ModelVersion | None:
    """The version carrying the champion alias; None if there is none, or if its model files
    are gone (a champion that cannot be loaded is replaced by the next passing version)."""
    try:
        current = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    if not has_model_files(name, current.version):
        logger.warning(
            "%s champion v%s has lost its model files: the next version that passes the gate replaces it",
            name,
            current.version,
        )
        return None
    return current


def has_model_files(name: str, version: str) -> bool:
    """The version is READY and its artifacts hold the .keras file the served model loads."""
    if MlflowClient().get_model_version(name, version).status != "READY":
        return False
    try:
        files = mlflow.artifacts.list_artifacts(f"models:/{name}/{version}/artifacts")
    except (MlflowException, OSError):
        return False
    return any(item.path.endswith(".keras") for item in files)


def gate_run(
    model_dir: Path,
    validation_summary: Path,
    metric: str,
    value: float,
    higher_is_better: bool,
) -> Decision:
    """The gate for the version a training stage registered (`<model_dir>/mlflow.json`), with
    data validity from validate's summary; the decision is also tagged on the active run."""
    reference = read_json(Path(model_dir) / "mlflow.json")
    data_valid = bool(read_json(validation_summary).get("success"))
    decision = promote_if_better(
        reference["registered_model"],
        reference["version"],
        metric,
        value,
        higher_is_better,
        data_valid,
    )
    mlflow.set_tags(
        {
            "champion": str(decision.promoted).lower(),
            "champion_decision": decision.reason,
        }
    )
    return decision


def _decided(name: str, version: str, decision: Decision) -> Decision:
    verdict = "promoted to" if decision.promoted else "not promoted to"
    logger.info("%s v%s %s %s: %s", name, version, verdict, CHAMPION, decision.reason)
    MlflowClient().set_model_version_tag(name, version, "champion_decision", f"{verdict} {CHAMPION}: {decision.reason}")
    return decision
