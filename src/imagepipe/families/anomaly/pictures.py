"""Pictures both families draw: test images beside their reconstructions, and the anomaly
scores of normal and anomalous test images."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

SHOWN_NORMAL = 5
SHOWN_ANOMALIES = 3


def shown_indices(labels: np.ndarray, anomaly: int, seed: int) -> np.ndarray:
    """A seeded few normal test images then a few anomalies (fewer if the split has fewer)."""
    rng = np.random.default_rng(seed)
    normal, anomalous = np.flatnonzero(labels != anomaly), np.flatnonzero(labels == anomaly)
    return np.concatenate(
        [
            np.sort(rng.choice(normal, min(SHOWN_NORMAL, len(normal)), replace=False)),
            np.sort(rng.choice(anomalous, min(SHOWN_ANOMALIES, len(anomalous)), replace=False)),
        ]
    ).astype(np.int64)


def show(axis, image: np.ndarray) -> None:
    """An image of pixels in [0, 1], grey if it has one channel."""
    pixels = np.clip(image, 0, 1)
    axis.imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray", vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])


def image_rows(columns: dict[str, np.ndarray], row_titles: list[str]) -> Figure:
    """One row per image, one column per entry of columns (title → images, all the same count)."""
    rows = len(row_titles)
    figure = Figure(figsize=(1.9 * len(columns) + 1.6, 1.7 * rows + 0.5))
    axes = figure.subplots(rows, len(columns), squeeze=False)
    for column, (title, images) in enumerate(columns.items()):
        axes[0, column].set_title(title, fontsize="medium")
        for row in range(rows):
            show(axes[row, column], images[row])
    for row, title in enumerate(row_titles):
        axes[row, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize="small")
    figure.subplots_adjust(left=0.3, right=0.98, top=0.94, bottom=0.02, hspace=0.15, wspace=0.05)
    return figure


def row_titles(labels: np.ndarray, scores: np.ndarray, class_names: list[str], anomaly: int) -> list[str]:
    """Per shown image: its class, whether it is the anomaly, and its anomaly score."""
    return [
        f"{class_names[label]}{' (anomaly)' if label == anomaly else ''}\nscore {score:.4f}"
        for label, score in zip(labels, scores, strict=True)
    ]


def score_histogram(
    scores: np.ndarray, anomalous: np.ndarray, anomaly_name: str, threshold: float | None, score_name: str
) -> Figure:
    """Histograms (densities, shared bins) of the normal and anomalous images' scores, with the
    served threshold as a line when there is one."""
    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    bins = np.histogram_bin_edges(scores, bins=60).tolist()
    axis.hist(scores[~anomalous], bins=bins, density=True, alpha=0.6, label="normal classes")
    axis.hist(scores[anomalous], bins=bins, density=True, alpha=0.6, label=f"anomaly: {anomaly_name}")
    if threshold is not None:
        axis.axvline(threshold, color="black", linestyle="--", label="threshold (99th pct. of normal val)")
    axis.set_xlabel(score_name)
    axis.set_ylabel("density")
    axis.set_title("Anomaly scores of the test images")
    axis.legend()
    figure.tight_layout()
    return figure


def saved(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path
