import csv

import numpy as np
import pytest

from stages.evaluate import evaluate, write_predictions

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


def test_predictions_csv_uses_class_names(tmp_path):
    write_predictions(tmp_path / "plots" / "predictions.csv", np.array([0, 2]), np.array([1, 2]), NAMES)
    with (tmp_path / "plots" / "predictions.csv").open() as handle:
        assert list(csv.DictReader(handle)) == [
            {"index": "0", "actual": "cat", "predicted": "dog"},
            {"index": "1", "actual": "bird", "predicted": "bird"},
        ]
