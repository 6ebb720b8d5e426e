"""The registry gate: a new version becomes its task's `champion` only if it beats the current
champion beyond noise, measured on the same test set.

Each task has its own registered model (imagepipe.tracking.tasks); a version for another task
is refused with the reason. The champion is scored again on this version's test set, so the
comparison is paired, and the new version is promoted only when the interval of its gain lies
above the margin. Every figure goes on the version as a tag, and the decision as a sentence.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from imagepipe.core.files import read_json
from imagepipe.tracking.significance import Gain
from imagepipe.tracking.tasks import CLASS_NAMES_TAG, INPUT_SHAPE_TAG, TEST_FINGERPRINT_TAG, Task

logger = logging.getLogger(__name__)
CHAMPION = "champion"
# The candidate's gain over the champion, given the champion's .keras file.
Compare = Callable[[Path], Gain]


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str


@dataclass(frozen=True)
class Measured:
    """What evaluate measured: the task's test set, the decisive metric and its interval."""

    task: Task
    metric: str
    value: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class Candidate:
    """A registered version and what evaluate measured of it on its test set."""

    name: str
    version: str
    measured: Measured
    data_valid: bool


@dataclass(frozen=True)
class Policy:
    """Promote only when the gain's interval (at this confidence) lies above margin."""

    margin: float
    confidence: float


def promote_if_better(candidate: Candidate, compare: Compare, policy: Policy) -> Decision:
    """Tag the version with its task and scores, then move the champion alias to it if it is
    better than the champion beyond noise."""
    _tag_version(candidate)
    refusal = _refusal(candidate)
    if refusal:
        return _decided(candidate, Decision(False, refusal))
    current = champion(candidate.name)
    if current is None:
        return _promote(candidate, "no previous champion")
    if str(current.version) == str(candidate.version):
        return _decided(candidate, Decision(True, "already the champion"))
    gain = compare(keras_file(candidate.name, str(current.version)))
    _tag_gain(candidate, gain)
    verdict = _gain_sentence(candidate.measured.metric, gain, current.version, policy)
    if not gain.beyond(policy.margin):
        return _decided(candidate, Decision(False, f"{verdict}: within noise on this test set"))
    return _promote(candidate, verdict)


def _refusal(candidate: Candidate) -> str | None:
    """Why the version cannot become champion whatever its scores; None when it can."""
    if not candidate.data_valid:
        return "its data did not pass validation"
    if not has_model_files(candidate.name, candidate.version):
        return "its model files are missing from the registry's artifact store"
    client = MlflowClient()
    tags = client.get_registered_model(candidate.name).tags
    if candidate.measured.task.differs_from(tags):
        return (
            f"{candidate.name} holds another task ({describe_task(tags)}); this version is for "
            f"{candidate.measured.task.describe()}: set registry.task (or registry.transfer_task) to register it apart"
        )
    for key, value in candidate.measured.task.tags().items():
        client.set_registered_model_tag(candidate.name, key, value)
    return None


def _gain_sentence(metric: str, gain: Gain, champion_version: str, policy: Policy) -> str:
    what = {"test_accuracy": "accuracy gain", "test_fid": "FID drop"}.get(metric, f"{metric} gain")
    p_value = f", McNemar p = {gain.p_value:.3g}" if gain.p_value is not None else ""
    return (
        f"{what} over champion v{champion_version} on the same test set {gain.value:+.4f}, "
        f"{policy.confidence:.0%} interval [{gain.low:+.4f}, {gain.high:+.4f}]{p_value}; "
        f"{'lies above' if gain.beyond(policy.margin) else 'does not lie above'} the margin {policy.margin:g}"
    )


def _promote(candidate: Candidate, reason: str) -> Decision:
    MlflowClient().set_registered_model_alias(candidate.name, CHAMPION, str(candidate.version))
    return _decided(candidate, Decision(True, reason))


def describe_task(tags: dict[str, str]) -> str:
    names = json.loads(tags.get(CLASS_NAMES_TAG, "[]"))
    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    return f"{len(names)} classes ({shown}) at {tags.get(INPUT_SHAPE_TAG, '?').replace('x', '×')}"


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


def keras_file(name: str, version: str) -> Path:
    """A local copy of a version's .keras file."""
    artifacts = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}/artifacts"))
    return next(artifacts.glob("*.keras"))


def gate_run(
    model_dir: Path, validation_summary: Path, measured: Measured, compare: Compare, policy: Policy
) -> Decision:
    """The gate for the version a training stage registered (`<model_dir>/mlflow.json`), with
    data validity from validate's summary; the decision is also tagged on the active run."""
    reference = read_json(Path(model_dir) / "mlflow.json")
    candidate = Candidate(
        reference["registered_model"],
        str(reference["version"]),
        measured,
        bool(read_json(validation_summary).get("success")),
    )
    decision = promote_if_better(candidate, compare, policy)
    mlflow.set_tags({"champion": str(decision.promoted).lower(), "champion_decision": decision.reason})
    return decision


def _tag_version(candidate: Candidate) -> None:
    client = MlflowClient()
    tags = {
        **candidate.measured.task.tags(),
        TEST_FINGERPRINT_TAG: candidate.measured.task.test_fingerprint,
        candidate.measured.metric: repr(float(candidate.measured.value)),
        f"{candidate.measured.metric}_ci": json.dumps(list(candidate.measured.interval)),
    }
    for key, value in tags.items():
        client.set_model_version_tag(candidate.name, candidate.version, key, value)


def _tag_gain(candidate: Candidate, gain: Gain) -> None:
    client = MlflowClient()
    tags = {"gate_gain": repr(gain.value), "gate_gain_ci": json.dumps([gain.low, gain.high])}
    if gain.p_value is not None:
        tags["gate_p_value"] = repr(gain.p_value)
    for key, value in tags.items():
        client.set_model_version_tag(candidate.name, candidate.version, key, value)


def _decided(candidate: Candidate, decision: Decision) -> Decision:
    verdict = "promoted to" if decision.promoted else "not promoted to"
    logger.info("%s v%s %s %s: %s", candidate.name, candidate.version, verdict, CHAMPION, decision.reason)
    MlflowClient().set_model_version_tag(
        candidate.name, candidate.version, "champion_decision", f"{verdict} {CHAMPION}: {decision.reason}"
    )
    return decision
