"""The parts of a model card: facts about a registered version (its model, task, gate decision,
lineage and params) as card sections; cards.py puts them together for classifiers and GANs.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

from imagepipe.core.errors import StageError
from imagepipe.tracking.card_render import Bullets, Section, Table, code, escape
from imagepipe.tracking.provenance import GIT_DIRTY

FAMILIES = {
    "cnn": "an image classifier trained from scratch on the task's train split",
    "transfer": "an image classifier: a pretrained backbone with a new head, trained on few labels",
    "gan": "an image generator (DCGAN) trained on the task's train images",
}


class CardError(StageError):
    """A card cannot be written: a fact it must state is missing or malformed."""


@dataclass(frozen=True)
class Architecture:
    """A saved model's shape: its name, layer count by kind, parameters, input and output shapes."""

    name: str
    layer_kinds: tuple[tuple[str, int], ...]
    parameters: int
    trainable_parameters: int
    input_shape: tuple[int, ...]  # one example's, without the batch axis
    output_shape: tuple[int, ...]

    def describe(self) -> str:
        kinds = ", ".join(f"{kind} ×{count}" if count > 1 else kind for kind, count in self.layer_kinds)
        layers = sum(count for _, count in self.layer_kinds)
        return (
            f"{code(self.name)}: {layers} layers ({kinds}); {self.parameters:,} parameters, "
            f"{self.trainable_parameters:,} of them trainable"
        )


@dataclass(frozen=True)
class Version:
    """A registered model version, with its tags, its training run's tags and params."""

    registered_name: str
    version: str
    family: str
    run_id: str
    tags: Mapping[str, str]
    champion: bool
    run_tags: Mapping[str, str]
    params: Mapping[str, str]

    @property
    def task(self) -> str | None:
        """The task: the version's `task` tag, else the registered name's `<task>-<family>` prefix."""
        suffix = f"-{self.family}"
        derived = self.registered_name.removesuffix(suffix) if self.registered_name.endswith(suffix) else None
        return self.tags.get("task") or derived

    @property
    def title(self) -> str:
        return f"Model card: {self.registered_name} v{self.version}"


def class_list(names: Sequence[str], shown: int = 30) -> str:
    """The class names in order; past shown of them, the count of the rest (the card's tables list all)."""
    listed = ", ".join(escape(name) for name in names[:shown])
    return listed + (f" … and {len(names) - shown} more" if len(names) > shown else "")


def shape(dimensions: Sequence[int]) -> str:
    return " × ".join(str(size) for size in dimensions)


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def model_section(version: Version, architecture: Architecture, inputs: str, outputs: str) -> Section:
    family = FAMILIES.get(version.family, "")
    return Section(
        "The model",
        (
            Bullets(
                (
                    f"Registered model {code(version.registered_name)}, version {escape(version.version)}"
                    + (f": {family}" if family else ""),
                    f"Architecture: {architecture.describe()}",
                    f"Input: {inputs}",
                    f"Output: {outputs}",
                )
            ),
        ),
    )


def task_section(
    version: Version, class_names: Sequence[str], input_shape: tuple[int, ...], test_images: int
) -> Section:
    fingerprint = version.tags.get("test_fingerprint")
    return Section(
        "The task",
        (
            Bullets(
                (
                    f"Task: {code(version.task) if version.task else 'not recorded'}",
                    f"{len(class_names)} classes: {class_list(class_names)}",
                    f"Input shape: {shape(input_shape)} (height × width × channels)",
                    f"Test set: {test_images:,} images, fingerprint "
                    + (code(fingerprint) if fingerprint else "not recorded"),
                )
            ),
        ),
    )


def gate_section(version: Version, confidence: float, unit: str) -> Section:
    """The gate's decision as the version's tags record it (gain, its interval and p-value when
    the gate compared the version with a champion)."""
    tags = version.tags
    items = [
        f"Decision: {escape(tags.get('champion_decision', 'not recorded (the gate has not run on this version)'))}",
        f"Held the `champion` alias when this card was written: **{'yes' if version.champion else 'no'}**",
    ]
    if "gate_gain" in tags:
        gain = f"Gain over the champion (positive: better): {float(tags['gate_gain']):+.4f} {unit}"
        if "gate_gain_ci" in tags:
            low, high = json.loads(tags["gate_gain_ci"])
            gain += f" ({confidence:.0%} interval [{low:+.4f}, {high:+.4f}])"
        items.append(gain)
    if "gate_p_value" in tags:
        items.append(f"McNemar's exact test, p = {float(tags['gate_p_value']):.3g}")
    return Section("The champion gate", (Bullets(tuple(items)),))


def lineage_sections(version: Version, validation: Mapping) -> list[Section]:
    """Where the version came from: code, data hashes, the Great Expectations verdict, params."""
    tags = version.run_tags
    dirty = {"true": " (with uncommitted changes)", "false": ""}.get(tags.get(GIT_DIRTY, ""), "")
    items = [
        f"Training run: {code(version.run_id)}",
        f"Git commit: {code(tags.get(MLFLOW_GIT_COMMIT, 'not recorded'))}{dirty}",
    ]
    items += [
        f"DVC hash of {code(k.removeprefix('dvc_hash:'))}: {code(v)}"
        for k, v in sorted(tags.items())
        if k.startswith("dvc_hash:")
    ]
    counts = validation.get("class_counts", {})
    verdict = "passed" if validation.get("success") else "failed"
    failures = "; ".join(escape(failure) for failure in validation.get("failures", []))
    totals = ", ".join(f"{split} {sum(per_class.values()):,}" for split, per_class in sorted(counts.items()))
    items.append(f"Great Expectations validation: **{verdict}**{': ' + failures if failures else ''}; images: {totals}")
    splits = sorted(counts)
    names = sorted({name for per_class in counts.values() for name in per_class})
    table = Table(("class", *splits), tuple((escape(n), *(str(counts[s].get(n, 0)) for s in splits)) for n in names))
    params = Table(("param", "value"), tuple((code(key), code(value)) for key, value in sorted(version.params.items())))
    return [
        Section("Data lineage", (Bullets(tuple(items)),)),
        Section("Images per class and split (validated)", (table,), optional=True),
        *([Section("Training params", (params,), optional=True)] if version.params else []),
    ]


def training_limit(version: Version) -> str:
    device = version.run_tags.get("accelerator.device", "an unrecorded device")
    return (
        f"Trained on {escape(device)} without TensorFlow's op determinism: retraining with the same code, data "
        "and seed gives a somewhat different model, so compare versions by the gate's interval, not one score."
    )
