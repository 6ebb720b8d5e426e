"""A classifier's test scores and pictures, shared by every classifier: the CNN and transfer
classifier (stages/evaluate.py) and the RNN family (imagepipe.families.rnn).

Metric keys (metrics/<model>.json, an interface to DVC and MLflow): `test_accuracy`,
`test_loss` (mean categorical cross-entropy), `test_macro_f1`, `num_test_images` and
`per_class` ({class name: {precision, recall, f1, support}}).
"""

import keras
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, precision_recall_fscore_support

# Wrong predictions in the ground truth vs prediction grid: their title and frame.
WRONG = "#d62728"


def evaluate(probabilities: np.ndarray, actual: np.ndarray, class_names: list[str]) -> tuple[dict, np.ndarray]:
    """(metrics, predicted class indices) of predicted probabilities against actual class indices."""
    if probabilities.shape != (len(actual), len(class_names)):
        raise ValueError(
            f"probabilities must be shaped (images, classes) = ({len(actual)}, {len(class_names)}); "
            f"got {probabilities.shape}"
        )
    predicted = probabilities.argmax(axis=1)
    labels = np.eye(len(class_names), dtype=np.float32)[actual]
    loss = float(keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(labels, probabilities)).mean())
    indices = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(actual, predicted, labels=indices, zero_division=0)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    metrics = {
        "test_accuracy": float((actual == predicted).mean()),
        "test_loss": loss,
        "test_macro_f1": float(f1.mean()),
        "num_test_images": int(len(actual)),
        "per_class": per_class,
    }
    return metrics, predicted


def grid_titles(actual: list[str], predicted: list[str]) -> list[str]:
    return [f"GT: {a} / PR: {p}" for a, p in zip(actual, predicted, strict=True)]


def gt_vs_pr_grid(images: np.ndarray, actual: list[str], predicted: list[str], rows: int, columns: int) -> Figure:
    """The course's grid: images (in [0, 1]) titled `GT: <class> / PR: <class>`, the wrong ones
    in red with a red frame; cells past the last image are blank."""
    figure = Figure(figsize=(2.3 * columns, 2.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    samples = list(zip(images, grid_titles(actual, predicted), actual, predicted, strict=True))
    for axis, (image, title, a, p) in zip(axes.flat, samples, strict=False):
        axis.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        wrong = a != p
        axis.set_title(title, fontsize=8, color=WRONG if wrong else "black")
        axis.set_xticks([])
        axis.set_yticks([])
        for spine in axis.spines.values():
            spine.set_visible(wrong)
            spine.set_color(WRONG)
            spine.set_linewidth(3)
    for axis in list(axes.flat)[len(images) :]:
        axis.axis("off")
    figure.tight_layout()
    return figure


def confusion_figure(actual: list[str], predicted: list[str], class_names: list[str]) -> Figure:
    """The confusion matrix of class names: actual classes down, predicted across, counts in cells."""
    figure = Figure(figsize=(1 + 0.6 * len(class_names), 1 + 0.6 * len(class_names)))
    axis = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        actual,
        predicted,
        labels=class_names,
        ax=axis,
        cmap="Blues",
        colorbar=False,
        values_format="d",
        xticks_rotation=60,
        text_kw={"fontsize": 7},
    )
    axis.set_xlabel("predicted")
    axis.set_ylabel("actual")
    axis.tick_params(labelsize=8)
    for label in axis.get_xticklabels():
        label.set_horizontalalignment("right")
    figure.tight_layout()
    return figure
