import csv

import numpy as np

from stages.evaluate import write_predictions

NAMES = ["cat", "dog", "bird"]


def test_predictions_csv_uses_class_names(tmp_path):
    write_predictions(tmp_path / "plots" / "predictions.csv", np.array([0, 2]), np.array([1, 2]), NAMES)
    with (tmp_path / "plots" / "predictions.csv").open() as handle:
        assert list(csv.DictReader(handle)) == [
            {"index": "0", "actual": "cat", "predicted": "dog"},
            {"index": "1", "actual": "bird", "predicted": "bird"},
        ]
