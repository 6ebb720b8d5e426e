"""Model cards: what a registered version is, what made it, how good it is and what the gate
decided, built from plain values (tags, params, metrics, validate's summary); card_publish.py
gathers those values and puts the card on the version and its run.
"""

from collections import Counter
from collections.abc import Mapping, Sequence

from imagepipe.tracking.card_render import Bullets, Card, Picture, Section, Table, escape
from imagepipe.tracking.card_sections import (
    Architecture,
    CardError,
    Version,
    class_list,
    gate_section,
    lineage_sections,
    model_section,
    percent,
    shape,
    task_section,
    training_limit,
)

PER_CLASS_KEYS = ("precision", "recall", "f1", "support")


def require(metrics: Mapping, keys: Sequence[str], source: str) -> None:
    missing = [key for key in keys if key not in metrics]
    if missing:
        raise CardError(
            f"{source} lacks {', '.join(missing)}: the model card needs them; rerun the stage that writes it "
            "(evaluate, evaluate_gan)"
        )


def interval(metrics: Mapping, key: str, source: str) -> tuple[float, float]:
    """metrics[key] as (low, high), or a CardError naming the file and what is wrong."""
    if key not in metrics:
        raise CardError(
            f"{source} has no {key}: the card states every metric with its interval; rerun the stage that "
            "writes it (evaluate, evaluate_gan)"
        )
    value = metrics[key]
    if not isinstance(value, Sequence) or len(value) != 2 or not value[0] <= value[1]:
        raise CardError(f"{source}: {key} must be [low, high] with low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def per_class_rows(per_class: Mapping[str, Mapping], class_names: Sequence[str], source: str) -> tuple[tuple, ...]:
    """The per-class table's rows, in class order: name, precision, recall, F1, support."""
    if set(per_class) != set(class_names):
        raise CardError(
            f"{source}: per_class names {sorted(per_class)} are not the model's classes {list(class_names)}"
        )
    rows = []
    for name in class_names:
        require(per_class[name], PER_CLASS_KEYS, f"{source} (per_class {name!r})")
        scores = per_class[name]
        values = [f"{scores[key]:.3f}" for key in PER_CLASS_KEYS[:3]]
        rows.append((escape(name), *values, str(int(scores["support"]))))
    return tuple(rows)


def most_confused(actual: Sequence[str], predicted: Sequence[str], count: int = 3) -> list[tuple[str, str, int]]:
    """The count most frequent mistakes: (actual class, predicted class, how often)."""
    mistakes = Counter((a, p) for a, p in zip(actual, predicted, strict=True) if a != p)
    return [(a, p, n) for (a, p), n in mistakes.most_common(count)]


def classifier_card(
    version: Version,
    architecture: Architecture,
    class_names: Sequence[str],
    metrics: Mapping,
    validation: Mapping,
    confidence: float,
    confusions: Sequence[tuple[str, str, int]] = (),
    source: str = "the metrics",
) -> Card:
    """The card of a classifier version; metrics is evaluate's metrics/<model>.json (source names it)."""
    require(metrics, ("test_accuracy", "num_test_images", "per_class"), source)
    low, high = interval(metrics, "test_accuracy_ci", source)
    rows = per_class_rows(metrics["per_class"], class_names, source)
    dimensions = ", ".join(map(str, architecture.input_shape))
    inputs = f"raw pixels 0..255 (scaled inside the model), float32 shaped (n, {dimensions})"
    outputs = (
        "per image, `predicted_class` (a class name) and the probability of each class, in the order "
        + class_list(class_names)
    )
    table = (("test accuracy", percent(metrics["test_accuracy"]), f"{percent(low)} – {percent(high)}"),) + tuple(
        (key.replace("_", " "), f"{metrics[key]:.4f}", "") for key in ("test_macro_f1", "test_loss") if key in metrics
    )
    limits = classifier_limits(version, architecture, class_names, metrics, validation, confidence, confusions)
    pictures = (
        Picture("Confusion matrix on the test set", "plots/confusion_matrix.png"),
        Picture("Ground truth vs prediction on test images (mistakes in red)", "plots/gt_vs_pr.png", False),
    )
    lineage, *details = lineage_sections(version, validation)
    return Card(
        version.title,
        (
            model_section(version, architecture, inputs, outputs),
            task_section(version, class_names, architecture.input_shape, metrics["num_test_images"]),
            Section("Metrics on the test set", (Table(("metric", "value", f"{confidence:.0%} interval"), table),)),
            gate_section(version, confidence, "accuracy"),
            Section("Per-class results", (Table(("class", "precision", "recall", "F1", "support"), rows),), True),
            Section("Known limits", (Bullets(limits),)),
            lineage,
            Section("Confusion matrix and predictions", pictures, optional=True),
            *details,
        ),
    )


def classifier_limits(
    version: Version,
    architecture: Architecture,
    class_names: Sequence[str],
    metrics: Mapping,
    validation: Mapping,
    confidence: float,
    confusions: Sequence[tuple[str, str, int]],
) -> tuple[str, ...]:
    """What the classifier's facts say it cannot do well, or at all."""
    low, high = metrics["test_accuracy_ci"]
    weakest = sorted(class_names, key=lambda name: metrics["per_class"][name]["f1"])[:3]
    return (
        "Weakest classes (F1): "
        + ", ".join(f"{escape(name)} {metrics['per_class'][name]['f1']:.3f}" for name in weakest),
        *(f"Often mistaken: {escape(a)} predicted as {escape(p)} ({n} test images)" for a, p, n in confusions),
        f"Test set of {metrics['num_test_images']:,} images: the accuracy's {confidence:.0%} interval is "
        f"{100 * (high - low):.2f} points wide; one score is only known to that precision, so versions are "
        "compared by the gate on paired results.",
        f"Expects images of {shape(architecture.input_shape)} as the pipeline prepares them (others are resized to "
        "that size on download); an image of another shape is refused.",
        *training_size(validation),
        f"Knows only these {len(class_names)} classes: any other image is still assigned one of them.",
        training_limit(version),
    )


def training_size(validation: Mapping) -> tuple[str, ...]:
    """How many labelled images trained the model, from validate's counts (none when not counted)."""
    train = validation.get("class_counts", {}).get("train")
    if not train:
        return ()
    fewest = min(train, key=train.get)
    return (
        f"Trained on {sum(train.values()):,} labelled images, as few as {train[fewest]:,} of one class "
        f"({escape(fewest)}).",
    )


def gan_card(
    version: Version,
    architecture: Architecture,
    class_names: Sequence[str],
    metrics: Mapping,
    validation: Mapping,
    confidence: float,
    source: str = "the metrics",
) -> Card:
    """The card of a GAN generator version; metrics is evaluate_gan's metrics/gan.json."""
    require(metrics, ("test_fid", "fid_samples", "feature_extractor"), source)
    low, high = interval(metrics, "test_fid_ci", source)
    inputs = f"noise, float32 shaped (n, {architecture.input_shape[-1]}), drawn from a standard normal"
    outputs = f"images, pixels 0..255 shaped (n, {', '.join(map(str, architecture.output_shape))})"
    level = f"{confidence:.0%}"
    limits = [
        f"FID on {metrics['fid_samples']:,} generated vs as many test images: its {level} interval is "
        f"{high - low:.2f} wide; one FID is only known to that precision, so versions are compared by the gate "
        "from the same noise and test images.",
        f"FID is measured on the features of {escape(metrics['feature_extractor'])}, not Inception-v3: "
        "it compares versions of this task, not published FIDs.",
        "Unconditional: it cannot be asked for a class; it draws from all the classes it was trained on.",
        training_limit(version),
    ]
    lineage, *details = lineage_sections(version, validation)
    table = (("test FID (lower is better)", f"{metrics['test_fid']:.2f}", f"{low:.2f} – {high:.2f}"),)
    return Card(
        version.title,
        (
            model_section(version, architecture, inputs, outputs),
            task_section(version, class_names, architecture.output_shape, metrics["fid_samples"]),
            Section("Metrics on the test set", (Table(("metric", "value", f"{level} interval"), table),)),
            gate_section(version, confidence, "FID"),
            Section("Known limits", (Bullets(tuple(limits)),)),
            lineage,
            Section("Samples", (Picture("Generated samples", "plots/samples.png"),), optional=True),
            *details,
        ),
    )
