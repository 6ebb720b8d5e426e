"""The classifier's metrics and pictures shared by evaluate, visualize and the recurrent family."""

from collections import Counter

import numpy as np
import pytest
from matplotlib.colors import to_hex

from imagepipe.training.classification import WRONG, confusion_figure, evaluate, grid_titles, gt_vs_pr_grid

NAMES = ["cat", "dog", "bird"]


def test_metrics_of_known_predictions():
    labels = np.eye(3, dtype=np.uint8)[[0, 0, 1, 1, 2, 2]]
    probabilities = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]],
        np.float32,
    )
    metrics, predicted = evaluate(probabilities, labels.argmax(axis=1), NAMES)
    assert predicted.tolist() == [0, 1, 1, 1, 2, 2]
    assert metrics["test_accuracy"] == pytest.approx(5 / 6)
    assert metrics["test_loss"] == pytest.approx(-(5 * np.log(0.8) + np.log(0.1)) / 6, rel=1e-5)
    assert metrics["per_class"]["cat"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert metrics["per_class"]["dog"]["precision"] == pytest.approx(2 / 3)
    assert metrics["test_macro_f1"] == pytest.approx(np.mean([2 / 3, 0.8, 1.0]))


def test_grid_titles_name_classes_and_mark_wrong_predictions():
    actual = ["T-shirt/top", "Bag", "Sneaker"]
    predicted = ["T-shirt/top", "Sandal", "Sneaker"]
    figure = gt_vs_pr_grid(np.zeros((3, 28, 28, 1), np.float32), actual, predicted, rows=2, columns=2)
    axes = figure.axes
    assert [axis.get_title() for axis in axes[:3]] == [
        "GT: T-shirt/top / PR: T-shirt/top",
        "GT: Bag / PR: Sandal",
        "GT: Sneaker / PR: Sneaker",
    ]
    assert to_hex(axes[1].title.get_color()) == WRONG and to_hex(axes[0].title.get_color()) == "#000000"
    assert axes[1].spines["left"].get_visible() and not axes[0].spines["left"].get_visible()
    assert not axes[3].axison
    assert grid_titles(["a"], ["b"]) == ["GT: a / PR: b"]


def test_confusion_figure_counts_actual_down_and_predicted_across():
    actual = ["cat", "cat", "cat", "dog", "bird", "bird"]
    predicted = ["cat", "dog", "dog", "dog", "cat", "bird"]
    figure = confusion_figure(actual, predicted, NAMES)
    (axis,) = figure.axes  # no colorbar
    cells = {(round(text.get_position()[1]), round(text.get_position()[0])): text.get_text() for text in axis.texts}
    counted = Counter(zip(actual, predicted, strict=True))
    # Cell (row, column) holds how many images of class NAMES[row] were predicted NAMES[column].
    assert cells == {(row, column): str(counted[a, p]) for row, a in enumerate(NAMES) for column, p in enumerate(NAMES)}
    assert [label.get_text() for label in axis.get_yticklabels()] == NAMES
    assert [label.get_text() for label in axis.get_xticklabels()] == NAMES
    assert (axis.get_ylabel(), axis.get_xlabel()) == ("actual", "predicted")
